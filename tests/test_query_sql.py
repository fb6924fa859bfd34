"""Sql14Store's queries beyond the contract: schema 2 and its migration, query plans, and
writers that keep going while a prune removes what they hold."""

from __future__ import annotations

import random
import shutil
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from code_wake.query import EventFilter, count_daily, group_traces
from code_wake.testing.contract import DAY0, HOUR, TRACE_A, build_scene, process_info, stored
from code_wake_sql14_store import Sql14Store
from code_wake_sql14_store._counts import add_counts, count_rows
from code_wake_sql14_store.schema import SCHEMA_VERSION, event_counts, events

COMPAT_DATABASE = Path(__file__).parent / "data" / "pycodewake-0.2.2.sqlite"

# The schema code_wake 0.x wrote as version 1 (SQLite), as `.schema` printed it.
SCHEMA_1 = """
CREATE TABLE environments (id INTEGER NOT NULL, name VARCHAR(255) NOT NULL, PRIMARY KEY (id), UNIQUE (name));
CREATE TABLE apps (id INTEGER NOT NULL, name VARCHAR(255) NOT NULL, PRIMARY KEY (id), UNIQUE (name));
CREATE TABLE stacktraces (id INTEGER NOT NULL, digest BLOB NOT NULL, PRIMARY KEY (id), UNIQUE (digest));
CREATE TABLE code_wake_schema (version INTEGER NOT NULL);
CREATE TABLE app_vsns (id INTEGER NOT NULL, vsn VARCHAR(255) NOT NULL, app_id INTEGER NOT NULL,
    PRIMARY KEY (id), FOREIGN KEY(app_id) REFERENCES apps (id));
CREATE UNIQUE INDEX uq_app_vsns_app_id_vsn ON app_vsns (app_id, vsn);
CREATE TABLE stackframes (id INTEGER NOT NULL, stacktrace_id INTEGER NOT NULL, filename TEXT NOT NULL,
    lineno INTEGER NOT NULL, src TEXT, function TEXT, PRIMARY KEY (id),
    FOREIGN KEY(stacktrace_id) REFERENCES stacktraces (id));
CREATE INDEX ix_stackframes_stacktrace_id ON stackframes (stacktrace_id);
CREATE TABLE processes (id INTEGER NOT NULL, run_ts DOUBLE NOT NULL, environment_id INTEGER, pid INTEGER,
    username VARCHAR(255), fqdn VARCHAR(255), exe_path TEXT, app_id INTEGER NOT NULL, app_vsn_id INTEGER,
    PRIMARY KEY (id), FOREIGN KEY(environment_id) REFERENCES environments (id),
    FOREIGN KEY(app_id) REFERENCES apps (id), FOREIGN KEY(app_vsn_id) REFERENCES app_vsns (id));
CREATE INDEX ix_processes_run_ts ON processes (run_ts);
CREATE INDEX ix_processes_app_id_run_ts ON processes (app_id, run_ts);
CREATE TABLE events (id INTEGER NOT NULL, when_ts DOUBLE NOT NULL, process_id INTEGER NOT NULL, digest BLOB,
    stacktrace_id INTEGER, exc_type VARCHAR(255), exc_message TEXT, PRIMARY KEY (id),
    FOREIGN KEY(process_id) REFERENCES processes (id),
    FOREIGN KEY(stacktrace_id) REFERENCES stacktraces (id));
CREATE INDEX ix_events_stacktrace_id ON events (stacktrace_id);
CREATE INDEX ix_events_when_ts ON events (when_ts);
CREATE INDEX ix_events_exc_type_when_ts ON events (exc_type, when_ts);
CREATE INDEX ix_events_process_id_when_ts ON events (process_id, when_ts);
CREATE TABLE events_data (id INTEGER NOT NULL, "key" VARCHAR(255) NOT NULL, val TEXT,
    event_id INTEGER NOT NULL,
    PRIMARY KEY (id), FOREIGN KEY(event_id) REFERENCES events (id));
CREATE INDEX ix_events_data_event_id ON events_data (event_id);
CREATE INDEX ix_events_data_key_val ON events_data ("key", substr(val, 1, 200));
"""

SCHEMA_1_COLUMNS = {
    "environments": "id, name",
    "apps": "id, name",
    "app_vsns": "id, vsn, app_id",
    "stacktraces": "id, digest",
    "stackframes": "id, stacktrace_id, filename, lineno, src, function",
    "processes": "id, run_ts, environment_id, pid, username, fqdn, exe_path, app_id, app_vsn_id",
    "events": "id, when_ts, process_id, digest, stacktrace_id, exc_type, exc_message",
    "events_data": 'id, "key", val, event_id',
}

NEW_INDEXES = {
    "events": {
        "ix_events_app_id_when_ts",
        "ix_events_app_vsn_id_when_ts",
        "ix_events_environment_id_when_ts",
        "ix_events_stacktrace_id",
    },
}

Opener = Callable[[str], Sql14Store]
"""The `open_store` fixture: a Sql14Store for a URL, closed at the end of the test."""


def _scalar(engine: sa.Engine, sql: str) -> Any:
    with engine.connect() as conn:
        return conn.exec_driver_sql(sql).scalar()


def _answers(store: Sql14Store) -> dict[str, Any]:
    """What the queries answer, to compare a database before and after a migration."""
    events = list(store.query_events())
    windows = [
        EventFilter(),
        EventFilter(since=DAY0 + 25 * HOUR + 17),
        EventFilter(app="shop", env="production"),
    ]
    return {
        "events": events,
        "groups": [store.query_trace_groups(f) for f in windows],
        "daily": [store.query_daily_counts(f) for f in windows],
        "by app": [e.id for e in store.query_events(EventFilter(app="billing"))],
        "by term": [
            e.id for e in store.query_events(EventFilter(where={"customer": "c1"}, since=DAY0 + HOUR))
        ],
    }


def _downgrade_to_schema_1(engine: sa.Engine) -> None:
    """Make a schema-2 database on a server into what schema 1 was: no summary, no copies, old indexes."""
    mysql = engine.dialect.name in ("mysql", "mariadb")
    key_val = "(`key`(191), val(191))" if mysql else "(key, substr(val, 1, 200))"
    statements = ["DROP TABLE event_counts"]
    for table, index in [
        ("events", "ix_events_app_id_when_ts"),
        ("events", "ix_events_app_vsn_id_when_ts"),
        ("events", "ix_events_environment_id_when_ts"),
        ("events_data", "ix_events_data_key_val"),
    ]:
        statements.append(f"DROP INDEX {index} ON {table}" if mysql else f"DROP INDEX {index}")
    if mysql:  # a foreign key needs an index on stacktrace_id at every moment
        statements.append(
            "ALTER TABLE events DROP INDEX ix_events_stacktrace_id, "
            "ADD INDEX ix_events_stacktrace_id (stacktrace_id)"
        )
    else:
        statements += [
            "DROP INDEX ix_events_stacktrace_id",
            "CREATE INDEX ix_events_stacktrace_id ON events (stacktrace_id)",
        ]
    statements += [
        "ALTER TABLE events DROP COLUMN app_id",
        "ALTER TABLE events DROP COLUMN app_vsn_id",
        "ALTER TABLE events DROP COLUMN environment_id",
        "ALTER TABLE events_data DROP COLUMN when_ts",
        f"CREATE INDEX ix_events_data_key_val ON events_data {key_val}",
        "UPDATE code_wake_schema SET version = 1",
    ]
    with engine.begin() as conn:
        for statement in statements:
            conn.exec_driver_sql(statement)


class TestMigration:
    """Databases of schema 1 and of pycodewake 0.2 are brought to the current schema in place."""

    def test_schema_1_on_sqlite(self, tmp_path: Path, open_store: Opener) -> None:
        """A schema-1 SQLite file (its real DDL) migrates and answers every query as a new one does."""
        fresh = open_store(f"sqlite:///{tmp_path / 'fresh.sqlite'}")
        build_scene(fresh)
        expected = _answers(fresh)
        fresh.close()
        old = tmp_path / "schema1.sqlite"
        with sqlite3.connect(old) as db:
            db.executescript(SCHEMA_1)
            db.execute("ATTACH DATABASE ? AS fresh", (str(tmp_path / "fresh.sqlite"),))
            for table, columns in SCHEMA_1_COLUMNS.items():
                db.execute(f"INSERT INTO {table} ({columns}) SELECT {columns} FROM fresh.{table}")
            db.execute("INSERT INTO code_wake_schema (version) VALUES (1)")
        db.close()
        store = open_store(f"sqlite:///{old}")
        assert _answers(store) == expected
        assert _scalar(store.engine, "SELECT version FROM code_wake_schema") == SCHEMA_VERSION == 4
        assert _scalar(store.engine, "SELECT COUNT(*) FROM events WHERE app_id IS NULL") == 0
        assert _scalar(store.engine, "SELECT COUNT(*) FROM events_data WHERE when_ts IS NULL") == 0
        assert "when_ts" in _scalar(
            store.engine, "SELECT sql FROM sqlite_master WHERE name = 'ix_events_data_key_val'"
        )

    @pytest.mark.parametrize(
        "url_fixture",
        [
            pytest.param("postgresql_url", marks=pytest.mark.postgresql),
            pytest.param("mysql_url", marks=pytest.mark.mysql),
        ],
    )
    def test_schema_1_on_servers(
        self, request: pytest.FixtureRequest, url_fixture: str, open_store: Opener
    ) -> None:
        """A schema-1 database on PostgreSQL and MySQL/MariaDB migrates and answers as before."""
        url = str(request.getfixturevalue(url_fixture))
        fresh = open_store(url)
        build_scene(fresh)
        expected = _answers(fresh)
        fresh.close()
        _downgrade_to_schema_1(fresh.engine)
        store = open_store(url)
        assert _answers(store) == expected
        assert _scalar(store.engine, "SELECT version FROM code_wake_schema") == SCHEMA_VERSION
        indexes = {ix["name"] for ix in sa.inspect(store.engine).get_indexes("events")}
        assert NEW_INDEXES["events"] <= indexes

    def test_pycodewake_database(self, tmp_path: Path, open_store: Opener) -> None:
        """A pycodewake 0.2 database: its events filter by app, group by trace and count by day."""
        copy = tmp_path / "pycodewake.sqlite"
        shutil.copyfile(COMPAT_DATABASE, copy)
        store = open_store(f"sqlite:///{copy}")
        events = list(store.query_events())
        assert len(events) == 27
        billing = [e.id for e in events if e.process.app.name == "billing"]
        assert billing
        assert [e.id for e in store.query_events(EventFilter(app="billing"))] == billing
        groups = store.query_trace_groups()
        assert groups == group_traces(events)
        assert [g.exc_type for g in groups] == [None] * len(groups)
        assert max(g.count for g in groups) == 9
        assert store.query_trace_groups(EventFilter(errors=True)) == []
        assert store.query_daily_counts() == count_daily(events)
        assert _scalar(store.engine, "SELECT SUM(n) FROM event_counts WHERE span = 0") == 27


# -- plans ---------------------------------------------------------------------------------------


def _plans(store: Sql14Store, query: Callable[[], object]) -> list[str]:
    """The database's plan of every SELECT the store runs for `query`, one text per statement."""
    captured: list[tuple[str, Any]] = []

    def capture(
        conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool
    ) -> None:
        if statement.lstrip().upper().startswith("SELECT") and "code_wake_schema" not in statement:
            captured.append((statement, parameters))

    sa.event.listen(store.engine, "before_cursor_execute", capture)
    try:
        query()
    finally:
        sa.event.remove(store.engine, "before_cursor_execute", capture)
    prefix = "EXPLAIN QUERY PLAN " if store.engine.dialect.name == "sqlite" else "EXPLAIN "
    with store.engine.connect() as conn:
        return [
            "\n".join(" | ".join(str(v) for v in row) for row in conn.exec_driver_sql(prefix + sql, params))
            for sql, params in captured
        ]


@pytest.fixture
def filled(db_url: str, open_store: Opener) -> Sql14Store:
    """3,000 events of 30 customers over 50 hours, a tenth with an exception; statistics gathered."""
    store = open_store(db_url)
    process = store.insert_process(process_info())
    policy = store.event_policy
    store.insert_events(
        [
            policy.build(
                process.id,
                {"event": "order", "customer": f"c{n % 30}", "n": str(n)},
                exc=ValueError("x") if n % 10 == 0 else None,
                frames=TRACE_A if n % 10 == 0 else None,
                when_ts=DAY0 + n * 60,
            )
            for n in range(3000)
        ]
    )
    statements = {"sqlite": [], "postgresql": ["ANALYZE"]}.get(
        store.engine.dialect.name, ["ANALYZE TABLE events_data", "ANALYZE TABLE events"]
    )
    with store.engine.begin() as conn:
        for statement in statements:
            conn.exec_driver_sql(statement)
    return store


def test_event_pages_use_their_indexes(filled: Sql14Store) -> None:
    """A data term's page and a time range's page come from their indexes, newest first, without a sort."""
    store = filled
    name = store.engine.dialect.name
    term = _plans(store, lambda: list(store.query_events(EventFilter(where={"customer": "c7"}, limit=20))))[0]
    page = _plans(
        store, lambda: list(store.query_events(EventFilter(since=DAY0 + HOUR, until=DAY0 + 2 * HOUR)))
    )[0]
    print(term, page, sep="\n\n")  # shown by pytest -s, and with a failure
    assert "ix_events_data_key_val" in term
    assert "ix_events_when_ts" in page
    if name == "sqlite":
        assert "TEMP B-TREE" not in term + page
    elif name == "postgresql":
        # With this little data PostgreSQL may sort the few matches; at 1M events the
        # plan is an Index Scan Backward without a sort (python -m bench --queries-explain).
        assert "Seq Scan" not in term + page
    else:
        assert "filesort" not in term


def test_groups_read_the_summary(sqlite_url: str, open_store: Opener) -> None:
    """On SQLite (no statistics) the groups of a day come from event_counts' key, not from events."""
    store = open_store(sqlite_url)
    build_scene(store)
    plans = _plans(store, lambda: store.query_trace_groups(EventFilter(since=DAY0 + 24 * HOUR)))
    assert "SEARCH event_counts USING PRIMARY KEY (span=? AND bucket_ts>?)" in plans[0]
    assert all("SCAN events" not in plan for plan in plans)


# -- writers and prune ---------------------------------------------------------------------------------


def test_a_writer_goes_on_after_another_store_pruned(db_url: str, open_store: Opener) -> None:
    """A process and a trace pruned by another store are stored again when the writer uses them next."""
    writer = open_store(db_url)
    quiet = writer.insert_process(process_info(app_name="quiet", run_ts=DAY0 - HOUR))
    try:
        raise ValueError("long ago")
    except ValueError as exc:
        first = stored(writer.insert_event(quiet, {"n": "1"}, exc, when_ts=DAY0, sync=True))
    pruner = open_store(db_url)
    pruner.insert_process(process_info(app_name="busy"))  # the newest process, which prune keeps
    report = pruner.prune(DAY0 + HOUR)
    assert (report.events, report.processes, report.stacktraces) == (1, 1, 0)  # the newest trace is kept
    assert pruner.get_process_by_id(quiet.id) is None
    try:
        raise ValueError("again")
    except ValueError as exc:
        again = stored(writer.insert_event(quiet, {"n": "2"}, exc, when_ts=DAY0 + 2 * HOUR, sync=True))
    assert pruner.get_process_by_id(quiet.id) == quiet
    loaded = stored(pruner.get_event_by_id(again.id))
    assert loaded.process == quiet
    assert loaded.stacktrace is not None and first.stacktrace is not None
    assert [g.count for g in pruner.query_trace_groups(EventFilter(app="quiet"))] == [1]


def test_a_batch_goes_on_after_another_store_pruned(db_url: str, open_store: Opener) -> None:
    """The same through a batch of several events (PostgreSQL locks the process in the batch's id query)."""
    writer = open_store(db_url)
    quiet = writer.insert_process(process_info(app_name="quiet", run_ts=DAY0 - HOUR))
    pruner = open_store(db_url)
    pruner.insert_process(process_info(app_name="busy"))
    assert pruner.prune(DAY0 + HOUR).processes == 1
    batch = [writer.event_policy.build(quiet.id, {"n": str(n)}, when_ts=DAY0 + 2 * HOUR) for n in range(3)]
    records = writer.insert_events(batch)
    assert pruner.get_process_by_id(quiet.id) == quiet
    assert [pruner.get_event_by_id(record.id) for record in records] == records


def test_a_writer_holding_a_pruned_trace(db_url: str, open_store: Opener) -> None:
    """A trace removed under a writer that cached it is stored again (under a new id) on its next use."""
    writer = open_store(db_url)
    process = writer.insert_process(process_info())
    old = stored(
        writer.insert_event(process, {"n": "1"}, st_data=[["old.py", 1, "old()"]], when_ts=DAY0, sync=True)
    )
    stored(
        writer.insert_event(
            process, {"n": "2"}, st_data=[["new.py", 2, "new()"]], when_ts=DAY0 + 9 * HOUR, sync=True
        )
    )
    pruner = open_store(db_url)
    assert pruner.prune(DAY0 + HOUR).stacktraces == 1
    again = stored(
        writer.insert_event(
            process, {"n": "3"}, st_data=[["old.py", 1, "old()"]], when_ts=DAY0 + 10 * HOUR, sync=True
        )
    )
    assert again.stacktrace is not None and old.stacktrace is not None
    assert again.stacktrace.id != old.stacktrace.id
    assert again.stacktrace.digest == old.stacktrace.digest
    assert stored(pruner.get_event_by_id(again.id)).stacktrace == again.stacktrace


def test_summary_without_an_upsert(sqlite_url: str, open_store: Opener) -> None:
    """Where a database has no upsert, counts are added by update-else-insert, to the same sums."""
    store = open_store(sqlite_url)
    build_scene(store)
    c = event_counts.c
    columns = (events.c.id, events.c.when_ts, events.c.app_id, events.c.app_vsn_id)
    columns += (events.c.environment_id, events.c.stacktrace_id, events.c.exc_type)
    with store.engine.begin() as conn:
        rows = [tuple(row) for row in conn.execute(sa.select(*columns).order_by(events.c.id))]
        conn.execute(sa.delete(event_counts))
        add_counts(conn, None, rows)  # type: ignore[arg-type]
        add_counts(conn, None, rows)  # type: ignore[arg-type]
        stored_rows = conn.execute(sa.select(event_counts).order_by(*c)).all()
    expected = count_rows(rows)  # type: ignore[arg-type]
    assert {tuple(row[:7]): (row.n, row.first_ts, row.last_ts, row.last_event_id) for row in stored_rows} == {
        key: (2 * n, first, last, last_id) for key, (n, first, last, last_id) in expected.items()
    }


def test_count_rows_matches_a_tally_per_span() -> None:
    """Tallied per hour then summed into days and all time: the same as counting each span alone."""
    rng = random.Random(7)
    rows = [
        (
            event_id,
            DAY0 + rng.uniform(-3 * 86_400, 3 * 86_400),
            rng.choice((1, 2, None)),
            rng.choice((3, None)),
            rng.choice((4, 5)),
            rng.choice((None, 6)),
            rng.choice((None, "ValueError", "KeyError")),
        )
        for event_id in range(1, 2_001)
    ]
    naive: dict[tuple[Any, ...], list[Any]] = {}
    for span in (0, 86_400, 3_600):
        for event_id, when_ts, app, vsn, env, trace, exc in rows:
            bucket = int(when_ts // span) * span if span else 0
            key = (span, bucket, app or 0, vsn or 0, env or 0, trace or 0, exc or "")
            n, first, last, top = naive.get(key, [0, when_ts, when_ts, event_id])
            naive[key] = [n + 1, min(first, when_ts), max(last, when_ts), max(top, event_id)]
    assert count_rows(rows) == naive  # type: ignore[arg-type]
    assert sum(n for (span, *_), (n, *_) in naive.items() if span == 0) == len(rows)
