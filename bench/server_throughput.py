"""Persisted throughput on the database servers, vs the raw driver's ``executemany``.

Target (BENCHMARKS.md): PostgreSQL >= 20,000 events/s end to end through the
queue, and >= 0.5 x raw psycopg ``executemany``; MySQL/MariaDB is measured the
same way against raw PyMySQL ``executemany`` (no absolute target).

Both sides write the same rows into the same schema, in a scratch database on
the server (CODE_WAKE_TEST_POSTGRESQL / CODE_WAKE_TEST_MYSQL, else the local
defaults): per event one ``events`` row with the columns the store fills and
three ``events_data`` rows, 500 events per transaction. The raw side takes
its ids as simply as the driver allows (the sequence on PostgreSQL, the
largest id on MySQL: it is the only writer) and skips the store's summary
counts. code_wake's side is ``Process().log(data)`` for every event, then
``flush()``: the time runs from the first call until all are committed.
Runs alternate, three of each; medians are reported. Servers that do not
answer are skipped.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

import sqlalchemy as sa

import code_wake
from code_wake_sql14_store import Sql14Store

from .queries import database
from .queue_bench import DATA, queued_rate
from .timing import Row

BATCH = 500
BACKENDS = {"postgresql": "PostgreSQL", "mysql": "MariaDB/MySQL"}
TARGET_EVENTS_PER_SECOND = {"postgresql": 20_000}


def _owner(url: str) -> dict[str, Any]:
    """The event columns naming who logged, from a process registered through the store."""
    with Sql14Store(url) as store:
        owner = store.insert_process(code_wake.ProcessInfo(1, None, None, None, time.time(), "bench-raw"))
    return {"process_id": owner.id, "app_id": owner.app.id, "app_vsn_id": None, "environment_id": None}


def _event_values(owner: dict[str, Any], now: float) -> tuple[Any, ...]:
    return (now, owner["process_id"], None, None, None, None, owner["app_id"], None, None)


_INSERT_EVENTS = (
    "INSERT INTO events (id, when_ts, process_id, digest, stacktrace_id, exc_type, exc_message,"
    " app_id, app_vsn_id, environment_id) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
)


def _raw_postgresql(url: str, count: int) -> float:
    """psycopg: ids from the sequence, then executemany for each table, one commit per batch."""
    import psycopg

    owner = _owner(url)
    plain = sa.make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(plain) as conn, conn.cursor() as cur:
        start = time.perf_counter()
        for first in range(0, count, BATCH):
            size = min(BATCH, count - first)
            now = time.time()
            cur.execute(
                "SELECT nextval(pg_get_serial_sequence('events', 'id')) FROM generate_series(1, %s)", (size,)
            )
            ids = [row[0] for row in cur.fetchall()]
            cur.executemany(_INSERT_EVENTS, [(event_id, *_event_values(owner, now)) for event_id in ids])
            cur.executemany(
                "INSERT INTO events_data (event_id, key, val, when_ts) VALUES (%s, %s, %s, %s)",
                [(event_id, key, val, now) for event_id in ids for key, val in DATA.items()],
            )
            conn.commit()
        return count / (time.perf_counter() - start)


def _raw_mysql(url: str, count: int) -> float:
    """PyMySQL: explicit ids after the largest, then executemany (multi-row INSERTs) per table."""
    import pymysql

    owner = _owner(url)
    parts = sa.make_url(url)
    conn = pymysql.connect(
        host=parts.host,
        port=parts.port or 3306,
        user=parts.username,
        password=parts.password or "",
        database=parts.database,
        charset="utf8mb4",
    )
    try:
        with conn.cursor() as cur:
            start = time.perf_counter()
            for first in range(0, count, BATCH):
                size = min(BATCH, count - first)
                now = time.time()
                cur.execute("SELECT COALESCE(MAX(id), 0) FROM events")
                row = cur.fetchone()
                assert row is not None
                ids = range(int(row[0]) + 1, int(row[0]) + 1 + size)
                cur.executemany(_INSERT_EVENTS, [(event_id, *_event_values(owner, now)) for event_id in ids])
                cur.executemany(
                    "INSERT INTO events_data (event_id, `key`, val, when_ts) VALUES (%s, %s, %s, %s)",
                    [(event_id, key, val, now) for event_id in ids for key, val in DATA.items()],
                )
                conn.commit()
            return count / (time.perf_counter() - start)
    finally:
        conn.close()


_RAW: dict[str, tuple[str, Callable[[str, int], float]]] = {
    "postgresql": ("raw psycopg executemany", _raw_postgresql),
    "mysql": ("raw PyMySQL executemany", _raw_mysql),
}


def _rows(backend: str, ours: Sequence[float], raw: Sequence[float]) -> list[Row]:
    name = BACKENDS[backend]
    ours_median, raw_median = statistics.median(ours), statistics.median(raw)
    target = "target >= 0.5 x"
    floor = TARGET_EVENTS_PER_SECOND.get(backend)
    if floor:
        target += f" and >= {floor:,} events/s"
    return [
        Row(f"{name}: {_RAW[backend][0]}", raw_median, "events/s", "anchor"),
        Row(
            f"{name}: Process().log -> queue -> store",
            ours_median,
            "events/s",
            f"ratio {ours_median / raw_median:.2f} x ({target})",
        ),
    ]


def run(quick: bool = False, count: int | None = None, repeats: int = 3) -> list[Row]:
    """Median events/s of code_wake and of the raw driver on every server that answers."""
    count = count or (5_000 if quick else 30_000)
    table: list[Row] = []
    for backend in BACKENDS:
        with database(backend) as url:
            if url is None:
                continue
            ours: list[float] = []
            raw: list[float] = []
            for _ in range(repeats):
                ours.append(queued_rate(url, count, BATCH))
                raw.append(_RAW[backend][1](url, count))
            table.extend(_rows(backend, ours, raw))
    if not table:
        table.append(Row("no database server answered", 0, "", "skipped"))
    return table
