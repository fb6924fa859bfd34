"""Forking while a store is mid-write: wait for the write to finish first.

A thread of the parent may be inside a database call when another thread
forks. The child then inherits that connection's half-done state: for SQLite
the process-wide lock bookkeeping says a lock is held that no thread of the
child will ever release, and the child's own first connection waits on it
forever (SQLite: "do not carry an open connection across fork"). So a store
holds its `ForkGuard` while it talks to the database, and ``os.fork()`` waits
(up to `FORK_WAIT` seconds) until no guarded call is in progress.
"""

from __future__ import annotations

import os
import threading
import weakref
from types import TracebackType

__all__ = ["FORK_WAIT", "ForkGuard"]

FORK_WAIT = 10.0
"""Seconds a fork waits at most for a store's database call to finish."""


class ForkGuard:
    """Held (re-entrantly) around a store's database calls; fork waits for it."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        _guards.add(self)

    def __enter__(self) -> ForkGuard:
        self._lock.acquire()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._lock.release()


_guards: weakref.WeakSet[ForkGuard] = weakref.WeakSet()
_held: list[ForkGuard] = []


def _before_fork() -> None:
    for guard in list(_guards):
        # A call stuck longer than FORK_WAIT (a dead server's connect timeout) does not block
        # the fork for ever; that store's connections are not used by the child anyway.
        if guard._lock.acquire(timeout=FORK_WAIT):
            _held.append(guard)


def _after_fork_in_parent() -> None:
    while _held:
        _held.pop()._lock.release()


def _after_fork_in_child() -> None:
    _held.clear()
    for guard in list(_guards):
        guard._lock = threading.RLock()


if hasattr(os, "register_at_fork"):  # POSIX only
    os.register_at_fork(
        before=_before_fork, after_in_parent=_after_fork_in_parent, after_in_child=_after_fork_in_child
    )
