"""Analysis queries on a large store: one data term, a time-range page, trace groups.

Target (BENCHMARKS.md): at 1M stored events each returns a page of results
within 5 ms, on every backend. Anchor, in the same run on the same database:
the floor of any newest-first page, ``SELECT id FROM events ORDER BY when_ts
DESC LIMIT 50`` through the same engine. code_wake's queries return whole
records (data, stack trace, process), so they cost a few queries more.

The store is filled fast, without the store's write path (which the
throughput benchmarks measure): events and data rows are inserted in large
batches of the rows the store itself writes, and each batch's counts are
added to the ``event_counts`` summary in its transaction, as the store does
(`code_wake_sql14_store._counts.add_counts`). 1M events take about a minute
on SQLite and a few on the servers; ``--queries-size`` chooses another size,
``--quick`` uses 50,000.

Half the events (``--queries-handler-share``) are what the logging handler
writes: the 8 fields of `code_wake._doors.record_fields` (logger, level,
message, msg_template, module, func, lineno, thread), from 300 call sites of
20 loggers (levels: 89% INFO, 10% WARNING, 1% ERROR; within a level a few
sites log most records), three in ten with one ``extra`` field. The others are
plain events (event kind, customer, n). Customers are fewer with handler
events, so customer=c42 still matches ~100 events per 1M; a plain kind such as
event=order matches half as many as with plain events only. Cases on the
call-site keys follow the plain ones. PostgreSQL and MySQL/MariaDB are measured where
their servers answer (CODE_WAKE_TEST_POSTGRESQL, CODE_WAKE_TEST_MYSQL, else
the local defaults), in a scratch database dropped afterwards; they are
ANALYZEd after the fill, SQLite is not (the store must not depend on
statistics there). ``--queries-explain`` prints each query's plan.

`Filler`, `database`, `cases`, `measure` and `explain` are reused by
``bench.growth``, which grows one database in steps and measures at each.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, NamedTuple, TypeAlias

import sqlalchemy as sa

from code_wake.query import EventFilter
from code_wake.records import DataItem, ProcessRecord
from code_wake.stack_trace import RawFrame, trace_digest
from code_wake.testing.contract import process_info
from code_wake_sql14_store import Sql14Store
from code_wake_sql14_store._call_sites import SiteItems
from code_wake_sql14_store._counts import CountRow, add_counts, upsert_statement
from code_wake_sql14_store.schema import events, events_data, stackframes, stacktraces

from .timing import Row

SETTINGS: dict[str, Any] = {
    "size": 1_000_000,
    "backends": ("sqlite", "postgresql", "mysql"),
    "explain": False,
    "handler_share": 0.5,
}
"""Set by ``python -m bench`` from --queries-size, --queries-backends, --queries-explain and
--queries-handler-share."""


def add_options(parser: argparse.ArgumentParser) -> None:
    """This benchmark's options of ``python -m bench``."""
    parser.add_argument(
        "--queries-size", type=int, default=1_000_000, metavar="N", help="events stored (default 1,000,000)"
    )
    parser.add_argument(
        "--queries-backends",
        default="sqlite,postgresql,mysql",
        metavar="LIST",
        help="comma-separated: sqlite, postgresql, mysql (servers that do not answer are skipped)",
    )
    parser.add_argument("--queries-explain", action="store_true", help="print each query's plan")
    parser.add_argument(
        "--queries-handler-share",
        type=float,
        default=0.5,
        metavar="F",
        help="share of the events a logging handler wrote (default 0.5; 0: the plain events only)",
    )


def configure(args: argparse.Namespace) -> None:
    """Take the options ``python -m bench`` parsed."""
    SETTINGS.update(
        size=args.queries_size,
        backends=tuple(b.strip() for b in args.queries_backends.split(",") if b.strip()),
        explain=args.queries_explain,
        handler_share=args.queries_handler_share,
    )


SERVERS = {
    "postgresql": ("CODE_WAKE_TEST_POSTGRESQL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"),
    "mysql": ("CODE_WAKE_TEST_MYSQL", "mysql+pymysql://root@127.0.0.1:3306/test?charset=utf8mb4"),
}
DAYS = 30
PAGE = 50
TARGET_MS = 5.0
END = 1_767_225_600.0  # 2026-01-01 00:00 UTC: the newest event is just before it
_CHUNK = 20_000

# Who logs: three apps, two versions each (the newer one busier), two environments.
APPS = {"shop": 0.6, "billing": 0.3, "search": 0.1}
VERSIONS = ("1.0", "1.1")
ENVS = {"production": 0.9, "staging": 0.1}
KINDS = {"order": 0.6, "view": 0.25, "fault": 0.1, "report": 0.05}
ERROR_TYPES = ("ValueError", "KeyError", "TimeoutError", "shop.errors.OutOfStock", "RuntimeError")
TRACES = 25

# What a logging handler writes (`code_wake.logging.CodeWakeHandler`): SETTINGS["handler_share"].
LOGGERS = tuple(
    f"app.{name}"
    for name in (
        *("db", "http", "cache", "auth", "orders", "billing", "search", "mail", "queue", "tasks"),
        *("api", "views", "payments", "inventory", "shipping", "users", "reports", "storage", "metrics"),
        "admin",
    )
)
LEVELS = {"INFO": 0.89, "WARNING": 0.10, "ERROR": 0.01}
"""Each level's share of the handler's events (a call site has one level)."""
THREADS = ("MainThread", "Thread-1 (worker)", "Thread-2 (worker)", "ThreadPoolExecutor-0_0", "asyncio_0")
SITES = 300
_VERBS = ("loaded", "saved", "sent", "retried", "skipped", "expired", "queued", "checked", "synced", "locked")
_THINGS = (
    *("order", "user", "session", "invoice", "cart", "token", "page", "batch", "row", "file"),
    *("item", "report", "payment", "message", "job", "index", "key", "ticket", "refund", "shipment"),
    *("quota", "price", "coupon", "stock", "webhook", "export", "import", "backup", "lock", "lease"),
)
_FUNCS = ("handle", "run", "fetch", "save", "load", "check", "send", "process", "retry", "flush")


# -- the fill ----------------------------------------------------------------------------------


def _trace_frames(number: int) -> tuple[RawFrame, ...]:
    return (
        RawFrame("shop/app.py", 10, "<module>", "main()"),
        RawFrame("shop/handlers.py", 100 + number, "handle", f"process_{number}(request)"),
        RawFrame(
            f"shop/module_{number % 7}.py",
            20 + number,
            f"process_{number}",
            f"raise {ERROR_TYPES[number % 5]}()",
        ),
    )


def _store_traces(store: Sql14Store) -> list[int]:
    with store.engine.begin() as conn:
        ids = []
        for number in range(TRACES):
            frames = _trace_frames(number)
            trace_id = conn.execute(
                sa.insert(stacktraces).values(digest=trace_digest(frames))
            ).inserted_primary_key
            assert trace_id is not None
            ids.append(int(trace_id[0]))
            conn.execute(
                sa.insert(stackframes),
                [
                    {
                        "stacktrace_id": ids[-1],
                        "filename": f.filename,
                        "lineno": f.lineno,
                        "src": f.src,
                        "function": f.function,
                    }
                    for f in frames
                ],
            )
    return ids


def _processes(store: Sql14Store) -> list[tuple[ProcessRecord, float]]:
    """Five processes per app, version and environment, each with its share of the events."""
    found = []
    for app, app_share in APPS.items():
        for position, vsn in enumerate(VERSIONS):
            for env, env_share in ENVS.items():
                for n in range(5):
                    info = process_info(
                        app_name=app, app_vsn=vsn, env_name=env, run_ts=END - DAYS * 86_400 - 3600 + n, pid=n
                    )
                    share = app_share * env_share * (0.8 if position else 0.2) / 5
                    found.append((store.insert_process(info), share))
    return found


class Site(NamedTuple):
    """One line of code that logs: what `code_wake._doors.record_fields` gives on every call from it."""

    logger: str
    level: str
    template: str
    module: str
    func: str
    lineno: str
    raises: bool
    """Logs with ``logger.exception``: its events carry a stack trace and an exception."""


def _sites() -> tuple[list[Site], list[float]]:
    """`SITES` call sites and each one's share of the handler's events.

    Within a level, the shares fall off as 1 / rank**1.3 (a few sites log most
    of the records), so that each level's total is its share of `LEVELS`.
    Half the ERROR sites raise (``logger.exception``).
    """
    found: list[Site] = []
    for number in range(SITES):
        level = "ERROR" if number % 30 == 7 else "WARNING" if number % 7 == 3 else "INFO"
        logger = LOGGERS[number % len(LOGGERS)]
        found.append(
            Site(
                logger=logger,
                level=level,
                template=f"{_VERBS[number % 10]} {_THINGS[number // 10]} %s",
                module=f"{logger.rsplit('.', 1)[-1]}_{number // len(LOGGERS) % 3}",
                func=_FUNCS[number // 3 % len(_FUNCS)],
                lineno=str(10 + number * 37 % 900),
                raises=number % 60 == 7,
            )
        )
    weights = []
    for site in found:
        group = [other for other in found if other.level == site.level]
        total = sum(1 / rank**1.3 for rank in range(1, len(group) + 1))
        weights.append(LEVELS[site.level] / (group.index(site) + 1) ** 1.3 / total)
    return found, weights


CALL_SITES, SITE_WEIGHTS = _sites()
COMMON_LOGGER = max(
    LOGGERS,
    key=lambda name: sum(w for s, w in zip(CALL_SITES, SITE_WEIGHTS, strict=True) if s.logger == name),
)
"""The logger of the most records: app.db, ~29% of the handler's (~14% of all events)."""
RARE_SITE = CALL_SITES[max(n for n, s in enumerate(CALL_SITES) if s.level == "ERROR" and not s.raises)]
"""The least-used ERROR site that does not raise: ~0.02% of the handler's events."""


SiteKey: TypeAlias = tuple[Site, str]
"""A line of code and the thread a record comes from: the thread's name is in the stored call site."""


def _store_sites(store: Sql14Store) -> dict[SiteKey, int]:
    """Each call site (from each thread) stored once, by the store's own code, as its first record would."""
    keys = [(site, thread) for site in CALL_SITES for thread in THREADS]
    items = [store._sites.split(handler_data(site, 0, thread, None))[0] for site, thread in keys]
    ids = store._sites.ids_for(items)
    return {key: site_id for key, site_id in zip(keys, ids, strict=True) if site_id is not None}


def handler_data(site: Site, value: int, thread: str, extra: tuple[str, str] | None) -> list[tuple[str, str]]:
    """A handler event's data: `code_wake._doors.record_fields` in its order, then its `extra` field.

    The one place that says how a handler's record is stored.
    """
    data = [
        ("logger", site.logger),
        ("level", site.level),
        ("message", site.template % value),
        ("msg_template", site.template),
        ("module", site.module),
        ("func", site.func),
        ("lineno", site.lineno),
        ("thread", thread),
    ]
    if extra is not None:
        data.append(extra)
    return data


def _customers(handler_share: float) -> int:
    """Customers of the plain events and of a tenth of the handler's: customer=c42 matches ~100 per 1M.

    10,000 without handler events, as before they were filled; 5,500 at half.
    """
    return max(1, round(10_000 * (1 - 0.9 * handler_share)))


def _extra(rng: random.Random, customers: int) -> tuple[str, str] | None:
    """The ``extra`` field of a handler's record: three in ten carry one."""
    pick = rng.random()
    if pick < 0.1:
        return ("customer", f"c{rng.randrange(customers)}")
    if pick < 0.2:
        return ("request_id", f"{rng.getrandbits(48):012x}")
    if pick < 0.3:
        return ("duration_ms", str(rng.randrange(5000)))
    return None


def _event_rows(
    first_id: int,
    position: int,
    count: int,
    total: int,
    owners: list[ProcessRecord],
    weights: list[float],
    traces: list[int],
    rng: random.Random,
    handler_share: float,
    site_ids: dict[SiteKey, int],
    split_data: Callable[[list[tuple[str, str]]], tuple[SiteItems, tuple[DataItem, ...]]],
) -> Iterator[tuple[dict[str, Any], list[dict[str, Any]]]]:
    """Events `position` to `position + count` of `total` spread evenly over the 30 days.

    A share `handler_share` of them are a logging handler's records (`handler_data`), the
    others plain events of a `KINDS` kind. A handler record refers to its call site (stored
    once, `site_ids`) and has rows of its own for the rest of its data, as the store's own
    `split_data` divides them.
    """
    step = DAYS * 86_400 / total
    customers = _customers(handler_share)
    picked = rng.choices(owners, weights, k=count)
    kinds = rng.choices(list(KINDS), list(KINDS.values()), k=count)
    sites = rng.choices(CALL_SITES, SITE_WEIGHTS, k=count)
    for offset in range(count):
        at = position + offset
        event_id = first_id + at
        owner, kind = picked[offset], kinds[offset]
        when = END - DAYS * 86_400 + at * step + rng.random() * step
        site = sites[offset] if rng.random() < handler_share else None
        raises = kind == "fault" if site is None else site.raises
        trace = traces[rng.randrange(TRACES)] if raises else None
        thread = "" if site is None else rng.choice(THREADS)
        row = {
            "id": event_id,
            "when_ts": when,
            "process_id": owner.id,
            "stacktrace_id": trace,
            "exc_type": None if trace is None else ERROR_TYPES[(trace - traces[0]) % 5],
            "exc_message": None if trace is None else f"failed for request {event_id - 1}",
            "app_id": owner.app.id,
            "app_vsn_id": owner.app_vsn.id if owner.app_vsn else None,
            "environment_id": owner.environment.id if owner.environment else None,
            "call_site_id": None if site is None else site_ids[site, thread],
        }
        if site is None:
            data = [("event", kind), ("customer", f"c{rng.randrange(customers)}"), ("n", str(event_id - 1))]
        else:
            _, data = split_data(handler_data(site, event_id - 1, thread, _extra(rng, customers)))
        yield row, [{"event_id": event_id, "key": k, "val": v, "when_ts": when} for k, v in data]


def _counted(row: dict[str, Any]) -> CountRow:
    """What the ``event_counts`` summary counts of an event row."""
    return (
        row["id"],
        row["when_ts"],
        row["app_id"],
        row["app_vsn_id"],
        row["environment_id"],
        row["stacktrace_id"],
        row["exc_type"],
    )


class Filler:
    """Puts events into a store fast, as the store writes them, in large batches.

    Made once per store: registers the processes (the store creates its
    schema) and stack traces the events belong to. Each `add` spreads its
    events over the same 30 days, so a store grown by several calls gets
    denser, as a busier application's would; ids follow the highest stored,
    whoever wrote it. The ``event_counts`` summary gets each batch's counts
    in the batch's transaction, as the store's write path adds them.
    A share `handler_share` of the events (default: ``SETTINGS["handler_share"]``)
    are a logging handler's records, from `SITES` call sites (`handler_data`).
    """

    def __init__(self, store: Sql14Store, seed: int = 5, handler_share: float | None = None) -> None:
        self.store = store
        self.handler_share = float(SETTINGS["handler_share"]) if handler_share is None else handler_share
        self._rng = random.Random(seed)
        owners_shares = _processes(store)  # first: the store creates its schema
        self._traces = _store_traces(store)
        self._owners = [o for o, _ in owners_shares]
        self._weights = [w for _, w in owners_shares]
        self._site_ids = _store_sites(store)

    def add(self, count: int) -> None:
        """`count` more events; then the servers are ANALYZEd."""
        engine = self.store.engine
        with engine.connect() as conn:
            first_id = int(conn.execute(sa.select(sa.func.max(events.c.id))).scalar() or 0) + 1
        upsert = upsert_statement(engine.dialect)
        for start in range(0, count, _CHUNK):
            batch = list(
                _event_rows(
                    first_id,
                    start,
                    min(_CHUNK, count - start),
                    count,
                    self._owners,
                    self._weights,
                    self._traces,
                    self._rng,
                    self.handler_share,
                    self._site_ids,
                    self.store._sites.split,
                )
            )
            rows = [row for row, _ in batch]
            with engine.begin() as conn:
                _insert(conn, rows, [d for _, data in batch for d in data])
                add_counts(conn, upsert, map(_counted, rows))
        if engine.dialect.name == "postgresql":
            # COPY gave the ids: move the sequence past them, for the store's own inserts.
            with engine.begin() as conn:
                conn.exec_driver_sql(
                    "SELECT setval(pg_get_serial_sequence('events', 'id'), max(id)) FROM events"
                )
        _analyze(engine)


def fill(store: Sql14Store, size: int, seed: int = 5) -> None:
    """`size` events over 30 days, as the store writes them, in large batches."""
    Filler(store, seed).add(size)


def _insert(conn: sa.Connection, rows: list[dict[str, Any]], data: list[dict[str, Any]]) -> None:
    """Insert events and data rows: executemany, or COPY on PostgreSQL (ten times faster there)."""
    if conn.dialect.name != "postgresql":
        conn.execute(sa.insert(events), rows)
        conn.execute(sa.insert(events_data), data)
        return
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    for table, chunk in ((events, rows), (events_data, data)):
        names = list(chunk[0])
        with cursor.copy(f"COPY {table.name} ({', '.join(names)}) FROM STDIN") as copy:
            for row in chunk:
                copy.write_row([row[name] for name in names])


def _analyze(engine: sa.Engine) -> None:
    name = engine.dialect.name
    if name == "sqlite":
        return
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        if name == "postgresql":
            conn.exec_driver_sql("VACUUM ANALYZE")
            # Write the fill's dirty pages out now, not while the queries are timed.
            conn.exec_driver_sql("CHECKPOINT")
        else:
            for table in ("events", "events_data", "event_counts", "processes"):
                conn.exec_driver_sql(f"ANALYZE TABLE {table}")


# -- databases -------------------------------------------------------------------------------------


@contextmanager
def database(backend: str) -> Iterator[str | None]:
    """The URL of an empty database on `backend` (None: no server answers), removed afterwards."""
    if backend == "sqlite":
        with tempfile.TemporaryDirectory() as tmp:
            yield f"sqlite:///{tmp}/queries.sqlite"
        return
    env, default = SERVERS[backend]
    admin = sa.make_url(os.environ.get(env) or default)
    engine = sa.create_engine(admin, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 5})
    name = f"cw_bench_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql(f"CREATE DATABASE {name}")
    except sa.exc.SQLAlchemyError:
        engine.dispose()
        yield None
        return
    try:
        yield admin.set(database=name).render_as_string(hide_password=False)
    finally:
        with engine.connect() as conn:
            conn.exec_driver_sql(f"DROP DATABASE {name}")
        engine.dispose()


# -- the queries -----------------------------------------------------------------------------------


def cases(store: Sql14Store) -> dict[str, Callable[[], object]]:
    """The queries measured, each returning one page; the first is the anchor."""
    middle = END - DAYS * 86_400 / 2 + 1234.5
    day_ago = END - 86_400 + 321.5

    def anchor() -> object:
        with store.engine.connect() as conn:
            return conn.execute(sa.select(events.c.id).order_by(events.c.when_ts.desc()).limit(PAGE)).all()

    def events_page(**kwargs: Any) -> Callable[[], object]:
        return lambda: list(store.query_events(EventFilter(limit=PAGE, **kwargs)))

    return {
        "anchor: raw SELECT id ... ORDER BY when_ts DESC LIMIT 50": anchor,
        "events, one data term (rare: customer=c42)": events_page(where={"customer": "c42"}),
        "events, one data term (common: event=order)": events_page(where={"event": "order"}),
        "events, two data terms (order of customer c42)": events_page(
            where={"customer": "c42", "event": "order"}
        ),
        "events, time-range page (one hour, 15 days back)": events_page(since=middle, until=middle + 3600),
        "events, app + env + exception type": events_page(app="search", env="staging", exc_type="KeyError"),
        "trace groups, all 30 days": lambda: store.query_trace_groups(EventFilter(errors=True, limit=20)),
        "trace groups, app/version/env, since 1 day": lambda: store.query_trace_groups(
            EventFilter(app="shop", vsn="1.1", env="production", since=day_ago, errors=True, limit=20)
        ),
        "daily counts, all 30 days": store.query_daily_counts,
        # On the call-site keys of the handler's events (`record_fields`).
        "events, call-site term (rare: level=ERROR)": events_page(where={"level": "ERROR"}),
        f"events, call-site term (common: logger={COMMON_LOGGER})": events_page(
            where={"logger": COMMON_LOGGER}
        ),
        "events, call-site term (rare: msg_template of one site)": events_page(
            where={"msg_template": RARE_SITE.template}
        ),
        "events, call-site + own term (level=ERROR, customer=c42)": events_page(
            where={"level": "ERROR", "customer": "c42"}
        ),
        f"events, call-site + own term (logger={COMMON_LOGGER}, customer=c42)": events_page(
            where={"logger": COMMON_LOGGER, "customer": "c42"}
        ),
        "events, call-site + own term (level=WARNING, thread=MainThread)": events_page(
            where={"level": "WARNING", "thread": "MainThread"}
        ),
        "get_events_by_data, one site (rare msg_template, all)": lambda: store.get_events_by_data(
            [("msg_template", RARE_SITE.template)]
        ),
        "trace groups, level=ERROR, all 30 days": lambda: store.query_trace_groups(
            EventFilter(where={"level": "ERROR"}, errors=True, limit=20)
        ),
        "daily counts, level=ERROR, all 30 days": lambda: store.query_daily_counts(
            EventFilter(where={"level": "ERROR"})
        ),
    }


def returned(case: Callable[[], object]) -> int:
    """How many records (events, groups, ids) one call returns."""
    found = case()
    return len(found) if isinstance(found, list | tuple) else 0


def measure(timed: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Milliseconds per call, medians of `repeats` rounds, the cases interleaved in each round."""
    for _ in range(3):
        for case in timed.values():
            case()  # warm: the schema check, caches, the database's pages, prepared statements
    samples: dict[str, list[float]] = {name: [] for name in timed}
    for _ in range(repeats):
        for name, case in timed.items():
            start = time.perf_counter()
            case()
            samples[name].append((time.perf_counter() - start) * 1000)
    return {name: statistics.median(values) for name, values in samples.items()}


def explain(store: Sql14Store, timed: dict[str, Callable[[], object]]) -> None:
    """Print the plan of every statement each case runs."""
    captured: list[tuple[str, Any]] = []

    def capture(
        conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool
    ) -> None:
        captured.append((statement, parameters))

    prefix = "EXPLAIN QUERY PLAN " if store.engine.dialect.name == "sqlite" else "EXPLAIN "
    for name, case in timed.items():
        sa.event.listen(store.engine, "before_cursor_execute", capture)
        try:
            case()
        finally:
            sa.event.remove(store.engine, "before_cursor_execute", capture)
        print(f"\n-- {store.engine.dialect.name}: {name}")
        statements, captured[:] = list(captured), []
        for statement, parameters in statements:
            if not statement.lstrip().upper().startswith("SELECT") or "code_wake_schema" in statement:
                continue
            with store.engine.connect() as conn:
                plan = conn.exec_driver_sql(prefix + statement, parameters).all()
            print("   ", " ".join(statement.split())[:160])
            for row in plan:
                print("      ", " | ".join(str(v) for v in row if v is not None))


def run(quick: bool = False) -> list[Row]:
    """Fill each backend to the configured size and measure the queries against the anchor."""
    size = 50_000 if quick else int(SETTINGS["size"])
    rows: list[Row] = []
    for backend in SETTINGS["backends"]:
        with database(backend) as url:
            if url is None:
                rows.append(Row(f"{backend}: no server", 0, "", "skipped"))
                continue
            store = Sql14Store(url)
            started = time.perf_counter()
            fill(store, size)
            filled = time.perf_counter() - started
            measured = cases(store)
            if SETTINGS["explain"]:
                explain(store, measured)
            medians = measure(measured, repeats=7 if quick else 21)
            anchor = next(iter(medians.values()))
            rows.append(Row(f"{backend}, {size:,} events: filling took", filled, "s", "(not measured)"))
            for name, ms in medians.items():
                note = (
                    ""
                    if name.startswith("anchor")
                    else f"{ms / anchor:5.1f} x anchor, target <= {TARGET_MS:.0f} ms"
                )
                found = f"returns {returned(measured[name])}"
                rows.append(Row(f"  {name}", ms, "ms", f"{note} | {found}" if note else found))
            store.close()
    return rows
