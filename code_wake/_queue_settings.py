"""The queue's knobs and figures, as plain values (re-exported by `code_wake.queue_store`)."""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["QueueSettings", "QueueStats"]


@dataclass(frozen=True, slots=True)
class QueueSettings:
    """The knobs of a queue (docs/queue.md; configurable under ``queue:``)."""

    max_bytes: int = 64 * 1024 * 1024
    """Memory the waiting events may take, about; past it new events are dropped and counted."""

    max_events: int = 1_000_000
    """Events waiting at most, whatever their size: a second bound, far above any burst."""

    batch_size: int = 500
    """Events written per transaction at most."""

    linger: float = 0.2
    """Seconds a batch smaller than `batch_size` waits for more events; 0: written when the writer wakes.

    Nobody waits for it: a sync event, a flush and the exit end the wait.
    """

    retry_for: float = 60.0
    """Seconds a failing batch is retried (with backoff) before it is given up."""

    exit_timeout: float = 5.0
    """Seconds the final flush at interpreter exit may take, for all queues and doors together."""

    sync_timeout: float = 30.0
    """Seconds ``submit(..., sync=True)`` waits for its event to be written."""

    spool_max_bytes: int = 512 * 1024 * 1024
    """Disk the store's spool may take, about; 0: no spool (what the store cannot take is lost)."""

    spool_dir: str | None = None
    """Where spools live, one directory per store; None: ``spool`` in code_wake's data directory."""

    def __post_init__(self) -> None:
        if not 0 <= self.linger < math.inf:
            raise ValueError(f"QueueSettings.linger must be 0 or more seconds, not {self.linger!r}")


@dataclass(frozen=True, slots=True)
class QueueStats:
    """Where the events logged through a queue in this process went (a fork starts at zero).

    Taken at one instant, they add up: ``logged == pending + written + spooled + dropped + rejected``.
    """

    pending: int
    """Waiting in memory, or in the batch being written."""
    written: int
    dropped: int
    """Never to be written: refused because the queue was full, or given up (`lost`)."""
    lost: int
    """Part of `dropped`: given up after ``retry_for`` seconds of failures, or left behind by close."""
    rejected: int
    """Refused by the store one by one while the rest of their batch was written."""
    retries: int
    """Failed attempts at writing a batch that were tried again."""
    logged: int = 0
    """Every event handed to the queue."""
    pending_bytes: int = 0
    """About how much memory the pending events take (what ``max_bytes`` bounds)."""
    spooled: int = 0
    """Set aside in the disk spool (the store could not take them, or memory was full), not yet written
    by this process: this process writes them once the store takes writes again, or a later one does."""
    replayed: int = 0
    """Events of other (earlier) processes this one wrote from the spool; not part of `logged`."""
