"""Sql14Store: the SQLAlchemy 2 (Core) store for SQLite, PostgreSQL and MySQL/MariaDB."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any, TypeAlias, TypeVar

import sqlalchemy as sa

from code_wake.errors import StoreError
from code_wake.event import PendingEvent, data_digest
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
from code_wake.store import HasProcessInfo, Store, process_info_of

from ._cache import BoundedCache
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
    events,
    events_data,
    processes,
    stackframes,
    stacktraces,
    val_prefix,
)

__all__ = ["Sql14Store"]

_T = TypeVar("_T")

_Row: TypeAlias = Any
"""A result row; SQLAlchemy 2.1 types rows by their column tuple, which varies by query."""

_CACHE_SIZE = 1024
"""Entries per lookup cache (apps, versions, environments, processes, stack traces)."""

_CHUNK = 500
"""Ids or digests per ``IN (...)`` list: far below every backend's parameter limit."""

_PROBE_LIMIT = 1000
"""Rows counted at most per term when SQLite orders the terms of a data query."""

_RACE_ATTEMPTS = 5
"""Get-or-create tries before giving up on a row other processes keep racing for."""

# Statements are built once; SQLAlchemy caches their compiled form by statement.
_INSERT_EVENT = sa.insert(events)
_INSERT_EVENTS_RETURNING = sa.insert(events).returning(events.c.id, sort_by_parameter_order=True)
_INSERT_DATA = sa.insert(events_data)
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
        self._memory = is_memory_sqlite(self._url)
        # A memory database is one shared DBAPI connection (StaticPool): one user at a time.
        self._lock: AbstractContextManager[Any] = threading.Lock() if self._memory else nullcontext()
        self._schema_lock = threading.Lock()
        self._ready = False
        self._closed = False
        self._returning_many = False
        self._apps: BoundedCache[str, AppRecord] = BoundedCache(_CACHE_SIZE)
        self._vsns: BoundedCache[tuple[int, str], AppVsnRecord] = BoundedCache(_CACHE_SIZE)
        self._environments: BoundedCache[str, EnvironmentRecord] = BoundedCache(_CACHE_SIZE)
        self._processes: BoundedCache[int, ProcessRecord] = BoundedCache(_CACHE_SIZE)
        self._traces: BoundedCache[bytes, StacktraceRecord] = BoundedCache(_CACHE_SIZE)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._where!r})"

    @property
    def engine(self) -> sa.Engine:
        """The SQLAlchemy engine, for your own read queries (write through the store)."""
        return self._engine

    def close(self) -> None:
        """Dispose of the engine's connections; using the store afterwards raises `StoreError`."""
        self._closed = True
        self._engine.dispose()

    def _after_fork_in_child(self) -> None:
        """A forked child gets its own connections, and locks no parent thread can hold."""
        super()._after_fork_in_child()
        self._schema_lock = threading.Lock()
        for cache in (self._apps, self._vsns, self._environments, self._processes, self._traces):
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
            rows = [_event_row(e, p, t) for e, p, t in zip(events, owners, traces, strict=True)]
            with self._begin() as conn:
                ids = self._insert_event_rows(conn, rows)
                data_rows = [
                    {"event_id": event_id, "key": item.key, "val": item.val}
                    for event_id, data in zip(ids, datas, strict=True)
                    for item in data
                ]
                if data_rows:
                    conn.execute(_INSERT_DATA, data_rows)
        return [
            EventRecord(
                id=event_id,
                when_ts=row["when_ts"],
                process=owner,
                data=data,
                stacktrace=trace,
                exc_type=row["exc_type"],
                exc_message=row["exc_message"],
                digest=row["digest"],
            )
            for event_id, row, owner, data, trace in zip(ids, rows, owners, datas, traces, strict=True)
        ]

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
                process_id = _new_id(conn.execute(_INSERT_PROCESS, values))
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
        self._ensure_schema()
        with self._lock, self._checkout() as conn:
            yield conn

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
            # Known only once connected: MariaDB >= 10.5 has RETURNING, MySQL none.
            dialect = self._engine.dialect
            self._returning_many = bool(dialect.insert_executemany_returning_sort_by_parameter_order)
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
                        found = _new_id(conn.execute(sa.insert(table).values(values)))
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
                    trace_id = _new_id(conn.execute(_INSERT_TRACE, {"digest": trace.digest}))
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

    def _insert_event_rows(self, conn: sa.Connection, rows: list[dict[str, Any]]) -> list[int]:
        if len(rows) == 1:
            return [_new_id(conn.execute(_INSERT_EVENT, rows[0]))]
        if self._sqlite:
            # SQLAlchemy cannot batch an ordered INSERT .. RETURNING on SQLite (it sends
            # one statement per row). A plain executemany is one driver call, and since
            # the transaction holds SQLite's only write lock, each new rowid is the
            # previous maximum plus one: the batch's ids are consecutive, ending at
            # last_insert_rowid().
            conn.execute(_INSERT_EVENT, rows)
            last = int(conn.exec_driver_sql("SELECT last_insert_rowid()").scalar_one())
            return list(range(last - len(rows) + 1, last + 1))
        if self._returning_many:
            # "insertmanyvalues": few multi-row INSERT .. RETURNING statements, ids in our order.
            return [int(event_id) for event_id in conn.execute(_INSERT_EVENTS_RETURNING, rows).scalars()]
        # MySQL has no RETURNING: one statement per event, each telling its id.
        return [_new_id(conn.execute(_INSERT_EVENT, row)) for row in rows]

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
        rows = conn.execute(self._events_query(conditions)).all()
        data: dict[int, tuple[DataItem, ...]] = {}
        for chunk in _chunks([row.id for row in rows]):
            data.update(_load_data(conn, chunk))
        traces: dict[int, StacktraceRecord] = {}
        for chunk in _chunks(sorted({row.stacktrace_id for row in rows if row.stacktrace_id is not None})):
            traces.update(_select_traces(conn, stacktraces.c.id.in_(chunk)))
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

    def _load_processes(self, conn: sa.Connection, ids: Sequence[int]) -> dict[int, ProcessRecord]:
        found: dict[int, ProcessRecord] = {}
        wanted: list[int] = []
        for process_id in ids:
            cached = self._processes.get(process_id)
            if cached is None:
                wanted.append(process_id)
            else:
                found[process_id] = cached
        for chunk in _chunks(wanted):
            for row in conn.execute(_PROCESS_QUERY.where(processes.c.id.in_(chunk))):
                found[row.id] = self._processes.put(row.id, _process_record(row))
        return found


# -- rows and records ----------------------------------------------------------------------


def _clip(text: Any, limit: int) -> Any:
    """`text` cut to `limit` characters (None stays None): what the column can hold everywhere."""
    return text[:limit] if text is not None and len(text) > limit else text


def _clip_data(data: Iterable[tuple[str, str | None]]) -> tuple[DataItem, ...]:
    return tuple(DataItem(_clip(key, NAME_LENGTH), _clip(val, LONG_TEXT_LIMIT)) for key, val in data)


def _event_row(event: PendingEvent, owner: ProcessRecord, trace: StacktraceRecord | None) -> dict[str, Any]:
    return {
        "when_ts": float(event.when_ts),
        "process_id": owner.id,
        "digest": data_digest(event.data),
        "stacktrace_id": None if trace is None else trace.id,
        "exc_type": _clip(event.exc_type, NAME_LENGTH),
        "exc_message": _clip(event.exc_message, LONG_TEXT_LIMIT),
    }


def _frame_row(trace_id: int, frame: StackframeRecord) -> dict[str, Any]:
    return {
        "stacktrace_id": trace_id,
        "filename": frame.filename,
        "lineno": frame.lineno,
        "src": frame.src,
        "function": frame.function,
    }


def _new_id(result: sa.CursorResult[Any]) -> int:
    """The primary key the single-row INSERT of `result` generated."""
    key = result.inserted_primary_key
    if key is None or key[0] is None:
        raise StoreError("The database returned no id for a new row.")
    return int(key[0])


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
    for row in conn.execute(_TRACE_QUERY.where(condition)):
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
    for row in conn.execute(query):
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
