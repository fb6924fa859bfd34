"""EventQueue: the queue component a queued store holds.

The caller's thread only appends a `PendingEvent` to a deque bounded by bytes
(and, far above any burst, by count); one daemon worker thread takes batches
off it and writes each with the store's ``write_events`` in one transaction,
retrying a failing store with backoff. A batch smaller than ``batch_size``
waits up to ``linger`` seconds for more events, unless someone waits for it
(a sync event, a flush, the exit): at a steady rate of a few hundred events
a second, one transaction per event would cost many times the events. What
the store cannot take (it failed for ``retry_for``, memory is full, the exit
deadline came) is set aside in a disk spool (`_spool`) and delivered once
the store takes writes again, by this process or the next. Every event is
accounted for: written, pending, spooled, dropped or rejected
(`QueueStats`), under one lock, so the figures always add up to what was
logged. docs/queue.md tells the whole story.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Mapping

from . import _exit
from ._queue_items import (
    Item,
    State,
    Waiter,
    event_bytes,
    event_of,
    events_in,
    waited_positions,
    waiters_in,
)
from ._queue_ledger import Ledger
from ._queue_settings import QueueSettings, QueueStats
from ._queue_spool import SpoolSide, open_spool
from ._report import report_problem
from .errors import StoreError, StoreRefusedError
from .event import PendingEvent
from .records import EventRecord
from .store import Store

__all__ = ["EventQueue", "event_bytes"]

_WORKER_NAME = "code_wake-queue-writer"

_RUNNING = State.RUNNING
"""The state the caller checks for on every event, as a module global (one lookup, not two)."""

_NEVER = 1 << 62
"""`EventQueue._wake_at` while the worker writes: no event needs to wake it."""

_EXIT_RESERVE = 1.0
"""Seconds of the exit deadline kept, at most, to set aside what the store did not take by then."""


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
        self.spool = open_spool(store, settings)
        """The disk spool for what the store cannot take; None when there is none (`_queue_spool`)."""
        self.reset()

    def reset(self) -> None:
        """A fresh, empty queue with no worker: at start, and in a forked child."""
        self._items: deque[Item] = deque()
        self._wakeup = threading.Event()
        self._wake_at = _NEVER
        """The queue length at which a new event wakes the worker: 1 asleep, a batch lingering."""
        self._waiters = 0
        """Waiters (sync events, flush markers) in the queue: the worker does not linger then."""
        self.state = State.IDLE
        self.worker: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self._ledger = Ledger()
        self._lock = self._ledger.lock
        self._counts = self._ledger.counts
        self._no_threads = False
        self._exit_flushed = True
        self._failing = False
        """The batch being written has failed at least once."""
        self._hurry = threading.Event()
        """Set at the exit deadline: set aside what waits rather than wait for the store."""
        self._current: list[Item] | None = None
        """The batch the worker is writing; the exit may take it over (`_set_all_aside`)."""
        if self.spool is not None:
            self.spool.reset()
        self._aside = SpoolSide(self.spool, self._ledger, self.store, self.settings)

    # -- the caller's side: cheap ------------------------------------------------------

    def submit(self, event: PendingEvent, sync: bool = False) -> EventRecord | None:
        """Queue `event`; with `sync`, wait for it to be written and return its record."""
        if self.state is not _RUNNING and not self._start():
            return self._write_now(event, sync)
        if sync:
            return self._submit_and_wait(event)
        size = event_bytes(event)
        counts = self._counts
        items = self._items
        with self._lock:
            counts.logged += 1
            queued = len(items)
            full = counts.queued_bytes + size > self.settings.max_bytes or queued >= self.settings.max_events
            if full:
                counts.in_flight += 1  # on its way to the spool: pending till it is there
            else:
                counts.queued_bytes += size
                items.append(event)
        if full:
            self._aside.overflow(event)
        elif queued + 1 == self._wake_at:
            # Once per crossing (appends are counted under the lock): not a wakeup per event
            # while the worker has yet to run.
            self._wakeup.set()
        return None

    def _submit_and_wait(self, event: PendingEvent) -> EventRecord | None:
        if threading.current_thread() is self.worker:
            # Waiting for ourselves would never end: write here and now.
            return self._write_now(event, sync=True)
        waiter = Waiter(event)
        with self._lock:
            # A sync caller waits for its event rather than lose it: the bound does not apply.
            self._counts.logged += 1
            self._counts.queued_bytes += event_bytes(event)
            self._queue_waiter(waiter)
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
            self._counts.in_flight += 1
            store_kept_up = self._exit_flushed
        if not store_kept_up:
            # The store did not keep up at exit: do not hold the exit up any longer for it.
            self._aside.set_aside([event], reason="the store did not take the exit flush")
            if sync:
                raise StoreError("The store did not take the exit flush; the event is not written.")
            return None
        try:
            record = self._write_here(event)
        except Exception as exc:
            unsure = isinstance(exc, StoreError) and exc.maybe_stored
            self._aside.set_aside([event], reason="writing it at exit failed", exc=exc, maybe_stored=unsure)
            if sync:
                raise
            return None
        self._ledger.written(1)
        return record if sync else None

    def _start(self) -> bool:
        """Start the worker if there is none (first event, after fork, after it died).

        Returns False when no thread can be started.
        """
        if self.state is State.CLOSED:
            raise StoreError("This store is closed: no more events can be queued.")
        with self._start_lock:
            if self.state is State.RUNNING:
                return True
            if self._no_threads or self.state is State.EXITED:
                return False
            worker = threading.Thread(target=self._run, name=_WORKER_NAME, daemon=True)
            worker.code_wake_worker = True  # type: ignore[attr-defined]  # read by code_wake._ours
            # Running before start() returns: the worker's first look at the state must see it.
            self.state = State.RUNNING
            try:
                worker.start()
            except RuntimeError:
                # Interpreter shutdown: Python 3.12+ refuses new threads.
                self.state = State.IDLE
                self._no_threads = True
                return False
            self.worker = worker
            return True

    # -- the worker's side ----------------------------------------------------------------

    def _run(self) -> None:
        batch: list[Item] = []
        try:
            while self.state is _RUNNING:
                if self._aside.deliveries.due and not self._hurry.is_set():
                    self._aside.deliver(self._stopping)
                batch = self._take()
                if not batch:
                    continue
                if self._aside.down or self._hurry.is_set():
                    self._aside.set_aside_batch(
                        batch, reason="the store is down" if self._aside.down else "exit deadline"
                    )
                else:
                    self._write(batch)
                batch = []
        except BaseException as exc:  # noqa: BLE001 - the worker must not die silently; the next event restarts it
            # Stopped anywhere in a write, perhaps after its COMMIT: the delivery looks before writing.
            self._aside.set_aside_batch(batch, exc, maybe_stored=True)
            report_problem("queue-worker", "the queue's writer thread stopped unexpectedly", exc)
        finally:
            if self.state is _RUNNING:
                self.state = State.IDLE

    def _take(self) -> list[Item]:
        """Wait for events, and for a batch to fill (`_linger`); return up to a batch (a waiter ends one)."""
        if not self._items:
            self._wake_at = 1
            # Re-check after lowering the mark: an append in between did not see it.
            if not self._items:
                self._wakeup.wait(0.5)
            self._wake_at = _NEVER
            self._wakeup.clear()
        if self._items:
            self._linger()
        return self._take_now(stop_at_waiter=True)

    def _linger(self) -> None:
        """Wait up to ``linger`` seconds for a batch to fill, unless someone waits for the queue.

        A waiter (sync event, flush marker) or the exit ends the wait at once,
        as does a full batch: each sets the wakeup after it is queued.
        """
        until = time.monotonic() + self.settings.linger
        while not self._write_at_once():
            remaining = until - time.monotonic()
            if remaining <= 0:
                return
            self._wake_at = self.settings.batch_size
            self._wakeup.clear()
            # Re-check after clearing: a waiter queued in between set the wakeup before the clear.
            if not self._write_at_once():
                self._wakeup.wait(remaining)
            self._wake_at = _NEVER

    def _write_at_once(self) -> bool:
        """Whether the worker should write what is queued now rather than let the batch grow."""
        return bool(self._waiters) or len(self._items) >= self.settings.batch_size or self._stopping()

    def _queue_waiter(self, waiter: Waiter) -> None:
        """Append `waiter` (under the lock) and wake the worker: it writes without lingering."""
        self._waiters += 1
        self._items.append(waiter)
        self._wakeup.set()

    def _take_now(self, stop_at_waiter: bool = False) -> list[Item]:
        """Up to a batch off the queue; its events count as in flight until they are settled."""
        batch: list[Item] = []
        limit = self.settings.batch_size
        items = self._items
        with self._lock:
            while items and len(batch) < limit:
                item = items.popleft()
                batch.append(item)
                event = event_of(item)
                if event is not None:
                    self._counts.queued_bytes -= event_bytes(event)
                    self._counts.in_flight += 1
                if isinstance(item, Waiter):
                    self._waiters -= 1
                    if stop_at_waiter:
                        break
        return batch

    def _write(self, batch: list[Item], deadline: float | None = None) -> None:
        """Write a batch, retrying with backoff; set it aside after ``retry_for`` seconds or at `deadline`."""
        pending = events_in(batch)
        waiters = waiters_in(batch)
        wanted = waited_positions(waiters)
        give_up_at = time.monotonic() + self.settings.retry_for
        if deadline is not None:
            give_up_at = min(give_up_at, deadline)
        delay, failures = 0.05, 0
        maybe_stored = False
        self._current = batch
        while True:
            try:
                records = self.store.write_events(pending, wanted) if pending else {}
            except Exception as exc:  # noqa: BLE001 - any store failure is retried; what is given up is counted
                failures += 1
                self._failing = True
                # Once a try may have committed, the batch may be stored, whatever the later tries say.
                maybe_stored = maybe_stored or (isinstance(exc, StoreError) and exc.maybe_stored)
                # A refusal is final (schema too new, a value refused): find the refused events now,
                # rather than retry them for retry_for; other failures get two tries first.
                refused = isinstance(exc, StoreRefusedError)
                if (refused or (failures == 3 and len(pending) > 1)) and self._write_singly(batch):
                    return
                if (
                    time.monotonic() + delay > give_up_at
                    or self._hurry.is_set()
                    or (self.state is State.CLOSED and deadline is None)
                ):
                    if self._claim(batch):
                        self._aside.set_aside_batch(batch, exc, maybe_stored=maybe_stored)
                    return
                self._ledger.retried()
                report_problem("queue-retry", "writing queued events failed; retrying", exc)
                # Not a wait on the wakeup event: events arriving must not cut short the backoff
                # of a failing store. The exit deadline does.
                self._hurry.wait(delay)
                delay = min(delay * 2, 5.0)
                continue
            if self._claim(batch):
                self._delivered(len(pending), waiters, records)
            return

    def _claim(self, batch: list[Item]) -> bool:
        """Settle `batch` here; False when the exit took it over already (`_set_all_aside`)."""
        with self._lock:
            self._failing = False
            if self._current is not batch:
                return False
            self._current = None
            return True

    def _delivered(
        self, written: int, waiters: list[tuple[Waiter, int | None]], records: Mapping[int, EventRecord]
    ) -> None:
        """Count `written` events, and hand each waiter its event's record (`records`: by position)."""
        self._ledger.written(written)
        for waiter, position in waiters:
            waiter.record = None if position is None else records[position]
            waiter.done.set()
        if self._counts.unrecorded_drops:
            self._aside.record_drops()

    def _write_singly(self, batch: list[Item]) -> bool:
        """Write a repeatedly failing batch one event at a time, to find the event the store refuses.

        Returns False, having written nothing, when the very first event fails
        too (unless the store refused it for good): then the store itself is
        failing and the batch is retried whole.
        """
        for position, item in enumerate(batch):
            event = event_of(item)
            waiters = waiters_in([item])
            try:
                records = {} if event is None else self.store.write_events([event], waited_positions(waiters))
            except Exception as exc:  # noqa: BLE001 - one event refused: count it, keep going
                if position == 0 and not isinstance(exc, StoreRefusedError):
                    return False
                if position == 0 and not self._claim(batch):
                    return True
                self._reject(item, exc)
                continue
            if position == 0 and not self._claim(batch):
                return True
            self._delivered(0 if event is None else 1, waiters, records)
        return True

    def _reject(self, item: Item, exc: Exception) -> None:
        self._ledger.rejected()
        report_problem("queue-rejected", "the store refused an event; it is dropped", exc)
        if isinstance(item, Waiter):
            item.error = exc
            item.done.set()

    # -- flush and close: deadlines and honest answers --------------------------------------

    def flush(self, timeout: float | None = 5.0) -> bool:
        """Wait until every event queued before this call is written, spooled or given up.

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
            marker = Waiter(None)
            with self._lock:
                self._queue_waiter(marker)
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

    def flush_at_exit(self, timeout: float) -> bool:
        """The exit flush: write what the store takes by shortly before the deadline, spool the rest.

        A store that is failing already gets no wait: what is pending goes to
        the spool at once. True if everything pending was written.
        """
        if self.spool is None:
            return self.flush(timeout)
        reserve = min(_EXIT_RESERVE, timeout / 5)
        if self._flush_while_healthy(max(0.0, timeout - reserve)):
            return True
        self._set_all_aside()
        return False

    def _flush_while_healthy(self, timeout: float) -> bool:
        """Flush, but give up as soon as the store fails: at exit, waiting for it is time lost."""
        worker = self.worker
        if not (self.state is _RUNNING and worker is not None and worker.is_alive()):
            return not (self._aside.down or self._failing) and self.flush(timeout)
        deadline = time.monotonic() + timeout
        marker = Waiter(None)
        with self._lock:
            self._queue_waiter(marker)
        while not marker.done.wait(min(0.02, max(0.0, deadline - time.monotonic()))):
            if self._aside.down or self._failing or time.monotonic() >= deadline:
                return False
        return True

    def _set_all_aside(self) -> None:
        """Spool everything pending now: the queue here, and the worker's batch once its try ends."""
        self._hurry.set()
        self._wakeup.set()
        while batch := self._take_now():
            self._aside.set_aside_batch(batch, reason="exit deadline")
        until = time.monotonic() + _exit.remaining(_EXIT_RESERVE)
        while self._counts.in_flight and time.monotonic() < until:
            time.sleep(0.01)
        with self._lock:
            stuck, self._current = self._current, None
        if stuck is not None:
            # The worker's try outlasted the deadline (a dead connection): its batch goes to the spool
            # too, marked: should that try still commit in its last instant, the delivery finds it stored.
            self._aside.set_aside_batch(stuck, reason="exit deadline", maybe_stored=True)

    def close(self, timeout: float | None = 5.0) -> bool:
        """Flush within `timeout` and stop the worker; True if the flush got through in time.

        What is still queued after it goes to the spool (with none, it is
        dropped and counted as lost); ``queue_stats`` says what was written.
        """
        if self.state is State.CLOSED:
            return not self._items
        flushed = self.flush(timeout)
        self.state = State.CLOSED
        self._wakeup.set()
        self._hurry.set()
        worker = self.worker
        if worker is not None and worker is not threading.current_thread():
            worker.join(timeout=_exit.remaining(1.0))
        left = 0
        while batch := self._take_now():
            left += len(events_in(batch))
            self._aside.set_aside_batch(batch, reason="the store was closed")
        if left:
            report_problem("queue-lost", f"the store was closed with {left} events still queued")
        if self.spool is not None:
            self.spool.release()
        return flushed and not left

    def exited(self, flushed: bool) -> None:
        """After the exit flush: later events are written on the caller's thread, if the store kept up."""
        self._exit_flushed = flushed
        if self.state is not State.CLOSED:
            self.state = State.EXITED
            self._wakeup.set()

    def _stopping(self) -> bool:
        """Whether the worker should stop what it is doing: closed, exited, or the exit deadline came."""
        return self.state is not _RUNNING or self._hurry.is_set()

    @property
    def stats(self) -> QueueStats:
        """Where every event logged in this process went, figures taken at one instant."""
        with self._lock:
            return self._ledger.stats(sum(1 for item in list(self._items) if event_of(item) is not None))
