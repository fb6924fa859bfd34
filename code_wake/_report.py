"""Problems code_wake hits while recording, reported without flooding.

Logging must never raise into the app, yet a silent failure is worse: each
kind of problem is counted, and reported through the ``code_wake`` logger at
most once per interval with the count since the last report. With no handler
configured, the logging module's last resort prints it on stderr.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter

__all__ = ["REPORT_INTERVAL", "counts", "report_problem"]

REPORT_INTERVAL = 60.0
"""Seconds between two reports of the same kind of problem."""

logger = logging.getLogger("code_wake")

_lock = threading.Lock()
_counts: Counter[str] = Counter()
_unreported: Counter[str] = Counter()
_last_report: dict[str, float] = {}


def report_problem(kind: str, message: str, exc: BaseException | None = None) -> None:
    """Count one problem of `kind`; log it unless that kind was logged recently."""
    now = time.monotonic()
    with _lock:
        _counts[kind] += 1
        _unreported[kind] += 1
        last = _last_report.get(kind)
        if last is not None and now - last < REPORT_INTERVAL:
            return
        _last_report[kind] = now
        times = _unreported.pop(kind)
    suffix = "" if times == 1 else f" ({times} times since the last report)"
    detail = "" if exc is None else f": {type(exc).__name__}: {exc}"
    logger.warning("code_wake: %s%s%s", message, detail, suffix)


def counts() -> dict[str, int]:
    """How many problems of each kind this process has hit so far."""
    with _lock:
        return dict(_counts)
