"""The web view's pages at 1M stored events: server time per page, on SQLite and PostgreSQL.

Target (BENCHMARKS.md): every page within 200 ms of server time at 1M
stored events. Each page is requested through the WSGI application itself
(Werkzeug's test client: no network, no browser), several times, the pages
interleaved, and the median reported. Anchors measured in the same run, on
the same store: a bare ``SELECT 1`` round trip through the store's engine,
and the query behind ``code-wake errors --since 1d`` (``query_trace_groups``
of a day, 20 groups).

The database is realistic rather than uniform: six apps with three
versions each, deployed one after the other over the 30 days, three
environments, a process per app, environment, host and day (about 1,100),
and 200 stack traces, each belonging to one app and living in some of its
versions, drawn with a long tail (a few frequent, most rare); 12 % of the
events are errors, the rest carry three data fields. It is filled fast, as
``bench.queries`` fills its database (large batches of the store's own rows,
the ``event_counts`` summary added in the same transaction), once: the
SQLite file is kept under bench/results/ (git-ignored) and the PostgreSQL
database as ``cw_bench_web_<size>``, both reused while they hold what this
module writes (a ``bench_web_meta`` row says so). The pages' clock is the
fill's end, so "the last 24 hours" means the same rows on every run.
``--quick`` uses 50,000 events.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from werkzeug.test import Client

from code_wake.query import EventFilter
from code_wake.records import ProcessInfo, ProcessRecord
from code_wake.stack_trace import RawFrame, trace_digest
from code_wake.web._app import WebApp
from code_wake_sql14_store import Sql14Store
from code_wake_sql14_store._counts import add_counts, upsert_statement
from code_wake_sql14_store.schema import events, stackframes, stacktraces

from . import queries
from .timing import Row

TARGET_MS = 200.0
DAYS = 30
DAY = 86_400.0
END = 1_767_225_600.0  # 2026-01-01 00:00 UTC: the pages' "now"
LAYOUT = "web-v1"
"""Changes whenever the fill changes, so that an older cached database is built again."""
RESULTS = Path(__file__).parent / "results"
CHUNK = 20_000

APPS = {"shop": 0.35, "billing": 0.2, "search": 0.2, "auth": 0.1, "mailer": 0.1, "reports": 0.05}
VERSIONS = ("1.0", "1.1", "1.2")
"""Deployed one after the other: each lives a third of the 30 days."""
ENVS = {"production": 0.8, "staging": 0.15, "canary": 0.05}
HOSTS = 2
TRACES = 200
ERROR_SHARE = 0.12
ERROR_TYPES = (
    "ValueError",
    "KeyError",
    "TimeoutError",
    "ConnectionError",
    "PermissionError",
    "shop.errors.OutOfStock",
    "billing.errors.PaymentDeclined",
    "sqlalchemy.exc.OperationalError",
)
KINDS = ("order", "view", "search", "login", "report")

Meta = sa.Table(
    "bench_web_meta",
    sa.MetaData(),
    sa.Column("layout", sa.String(40)),
    sa.Column("size", sa.Integer),
    sa.Column("end_ts", sa.Float),
)


# -- the fill ----------------------------------------------------------------------------------


def _frames(number: int, app: str) -> tuple[RawFrame, ...]:
    """A trace of 3 to 8 frames in `app`'s code, with a library frame inside now and then."""
    depth = 3 + number % 6
    frames = [RawFrame(f"/srv/{app}/{app}/main.py", 40, "<module>", "main()")]
    for level in range(1, depth - 1):
        frames.append(
            RawFrame(
                f"/srv/{app}/{app}/module_{(number + level) % 11}.py",
                10 * level + number,
                f"step_{level}_{number % 13}",
                f"return step_{level + 1}_{number % 13}(request)",
            )
        )
    if number % 4 == 0:
        frames.append(
            RawFrame(
                "/srv/venv/lib/python3.11/site-packages/requests/api.py",
                59,
                "request",
                "return session.request()",
            )
        )
    frames.append(
        RawFrame(
            f"/srv/{app}/{app}/handlers.py",
            100 + number,
            f"handle_{number}",
            f"raise {ERROR_TYPES[number % len(ERROR_TYPES)].rpartition('.')[2]}(detail)",
        )
    )
    return tuple(frames)


def _store_traces(store: Sql14Store) -> list[tuple[int, str, str, int, int]]:
    """The 200 traces: (id, app, exception type, first version, last version) each."""
    apps = list(APPS)
    found = []
    with store.engine.begin() as conn:
        for number in range(TRACES):
            app = apps[number % len(apps)]
            frames = _frames(number, app)
            key = conn.execute(
                sa.insert(stacktraces).values(digest=trace_digest(frames))
            ).inserted_primary_key
            assert key is not None
            trace_id = int(key[0])
            conn.execute(
                sa.insert(stackframes),
                [
                    {
                        "stacktrace_id": trace_id,
                        "filename": f.filename,
                        "lineno": f.lineno,
                        "src": f.src,
                        "function": f.function,
                    }
                    for f in reversed(frames)  # stored innermost first
                ],
            )
            first = number % 3
            last = min(2, first + (number // 3) % 3)
            found.append((trace_id, app, ERROR_TYPES[number % len(ERROR_TYPES)], first, last))
    return found


def _processes(store: Sql14Store) -> dict[tuple[str, str, int, int], ProcessRecord]:
    """A process per app, environment, host and day, of the version deployed that day."""
    found = {}
    start = END - DAYS * DAY
    for app in APPS:
        for env in ENVS:
            for host in range(HOSTS):
                for day in range(DAYS):
                    vsn = VERSIONS[day * len(VERSIONS) // DAYS]
                    info = ProcessInfo(
                        pid=1000 + day * 10 + host,
                        username=app,
                        fqdn=f"{env}-{host}.{app}.example.org",
                        exe_path=f"/srv/{app}/bin/{app}",
                        run_ts=start + day * DAY + 60 * host,
                        app_name=app,
                        app_vsn=vsn,
                        env_name=env,
                    )
                    found[app, env, host, day] = store.insert_process(info)
    return found


class _Filler:
    def __init__(self, store: Sql14Store, size: int, seed: int = 16) -> None:
        self.store = store
        self.size = size
        self.rng = random.Random(seed)
        self.processes = _processes(store)  # first: the store creates its schema
        traces = _store_traces(store)
        # Per (app, version): its traces, weighted with a long tail.
        self.traces: dict[tuple[str, int], tuple[list[tuple[int, str]], list[float]]] = {}
        for app in APPS:
            for vsn in range(len(VERSIONS)):
                mine = [t for t in traces if t[1] == app and t[3] <= vsn <= t[4]]
                self.traces[app, vsn] = (
                    [(t[0], t[2]) for t in mine],
                    [1.0 / (1 + rank) ** 1.1 for rank in range(len(mine))],
                )

    def rows(
        self, first_id: int, start: int, count: int
    ) -> Iterator[tuple[dict[str, Any], list[dict[str, Any]]]]:
        rng = self.rng
        step = DAYS * DAY / self.size
        apps = rng.choices(list(APPS), list(APPS.values()), k=count)
        envs = rng.choices(list(ENVS), list(ENVS.values()), k=count)
        for offset in range(count):
            at = start + offset
            when = END - DAYS * DAY + at * step + rng.random() * step
            day = min(DAYS - 1, int((when - (END - DAYS * DAY)) // DAY))
            app, env = apps[offset], envs[offset]
            owner = self.processes[app, env, rng.randrange(HOSTS), day]
            vsn = day * len(VERSIONS) // DAYS
            trace_id: int | None = None
            exc_type: str | None = None
            choices, weights = self.traces[app, vsn]
            if choices and rng.random() < ERROR_SHARE:
                trace_id, exc_type = rng.choices(choices, weights)[0]
            event_id = first_id + at
            row = {
                "id": event_id,
                "when_ts": when,
                "process_id": owner.id,
                "stacktrace_id": trace_id,
                "exc_type": exc_type,
                "exc_message": None
                if exc_type is None
                else f"request {event_id} failed: code {event_id % 97}",
                "app_id": owner.app.id,
                "app_vsn_id": owner.app_vsn.id if owner.app_vsn else None,
                "environment_id": owner.environment.id if owner.environment else None,
            }
            kind = "fault" if exc_type else KINDS[event_id % len(KINDS)]
            data = [("event", kind), ("customer", f"c{rng.randrange(20_000)}"), ("n", str(event_id))]
            yield row, [{"event_id": event_id, "key": k, "val": v, "when_ts": when} for k, v in data]

    def fill(self) -> None:
        engine = self.store.engine
        upsert = upsert_statement(engine.dialect)
        with engine.connect() as conn:
            first_id = int(conn.execute(sa.select(sa.func.max(events.c.id))).scalar() or 0) + 1
        for start in range(0, self.size, CHUNK):
            batch = list(self.rows(first_id, start, min(CHUNK, self.size - start)))
            rows = [row for row, _ in batch]
            with engine.begin() as conn:
                queries._insert(conn, rows, [d for _, data in batch for d in data])
                add_counts(conn, upsert, map(queries._counted, rows))
        if engine.dialect.name == "postgresql":
            with engine.begin() as conn:
                conn.exec_driver_sql(
                    "SELECT setval(pg_get_serial_sequence('events', 'id'), max(id)) FROM events"
                )
        queries._analyze(engine)
        with engine.begin() as conn:
            Meta.create(conn)
            conn.execute(sa.insert(Meta).values(layout=LAYOUT, size=self.size, end_ts=END))


def _ready(url: str, size: int) -> bool:
    """Whether the database at `url` holds this module's fill of `size` events."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            if not sa.inspect(conn).has_table(Meta.name):
                return False
            row = conn.execute(sa.select(Meta.c.layout, Meta.c.size)).first()
            return row is not None and tuple(row) == (LAYOUT, size)
    finally:
        engine.dispose()


@contextmanager
def database(backend: str, size: int) -> Iterator[tuple[str | None, float]]:
    """The URL of the cached database of `size` events on `backend` (None: no server), and the
    seconds spent filling it now (0 when reused)."""
    if backend == "sqlite":
        RESULTS.mkdir(exist_ok=True)
        path = RESULTS / f"web-{size}.sqlite"
        url = f"sqlite:///{path}"
        if path.exists() and not _ready(url, size):
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
        yield url, _fill_if_needed(url, size)
        return
    env, default = queries.SERVERS[backend]
    admin = sa.make_url(os.environ.get(env) or default)
    engine = sa.create_engine(admin, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 5})
    name = f"cw_bench_web_{size}"
    try:
        with engine.connect() as conn:
            exists = conn.execute(
                sa.text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}
            ).first()
            url = admin.set(database=name).render_as_string(hide_password=False)
            if exists and not _ready(url, size):
                conn.exec_driver_sql(f"DROP DATABASE {name} WITH (FORCE)")
                exists = None
            if not exists:
                conn.exec_driver_sql(f"CREATE DATABASE {name}")
    except sa.exc.SQLAlchemyError:
        yield None, 0.0
        return
    finally:
        engine.dispose()
    yield url, _fill_if_needed(url, size)


def _fill_if_needed(url: str, size: int) -> float:
    if _ready(url, size):
        return 0.0
    started = time.perf_counter()
    store = Sql14Store(url)
    try:
        _Filler(store, size).fill()
    finally:
        store.close()
    return time.perf_counter() - started


# -- the pages ---------------------------------------------------------------------------------


def cases(store: Sql14Store, client: Client) -> dict[str, Callable[[], object]]:
    """The anchors, then each page (a GET through the WSGI app, which must answer 200)."""
    top = store.query_trace_groups(EventFilter(errors=True, since=END - 7 * DAY, limit=1))[0]
    group = f"/group/{top.stacktrace_id}/{top.exc_type}"
    newest = next(iter(store.query_events(EventFilter(errors=True, limit=1))))
    older = next(iter(store.query_events(EventFilter(errors=True, until=END - 15 * DAY, limit=1))))
    cursor = f"{END - 12 * DAY!r},{newest.id}"

    def select_one() -> object:
        with store.engine.connect() as conn:
            return conn.execute(sa.text("SELECT 1")).scalar()

    def page(path: str) -> Callable[[], object]:
        def get() -> object:
            response = client.get(path, environ_base={"REMOTE_ADDR": "127.0.0.1"})
            assert response.status_code == 200, (path, response.status_code)
            return response.data

        return get

    return {
        "anchor: SELECT 1": select_one,
        "anchor: code-wake errors --since 1d (trace groups, 20)": lambda: store.query_trace_groups(
            EventFilter(errors=True, since=END - DAY, limit=20)
        ),
        "errors, last 24 hours (hourly charts)": page("/?window=24h"),
        "errors, last 7 days (daily charts)": page("/?window=7d"),
        "errors, last 30 days": page("/?window=30d"),
        "errors, 7 days, sorted by last seen": page("/?window=7d&sort=last"),
        "errors, 7 days, app + env": page("/?window=7d&app=shop&env=production"),
        "group, the top one, 7 days": page(group + "?window=7d"),
        "group, the top one, 24 hours": page(group + "?window=24h"),
        "group, all time": page(group + "?window=all"),
        "event, the newest error (with neighbours)": page(f"/event/{newest.id}"),
        "event, an error 15 days back (with neighbours)": page(f"/event/{older.id}"),
        "events, newest page": page("/events"),
        "events, one data term": page("/events?where=customer%3Dc42"),
        "events, exception type, 7 days": page("/events?exc_type=KeyError&window=7d"),
        "events, a page 12 days back": page(f"/events?before={cursor}"),
        "processes": page("/processes"),
        "daily, 30 days": page("/daily?window=30d"),
    }


def run(quick: bool = False) -> list[Row]:
    """Fill (or reuse) each backend's database and time every page against the anchors."""
    size = 50_000 if quick else 1_000_000
    rows: list[Row] = []
    for backend in ("sqlite", "postgresql"):
        with database(backend, size) as (url, filled):
            if url is None:
                rows.append(Row(f"{backend}: no server", 0, "", "skipped"))
                continue
            store = Sql14Store(url)
            app = WebApp(store, clock=lambda: END)
            medians = queries.measure(cases(store, Client(app)), repeats=5 if quick else 9)
            store.close()
        note = "(reused)" if filled == 0 else "(not measured)"
        rows.append(Row(f"{backend}, {size:,} events: filling took", filled, "s", note))
        anchor = medians["anchor: code-wake errors --since 1d (trace groups, 20)"]
        for name, ms in medians.items():
            verdict = "" if name.startswith("anchor") else "ok" if ms <= TARGET_MS else "OVER"
            ratio = "" if name.startswith("anchor") else f"{ms / anchor:6.1f} x errors query, "
            rows.append(Row(f"  {name}", ms, "ms", f"{ratio}target <= {TARGET_MS:.0f} ms {verdict}".strip()))
        worst = max(ms for name, ms in medians.items() if not name.startswith("anchor"))
        rows.append(Row(f"  slowest page ({backend})", worst, "ms", f"{worst / TARGET_MS:.2f} x target"))
    return rows
