"""Where every event a queue was given went: one lock, so the figures always add up.

`logged == pending + written + spooled + dropped + rejected`, at any instant
`stats` is taken. The caller's fast path (`EventQueue.submit`) uses `lock`
and `counts` directly; everything else changes them through a method here.
"""

from __future__ import annotations

import threading
import time

from ._queue_items import Counters
from ._queue_settings import QueueStats
from ._spool import Delivery
from .event import PendingEvent

__all__ = ["Ledger"]


class Ledger:
    """A queue's figures and the lock that keeps them consistent."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.counts = Counters()

    def written(self, count: int) -> None:
        """`count` events of the batch in flight are stored."""
        with self.lock:
            self.counts.written += count
            self.counts.in_flight -= count

    def rejected(self) -> None:
        """One event of the batch in flight was refused by the store for good."""
        with self.lock:
            self.counts.rejected += 1
            self.counts.in_flight -= 1

    def retried(self) -> None:
        with self.lock:
            self.counts.retries += 1

    def set_aside(self, events: list[PendingEvent], *, spooled: bool, reason: str, at_door: bool) -> int:
        """`events` (in flight) went to the spool, or (not `spooled`) are dropped; the running total.

        `at_door`: refused as they came (memory full), rather than taken to be
        written: a drop then is not counted as `lost`.
        """
        count = len(events)
        counts = self.counts
        with self.lock:
            counts.in_flight -= count
            if spooled:
                counts.spooled += count
                return counts.spooled
            counts.dropped += count
            counts.lost += 0 if at_door else count
            counts.unrecorded_drops += count
            counts.drop_owner, counts.drop_reason = events[-1].process, reason
            return counts.dropped

    def delivered(self, delivery: Delivery) -> None:
        """What a delivery from the spool wrote: this queue's own events, and earlier processes'."""
        with self.lock:
            self.counts.spooled -= delivery.own + delivery.own_rejected
            self.counts.written += delivery.own
            self.counts.rejected += delivery.own_rejected
            self.counts.replayed += delivery.others

    def drop_note(self) -> PendingEvent | None:
        """The event that records the drops not recorded yet (taken off the books), or None."""
        counts = self.counts
        with self.lock:
            dropped, owner, reason = counts.unrecorded_drops, counts.drop_owner, counts.drop_reason
            if not dropped or owner is None:
                return None
            counts.unrecorded_drops = 0
        data = (("event", "code_wake.dropped"), ("count", str(dropped)), ("reason", reason))
        return PendingEvent(owner, time.time(), data)

    def drop_note_failed(self, note: PendingEvent) -> None:
        """The note could not be written: its count waits for the next one."""
        with self.lock:
            self.counts.unrecorded_drops += int(dict(note.data)["count"] or 0)

    def stats(self, queued: int) -> QueueStats:
        """The figures now, with `queued` events waiting in memory (counted by the caller under `lock`)."""
        counts = self.counts
        return QueueStats(
            logged=counts.logged,
            pending=queued + counts.in_flight,
            written=counts.written,
            spooled=counts.spooled,
            dropped=counts.dropped,
            lost=counts.lost,
            rejected=counts.rejected,
            retries=counts.retries,
            pending_bytes=counts.queued_bytes,
            replayed=counts.replayed,
        )
