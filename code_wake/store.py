"""The store contract: what every store adapter implements, and what it inherits.

An adapter subclasses `Store` and implements the abstract methods; the
original pycodewake API (``insert_event`` with its keyword arguments,
``store.Process``, ``store.Event``, ...) comes from here, built on the one
batch method ``insert_events``. docs/stores.md describes the contract and
`code_wake.testing.StoreContract` checks it.
"""

from __future__ import annotations

import threading
import weakref
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import replace
from types import TracebackType
from typing import Any, Protocol

from ._fork import ForkGuard, ForkPhase, at_fork_in_child
from ._private import create_private_file
from .errors import StoreError
from .event import EventData, EventPolicy, PendingEvent, ProcessRef
from .query import (
    HOUR,
    BucketCount,
    DailyCount,
    EventFilter,
    ProcessFilter,
    PruneReport,
    TraceGroup,
    count_daily,
    count_over_time,
    group_traces,
    process_matches,
)
from .records import (
    AppRecord,
    AppVsnRecord,
    EnvironmentRecord,
    EventRecord,
    ProcessInfo,
    ProcessRecord,
    StackframeRecord,
    StacktraceRecord,
)
from .stack_trace import frames_from_st_data

# create_private_file: adapters that create files make them private, as code_wake's own are.
__all__ = ["AbstractStore", "ForkGuard", "HasProcessInfo", "Store", "create_private_file", "process_info_of"]


class HasProcessInfo(Protocol):
    """Anything that can say which process it is (`code_wake.Process` can)."""

    @property
    def info(self) -> ProcessInfo: ...


class Store(ABC):
    """Base class of every store adapter.

    Subclasses implement the abstract methods. Records they return must be
    usable after any database session has closed. Writes of a batch happen
    in one transaction. Errors of the layer below are raised as
    `code_wake.StoreError`.
    """

    # The original exposed its record classes on the store; scripts use them.
    Process = ProcessRecord
    App = AppRecord
    AppVsn = AppVsnRecord
    Environment = EnvironmentRecord
    Event = EventRecord
    Stacktrace = StacktraceRecord
    Stackframe = StackframeRecord

    supports_read_only: bool = False
    """True when the constructor takes ``read_only=True``: readers (the CLI, the web view) then pass
    it, and the store must open its database so that reading writes nothing (docs/stores.md)."""

    event_policy: EventPolicy = EventPolicy()
    """How `insert_event` normalises its input (Process uses its own, configured one)."""

    def __init__(self) -> None:
        self._registered: dict[ProcessRef, ProcessRecord] = {}
        self._registered_lock = threading.Lock()
        _live_stores.add(self)

    def after_fork_in_child(self) -> None:
        """Called in a forked child, for every live store.

        Threads do not survive fork, but a lock another thread held does, held
        forever: replace it. Adapters that pool connections extend this (and
        call super) to forget the parent's connections.
        """
        self._registered_lock = threading.Lock()

    # -- the batch write: where throughput comes from ------------------------

    @abstractmethod
    def insert_events(self, events: Sequence[PendingEvent]) -> list[EventRecord]:
        """Write `events` in one transaction; return their records in the same order."""

    def write_events(self, events: Sequence[PendingEvent], wanted: Iterable[int]) -> dict[int, EventRecord]:
        """Write `events` as `insert_events` does; the records of the positions in `wanted` only.

        For a writer that most of its events' callers do not wait on (the
        queue): an adapter may override it to skip building the records
        nobody reads. This default writes through `insert_events`, so an
        adapter that only implements that one keeps working unchanged.
        """
        records = self.insert_events(events)
        return {position: records[position] for position in wanted}

    def write_spooled(self, events: Sequence[PendingEvent], maybe_stored: Sequence[bool]) -> None:
        """Write `events` from a spool, but not those flagged in `maybe_stored` that are stored already.

        A flagged event was set aside after a write nobody knows the outcome
        of (its COMMIT got no answer, or the exit took it over mid-write), or
        a delivery of it was cut short: it may be stored. An adapter that can
        look events up overrides this to skip those it holds; this default
        writes them all, so a flagged event may be stored twice.
        """
        self.write_events(events, ())

    def submit(self, event: PendingEvent, sync: bool = False) -> EventRecord | None:
        """Hand one pending event to the store; the door every log call goes through.

        A plain store writes at once and returns the record; a queued store
        (`code_wake.QueueStore`) enqueues it and returns the record only when
        `sync` asks to wait for it.
        """
        return self.insert_events([event])[0]

    # -- the original's API ----------------------------------------------------

    def insert_event(
        self,
        process: ProcessRecord | HasProcessInfo | ProcessInfo | int,
        data: EventData = None,
        exc: BaseException | None = None,
        inc_st: bool | None = None,
        st_len: int | None = None,
        st_data: Iterable[Sequence[Any]] | None = None,
        when_ts: float | None = None,
        sync: bool = False,
    ) -> EventRecord | None:
        """Record one event for `process` (a record, a `code_wake.Process` or an id).

        Returns the stored event with `sync`, else None (as pycodewake did),
        whether the store writes at once or queues.

        Stack traces: `st_data` (frames outermost first) if given; else with
        `inc_st` (default: whether there is an exception) from `exc` or from
        the caller.
        """
        frames = None if st_data is None else frames_from_st_data(st_data)
        pending = self.event_policy.build(
            _process_ref(process),
            data,
            exc,
            inc_st=exc is not None if inc_st is None else inc_st,
            st_len=st_len,
            when_ts=when_ts,
            frames=frames,
        )
        record = self.submit(pending, sync)
        # The original's contract: the record only for a caller that asked to wait for it.
        return record if sync else None

    @abstractmethod
    def insert_process(self, process: ProcessInfo | HasProcessInfo) -> ProcessRecord:
        """Register a process (creating its app, version and environment as needed)."""

    @abstractmethod
    def get_process_by_id(self, id: int) -> ProcessRecord | None:
        """The process with this id, or None."""

    @abstractmethod
    def get_processes(
        self, app_id: int | None = None, from_ts: float | None = None, to_ts: float | None = None
    ) -> list[ProcessRecord]:
        """Processes by start time (`from_ts` inclusive, `to_ts` exclusive), oldest first."""

    @abstractmethod
    def insert_app(self, name: str, vsn: str | None = None) -> AppRecord:
        """Get or create the app called `name` (and its version `vsn`, when given)."""

    @abstractmethod
    def insert_app_vsn(self, app_id: int, vsn: str) -> AppVsnRecord:
        """Get or create version `vsn` of the app `app_id`."""

    @abstractmethod
    def get_app_by_id(self, id: int) -> AppRecord | None:
        """The app with this id, or None."""

    @abstractmethod
    def get_app_by_name(self, name: str) -> AppRecord | None:
        """The app with this name, or None."""

    @abstractmethod
    def get_app_vsn_by_id(self, id: int) -> AppVsnRecord | None:
        """The app version with this id, or None."""

    @abstractmethod
    def get_environment_by_id(self, id: int) -> EnvironmentRecord | None:
        """The environment with this id, or None."""

    @abstractmethod
    def get_environment_by_name(self, name: str) -> EnvironmentRecord | None:
        """The environment with this name, or None."""

    @abstractmethod
    def get_event_by_id(self, id: int) -> EventRecord | None:
        """The event with this id, with its data and stack trace, or None."""

    @abstractmethod
    def get_events_by_data(
        self, where: Iterable[tuple[str, str | None]], process_id: int | None = None
    ) -> list[EventRecord]:
        """Events carrying every ``(key, value)`` pair of `where`, oldest first."""

    # -- queries for analysis (additions to the original's API) -----------------------------
    #
    # Defaults keep adapters written before these existed importable and working:
    # query_events and prune say plainly that the adapter lacks them; the other
    # queries are derived from simpler methods (correct, but they read every
    # matching event, so an adapter for large stores overrides them).

    def query_events(self, event_filter: EventFilter | None = None) -> Iterator[EventRecord]:
        """Events matching `event_filter`, newest first (ties: higher id first), streamed.

        The records come as the iterator advances; an adapter fetches them in
        pages rather than loading every match at once.
        """
        raise NotImplementedError(
            f"{type(self).__name__} does not implement query_events(), so it cannot be queried "
            "for analysis; see docs/stores.md, section Queries."
        )

    def query_processes(self, process_filter: ProcessFilter | None = None) -> Iterator[ProcessRecord]:
        """Processes matching `process_filter`, newest start time first (ties: higher id first).

        Derived from `get_processes`; adapters may override it with one query.
        """
        f = process_filter or ProcessFilter()
        app_id: int | None = None
        if f.app is not None:
            app = self.get_app_by_name(f.app)
            if app is None:
                return iter(())
            app_id = app.id
        found = [p for p in self.get_processes(app_id, f.since, f.until) if process_matches(f, p)]
        found.sort(key=lambda p: (-p.run_ts, -p.id))
        return iter(found if f.limit is None else found[: f.limit])

    def query_trace_groups(self, event_filter: EventFilter | None = None) -> list[TraceGroup]:
        """Events with a stack trace or an exception, one group per (exception type, stack trace).

        With ``event_filter.errors``, only events with an exception count. Most
        frequent first; the filter's limit caps the number of groups. Derived
        from `query_events`; adapters for large stores override it.
        """
        f = event_filter or EventFilter()
        return group_traces(self.query_events(replace(f, limit=None)), f.errors, f.limit)

    def query_daily_counts(self, event_filter: EventFilter | None = None) -> list[DailyCount]:
        """Events per UTC day, app, app version and environment, newest day first.

        Derived from `query_events`; adapters for large stores override it.
        """
        f = event_filter or EventFilter()
        return count_daily(self.query_events(replace(f, limit=None)), f.limit)

    def query_counts_over_time(
        self, event_filter: EventFilter | None = None, span: int = HOUR, by_scope: bool = False
    ) -> list[BucketCount]:
        """Events per hour or UTC day (`span`: `HOUR` or `DAY`) and per (exception type, stack
        trace), oldest bucket first; with `by_scope`, per app, version and environment too.

        What charts of a time window draw: each bucket a bar. With
        ``event_filter.errors`` only events with an exception count; the
        filter's limit caps the rows. Derived from `query_events`; adapters
        for large stores override it.
        """
        f = event_filter or EventFilter()
        BucketCount.check_span(span)
        return count_over_time(self.query_events(replace(f, limit=None)), span, by_scope, f.limit)

    def prune(self, before_ts: float, *, dry_run: bool = False, batch_size: int = 5000) -> PruneReport:
        """Delete events older than `before_ts` and what only they used; report what went.

        Data rows of those events, stack traces (and frames) no remaining event
        uses, and processes that started before `before_ts` and have no events
        left are deleted too. With `dry_run` nothing is deleted and the report
        says what would be. Adapters delete in batches of `batch_size` events,
        one transaction each, so that writers are not locked out for long.
        """
        raise NotImplementedError(
            f"{type(self).__name__} does not implement prune(); see docs/stores.md, section Queries."
        )

    def find_process(self, info: ProcessInfo) -> ProcessRecord | None:
        """The stored process `info` describes, if it is stored already; None if not (or not known).

        `resolve_process` asks before it registers a process: events a spool
        delivers carry their process's identity, and that process may have
        registered itself before the store went down. Default: None (every
        registration stores a new process, as pycodewake's adapters do).
        """
        return None

    def describe(self) -> str:
        """Where this store keeps its events, in words fit to print: never a password.

        The CLI names the store with it. Default: the class name.
        """
        return type(self).__name__

    def spool_key(self) -> str | None:
        """A text naming this store's database for its disk spool, the same in every process; None: no spool.

        A queue in front of this store sets aside in a spool what the store
        cannot take, and any process whose store gives the same key delivers
        it (docs/queue.md). None (the default) suits a store that lives in
        one process only, such as one in memory. Never include a password.
        """
        return None

    def check_readable(self) -> None:  # noqa: B027 - a store with nothing to check needs no override
        """Raise `code_wake.StoreError` when there is nothing here to read, creating nothing.

        Readers call it before they query, so that reading a database that
        does not exist reports that instead of creating an empty one.
        """

    def upgrade(self, *, dry_run: bool = False) -> list[str]:
        """Bring the store's layout up to date on purpose (``code-wake upgrade``); the steps, in words.

        An empty list: nothing to do. With `dry_run`, say what would be done,
        do nothing. Default: a store with no layout of its own has nothing to upgrade.
        """
        return []

    def close(self) -> None:  # noqa: B027 - a store with nothing to release needs no override
        """Release connections; the store must not be used afterwards."""

    def __enter__(self) -> Store:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- helpers for adapters ---------------------------------------------------

    def resolve_process(self, ref: ProcessRef) -> ProcessRecord:
        """The stored process for a pending event, registering it on first sight.

        Adapters call this before opening the batch's transaction; the answer
        is cached, so a busy process costs one lookup in its lifetime.
        """
        with self._registered_lock:
            known = self._registered.get(ref)
        if known is not None:
            return known
        if isinstance(ref, int):
            found = self.get_process_by_id(ref)
            if found is None:
                raise StoreError(f"no process with id {ref} in this store")
            record = found
        else:
            # Events delivered from a spool come back with their process's identity, which the
            # process itself may have registered before the store went down: do not store it twice.
            record = self.find_process(ref) or self.insert_process(ref)
        with self._registered_lock:
            return self._registered.setdefault(ref, record)


_live_stores: weakref.WeakSet[Store] = weakref.WeakSet()


def _reset_stores_after_fork() -> None:
    for store in list(_live_stores):
        store.after_fork_in_child()


at_fork_in_child(ForkPhase.STORES, _reset_stores_after_fork)

AbstractStore = Store
"""The original's name for the store base class."""


def process_info_of(process: ProcessInfo | HasProcessInfo) -> ProcessInfo:
    """The `ProcessInfo` of a `code_wake.Process` (or the info itself)."""
    return process if isinstance(process, ProcessInfo) else process.info


def _process_ref(process: ProcessRecord | HasProcessInfo | ProcessInfo | int) -> ProcessRef:
    """What a pending event records as its process."""
    if isinstance(process, (int, ProcessInfo)):
        return process
    if isinstance(process, ProcessRecord):
        return process.id
    return process.info
