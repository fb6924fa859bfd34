"""Problems code_wake hits while recording, reported without flooding.

Logging must never raise into the app, yet a silent failure is worse: each
kind of problem is counted, and reported through the ``code_wake`` logger at
most once per interval with the count since the last report. With no handler
configured, the logging module's last resort prints it on stderr; when the
only handlers it would reach are code_wake's own (which never record
code_wake's reports), it is printed on stderr here, so it is seen somewhere.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import threading
import time
from collections import Counter

__all__ = ["REPORT_INTERVAL", "counts", "report_held_back", "report_problem"]

REPORT_INTERVAL = 60.0
"""Seconds between two reports of the same kind of problem."""

logger = logging.getLogger("code_wake")

_lock = threading.Lock()
_counts: Counter[str] = Counter()
_unreported: Counter[str] = Counter()
_last_report: dict[str, float] = {}
_held_back: dict[str, tuple[str, BaseException | None]] = {}
"""The latest report of each kind the interval held back: its figures are the newest."""


def report_problem(kind: str, message: str, exc: BaseException | None = None) -> None:
    """Count one problem of `kind`; log it unless that kind was logged recently."""
    now = time.monotonic()
    with _lock:
        _counts[kind] += 1
        _unreported[kind] += 1
        last = _last_report.get(kind)
        if last is not None and now - last < REPORT_INTERVAL:
            _held_back[kind] = (message, exc)
            return
        _last_report[kind] = now
        _held_back.pop(kind, None)
        times = _unreported.pop(kind)
    _emit(message, exc, times)


def report_held_back() -> None:
    """Report now the latest of each kind the interval held back (at exit: its figures are the last)."""
    with _lock:
        held = [(message, exc, _unreported.pop(kind, 1)) for kind, (message, exc) in _held_back.items()]
        _held_back.clear()
    for message, exc, times in held:
        _emit(message, exc, times)


def _emit(message: str, exc: BaseException | None, times: int) -> None:
    suffix = "" if times == 1 else f" ({times} times since the last report)"
    detail = "" if exc is None else f": {type(exc).__name__}: {exc}"
    logger.warning("code_wake: %s%s%s", message, detail, suffix)
    if logger.isEnabledFor(logging.WARNING) and not _shown_by_logging(logger):
        _print(f"code_wake: {message}{detail}{suffix}")


def _shown_by_logging(start: logging.Logger) -> bool:
    """True when a WARNING of `start` reaches a handler other than code_wake's, or the last resort.

    Follows the handler lookup of `logging.Logger.callHandlers`.
    """
    found = 0
    current: logging.Logger | None = start
    while current is not None:
        for handler in current.handlers:
            found += 1
            if not getattr(handler, "code_wake_door", False) and handler.level <= logging.WARNING:
                return True
        current = current.parent if current.propagate else None
    return found == 0 and logging.lastResort is not None


def _print(line: str) -> None:
    # stderr closed or gone: nowhere is left to say it.
    with contextlib.suppress(OSError, ValueError):
        print(line, file=sys.stderr, flush=True)


def counts() -> dict[str, int]:
    """How many problems of each kind this process has hit so far."""
    with _lock:
        return dict(_counts)
