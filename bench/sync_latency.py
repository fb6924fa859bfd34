"""`log(sync=True)` latency on a SQLite file: empty, and holding many events.

Target (BENCHMARKS.md): <= 1 ms, and flat: with a full database within
1.5 x of an empty one. Anchor: raw sqlite3 writing the same rows (one event,
three data rows) with one commit per event, in the same run.
"""

from __future__ import annotations

import sqlite3
import tempfile
import time
from pathlib import Path

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


def _raw_anchor(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute("CREATE TABLE IF NOT EXISTS e (id INTEGER PRIMARY KEY, ts REAL, pid INTEGER)")
    db.execute("CREATE TABLE IF NOT EXISTS d (id INTEGER PRIMARY KEY, k TEXT, v TEXT, e INTEGER)")
    return db


def _raw_insert(db: sqlite3.Connection) -> None:
    db.execute("BEGIN")
    event_id = db.execute("INSERT INTO e (ts, pid) VALUES (?, 1)", (time.time(),)).lastrowid
    db.executemany("INSERT INTO d (k, v, e) VALUES (?, ?, ?)", [(k, v, event_id) for k, v in DATA.items()])
    db.execute("COMMIT")


def _measure(
    proc: code_wake.Process, anchor: sqlite3.Connection, calls: int, repeats: int
) -> dict[str, float]:
    return interleaved_medians(
        {
            "code_wake": lambda: per_call_us(lambda: proc.log(DATA, sync=True), calls),
            "raw": lambda: per_call_us(lambda: _raw_insert(anchor), calls),
        },
        repeats,
    )


def run(sizes: tuple[int, ...] = (0, 100_000), calls: int = 300, repeats: int = 7) -> list[Row]:
    """Measure sync latency at each database size, against the raw anchor."""
    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as tmp:
        anchor = _raw_anchor(Path(tmp) / "raw.sqlite")
        baseline: float | None = None
        for size in sizes:
            code_wake.Process.reset()
            store = Sql14Store(f"sqlite:///{tmp}/events-{size}.sqlite")
            proc = code_wake.Process(store=store, app_name="bench")
            _fill(store, proc.id, size)
            medians = _measure(proc, anchor, calls, repeats)
            ours, raw = medians["code_wake"], medians["raw"]
            baseline = ours if baseline is None else baseline
            rows.append(Row(f"log(sync=True), {size:,} events stored", ours, "us", "target <= 1000 us"))
            rows.append(Row(f"  raw sqlite3 anchor at {size:,}", raw, "us", f"ratio {ours / raw:.2f} x"))
            rows.append(Row(f"  growth vs empty at {size:,}", ours / baseline, "x", "target <= 1.5 x"))
            store.close()
        anchor.close()
    code_wake.Process.reset()
    return rows
