"""QueueStore: a store that holds a bounded background queue (`code_wake._queue.EventQueue`).

``class Sql14QueueStore(QueueStore, Sql14Store): pass`` gives a store whose
`submit` (and so ``Process.log`` and ``insert_event``) only enqueues; the
queue is a component the store holds, ``store.queue``, and the mixin only
routes `submit`, `flush`, `close` and `queue_stats` to it. Every live queue
is flushed at interpreter exit within one deadline, and a forked child starts
with empty queues of its own. docs/queue.md tells the whole story.
"""

from __future__ import annotations

import atexit
import sys
import time
import weakref
from typing import Any

from . import _exit
from ._fork import ForkPhase, at_fork_in_child
from ._queue import EventQueue
from ._queue_settings import QueueSettings, QueueStats
from ._report import report_held_back
from .event import PendingEvent
from .records import EventRecord
from .store import Store

__all__ = ["QueueSettings", "QueueStats", "QueueStore", "flush_all"]


class QueueStore(Store):
    """Mix in before a store class to queue its writes on a background thread.

    ``class Sql14QueueStore(QueueStore, Sql14Store): pass`` gives a store
    whose `submit` returns at once; `flush` and `close` wait, each with a
    deadline. Pass ``queue_settings=QueueSettings(...)`` to the constructor to
    tune it; the other arguments go to the store.
    """

    queue_settings: QueueSettings = QueueSettings()

    def __init__(self, *args: Any, queue_settings: QueueSettings | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if queue_settings is not None:
            self.queue_settings = queue_settings
        self.queue = EventQueue(self, self.queue_settings, self._write_unqueued)
        """The queue this store's writes go through."""
        _live_queues.add(self.queue)

    def _write_unqueued(self, event: PendingEvent) -> EventRecord | None:
        """Write as the store would without the queue (the next class in the MRO)."""
        return super().submit(event, sync=True)

    def submit(self, event: PendingEvent, sync: bool = False) -> EventRecord | None:
        """Queue `event`; with `sync`, wait for it to be written and return its record."""
        return self.queue.submit(event, sync)

    def flush(self, timeout: float | None = 5.0) -> bool:
        """Wait until every event queued before this call is written or given up.

        Returns True when the queue got through them within `timeout`
        seconds (None: no limit), False otherwise.
        """
        return self.queue.flush(timeout)

    def close(self, timeout: float | None = 5.0) -> bool:  # type: ignore[override]
        """Flush within `timeout`, stop the worker and close the store; True if the flush got through.

        What the flush did not get through goes to the spool (``queue_stats`` says how many).
        """
        left_nothing = self.queue.close(timeout)
        _live_queues.discard(self.queue)
        super().close()
        return left_nothing

    @property
    def queue_stats(self) -> QueueStats:
        """Where the events logged through this store went, for monitoring."""
        return self.queue.stats


# -- every live queue: the exit flush and fork ------------------------------------------------

_live_queues: weakref.WeakSet[EventQueue] = weakref.WeakSet()


def flush_all(timeout: float | None = None) -> bool:
    """Flush every queue of this process within one shared deadline; True if all got through.

    `timeout` None takes the largest ``exit_timeout`` of the queues.
    """
    queues = list(_live_queues)
    if not queues:
        return True
    if timeout is None:
        timeout = max(q.settings.exit_timeout for q in queues)
    deadline = time.monotonic() + timeout
    flushed = True
    for queue in queues:
        flushed = queue.flush(max(0.0, deadline - time.monotonic())) and flushed
    _report_unwritten(queues, timeout)
    return flushed


def _report_unwritten(queues: list[EventQueue], timeout: float) -> None:
    """The one line that sums up, in events, whatever this process did not write."""
    stats = [q.stats for q in queues]
    pending = sum(s.pending for s in stats)
    spooled = sum(s.spooled for s in stats)
    dropped = sum(s.dropped for s in stats)
    rejected = sum(s.rejected for s in stats)
    if pending or spooled or dropped or rejected:
        logged = sum(s.logged for s in stats)
        spools = sorted({str(q.spool.directory) for q in queues if q.spool is not None and q.stats.spooled})
        where = (
            f" (in {', '.join(spools)}: the next process that opens the store, "
            "or `code-wake spool --deliver`, writes them)"
            if spools
            else ""
        )
        print(
            f"code_wake: {pending + spooled + dropped + rejected} of {logged} events not written: "
            f"{spooled} set aside in the spool{where}, "
            f"{pending} not yet written at the {timeout} s exit deadline, "
            f"{dropped} dropped, {rejected} rejected by the store",
            file=sys.stderr,
        )


def _flush_at_exit() -> None:
    """The exit flush; it starts the one exit deadline that later flushes and closes share.

    What a store has not taken shortly before the deadline (at once, if it is
    failing) goes to its spool, so a dead store costs the exit about a second.
    """
    queues = list(_live_queues)
    if not queues:
        return
    timeout = max(q.settings.exit_timeout for q in queues)
    _exit.begin(timeout)
    outcome = {id(q): q.flush_at_exit(_exit.remaining(timeout)) for q in queues}
    # Reports are rate-limited; the last ones held back carry the final running totals.
    report_held_back()
    _report_unwritten(queues, timeout)
    for queue in queues:
        queue.exited(outcome[id(queue)])


# atexit runs while daemon threads still live (before the interpreter tears
# them down), and before logging.shutdown, which logging registered earlier.
atexit.register(_flush_at_exit)


class _MultiprocessingMark:
    """What multiprocessing's after-fork registry holds on to (it wants a weak-referenceable object)."""


_MULTIPROCESSING_MARK = _MultiprocessingMark()


def _register_multiprocessing_flush() -> None:
    """In a forked child, arrange the exit flush that multiprocessing would skip.

    Children started by multiprocessing leave through os._exit, which skips
    atexit; they do run multiprocessing's own finalizers. Its bootstrap clears
    finalizers registered before it runs, so register through its after-fork
    hook, which runs after that clearing.
    """
    mp_util = sys.modules.get("multiprocessing.util")
    if mp_util is None:
        return
    mp_util.register_after_fork(_MULTIPROCESSING_MARK, _add_multiprocessing_finalizer)


def _add_multiprocessing_finalizer(_mark: object) -> None:
    mp_util = sys.modules["multiprocessing.util"]
    mp_util.Finalize(None, _flush_at_exit, exitpriority=100)


def _queues_after_fork() -> None:
    """The child's queues start empty, with no worker; the parent writes its own events."""
    _exit.reset_after_fork()
    for queue in list(_live_queues):
        queue.reset()
    _register_multiprocessing_flush()


at_fork_in_child(ForkPhase.QUEUES, _queues_after_fork)
