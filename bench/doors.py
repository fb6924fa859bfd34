"""The logging and structlog doors: caller cost beside their anchors, in one run.

Targets (BENCHMARKS.md), ratios of medians measured interleaved:

- ``logger.warning(...)`` through `CodeWakeHandler` <= 1.0 x the same call
  through the stdlib ``QueueHandler``;
- ``logger.exception(...)`` (raised through 10 frames, logged from
  ``except``) through `CodeWakeHandler` <= 0.5 x the same through
  ``QueueHandler``, which formats the traceback on the caller;
- a structlog call through `CodeWakeProcessor` <= 1.0 x the same call
  through ``format_exc_info`` and a queue put.

code_wake's side records into a real queued store (`QueueStore` over the
in-memory store) whose writer is held back, so that what is timed is the
caller's own cost, as for the anchors, whose queues nothing drains either.
"""

from __future__ import annotations

import logging
import logging.handlers
import queue
from collections.abc import Callable
from typing import Any

import structlog

import code_wake
from code_wake.logging import CodeWakeHandler
from code_wake.structlog import CodeWakeProcessor

from .queue_bench import _HeldStore
from .timing import Row, interleaved_medians, per_call_us

ARGS = ("order", "c42", "special")


def _held_process() -> _HeldStore:
    code_wake.Process.reset()
    store = _HeldStore()
    code_wake.Process(store=store, app_name="bench").init().log({"warm": "up"})
    return store


def _logger(name: str, handler: logging.Handler) -> logging.Logger:
    logger = logging.getLogger(name)
    logger.handlers[:] = [handler]
    logger.propagate = False
    logger.setLevel(logging.INFO)
    return logger


def _fail_deep(depth: int) -> None:
    if depth == 0:
        raise ValueError("stock exhausted")
    _fail_deep(depth - 1)


def _logged_from_except(log: Callable[[], object]) -> Callable[[], None]:
    """A call that raises through 10 frames and logs from the ``except`` block."""

    def call() -> None:
        try:
            _fail_deep(9)
        except ValueError:
            log()

    return call


class _QueueLogger:
    """structlog's wrapped logger for the anchor: each call puts the event dict on a queue."""

    def __init__(self, events: queue.SimpleQueue[dict[str, Any]]) -> None:
        self._put = events.put

    def _put_kwargs(self, **event: Any) -> None:
        self._put(event)

    warning = error = info = _put_kwargs


class _NullLogger:
    """structlog's wrapped logger for code_wake's side: the processor already recorded the call."""

    def _drop(self, **event: Any) -> None:
        pass

    warning = error = info = _drop


def _structlog_logger(processors: list[Any], wrapped: object) -> Any:
    return structlog.wrap_logger(
        wrapped,
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(logging.INFO),
        cache_logger_on_first_use=True,
    ).bind(customer="c42", type="special")


def _drain(records: queue.SimpleQueue[Any]) -> None:
    while not records.empty():
        records.get_nowait()


def _ratio_rows(label: str, medians: dict[str, float], target: str) -> list[Row]:
    ratio = medians["code_wake"] / medians["anchor"]
    note = f"ratio {ratio:.2f} x ({target})" if target else f"ratio {ratio:.2f} x (no target)"
    return [
        Row(f"{label}: anchor", medians["anchor"], "us", "anchor"),
        Row(f"{label}: code_wake", medians["code_wake"], "us", note),
    ]


def _measure(
    anchor: Callable[[], object],
    ours: Callable[[], object],
    drain: Callable[[], None],
    calls: int,
    repeats: int,
) -> dict[str, float]:
    def timed(call: Callable[[], object]) -> Callable[[], float]:
        def run() -> float:
            try:
                return per_call_us(call, calls)
            finally:
                drain()

        return run

    return interleaved_medians({"anchor": timed(anchor), "code_wake": timed(ours)}, repeats)


def handler_cost(calls: int = 20_000, repeats: int = 9) -> list[Row]:
    """``logger.warning`` and ``logger.exception``: CodeWakeHandler vs the stdlib QueueHandler."""
    store = _held_process()
    records: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
    stdlib = _logger("bench.doors.stdlib", logging.handlers.QueueHandler(records))
    ours = _logger("bench.doors.code_wake", CodeWakeHandler(logging.INFO))

    def drain() -> None:
        _drain(records)
        store.empty()

    warning = _measure(
        lambda: stdlib.warning("order %s %s %s", *ARGS),
        lambda: ours.warning("order %s %s %s", *ARGS),
        drain,
        calls,
        repeats,
    )
    exception = _measure(
        _logged_from_except(lambda: stdlib.exception("order %s failed", "c42")),
        _logged_from_except(lambda: ours.exception("order %s failed", "c42")),
        drain,
        max(calls // 10, 100),
        repeats,
    )
    store.gate.set()
    code_wake.Process.reset()
    return [
        *_ratio_rows("logger.warning, QueueHandler | CodeWakeHandler", warning, "target <= 1.0 x"),
        *_ratio_rows("logger.exception, QueueHandler | CodeWakeHandler", exception, "target <= 0.5 x"),
    ]


def processor_cost(calls: int = 20_000, repeats: int = 9) -> list[Row]:
    """A structlog call: CodeWakeProcessor vs ``format_exc_info`` and a queue put."""
    store = _held_process()
    events: queue.SimpleQueue[dict[str, Any]] = queue.SimpleQueue()
    add_level = structlog.processors.add_log_level
    anchor = _structlog_logger([add_level, structlog.processors.format_exc_info], _QueueLogger(events))
    ours = _structlog_logger([add_level, CodeWakeProcessor(logging.INFO)], _NullLogger())

    def drain() -> None:
        _drain(events)
        store.empty()

    exception = _measure(
        _logged_from_except(lambda: anchor.exception("order failed")),
        _logged_from_except(lambda: ours.exception("order failed")),
        drain,
        max(calls // 10, 100),
        repeats,
    )
    warning = _measure(
        lambda: anchor.warning("low stock", item="tea"),
        lambda: ours.warning("low stock", item="tea"),
        drain,
        calls,
        repeats,
    )
    store.gate.set()
    code_wake.Process.reset()
    return [
        *_ratio_rows("structlog exception, format_exc_info+put | processor", exception, "target <= 1.0 x"),
        *_ratio_rows("structlog warning, put | processor", warning, ""),
    ]
