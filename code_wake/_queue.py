"""EventQueue: the queue component a queued store holds.

The caller's thread only appends a `PendingEvent` to a deque bounded by bytes
(and, far above any burst, by count); one daemon worker thread takes batches
off it and writes each with the store's ``insert_events`` in one transaction,
retrying a failing store with backoff. Every event is accounted for: written,
pending, dropped or rejected (`QueueStats`), under one lock, so the figures
always add up to what was logged. docs/queue.md tells the whole story.
"""

from __future__ import annotations

import enum
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from . import _exit
from ._queue_settings import QueueSettings, QueueStats
from ._report import report_problem
from .errors import StoreError, StoreRefusedError
from .event import PendingEvent, ProcessRef
from .records import EventRecord
from .store import Store

__all__ = ["EventQueue", "event_bytes"]

_WORKER_NAME = "code_wake-queue-writer"

# What an event costs in memory while it waits, measured with tracemalloc on
# CPython 3.11: the named tuple, its time, its deque slot and data tuple; each
# (key, value) pair tuple and the value's str header; each captured frame.
_EVENT_BYTES = 200
_PAIR_BYTES = 110
_FRAME_BYTES = 90


def event_bytes(event: PendingEvent) -> int:
    """About what `event` keeps alive while it waits: the queue's memory bound counts this."""
    size = _EVENT_BYTES + _PAIR_BYTES * len(event.data)
    for _key, value in event.data:
        if value:
            size += len(value)
    if event.frames:
        size += _FRAME_BYTES * len(event.frames)
    if event.exc_message:
        size += len(event.exc_message)
    return size


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


def _event_of(item: _Item) -> PendingEvent | None:
    return item if isinstance(item, PendingEvent) else item.event


def _events_in(batch: Sequence[_Item]) -> list[PendingEvent]:
    """The events of a batch, in order (flush markers carry none)."""
    return [event for event in map(_event_of, batch) if event is not None]


@dataclass
class _Counters:
    """Where every logged event went; changed only under the queue's lock, so they add up."""

    logged: int = 0
    written: int = 0
    dropped: int = 0
    lost: int = 0
    rejected: int = 0
    retries: int = 0
    queued_bytes: int = 0
    in_flight: int = 0
    unrecorded_drops: int = 0
    drop_owner: ProcessRef | None = None


class EventQueue:
    """A bounded queue and its writer thread in front of `store`; see the module's docstring.

    `write_here` writes one event on the calling thread, as the store would
    unqueued: used when no thread can be started, and for a sync event the
    worker itself logs.
    """

    def __init__(
        self, store: Store, settings: QueueSettings, write_here: Callable[[PendingEvent], EventRecord | None]
    ) -> None:
        self.store = store
        self.settings = settings
        self._write_here = write_here
        self.reset()

    def reset(self) -> None:
        """A fresh, empty queue with no worker: at start, and in a forked child."""
        self._items: deque[_Item] = deque()
        self._wakeup = threading.Event()
        self._sleeping = False
        self.state = _State.IDLE
        self.worker: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self._lock = threading.Lock()
        self._counts = _Counters()
        self._no_threads = False
        self._exit_flushed = True

    # -- the caller's side: cheap ------------------------------------------------------

    def submit(self, event: PendingEvent, sync: bool = False) -> EventRecord | None:
        """Queue `event`; with `sync`, wait for it to be written and return its record."""
        if self.state is not _RUNNING and not self._start():
            return self._write_now(event, sync)
        if sync:
            return self._submit_and_wait(event)
        size = event_bytes(event)
        counts = self._counts
        with self._lock:
            counts.logged += 1
            full = (
                counts.queued_bytes + size > self.settings.max_bytes
                or len(self._items) >= self.settings.max_events
            )
            if full:
                dropped = self._count_drop(event)
            else:
                counts.queued_bytes += size
                self._items.append(event)
        if full:
            self._report_drop(dropped, "queue full")
        elif self._sleeping:
            self._wakeup.set()
        return None

    def _submit_and_wait(self, event: PendingEvent) -> EventRecord | None:
        if threading.current_thread() is self.worker:
            # Waiting for ourselves would never end: write here and now.
            return self._write_now(event, sync=True)
        waiter = _Waiter(event)
        with self._lock:
            # A sync caller waits for its event rather than lose it: the bound does not apply.
            self._counts.logged += 1
            self._counts.queued_bytes += event_bytes(event)
            self._items.append(waiter)
        self._wakeup.set()
        if not waiter.done.wait(self.settings.sync_timeout):
            raise StoreError(
                f"The event was queued but not written within {self.settings.sync_timeout} s; "
                "it stays queued and will be written when the store catches up."
            )
        if waiter.error is not None:
            raise StoreError(f"The event could not be written: {waiter.error}") from waiter.error
        return waiter.record

    def _write_now(self, event: PendingEvent, sync: bool) -> EventRecord | None:
        """Write on the calling thread: no worker can (interpreter shutdown), or it is the worker."""
        with self._lock:
            self._counts.logged += 1
            dropped = None if self._exit_flushed else self._count_drop(event)
        if dropped is not None:
            # The store did not keep up at exit: do not hold the exit up any longer for it.
            self._report_drop(dropped, "the store did not take the exit flush")
            if sync:
                raise StoreError("The store did not take the exit flush; the event is dropped.")
            return None
        try:
            record = self._write_here(event)
        except Exception as exc:
            with self._lock:
                self._counts.dropped += 1
            report_problem("queue-lost", "an event written at exit could not be stored", exc)
            if sync:
                raise
            return None
        with self._lock:
            self._counts.written += 1
        return record if sync else None

    def _count_drop(self, event: PendingEvent) -> int:
        """Count a refused event (the caller holds the lock); recorded in the data once the store writes."""
        counts = self._counts
        counts.dropped += 1
        counts.unrecorded_drops += 1
        counts.drop_owner = event.process
        return counts.dropped

    def _report_drop(self, dropped: int, reason: str) -> None:
        # Outside the lock: a logging handler may be slow, and must never deadlock the queue.
        report_problem(
            "queue-full",
            f"events are being dropped ({reason}; the queue holds at most {self.settings.max_bytes} bytes "
            f"and {self.settings.max_events} events): {dropped} dropped so far",
        )

    def _start(self) -> bool:
        """Start the worker if there is none (first event, after fork, after it died).

        Returns False when no thread can be started.
        """
        if self.state is _State.CLOSED:
            raise StoreError("This store is closed: no more events can be queued.")
        with self._start_lock:
            if self.state is _State.RUNNING:
                return True
            if self._no_threads or self.state is _State.EXITED:
                return False
            worker = threading.Thread(target=self._run, name=_WORKER_NAME, daemon=True)
            worker.code_wake_worker = True  # type: ignore[attr-defined]  # read by code_wake._ours
            # Running before start() returns: the worker's first look at the state must see it.
            self.state = _State.RUNNING
            try:
                worker.start()
            except RuntimeError:
                # Interpreter shutdown: Python 3.12+ refuses new threads.
                self.state = _State.IDLE
                self._no_threads = True
                return False
            self.worker = worker
            return True

    # -- the worker's side ----------------------------------------------------------------

    def _run(self) -> None:
        batch: list[_Item] = []
        try:
            while self.state is _State.RUNNING:
                batch = self._take()
                if batch:
                    self._write(batch)
                batch = []
        except BaseException as exc:  # noqa: BLE001 - the worker must not die silently; the next event restarts it
            self._give_up(batch, exc)
            report_problem("queue-worker", "the queue's writer thread stopped unexpectedly", exc)
        finally:
            if self.state is _State.RUNNING:
                self.state = _State.IDLE

    def _take(self) -> list[_Item]:
        """Wait for events; return up to a batch of them (a waiter ends a batch)."""
        if not self._items:
            self._sleeping = True
            # Re-check after raising the flag: an append in between did not see it.
            if not self._items:
                self._wakeup.wait(0.5)
            self._sleeping = False
            self._wakeup.clear()
        return self._take_now(stop_at_waiter=True)

    def _take_now(self, stop_at_waiter: bool = False) -> list[_Item]:
        """Up to a batch off the queue; its events count as in flight until they are settled."""
        batch: list[_Item] = []
        limit = self.settings.batch_size
        items = self._items
        with self._lock:
            while items and len(batch) < limit:
                item = items.popleft()
                batch.append(item)
                event = _event_of(item)
                if event is not None:
                    self._counts.queued_bytes -= event_bytes(event)
                    self._counts.in_flight += 1
                if stop_at_waiter and isinstance(item, _Waiter):
                    break
        return batch

    def _write(self, batch: list[_Item], deadline: float | None = None) -> None:
        """Write a batch, retrying with backoff; give up after ``retry_for`` seconds or `deadline`."""
        pending = _events_in(batch)
        give_up_at = time.monotonic() + self.settings.retry_for
        if deadline is not None:
            give_up_at = min(give_up_at, deadline)
        delay, failures = 0.05, 0
        while True:
            try:
                records = self.store.insert_events(pending) if pending else []
            except Exception as exc:  # noqa: BLE001 - any store failure is retried; what is given up is counted
                failures += 1
                # A refusal is final (schema too new, a value refused): find the refused events now,
                # rather than retry them for retry_for; other failures get two tries first.
                refused = isinstance(exc, StoreRefusedError)
                if (refused or (failures == 3 and len(pending) > 1)) and self._write_singly(batch):
                    return
                if time.monotonic() + delay > give_up_at or (
                    self.state is _State.CLOSED and deadline is None
                ):
                    self._give_up(batch, exc)
                    return
                with self._lock:
                    self._counts.retries += 1
                report_problem("queue-retry", "writing queued events failed; retrying", exc)
                # time.sleep, not a wait on the wakeup event: events arriving must not
                # cut short the backoff of a failing store.
                time.sleep(delay)
                delay = min(delay * 2, 5.0)
                continue
            self._delivered(batch, records)
            return

    def _delivered(self, batch: list[_Item], records: Sequence[EventRecord]) -> None:
        with self._lock:
            self._counts.written += len(records)
            self._counts.in_flight -= len(records)
        found = iter(records)
        for item in batch:
            if isinstance(item, _Waiter):
                item.record = next(found) if item.event is not None else None
                item.done.set()
            else:
                next(found)
        if self._counts.unrecorded_drops:
            self._record_drops()

    def _record_drops(self) -> None:
        """Once the store takes writes again, record how many events were dropped."""
        counts = self._counts
        with self._lock:
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
            self.store.insert_events([note])
        except Exception as exc:  # noqa: BLE001 - the note is best effort; the count waits for the next try
            with self._lock:
                counts.unrecorded_drops += dropped
            report_problem("queue-retry", "recording the drop count failed", exc)

    def _write_singly(self, batch: list[_Item]) -> bool:
        """Write a repeatedly failing batch one event at a time, to find the event the store refuses.

        Returns False, having written nothing, when the very first event fails
        too (unless the store refused it for good): then the store itself is
        failing and the batch is retried whole.
        """
        for position, item in enumerate(batch):
            event = _event_of(item)
            try:
                records = self.store.insert_events([event]) if event is not None else []
            except Exception as exc:  # noqa: BLE001 - one event refused: count it, keep going
                if position == 0 and not isinstance(exc, StoreRefusedError):
                    return False
                self._reject(item, exc)
                continue
            self._delivered([item], records)
        return True

    def _reject(self, item: _Item, exc: Exception) -> None:
        with self._lock:
            self._counts.rejected += 1
            self._counts.in_flight -= 1
        report_problem("queue-rejected", "the store refused an event; it is dropped", exc)
        if isinstance(item, _Waiter):
            item.error = exc
            item.done.set()

    def _give_up(self, batch: list[_Item], exc: BaseException) -> None:
        count = len(_events_in(batch))
        with self._lock:
            self._counts.dropped += count
            self._counts.lost += count
            self._counts.in_flight -= count
            total = self._counts.lost
        report_problem(
            "queue-lost", f"the store kept failing: {count} queued events are given up ({total} so far)", exc
        )
        for item in batch:
            if isinstance(item, _Waiter):
                item.error = exc
                item.done.set()

    # -- flush and close: deadlines and honest answers --------------------------------------

    def flush(self, timeout: float | None = 5.0) -> bool:
        """Wait until every event queued before this call is written or given up.

        Returns True when the queue got through them within `timeout` seconds
        (None: no limit), False otherwise. Once the interpreter exits, no flush
        waits past the one exit deadline (`code_wake._exit`).
        """
        deadline = _exit.capped(None if timeout is None else time.monotonic() + timeout)
        worker = self.worker
        if (
            self.state is _RUNNING
            and worker is not None
            and worker.is_alive()
            and worker is not threading.current_thread()
        ):
            marker = _Waiter(None)
            self._items.append(marker)
            self._wakeup.set()
            return marker.done.wait(None if deadline is None else max(0.0, deadline - time.monotonic()))
        return self._drain_here(deadline)

    def _drain_here(self, deadline: float | None) -> bool:
        """Write what is queued on this thread: there is no worker to do it."""
        while self._items:
            if deadline is not None and time.monotonic() >= deadline:
                return False
            batch = self._take_now()
            self._write(batch, deadline=deadline if deadline is not None else float("inf"))
        return True

    def close(self, timeout: float | None = 5.0) -> bool:
        """Flush within `timeout` and stop the worker; True if nothing was left behind."""
        if self.state is _State.CLOSED:
            return not self._items
        flushed = self.flush(timeout)
        self.state = _State.CLOSED
        self._wakeup.set()
        worker = self.worker
        if worker is not None and worker is not threading.current_thread():
            worker.join(timeout=_exit.remaining(1.0))
        left = self._take_left()
        if left:
            report_problem("queue-lost", f"the store was closed with {left} events still queued")
        return flushed and not left

    def _take_left(self) -> int:
        """Count what close() leaves in the queue as dropped (and lost), and empty it."""
        with self._lock:
            left = len(_events_in(self._items))
            self._items.clear()
            self._counts.dropped += left
            self._counts.lost += left
            self._counts.queued_bytes = 0
        return left

    def exited(self, flushed: bool) -> None:
        """After the exit flush: later events are written on the caller's thread, if the store kept up."""
        self._exit_flushed = flushed
        if self.state is not _State.CLOSED:
            self.state = _State.EXITED
            self._wakeup.set()

    @property
    def stats(self) -> QueueStats:
        """Where every event logged in this process went, figures taken at one instant."""
        with self._lock:
            counts = self._counts
            queued = sum(1 for item in list(self._items) if _event_of(item) is not None)
            return QueueStats(
                logged=counts.logged,
                pending=queued + counts.in_flight,
                written=counts.written,
                dropped=counts.dropped,
                lost=counts.lost,
                rejected=counts.rejected,
                retries=counts.retries,
                pending_bytes=counts.queued_bytes,
            )
