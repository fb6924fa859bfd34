"""A queue's disk spool: which one it gets, what it sets aside, when it delivers.

The spool itself (files, records, delivery) is `_spool`; this module decides
for one queue whether it has one (`open_spool`), sets events aside in it or
counts them dropped (`SpoolSide`), and paces its tries at a store that
failed (`Retry`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from ._queue_items import Item, Waiter, events_in
from ._queue_ledger import Ledger
from ._queue_settings import QueueSettings
from ._report import report_problem
from ._spool import SPOOL_AVAILABLE, Delivery, Spool, SpoolError, WriteBatch, deliver_spool, spool_directory
from .errors import ConfigError, StoreError, StoreRefusedError
from .event import PendingEvent
from .store import Store

__all__ = ["Retry", "SpoolSide", "open_spool", "spool_directory_of", "write_to"]


def open_spool(store: Store, settings: QueueSettings) -> Spool | None:
    """The spool of `store` as `settings` place it; None when off, not wanted or not possible here.

    Nothing is created until the first event is set aside.
    """
    try:
        directory = spool_directory_of(store, settings)
    except ConfigError as exc:
        report_problem("spool-off", "no data directory for a spool: what the store cannot take is lost", exc)
        return None
    if directory is None:
        return None
    return Spool(directory, settings.spool_max_bytes, store.describe())


def spool_directory_of(store: Store, settings: QueueSettings) -> Path | None:
    """Where the spool of `store` is (created or not); None when there is to be none.

    Raises `ConfigError` when the default place is wanted and there is no data directory.
    """
    if settings.spool_max_bytes <= 0 or not SPOOL_AVAILABLE:
        return None
    key = store.spool_key()
    if key is None:
        return None
    root = settings.spool_dir
    if root is None:
        # Here, not at import: config imports the queue.
        from .config import default_spool_root

        root = str(default_spool_root())
    return spool_directory(Path(root), key)


def write_to(store: Store) -> WriteBatch:
    """How a delivery writes a batch from the spool to `store`: whole, or one by one around refusals."""

    def write(events: list[PendingEvent], maybe_stored: list[bool]) -> int:
        try:
            store.write_spooled(events, maybe_stored)
            return 0
        except StoreRefusedError:
            pass
        refused = 0
        for event, flag in zip(events, maybe_stored, strict=True):
            try:
                store.write_spooled([event], [flag])
            except StoreRefusedError as exc:
                refused += 1
                report_problem(
                    "queue-rejected", "the store refused an event of the spool; it is dropped", exc
                )
        return refused

    return write


class Retry:
    """When a queue next tries a failed store, or next delivers its spool: backoff from 0.5 s to 5 s."""

    FIRST = 0.5
    MOST = 5.0

    def __init__(self) -> None:
        self.at: float | None = None
        """The `time.monotonic` instant of the next try; None: nothing to try."""
        self._delay = self.FIRST

    def now(self) -> None:
        """Try at the next chance (a spool may hold something: at start, once the store took a write)."""
        self.at = time.monotonic()
        self._delay = self.FIRST

    def later(self) -> None:
        """The try failed: the next one after the backoff, which doubles."""
        self.at = time.monotonic() + self._delay
        self._delay = min(self._delay * 2, self.MOST)

    def done(self) -> None:
        """Nothing left to try."""
        self.at = None
        self._delay = self.FIRST

    @property
    def due(self) -> bool:
        return self.at is not None and time.monotonic() >= self.at


class SpoolSide:
    """What one queue does with its spool: set events aside (or drop and count them), deliver them.

    `down`: the store failed for ``retry_for``; the queue sends batches
    straight here until a delivery works. `deliveries` paces those tries.
    """

    def __init__(self, spool: Spool | None, ledger: Ledger, store: Store, settings: QueueSettings) -> None:
        self.spool = spool
        self._ledger = ledger
        self._store = store
        self._settings = settings
        self.down = False
        self.deliveries = Retry()
        if spool is not None:
            # Whatever an earlier process left in this store's spool: delivered once the worker starts.
            self.deliveries.now()

    def overflow(self, event: PendingEvent) -> None:
        """Memory is full: the event goes to the spool (a write to the page cache, no fsync) or is dropped."""
        if self.set_aside([event], reason="queue full", at_door=True) and self.deliveries.at is None:
            self.deliveries.now()

    def set_aside_batch(
        self,
        batch: list[Item],
        exc: BaseException | None = None,
        reason: str = "the store kept failing",
        maybe_stored: bool = False,
    ) -> None:
        """Put a taken batch's events in the spool (or drop them); release its waiters.

        `exc` is the store's failure, if that is why: then the store counts as
        down until a delivery from the spool works. `maybe_stored`: a write of
        the batch may have committed (`Spool.append`).
        """
        events = events_in(batch)
        spooled = bool(events) and self.set_aside(events, reason=reason, exc=exc, maybe_stored=maybe_stored)
        if spooled and exc is not None:
            self.down = True
            self.deliveries.later()
        for item in batch:
            if isinstance(item, Waiter):
                if item.event is not None:
                    why = exc if exc is not None else StoreError("the store did not take it in time")
                    kept = StoreError(f"kept in the spool until the store takes writes: {why}")
                    item.error = kept if spooled else why
                item.done.set()

    def set_aside(
        self,
        events: list[PendingEvent],
        *,
        reason: str,
        exc: BaseException | None = None,
        at_door: bool = False,
        maybe_stored: bool = False,
    ) -> bool:
        """Append `events` (counted in flight) to the spool; True if they are there, False if dropped.

        `at_door`: refused as they came (memory full) rather than taken to be written.
        """
        failure: BaseException | None = exc
        spooled = False
        if self.spool is not None:
            try:
                self.spool.append(events, maybe_stored)
                spooled = True
            except SpoolError as error:
                failure = error
        total = self._ledger.set_aside(events, spooled=spooled, reason=reason, at_door=at_door)
        count = len(events)
        if spooled:
            where = self.spool.directory if self.spool is not None else ""
            report_problem(
                "queue-spooled", f"{count} events set aside in the spool {where} ({total} so far): {reason}"
            )
        elif not at_door:
            message = f"{reason}: {count} queued events are given up ({total} dropped so far)"
            report_problem("queue-lost", message, failure)
        else:
            report_problem(
                "queue-full", f"events are being dropped ({reason}): {total} dropped so far", failure
            )
        return spooled

    def deliver(self, stop: Callable[[], bool]) -> None:
        """Write what waits in the spool, oldest first: earlier processes' files, then this queue's own.

        `stop` is asked between batches. A failing store leaves the rest for
        the next try, after the backoff.
        """
        spool = self.spool
        if spool is None:
            self.deliveries.done()
            return
        delivery = Delivery(own_writer=spool.writer)
        write = write_to(self._store)
        try:
            deliver_spool(spool.directory, write, self._settings.batch_size, delivery, stop)
            if spool.holds_a_file and not stop():
                spool.release()
                deliver_spool(spool.directory, write, self._settings.batch_size, delivery, stop)
        except Exception as exc:  # noqa: BLE001 - the store still fails: try again later
            self.deliveries.later()
            report_problem("queue-retry", "writing the spool to the store failed; trying again later", exc)
        else:
            self.down = False
            if spool.holds_a_file:
                self.deliveries.now()
            else:
                self.deliveries.done()
            self.record_drops()
        finally:
            self._ledger.delivered(delivery)

    def record_drops(self) -> None:
        """Once the store takes writes again, record how many events were dropped, and why."""
        note = self._ledger.drop_note()
        if note is None:
            return
        try:
            self._store.write_events([note], ())
        except Exception as exc:  # noqa: BLE001 - the note is best effort; the count waits for the next try
            self._ledger.drop_note_failed(note)
            report_problem("queue-retry", "recording the drop count failed", exc)
