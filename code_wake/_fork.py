"""Fork: the one ``os.register_at_fork`` of the package, and the work a forked child redoes.

Modules do not register with ``os.register_at_fork`` themselves: they hand
their child-side work to `at_fork_in_child` under a `ForkPhase`, and the
child runs the phases in their fixed order, whatever order the modules were
imported in.

Forking while a store is mid-write: wait for the write to finish first.
A thread of the parent may be inside a database call when another thread
forks. The child then inherits that connection's half-done state: for SQLite
the process-wide lock bookkeeping says a lock is held that no thread of the
child will ever release, and the child's own first connection waits on it
forever (SQLite: "do not carry an open connection across fork"). So a store
holds its `ForkGuard` while it talks to the database, and ``os.fork()`` waits
(up to `FORK_WAIT` seconds) until no guarded call is in progress.
"""

from __future__ import annotations

import enum
import os
import threading
import weakref
from collections.abc import Callable
from types import TracebackType

from ._report import report_problem

__all__ = ["FORK_WAIT", "ForkGuard", "ForkPhase", "at_fork_in_child"]

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


class ForkPhase(enum.IntEnum):
    """The child's work after fork, in the order it runs."""

    QUEUES = 1
    """Each live queue starts empty, with no writer: the parent writes its own events."""
    STORES = 2
    """Each live store forgets the parent's locks and connections."""
    PROCESS = 3
    """The Process is a new run: new pid, start time and process record."""
    HANDLER = 4
    """The logging handler's configuration lock is new."""


_child_work: dict[ForkPhase, list[Callable[[], None]]] = {phase: [] for phase in ForkPhase}


def at_fork_in_child(phase: ForkPhase, work: Callable[[], None]) -> None:
    """Run `work` in every forked child, in `phase` (after the work registered before it)."""
    _child_work[phase].append(work)


def _after_fork_in_child() -> None:
    _held.clear()
    for guard in list(_guards):
        guard._lock = threading.RLock()
    for phase in ForkPhase:
        for work in _child_work[phase]:
            try:
                work()
            except Exception as exc:  # noqa: BLE001 - one failure must not leave the later phases undone
                report_problem("fork-child", f"the {phase.name.lower()} work after fork failed", exc)


if hasattr(os, "register_at_fork"):  # POSIX only
    os.register_at_fork(
        before=_before_fork, after_in_parent=_after_fork_in_parent, after_in_child=_after_fork_in_child
    )
