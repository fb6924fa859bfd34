"""Batch writes for SQLite: one multi-row INSERT per table per batch.

SQLite's driver releases the GIL around every statement step, and a writer
thread that releases it must wait for a CPU-bound application thread to hand
it back (up to the interpreter's switch interval, 5 ms, each time). An
``executemany`` steps once per row, so under load it crawls; one multi-row
``INSERT ... VALUES (...), (...)`` crosses the GIL a few times per batch
(BENCHMARKS.md measured 24 x the throughput under load).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa

__all__ = ["insert_many"]

# SQLite 3.32 raised the default limit of bound parameters from 999 to 32766.
_MAX_PARAMETERS = 32_766 if sqlite3.sqlite_version_info >= (3, 32) else 999

_SQL_CACHE: dict[tuple[str, tuple[str, ...], int], str] = {}


def insert_many(conn: sa.Connection, table: str, rows: Sequence[Mapping[str, Any]]) -> int:
    """Insert `rows` (dicts with the same keys) into `table`; return the last rowid.

    Inside the caller's transaction SQLite's only write lock is held, so the
    rowids assigned are consecutive and end at the returned one.
    """
    columns = tuple(rows[0])
    size = max(1, _MAX_PARAMETERS // len(columns))
    last = 0
    for start in range(0, len(rows), size):
        chunk = rows[start : start + size]
        values = tuple(row[column] for row in chunk for column in columns)
        result = conn.exec_driver_sql(_insert_sql(table, columns, len(chunk)), values)
        last = int(result.lastrowid)
    return last


def _insert_sql(table: str, columns: tuple[str, ...], count: int) -> str:
    """``INSERT INTO table (...) VALUES (?, ...), ...`` for `count` rows (cached: batch sizes repeat)."""
    key = (table, columns, count)
    sql = _SQL_CACHE.get(key)
    if sql is None:
        row = "(" + ",".join("?" * len(columns)) + ")"
        quoted = ",".join(f'"{column}"' for column in columns)
        sql = f"INSERT INTO {table} ({quoted}) VALUES " + ",".join([row] * count)
        if len(_SQL_CACHE) < 1024:
            _SQL_CACHE[key] = sql
    return sql
