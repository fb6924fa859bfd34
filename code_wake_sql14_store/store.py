"""Sql14Store: the SQLAlchemy 2 (Core) store for SQLite, PostgreSQL and MySQL/MariaDB."""

from __future__ import annotations

import dataclasses
import functools
import os
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any, NamedTuple, TypeAlias, TypeVar

import sqlalchemy as sa

from code_wake.errors import StoreError
from code_wake.event import PendingEvent, data_digest
from code_wake.query import (
    HOUR,
    BucketCount,
    DailyCount,
    EventFilter,
    ProcessFilter,
    PruneReport,
    TraceGroup,
    day_of,
)
from code_wake.records import (
    AppRecord,
    AppVsnRecord,
    DataItem,
    EnvironmentRecord,
    EventRecord,
    ProcessInfo,
    ProcessRecord,
    StackframeRecord,
    StacktraceRecord,
)
from code_wake.stack_trace import ResolvedTrace, resolve_frames
from code_wake.store import ForkGuard, HasProcessInfo, Store, process_info_of

from . import _count_series, _prune
from ._analysis import DailyTotals, GroupPart, GroupTally, Scope, distinct_rows, merge_groups, time_range
from ._batch import BatchWriter, SqlalchemyBatch, batch_writer, new_id
from ._cache import BoundedCache
from ._counts import CountRow, Segment, add_counts, segments, upsert_statement
from ._engine import build_engine, is_memory_sqlite, masked, parse_url, translate_error, unavailable
from ._migrate import ensure_schema
from .schema import (
    LONG_TEXT_LIMIT,
    MYSQL_DIALECTS,
    NAME_LENGTH,
    TEXT_LIMIT,
    app_vsns,
    apps,
    environments,
    event_counts,
    events,
    events_data,
    processes,
    stackframes,
    stacktraces,
    val_prefix,
)

__all__ = ["Sql14Store"]

_T = TypeVar("_T")
_N = TypeVar("_N", AppRecord, EnvironmentRecord)
_V = TypeVar("_V")

_Row: TypeAlias = Any
"""A result row; SQLAlchemy 2.1 types rows by their column tuple, which varies by query."""

_Loader: TypeAlias = Callable[[sa.Connection, Sequence[int]], Iterable[tuple[int, _V]]]
"""Reads the records of a chunk of ids, as (id, record) pairs."""

_CACHE_SIZE = 1024
"""Entries per lookup cache (apps, versions, environments, processes, stack traces)."""

_CHUNK = 500
"""Ids or digests per ``IN (...)`` list: far below every backend's parameter limit."""

_PROBE_LIMIT = 1000
"""Rows counted at most per term when SQLite orders the terms of a data query."""

_RACE_ATTEMPTS = 5
"""Get-or-create tries before giving up on a row other processes keep racing for."""

_PAGE = 500
"""Events (or processes) fetched per query while a query's results are streamed."""

# Statements are built once; SQLAlchemy caches their compiled form by statement.
_INSERT_EVENT = sa.insert(events)
_INSERT_PROCESS = sa.insert(processes)
_INSERT_TRACE = sa.insert(stacktraces)
_INSERT_FRAMES = sa.insert(stackframes)

_VSN_APP = apps.alias("vsn_app")
_PROCESS_QUERY = sa.select(
    processes.c.id,
    processes.c.pid,
    processes.c.username,
    processes.c.fqdn,
    processes.c.exe_path,
    processes.c.run_ts,
    apps.c.id.label("app_id"),
    apps.c.name.label("app_name"),
    app_vsns.c.id.label("vsn_id"),
    app_vsns.c.vsn.label("vsn"),
    _VSN_APP.c.id.label("vsn_app_id"),
    _VSN_APP.c.name.label("vsn_app_name"),
    environments.c.id.label("env_id"),
    environments.c.name.label("env_name"),
).select_from(
    processes.join(apps, processes.c.app_id == apps.c.id)
    .outerjoin(app_vsns, processes.c.app_vsn_id == app_vsns.c.id)
    .outerjoin(_VSN_APP, app_vsns.c.app_id == _VSN_APP.c.id)
    .outerjoin(environments, processes.c.environment_id == environments.c.id)
)
_APP_VSN_QUERY = sa.select(
    app_vsns.c.id, app_vsns.c.vsn, apps.c.id.label("app_id"), apps.c.name.label("app_name")
).select_from(app_vsns.join(apps, app_vsns.c.app_id == apps.c.id))
_TRACE_QUERY = (
    sa.select(
        stacktraces.c.id,
        stacktraces.c.digest,
        stackframes.c.filename,
        stackframes.c.lineno,
        stackframes.c.src,
        stackframes.c.function,
    )
    .select_from(stacktraces.outerjoin(stackframes, stackframes.c.stacktrace_id == stacktraces.c.id))
    .order_by(stacktraces.c.id, stackframes.c.id)
)
_EVENT_ORDER = (events.c.when_ts, events.c.id)
_APPS_QUERY = sa.select(apps)
_ENVIRONMENTS_QUERY = sa.select(environments)
_MESSAGES_QUERY = sa.select(events.c.id, events.c.exc_message).where(
    events.c.id.in_(sa.bindparam("ids", expanding=True))
)


class Sql14Store(Store):
    """The store contract on a SQL database, through SQLAlchemy 2 Core.

    `dsn` is a SQLAlchemy URL (``sqlite:///path``, ``sqlite://`` for memory,
    ``postgresql+psycopg://...``, ``mysql+pymysql://...``); `engine_kwargs` go
    to `sqlalchemy.create_engine` and override code_wake's defaults. Nothing
    connects until the store is first used; then the schema is created or
    upgraded, once. Errors come as `code_wake.StoreError` (and
    `code_wake.StoreUnavailableError` when the database cannot be reached),
    with the password masked.
    """

    def __init__(self, dsn: str, **engine_kwargs: Any) -> None:
        super().__init__()
        self._url = parse_url(dsn)
        self._where = masked(self._url)
        self._engine = build_engine(self._url, engine_kwargs)
        self._mysql = self._engine.dialect.name in MYSQL_DIALECTS
        self._sqlite = self._engine.dialect.name == "sqlite"
        self._postgresql = self._engine.dialect.name == "postgresql"
        self._memory = is_memory_sqlite(self._url)
        # A memory database is one shared DBAPI connection (StaticPool): one user at a time.
        self._lock: AbstractContextManager[Any] = threading.Lock() if self._memory else nullcontext()
        self._schema_lock = threading.Lock()
        self._fork_guard = ForkGuard()
        self._ready = False
        self._closed = False
        self._batch: BatchWriter = SqlalchemyBatch()
        self._upsert_counts: sa.Executable | None = upsert_statement(self._engine.dialect)
        self._apps: BoundedCache[str, AppRecord] = BoundedCache(_CACHE_SIZE)
        self._vsns: BoundedCache[tuple[int, str], AppVsnRecord] = BoundedCache(_CACHE_SIZE)
        self._environments: BoundedCache[str, EnvironmentRecord] = BoundedCache(_CACHE_SIZE)
        self._processes: BoundedCache[int, ProcessRecord] = BoundedCache(_CACHE_SIZE)
        self._traces: BoundedCache[bytes, StacktraceRecord] = BoundedCache(_CACHE_SIZE)
        # By id, for reading: apps, versions and environments are never deleted; a trace
        # id is never reused (prune keeps the newest), and this store forgets what it prunes.
        self._trace_ids: BoundedCache[int, StacktraceRecord] = BoundedCache(_CACHE_SIZE)
        self._app_ids: BoundedCache[int, AppRecord] = BoundedCache(_CACHE_SIZE)
        self._vsn_ids: BoundedCache[int, AppVsnRecord] = BoundedCache(_CACHE_SIZE)
        self._env_ids: BoundedCache[int, EnvironmentRecord] = BoundedCache(_CACHE_SIZE)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._where!r})"

    def describe(self) -> str:
        """The database URL with its password masked."""
        return self._where

    def check_readable(self) -> None:
        """Refuse a SQLite file that does not exist: opening it would create an empty database."""
        database = (self._url.database or "") if self._sqlite else ""
        exists = not database or database == ":memory:" or database.startswith("file:")
        if not exists and not os.path.exists(database):
            raise StoreError(f"no database file at {database} (nothing was recorded there)")

    @property
    def engine(self) -> sa.Engine:
        """The SQLAlchemy engine, for your own read queries (write through the store)."""
        return self._engine

    def close(self) -> None:
        """Dispose of the engine's connections; using the store afterwards raises `StoreError`."""
        self._closed = True
        self._engine.dispose()

    def _caches(self) -> tuple[BoundedCache[Any, Any], ...]:
        return (
            self._apps,
            self._vsns,
            self._environments,
            self._processes,
            self._traces,
            self._trace_ids,
            self._app_ids,
            self._vsn_ids,
            self._env_ids,
        )

    def after_fork_in_child(self) -> None:
        """A forked child gets its own connections, and locks no parent thread can hold."""
        super().after_fork_in_child()
        self._schema_lock = threading.Lock()
        for cache in self._caches():
            cache.after_fork()
        if self._memory:
            # The child's copy of the memory database lives in the inherited connection.
            self._lock = threading.Lock()
        else:
            # SQLAlchemy's recipe for fork: forget the pooled connections without
            # closing them, which would end the parent's sessions and SQLite locks.
            self._engine.dispose(close=False)

    # -- writes --------------------------------------------------------------------

    def insert_events(self, events: Sequence[PendingEvent]) -> list[EventRecord]:
        """Write `events` in one transaction; return their records in the same order."""
        if not events:
            return []
        with self._guard("insert events"):
            # Registrations and new stack traces commit on their own, before the batch.
            owners = [self.resolve_process(event.process) for event in events]
            traces = self._traces_for(events)
            datas = [_clip_data(event.data) for event in events]
            try:
                ids, rows = self._write_batch(events, owners, traces, datas)
            except sa.exc.IntegrityError:
                # A prune may have removed a process or stack trace this store still
                # knows (a quiet, long-running process; a trace last seen long ago).
                # Store them again and try once more; any other violation raises again.
                if not self._restore_references(owners, traces):
                    raise
                traces = self._traces_for(events)
                ids, rows = self._write_batch(events, owners, traces, datas)
        return [
            EventRecord(
                id=event_id,
                when_ts=row.when_ts,
                process=owner,
                data=data,
                stacktrace=trace,
                exc_type=row.exc_type,
                exc_message=row.exc_message,
                digest=row.digest,
            )
            for event_id, row, owner, data, trace in zip(ids, rows, owners, datas, traces, strict=True)
        ]

    def _write_batch(
        self,
        events: Sequence[PendingEvent],
        owners: Sequence[ProcessRecord],
        traces: Sequence[StacktraceRecord | None],
        datas: Sequence[tuple[DataItem, ...]],
    ) -> tuple[list[int], list[_EventRow]]:
        """The batch's one transaction: events, their data, their counts. Retried after a deadlock."""
        rows = [_event_row(e, p, t) for e, p, t in zip(events, owners, traces, strict=True)]
        attempt = 0
        while True:
            try:
                with self._begin() as conn:
                    ids = self._insert_event_rows(conn, rows)
                    data_rows = [
                        (event_id, key, val, row.when_ts)
                        for event_id, row, data in zip(ids, rows, datas, strict=True)
                        for key, val in data
                    ]
                    if data_rows:
                        self._batch.insert_rows(conn, events_data, _DATA_COLUMNS, data_rows)
                    add_counts(conn, self._upsert_counts, _count_rows(ids, rows))
                return ids, rows
            except sa.exc.DBAPIError as exc:
                # Summary rows are shared: concurrent batches can deadlock on MySQL's gap
                # locks. The loser's transaction was rolled back whole; it can run again.
                attempt += 1
                if attempt >= _RACE_ATTEMPTS or isinstance(exc, sa.exc.IntegrityError) or not _lost_race(exc):
                    raise

    def _restore_references(
        self, owners: Sequence[ProcessRecord], traces: Sequence[StacktraceRecord | None]
    ) -> bool:
        """Store again the processes and traces of a batch that a prune removed; False if none was."""
        process_ids = sorted({owner.id for owner in owners})
        trace_ids = sorted({trace.id for trace in traces if trace is not None})
        with self._connect() as conn:
            present_processes = _present(conn, processes.c.id, process_ids)
            present_traces = _present(conn, stacktraces.c.id, trace_ids)
        missing = {owner.id: owner for owner in owners if owner.id not in present_processes}
        if not missing and len(present_traces) == len(trace_ids):
            return False
        if len(present_traces) < len(trace_ids):
            # Forget every cached trace: the next lookup by digest finds, or stores, the current row.
            self._traces.clear()
            self._trace_ids.clear()
        for owner in missing.values():
            self._restore_process(owner)
        return True

    def _restore_process(self, owner: ProcessRecord) -> None:
        """Insert a pruned process again, under its old id (events and Process objects hold it).

        The id cannot have been given to another process: prune always keeps the
        newest process, so SQLite never hands a removed id out again.
        """
        values = {
            "id": owner.id,
            "pid": owner.pid,
            "username": owner.username,
            "fqdn": owner.fqdn,
            "exe_path": owner.exe_path,
            "run_ts": owner.run_ts,
            "app_id": owner.app.id,
            "app_vsn_id": None if owner.app_vsn is None else owner.app_vsn.id,
            "environment_id": None if owner.environment is None else owner.environment.id,
        }
        try:
            with self._begin() as conn:
                conn.execute(_INSERT_PROCESS, values)
        except sa.exc.IntegrityError:
            pass  # another thread or process put it back first

    def insert_process(self, process: ProcessInfo | HasProcessInfo) -> ProcessRecord:
        """Register a process, creating its app, app version and environment as needed."""
        info = process_info_of(process)
        with self._guard("register a process"):
            environment = self._environment(info.env_name) if info.env_name else None
            app = self._app(info.app_name)
            app_vsn = self._app_vsn(app, info.app_vsn) if info.app_vsn else None
            record = ProcessRecord(
                id=0,
                pid=info.pid,
                username=_clip(info.username, NAME_LENGTH),
                fqdn=_clip(info.fqdn, NAME_LENGTH),
                exe_path=_clip(info.exe_path, TEXT_LIMIT),
                run_ts=float(info.run_ts),
                app=app,
                app_vsn=app_vsn,
                environment=environment,
            )
            values = {
                "pid": record.pid,
                "username": record.username,
                "fqdn": record.fqdn,
                "exe_path": record.exe_path,
                "run_ts": record.run_ts,
                "app_id": app.id,
                "app_vsn_id": None if app_vsn is None else app_vsn.id,
                "environment_id": None if environment is None else environment.id,
            }
            with self._begin() as conn:
                process_id = new_id(conn.execute(_INSERT_PROCESS, values))
        return self._processes.put(process_id, dataclasses.replace(record, id=process_id))

    def insert_app(self, name: str, vsn: str | None = None) -> AppRecord:
        """Get or create the app `name` (and its version `vsn`, when given)."""
        with self._guard("register an app"):
            app = self._app(name)
            if vsn:
                self._app_vsn(app, vsn)
        return app

    def insert_app_vsn(self, app_id: int, vsn: str) -> AppVsnRecord:
        """Get or create version `vsn` of the app with id `app_id`."""
        app = self.get_app_by_id(app_id)
        if app is None:
            raise StoreError(f"No app with id {app_id} in {self._where}.")
        with self._guard("register an app version"):
            return self._app_vsn(app, vsn)

    # -- reads ---------------------------------------------------------------------

    def get_process_by_id(self, id: int) -> ProcessRecord | None:
        """The process with this id, or None."""
        cached = self._processes.get(id)
        if cached is not None:
            return cached
        with self._guard("look up a process"), self._connect() as conn:
            return self._load_processes(conn, [id]).get(id)

    def get_processes(
        self, app_id: int | None = None, from_ts: float | None = None, to_ts: float | None = None
    ) -> list[ProcessRecord]:
        """Processes by start time (`from_ts` inclusive, `to_ts` exclusive), oldest first."""
        query = _PROCESS_QUERY.order_by(processes.c.run_ts, processes.c.id)
        if app_id is not None:
            query = query.where(processes.c.app_id == app_id)
        if from_ts is not None:
            query = query.where(processes.c.run_ts >= from_ts)
        if to_ts is not None:
            query = query.where(processes.c.run_ts < to_ts)
        with self._guard("list processes"), self._connect() as conn:
            rows = conn.execute(query).all()
        return [self._processes.put(row.id, _process_record(row)) for row in rows]

    def get_app_by_id(self, id: int) -> AppRecord | None:
        """The app with this id, or None."""
        return self._one("look up an app", sa.select(apps).where(apps.c.id == id), _app_record)

    def get_app_by_name(self, name: str) -> AppRecord | None:
        """The app with this name, or None."""
        query = sa.select(apps).where(apps.c.name == _clip(name, NAME_LENGTH))
        return self._one("look up an app", query, _app_record)

    def get_app_vsn_by_id(self, id: int) -> AppVsnRecord | None:
        """The app version with this id, or None."""
        return self._one("look up an app version", _APP_VSN_QUERY.where(app_vsns.c.id == id), _app_vsn_record)

    def get_environment_by_id(self, id: int) -> EnvironmentRecord | None:
        """The environment with this id, or None."""
        query = sa.select(environments).where(environments.c.id == id)
        return self._one("look up an environment", query, _environment_record)

    def get_environment_by_name(self, name: str) -> EnvironmentRecord | None:
        """The environment with this name, or None."""
        query = sa.select(environments).where(environments.c.name == _clip(name, NAME_LENGTH))
        return self._one("look up an environment", query, _environment_record)

    def get_event_by_id(self, id: int) -> EventRecord | None:
        """The event with this id, with its data (in insertion order) and stack trace, or None."""
        with self._guard("look up an event"), self._connect() as conn:
            found = self._load_events(conn, [events.c.id == id])
        return found[0] if found else None

    def get_events_by_data(
        self, where: Iterable[tuple[str, str | None]], process_id: int | None = None
    ) -> list[EventRecord]:
        """Events carrying every ``(key, value)`` pair of `where` (None: a null value), oldest first."""
        terms = list(where)
        with self._guard("query events by data"), self._connect() as conn:
            if self._sqlite and len(terms) > 1:
                terms = self._most_selective_first(conn, terms)
            return self._load_events(conn, self._data_conditions(terms, process_id))

    # -- queries for analysis ----------------------------------------------------------------

    def query_events(self, event_filter: EventFilter | None = None) -> Iterator[EventRecord]:
        """Events matching the filter, newest first (ties: higher id first), fetched a page at a time.

        Pages follow each other by keyset (time and id of the last event), each
        on a connection of its own, so nothing is held open between pages.
        Without data terms the scan runs on the events index that fits the
        filter; with terms, on the (key, value, time) index of the rarest term.
        """
        return self._event_pages(event_filter or EventFilter())

    def _event_pages(self, f: EventFilter) -> Iterator[EventRecord]:
        plan: list[tuple[Scope | None, list[tuple[str, str | None]]]] = []
        previous: list[int | None] = [None]  # the id of the last row read

        def build(conn: sa.Connection, cursor: tuple[Any, int] | None, size: int) -> sa.Select[Any] | None:
            if not plan:
                # On the first page's connection: names to ids, the rarest term first.
                terms = list(f.terms)
                plan.append(
                    (
                        self._scope(conn, f),
                        self._most_selective_first(conn, terms) if len(terms) > 1 else terms,
                    )
                )
            scope, terms = plan[0]
            return None if scope is None else self._events_page(f, scope, terms, cursor, size)

        def convert(conn: sa.Connection, rows: Sequence[_Row]) -> list[EventRecord]:
            # A term matched twice in one event gives adjacent rows: one record each.
            fresh = distinct_rows(rows, previous[0])
            previous[0] = rows[-1].id
            return self._records_for(conn, fresh)

        return self._pages("query events", build, convert, f.limit)

    def _pages(
        self,
        operation: str,
        build: Callable[[sa.Connection, tuple[Any, int] | None, int], sa.Select[Any] | None],
        convert: Callable[[sa.Connection, Sequence[_Row]], Sequence[_T]],
        limit: int | None,
    ) -> Iterator[_T]:
        """Records of keyset pages: `build` makes the query after a (sort_ts, id) cursor (None: no answer)."""
        remaining = limit
        cursor: tuple[Any, int] | None = None
        while remaining is None or remaining > 0:
            size = _PAGE if remaining is None else min(_PAGE, remaining)
            with self._guard(operation), self._read() as conn:
                query = build(conn, cursor, size)
                rows = [] if query is None else conn.execute(query).all()
                records = convert(conn, rows) if rows else []
            # Yielded outside the connection: a consumer may take its time.
            yield from records
            if remaining is not None:
                remaining -= len(records)
            if len(rows) < size:
                return
            cursor = (rows[-1].sort_ts, rows[-1].id)

    def _events_page(
        self,
        f: EventFilter,
        scope: Scope,
        terms: Sequence[tuple[str, str | None]],
        cursor: tuple[Any, int] | None,
        size: int,
    ) -> sa.Select[Any]:
        """One page of events, newest first, after `cursor`."""
        if terms:
            # Driven by the rarest term's index entries, which hold the time: newest first, no sort.
            first = _term_row(0)
            sort_ts, sort_id = first.c.when_ts, first.c.event_id
            query = (
                sa.select(events, sort_ts.label("sort_ts"))
                .select_from(first.join(events, events.c.id == first.c.event_id))
                .where(*self._term(first, *terms[0]))
            )
            for number, (key, val) in enumerate(terms[1:], start=1):
                other = _term_row(number)
                query = query.where(
                    sa.exists().where(other.c.event_id == first.c.event_id, *self._term(other, key, val))
                )
        else:
            sort_ts, sort_id = events.c.when_ts, events.c.id
            query = sa.select(events, sort_ts.label("sort_ts"))
        conditions = self._event_conditions(f, scope, indexed=not terms)
        query = query.where(*conditions, *time_range(sort_ts, f.since, f.until))
        if cursor is not None:
            # Written so that every backend sees a range on the time column of the index.
            query = query.where(sort_ts <= cursor[0], sa.or_(sort_ts < cursor[0], sort_id < cursor[1]))
        return query.order_by(sort_ts.desc(), sort_id.desc()).limit(size)

    def _event_conditions(
        self, f: EventFilter, scope: Scope, table: sa.TableClause = events, indexed: bool = True
    ) -> list[sa.ColumnElement[bool]]:
        """The filter's conditions on ``events`` or ``event_counts`` (not time, not data terms).

        The same conditions as the trace-group statements', with this filter's
        values bound in (`_group_conditions` says how they are steered).
        """
        values = _group_parameters(f, scope, ())

        def bound(name: str) -> sa.BindParameter[Any]:
            return sa.bindparam(name, values[name], expanding=_expanding(name))

        shape = _GroupShape.of(self._engine.dialect.name, f, scope, ())
        return _group_conditions(shape, table, indexed, bound)

    def _scope(self, conn: sa.Connection, f: EventFilter | ProcessFilter) -> Scope | None:
        """The filter's app, version and environment names as ids; None when one does not exist.

        Names once found are cached (apps and environments are never deleted).
        """
        app_id = None
        if f.app is not None:
            app = self._known(conn, self._apps, apps, _clip(f.app, NAME_LENGTH), _app_record)
            if app is None:
                return None
            app_id = app.id
        vsn_ids = None
        if f.vsn is not None:
            vsn_ids = self._vsn_ids_named(conn, _clip(f.vsn, NAME_LENGTH), app_id)
            if not vsn_ids:
                return None
        env_id = None
        if f.env is not None:
            name = _clip(f.env, NAME_LENGTH)
            env = self._known(conn, self._environments, environments, name, _environment_record)
            if env is None:
                return None
            env_id = env.id
        return Scope(app_id, vsn_ids, env_id)

    def _vsn_ids_named(self, conn: sa.Connection, vsn: str, app_id: int | None) -> tuple[int, ...]:
        """The ids of version `vsn` of the app (cached), or of every app that has one."""
        cached = None if app_id is None else self._vsns.get((app_id, vsn))
        if cached is not None:
            return (cached.id,)
        query = _APP_VSN_QUERY.where(*self._equal(app_vsns.c.vsn, vsn))
        if app_id is not None:
            query = query.where(app_vsns.c.app_id == app_id)
        records = [_app_vsn_record(row) for row in conn.execute(query).all()]
        for record in records:
            self._vsns.put((record.app.id, record.vsn), record)
        return tuple(sorted(record.id for record in records))

    def _known(
        self,
        conn: sa.Connection,
        cache: BoundedCache[str, _N],
        table: sa.Table,
        name: str,
        convert: Callable[[_Row], _N],
    ) -> _N | None:
        """The app or environment called `name`, from the cache or the table; never created."""
        cached = cache.get(name)
        if cached is not None:
            return cached
        row = conn.execute(sa.select(table).where(*self._equal(table.c.name, name))).first()
        return None if row is None else cache.put(name, convert(row))

    def query_processes(self, process_filter: ProcessFilter | None = None) -> Iterator[ProcessRecord]:
        """Processes matching the filter, newest start first, fetched a page at a time."""
        return self._process_pages(process_filter or ProcessFilter())

    def _process_pages(self, f: ProcessFilter) -> Iterator[ProcessRecord]:
        scopes: list[Scope | None] = []

        def build(conn: sa.Connection, cursor: tuple[Any, int] | None, size: int) -> sa.Select[Any] | None:
            if not scopes:
                scopes.append(self._scope(conn, f))
            scope = scopes[0]
            if scope is None:
                return None
            run_ts = processes.c.run_ts
            query = _PROCESS_QUERY.add_columns(run_ts.label("sort_ts")).where(
                *scope.conditions(processes), *time_range(run_ts, f.since, f.until)
            )
            if cursor is not None:
                query = query.where(
                    run_ts <= cursor[0], sa.or_(run_ts < cursor[0], processes.c.id < cursor[1])
                )
            return query.order_by(run_ts.desc(), processes.c.id.desc()).limit(size)

        def convert(conn: sa.Connection, rows: Sequence[_Row]) -> list[ProcessRecord]:
            return [self._processes.put(row.id, _process_record(row)) for row in rows]

        return self._pages("list processes", build, convert, f.limit)

    def query_trace_groups(self, event_filter: EventFilter | None = None) -> list[TraceGroup]:
        """Events with a stack trace or an exception, one group per (exception type, trace).

        Whole days and hours of the time range come from ``event_counts``, its
        ends (and any filter by process or data terms) from ``events``: one
        statement, the pieces' grouped selects joined by UNION ALL. It is built
        once per shape of the filter (`_GroupShape`), with bound parameters for
        the filter's values, so SQLAlchemy also reuses its compiled form.
        """
        f = event_filter or EventFilter()
        with self._guard("count trace groups"), self._read() as conn:
            scope = self._scope(conn, f)
            if scope is None:
                return []
            pieces = self._pieces(f)
            if not pieces:
                return []
            shape = _GroupShape.of(self._engine.dialect.name, f, scope, pieces)
            if f.terms:
                # Data terms have values in the statement (their index needs them): built each time.
                statement = _group_statement(shape, self._carrying(list(f.terms)))
            else:
                statement = _cached_group_statement(shape)
            if not all(shape.fixed):
                self._prepare_id_lists(conn)
            fixed = _fixed_ids(scope)
            rows = conn.execute(statement, _group_parameters(f, scope, pieces)).all()
            parts = [_group_part(row, fixed) for row in rows]
            return self._trace_groups(conn, merge_groups(parts, f.limit))

    def _pieces(self, f: EventFilter, whole: bool = True) -> list[Segment]:
        """How to read the filter's time range: summary rows where they can answer, else events.

        With `whole`, all of time is one piece (its own summary rows); daily
        counts need days.
        """
        if f.by_process_or_data:
            return (
                [(None, f.since, f.until)] if f.since is None or f.until is None or f.since < f.until else []
            )
        return segments(f.since, f.until, whole=whole)

    def _prepare_id_lists(self, conn: sa.Connection) -> None:
        """MySQL cuts GROUP_CONCAT at 1,024 bytes unless told otherwise (once per connection)."""
        if self._mysql and not conn.info.get("code_wake_group_concat"):
            conn.exec_driver_sql("SET SESSION group_concat_max_len = 4194304")
            conn.info["code_wake_group_concat"] = True

    def _trace_groups(self, conn: sa.Connection, tallies: Sequence[GroupTally]) -> list[TraceGroup]:
        """The records of the chosen groups: traces, messages, apps, versions and environments."""
        traces = self._load_traces(conn, {t.trace_id for t in tallies if t.trace_id is not None})
        messages: dict[int, str | None] = {}
        for chunk in _chunks(sorted({t.last_event_id for t in tallies})):
            rows = conn.execute(_MESSAGES_QUERY, {"ids": list(chunk)}).all()
            messages.update((int(row.id), row.exc_message) for row in rows)
        names = self._names(
            conn, [t.app_ids for t in tallies], [t.vsn_ids for t in tallies], [t.env_ids for t in tallies]
        )
        return [
            TraceGroup(
                exc_type=t.exc_type,
                stacktrace=None if t.trace_id is None else traces.get(t.trace_id),
                count=t.count,
                first_ts=t.first_ts,
                last_ts=t.last_ts,
                last_event_id=t.last_event_id,
                message=messages.get(t.last_event_id),
                apps=tuple(sorted((names.apps[i] for i in t.app_ids), key=lambda a: (a.name, a.id))),
                app_vsns=tuple(
                    sorted((names.vsns[i] for i in t.vsn_ids), key=lambda v: (v.app.name, v.vsn, v.id))
                ),
                environments=tuple(sorted((names.envs[i] for i in t.env_ids), key=lambda e: (e.name, e.id))),
            )
            for t in tallies
        ]

    def _names(
        self,
        conn: sa.Connection,
        app_ids: Iterable[Iterable[int]],
        vsn_ids: Iterable[Iterable[int]],
        env_ids: Iterable[Iterable[int]],
    ) -> _Names:
        """The app, version and environment records of these ids: cached, else at most three queries."""

        def rows(
            query: sa.Select[Any], id_column: sa.Column[Any], convert: Callable[[_Row], _V]
        ) -> _Loader[_V]:
            return lambda conn, chunk: (
                (row.id, convert(row)) for row in conn.execute(query.where(id_column.in_(chunk))).all()
            )

        return _Names(
            apps=self._cached(conn, self._app_ids, _flat(app_ids), rows(_APPS_QUERY, apps.c.id, _app_record)),
            vsns=self._cached(
                conn, self._vsn_ids, _flat(vsn_ids), rows(_APP_VSN_QUERY, app_vsns.c.id, _app_vsn_record)
            ),
            envs=self._cached(
                conn,
                self._env_ids,
                _flat(env_ids),
                rows(_ENVIRONMENTS_QUERY, environments.c.id, _environment_record),
            ),
        )

    def _cached(
        self, conn: sa.Connection, cache: BoundedCache[int, _V], ids: Iterable[int], load: _Loader[_V]
    ) -> dict[int, _V]:
        """The records of these ids: from `cache` where it has them, the others through `load`, in chunks."""
        found: dict[int, _V] = {}
        missing: list[int] = []
        for record_id in sorted(set(ids)):
            cached = cache.get(record_id)
            if cached is None:
                missing.append(record_id)
            else:
                found[record_id] = cached
        for chunk in _chunks(missing):
            for record_id, record in load(conn, chunk):
                found[record_id] = cache.put(record_id, record)
        return found

    def query_daily_counts(self, event_filter: EventFilter | None = None) -> list[DailyCount]:
        """Events (and errors) per UTC day, app, version and environment, newest day first."""
        f = event_filter or EventFilter()
        with self._guard("count events per day"), self._read() as conn:
            scope = self._scope(conn, f)
            if scope is None:
                return []
            totals = DailyTotals()
            for piece in self._pieces(f, whole=False):
                self._add_daily(conn, f, scope, piece, totals)
            names = self._names(conn, [totals.app_ids()], [totals.vsn_ids()], [totals.env_ids()])
        rows = [
            DailyCount(
                day=day,
                app=names.apps[app_id],
                app_vsn=None if vsn_id is None else names.vsns[vsn_id],
                environment=None if env_id is None else names.envs[env_id],
                events=count,
                errors=errors,
            )
            for (day, app_id, vsn_id, env_id), (count, errors) in totals.totals.items()
        ]
        rows.sort(key=DailyCount.sort_key)
        return rows if f.limit is None else rows[: f.limit]

    def _add_daily(
        self, conn: sa.Connection, f: EventFilter, scope: Scope, piece: Segment, totals: DailyTotals
    ) -> None:
        span, since, until = piece
        if span is None:
            c = events.c
            query = sa.select(
                c.when_ts, c.app_id, c.app_vsn_id, c.environment_id, c.exc_type.is_not(None)
            ).where(*self._event_conditions(f, scope), *time_range(c.when_ts, since, until))
            if f.terms:
                query = query.where(c.id.in_(self._carrying(list(f.terms))))
            for when_ts, app_id, vsn_id, env_id, error in conn.execute(query):
                totals.add(day_of(when_ts), app_id, vsn_id, env_id, 1, int(bool(error)))
            return
        k = event_counts.c
        errors = sa.func.sum(sa.case((k.exc_type != "", k.n), else_=0))
        scope_key = (k.bucket_ts, k.app_id, k.app_vsn_id, k.environment_id)
        query = (
            sa.select(*scope_key, sa.func.sum(k.n), errors)
            .where(
                k.span == span,
                *self._event_conditions(f, scope, event_counts),
                *_bucket_range(k.bucket_ts, since, until),
            )
            .group_by(*scope_key)
        )
        for row in conn.execute(query).all():
            totals.add_bucket(*row)

    def query_counts_over_time(
        self, event_filter: EventFilter | None = None, span: int = HOUR, by_scope: bool = False
    ) -> list[BucketCount]:
        """Events per hour or UTC day and trace group, from ``event_counts`` (see `_count_series`)."""
        return _count_series.query_counts_over_time(self, event_filter or EventFilter(), span, by_scope)

    def prune(self, before_ts: float, *, dry_run: bool = False, batch_size: int = 5000) -> PruneReport:
        """Delete events older than `before_ts`, then what only they used; see `code_wake.Store.prune`.

        Each batch of `batch_size` events (with their data rows) is one short
        transaction, oldest first; then the summary rows of the pruned days
        are dropped and the day of the cut is counted again; then stack
        traces and processes nothing uses any more go, 500 per transaction.
        The newest stack trace and process are always kept (SQLite would give
        their ids to new rows while running programs still hold them).
        """
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, not {batch_size!r}.")
        if dry_run:
            with self._guard("count what a prune would delete"), self._read() as conn:
                return PruneReport(before_ts, True, **_prune.count_prunable(conn, before_ts))
        with self._guard("prune events"):
            removed, data = self._prune_events(before_ts, batch_size)
            with self._begin() as conn:
                _prune.recount_after(conn, self._upsert_counts, before_ts)
            traces, frames = self._prune_in_chunks(_prune.unused_traces, _prune.delete_traces)
            idle, _ = self._prune_in_chunks(
                lambda conn: _prune.prunable_processes(conn, before_ts),
                lambda conn, ids: (_prune.delete_processes(conn, ids, before_ts), 0),
            )
        # This store forgets what it deleted; other stores find out when a write fails (see insert_events).
        self._processes.clear()
        self._traces.clear()
        self._trace_ids.clear()
        return PruneReport(before_ts, False, removed, data, traces, frames, idle)

    def _prune_events(self, before_ts: float, batch_size: int) -> tuple[int, int]:
        removed = data = 0
        while True:
            with self._connect() as conn:
                ids = _prune.old_event_ids(conn, before_ts, batch_size)
            if not ids:
                return removed, data
            with self._begin() as conn:
                for chunk in _chunks(ids):
                    gone, rows = _prune.delete_events(conn, chunk)
                    removed, data = removed + gone, data + rows

    def _prune_in_chunks(
        self,
        find: Callable[[sa.Connection], list[int]],
        delete: Callable[[sa.Connection, Sequence[int]], tuple[int, int]],
    ) -> tuple[int, int]:
        """Find candidates, then delete them a chunk per transaction; the two counts added up."""
        with self._connect() as conn:
            candidates = find(conn)
        first = second = 0
        for chunk in _chunks(candidates):
            with self._begin() as conn:
                one, two = delete(conn, chunk)
            first, second = first + one, second + two
        return first, second

    # -- connections, transactions, errors -----------------------------------------------

    @contextmanager
    def _guard(self, operation: str) -> Iterator[None]:
        """Translate SQLAlchemy's errors into code_wake's, naming `operation`."""
        try:
            yield
        except sa.exc.SQLAlchemyError as exc:
            raise translate_error(exc, operation, self._url) from exc

    def _checkout(self) -> sa.Connection:
        if self._closed:
            raise StoreError(f"This store for {self._where} is closed; create a new one.")
        try:
            return self._engine.connect()
        except sa.exc.DBAPIError as exc:
            # SQLAlchemy 2 checks a connection out of the pool here: a failure is the database's.
            raise unavailable(exc, self._url) from exc

    @contextmanager
    def _connect(self) -> Iterator[sa.Connection]:
        # The fork guard: os.fork() waits for this to end (code_wake._fork says why).
        with self._fork_guard:
            self._ensure_schema()
            with self._lock, self._checkout() as conn:
                yield conn

    @contextmanager
    def _read(self) -> Iterator[sa.Connection]:
        """A connection for the analysis queries.

        On PostgreSQL in autocommit: no BEGIN and ROLLBACK round trips (a third
        of a short query's time), and nothing lost, since each statement there
        reads its own snapshot anyway (READ COMMITTED).
        """
        with self._connect() as conn:
            yield conn.execution_options(isolation_level="AUTOCOMMIT") if self._postgresql else conn

    @contextmanager
    def _begin(self) -> Iterator[sa.Connection]:
        with self._connect() as conn, conn.begin():
            yield conn

    def _ensure_schema(self) -> None:
        """Create or upgrade the schema on first use; afterwards a flag test."""
        if not self._ready:
            self._prepare()

    def _prepare(self) -> None:
        with self._schema_lock:
            if self._ready:
                return
            with self._guard("prepare the code_wake schema"), self._lock:
                ensure_schema(self._checkout, self._where)
                # Chosen once connected: a choice may depend on the server's settings.
                with self._checkout() as conn:
                    self._batch = batch_writer(conn)
            self._ready = True

    def _one(self, operation: str, query: sa.Select[Any], convert: Callable[[_Row], _T]) -> _T | None:
        with self._guard(operation), self._connect() as conn:
            row = conn.execute(query).first()
        return None if row is None else convert(row)

    # -- get-or-create -------------------------------------------------------------------

    def _get_or_create(self, table: sa.Table, values: dict[str, Any]) -> int:
        """The id of the row holding `values`, inserting it if missing; safe against races.

        Each try is its own transaction: after losing a race (a unique
        violation) the next select must see the winner's row, which MySQL's
        REPEATABLE READ snapshot of an ongoing transaction would not show.
        """
        match = sa.and_(*(table.c[name] == value for name, value in values.items()))
        query = sa.select(table.c.id).where(match)
        attempt = 0
        while True:
            try:
                with self._begin() as conn:
                    found = conn.execute(query).scalar()
                    if found is None:
                        found = new_id(conn.execute(sa.insert(table).values(values)))
                    return int(found)
            except sa.exc.DBAPIError as exc:
                attempt += 1
                if attempt >= _RACE_ATTEMPTS or not _lost_race(exc):
                    raise

    def _app(self, name: str) -> AppRecord:
        name = _clip(name, NAME_LENGTH)
        cached = self._apps.get(name)
        if cached is not None:
            return cached
        return self._apps.put(name, AppRecord(self._get_or_create(apps, {"name": name}), name))

    def _app_vsn(self, app: AppRecord, vsn: str) -> AppVsnRecord:
        vsn = _clip(vsn, NAME_LENGTH)
        cached = self._vsns.get((app.id, vsn))
        if cached is not None:
            return cached
        vsn_id = self._get_or_create(app_vsns, {"app_id": app.id, "vsn": vsn})
        return self._vsns.put((app.id, vsn), AppVsnRecord(vsn_id, vsn, app))

    def _environment(self, name: str) -> EnvironmentRecord:
        name = _clip(name, NAME_LENGTH)
        cached = self._environments.get(name)
        if cached is not None:
            return cached
        env_id = self._get_or_create(environments, {"name": name})
        return self._environments.put(name, EnvironmentRecord(env_id, name))

    # -- stack traces --------------------------------------------------------------------

    def _traces_for(self, batch: Sequence[PendingEvent]) -> list[StacktraceRecord | None]:
        """The stored trace of each event (None: it has none); each new digest stored once."""
        resolved = [None if event.frames is None else resolve_frames(event.frames) for event in batch]
        known: dict[bytes, StacktraceRecord] = {}
        missing: dict[bytes, ResolvedTrace] = {}
        for trace in resolved:
            if trace is not None and trace.digest not in known:
                cached = self._traces.get(trace.digest)
                if cached is None:
                    missing[trace.digest] = trace
                else:
                    known[trace.digest] = cached
        if missing:
            known.update(self._fetch_or_create_traces(missing))
        return [None if trace is None else known[trace.digest] for trace in resolved]

    def _fetch_or_create_traces(self, missing: dict[bytes, ResolvedTrace]) -> dict[bytes, StacktraceRecord]:
        digests = list(missing)
        found: dict[bytes, StacktraceRecord] = {}
        with self._connect() as conn:
            for chunk in _chunks(digests):
                for trace in _select_traces(conn, stacktraces.c.digest.in_(chunk)).values():
                    found[trace.digest] = trace
        for digest in digests:
            if digest not in found:
                found[digest] = self._create_trace(missing[digest])
        return {digest: self._traces.put(digest, trace) for digest, trace in found.items()}

    def _create_trace(self, trace: ResolvedTrace) -> StacktraceRecord:
        """Store a trace and its frames in one transaction (so nobody sees it without frames)."""
        frames = tuple(
            StackframeRecord(
                _clip(frame.filename, TEXT_LIMIT),
                frame.lineno,
                _clip(frame.src, TEXT_LIMIT),
                _clip(frame.function, TEXT_LIMIT),
            )
            for frame in trace.frames
        )
        attempt = 0
        while True:
            try:
                with self._begin() as conn:
                    trace_id = new_id(conn.execute(_INSERT_TRACE, {"digest": trace.digest}))
                    if frames:
                        conn.execute(_INSERT_FRAMES, [_frame_row(trace_id, frame) for frame in frames])
                # Stored outermost first (ascending id); records give them innermost first.
                return StacktraceRecord(trace_id, trace.digest, frames[::-1])
            except sa.exc.DBAPIError as exc:
                attempt += 1
                if attempt >= _RACE_ATTEMPTS or not _lost_race(exc):
                    raise
            with self._connect() as conn:
                winner = _select_traces(conn, stacktraces.c.digest == trace.digest)
            if winner:
                return next(iter(winner.values()))

    # -- event rows ------------------------------------------------------------------------

    def _insert_event_rows(self, conn: sa.Connection, rows: list[_EventRow]) -> list[int]:
        if len(rows) == 1:
            return [new_id(conn.execute(_INSERT_EVENT, rows[0]._asdict()))]
        return self._batch.insert_events(conn, events, _EventRow._fields, rows)

    def _data_conditions(
        self, where: Iterable[tuple[str, str | None]], process_id: int | None
    ) -> list[sa.ColumnElement[bool]]:
        """Conditions on ``events`` for events carrying every term (and of `process_id`, if given)."""
        terms = list(where)
        conditions: list[sa.ColumnElement[bool]] = []
        if terms:
            conditions.append(events.c.id.in_(self._carrying(terms)))
        if process_id is not None:
            conditions.append(events.c.process_id == process_id)
        return conditions

    def _carrying(self, terms: list[tuple[str, str | None]]) -> sa.Select[Any]:
        """The ids of events carrying all `terms`: one events_data alias per term, joined on the event.

        The first term is looked up through the (key, value) index, the others
        through the event_id index. PostgreSQL and MySQL pick the most selective
        term to start from by their statistics; SQLite starts from the first.
        """
        rows = [events_data.alias(f"term{n}") for n in range(len(terms))]
        joined: sa.FromClause = rows[0]
        for row in rows[1:]:
            joined = joined.join(row, row.c.event_id == rows[0].c.event_id)
        query = sa.select(rows[0].c.event_id).select_from(joined)
        for row, (key, val) in zip(rows, terms, strict=True):
            query = query.where(*self._term(row, key, val))
        return query

    def _term(self, row: sa.FromClause, key: str, val: str | None) -> list[sa.ColumnElement[bool]]:
        """`row` holds ``(key, val)``, in a form the (key, value) index serves."""
        match = self._equal(row.c.key, _clip(key, NAME_LENGTH))
        if val is None:
            match.append(row.c.val.is_(None))
            return match
        val = _clip(val, LONG_TEXT_LIMIT)
        if not self._mysql:
            # The expression index holds a prefix: compare it so the index is used,
            # and the whole value for the answer. MySQL's prefix index needs neither.
            match.append(val_prefix(row.c.val) == val_prefix(sa.literal(val, sa.Text)))
        if self._sqlite:
            # Not "val = ?": SQLite's constant propagation would rewrite the prefix term
            # into substr(?, 1, 200), which no longer matches the index. For a non-null
            # value, IS is the same test and is not propagated.
            match.append(row.c.val.is_not_distinct_from(val))
        else:
            match.extend(self._equal(row.c.val, val))
        return match

    def _equal(self, column: sa.ColumnElement[Any], text: str) -> list[sa.ColumnElement[bool]]:
        """``column = text``, exactly, on every backend."""
        if not self._mysql:
            return [column == text]
        # MySQL's utf8mb4_bin collation pads: 'a' = 'a ' is true. Equal lengths make it exact.
        return [column == text, sa.func.char_length(column) == len(text)]

    def _events_query(self, conditions: Sequence[sa.ColumnElement[bool]]) -> sa.Select[Any]:
        return sa.select(events).where(*conditions).order_by(*_EVENT_ORDER)

    def _load_events(
        self, conn: sa.Connection, conditions: Sequence[sa.ColumnElement[bool]]
    ) -> list[EventRecord]:
        """Events matching `conditions`, oldest first, with data, traces and processes.

        Four queries whatever the number of events (more only past `_CHUNK`
        distinct ids of one kind), never one per event.
        """
        return self._records_for(conn, conn.execute(self._events_query(conditions)).all())

    def _records_for(self, conn: sa.Connection, rows: Sequence[_Row]) -> list[EventRecord]:
        """The records of these ``events`` rows, in their order, with data, traces and processes."""
        data: dict[int, tuple[DataItem, ...]] = {}
        for chunk in _chunks([row.id for row in rows]):
            data.update(_load_data(conn, chunk))
        traces = self._load_traces(conn, {row.stacktrace_id for row in rows if row.stacktrace_id is not None})
        owners = self._load_processes(conn, sorted({row.process_id for row in rows}))
        return [
            _event_record(
                row,
                owners[row.process_id],
                data.get(row.id, ()),
                None if row.stacktrace_id is None else traces[row.stacktrace_id],
            )
            for row in rows
        ]

    def _most_selective_first(
        self, conn: sa.Connection, terms: list[tuple[str, str | None]]
    ) -> list[tuple[str, str | None]]:
        """The terms ordered by how many rows match each, counted up to `_PROBE_LIMIT`.

        SQLite (without STAT4 statistics) starts the search from the first
        term; starting from a term that every event carries would read them all.
        A bounded count through the index costs a fraction of a millisecond.
        """
        row = events_data.alias("probe")

        def matches(term: tuple[str, str | None]) -> int:
            limited = sa.select(row.c.id).where(*self._term(row, *term)).limit(_PROBE_LIMIT).subquery()
            return int(conn.execute(sa.select(sa.func.count()).select_from(limited)).scalar_one())

        return sorted(terms, key=matches)

    def _load_traces(self, conn: sa.Connection, ids: Iterable[int]) -> dict[int, StacktraceRecord]:
        """The stack traces with these ids (with their frames), cached by id."""

        def load(conn: sa.Connection, chunk: Sequence[int]) -> Iterable[tuple[int, StacktraceRecord]]:
            return _select_traces(conn, stacktraces.c.id.in_(chunk)).items()

        return self._cached(conn, self._trace_ids, ids, load)

    def _load_processes(self, conn: sa.Connection, ids: Iterable[int]) -> dict[int, ProcessRecord]:
        """The processes with these ids (with app, version and environment), cached by id."""

        def load(conn: sa.Connection, chunk: Sequence[int]) -> Iterable[tuple[int, ProcessRecord]]:
            query = _PROCESS_QUERY.where(processes.c.id.in_(chunk))
            return ((row.id, _process_record(row)) for row in conn.execute(query).all())

        return self._cached(conn, self._processes, ids, load)


# -- rows and records ----------------------------------------------------------------------


def _unindexed(column: sa.ColumnElement[Any]) -> sa.ColumnElement[Any]:
    """`column`, unchanged, in a form SQLite's planner cannot look up through an index."""
    return sa.func.coalesce(column, column)


@functools.lru_cache(maxsize=16)
def _term_row(number: int) -> sa.FromClause:
    """``events_data`` as the alias of data term `number` (made once: aliases are not free to build)."""
    return events_data.alias(f"term{number}")


def _flat(id_sets: Iterable[Iterable[int]]) -> set[int]:
    return {i for ids in id_sets for i in ids}


def _bucket_range(
    column: sa.ColumnElement[Any], since: float | None, until: float | None
) -> list[sa.ColumnElement[bool]]:
    """Buckets from `since` to `until`, which are bucket boundaries: compared as the integers they are.

    PostgreSQL would compare a float bound to the integer column by casting the
    column, and then not use the index.
    """
    return time_range(column, None if since is None else int(since), None if until is None else int(until))


# -- trace-group statements -----------------------------------------------------------------


class _GroupShape(NamedTuple):
    """What a trace-group statement depends on: the shape of the filter, not its values.

    A statement is built once per shape (`_cached_group_statement`); the
    values come as bound parameters (`_group_parameters`).
    """

    dialect: str
    pieces: tuple[tuple[int | None, bool, bool], ...]
    """Per piece of the time range: its span (None: read ``events``), whether it has a start, an end."""
    process: bool
    stacktrace: bool
    exc_type: bool
    vsns: int
    """Versions the filter matches: 0 (not filtered), 1, or 2 for more than one."""
    app: bool
    env: bool
    errors: bool
    terms: bool

    @classmethod
    def of(cls, dialect: str, f: EventFilter, scope: Scope, pieces: Sequence[Segment]) -> _GroupShape:
        return cls(
            dialect=dialect,
            pieces=tuple((span, since is not None, until is not None) for span, since, until in pieces),
            process=f.process_id is not None,
            stacktrace=f.stacktrace_id is not None,
            exc_type=f.exc_type is not None,
            vsns=0 if scope.vsn_ids is None else min(len(scope.vsn_ids), 2),
            app=scope.app_id is not None,
            env=scope.env_id is not None,
            errors=f.errors,
            terms=bool(f.terms),
        )

    @property
    def fixed(self) -> tuple[bool, bool, bool]:
        """Whether the filter fixes the app, the version and the environment of every event it selects."""
        return (self.app, self.vsns == 1, self.env)


def _fixed_ids(scope: Scope) -> tuple[int | None, int | None, int | None]:
    """The app, version and environment ids the scope fixes (None: not one id)."""
    vsn_ids = scope.vsn_ids
    return (scope.app_id, vsn_ids[0] if vsn_ids is not None and len(vsn_ids) == 1 else None, scope.env_id)


def _group_parameters(f: EventFilter, scope: Scope, pieces: Sequence[Segment]) -> dict[str, Any]:
    """The values of a trace-group statement's bound parameters (see `_group_conditions`)."""
    found: dict[str, Any] = {}
    if f.process_id is not None:
        found["process_id"] = f.process_id
    if f.stacktrace_id is not None:
        found["stacktrace_id"] = f.stacktrace_id
    if f.exc_type is not None:
        exc_type = _clip(f.exc_type, NAME_LENGTH)
        found["exc_type"] = exc_type
        found["exc_type_length"] = len(exc_type)
    if scope.vsn_ids is not None:
        if len(scope.vsn_ids) == 1:
            found["vsn_id"] = scope.vsn_ids[0]
        else:
            found["vsn_ids"] = list(scope.vsn_ids)
    if scope.app_id is not None:
        found["app_id"] = scope.app_id
    if scope.env_id is not None:
        found["env_id"] = scope.env_id
    for number, (span, since, until) in enumerate(pieces):
        # Summary pieces start and end on bucket boundaries: integers, as the column is (_bucket_range).
        if since is not None:
            found[f"since{number}"] = since if span is None else int(since)
        if until is not None:
            found[f"until{number}"] = until if span is None else int(until)
    return found


def _group_part(row: _Row, fixed: tuple[int | None, int | None, int | None]) -> GroupPart:
    """A row of the trace-group statement as a `GroupPart`: the fixed ids where no list was read."""
    lists = iter(row[6:])
    return (*row[:6], *(next(lists) if known is None else known for known in fixed))


@functools.lru_cache(maxsize=256)
def _cached_group_statement(shape: _GroupShape) -> sa.Select[Any] | sa.CompoundSelect[Any]:
    """`_group_statement` of a filter without data terms, made once per shape."""
    return _group_statement(shape, None)


def _group_statement(
    shape: _GroupShape, carrying: sa.Select[Any] | None
) -> sa.Select[Any] | sa.CompoundSelect[Any]:
    """Every piece's groups in one statement: per piece and (trace, type), a `GroupPart`'s columns.

    `carrying` selects the ids of the events carrying the filter's data terms.
    """
    branches = [_group_branch(shape, number, piece, carrying) for number, piece in enumerate(shape.pieces)]
    return branches[0] if len(branches) == 1 else sa.union_all(*branches)


def _group_branch(
    shape: _GroupShape,
    number: int,
    piece: tuple[int | None, bool, bool],
    carrying: sa.Select[Any] | None,
) -> sa.Select[Any]:
    """One piece's groups: per (trace, type) the count, first and last seen, latest event, where seen.

    Where seen comes as comma-separated ids, aggregated by the database, so
    that a piece returns a row per group rather than per app version too;
    not for what the filter fixes (one app, version or environment), which
    the caller fills in (`_group_part`).
    """
    span, has_since, has_until = piece
    since: sa.BindParameter[Any] | None = sa.bindparam(f"since{number}") if has_since else None
    until: sa.BindParameter[Any] | None = sa.bindparam(f"until{number}") if has_until else None
    c: Any
    if span is None:
        c = events.c
        counts: tuple[sa.ColumnElement[Any], ...] = (
            sa.func.count(),
            sa.func.min(c.when_ts),
            sa.func.max(c.when_ts),
            sa.func.max(c.id),
        )
        conditions = [
            *_group_conditions(shape, events, indexed=not shape.terms),
            *time_range(c.when_ts, since, until),
        ]
        if not shape.errors:
            conditions.append(sa.or_(c.stacktrace_id.is_not(None), c.exc_type.is_not(None)))
        if carrying is not None:
            conditions.append(c.id.in_(carrying))
    else:
        c = event_counts.c
        counts = (
            sa.func.sum(c.n),
            sa.func.min(c.first_ts),
            sa.func.max(c.last_ts),
            sa.func.max(c.last_event_id),
        )
        conditions = [
            c.span == span,
            sa.or_(c.stacktrace_id != 0, c.exc_type != ""),
            *_group_conditions(shape, event_counts),
            *time_range(c.bucket_ts, since, until),
        ]
    scope_columns = (c.app_id, c.app_vsn_id, c.environment_id)
    lists = [
        _id_list(shape.dialect, column)
        for column, fixed in zip(scope_columns, shape.fixed, strict=True)
        if not fixed
    ]
    return (
        sa.select(c.stacktrace_id, c.exc_type, *counts, *lists)
        .where(*conditions)
        .group_by(c.stacktrace_id, c.exc_type)
    )


def _named(name: str) -> sa.BindParameter[Any]:
    """A parameter whose value comes at execution (`_group_parameters`)."""
    return sa.bindparam(name, expanding=_expanding(name))


def _expanding(name: str) -> bool:
    """Whether the parameter `name` of `_group_parameters` is a list (for ``IN``)."""
    return name == "vsn_ids"


def _group_conditions(
    shape: _GroupShape,
    table: sa.TableClause,
    indexed: bool = True,
    param: Callable[[str], sa.BindParameter[Any]] = _named,
) -> list[sa.ColumnElement[bool]]:
    """The filter's conditions on ``events`` or ``event_counts`` (not time, not data terms).

    Each value is `param(name)`, a parameter named as in `_group_parameters`:
    unset for statements built once per shape, set for one filter's query.
    `indexed` False: another index drives the query (a data term's), so on
    SQLite none of these may be looked up through an events index.
    """
    summary = table is event_counts
    mysql = shape.dialect in MYSQL_DIALECTS
    equal: dict[str, Callable[[sa.ColumnElement[Any]], list[sa.ColumnElement[bool]]]] = {}
    if shape.process and not summary:
        equal["process_id"] = lambda c: [c == param("process_id")]
    if shape.stacktrace:
        equal["stacktrace_id"] = lambda c: [c == param("stacktrace_id")]
    if shape.exc_type:
        # MySQL's utf8mb4_bin collation pads: 'a' = 'a ' is true. Equal lengths make it exact.
        equal["exc_type"] = lambda c: (
            [c == param("exc_type")] + ([sa.func.char_length(c) == param("exc_type_length")] if mysql else [])
        )
    if shape.vsns == 1:
        equal["app_vsn_id"] = lambda c: [c == param("vsn_id")]
    elif shape.vsns:
        equal["app_vsn_id"] = lambda c: [c.in_(param("vsn_ids"))]
    if shape.app:
        equal["app_id"] = lambda c: [c == param("app_id")]
    if shape.env:
        equal["environment_id"] = lambda c: [c == param("env_id")]
    # SQLite keeps no statistics to choose among indexes by, and may scan a wide one
    # (production's) for a narrow match: only the filter that is usually the narrowest
    # (the order above) keeps its index; the others are checked per row.
    steer = shape.dialect == "sqlite" and not summary
    driver = next(iter(equal), None) if indexed else None
    found: list[sa.ColumnElement[bool]] = []
    for name, condition in equal.items():
        column = table.c[name]
        found.extend(condition(_unindexed(column) if steer and name != driver else column))
    if shape.errors:
        # Never through the exception-type index: every error, in no time order.
        exc_type = _unindexed(table.c.exc_type) if steer else table.c.exc_type
        found.append(exc_type != "" if summary else exc_type.is_not(None))
    return found


def _id_list(dialect: str, column: sa.ColumnElement[Any]) -> sa.ColumnElement[Any]:
    """Aggregate: the distinct ids of `column` in a group, comma-separated."""
    if dialect == "postgresql":
        comma: sa.ColumnElement[str] = sa.literal_column("','")
        return sa.func.string_agg(sa.distinct(sa.cast(column, sa.Text)), comma)
    return sa.func.group_concat(sa.distinct(column))


@dataclasses.dataclass
class _Names:
    """App, version and environment records by id."""

    apps: dict[int, AppRecord] = dataclasses.field(default_factory=dict)
    vsns: dict[int, AppVsnRecord] = dataclasses.field(default_factory=dict)
    envs: dict[int, EnvironmentRecord] = dataclasses.field(default_factory=dict)


def _clip(text: Any, limit: int) -> Any:
    """`text` cut to `limit` characters (None stays None): what the column can hold everywhere."""
    return text[:limit] if text is not None and len(text) > limit else text


def _clip_data(data: Iterable[tuple[str, str | None]]) -> tuple[DataItem, ...]:
    # _clip inlined: this runs for every value of every event written.
    return tuple(
        DataItem(
            key if len(key) <= NAME_LENGTH else key[:NAME_LENGTH],
            val if val is None or len(val) <= LONG_TEXT_LIMIT else val[:LONG_TEXT_LIMIT],
        )
        for key, val in data
    )


class _EventRow(NamedTuple):
    """An ``events`` row to insert, its fields named and ordered as the columns."""

    when_ts: float
    process_id: int
    digest: bytes | None
    stacktrace_id: int | None
    exc_type: str | None
    exc_message: str | None
    app_id: int
    app_vsn_id: int | None
    environment_id: int | None


_DATA_COLUMNS = ("event_id", "key", "val", "when_ts")
"""The ``events_data`` columns a batch writes, in the order of its row tuples."""


def _event_row(event: PendingEvent, owner: ProcessRecord, trace: StacktraceRecord | None) -> _EventRow:
    return _EventRow(
        float(event.when_ts),
        owner.id,
        data_digest(event.data),
        None if trace is None else trace.id,
        _clip(event.exc_type, NAME_LENGTH),
        _clip(event.exc_message, LONG_TEXT_LIMIT),
        owner.app.id,
        None if owner.app_vsn is None else owner.app_vsn.id,
        None if owner.environment is None else owner.environment.id,
    )


def _count_rows(ids: Sequence[int], rows: Sequence[_EventRow]) -> Iterator[CountRow]:
    """What the summary counts of each event written."""
    for event_id, row in zip(ids, rows, strict=True):
        yield (
            event_id,
            row.when_ts,
            row.app_id,
            row.app_vsn_id,
            row.environment_id,
            row.stacktrace_id,
            row.exc_type,
        )


def _present(conn: sa.Connection, column: sa.Column[Any], ids: Sequence[int]) -> set[int]:
    """Those of `ids` that `column` (a primary key) holds."""
    found: set[int] = set()
    for chunk in _chunks(ids):
        found.update(int(i) for i in conn.execute(sa.select(column).where(column.in_(chunk))).scalars())
    return found


def _frame_row(trace_id: int, frame: StackframeRecord) -> dict[str, Any]:
    return {
        "stacktrace_id": trace_id,
        "filename": frame.filename,
        "lineno": frame.lineno,
        "src": frame.src,
        "function": frame.function,
    }


def _lost_race(exc: sa.exc.DBAPIError) -> bool:
    """True when another transaction got there first: a unique violation, or a deadlock."""
    if isinstance(exc, sa.exc.IntegrityError):
        return True
    orig = exc.orig
    code = getattr(orig, "sqlstate", None) or (orig.args[0] if orig is not None and orig.args else None)
    return code in ("40P01", "40001", 1213)  # PostgreSQL deadlock / serialization; MySQL deadlock


def _chunks(items: Sequence[_T]) -> Iterator[Sequence[_T]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]


def _select_traces(conn: sa.Connection, condition: sa.ColumnElement[bool]) -> dict[int, StacktraceRecord]:
    digests: dict[int, bytes] = {}
    frames: dict[int, list[StackframeRecord]] = {}
    for row in conn.execute(_TRACE_QUERY.where(condition)).all():
        digests.setdefault(row.id, bytes(row.digest))
        stored = frames.setdefault(row.id, [])
        if row.filename is not None:  # the outer join's row for a trace without frames
            stored.append(StackframeRecord(row.filename, row.lineno, row.src, row.function))
    return {
        trace_id: StacktraceRecord(trace_id, digest, tuple(reversed(frames[trace_id])))
        for trace_id, digest in digests.items()
    }


def _load_data(conn: sa.Connection, event_ids: Sequence[int]) -> dict[int, tuple[DataItem, ...]]:
    query = (
        sa.select(events_data.c.event_id, events_data.c.key, events_data.c.val)
        .where(events_data.c.event_id.in_(event_ids))
        .order_by(events_data.c.event_id, events_data.c.id)
    )
    data: dict[int, list[DataItem]] = {}
    for row in conn.execute(query).all():
        data.setdefault(row.event_id, []).append(DataItem(row.key, row.val))
    return {event_id: tuple(items) for event_id, items in data.items()}


def _event_record(
    row: _Row, owner: ProcessRecord, data: tuple[DataItem, ...], trace: StacktraceRecord | None
) -> EventRecord:
    return EventRecord(
        id=row.id,
        when_ts=row.when_ts,
        process=owner,
        data=data,
        stacktrace=trace,
        exc_type=row.exc_type,
        exc_message=row.exc_message,
        digest=None if row.digest is None else bytes(row.digest),
    )


def _app_record(row: _Row) -> AppRecord:
    return AppRecord(row.id, row.name)


def _environment_record(row: _Row) -> EnvironmentRecord:
    return EnvironmentRecord(row.id, row.name)


def _app_vsn_record(row: _Row) -> AppVsnRecord:
    return AppVsnRecord(row.id, row.vsn, AppRecord(row.app_id, row.app_name))


def _process_record(row: _Row) -> ProcessRecord:
    vsn = None
    if row.vsn_id is not None:
        vsn = AppVsnRecord(row.vsn_id, row.vsn, AppRecord(row.vsn_app_id, row.vsn_app_name))
    return ProcessRecord(
        id=row.id,
        pid=row.pid,
        username=row.username,
        fqdn=row.fqdn,
        exe_path=row.exe_path,
        run_ts=row.run_ts,
        app=AppRecord(row.app_id, row.app_name),
        app_vsn=vsn,
        environment=None if row.env_id is None else EnvironmentRecord(row.env_id, row.env_name),
    )
