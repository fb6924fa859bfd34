"""Sql14Store: the SQLAlchemy 2 (Core) store for SQLite, PostgreSQL and MySQL/MariaDB.

The store contract's front: each method names its operation (for the errors
it raises) and hands the work to the module whose job it is:

- `_database`: the engine's connections and transactions, the schema on first use, errors;
- `_lookups`: apps, versions, environments and processes, got or created, read, cached;
- `_traces`: stack traces, stored once per digest, read by id, cached;
- `_call_sites`: what log records from one line of code repeat, stored once likewise;
- `_writes`: a batch of events, with its data and summary counts, in one transaction;
- `_reading`: events and processes by id, by data, and filtered in keyset pages;
- `_trace_groups`, `_daily` and `_count_series`: the analysis queries, over the `_counts` summary;
- `_prune`: retention.

Every query that takes a filter gets its conditions from `_filters`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, ParamSpec, TypeVar

import sqlalchemy as sa

from code_wake.errors import StoreError
from code_wake.event import PendingEvent
from code_wake.query import HOUR, BucketCount, DailyCount, EventFilter, ProcessFilter, PruneReport, TraceGroup
from code_wake.records import (
    AppRecord,
    AppVsnRecord,
    EnvironmentRecord,
    EventRecord,
    ProcessInfo,
    ProcessRecord,
)
from code_wake.store import HasProcessInfo, Store, process_info_of

from . import _prune
from ._call_sites import CallSites
from ._count_series import counts_over_time
from ._daily import daily_counts
from ._database import Database
from ._lookups import Lookups
from ._reading import EventReader
from ._trace_groups import trace_groups
from ._traces import StackTraces
from ._upgrade import plan
from ._writes import EventWriter

__all__ = ["Sql14Store"]

_P = ParamSpec("_P")
_T = TypeVar("_T")


class Sql14Store(Store):
    """The store contract on a SQL database, through SQLAlchemy 2 Core.

    `dsn` is a SQLAlchemy URL (``sqlite:///path``, ``sqlite://`` for memory,
    ``postgresql+psycopg://...``, ``mysql+pymysql://...``); `engine_kwargs` go
    to `sqlalchemy.create_engine` and override code_wake's defaults. Nothing
    connects until the store is first used; then the schema is created or
    upgraded, once. Errors come as `code_wake.StoreError` (and
    `code_wake.StoreUnavailableError` when the database cannot be reached),
    with the password masked.

    `read_only=True` opens it to read (what the CLI and the web view do): a
    SQLite file in read-only mode, no file or table created, the schema
    checked instead of upgraded, and every write refused.
    """

    supports_read_only = True

    def __init__(self, dsn: str, *, read_only: bool = False, **engine_kwargs: Any) -> None:
        super().__init__()
        self._db = Database(dsn, engine_kwargs, read_only)
        self._lookups = Lookups(self._db)
        self._traces = StackTraces(self._db)
        self._sites = CallSites(self._db)
        self._writer = EventWriter(self._db, self._traces, self._sites)
        self._reader = EventReader(self._db, self._lookups, self._traces, self._sites)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._db.where!r})"

    def describe(self) -> str:
        """The database URL with its password masked."""
        return self._db.where

    def spool_key(self) -> str | None:
        """The database this store writes to (a SQLite file by its absolute path); None for memory."""
        return self._db.spool_key

    def check_readable(self) -> None:
        """Refuse a SQLite file that does not exist: opening it would create an empty database."""
        self._db.check_readable()

    def upgrade(self, *, dry_run: bool = False) -> list[str]:
        """Bring the database to this code_wake's schema; the steps, in words (empty: up to date).

        With `dry_run`, only say what it would do (a read-only store can). The
        SQLite file must exist: an upgrade does not start a new database.
        """
        self._db.check_file_exists()
        with self._db.translating("look at the code_wake schema"), self._db.unprepared() as conn:
            steps = plan(conn)
        if steps and not dry_run:
            if self._db.read_only:
                raise StoreError(f"This store for {self._db.where} was opened read-only; it cannot upgrade.")
            self._db.upgrade()
        return steps

    @property
    def engine(self) -> sa.Engine:
        """The SQLAlchemy engine, for your own read queries (write through the store)."""
        return self._db.engine

    def close(self) -> None:
        """Dispose of the engine's connections; using the store afterwards raises `StoreError`."""
        self._db.close()

    def after_fork_in_child(self) -> None:
        """A forked child gets its own connections, and locks no parent thread can hold."""
        super().after_fork_in_child()
        self._db.after_fork_in_child()
        self._lookups.after_fork()
        self._traces.after_fork()
        self._sites.after_fork()

    # -- writes --------------------------------------------------------------------

    def insert_events(self, events: Sequence[PendingEvent]) -> list[EventRecord]:
        """Write `events` in one transaction; return their records in the same order."""
        return list(self.write_events(events, range(len(events))).values())

    def write_events(self, events: Sequence[PendingEvent], wanted: Iterable[int]) -> dict[int, EventRecord]:
        """Write `events` in one transaction; the records of the positions in `wanted` only."""
        return self._write(events, wanted, ())

    def write_spooled(self, events: Sequence[PendingEvent], maybe_stored: Sequence[bool]) -> None:
        """Write `events` in one transaction, but not those flagged in `maybe_stored` that are stored.

        A flagged event is stored when an event of the same process, time and
        data (its digest) is: one such for each.
        """
        self._write(events, (), maybe_stored)

    def _write(
        self, events: Sequence[PendingEvent], wanted: Iterable[int], maybe_stored: Sequence[bool]
    ) -> dict[int, EventRecord]:
        if not events:
            return {}
        with self._db.translating("insert events"):
            # Registrations commit on their own, before the batch.
            owners = [self.resolve_process(event.process) for event in events]
            return self._writer.insert_events(events, owners, wanted, maybe_stored)

    def insert_process(self, process: ProcessInfo | HasProcessInfo) -> ProcessRecord:
        """Register a process, creating its app, app version and environment as needed."""
        info = process_info_of(process)
        return self._translated("register a process", self._lookups.register_process, info)

    def insert_app(self, name: str, vsn: str | None = None) -> AppRecord:
        """Get or create the app `name` (and its version `vsn`, when given)."""
        with self._db.translating("register an app"):
            app = self._lookups.get_or_create_app(name)
            if vsn:
                self._lookups.get_or_create_vsn(app, vsn)
        return app

    def insert_app_vsn(self, app_id: int, vsn: str) -> AppVsnRecord:
        """Get or create version `vsn` of the app with id `app_id`."""
        app = self.get_app_by_id(app_id)
        if app is None:
            raise StoreError(f"No app with id {app_id} in {self._db.where}.")
        return self._translated("register an app version", self._lookups.get_or_create_vsn, app, vsn)

    # -- reads ---------------------------------------------------------------------

    def find_process(self, info: ProcessInfo) -> ProcessRecord | None:
        """The stored process `info` describes, if an earlier registration stored it; else None."""
        return self._translated("look up a process", self._lookups.process_like, info)

    def get_process_by_id(self, id: int) -> ProcessRecord | None:
        """The process with this id, or None."""
        return self._translated("look up a process", self._lookups.process_with_id, id)

    def get_processes(
        self, app_id: int | None = None, from_ts: float | None = None, to_ts: float | None = None
    ) -> list[ProcessRecord]:
        """Processes by start time (`from_ts` inclusive, `to_ts` exclusive), oldest first."""
        return self._translated("list processes", self._lookups.processes_started, app_id, from_ts, to_ts)

    def get_app_by_id(self, id: int) -> AppRecord | None:
        """The app with this id, or None."""
        return self._translated("look up an app", self._lookups.app_with_id, id)

    def get_app_by_name(self, name: str) -> AppRecord | None:
        """The app with this name, or None."""
        return self._translated("look up an app", self._lookups.app_named, name)

    def get_app_vsn_by_id(self, id: int) -> AppVsnRecord | None:
        """The app version with this id, or None."""
        return self._translated("look up an app version", self._lookups.vsn_with_id, id)

    def get_environment_by_id(self, id: int) -> EnvironmentRecord | None:
        """The environment with this id, or None."""
        return self._translated("look up an environment", self._lookups.env_with_id, id)

    def get_environment_by_name(self, name: str) -> EnvironmentRecord | None:
        """The environment with this name, or None."""
        return self._translated("look up an environment", self._lookups.env_named, name)

    def get_event_by_id(self, id: int) -> EventRecord | None:
        """The event with this id, with its data (in insertion order) and stack trace, or None."""
        return self._translated("look up an event", self._reader.event_with_id, id)

    def get_events_by_data(
        self, where: Iterable[tuple[str, str | None]], process_id: int | None = None
    ) -> list[EventRecord]:
        """Events carrying every ``(key, value)`` pair of `where` (None: a null value), oldest first."""
        return self._translated("query events by data", self._reader.events_carrying, where, process_id)

    # -- queries for analysis ----------------------------------------------------------------

    def query_events(self, event_filter: EventFilter | None = None) -> Iterator[EventRecord]:
        """Events matching the filter, newest first (ties: higher id first), fetched a page at a time.

        Pages follow each other by keyset (time and id of the last event), each
        on a connection of its own, so nothing is held open between pages.
        Without data terms the scan runs on the events index that fits the
        filter; with terms, on the (key, value, time) index of the rarest term.
        """
        return self._reader.event_pages(event_filter or EventFilter())

    def query_processes(self, process_filter: ProcessFilter | None = None) -> Iterator[ProcessRecord]:
        """Processes matching the filter, newest start first, fetched a page at a time."""
        return self._reader.process_pages(process_filter or ProcessFilter())

    def query_trace_groups(self, event_filter: EventFilter | None = None) -> list[TraceGroup]:
        """Events with a stack trace or an exception, one group per (exception type, trace).

        Whole days and hours of the time range come from ``event_counts``, its
        ends (and any filter by process or data terms) from ``events``: one
        statement, the pieces' grouped selects joined by UNION ALL. It is built
        once per shape of the filter, with bound parameters for the filter's
        values, so SQLAlchemy also reuses its compiled form.
        """
        with self._db.translating("count trace groups"), self._db.read() as conn:
            return trace_groups(conn, self._lookups, self._traces, event_filter or EventFilter())

    def query_daily_counts(self, event_filter: EventFilter | None = None) -> list[DailyCount]:
        """Events (and errors) per UTC day, app, version and environment, newest day first."""
        with self._db.translating("count events per day"), self._db.read() as conn:
            return daily_counts(conn, self._lookups, event_filter or EventFilter())

    def query_counts_over_time(
        self, event_filter: EventFilter | None = None, span: int = HOUR, by_scope: bool = False
    ) -> list[BucketCount]:
        """Events per hour or UTC day and trace group, from ``event_counts`` (see `_count_series`)."""
        with self._db.translating("count events over time"), self._db.read() as conn:
            return counts_over_time(conn, self._lookups, event_filter or EventFilter(), span, by_scope)

    def prune(self, before_ts: float, *, dry_run: bool = False, batch_size: int = 5000) -> PruneReport:
        """Delete events older than `before_ts`, then what only they used; see `code_wake.Store.prune`.

        Each batch of `batch_size` events (with their data rows) is one short
        transaction, oldest first; then the summary rows of the pruned days
        are dropped and the day of the cut is counted again; then stack
        traces, call sites and processes nothing uses any more go, 500 per
        transaction. The newest of each are always kept (SQLite would give
        their ids to new rows while running programs still hold them).
        """
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, not {batch_size!r}.")
        if dry_run:
            return self._translated("count what a prune would delete", _prune.dry_run, self._db, before_ts)
        report = self._translated("prune events", _prune.prune, self._db, before_ts, batch_size)
        # This store forgets what it deleted; other stores find out when a write fails (see insert_events).
        self._lookups.forget_processes()
        self._traces.forget()
        self._sites.forget()
        return report

    def _translated(self, operation: str, work: Callable[_P, _T], *args: _P.args, **kwargs: _P.kwargs) -> _T:
        """`work(*args, **kwargs)`, its SQLAlchemy errors raised as code_wake's naming `operation`."""
        with self._db.translating(operation):
            return work(*args, **kwargs)
