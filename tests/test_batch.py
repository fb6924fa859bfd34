"""The batch writers of Sql14Store, each on the databases it serves, against real servers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa

from code_wake.testing.contract import process_info
from code_wake_sql14_store import Sql14Store
from code_wake_sql14_store._batch import (
    BatchWriter,
    MysqlBatch,
    PostgresqlBatch,
    SqlalchemyBatch,
    SqliteBatch,
    batch_writer,
    consecutive_mysql_ids,
)
from code_wake_sql14_store.schema import events, events_data

Opener = Callable[[str], Sql14Store]

_FAST_WRITERS: dict[str, Callable[[sa.Dialect], BatchWriter]] = {
    "sqlite": SqliteBatch,
    "postgresql": PostgresqlBatch,
    "mysql": MysqlBatch,
}


@pytest.fixture
def prepared(db_url: str, open_store: Opener) -> tuple[Sql14Store, int]:
    """A store with its schema created and one process registered (for the foreign keys)."""
    store = open_store(db_url)
    return store, store.insert_process(process_info()).id


@pytest.fixture
def backend(prepared: tuple[Sql14Store, int]) -> str:
    """The database's dialect, as the fast writers are keyed."""
    name = prepared[0].engine.dialect.name
    return "mysql" if name == "mariadb" else name


@pytest.fixture(params=["fast", "sqlalchemy"])
def writer(request: pytest.FixtureRequest, backend: str, prepared: tuple[Sql14Store, int]) -> BatchWriter:
    """The dialect's own writer, and SQLAlchemy's generic one, on the same database."""
    if request.param == "sqlalchemy":
        return SqlalchemyBatch()
    return _FAST_WRITERS[backend](prepared[0].engine.dialect)


def _event_rows(process_id: int, count: int, big: int = 0) -> list[dict[str, Any]]:
    return [
        {
            "when_ts": 1_700_000_000.0 + n,
            "process_id": process_id,
            "digest": None if n % 2 else bytes([n % 256]) * 32,
            "stacktrace_id": None,
            "exc_type": None if n % 3 else f"Error{n}",
            "exc_message": "x" * big if big else f"message {n}",
            "app_id": None,
            "app_vsn_id": None,
            "environment_id": None,
        }
        for n in range(count)
    ]


def _tuples(rows: list[dict[str, Any]]) -> tuple[tuple[str, ...], list[tuple[Any, ...]]]:
    """Rows as the writers take them: the column names, and each row's values in their order."""
    return tuple(rows[0]), [tuple(row.values()) for row in rows]


def _stored(conn: sa.Connection, ids: list[int]) -> dict[int, tuple[Any, ...]]:
    query = sa.select(events.c.id, events.c.when_ts, events.c.exc_type, events.c.digest).where(
        events.c.id.in_(ids)
    )
    return {row.id: (row.when_ts, row.exc_type, row.digest) for row in conn.execute(query)}


@pytest.mark.parametrize("count", [2, 500, 1_200])
def test_event_ids_come_back_in_order(
    prepared: tuple[Sql14Store, int], writer: BatchWriter, count: int
) -> None:
    """Each id returned is the id of the row given at that position, however many rows."""
    store, process_id = prepared
    rows = _event_rows(process_id, count)
    with store.engine.begin() as conn:
        ids = writer.insert_events(conn, events, *_tuples(rows))
    assert len(ids) == len(set(ids)) == count
    with store.engine.connect() as conn:
        stored = _stored(conn, ids)
    assert [stored[i] for i in ids] == [(r["when_ts"], r["exc_type"], r["digest"]) for r in rows]


def test_rows_keep_their_values(prepared: tuple[Sql14Store, int], writer: BatchWriter) -> None:
    """Data rows arrive whole: nulls, quotes, backslashes, non-ASCII text, emoji, NUL escaped."""
    store, process_id = prepared
    values = [
        None,
        "",
        "it's",
        'say "hi"',
        "back\\slash",
        "percent %s %(x)s",
        "Grüße",
        "🙂",
        "\\x00",
        "{a,b}",
    ]
    with store.engine.begin() as conn:
        (event_id,) = writer.insert_events(conn, events, *_tuples(_event_rows(process_id, 1) * 2))[:1]
        data = [
            {"event_id": event_id, "key": f"k{n}", "val": val, "when_ts": 1.5} for n, val in enumerate(values)
        ]
        writer.insert_rows(conn, events_data, *_tuples(data))
    with store.engine.connect() as conn:
        query = sa.select(events_data.c.key, events_data.c.val).where(events_data.c.event_id == event_id)
        stored = {str(k): v for k, v in conn.execute(query)}
    assert stored == {f"k{n}": val for n, val in enumerate(values)}


def test_large_values_split_into_several_statements(
    prepared: tuple[Sql14Store, int], writer: BatchWriter
) -> None:
    """Rows far past one statement's size (MySQL: ~1 MB) are all written, ids in order."""
    store, process_id = prepared
    rows = _event_rows(process_id, 12, big=300_000)
    with store.engine.begin() as conn:
        ids = writer.insert_events(conn, events, *_tuples(rows))
    with store.engine.connect() as conn:
        length = sa.func.length(events.c.exc_message)
        lengths = {
            int(i): n for i, n in conn.execute(sa.select(events.c.id, length).where(events.c.id.in_(ids)))
        }
        stored = _stored(conn, ids)
    assert lengths == dict.fromkeys(ids, 300_000)
    assert [stored[i][0] for i in ids] == [r["when_ts"] for r in rows]


def test_each_database_gets_its_own_writer(backend: str, prepared: tuple[Sql14Store, int]) -> None:
    """The store picks the dialect's writer: this machine's MariaDB gives consecutive ids."""
    store, _ = prepared
    with store.engine.connect() as conn:
        chosen = batch_writer(conn)
        if backend == "mysql":
            assert consecutive_mysql_ids(conn)
    assert type(chosen) is _FAST_WRITERS[backend]


def test_a_rolled_back_batch_leaves_nothing(prepared: tuple[Sql14Store, int], writer: BatchWriter) -> None:
    """The writer works inside the caller's transaction: an error later in it undoes the rows."""
    store, process_id = prepared

    def fail_after_writing() -> None:
        with store.engine.begin() as conn:
            writer.insert_events(conn, events, *_tuples(_event_rows(process_id, 50)))
            raise RuntimeError("later step failed")

    with pytest.raises(RuntimeError):
        fail_after_writing()
    with store.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(events)).scalar() == 0
