"""What a queue holds and counts: its items, its states, its tallies, an event's size in memory."""

from __future__ import annotations

import enum
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field

from .event import PendingEvent, ProcessRef
from .records import EventRecord

__all__ = [
    "Counters",
    "Item",
    "State",
    "Waiter",
    "event_bytes",
    "event_of",
    "events_in",
    "waited_positions",
    "waiters_in",
]

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


class State(enum.Enum):
    IDLE = "idle"
    """No worker thread (yet): the next event starts one."""
    RUNNING = "running"
    """The worker thread is taking events off the queue."""
    CLOSED = "closed"
    """close() was called: no event is taken any more."""
    EXITED = "exited"
    """The exit flush has run: later events (an atexit function's) are written on the caller's thread,
    since nothing would flush them any more (and Python 3.12 starts no thread then)."""


@dataclass(eq=False)
class Waiter:
    """A place in the queue someone waits for: a sync event, or a flush marker."""

    event: PendingEvent | None
    done: threading.Event = field(default_factory=threading.Event)
    record: EventRecord | None = None
    error: BaseException | None = None


Item = PendingEvent | Waiter


def event_of(item: Item) -> PendingEvent | None:
    return item if isinstance(item, PendingEvent) else item.event


def events_in(batch: Sequence[Item]) -> list[PendingEvent]:
    """The events of a batch, in order (flush markers carry none)."""
    return [event for event in map(event_of, batch) if event is not None]


def waiters_in(batch: Sequence[Item]) -> list[tuple[Waiter, int | None]]:
    """Each waiter of a batch, with its event's position among the batch's events (`events_in`).

    The position is None for a flush marker, which waits for no event of its own.
    """
    waiters: list[tuple[Waiter, int | None]] = []
    position = 0
    for item in batch:
        if isinstance(item, Waiter):
            waiters.append((item, None if item.event is None else position))
        if event_of(item) is not None:
            position += 1
    return waiters


def waited_positions(waiters: Sequence[tuple[Waiter, int | None]]) -> list[int]:
    """The positions of the events `waiters` (of `waiters_in`) wait for: the records to ask the store for."""
    return [position for _, position in waiters if position is not None]


@dataclass
class Counters:
    """Where every logged event went; changed only under the queue's lock, so they add up."""

    logged: int = 0
    written: int = 0
    spooled: int = 0
    dropped: int = 0
    lost: int = 0
    rejected: int = 0
    retries: int = 0
    replayed: int = 0
    queued_bytes: int = 0
    in_flight: int = 0
    unrecorded_drops: int = 0
    drop_owner: ProcessRef | None = None
    drop_reason: str = "queue full"
