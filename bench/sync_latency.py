"""`log(sync=True)` latency on a SQLite file: empty, and holding many events.

Target (BENCHMARKS.md): <= 1 ms, and flat: with a full database within
1.5 x of an empty one. Anchor: the database driver writing the same rows
(one event, three data rows, one commit) into the same tables of the same
file, indexes and all, interleaved with code_wake in the same run
(`RawWriter`, which ``bench.growth`` uses on every backend).
"""

from __future__ import annotations

import functools
import tempfile
import time
from collections.abc import Callable, Mapping
from typing import Protocol

import sqlalchemy as sa

import code_wake
from code_wake.event import EventPolicy, PendingEvent
from code_wake.records import AppRecord, AppVsnRecord, EnvironmentRecord
from code_wake_sql14_store import Sql14Store

from .timing import Row, interleaved_medians, per_call_us

DATA = {"event": "order", "customer": "c42", "type": "special"}
WARM_CALLS = 10
"""Calls of each before measuring: the process registers, statements are prepared."""


def _fill(store: Sql14Store, process_id: int, count: int) -> None:
    """Put `count` events into the store quickly, in large batches."""
    policy = EventPolicy()
    now = time.time()
    batch = 5000
    for start in range(0, count, batch):
        events = [
            PendingEvent(process_id, now, policy.normalise({**DATA, "n": str(i)}))
            for i in range(start, min(start + batch, count))
        ]
        store.insert_events(events)


class Owner(Protocol):
    """Whose events the anchor writes: a `code_wake.Process` or a `ProcessRecord`."""

    @property
    def id(self) -> int: ...
    @property
    def app(self) -> AppRecord: ...
    @property
    def app_vsn(self) -> AppVsnRecord | None: ...
    @property
    def environment(self) -> EnvironmentRecord | None: ...


class RawWriter:
    """The anchor: the database's own driver writing the rows ``log(sync=True)`` of `data` writes.

    One event row (with its process's app, version and environment copied,
    as the store writes it), one row per data item (with the event's time),
    one commit; through a connection of its own to the store's database. Not
    the ``event_counts`` summary: that is code_wake's design, not a price the
    database sets. SQLite gets the store's settings (synchronous=NORMAL; the
    file is already in WAL mode).
    """

    def __init__(self, url: str, owner: Owner, data: Mapping[str, str]) -> None:
        self._engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
        dialect = self._engine.dialect
        self._returning = dialect.name == "postgresql"
        self._connection = self._engine.raw_connection()
        db = self._connection.dbapi_connection
        assert db is not None
        self._db = db
        self._cursor = db.cursor()
        if dialect.name == "sqlite":
            self._cursor.execute("PRAGMA synchronous=NORMAL")
            self._cursor.execute("PRAGMA busy_timeout=30000")
        mark = "?" if dialect.paramstyle == "qmark" else "%s"
        self._event_sql = (
            "INSERT INTO events (when_ts, process_id, app_id, app_vsn_id, environment_id)"
            f" VALUES ({mark}, {mark}, {mark}, {mark}, {mark})" + (" RETURNING id" if self._returning else "")
        )
        key = dialect.identifier_preparer.quote("key")
        self._data_sql = (
            f"INSERT INTO events_data ({key}, val, event_id, when_ts) VALUES ({mark}, {mark}, {mark}, {mark})"
        )
        self._owner = (
            owner.id,
            owner.app.id,
            None if owner.app_vsn is None else owner.app_vsn.id,
            None if owner.environment is None else owner.environment.id,
        )
        self._items = list(data.items())

    def insert(self) -> None:
        """Write one event and its data, and commit."""
        now = time.time()
        self._cursor.execute(self._event_sql, (now, *self._owner))
        event_id = self._new_id()
        self._cursor.executemany(self._data_sql, [(k, v, event_id, now) for k, v in self._items])
        self._db.commit()

    def _new_id(self) -> int:
        if not self._returning:
            return int(self._cursor.lastrowid)
        row = self._cursor.fetchone()
        assert row is not None
        return int(row[0])

    def close(self) -> None:
        """Close the connection."""
        self._cursor.close()
        self._connection.close()
        self._engine.dispose()


def measure(candidates: dict[str, Callable[[], object]], calls: int, repeats: int) -> dict[str, float]:
    """Microseconds per call of each candidate, by name: medians of `repeats` rounds of `calls` calls,
    the candidates interleaved in each round, after a few calls of each to warm up."""
    for _ in range(WARM_CALLS):
        for call in candidates.values():
            call()
    return interleaved_medians(
        {name: functools.partial(per_call_us, call, calls) for name, call in candidates.items()}, repeats
    )


def run(sizes: tuple[int, ...] = (0, 100_000), calls: int = 300, repeats: int = 7) -> list[Row]:
    """Measure sync latency at each database size, against the raw anchor."""
    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as tmp:
        baseline: float | None = None
        for size in sizes:
            code_wake.Process.reset()
            url = f"sqlite:///{tmp}/events-{size}.sqlite"
            store = Sql14Store(url)
            proc = code_wake.Process(store=store, app_name="bench")
            _fill(store, proc.id, size)
            anchor = RawWriter(url, proc, DATA)
            medians = measure(
                {"code_wake": functools.partial(proc.log, DATA, sync=True), "raw": anchor.insert},
                calls,
                repeats,
            )
            ours, raw = medians["code_wake"], medians["raw"]
            baseline = ours if baseline is None else baseline
            rows.append(Row(f"log(sync=True), {size:,} events stored", ours, "us", "target <= 1000 us"))
            rows.append(Row(f"  raw sqlite3 anchor at {size:,}", raw, "us", f"ratio {ours / raw:.2f} x"))
            rows.append(Row(f"  growth vs empty at {size:,}", ours / baseline, "x", "target <= 1.5 x"))
            anchor.close()
            store.close()
    code_wake.Process.reset()
    return rows
