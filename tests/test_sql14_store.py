"""Sql14Store: the store contract on every backend, and what only the SQL adapter does."""

from __future__ import annotations

import contextlib
import hashlib
import multiprocessing
import shutil
import sqlite3
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from code_wake import StoreError, StoreUnavailableError
from code_wake.records import EventRecord, ProcessInfo
from code_wake.testing import StoreContract
from code_wake.testing.contract import process_info, stored, trace_of
from code_wake_sql14_store import Sql14Store
from code_wake_sql14_store._filters import data_conditions, placed_terms
from code_wake_sql14_store._reading import events_query
from code_wake_sql14_store.schema import SCHEMA_VERSION

COMPAT_DATABASE = Path(__file__).parent / "data" / "pycodewake-0.2.2.sqlite"
PASSWORD = "s3cr3t-Pw"

# -- the contract, on four databases ---------------------------------------------------------

Opener = Callable[[str], Sql14Store]
"""The `open_store` fixture: a Sql14Store for a URL, closed at the end of the test."""


class TestSqliteMemory(StoreContract):
    """The contract on ``sqlite://``: one shared in-memory connection."""

    @pytest.fixture
    def store(self) -> Iterator[Sql14Store]:
        store = Sql14Store("sqlite://")
        yield store
        store.close()


class TestSqliteFile(StoreContract):
    """The contract on a SQLite file."""

    @pytest.fixture
    def store(self, sqlite_url: str) -> Iterator[Sql14Store]:
        store = Sql14Store(sqlite_url)
        yield store
        store.close()


@pytest.mark.postgresql
class TestPostgresql(StoreContract):
    """The contract on PostgreSQL through psycopg 3."""

    @pytest.fixture
    def store(self, postgresql_url: str) -> Iterator[Sql14Store]:
        store = Sql14Store(postgresql_url)
        yield store
        store.close()


@pytest.mark.mysql
class TestMysql(StoreContract):
    """The contract on MySQL/MariaDB through PyMySQL."""

    @pytest.fixture
    def store(self, mysql_url: str) -> Iterator[Sql14Store]:
        store = Sql14Store(mysql_url)
        yield store
        store.close()


# -- helpers ---------------------------------------------------------------------------------


def _scalars(engine: sa.Engine, sql: str) -> list[Any]:
    with engine.connect() as conn:
        return list(conn.exec_driver_sql(sql).scalars())


def _formatted(exc: BaseException) -> str:
    """Everything a traceback printout of `exc` shows, its chain included."""
    return "".join(traceback.format_exception(exc))


# -- schema ------------------------------------------------------------------------------------

EXPECTED_INDEXES = {
    "events_data": {"ix_events_data_event_id", "ix_events_data_key_val"},
    "events": {
        "ix_events_process_id_when_ts",
        "ix_events_when_ts",
        "ix_events_stacktrace_id",
        "ix_events_exc_type_when_ts",
    },
    "stackframes": {"ix_stackframes_stacktrace_id"},
    "processes": {"ix_processes_app_id_run_ts", "ix_processes_run_ts"},
    "app_vsns": {"uq_app_vsns_app_id_vsn"},
}


def _index_names(engine: sa.Engine, table: str) -> set[str]:
    inspector = sa.inspect(engine)
    if engine.dialect.name == "sqlite" and table == "events_data":
        # SQLAlchemy does not reflect SQLite expression indexes; it says so and skips them.
        with pytest.warns(sa.exc.SAWarning, match="expression-based index ix_events_data_key_val"):
            names = {str(ix["name"]) for ix in inspector.get_indexes(table)}
        sql = "SELECT name FROM sqlite_master WHERE type = 'index' AND sql LIKE '%substr(val, 1, 200)%'"
        return names | set(_scalars(engine, sql))
    return {str(ix["name"]) for ix in inspector.get_indexes(table)}


class TestSchema:
    """The tables, indexes and version row that Sql14Store creates."""

    def test_indexes_exist_in_the_database(self, db_url: str, open_store: Opener) -> None:
        """Every index is really created (the original declared its indexes and never made them)."""
        store = open_store(db_url)
        store.insert_process(process_info())
        for table, expected in EXPECTED_INDEXES.items():
            assert expected <= _index_names(store.engine, table), table
        unique = [ix for ix in sa.inspect(store.engine).get_indexes("app_vsns") if ix["unique"]]
        assert [ix["column_names"] for ix in unique] == [["app_id", "vsn"]]

    @pytest.mark.mysql
    def test_mysql_indexes_data_by_prefix(self, mysql_url: str, open_store: Opener) -> None:
        """On MySQL/MariaDB the (key, value) index holds 191-character prefixes, then time and event id."""
        store = open_store(mysql_url)
        store.insert_process(process_info())
        with store.engine.connect() as conn:
            rows = conn.exec_driver_sql(
                "SHOW INDEX FROM events_data WHERE Key_name = 'ix_events_data_key_val'"
            )
            parts = [(row.Column_name, row.Sub_part) for row in rows]
        assert parts == [("key", 191), ("val", 191), ("when_ts", None), ("event_id", None)]

    @pytest.mark.mysql
    def test_mysql_tables_are_utf8mb4(self, mysql_url: str, open_store: Opener) -> None:
        """MySQL tables use utf8mb4 with a binary collation (4-byte characters, exact matches)."""
        store = open_store(mysql_url)
        store.insert_process(process_info())
        collations = _scalars(
            store.engine,
            "SELECT table_collation FROM information_schema.tables "
            "WHERE table_schema = DATABASE() AND table_name = 'events_data'",
        )
        assert collations == ["utf8mb4_bin"]

    def test_mysql_url_gets_utf8mb4(self) -> None:
        """A MySQL URL without a charset gets utf8mb4 (without connecting)."""
        store = Sql14Store("mysql+pymysql://someone@127.0.0.1:1/db")
        assert store.engine.url.query["charset"] == "utf8mb4"
        given = Sql14Store("mysql+pymysql://someone@127.0.0.1:1/db?charset=utf8mb4&foo=bar")
        assert given.engine.url.query["charset"] == "utf8mb4"

    def test_driverless_urls_use_the_installed_drivers(self) -> None:
        """postgresql:// and mysql:// use psycopg 3 and PyMySQL (what the extras install)."""
        assert Sql14Store("postgresql://someone@127.0.0.1:1/db").engine.url.drivername == "postgresql+psycopg"
        assert Sql14Store("mysql://someone@127.0.0.1:1/db").engine.url.drivername == "mysql+pymysql"
        assert Sql14Store("mariadb://someone@127.0.0.1:1/db").engine.url.drivername == "mariadb+pymysql"

    def test_schema_version_row(self, db_url: str, open_store: Opener) -> None:
        """A new database records the schema version, 4, in one row."""
        store = open_store(db_url)
        store.get_app_by_name("anything")
        assert _scalars(store.engine, "SELECT version FROM code_wake_schema") == [SCHEMA_VERSION] == [4]

    def test_reopening_keeps_the_schema(self, db_url: str, open_store: Opener) -> None:
        """A second store on the same database finds the schema and the data."""
        first = open_store(db_url)
        event = stored(first.insert_event(first.insert_process(process_info()), {"a": "b"}, sync=True))
        second = open_store(db_url)
        assert second.get_event_by_id(event.id) == event
        assert _scalars(second.engine, "SELECT version FROM code_wake_schema") == [SCHEMA_VERSION]

    def test_schema_2_gains_exception_chains(self, sqlite_url: str, open_store: Opener) -> None:
        """A schema 2 database gets ``events.exc_chain``: old events read with none, new ones keep theirs."""
        first = open_store(sqlite_url)
        process = first.insert_process(process_info())
        old = stored(first.insert_event(process, {"a": "b"}, sync=True))
        first.close()
        with contextlib.closing(sqlite3.connect(sqlite_url.removeprefix("sqlite:///"))) as conn, conn:
            conn.execute("ALTER TABLE events DROP COLUMN exc_chain")
            conn.execute("UPDATE code_wake_schema SET version = 2")
        second = open_store(sqlite_url)
        try:
            raise KeyError("cause") from OSError("root")
        except KeyError as err:
            new = stored(second.insert_event(process, exc=err, sync=True))
        assert stored(second.get_event_by_id(old.id)).exc_chain == ()
        assert stored(second.get_event_by_id(new.id)).exc_chain == (("OSError", "root"),)
        assert _scalars(second.engine, "SELECT version FROM code_wake_schema") == [4]

    def test_a_newer_schema_is_refused(self, sqlite_url: str, open_store: Opener) -> None:
        """A database written by a newer code_wake raises StoreError saying so."""
        open_store(sqlite_url).get_app_by_name("anything")
        engine = sa.create_engine(sqlite_url)
        with engine.begin() as conn:
            conn.exec_driver_sql("UPDATE code_wake_schema SET version = 99")
        engine.dispose()
        store = open_store(sqlite_url)
        with pytest.raises(StoreError, match=r"schema version 99, newer than .* \(4\)"):
            store.get_app_by_name("anything")
        with pytest.raises(StoreError, match="newer"):
            store.insert_process(process_info())

    def test_sqlite_connection_settings(self, sqlite_url: str, open_store: Opener) -> None:
        """A SQLite file is in WAL mode; connections wait 30 s for locks and enforce foreign keys."""
        store = open_store(sqlite_url)
        store.insert_process(process_info())
        path = sa.make_url(sqlite_url).database
        assert path is not None
        with contextlib.closing(sqlite3.connect(path)) as raw:
            assert raw.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        with store.engine.connect() as conn:
            pragmas = [
                conn.exec_driver_sql(f"PRAGMA {name}").scalar() for name in ("busy_timeout", "foreign_keys")
            ]
            assert pragmas == [30_000, 1]
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL


# -- the data query uses its index ------------------------------------------------------------


def _plan(store: Sql14Store, where: list[tuple[str, str | None]]) -> str:
    """The database's plan for the store's own data query, as text."""
    dialect = store.engine.dialect
    prefix = "EXPLAIN QUERY PLAN " if store.engine.dialect.name == "sqlite" else "EXPLAIN "
    with store.engine.connect() as conn:
        conditions = data_conditions(conn, placed_terms(conn, where), None)
        compiled = events_query(conditions).compile(dialect=dialect)
        params: Any = compiled.params
        if compiled.positiontup:  # qmark/format drivers take the values in order
            params = tuple(compiled.params[name] for name in compiled.positiontup)
        return "\n".join(str(tuple(row)) for row in conn.exec_driver_sql(prefix + str(compiled), params))


def test_data_query_uses_the_index(db_url: str, open_store: Opener) -> None:
    """EXPLAIN shows the one-term data query using the (key, value) index on every backend."""
    store = open_store(db_url)
    process = store.insert_process(process_info())
    policy = store.event_policy
    store.insert_events(
        [
            policy.build(process.id, {"event": "order", "customer": f"c{n % 97}", "n": str(n)})
            for n in range(2000)
        ]
    )
    mysql = store.engine.dialect.name == "mysql"
    with store.engine.begin() as conn:
        for statement in ["ANALYZE TABLE events_data", "ANALYZE TABLE events"] if mysql else ["ANALYZE"]:
            conn.exec_driver_sql(statement)
    plan = _plan(store, [("customer", "c7")])
    print(plan)  # shown by pytest -s, and with a failure
    assert "ix_events_data_key_val" in plan
    # Both index columns serve the search, not just the key.
    name = store.engine.dialect.name
    if name == "sqlite":
        assert "ix_events_data_key_val (key=? AND <expr>=?)" in plan
    elif name == "postgresql":
        assert "substr(val, 1, 200) = 'c7'::text" in plan.split("ix_events_data_key_val")[1]
    else:
        assert "'ix_events_data_key_val', '1533', 'const,const'" in plan
    assert len(store.get_events_by_data([("customer", "c7")])) == len(range(7, 2000, 97))


# -- many processes at once ---------------------------------------------------------------------

_RACERS = 4
_RACE_TRACE = [["race.py", 1, "start()"], ["race.py", 2, "register()"]]


def _race(url: str, barrier: Any, number: int) -> None:
    """One racing process: open the store, wait for the others, register, log, close."""
    store = Sql14Store(url)
    barrier.wait(timeout=60)
    process = store.insert_process(
        ProcessInfo(pid=number, username="u", fqdn="h", exe_path="race.py", run_ts=time.time(),
                    app_name="race_app", app_vsn="1.0", env_name="race_env")
    )  # fmt: skip
    store.insert_app("race_app", "1.0")
    store.insert_event(process, {"n": str(number)}, st_data=_RACE_TRACE, sync=True)
    store.close()


def test_concurrent_registration(db_url: str, open_store: Opener) -> None:
    """Processes starting together on one (empty) database make one app, version, environment and trace."""
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(_RACERS)
    racers = [context.Process(target=_race, args=(db_url, barrier, n)) for n in range(_RACERS)]
    for racer in racers:
        racer.start()
    for racer in racers:
        racer.join(timeout=120)
    assert [racer.exitcode for racer in racers] == [0] * _RACERS
    engine = open_store(db_url).engine
    counts = {
        table: _scalars(engine, f"SELECT COUNT(*) FROM {table}")[0]
        for table in (
            "apps",
            "app_vsns",
            "environments",
            "stacktraces",
            "processes",
            "events",
            "code_wake_schema",
        )
    }
    assert counts == {
        "apps": 1,
        "app_vsns": 1,
        "environments": 1,
        "stacktraces": 1,
        "processes": _RACERS,
        "events": _RACERS,
        "code_wake_schema": 1,
    }


def test_threads_share_a_memory_store() -> None:
    """sqlite:// is one database for every thread, and safe to use from many at once."""
    store = Sql14Store("sqlite://")
    process = store.insert_process(process_info())
    errors: list[BaseException] = []
    ids: list[int] = []
    start = threading.Barrier(8)

    def work(number: int) -> None:
        try:
            start.wait(timeout=30)
            for n in range(25):
                event = stored(store.insert_event(process, {"thread": str(number), "n": str(n)}, sync=True))
                assert store.get_event_by_id(event.id) == event
                ids.append(event.id)
            assert len(store.get_events_by_data([("thread", str(number))])) == 25
        except BaseException as err:
            errors.append(err)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    store.close()
    assert errors == []
    assert len(set(ids)) == 200


def _connection_id(store: Sql14Store) -> int:
    with store.engine.connect() as conn:
        return id(conn.connection.dbapi_connection)


def _log_in_child(store: Sql14Store, process_id: int, parent_connection: int) -> None:
    store.insert_event(process_id, {"from": "child"}, sync=True)
    if _connection_id(store) == parent_connection:
        raise SystemExit("the child used the parent's pooled connection")


def test_a_forked_child_uses_its_own_connections(db_url: str, open_store: Opener) -> None:
    """After fork the child opens its own connections; the parent's keep working."""
    store = open_store(db_url)
    process = store.insert_process(process_info())
    store.insert_event(process, {"from": "parent"}, sync=True)
    parent_connection = _connection_id(store)
    context = multiprocessing.get_context("fork")
    child = context.Process(target=_log_in_child, args=(store, process.id, parent_connection))
    child.start()
    child.join(timeout=60)
    assert child.exitcode == 0
    store.insert_event(process, {"from": "parent"}, sync=True)
    assert _connection_id(store) == parent_connection
    assert len(store.get_events_by_data([("from", "child")])) == 1
    assert len(store.get_events_by_data([("from", "parent")])) == 2


def test_a_fresh_store_reads_what_another_wrote(db_url: str, open_store: Opener) -> None:
    """Records come from the database, not from the writer's caches."""
    writer = open_store(db_url)
    try:
        raise RuntimeError("boom")
    except RuntimeError as err:
        event = stored(writer.insert_event(process_info(), [("a", "1"), ("a", None)], exc=err, sync=True))
    reader = open_store(db_url)
    assert reader.get_event_by_id(event.id) == event
    assert reader.get_events_by_data([("a", "1"), ("a", None)]) == [event]
    assert reader.get_process_by_id(event.process.id) == event.process
    assert reader.get_processes() == [event.process]


def test_batch_ids_are_in_order(db_url: str, open_store: Opener) -> None:
    """A large batch gets one id per event, in the batch's order, with each event's own data."""
    store = open_store(db_url)
    process = store.insert_process(process_info())
    batch = [store.event_policy.build(process.id, {"n": str(n)}) for n in range(1200)]
    records = store.insert_events(batch)
    assert [r.id for r in records] == sorted(r.id for r in records)
    found = store.get_events_by_data([("n", "1100")])
    assert [(e.id, e.data_dict()) for e in found] == [(records[1100].id, {"n": "1100"})]


# -- pycodewake 0.2 databases ---------------------------------------------------------------------


def _foreign_keys(store: Sql14Store, table: str) -> list[str]:
    """The tables `table`'s foreign keys refer to."""
    with store.engine.connect() as conn:
        return sorted(str(key["referred_table"]) for key in sa.inspect(conn).get_foreign_keys(table))


EVENT_KEYS = ["call_sites", "processes", "stacktraces"]

_OLDER_KEYS = {
    "events_data_event_id_fkey": "events_data (event_id) REFERENCES events (id)",
    "events_process_id_fkey": "events (process_id) REFERENCES processes (id)",
    "events_stacktrace_id_fkey": "events (stacktrace_id) REFERENCES stacktraces (id)",
    "events_call_site_id_fkey": "events (call_site_id) REFERENCES call_sites (id)",
}


def _add_older_foreign_keys(url: str, names: list[str]) -> None:
    """Give a database the foreign keys `names` that older code_wake made (see `_OLDER_KEYS`)."""
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        for name in names:
            table, _, reference = _OLDER_KEYS[name].partition(" ")
            conn.exec_driver_sql(f"ALTER TABLE {table} ADD CONSTRAINT {name} FOREIGN KEY {reference}")
    engine.dispose()


def test_foreign_keys_of_a_new_database(db_url: str, open_store: Opener) -> None:
    """events_data refers to its event without a key; events to its process, trace and site with keys
    but on PostgreSQL, which checks them row by row. Prune still takes events and data rows together."""
    store = open_store(db_url)
    old = stored(store.insert_event(process_info(), {"k": "old"}, when_ts=1_000.0, sync=True))
    new = stored(store.insert_event(process_info(), {"k": "new"}, sync=True))
    assert _foreign_keys(store, "events_data") == []
    assert _foreign_keys(store, "events") == ([] if store.engine.dialect.name == "postgresql" else EVENT_KEYS)
    report = store.prune(before_ts=2_000.0)
    assert (report.events, report.data) == (1, 1)
    assert store.get_event_by_id(old.id) is None
    assert store.get_event_by_id(new.id) == new
    with store.engine.connect() as conn:
        event_ids = conn.exec_driver_sql("SELECT DISTINCT event_id FROM events_data").scalars().all()
    assert event_ids == [new.id]


@pytest.mark.postgresql
def test_upgrade_drops_the_row_checked_keys_on_postgresql(postgresql_url: str, open_store: Opener) -> None:
    """`code-wake upgrade` drops the keys an older code_wake made; writers and readers work either way."""
    before = stored(open_store(postgresql_url).insert_event(process_info(), {"k": "before"}, sync=True))
    _add_older_foreign_keys(postgresql_url, list(_OLDER_KEYS))
    store = open_store(postgresql_url)
    during = stored(store.insert_event(process_info(), {"k": "during"}, sync=True))
    assert (_foreign_keys(store, "events_data"), _foreign_keys(store, "events")) == (["events"], EVENT_KEYS)
    steps = store.upgrade(dry_run=True)
    assert sorted(next(name for name in _OLDER_KEYS if name in step) for step in steps) == sorted(_OLDER_KEYS)
    assert "events.call_site_id" in steps[0] and "events_data.event_id" in steps[-1]
    assert _foreign_keys(store, "events") == EVENT_KEYS  # a dry run changes nothing
    assert store.upgrade() == steps
    assert (_foreign_keys(store, "events_data"), _foreign_keys(store, "events")) == ([], [])
    assert store.upgrade(dry_run=True) == []
    after = stored(store.insert_event(process_info(), {"k": "after"}, sync=True))
    assert [store.get_event_by_id(e.id) for e in (before, during, after)] == [before, during, after]


@pytest.mark.mysql
def test_mysql_keeps_an_older_data_foreign_key(mysql_url: str, open_store: Opener) -> None:
    """MySQL checks the key at no measured cost: an upgrade leaves it, and has nothing to do."""
    open_store(mysql_url).insert_event(process_info(), {"k": "before"}, sync=True)
    _add_older_foreign_keys(mysql_url, ["events_data_event_id_fkey"])
    store = open_store(mysql_url)
    assert store.upgrade() == []
    assert _foreign_keys(store, "events_data") == ["events"]
    assert stored(store.insert_event(process_info(), {"k": "after"}, sync=True)).data_dict() == {"k": "after"}


@pytest.fixture
def compat_copy(tmp_path: Path) -> Iterator[Path]:
    """A copy of the database pycodewake 0.2.2 wrote (the original is never opened)."""
    before = hashlib.sha256(COMPAT_DATABASE.read_bytes()).digest()
    copy = tmp_path / "pycodewake.sqlite"
    shutil.copyfile(COMPAT_DATABASE, copy)
    yield copy
    assert hashlib.sha256(COMPAT_DATABASE.read_bytes()).digest() == before


class TestPycodewakeDatabase:
    """A database written by pycodewake 0.2.2 opens, reads and keeps deduplicating."""

    @pytest.fixture
    def store(self, compat_copy: Path, open_store: Opener) -> Sql14Store:
        return open_store(f"sqlite:///{compat_copy}")

    def test_old_events_read_back(self, store: Sql14Store) -> None:
        """Its processes, events, data and stack traces come back through the API."""
        processes = store.get_processes()
        assert [(p.app.name, p.environment and p.environment.name) for p in processes] == [
            ("shop", "production"),
            ("billing", "production"),
            ("shop", "staging"),
        ]
        orders = store.get_events_by_data([("event", "order")])
        assert len(orders) == 15
        assert orders[0].data_dict() == {"event": "order", "customer": "c0", "app": "shop"}
        assert orders == sorted(orders, key=lambda e: (e.when_ts, e.id))
        faults = store.get_events_by_data([("event", "fault")])
        assert len(faults) == 9
        trace = trace_of(faults[0])
        assert len({trace_of(e).id for e in faults}) == 1
        assert trace.stackframes[0].src == 'raise ValueError("stock exhausted")'
        assert [f.src for f in trace.stackframes[1:]] == ["fail_deep(n - 1)"] * 3 + ["fail_deep(3)"]
        assert {(f.filename, f.function) for f in trace.stackframes} == {("shop/orders.py", None)}
        assert (faults[0].exc_type, faults[0].exc_message) == (None, None)

    def test_schema_is_upgraded(self, store: Sql14Store) -> None:
        """Opening adds our columns, indexes and the version row."""
        store.get_app_by_name("shop")
        inspector = sa.inspect(store.engine)
        assert "function" in {c["name"] for c in inspector.get_columns("stackframes")}
        assert {"exc_type", "exc_message"} <= {c["name"] for c in inspector.get_columns("events")}
        for table, expected in EXPECTED_INDEXES.items():
            assert expected <= _index_names(store.engine, table), table
        assert _scalars(store.engine, "SELECT version FROM code_wake_schema") == [SCHEMA_VERSION]

    def test_versions_are_given_back_to_their_app(self, store: Sql14Store) -> None:
        """billing's process, recorded with shop's 1.0 by the original, gets billing's own 1.0."""
        billing = store.get_processes()[1]
        assert billing.app.name == "billing"
        assert billing.app_vsn is not None
        assert (billing.app_vsn.vsn, billing.app_vsn.app) == ("1.0", billing.app)
        shop = store.get_processes()[0]
        assert shop.app_vsn is not None
        assert shop.app_vsn.app == shop.app
        assert billing.app_vsn.id != shop.app_vsn.id

    def test_new_traces_dedupe_with_old_ones(self, store: Sql14Store) -> None:
        """The same frames logged now share the trace pycodewake stored (same digest formula)."""
        old = store.get_events_by_data([("event", "fault")])[0]
        old_trace = trace_of(old)
        st_data = [[f.filename, f.lineno, f.src] for f in reversed(old_trace.stackframes)]
        data = [(item.key, item.val) for item in old.data]
        new = stored(store.insert_event(old.process, data, st_data=st_data, sync=True))
        assert trace_of(new).id == old_trace.id
        assert new.digest == old.digest
        assert _scalars(store.engine, "SELECT COUNT(*) FROM stacktraces") == [2]

    def test_new_events_for_old_processes(self, store: Sql14Store) -> None:
        """New events can be written for old processes and are found with the old ones."""
        old_process = store.get_processes()[0]
        new = stored(store.insert_event(old_process.id, {"event": "order", "customer": "c9"}, sync=True))
        found = store.get_events_by_data([("event", "order")], process_id=old_process.id)
        assert found[-1] == new
        assert len(found) == 6


# -- errors -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        f"postgresql+psycopg://someone:{PASSWORD}@127.0.0.1:1/nothing",
        f"mysql+pymysql://someone:{PASSWORD}@127.0.0.1:1/nothing",
    ],
)
def test_an_unreachable_server(url: str) -> None:
    """No server: construction succeeds, first use raises StoreUnavailableError, never the password."""
    store = Sql14Store(url)
    assert PASSWORD not in repr(store)
    with pytest.raises(StoreUnavailableError, match="Cannot connect to") as raised:
        store.insert_process(process_info())
    assert PASSWORD not in _formatted(raised.value)
    assert "***" in str(raised.value)
    assert isinstance(raised.value.__cause__, sa.exc.OperationalError)
    with pytest.raises(StoreUnavailableError):
        store.get_event_by_id(1)
    store.close()


@pytest.mark.parametrize(
    "url",
    [
        f"someone:{PASSWORD}@host/db",
        f"postgresql//someone:{PASSWORD}@host/db",
        f"postgresql://someone:{PASSWORD}@host:notaport/db",
        f"nosuchdialect://someone:{PASSWORD}@host/db",
    ],
)
def test_a_bad_url(url: str) -> None:
    """A URL SQLAlchemy cannot use is a StoreError that does not show the password."""
    with pytest.raises(StoreError) as raised:
        Sql14Store(url)
    assert PASSWORD not in _formatted(raised.value)


def test_a_missing_driver() -> None:
    """A URL whose driver is not installed says which extra to install."""
    with pytest.raises(StoreError, match=r"install code-wake\[mysql\]") as raised:
        Sql14Store(f"mysql+mysqldb://someone:{PASSWORD}@127.0.0.1/db")
    assert PASSWORD not in _formatted(raised.value)


def test_database_errors_are_translated(sqlite_url: str, open_store: Opener) -> None:
    """A failing query raises StoreError naming the operation, with SQLAlchemy's error as cause."""
    store = open_store(sqlite_url)
    event = stored(store.insert_event(process_info(), {"a": "b"}, sync=True))
    with store.engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE events_data")
    with pytest.raises(StoreError, match="Could not look up an event in sqlite:///") as raised:
        store.get_event_by_id(event.id)
    assert isinstance(raised.value.__cause__, sa.exc.OperationalError)


def test_a_closed_store_refuses_work(sqlite_url: str) -> None:
    """After close() the store raises StoreError instead of reconnecting."""
    store = Sql14Store(sqlite_url)
    process = store.insert_process(process_info())
    store.close()
    with pytest.raises(StoreError, match="closed"):
        store.insert_event(process, {"a": "b"}, sync=True)


def test_records_are_plain_values(open_store: Opener) -> None:
    """What the store returns holds no session or connection: records compare by value."""
    store = open_store("sqlite://")
    event = stored(store.insert_event(process_info(), {"a": "b"}, inc_st=True, sync=True))
    assert isinstance(event, EventRecord)
    assert store.get_event_by_id(event.id) == event
    assert type(event).__module__ == "code_wake.records"
