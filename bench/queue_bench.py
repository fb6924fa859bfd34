"""The queue: caller cost, memory per queued event, and end-to-end throughput.

Each figure is measured beside its anchor in the same run (BENCHMARKS.md):
- caller cost of ``Process().log(data)`` vs ``logger.info`` through the stdlib
  ``QueueHandler`` (target <= 0.35 x), both with nothing draining the queue;
- memory per queued event, plain and with an exception (targets 400 and
  1,500 bytes), beside the stdlib QueueHandler's LogRecords;
- events per second persisted to a SQLite WAL file through the queue vs raw
  sqlite3 ``executemany`` of the same rows into the same schema (target >= 0.5 x).
"""

from __future__ import annotations

import logging
import logging.handlers
import queue
import sqlite3
import statistics
import tempfile
import threading
import time
import tracemalloc
from collections.abc import Callable, Sequence

import code_wake
from code_wake import EventRecord, PendingEvent, QueueSettings, QueueStore
from code_wake.testing import MemoryStore
from code_wake_sql14_store import Sql14QueueStore, Sql14Store

from .timing import Row, interleaved_medians, per_call_us

DATA = {"event": "order", "customer": "c42", "type": "special"}


class _HeldStore(QueueStore, MemoryStore):
    """A queue whose writer never gets going: what is left is the caller's own cost."""

    def __init__(self) -> None:
        # No bound is reached: empty() drops events behind the queue's accounting.
        super().__init__(queue_settings=QueueSettings(max_events=10_000_000, max_bytes=1 << 50))
        self.gate = threading.Event()

    def insert_events(self, events: Sequence[PendingEvent]) -> list[EventRecord]:
        self.gate.wait()
        return super().insert_events(events)

    def empty(self) -> None:
        self.queue._items.clear()  # the bench measures the caller, not the queue's bookkeeping


def _held_process() -> tuple[code_wake.Process, _HeldStore]:
    code_wake.Process.reset()
    store = _HeldStore()
    proc = code_wake.Process(store=store, app_name="bench").init()
    proc.log({"warm": "up"})  # starts the worker, which then waits at the gate
    return proc, store


def _stdlib_queue_logger() -> tuple[logging.Logger, queue.SimpleQueue[logging.LogRecord]]:
    records: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
    logger = logging.getLogger("bench.stdlib_queue")
    logger.handlers[:] = [logging.handlers.QueueHandler(records)]
    logger.propagate = False
    logger.setLevel(logging.INFO)
    return logger, records


def _drained(measure: Callable[[], float], drain: Callable[[], None]) -> Callable[[], float]:
    def run() -> float:
        try:
            return measure()
        finally:
            drain()

    return run


def _drain(records: queue.SimpleQueue[logging.LogRecord]) -> None:
    while not records.empty():
        records.get_nowait()


def caller_cost(calls: int = 20_000, repeats: int = 9) -> list[Row]:
    """Microseconds per call on the caller's thread, code_wake vs the stdlib QueueHandler."""
    proc, store = _held_process()
    logger, records = _stdlib_queue_logger()
    medians = interleaved_medians(
        {
            "stdlib": _drained(
                lambda: per_call_us(lambda: logger.info("order %s %s %s", "order", "c42", "special"), calls),
                lambda: _drain(records),
            ),
            "code_wake": _drained(lambda: per_call_us(lambda: proc.log(DATA), calls), store.empty),
        },
        repeats,
    )
    store.gate.set()
    ratio = medians["code_wake"] / medians["stdlib"]
    return [
        Row("stdlib logger.info + QueueHandler", medians["stdlib"], "us", "anchor"),
        Row(
            "Process().log(data), queued",
            medians["code_wake"],
            "us",
            f"ratio {ratio:.2f} x (target <= 0.35 x)",
        ),
    ]


def _fail_deep(depth: int) -> None:
    if depth == 0:
        raise ValueError("stock exhausted")
    _fail_deep(depth - 1)


def _exception() -> BaseException:
    try:
        _fail_deep(9)
    except ValueError as exc:
        return exc
    raise AssertionError("unreachable")


def _bytes_per_event(enqueue: Callable[[], None], count: int) -> float:
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for _ in range(count):
            enqueue()
        return (tracemalloc.get_traced_memory()[0] - before) / count
    finally:
        tracemalloc.stop()


def memory_per_event(count: int = 10_000) -> list[Row]:
    """Bytes held per queued event: plain, and with an exception raised through 10 frames."""
    proc, store = _held_process()
    logger, records = _stdlib_queue_logger()
    exc = _exception()
    plain = _bytes_per_event(lambda: proc.log(DATA), count)
    store.empty()
    with_exc = _bytes_per_event(lambda: proc.log(DATA, exc), count)
    store.empty()
    stdlib = _bytes_per_event(lambda: logger.info("order %s %s %s", "order", "c42", "special"), count)
    _drain(records)
    store.gate.set()
    return [
        Row("stdlib QueueHandler record", stdlib, "bytes", "anchor"),
        Row("queued event, plain", plain, "bytes", "target <= 400"),
        Row("queued event, with exception", with_exc, "bytes", "target <= 1,500"),
    ]


def _raw_rows_per_second(path: str, count: int, process_id: int, batch: int = 500) -> float:
    """Raw sqlite3 executemany of the same rows into the same tables: the practical limit."""
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA synchronous=NORMAL")
    start = time.perf_counter()
    for first in range(0, count, batch):
        size = min(batch, count - first)
        db.execute("BEGIN")
        now = time.time()
        cursor = db.execute("SELECT coalesce(max(id), 0) FROM events")
        (last_id,) = cursor.fetchone()
        db.executemany(
            "INSERT INTO events (id, when_ts, process_id) VALUES (?, ?, ?)",
            [(last_id + 1 + i, now, process_id) for i in range(size)],
        )
        db.executemany(
            "INSERT INTO events_data (key, val, event_id) VALUES (?, ?, ?)",
            [(k, v, last_id + 1 + i) for i in range(size) for k, v in DATA.items()],
        )
        db.execute("COMMIT")
    elapsed = time.perf_counter() - start
    db.close()
    return count / elapsed


def queued_rate(url: str, count: int, batch_size: int = 500) -> float:
    """Events per second through Process().log and the queue into `url`, until all are flushed."""
    code_wake.Process.reset()
    settings = QueueSettings(max_events=count + 1, batch_size=batch_size)
    store = Sql14QueueStore(url, queue_settings=settings)
    proc = code_wake.Process(store=store, app_name="bench").init()
    start = time.perf_counter()
    for _ in range(count):
        proc.log(DATA)
    if not store.flush(timeout=300):
        raise RuntimeError("the queue did not get through the benchmark's events")
    elapsed = time.perf_counter() - start
    stats = store.queue_stats
    store.close()
    code_wake.Process.reset()
    if stats.dropped or stats.lost or stats.written != count:
        raise RuntimeError(f"events were not all written: {stats}")
    return count / elapsed


def throughput(count: int = 50_000, repeats: int = 3) -> list[Row]:
    """Events per second persisted through the queue, vs raw sqlite3 into the same schema."""
    return _compare_rates(
        lambda path: queued_rate(f"sqlite:///{path}", count),
        lambda path: _raw_rows_per_second(path, count, 1),
        repeats,
        ("raw sqlite3 executemany, same schema", "Process().log -> queue -> SQLite WAL"),
    )


def _compare_rates(
    ours: Callable[[str], float], raw: Callable[[str], float], repeats: int, names: tuple[str, str]
) -> list[Row]:
    """Median events/s of code_wake and of a raw anchor, each into a fresh file with our schema."""
    ours_rates: list[float] = []
    raw_rates: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        for rep in range(repeats):
            ours_rates.append(ours(f"{tmp}/q{rep}.sqlite"))
            with Sql14Store(f"sqlite:///{tmp}/r{rep}.sqlite") as schema_only:
                schema_only.insert_process(code_wake.ProcessInfo(1, None, None, None, time.time(), "bench"))
            raw_rates.append(raw(f"{tmp}/r{rep}.sqlite"))
    code_wake.Process.reset()
    ours_median, raw_median = statistics.median(ours_rates), statistics.median(raw_rates)
    return [
        Row(names[0], raw_median, "events/s", "anchor"),
        Row(names[1], ours_median, "events/s", f"ratio {ours_median / raw_median:.2f} x (target >= 0.5 x)"),
    ]


def _spin_until(done: Callable[[], bool]) -> None:
    """Keep this thread CPU-bound, as a busy application is, until `done()`."""
    while not done():
        total = 0
        for n in range(2_000):
            total += n * n


def _raw_multirow_under_load(path: str, count: int, process_id: int, batch: int = 500) -> float:
    """The anchor: a raw sqlite3 writer thread using one multi-row INSERT per table per batch."""
    rows: queue.SimpleQueue[tuple[float, tuple[tuple[str, str], ...]] | None] = queue.SimpleQueue()
    finished = threading.Event()

    def writer() -> None:
        db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA synchronous=NORMAL")
        pending: list[tuple[float, tuple[tuple[str, str], ...]]] = []
        while True:
            item = rows.get()
            if item is not None:
                pending.append(item)
            if pending and (item is None or len(pending) >= batch or rows.empty()):
                _write_multirow(db, pending, process_id)
                pending = []
            if item is None:
                break
        db.close()
        finished.set()

    thread = threading.Thread(target=writer, daemon=True)
    start = time.perf_counter()
    thread.start()
    data = tuple(DATA.items())
    for _ in range(count):
        rows.put((time.time(), data))
    rows.put(None)
    _spin_until(finished.is_set)
    return count / (time.perf_counter() - start)


def _write_multirow(
    db: sqlite3.Connection, pending: list[tuple[float, tuple[tuple[str, str], ...]]], pid: int
) -> None:
    db.execute("BEGIN")
    (last_id,) = db.execute("SELECT coalesce(max(id), 0) FROM events").fetchone()
    event_values = [v for i, (ts, _) in enumerate(pending) for v in (last_id + 1 + i, ts, pid)]
    db.execute(
        "INSERT INTO events (id, when_ts, process_id) VALUES " + ",".join(["(?,?,?)"] * len(pending)),
        event_values,
    )
    data_values = [
        v for i, (_, data) in enumerate(pending) for k, val in data for v in (k, val, last_id + 1 + i)
    ]
    db.execute(
        "INSERT INTO events_data (key, val, event_id) VALUES "
        + ",".join(["(?,?,?)"] * (len(data_values) // 3)),
        data_values,
    )
    db.execute("COMMIT")


def _queued_under_load(path: str, count: int) -> float:
    code_wake.Process.reset()
    store = Sql14QueueStore(f"sqlite:///{path}", queue_settings=QueueSettings(max_events=count + 1))
    proc = code_wake.Process(store=store, app_name="bench").init()
    start = time.perf_counter()
    for _ in range(count):
        proc.log(DATA)
    flushed = threading.Event()
    threading.Thread(target=lambda: store.flush(timeout=300) and flushed.set(), daemon=True).start()
    _spin_until(flushed.is_set)
    elapsed = time.perf_counter() - start
    if store.queue_stats.dropped or store.queue_stats.lost:
        raise RuntimeError(f"events were dropped or lost: {store.queue_stats}")
    store.close()
    return count / elapsed


def throughput_under_load(count: int = 20_000, repeats: int = 3) -> list[Row]:
    """Persisted events per second while the main thread is CPU-bound, vs a raw multi-row writer."""
    return _compare_rates(
        lambda path: _queued_under_load(path, count),
        lambda path: _raw_multirow_under_load(path, count, 1),
        repeats,
        (
            "raw sqlite3 multi-row INSERT writer, main thread busy",
            "Process().log -> queue -> SQLite, main thread busy",
        ),
    )
