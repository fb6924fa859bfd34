"""Writing a batch of rows: a few round trips per table, whatever the batch size.

`batch_writer` picks, once per store, the fastest form the database and its
driver offer for the two big tables (``events``, ``events_data``):

- SQLite: one multi-row ``INSERT ... VALUES (...), (...)`` per table. The
  driver releases the GIL around every statement step, and a writer thread
  that releases it waits for a CPU-bound application thread to hand it back
  (up to the switch interval, 5 ms, each time); ``executemany`` steps once per
  row, so under load it crawls (docs/production.md, "Figures measured here":
  the CPU-bound row, measured by ``python -m bench --only busy``).
  The transaction holds SQLite's only write lock, so the new event ids are
  consecutive and end at the last rowid.
- PostgreSQL (psycopg 3, psycopg2): the ids come from the table's sequence
  in one query, and each table gets one ``INSERT ... SELECT * FROM
  unnest(%s::type[], ...)``: one column per array, whatever the row count.
  The statement text never changes, so the driver parses and prepares it
  once; SQLAlchemy's multi-row ``INSERT ... RETURNING`` (insertmanyvalues)
  sends a new statement text per batch size, which psycopg parses anew each
  time, a third of the write time in the profile.
- MySQL/MariaDB (PyMySQL, mysqlclient): multi-row ``INSERT ... VALUES`` in
  statements of a bounded size. With ``innodb_autoinc_lock_mode`` 0 or 1 (the
  default of MariaDB and of MySQL before 8.0), the ids of one such "simple
  insert" are consecutive, starting at the id the statement reports, so no
  rows come back; MariaDB's ``RETURNING`` otherwise costs a result row per
  event, decoded in pure Python by PyMySQL.
- Anything else, or MySQL with interleaved ids (mode 2): SQLAlchemy's own
  ``executemany`` and insertmanyvalues ``RETURNING``, else one ``INSERT`` per
  event.
"""

from __future__ import annotations

import itertools
import sqlite3
from collections.abc import Iterator, Sequence
from typing import Any, Protocol

import sqlalchemy as sa

from code_wake.errors import StoreError

from .schema import MYSQL_DIALECTS

__all__ = ["BatchWriter", "SqlalchemyBatch", "batch_writer", "new_id", "serial_sequence"]

Columns = tuple[str, ...]
"""Column names, in the order of the values of each row."""

Rows = Sequence[Sequence[Any]]
"""Rows of one table, as tuples of their values in the order of the columns given beside them."""

# SQLite 3.32 raised the default limit of bound parameters from 999 to 32766.
_SQLITE_MAX_PARAMETERS = 32_766 if sqlite3.sqlite_version_info >= (3, 32) else 999
_MYSQL_MAX_ROWS = 5000
"""Rows per MySQL statement at most: long enough to amortise a round trip."""
_MYSQL_MAX_BYTES = 1 << 20
"""Bytes of values per MySQL statement, roughly: far below max_allowed_packet (16 MB by default)."""
_SQL_CACHE_SIZE = 1024


class BatchWriter(Protocol):
    """Inserts the rows of a batch inside the caller's transaction (`rows` is never empty).

    Rows are tuples rather than dicts: a batch has thousands of values, and
    flattening tuples costs no lookup per value.
    """

    def insert_events(self, conn: sa.Connection, table: sa.Table, columns: Columns, rows: Rows) -> list[int]:
        """Insert `rows` into `table` (an autoincrementing ``id``); return their ids in order."""
        ...

    def insert_rows(self, conn: sa.Connection, table: sa.Table, columns: Columns, rows: Rows) -> None:
        """Insert `rows` into `table`; no ids wanted."""
        ...


def batch_writer(conn: sa.Connection) -> BatchWriter:
    """The fastest writer for the database behind `conn` (connected: some choices ask the server)."""
    dialect = conn.dialect
    if dialect.name == "sqlite" and dialect.driver == "pysqlite":
        return SqliteBatch(dialect)
    if dialect.name == "postgresql" and dialect.driver in {"psycopg", "psycopg2"}:
        return PostgresqlBatch(dialect)
    mysql_driver = dialect.name in MYSQL_DIALECTS and dialect.driver in {"pymysql", "mysqldb"}
    if mysql_driver and consecutive_mysql_ids(conn):
        return MysqlBatch(dialect)
    return SqlalchemyBatch()


def consecutive_mysql_ids(conn: sa.Connection) -> bool:
    """Whether the server gives a multi-row INSERT consecutive ids (innodb_autoinc_lock_mode < 2)."""
    mode = conn.exec_driver_sql("SELECT @@innodb_autoinc_lock_mode").scalar()
    return mode is not None and int(mode) < 2


class SqlalchemyBatch:
    """SQLAlchemy's batch forms: for any database it supports."""

    def insert_events(self, conn: sa.Connection, table: sa.Table, columns: Columns, rows: Rows) -> list[int]:
        dicts = _dicts(columns, rows)
        if conn.dialect.insert_executemany_returning_sort_by_parameter_order:
            # insertmanyvalues: multi-row INSERT .. RETURNING statements, ids in our order.
            returning = sa.insert(table).returning(table.c.id, sort_by_parameter_order=True)
            return [int(event_id) for event_id in conn.execute(returning, dicts).scalars()]
        return [new_id(conn.execute(sa.insert(table), row)) for row in dicts]

    def insert_rows(self, conn: sa.Connection, table: sa.Table, columns: Columns, rows: Rows) -> None:
        conn.execute(sa.insert(table), _dicts(columns, rows))


def _dicts(columns: Columns, rows: Rows) -> list[dict[str, Any]]:
    return [dict(zip(columns, row, strict=True)) for row in rows]


class _MultiRowBatch:
    """Multi-row ``INSERT ... VALUES`` statements written for the driver, cached by shape."""

    def __init__(self, dialect: sa.Dialect) -> None:
        self._quote = dialect.identifier_preparer.quote
        self._marker = "?" if dialect.paramstyle == "qmark" else "%s"
        self._sql: dict[tuple[str, tuple[str, ...], int], str] = {}

    def _chunks(self, rows: Rows, columns: Columns) -> Iterator[Rows]:
        raise NotImplementedError

    def _insert(
        self, conn: sa.Connection, table: sa.Table, columns: Columns, rows: Rows
    ) -> Iterator[tuple[int, int]]:
        """Insert `rows` chunk by chunk; yield each chunk's size and the driver's lastrowid."""
        for chunk in self._chunks(rows, columns):
            values = tuple(itertools.chain.from_iterable(chunk))
            result = conn.exec_driver_sql(self._values_sql(table.name, columns, len(chunk)), values)
            yield len(chunk), int(result.lastrowid)

    def insert_rows(self, conn: sa.Connection, table: sa.Table, columns: Columns, rows: Rows) -> None:
        for _ in self._insert(conn, table, columns, rows):
            pass

    def _values_sql(self, table: str, columns: Columns, count: int) -> str:
        """``INSERT INTO table (...) VALUES (?, ...), ...`` for `count` rows (batch sizes repeat)."""
        key = (table, columns, count)
        sql = self._sql.get(key)
        if sql is None:
            row = "(" + ",".join([self._marker] * len(columns)) + ")"
            names = ",".join(self._quote(column) for column in columns)
            sql = f"INSERT INTO {self._quote(table)} ({names}) VALUES " + ",".join([row] * count)
            if len(self._sql) < _SQL_CACHE_SIZE:
                self._sql[key] = sql
        return sql


class SqliteBatch(_MultiRowBatch):
    """SQLite: one statement per table, as long as the bound-parameter limit allows."""

    def _chunks(self, rows: Rows, columns: Columns) -> Iterator[Rows]:
        size = max(1, _SQLITE_MAX_PARAMETERS // len(columns))
        for start in range(0, len(rows), size):
            yield rows[start : start + size]

    def insert_events(self, conn: sa.Connection, table: sa.Table, columns: Columns, rows: Rows) -> list[int]:
        # The write lock is held from the first INSERT on: nobody else takes ids meanwhile.
        *_, (_, last) = self._insert(conn, table, columns, rows)
        return list(range(last - len(rows) + 1, last + 1))


class MysqlBatch(_MultiRowBatch):
    """MySQL/MariaDB with consecutive ids: statements of at most ~1 MB of values."""

    def _chunks(self, rows: Rows, columns: Columns) -> Iterator[Rows]:
        start, size = 0, 0
        for end, row in enumerate(rows):
            size += sum(len(value) for value in row if isinstance(value, (str, bytes))) + 64
            if end > start and (size > _MYSQL_MAX_BYTES or end - start >= _MYSQL_MAX_ROWS):
                yield rows[start:end]
                start, size = end, 0
        yield rows[start:]

    def insert_events(self, conn: sa.Connection, table: sa.Table, columns: Columns, rows: Rows) -> list[int]:
        ids: list[int] = []
        for count, first in self._insert(conn, table, columns, rows):
            # For a multi-row INSERT the driver reports the first id the statement took.
            ids.extend(range(first, first + count))
        return ids


class PostgresqlBatch:
    """PostgreSQL: ids from the sequence, then one ``unnest`` INSERT per table."""

    def __init__(self, dialect: sa.Dialect) -> None:
        self._dialect = dialect
        # psycopg 3 sends "%b" parameters in binary: arrays dump in C, not element by element.
        self._marker = "%b" if dialect.driver == "psycopg" else "%s"
        self._sql: dict[tuple[str, tuple[str, ...]], str] = {}

    def insert_events(self, conn: sa.Connection, table: sa.Table, columns: Columns, rows: Rows) -> list[int]:
        ids = self._next_ids(conn, table, len(rows))
        with_ids = [(event_id, *row) for event_id, row in zip(ids, rows, strict=True)]
        self.insert_rows(conn, table, ("id", *columns), with_ids)
        return ids

    def insert_rows(self, conn: sa.Connection, table: sa.Table, columns: Columns, rows: Rows) -> None:
        arrays = tuple(list(column) for column in zip(*rows, strict=True))
        conn.exec_driver_sql(self._unnest_sql(table, columns), arrays)

    def _next_ids(self, conn: sa.Connection, table: sa.Table, count: int) -> list[int]:
        """`count` new ids from the sequence behind ``table.id`` (serial or identity)."""
        sql = f"SELECT nextval({serial_sequence(table.name)}) FROM generate_series(1, %s)"
        return [int(event_id) for event_id in conn.exec_driver_sql(sql, (count,)).scalars()]

    def _unnest_sql(self, table: sa.Table, columns: Columns) -> str:
        key = (table.name, columns)
        sql = self._sql.get(key)
        if sql is None:
            quote = self._dialect.identifier_preparer.quote
            names = ",".join(quote(column) for column in columns)
            types = (table.c[column].type.compile(self._dialect) for column in columns)
            arrays = ",".join(f"{self._marker}::{type_}[]" for type_ in types)
            sql = f"INSERT INTO {quote(table.name)} ({names}) SELECT * FROM unnest({arrays})"
            self._sql[key] = sql
        return sql


def serial_sequence(table: str) -> str:
    """SQL for the sequence behind ``table.id`` (serial or identity), found once per statement.

    A scalar subquery, so PostgreSQL looks it up once: as the argument of
    ``nextval`` in a query of many rows it looked it up again for every row,
    5-7 us each, three quarters of the query's time.
    """
    return f"(SELECT pg_get_serial_sequence('{table}', 'id')::regclass)"


def new_id(result: sa.CursorResult[Any]) -> int:
    """The primary key the single-row INSERT of `result` generated."""
    key = result.inserted_primary_key
    if key is None or key[0] is None:
        raise StoreError("The database returned no id for a new row.")
    return int(key[0])
