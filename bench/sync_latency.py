"""`log(sync=True)` latency on a SQLite file: empty, and holding many events.

Target (BENCHMARKS.md): <= 1 ms, and flat: with a full database within
1.5 x of an empty one. Anchor: raw sqlite3 writing the same rows (one event,
three data rows, one commit) into the same tables of the same file, indexes
and all, interleaved with code_wake in the same run.
"""

from __future__ import annotations

import sqlite3
import tempfile
import time

import code_wake
from code_wake.event import EventPolicy, PendingEvent
from code_wake_sql14_store import Sql14Store

from .timing import Row, interleaved_medians, per_call_us

DATA = {"event": "order", "customer": "c42", "type": "special"}


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


def _raw_anchor(path: str) -> sqlite3.Connection:
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute("PRAGMA busy_timeout=30000")
    return db


def _raw_insert(db: sqlite3.Connection, process_id: int) -> None:
    db.execute("BEGIN")
    event_id = db.execute(
        "INSERT INTO events (when_ts, process_id) VALUES (?, ?)", (time.time(), process_id)
    ).lastrowid
    db.executemany(
        "INSERT INTO events_data (key, val, event_id) VALUES (?, ?, ?)",
        [(k, v, event_id) for k, v in DATA.items()],
    )
    db.execute("COMMIT")


def _measure(
    proc: code_wake.Process, anchor: sqlite3.Connection, calls: int, repeats: int
) -> dict[str, float]:
    return interleaved_medians(
        {
            "code_wake": lambda: per_call_us(lambda: proc.log(DATA, sync=True), calls),
            "raw": lambda: per_call_us(lambda: _raw_insert(anchor, proc.id), calls),
        },
        repeats,
    )


def run(sizes: tuple[int, ...] = (0, 100_000), calls: int = 300, repeats: int = 7) -> list[Row]:
    """Measure sync latency at each database size, against the raw anchor."""
    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as tmp:
        baseline: float | None = None
        for size in sizes:
            code_wake.Process.reset()
            path = f"{tmp}/events-{size}.sqlite"
            store = Sql14Store(f"sqlite:///{path}")
            proc = code_wake.Process(store=store, app_name="bench")
            _fill(store, proc.id, size)
            anchor = _raw_anchor(path)
            medians = _measure(proc, anchor, calls, repeats)
            ours, raw = medians["code_wake"], medians["raw"]
            baseline = ours if baseline is None else baseline
            rows.append(Row(f"log(sync=True), {size:,} events stored", ours, "us", "target <= 1000 us"))
            rows.append(Row(f"  raw sqlite3 anchor at {size:,}", raw, "us", f"ratio {ours / raw:.2f} x"))
            rows.append(Row(f"  growth vs empty at {size:,}", ours / baseline, "x", "target <= 1.5 x"))
            anchor.close()
            store.close()
    code_wake.Process.reset()
    return rows
