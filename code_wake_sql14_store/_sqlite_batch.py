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
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

__all__ = ["EVENT_COLUMNS", "insert_data", "insert_events"]

EVENT_COLUMNS = ("when_ts", "process_id", "digest", "stacktrace_id", "exc_type", "exc_message")
"""The order of the values in each event row given to `insert_events`."""

_DATA_COLUMNS = ("event_id", "key", "val")

# SQLite 3.32 raised the default limit of bound parameters from 999 to 32766.
_MAX_PARAMETERS = 32_766 if sqlite3.sqlite_version_info >= (3, 32) else 999


def insert_events(conn: sa.Connection, rows: Sequence[tuple[Any, ...]]) -> list[int]:
    """Insert event rows (in `EVENT_COLUMNS` order); return their ids in order.

    The caller's transaction holds SQLite's only write lock, so the rowids a
    multi-row INSERT assigns are consecutive, ending at the last one.
    """
    ids: list[int] = []
    for chunk in _chunks(rows, len(EVENT_COLUMNS)):
        result = conn.exec_driver_sql(_insert_sql("events", EVENT_COLUMNS, len(chunk)), _flat(chunk))
        last = int(result.lastrowid)
        ids.extend(range(last - len(chunk) + 1, last + 1))
    return ids


def insert_data(conn: sa.Connection, rows: Sequence[tuple[int, str, str | None]]) -> None:
    """Insert ``(event_id, key, val)`` rows."""
    for chunk in _chunks(rows, len(_DATA_COLUMNS)):
        conn.exec_driver_sql(_insert_sql("events_data", _DATA_COLUMNS, len(chunk)), _flat(chunk))


def _chunks(rows: Sequence[tuple[Any, ...]], width: int) -> list[Sequence[tuple[Any, ...]]]:
    size = _MAX_PARAMETERS // width
    return [rows[start : start + size] for start in range(0, len(rows), size)]


def _flat(rows: Sequence[tuple[Any, ...]]) -> tuple[Any, ...]:
    return tuple(value for row in rows for value in row)


_SQL_CACHE: dict[tuple[str, int], str] = {}


def _insert_sql(table: str, columns: tuple[str, ...], count: int) -> str:
    """``INSERT INTO table (...) VALUES (?, ...), ...`` for `count` rows (cached: batch sizes repeat)."""
    key = (table, count)
    sql = _SQL_CACHE.get(key)
    if sql is None:
        row = "(" + ",".join("?" * len(columns)) + ")"
        quoted = ",".join(f'"{column}"' for column in columns)
        sql = f"INSERT INTO {table} ({quoted}) VALUES " + ",".join([row] * count)
        if len(_SQL_CACHE) < 1024:
            _SQL_CACHE[key] = sql
    return sql
