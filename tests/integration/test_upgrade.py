"""Upgrading pycodewake 0.2.2 databases in place, as users will: many processes opening one at
the same instant, on SQLite, PostgreSQL and MySQL/MariaDB; big databases; an upgrade stopped
midway; and a database newer than this code, which must be refused untouched.

The old databases come from old_layout.py: pycodewake's own DDL (translated for the servers)
holding the rows of the file pycodewake 0.2.2 wrote, or a generated history in its format.
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import json
import os
import shutil
import sqlite3
import struct
import subprocess
import sys
import textwrap
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from code_wake import StoreError
from code_wake.cli import main as cli_main
from code_wake.query import EventFilter
from code_wake.records import ProcessInfo
from code_wake_sql14_store import Sql14Store, _migrate
from code_wake_sql14_store.schema import (
    MYSQL_DIALECTS,
    SCHEMA_VERSION,
    app_vsns,
    apps,
    environments,
    event_counts,
    events,
    events_data,
    metadata,
    processes,
    schema_version,
    stacktraces,
)

from .helpers import REPO
from .old_layout import (
    COMPAT_DATABASE,
    OldHistory,
    build_old_sqlite,
    copy_rows,
    create_old_layout,
    fill_old_history,
    old_table,
    old_traces,
    read_rows,
)

PROCESSES = 6
PER_PROCESS = 5
OLD_EVENTS, OLD_DATA_ROWS = 27, 66
OLD_FAULTS = [26, 25, 24, 17, 16, 15, 8, 7, 6]
"""The compat file's ``event=fault`` events, newest first; all share stack trace 1."""
OLD_BILLING_ORDERS = [14, 13, 12, 11, 10]
FAULTS_ONLY = ["--where", "event=fault", "--limit", "0"]
FAULT_FRAMES = old_traces(1)[0]
LARGE_EVENTS = int(os.environ.get("CODE_WAKE_TEST_UPGRADE_EVENTS") or 20_000)
"""Events of the generated SQLite history (CODE_WAKE_TEST_UPGRADE_EVENTS for a bigger manual run)."""

BACKENDS = [
    pytest.param("sqlite"),
    pytest.param("postgresql", marks=pytest.mark.postgresql),
    pytest.param("mysql", marks=pytest.mark.mysql),
]


# -- old databases ------------------------------------------------------------------------------


def compat_copy(tmp_path: Path, name: str = "pycodewake.sqlite") -> Path:
    """A copy of the file pycodewake 0.2.2 wrote (the original is only ever copied)."""
    copy = tmp_path / name
    shutil.copyfile(COMPAT_DATABASE, copy)
    return copy


def old_database(request: pytest.FixtureRequest, backend: str, tmp_path: Path) -> str:
    """The URL of a pycodewake 0.2.2 database holding the compat file's rows, on `backend`."""
    copy = compat_copy(tmp_path)
    if backend == "sqlite":
        return f"sqlite:///{copy}"
    url = str(request.getfixturevalue(f"{backend}_url"))
    with engine_for(url) as engine, engine.begin() as conn:
        create_old_layout(conn)
        copy_rows(copy, conn)
    return url


@pytest.fixture(scope="module", autouse=True)
def _original_untouched() -> Iterator[None]:
    """The file pycodewake wrote is the same after these tests: only copies are opened."""
    before = hashlib.sha256(COMPAT_DATABASE.read_bytes()).digest()
    yield
    assert hashlib.sha256(COMPAT_DATABASE.read_bytes()).digest() == before


@contextlib.contextmanager
def engine_for(url: str) -> Iterator[sa.Engine]:
    """An engine for `url`, disposed of at the end."""
    engine = sa.create_engine(url)
    try:
        yield engine
    finally:
        engine.dispose()


def select(url: str, query: sa.Executable) -> list[tuple[Any, ...]]:
    """The rows of `query` on `url`."""
    with engine_for(url) as engine, engine.connect() as conn:
        return [tuple(row) for row in conn.execute(query)]


def old_rows(url: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of pycodewake's tables and columns on `url`."""
    with engine_for(url) as engine, engine.connect() as conn:
        return read_rows(conn)


# -- what an upgraded database must be ------------------------------------------------------------


def schema_problems(url: str) -> list[str]:
    """How the database's tables and indexes differ from ours: nothing missing, doubled or extra."""
    problems: list[str] = []
    with engine_for(url) as engine, engine.connect() as conn:
        inspector = sa.inspect(conn)
        for table in metadata.sorted_tables:
            names = [c["name"] for c in inspector.get_columns(table.name)]
            if sorted(names) != sorted(table.c.keys()):
                problems.append(f"{table.name} has columns {names}")
            indexes = table_indexes(conn, table.name)
            expected = {str(ix.name) for ix in table.indexes}
            if not expected <= set(indexes):
                problems.append(f"{table.name} lacks indexes {expected - set(indexes)}")
            foreign = {c.name for c in table.c if c.foreign_keys}
            for name, columns in indexes.items():
                # MySQL indexes each foreign key column by itself unless another index covers it.
                mysql_own = conn.dialect.name in MYSQL_DIALECTS and columns == (name,) and name in foreign
                if name not in expected and not mysql_own:
                    problems.append(f"{table.name} has an index {name} {columns} not ours")
            doubled = [cols for cols, n in Counter(indexes.values()).items() if n > 1 and cols]
            if doubled:
                problems.append(f"{table.name} has indexes doubled over {doubled}")
    return problems


def table_indexes(conn: sa.Connection, table: str) -> dict[str, tuple[str, ...]]:
    """The table's non-constraint indexes: name -> columns (empty on SQLite, which cannot reflect one)."""
    if conn.dialect.name == "sqlite":
        query = "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = ? AND sql IS NOT NULL"
        return {str(name): () for name in conn.exec_driver_sql(query, (table,)).scalars()}
    inspector = sa.inspect(conn)
    ours = {ix.name for ix in metadata.tables[table].indexes} if table in metadata.tables else set()
    # MySQL reports a unique index as a unique constraint too: only others are left out.
    constraints = {uc["name"] for uc in inspector.get_unique_constraints(table)} - ours
    return {
        str(ix["name"]): tuple(str(c) for c in ix["column_names"])
        for ix in inspector.get_indexes(table)
        if ix["name"] not in constraints
    }


def named_facts(url: str) -> dict[str, Any]:
    """The upgraded database by names, not ids: comparable across backends and runs."""
    owner = apps.alias("owner")

    def names(table: sa.Table, *lead: sa.ColumnElement[Any]) -> sa.Select[Any]:
        """`lead`, then the app, version, version's owner and environment `table` names by id."""
        return sa.select(*lead, apps.c.name, app_vsns.c.vsn, owner.c.name, environments.c.name).select_from(
            table.outerjoin(apps, apps.c.id == table.c.app_id)
            .outerjoin(app_vsns, app_vsns.c.id == table.c.app_vsn_id)
            .outerjoin(owner, owner.c.id == app_vsns.c.app_id)
            .outerjoin(environments, environments.c.id == table.c.environment_id)
        )

    c = event_counts.c
    counts = names(event_counts, c.stacktrace_id, c.exc_type, c.n).where(c.span == 0)
    return {
        "version": select(url, sa.select(schema_version.c.version)),
        "processes": select(url, names(processes, processes.c.id).order_by(processes.c.id)),
        "events": select(url, names(events, events.c.id).order_by(events.c.id)),
        "versions": sorted(select(url, sa.select(owner.c.name, app_vsns.c.vsn).join(owner))),
        "all time": sorted(select(url, counts), key=repr),
        "data copies": select(
            url,
            sa.select(sa.func.count())
            .select_from(events_data.join(events, events.c.id == events_data.c.event_id))
            .where(sa.or_(events_data.c.when_ts.is_(None), events_data.c.when_ts != events.c.when_ts)),
        ),
        "schema": schema_problems(url),
    }


def assert_compat_upgraded(url: str, before: dict[str, list[tuple[Any, ...]]]) -> None:
    """The compat rows, upgraded: intact, versions repaired, copies and counts right, schema ours."""
    after = old_rows(url)
    for table, rows in before.items():
        kept = [row for row in after[table] if row[0] <= rows[-1][0]]
        if table == "processes":  # all but their version, which the repair may change
            assert [row[:-1] for row in kept] == [row[:-1] for row in rows], "old processes changed"
        else:
            assert kept == rows, f"old rows of {table} changed"
    facts = named_facts(url)
    assert facts["version"] == [(SCHEMA_VERSION,)]
    assert facts["schema"] == []
    assert facts["data copies"] == [(0,)]
    for process_id, app, vsn, vsn_owner, _env in facts["processes"]:
        assert vsn is None or vsn_owner == app, f"process {process_id} of {app} has {vsn_owner}'s {vsn}"
    assert ("billing", "1.0") in facts["versions"]
    assert len(set(facts["versions"])) == len(facts["versions"])
    events_now = facts["events"]
    assert [e[1:] for e in events_now] == [
        next(p[1:] for p in facts["processes"] if p[0] == e[1]) for e in select_events(url)
    ]
    all_time = Counter[tuple[Any, ...]]()
    for trace, exc_type, n, app, vsn, vsn_owner, env in facts["all time"]:
        assert exc_type == ""
        all_time[app, vsn, vsn_owner, env, trace or None] += n
    expected = Counter(
        (app, vsn, vsn_owner, env, trace)
        for (_, app, vsn, vsn_owner, env), (_, _, trace) in zip(events_now, select_events(url), strict=True)
    )
    assert all_time == expected


def select_events(url: str) -> list[tuple[Any, ...]]:
    """(id, process_id, stacktrace_id) of every event, in id order."""
    return select(
        url, sa.select(events.c.id, events.c.process_id, events.c.stacktrace_id).order_by(events.c.id)
    )


def assert_old_events_read_back(url: str, cli: Callable[[list[str]], tuple[int, str, str]]) -> None:
    """The compat file's events through the API and the CLI, as pycodewake recorded them."""
    store = Sql14Store(url)
    try:
        faults = store.get_events_by_data([("event", "fault")])
        assert [e.id for e in faults] == sorted(OLD_FAULTS)
        assert {(e.stacktrace and e.stacktrace.id) for e in faults} == {1}
        assert faults[0].stacktrace is not None
        frames = [(f.filename, f.lineno, f.src) for f in reversed(faults[0].stacktrace.stackframes)]
        assert frames == FAULT_FRAMES
        assert faults[0].data_dict() == {"event": "fault", "doing": "reserve"}
        orders = list(store.query_events(EventFilter(app="billing", where={"event": "order"})))
        assert [e.id for e in orders] == OLD_BILLING_ORDERS
        for event in orders:
            assert event.process.app_vsn is not None
            assert (event.process.app_vsn.vsn, event.process.app_vsn.app.name) == ("1.0", "billing")
        by_version = store.query_events(EventFilter(app="billing", vsn="1.0"))
        assert [e.id for e in by_version if e.id <= OLD_EVENTS] == list(range(18, 9, -1))
    finally:
        store.close()
    status, out, err = cli(["events", "--store", url, "--json", *FAULTS_ONLY])
    assert (status, err) == (0, "")
    printed = [json.loads(line) for line in out.splitlines()]
    assert [row["id"] for row in printed] == OLD_FAULTS
    assert [(row["app"], row["vsn"], row["stacktrace_id"]) for row in printed[3:6]] == [
        ("billing", "1.0", 1)
    ] * 3


def cli_in_a_process(argv: list[str]) -> tuple[int, str, str]:
    """``python -m code_wake ARGV``: exit status, stdout, stderr."""
    done = subprocess.run(
        [sys.executable, "-m", "code_wake", *argv],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    return done.returncode, done.stdout, done.stderr


def cli_here(capsys: pytest.CaptureFixture[str]) -> Callable[[list[str]], tuple[int, str, str]]:
    """The CLI's entry point in this process (cheaper than a new interpreter): status, stdout, stderr."""

    def run(argv: list[str]) -> tuple[int, str, str]:
        capsys.readouterr()
        status = cli_main(argv)
        out, err = capsys.readouterr()
        return status, out, err

    return run


# -- 1 and 2: many processes upgrading one database at once -----------------------------------------

RACER = """
    import atexit
    import dataclasses
    import json
    import os
    import sys
    import time

    url, worker, gate, per = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    fault = json.loads(sys.argv[5])
    report = {"worker": worker, "ddl": [], "locks": 0, "logged": {}, "traces": []}
    # Registered before code_wake is imported, so run after its exit flush (atexit is LIFO).
    atexit.register(lambda: print("RESULT " + json.dumps(report), flush=True))

    import sqlalchemy as sa

    import code_wake
    from code_wake_sql14_store import Sql14QueueStore, Sql14Store

    LOCKS = ("begin immediate", "pg_advisory_xact_lock", "get_lock(")


    @sa.event.listens_for(sa.Engine, "before_cursor_execute")
    def watch(conn, cursor, statement, parameters, context, executemany):
        text = statement.strip().lower()
        if any(lock in text for lock in LOCKS):
            report["locks"] += 1
            print("lock", flush=True)
        elif text.startswith(("create", "alter", "drop")):
            report["ddl"].append(" ".join(text.split()[:4]))


    sa.create_engine(url).dispose()  # the driver imported before the release
    print("ready", flush=True)
    assert os.read(gate, 1) == b"1"  # one byte each, all written at once: the release

    if worker % 2 == 0:  # the store itself, synchronously
        store = Sql14Store(url)
        info = code_wake.ProcessInfo(os.getpid(), "racer", "localhost", "racer.py", time.time(), "shop")
        process = store.insert_process(dataclasses.replace(info, app_vsn="1.0", env_name="production"))
        for n in range(per):
            data = {"event": "race", "worker": str(worker), "n": str(n)}
            event = store.insert_event(process, data, sync=True)
            report["logged"][event.id] = event.when_ts
        data = {"event": "race fault", "worker": str(worker)}
        event = store.insert_event(process, data, st_data=fault, sync=True)
        report["logged"][event.id] = event.when_ts
        report["traces"].append(event.stacktrace.id)
        store.close()
    else:  # a program's Process through the queue, flushed at exit
        store = Sql14QueueStore(url)
        proc = code_wake.Process(store=store, app_name="billing", app_vsn="1.0", env_name="production")
        for n in range(per):
            proc.log({"event": "race", "worker": str(worker), "n": str(n)})
"""


@contextlib.contextmanager
def schema_lock_held(url: str) -> Iterator[None]:
    """Hold the lock code_wake's upgrade takes (_migrate._schema_lock), from another connection."""
    if url.startswith("sqlite"):
        path = sa.make_url(url).database
        assert path is not None
        db = sqlite3.connect(path, isolation_level=None)
        try:
            # WAL first, as the first code_wake connection makes it: switching needs the whole
            # file, and would wait for this lock before the upgrade's lock is ever asked for.
            db.execute("PRAGMA journal_mode = WAL")
            db.execute("BEGIN IMMEDIATE")
            yield
            db.execute("ROLLBACK")
        finally:
            db.close()
        return
    with engine_for(url) as engine, engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(sa.select(sa.func.pg_advisory_lock(_migrate._PG_LOCK_KEY)))
            yield
            conn.execute(sa.select(sa.func.pg_advisory_unlock(_migrate._PG_LOCK_KEY)))
        else:
            name = sa.func.concat("code_wake_schema:", sa.func.database())
            assert conn.execute(sa.select(sa.func.get_lock(name, 0))).scalar() == 1
            yield
            conn.execute(sa.select(sa.func.release_lock(name)))


def race(url: str, tmp_path: Path, hold: bool) -> list[dict[str, Any]]:
    """Start PROCESSES racers on `url`, release them at once, return their reports.

    With `hold`, the schema lock is held until every racer has asked for it: all of them
    found the database old, so all of them contend for the upgrade.
    """
    script = tmp_path / "racer.py"
    script.write_text(textwrap.dedent(RACER))
    gate_read, gate_write = os.pipe()
    children: list[subprocess.Popen[str]] = []
    watchdog = threading.Timer(300, lambda: [child.kill() for child in children])  # type: ignore[func-returns-value]
    watchdog.start()
    try:
        for worker in range(PROCESSES):
            with (tmp_path / f"racer{worker}.err").open("w") as errors:
                children.append(
                    subprocess.Popen(
                        [
                            sys.executable,
                            str(script),
                            url,
                            str(worker),
                            str(gate_read),
                            str(PER_PROCESS),
                            json.dumps(FAULT_FRAMES),
                        ],
                        cwd=tmp_path,
                        env={**os.environ, "PYTHONPATH": str(REPO)},
                        stdout=subprocess.PIPE,
                        stderr=errors,
                        text=True,
                        pass_fds=(gate_read,),
                    )
                )
        for worker, child in enumerate(children):
            assert child.stdout is not None
            assert child.stdout.readline() == "ready\n", (tmp_path / f"racer{worker}.err").read_text()
        with schema_lock_held(url) if hold else contextlib.nullcontext():
            os.write(gate_write, b"1" * PROCESSES)
            if hold:
                for worker, child in enumerate(children):
                    assert child.stdout is not None
                    line = child.stdout.readline()
                    assert line == "lock\n", f"{line!r} {(tmp_path / f'racer{worker}.err').read_text()}"
        reports = []
        for worker, child in enumerate(children):
            out, _ = child.communicate(timeout=240)
            errors_text = (tmp_path / f"racer{worker}.err").read_text()
            assert (child.returncode, errors_text) == (0, ""), f"racer {worker}:\n{out}\n{errors_text}"
            (result,) = [line for line in out.splitlines() if line.startswith("RESULT ")]
            reports.append(json.loads(result.removeprefix("RESULT ")))
        return reports
    finally:
        watchdog.cancel()
        os.close(gate_read)
        os.close(gate_write)
        for child in children:
            if child.poll() is None:
                child.kill()
                child.wait()


def assert_raced_once(url: str, reports: list[dict[str, Any]], hold: bool) -> None:
    """One racer upgraded; every event of every racer stored once, with its time and trace."""
    upgraders = [r["worker"] for r in reports if r["ddl"]]
    assert len(upgraders) == 1, [(r["worker"], r["ddl"]) for r in reports]
    if hold:
        assert all(r["locks"] >= 1 for r in reports)
    new = select(
        url,
        sa.select(events_data.c.event_id, events_data.c.key, events_data.c.val).where(
            events_data.c.event_id > OLD_EVENTS
        ),
    )
    data: dict[int, dict[str, str]] = {}
    for event_id, key, val in new:
        data.setdefault(event_id, {})[key] = val
    stored = Counter((d["event"], d["worker"], d.get("n")) for d in data.values())
    expected = Counter[tuple[str, str, str | None]]()
    expected.update(("race", str(w), str(n)) for w in range(PROCESSES) for n in range(PER_PROCESS))
    expected.update(("race fault", str(w), None) for w in range(0, PROCESSES, 2))
    assert stored == expected
    times = dict(select(url, sa.select(events.c.id, events.c.when_ts).where(events.c.id > OLD_EVENTS)))
    assert len(times) == sum(expected.values())
    logged = {int(event_id): when_ts for r in reports for event_id, when_ts in r["logged"].items()}
    assert {event_id: times[event_id] for event_id in logged} == logged
    assert {trace for r in reports for trace in r["traces"]} == {1}
    assert select(url, sa.select(sa.func.count()).select_from(stacktraces)) == [(2,)]


@pytest.mark.parametrize(
    ("backend", "hold"),
    [
        pytest.param("sqlite", False, id="sqlite-as-copied"),
        pytest.param("sqlite", True, id="sqlite-all-contend"),
        pytest.param("postgresql", True, id="postgresql-all-contend", marks=pytest.mark.postgresql),
        pytest.param("mysql", True, id="mysql-all-contend", marks=pytest.mark.mysql),
    ],
)
def test_processes_upgrade_at_once(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    backend: str,
    hold: bool,
) -> None:
    """Six programs open one old database in the same instant: it is upgraded once, all their
    events are stored once, and the old events read back through the API and the CLI."""
    url = old_database(request, backend, tmp_path)
    before = old_rows(url)
    assert (len(before["events"]), len(before["events_data"])) == (OLD_EVENTS, OLD_DATA_ROWS)
    reports = race(url, tmp_path, hold)
    assert_raced_once(url, reports, hold)
    assert_compat_upgraded(url, before)
    # The installed command once; elsewhere its entry point, without another interpreter to start.
    assert_old_events_read_back(url, cli_in_a_process if not hold else cli_here(capsys))


@pytest.mark.parametrize("backend", [p for p in BACKENDS if p.values != ("sqlite",)])
def test_the_old_layout_on_servers_is_pycodewakes(
    request: pytest.FixtureRequest, tmp_path: Path, backend: str
) -> None:
    """The translated layout has the DDL's tables, columns, keys and uniques, and no index of its own."""
    url = old_database(request, backend, tmp_path)
    with engine_for(f"sqlite:///{compat_copy(tmp_path, 'ref.sqlite')}") as ref, engine_for(url) as server:
        reference, actual = sa.inspect(ref), sa.inspect(server)
        assert sorted(actual.get_table_names()) == sorted(reference.get_table_names())
        for table in reference.get_table_names():
            columns = [(c["name"], c["nullable"]) for c in actual.get_columns(table)]
            assert columns == [(c["name"], c["nullable"]) for c in reference.get_columns(table)]
            assert actual.get_pk_constraint(table)["constrained_columns"] == ["id"]
            keys = {
                (tuple(fk["constrained_columns"]), fk["referred_table"])
                for fk in actual.get_foreign_keys(table)
            }
            assert keys == {
                (tuple(fk["constrained_columns"]), fk["referred_table"])
                for fk in reference.get_foreign_keys(table)
            }
            uniques = [uc["column_names"] for uc in actual.get_unique_constraints(table)]
            assert uniques == [uc["column_names"] for uc in reference.get_unique_constraints(table)]
            foreign = {c for fk in actual.get_foreign_keys(table) for c in fk["constrained_columns"]}
            for index in actual.get_indexes(table):
                if index["name"] not in {uc["name"] for uc in actual.get_unique_constraints(table)}:
                    # Only MySQL's own index per foreign key column.
                    assert len(index["column_names"]) == 1 and index["column_names"][0] in foreign, index
    expected = old_rows(f"sqlite:///{compat_copy(tmp_path, 'ref2.sqlite')}")
    if backend == "mysql":  # its FLOAT is single precision
        for table, floats in (("processes", 1), ("events", 1)):
            expected[table] = [
                (*row[:floats], single(row[floats]), *row[floats + 1 :]) for row in expected[table]
            ]
    assert old_rows(url) == expected


def single(value: float) -> float:
    """`value` rounded to single precision, as MySQL's FLOAT keeps it."""
    return float(struct.unpack("f", struct.pack("f", value))[0])


# -- 3: a large old database --------------------------------------------------------------------


def large_database(request: pytest.FixtureRequest, backend: str, tmp_path: Path) -> tuple[str, OldHistory]:
    """A generated pycodewake history: LARGE_EVENTS on SQLite (exact DDL), 2,000 on the servers."""
    if backend == "sqlite":
        path = tmp_path / "large.sqlite"
        return f"sqlite:///{path}", build_old_sqlite(path, LARGE_EVENTS, traces=300)
    url = str(request.getfixturevalue(f"{backend}_url"))
    with engine_for(url) as engine, engine.begin() as conn:
        create_old_layout(conn)
        return url, fill_old_history(conn, 2_000, traces=60)


def plain_daily_counts(url: str) -> Counter[tuple[int, str, str | None, str | None]]:
    """Events per UTC day (days since 1970), app, version and environment, by plain SQL on old rows."""
    sqlite = url.startswith("sqlite")
    day = "CAST(e.when_ts / 86400 AS INTEGER)" if sqlite else "FLOOR(e.when_ts / 86400)"
    query = f"""
        SELECT {day}, a.name, v.vsn, env.name, COUNT(*)
        FROM events e
        JOIN processes p ON p.id = e.process_id
        JOIN apps a ON a.id = p.app_id
        LEFT JOIN app_vsns v ON v.id = p.app_vsn_id
        LEFT JOIN environments env ON env.id = p.environment_id
        GROUP BY {day}, a.name, v.vsn, env.name
    """
    return Counter({(int(d), app, vsn, env): int(n) for d, app, vsn, env, n in select(url, sa.text(query))})


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_large_old_database(request: pytest.FixtureRequest, tmp_path: Path, backend: str) -> None:
    """A big generated pycodewake database upgrades to answer every query as its old rows say."""
    url, history = large_database(request, backend, tmp_path)
    daily = plain_daily_counts(url)
    traces = {
        trace: (int(n), first, last)
        for trace, n, first, last in select(
            url,
            sa.text(
                # Times as DOUBLE: MySQL sends a FLOAT printed to 6 digits.
                "SELECT stacktrace_id, COUNT(*), MIN(when_ts * 1e0), MAX(when_ts * 1e0) FROM events"
                " WHERE stacktrace_id IS NOT NULL GROUP BY stacktrace_id"
            ),
        )
    }
    data = old_table("events_data")
    old_events = old_table("events")
    term = (
        sa.select(old_events.c.id)
        .join(data, data.c.event_id == old_events.c.id)
        .where(data.c.key == "customer", data.c.val == "c7")
        .order_by(old_events.c.when_ts.desc(), old_events.c.id.desc())
    )
    customer_c7 = [row[0] for row in select(url, term)]
    process_of = dict(select(url, sa.select(old_events.c.id, old_events.c.process_id)))
    before = old_rows(url)

    store = Sql14Store(url)
    try:
        assert sum(1 for _ in store.query_events()) == history.events
        assert [e.id for e in store.query_events(EventFilter(where={"customer": "c7"}))] == customer_c7
        for app_name, vsn_name in [("billing", "1.0"), ("billing", "2.0"), ("cron", "1.1"), ("shop", "1.1")]:
            kinds = {pid for pid, kind in history.processes.items() if kind[:2] == (app_name, vsn_name)}
            found = {e.id for e in store.query_events(EventFilter(app=app_name, vsn=vsn_name))}
            assert found == {e for e, p in process_of.items() if p in kinds}, (app_name, vsn_name)
        groups = store.query_trace_groups()
        assert {g.exc_type for g in groups} == {None}
        assert {g.stacktrace.id: (g.count, g.first_ts, g.last_ts) for g in groups if g.stacktrace} == traces
        busiest = max(groups, key=lambda g: g.count).stacktrace
        assert busiest is not None
        assert [(f.filename, f.lineno, f.src) for f in reversed(busiest.stackframes)] == history.frames[
            busiest.id
        ]
        counted = Counter[tuple[int, str, str | None, str | None]]()
        for row in store.query_daily_counts():
            assert row.errors == 0
            assert row.app_vsn is None or row.app_vsn.app == row.app
            day = (row.day - datetime.date(1970, 1, 1)).days
            vsn = None if row.app_vsn is None else row.app_vsn.vsn
            env = None if row.environment is None else row.environment.name
            counted[day, row.app.name, vsn, env] += row.events
        assert counted == daily
        old_process = next(iter(process_of.values()))
        for trace_id in (1, 11, 17):  # the compat file's fault, one with an empty line, one not ASCII
            new = store.insert_event(
                old_process, {"event": "again"}, st_data=history.frames[trace_id], sync=True
            )
            assert new is not None and new.stacktrace is not None
            assert new.stacktrace.id == trace_id
    finally:
        store.close()
    assert select(url, sa.select(sa.func.count()).select_from(stacktraces)) == [(len(history.frames),)]
    assert [row for row in old_rows(url)["events"] if row[0] <= history.events] == before["events"]
    total = sa.select(sa.func.sum(event_counts.c.n)).where(event_counts.c.span == 0)
    assert [int(n) for (n,) in select(url, total)] == [history.events + 3]
    assert schema_problems(url) == []


# -- 4: an upgrade stopped midway ---------------------------------------------------------------

STOPS = {
    "before the indexes": "_merge_duplicate_versions",
    "after the indexes": "_repair_cross_app_versions",
    "after the version repair": "_fill_copied_columns",
    "after the copies": "rebuild_counts",
}
"""Where an upgrade can stop: the step of _migrate that fails."""


class PowerCut(Exception):
    """The upgrade stopping: a crash, a kill, a lost connection."""


def stop_at(monkeypatch: pytest.MonkeyPatch, step: str, keep_done: bool) -> None:
    """Make the upgrade fail at `step`; with `keep_done`, what it did so far is committed first
    (what MySQL does by itself: each DDL statement commits the transaction)."""

    def fail(conn: sa.Connection, *args: Any) -> None:
        if keep_done:
            conn.commit()
        raise PowerCut(step)

    monkeypatch.setattr(_migrate, step, fail)


def interrupted_then_reopened(
    url: str, monkeypatch: pytest.MonkeyPatch, step: str, keep_done: bool
) -> dict[str, Any]:
    """Open `url` with the upgrade failing at `step`, then again without; the facts it ends with."""
    with monkeypatch.context() as patch:
        stop_at(patch, step, keep_done)
        store = Sql14Store(url)
        with pytest.raises(PowerCut):
            store.get_app_by_name("shop")
        store.close()
    assert select(url, sa.select(schema_version.c.version)) == []
    store = Sql14Store(url)
    store.get_app_by_name("shop")
    store.close()
    return named_facts(url)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The facts of the compat file upgraded in one go."""
    url = f"sqlite:///{compat_copy(tmp_path_factory.mktemp('whole'))}"
    store = Sql14Store(url)
    store.get_app_by_name("shop")
    store.close()
    return named_facts(url)


class TestInterruptedUpgrade:
    """_migrate says each step checks first, so that the next run finishes a stopped one."""

    def test_sqlite_rolls_back_a_stopped_upgrade(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """On SQLite the whole upgrade is one transaction: stopped at its end, nothing of it stays."""
        url = f"sqlite:///{compat_copy(tmp_path)}"
        before = old_rows(url)
        schema = select(url, sa.text("SELECT type, name, sql FROM sqlite_master ORDER BY name"))
        with monkeypatch.context() as patch:
            stop_at(patch, "rebuild_counts", keep_done=False)
            store = Sql14Store(url)
            with pytest.raises(PowerCut):
                store.get_app_by_name("shop")
            store.close()
        assert select(url, sa.text("SELECT type, name, sql FROM sqlite_master ORDER BY name")) == schema
        assert old_rows(url) == before

    @pytest.mark.parametrize("where", sorted(STOPS))
    def test_sqlite_finishes_a_half_done_upgrade(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, uninterrupted: dict[str, Any], where: str
    ) -> None:
        """A database left with some columns, indexes and repairs done but no version row (as
        MySQL leaves it) is finished by the next open, to the same result as one whole upgrade."""
        url = f"sqlite:///{compat_copy(tmp_path)}"
        before = old_rows(url)
        assert interrupted_then_reopened(url, monkeypatch, STOPS[where], keep_done=True) == uninterrupted
        assert_compat_upgraded(url, before)

    @pytest.mark.mysql
    # Stopped later than "after the indexes", MySQL is left the same: the DML after the last
    # DDL statement (repair, copies, counts, version) is rolled back together.
    @pytest.mark.parametrize("where", ["before the indexes", "after the indexes"])
    def test_mysql_finishes_a_stopped_upgrade(
        self,
        request: pytest.FixtureRequest,
        tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch,
        uninterrupted: dict[str, Any],
        where: str,
    ) -> None:
        """MySQL keeps the DDL of a stopped upgrade; the next open finishes it, as one whole upgrade."""
        url = old_database(request, "mysql", tmp_path)
        before = old_rows(url)
        assert interrupted_then_reopened(url, monkeypatch, STOPS[where], keep_done=False) == uninterrupted
        assert_compat_upgraded(url, before)


# -- 5: a database newer than this code -------------------------------------------------------


def everything(url: str) -> dict[str, Any]:
    """Tables, their columns and indexes, and every row: to show that nothing changed."""
    with engine_for(url) as engine, engine.connect() as conn:
        inspector = sa.inspect(conn)
        tables = sorted(inspector.get_table_names())
        found: dict[str, Any] = {}
        for table in tables:
            found[f"{table} columns"] = [c["name"] for c in inspector.get_columns(table)]
            found[f"{table} indexes"] = table_indexes(conn, table)
            rows = conn.execute(sa.text(f"SELECT * FROM {table}"))
            found[f"{table} rows"] = sorted(tuple(map(repr, row)) for row in rows)
        return found


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_newer_database_is_refused_untouched(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    backend: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A database of a newer schema (here: one without event_counts) is refused, by the library and
    the CLI, with a message saying so, and nothing is created, added or written."""
    url = (
        f"sqlite:///{tmp_path / 'newer.sqlite'}"
        if backend == "sqlite"
        else str(request.getfixturevalue(f"{backend}_url"))
    )
    store = Sql14Store(url)
    process = store.insert_process(ProcessInfo(1, "u", "h", "x.py", 1.0, "shop", "1.0", "production"))
    store.insert_event(process, {"event": "order"}, sync=True)
    store.close()
    with engine_for(url) as engine, engine.begin() as conn:
        conn.execute(sa.update(schema_version).values(version=SCHEMA_VERSION + 1))
        conn.exec_driver_sql("DROP TABLE event_counts")
    before = everything(url)

    store = Sql14Store(url)
    message = (
        rf"schema version {SCHEMA_VERSION + 1}, newer than this code_wake understands "
        rf"\({SCHEMA_VERSION}\); upgrade code_wake"
    )
    with pytest.raises(StoreError, match=message):
        store.insert_process(ProcessInfo(2, "u", "h", "x.py", 2.0, "billing"))
    with pytest.raises(StoreError, match=message):
        store.insert_event(process.id, {"event": "order"}, sync=True)
    with pytest.raises(StoreError, match=message):
        list(store.query_events())
    store.close()
    assert cli_main(["events", "--store", url]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith("code-wake: error: ") and "newer than this code_wake" in err
    assert everything(url) == before
