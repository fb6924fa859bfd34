"""The logging door with its writer running, into SQLite, beside the stdlib's file logging.

`bench.doors` times the caller with code_wake's writer held back, as the
anchors' queues are not drained either. Here both writers run, as in
production, and the record is the common one: ``logger.warning("order %s",
i, extra={"customer": "c1"})`` (and the same without ``extra``). The anchor
is the stdlib's ``QueueHandler`` -> ``QueueListener`` -> ``FileHandler``;
code_wake's side is `CodeWakeHandler` into a queued SQLite (WAL) store.
Targets (BENCHMARKS.md), ratios of medians measured interleaved in one run:

- caller side, writers running: <= 1.0 x ``QueueHandler``, with and
  without ``extra``;
- total process CPU (every thread) per event until persisted, the final
  flush included: <= 1.5 x the anchor;
- bytes on disk per event (SQLite after a WAL checkpoint) <= 3 x the text
  line carrying the same fields.

The CPU per event is measured twice: with the records logged as fast as
the caller can (the writers take them in full batches), and at a steady
1,000 records a second, a busy service's rate, where each writer wakes
for a few records at a time. The second counts the process's CPU less
what the pacing loop alone takes (measured in the same run).
"""

from __future__ import annotations

import itertools
import logging
import logging.handlers
import os
import queue
import sqlite3
import tempfile
import time
from collections.abc import Callable

import code_wake
from code_wake import QueueSettings
from code_wake.logging import CodeWakeHandler
from code_wake_sql14_store import Sql14QueueStore

from .doors import _logger
from .timing import Row, interleaved_medians, per_call_us

EXTRA = {"customer": "c1"}

TEXT_FORMAT = (
    "%(asctime)s %(levelname)s %(name)s %(module)s:%(funcName)s:%(lineno)d %(threadName)s %(message)s"
)
"""The anchor's line: the fields code_wake records of a record (``extra`` is appended)."""

Log = Callable[[int], None]
"""One ``logger.warning`` call, given the number that goes into the message."""


class _Anchor:
    """The stdlib's way: ``QueueHandler`` on the caller, a ``QueueListener`` writing a file."""

    def __init__(self, path: str, with_extra: bool) -> None:
        self.records: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
        self.file = logging.FileHandler(path, encoding="utf-8", delay=False)
        self.file.setFormatter(
            logging.Formatter(TEXT_FORMAT + (" customer=%(customer)s" if with_extra else ""))
        )
        self.listener = logging.handlers.QueueListener(self.records, self.file)
        self.logger = _logger(
            f"bench.persisted.stdlib.{with_extra}", logging.handlers.QueueHandler(self.records)
        )
        self.listener.start()

    def settle(self) -> None:
        """Until every record so far is in the file: the listener drains its queue on stop."""
        self.listener.stop()
        self.file.flush()
        self.listener.start()

    def close(self) -> None:
        self.listener.stop()
        self.file.close()


class _Ours:
    """code_wake's way: `CodeWakeHandler` on the caller, the queue's writer into a SQLite file."""

    def __init__(self, path: str) -> None:
        code_wake.Process.reset()
        self.store = Sql14QueueStore(f"sqlite:///{path}", queue_settings=QueueSettings(max_events=1_000_000))
        code_wake.Process(store=self.store, app_name="bench").init()
        self.logger = _logger("bench.persisted.code_wake", CodeWakeHandler(logging.INFO))
        self.logger.warning("warm %s", "up", extra=EXTRA)  # registers the process; starts the writer
        self.settle()

    def settle(self) -> None:
        if not self.store.flush(timeout=300):
            raise RuntimeError("the queue did not get through the benchmark's events")

    def close(self) -> None:
        stats = self.store.queue_stats
        self.store.close()
        code_wake.Process.reset()
        if stats.dropped or stats.lost or stats.rejected:
            raise RuntimeError(f"events were not all written: {stats}")


def _warning(logger: logging.Logger, with_extra: bool) -> Log:
    if with_extra:
        return lambda i: logger.warning("order %s", i, extra=EXTRA)
    return lambda i: logger.warning("order %s", i)


def _caller_us(log: Log, settle: Callable[[], None], calls: int) -> Callable[[], float]:
    """Caller time per call while the writer runs; the rest is written outside the timed part."""
    numbers = itertools.count()

    def run() -> float:
        try:
            return per_call_us(lambda: log(next(numbers)), calls)
        finally:
            settle()

    return run


def _cpu_us(log: Log, settle: Callable[[], None], calls: int) -> Callable[[], float]:
    """Process CPU (all threads) per event, from the first call until all are persisted."""

    def run() -> float:
        start = time.process_time()
        for i in range(calls):
            log(i)
        settle()
        return (time.process_time() - start) / calls * 1e6

    return run


STEADY_RATE = 1_000
"""Records a second in the steady-rate comparison: far below what either writer can take."""


def _paced(log: Log, count: int) -> None:
    """`count` calls at `STEADY_RATE` a second (sleeping between them, as a service waits for work)."""
    gap = 1 / STEADY_RATE
    next_at = time.perf_counter()
    for i in range(count):
        log(i)
        next_at += gap
        pause = next_at - time.perf_counter()
        if pause > 0:
            time.sleep(pause)


def _paced_cpu_us(log: Log, settle: Callable[[], None], count: int) -> Callable[[], float]:
    """Process CPU per call at the steady rate, until all are persisted (the pacing included)."""

    def run() -> float:
        start = time.process_time()
        _paced(log, count)
        settle()
        return (time.process_time() - start) / count * 1e6

    return run


def steady_cost(tmp: str, count: int, repeats: int) -> list[Row]:
    """CPU per event until persisted at `STEADY_RATE` records a second, with ``extra``, less the pacing."""
    ours = _Ours(f"{tmp}/steady.sqlite")
    anchor = _Anchor(f"{tmp}/steady.log", True)
    try:
        medians = interleaved_medians(
            {
                "pacing": _paced_cpu_us(lambda i: None, lambda: None, count),
                "anchor": _paced_cpu_us(_warning(anchor.logger, True), anchor.settle, count),
                "code_wake": _paced_cpu_us(_warning(ours.logger, True), ours.settle, count),
            },
            repeats,
        )
    finally:
        anchor.close()
        ours.close()
    pacing = medians.pop("pacing")
    net = {name: value - pacing for name, value in medians.items()}
    label = f"CPU until persisted, {STEADY_RATE:,}/s, extra (less {pacing:.1f} us pacing)"
    return _ratio_rows(label, "us", net, "target <= 1.5 x")


def _ratio_rows(label: str, unit: str, medians: dict[str, float], target: str) -> list[Row]:
    ratio = medians["code_wake"] / medians["anchor"]
    return [
        Row(f"{label}: QueueHandler -> QueueListener -> FileHandler", medians["anchor"], unit, "anchor"),
        Row(
            f"{label}: CodeWakeHandler -> SQLite",
            medians["code_wake"],
            unit,
            f"ratio {ratio:.2f} x ({target})",
        ),
    ]


def running_cost(tmp: str, calls: int, repeats: int) -> list[Row]:
    """Caller side with both writers running, with and without ``extra``; total CPU per event."""
    ours = _Ours(f"{tmp}/running.sqlite")
    try:
        rows = _compare(ours, _Anchor(f"{tmp}/running-extra.log", True), True, calls, repeats)
        rows += _compare(ours, _Anchor(f"{tmp}/running-plain.log", False), False, calls, repeats)
    finally:
        ours.close()
    # The caller figures first, then the CPU ones.
    return [*rows[0:2], *rows[4:6], *rows[2:4], *rows[6:8]]


def _compare(ours: _Ours, anchor: _Anchor, with_extra: bool, calls: int, repeats: int) -> list[Row]:
    """Caller time per call, then CPU per event until persisted, interleaved with the anchor."""
    both = {"anchor": (anchor.logger, anchor.settle), "code_wake": (ours.logger, ours.settle)}
    try:
        caller = interleaved_medians(
            {
                name: _caller_us(_warning(lg, with_extra), settle, calls)
                for name, (lg, settle) in both.items()
            },
            repeats,
        )
        cpu = interleaved_medians(
            {name: _cpu_us(_warning(lg, with_extra), settle, calls) for name, (lg, settle) in both.items()},
            repeats,
        )
    finally:
        anchor.close()
    extra = "extra" if with_extra else "no extra"
    return [
        *_ratio_rows(f"caller, {extra}", "us", caller, "target <= 1.0 x"),
        *_ratio_rows(
            f"CPU until persisted, {extra}", "us", cpu, "target <= 1.5 x" if with_extra else "no target"
        ),
    ]


def _checkpointed_size(path: str) -> int:
    """The database file's size once the WAL is copied into it and truncated."""
    db = sqlite3.connect(path)
    try:
        busy, _, _ = db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    finally:
        db.close()
    if busy:
        raise RuntimeError("the WAL checkpoint could not complete")
    return os.path.getsize(path)


def bytes_per_event(tmp: str, count: int) -> list[Row]:
    """Bytes each event adds to the SQLite file, and to the text log of the anchor."""
    ours = _Ours(f"{tmp}/bytes.sqlite")
    try:
        before = _checkpointed_size(f"{tmp}/bytes.sqlite")
        log = _warning(ours.logger, True)
        for i in range(count):
            log(i)
        ours.settle()
        sqlite_bytes = (_checkpointed_size(f"{tmp}/bytes.sqlite") - before) / count
    finally:
        ours.close()
    anchor = _Anchor(f"{tmp}/bytes.log", True)
    try:
        log = _warning(anchor.logger, True)
        for i in range(count):
            log(i)
        anchor.settle()
    finally:
        anchor.close()
    text_bytes = os.path.getsize(f"{tmp}/bytes.log") / count
    ratio = sqlite_bytes / text_bytes
    return [
        Row("bytes on disk per event, extra: text log line", text_bytes, "bytes", "anchor"),
        Row(
            "bytes on disk per event, extra: SQLite, checkpointed",
            sqlite_bytes,
            "bytes",
            f"ratio {ratio:.2f} x (target <= 3 x)",
        ),
    ]


def run(quick: bool) -> list[Row]:
    """The comparisons, each into files of its own in one temporary directory."""
    with tempfile.TemporaryDirectory() as tmp:
        rows = running_cost(tmp, calls=5_000 if quick else 20_000, repeats=5 if quick else 9)
        rows += steady_cost(tmp, count=1_000 if quick else 3_000, repeats=3 if quick else 5)
        rows += bytes_per_event(tmp, count=10_000 if quick else 50_000)
    return rows
