"""The disk spool's rates beside the store's own: setting aside, and delivering back.

Four measurements, interleaved, each on fresh files in one temporary
directory:

- the store's own rate: `Sql14Store.insert_events` of batches of 500 into a
  SQLite WAL file (the anchor);
- setting aside: the same batches appended to a spool (the writer thread's
  form: what a failing store costs it);
- delivering: those batches read back from the spool and written to a
  fresh SQLite file (what the next process pays), against the anchor;
- one event at a time: the caller's own form when memory is full, in us per
  event, against a stdlib `logging.FileHandler` writing one line.
"""

from __future__ import annotations

import logging
import statistics
import tempfile
import time
from pathlib import Path

import code_wake
from code_wake._queue_spool import write_to
from code_wake._spool import Delivery, Spool, deliver_spool
from code_wake.event import EventPolicy, PendingEvent
from code_wake.records import ProcessInfo
from code_wake_sql14_store import Sql14Store

from .timing import Row, per_call_us

_BATCH = 500
_POLICY = EventPolicy()


def _events(count: int) -> list[PendingEvent]:
    info = ProcessInfo(1, "bench", "host", "/usr/bin/python3", time.time(), "bench", "1.0", "prod")
    return [
        _POLICY.build(info, {"order": n, "customer": f"c{n % 500}", "note": "order placed"})
        for n in range(count)
    ]


def _batches(events: list[PendingEvent]) -> list[list[PendingEvent]]:
    return [events[i : i + _BATCH] for i in range(0, len(events), _BATCH)]


def _store_rate(path: Path, events: list[PendingEvent]) -> float:
    with Sql14Store(f"sqlite:///{path}") as store:
        store.get_app_by_name("schema first")
        start = time.perf_counter()
        for batch in _batches(events):
            store.insert_events(batch)
        return len(events) / (time.perf_counter() - start)


def _spool_rate(directory: Path, events: list[PendingEvent]) -> float:
    spool = Spool(directory, 10**10, "bench")
    start = time.perf_counter()
    for batch in _batches(events):
        spool.append(batch)
    elapsed = time.perf_counter() - start
    spool.release()
    return len(events) / elapsed


def _delivery_rate(directory: Path, path: Path, count: int) -> float:
    with Sql14Store(f"sqlite:///{path}") as store:
        store.get_app_by_name("schema first")
        delivery = Delivery()
        start = time.perf_counter()
        deliver_spool(directory, write_to(store), _BATCH, delivery)
        elapsed = time.perf_counter() - start
    if delivery.written != count:
        raise RuntimeError(f"the spool gave back {delivery.written} of {count} events")
    return count / elapsed


def _single_costs(tmp: Path, events: list[PendingEvent]) -> tuple[float, float]:
    """us per event: one spool append each, and one FileHandler line each."""
    spool = Spool(tmp / "single", 10**10, "bench")
    found = iter(events * 2)
    ours = per_call_us(lambda: spool.append([next(found)]), len(events))
    spool.release()
    handler = logging.FileHandler(tmp / "lines.log")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    record = logging.LogRecord(
        "bench", logging.WARNING, __file__, 1, "order %s placed for %s", (1, "c1"), None
    )
    anchor = per_call_us(lambda: handler.emit(record), len(events))
    handler.close()
    return ours, anchor


def run(quick: bool) -> list[Row]:
    count = 20_000 if quick else 100_000
    repeats = 3
    events = _events(count)
    store, spooled, delivered, single, line = [], [], [], [], []
    code_wake.Process.reset()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        for rep in range(repeats):
            store.append(_store_rate(tmp / f"store{rep}.sqlite", events))
            spooled.append(_spool_rate(tmp / f"spool{rep}", events))
            delivered.append(_delivery_rate(tmp / f"spool{rep}", tmp / f"delivered{rep}.sqlite", count))
            ours, anchor = _single_costs(tmp / f"single{rep}", events[:5_000])
            single.append(ours)
            line.append(anchor)
    anchor_rate = statistics.median(store)
    spool_rate, deliver_rate = statistics.median(spooled), statistics.median(delivered)
    single_us, line_us = statistics.median(single), statistics.median(line)
    return [
        Row("store: insert_events, batches of 500, SQLite WAL", anchor_rate, "events/s", "anchor"),
        Row(
            "spool: set aside, batches of 500",
            spool_rate,
            "events/s",
            f"ratio {spool_rate / anchor_rate:.1f} x",
        ),
        Row(
            "spool: delivered to a fresh SQLite file",
            deliver_rate,
            "events/s",
            f"ratio {deliver_rate / anchor_rate:.2f} x (target >= 0.8 x)",
        ),
        Row("logging.FileHandler: one line", line_us, "us/event", "anchor"),
        Row(
            "spool: one event (the caller, memory full)",
            single_us,
            "us/event",
            f"ratio {single_us / line_us:.2f} x (target <= 2 x)",
        ),
    ]
