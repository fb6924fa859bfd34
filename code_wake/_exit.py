"""The one exit deadline: every flush and close after exit began shares it.

At interpreter exit several things wait for the queues: code_wake's atexit
flush, then `logging.shutdown` calling each handler's ``flush`` and
``close``, and any store a program closes in its own exit hook. Each used to
wait its own timeout, one after the other; now the first one sets the
deadline (`begin`) and the rest wait only for what is left of it.
"""

from __future__ import annotations

import time

__all__ = ["begin", "capped", "remaining"]

_deadline: float | None = None


def begin(timeout: float) -> float:
    """Start the exit deadline `timeout` seconds from now (once); return it."""
    global _deadline  # noqa: PLW0603 - one deadline per process, by design
    if _deadline is None:
        _deadline = time.monotonic() + timeout
    return _deadline


def capped(deadline: float | None) -> float | None:
    """`deadline` (a `time.monotonic` instant, None: none), no later than the exit deadline."""
    if _deadline is None:
        return deadline
    return _deadline if deadline is None else min(deadline, _deadline)


def remaining(seconds: float) -> float:
    """`seconds`, or what is left of the exit deadline if that is less."""
    if _deadline is None:
        return seconds
    return max(0.0, min(seconds, _deadline - time.monotonic()))


def reset_after_fork() -> None:
    """A forked child has not begun to exit, whatever its parent was doing."""
    global _deadline  # noqa: PLW0603 - see begin
    _deadline = None
