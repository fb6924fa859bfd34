"""QueueStore: a bounded background queue in front of any store.

The caller's thread only appends a `PendingEvent` to a bounded deque; one
daemon worker thread takes batches off it and writes each with the store's
``insert_events`` in one transaction, retrying a failing store with backoff.
A flood against a stalled store drops new events (counted, reported, and
recorded once the store takes writes again) rather than growing memory.
Pending events are flushed at interpreter exit within a deadline, and a
forked child starts with an empty queue of its own. docs/queue.md tells the
whole story.
"""

from __future__ import annotations

import atexit
import enum
import sys
import threading
import time
import weakref
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ._fork import ForkPhase, at_fork_in_child
from ._report import report_problem
from .errors import StoreError
from .event import PendingEvent, ProcessRef
from .records import EventRecord
from .store import Store

__all__ = ["QueueSettings", "QueueStats", "QueueStore", "flush_all"]

_WORKER_NAME = "code_wake-queue-writer"


@dataclass(frozen=True, slots=True)
class QueueSettings:
    """The knobs of a queue (docs/queue.md; configurable under ``queue:``)."""

    max_events: int = 10_000
    """Events waiting at most; past it new events are dropped and counted."""

    batch_size: int = 500
    """Events written per transaction at most."""

    retry_for: float = 60.0
    """Seconds a failing batch is retried (with backoff) before it is given up."""

    exit_timeout: float = 5.0
    """Seconds the final flush at interpreter exit may take, for all queues together."""

    sync_timeout: float = 30.0
    """Seconds ``submit(..., sync=True)`` waits for its event to be written."""


@dataclass(frozen=True, slots=True)
class QueueStats:
    """What a queue has done so far in this process (per process: a fork starts at zero)."""

    pending: int
    written: int
    dropped: int
    """Refused because the queue was full."""
    lost: int
    """Given up after the store kept failing for ``retry_for`` seconds."""
    rejected: int
    """Refused by the store one by one while the rest of their batch was written."""
    retries: int


class _State(enum.Enum):
    IDLE = "idle"
    """No worker thread (yet): the next event starts one."""
    RUNNING = "running"
    """The worker thread is taking events off the queue."""
    CLOSED = "closed"
    """close() was called: no event is taken any more."""
    EXITED = "exited"
    """The exit flush has run: later events (an atexit function's) are written on the caller's thread,
    since nothing would flush them any more (and Python 3.12 starts no thread then)."""


_RUNNING = _State.RUNNING
"""The state the caller checks for on every event, as a module global (one lookup, not two)."""


@dataclass(eq=False)
class _Waiter:
    """A place in the queue someone waits for: a sync event, or a flush marker."""

    event: PendingEvent | None
    done: threading.Event = field(default_factory=threading.Event)
    record: EventRecord | None = None
    error: BaseException | None = None


_Item = PendingEvent | _Waiter


def _events_in(batch: Sequence[_Item]) -> list[PendingEvent]:
    """The events of a batch, in order (flush markers carry none)."""
    events: list[PendingEvent] = []
    for item in batch:
        event = item if isinstance(item, PendingEvent) else item.event
        if event is not None:
            events.append(event)
    return events


@dataclass
class _Counters:
    written: int = 0
    dropped: int = 0
    lost: int = 0
    rejected: int = 0
    retries: int = 0
    unrecorded_drops: int = 0
    drop_owner: ProcessRef | None = None


class QueueStore(Store):
    """Mix in before a store class to queue its writes on a background thread.

    ``class Sql14QueueStore(QueueStore, Sql14Store): pass`` gives a store
    whose `submit` (and so ``Process.log`` and ``insert_event``) returns at
    once; `flush` and `close` wait, each with a deadline. Pass
    ``queue_settings=QueueSettings(...)`` to the constructor to tune it; the
    other arguments go to the store.
    """

    queue_settings: QueueSettings = QueueSettings()

    def __init__(self, *args: Any, queue_settings: QueueSettings | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if queue_settings is not None:
            self.queue_settings = queue_settings
        self._queue_reset()
        _live_queues.add(self)

    def _queue_reset(self) -> None:
        """A fresh, empty queue with no worker: at start, and in a forked child."""
        self._queue: deque[_Item] = deque()
        self._queue_wakeup = threading.Event()
        self._queue_sleeping = False
        self._queue_state = _State.IDLE
        self._queue_worker: threading.Thread | None = None
        self._queue_start_lock = threading.Lock()
        self._queue_drop_lock = threading.Lock()
        self._queue_counts = _Counters()
        self._queue_max = self.queue_settings.max_events
        self._queue_no_threads = False

    # -- the caller's side: cheap ------------------------------------------------------

    def submit(self, event: PendingEvent, sync: bool = False) -> EventRecord | None:
        """Queue `event`; with `sync`, wait for it to be written and return its record."""
        if self._queue_state is not _RUNNING and not self._queue_start():
            # No thread can start (interpreter shutdown): write here, as a plain store does.
            record = super().submit(event, sync=True)
            return record if sync else None
        if sync:
            return self._submit_and_wait(event)
        queue = self._queue
        if len(queue) >= self._queue_max:
            self._queue_drop(event)
            return None
        queue.append(event)
        if self._queue_sleeping:
            self._queue_wakeup.set()
        return None

    def _submit_and_wait(self, event: PendingEvent) -> EventRecord | None:
        if threading.current_thread() is self._queue_worker:
            # Waiting for ourselves would never end: write here and now.
            return super().submit(event, sync=True)
        waiter = _Waiter(event)
        self._queue.append(waiter)
        self._queue_wakeup.set()
        if not waiter.done.wait(self.queue_settings.sync_timeout):
            raise StoreError(
                f"The event was queued but not written within {self.queue_settings.sync_timeout} s; "
                "it stays queued and will be written when the store catches up."
            )
        if waiter.error is not None:
            raise StoreError(f"The event could not be written: {waiter.error}") from waiter.error
        return waiter.record

    def _queue_drop(self, event: PendingEvent) -> None:
        counts = self._queue_counts
        # Callers on many threads drop at once under a flood: count every one.
        with self._queue_drop_lock:
            counts.dropped += 1
            counts.unrecorded_drops += 1
            counts.drop_owner = event.process
        report_problem(
            "queue-full",
            f"the event queue is full ({self.queue_settings.max_events} events waiting): "
            f"events are being dropped, {counts.dropped} so far",
        )

    def _queue_start(self) -> bool:
        """Start the worker if there is none (first event, after fork, after it died).

        Returns False when no thread can be started.
        """
        if self._queue_state is _State.CLOSED:
            raise StoreError("This store is closed: no more events can be queued.")
        with self._queue_start_lock:
            if self._queue_state is _State.RUNNING:
                return True
            if self._queue_no_threads or self._queue_state is _State.EXITED:
                return False
            worker = threading.Thread(target=self._queue_run, name=_WORKER_NAME, daemon=True)
            worker.code_wake_worker = True  # type: ignore[attr-defined]  # read by code_wake._ours
            # Running before start() returns: the worker's first look at the state must see it.
            self._queue_state = _State.RUNNING
            try:
                worker.start()
            except RuntimeError:
                # Interpreter shutdown: Python 3.12+ refuses new threads.
                self._queue_state = _State.IDLE
                self._queue_no_threads = True
                return False
            self._queue_worker = worker
            return True

    # -- the worker's side ----------------------------------------------------------------

    def _queue_run(self) -> None:
        batch: list[_Item] = []
        try:
            while self._queue_state is _State.RUNNING:
                batch = self._queue_take()
                if batch:
                    self._queue_write(batch)
                batch = []
        except BaseException as exc:  # noqa: BLE001 - the worker must not die silently; the next event restarts it
            self._queue_give_up(batch, len(_events_in(batch)), exc)
            report_problem("queue-worker", "the queue's writer thread stopped unexpectedly", exc)
        finally:
            if self._queue_state is _State.RUNNING:
                self._queue_state = _State.IDLE

    def _queue_take(self) -> list[_Item]:
        """Wait for events; return up to a batch of them (a waiter ends a batch)."""
        queue = self._queue
        if not queue:
            self._queue_sleeping = True
            # Re-check after raising the flag: an append in between did not see it.
            if not queue:
                self._queue_wakeup.wait(0.5)
            self._queue_sleeping = False
            self._queue_wakeup.clear()
        batch: list[_Item] = []
        limit = self.queue_settings.batch_size
        while queue and len(batch) < limit:
            item = queue.popleft()
            batch.append(item)
            if isinstance(item, _Waiter):
                break
        return batch

    def _queue_write(self, batch: list[_Item], deadline: float | None = None) -> None:
        """Write a batch, retrying with backoff; give up after ``retry_for`` seconds or `deadline`."""
        pending = _events_in(batch)
        give_up_at = time.monotonic() + self.queue_settings.retry_for
        if deadline is not None:
            give_up_at = min(give_up_at, deadline)
        delay, failures = 0.05, 0
        while True:
            try:
                records = self.insert_events(pending) if pending else []
            except Exception as exc:  # noqa: BLE001 - any store failure is retried; what is given up is counted
                failures += 1
                if failures == 3 and len(pending) > 1 and self._queue_write_singly(batch):
                    return
                if time.monotonic() + delay > give_up_at or (
                    self._queue_state is _State.CLOSED and deadline is None
                ):
                    self._queue_give_up(batch, len(pending), exc)
                    return
                self._queue_counts.retries += 1
                report_problem("queue-retry", "writing queued events failed; retrying", exc)
                self._queue_pause(delay)
                delay = min(delay * 2, 5.0)
                continue
            self._queue_delivered(batch, records)
            return

    def _queue_pause(self, seconds: float) -> None:
        # time.sleep, not a wait on the wakeup event: events arriving must not
        # cut short the backoff of a failing store.
        time.sleep(seconds)

    def _queue_delivered(self, batch: list[_Item], records: Sequence[EventRecord]) -> None:
        counts = self._queue_counts
        counts.written += len(records)
        found = iter(records)
        for item in batch:
            if isinstance(item, _Waiter):
                item.record = next(found) if item.event is not None else None
                item.done.set()
            else:
                next(found)
        if counts.unrecorded_drops:
            self._queue_record_drops()

    def _queue_record_drops(self) -> None:
        """Once the store takes writes again, record how many events were dropped."""
        counts = self._queue_counts
        with self._queue_drop_lock:
            dropped, owner = counts.unrecorded_drops, counts.drop_owner
            if owner is None:
                return
            counts.unrecorded_drops = 0
        note = PendingEvent(
            owner,
            time.time(),
            (("event", "code_wake.dropped"), ("count", str(dropped)), ("reason", "queue full")),
        )
        try:
            self.insert_events([note])
        except Exception as exc:  # noqa: BLE001 - the note is best effort; the count waits for the next try
            with self._queue_drop_lock:
                counts.unrecorded_drops += dropped
            report_problem("queue-retry", "recording the drop count failed", exc)

    def _queue_write_singly(self, batch: list[_Item]) -> bool:
        """Write a repeatedly failing batch one event at a time, to find the event the store refuses.

        Returns False, having written nothing, when the very first event fails
        too: then the store itself is failing and the batch is retried whole.
        """
        for position, item in enumerate(batch):
            event = item if isinstance(item, PendingEvent) else item.event
            try:
                records = self.insert_events([event]) if event is not None else []
            except Exception as exc:  # noqa: BLE001 - one event refused: count it, keep going
                if position == 0:
                    return False
                self._queue_reject(item, exc)
                continue
            self._queue_delivered([item], records)
        return True

    def _queue_reject(self, item: _Item, exc: Exception) -> None:
        self._queue_counts.rejected += 1
        report_problem("queue-rejected", "the store refused an event; it is dropped", exc)
        if isinstance(item, _Waiter):
            item.error = exc
            item.done.set()

    def _queue_give_up(self, batch: list[_Item], count: int, exc: BaseException) -> None:
        self._queue_counts.lost += count
        report_problem("queue-lost", f"the store kept failing: {count} queued events are given up", exc)
        for item in batch:
            if isinstance(item, _Waiter):
                item.error = exc
                item.done.set()

    # -- flush and close: deadlines and honest answers --------------------------------------

    def flush(self, timeout: float | None = 5.0) -> bool:
        """Wait until every event queued before this call is written or given up.

        Returns True when the queue got through them within `timeout`
        seconds (None: no limit), False otherwise.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        worker = self._queue_worker
        if (
            self._queue_state is _State.RUNNING
            and worker is not None
            and worker.is_alive()
            and worker is not threading.current_thread()
        ):
            marker = _Waiter(None)
            self._queue.append(marker)
            self._queue_wakeup.set()
            return marker.done.wait(timeout)
        return self._queue_drain_here(deadline)

    def _queue_drain_here(self, deadline: float | None) -> bool:
        """Write what is queued on this thread: there is no worker to do it."""
        while self._queue:
            if deadline is not None and time.monotonic() >= deadline:
                return False
            batch = self._queue_take_now()
            self._queue_write(batch, deadline=deadline if deadline is not None else float("inf"))
        return True

    def _queue_take_now(self) -> list[_Item]:
        batch: list[_Item] = []
        while self._queue and len(batch) < self.queue_settings.batch_size:
            batch.append(self._queue.popleft())
        return batch

    def close(self, timeout: float | None = 5.0) -> bool:  # type: ignore[override]
        """Flush within `timeout`, stop the worker and close the store; True if nothing was left."""
        if self._queue_state is _State.CLOSED:
            return not self._queue
        flushed = self.flush(timeout)
        self._queue_state = _State.CLOSED
        self._queue_wakeup.set()
        worker = self._queue_worker
        if worker is not None and worker is not threading.current_thread():
            worker.join(timeout=1.0)
        left = len(self._queue)
        if left:
            self._queue_counts.lost += left
            report_problem("queue-lost", f"the store was closed with {left} events still queued")
        _live_queues.discard(self)
        super().close()
        return flushed and not left

    @property
    def queue_stats(self) -> QueueStats:
        """Counts of what this queue did in this process, for monitoring."""
        counts = self._queue_counts
        return QueueStats(
            pending=len(self._queue),
            written=counts.written,
            dropped=counts.dropped,
            lost=counts.lost,
            rejected=counts.rejected,
            retries=counts.retries,
        )


# -- every live queue: the exit flush and fork ------------------------------------------------

_live_queues: weakref.WeakSet[QueueStore] = weakref.WeakSet()


def flush_all(timeout: float | None = None) -> bool:
    """Flush every queue of this process within one shared deadline; True if all got through.

    `timeout` None takes the largest ``exit_timeout`` of the queues.
    """
    queues = list(_live_queues)
    if not queues:
        return True
    if timeout is None:
        timeout = max(q.queue_settings.exit_timeout for q in queues)
    deadline = time.monotonic() + timeout
    flushed = True
    for queue in queues:
        flushed = queue.flush(max(0.0, deadline - time.monotonic())) and flushed
    if not flushed:
        left = sum(len(q._queue) for q in queues)
        print(
            f"code_wake: exiting with {left} events not yet written (exit_timeout {timeout} s)",
            file=sys.stderr,
        )
    return flushed


def _flush_at_exit() -> None:
    """The exit flush; afterwards each queue writes on the caller's thread (`_State.EXITED`)."""
    flush_all()
    for queue in list(_live_queues):
        if queue._queue_state is not _State.CLOSED:
            queue._queue_state = _State.EXITED
            queue._queue_wakeup.set()


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
    mp_util.Finalize(None, flush_all, exitpriority=100)


def _queues_after_fork() -> None:
    """The child's queues start empty, with no worker; the parent writes its own events."""
    for queue in list(_live_queues):
        queue._queue_reset()
    _register_multiprocessing_flush()


at_fork_in_child(ForkPhase.QUEUES, _queues_after_fork)
