"""Apps, versions, environments and processes: got or created by name, read by name or id, cached.

Their rows never change once written, and apps, versions and environments
are never deleted, so each is cached by name (for writes and filters) and
by id (for reading), in caches named ``<kind>_by_<key>``. Processes are
cached by id; a prune removes some, and the store then forgets them
(`Lookups.forget_processes`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

import sqlalchemy as sa

from code_wake.query import EventFilter, ProcessFilter
from code_wake.records import AppRecord, AppVsnRecord, EnvironmentRecord, ProcessInfo, ProcessRecord

from ._batch import new_id
from ._cache import BoundedCache
from ._database import Database, chunks
from ._filters import Scope, exactly
from ._records import (
    APP_VSN_QUERY,
    PROCESS_QUERY,
    Row,
    app_record,
    app_vsn_record,
    clip,
    environment_record,
    process_record,
    process_values,
)
from .schema import NAME_LENGTH, TEXT_LIMIT, app_vsns, apps, environments, processes

__all__ = ["Lookups", "Names"]

_T = TypeVar("_T")
_N = TypeVar("_N", AppRecord, EnvironmentRecord)

_INSERT_PROCESS = sa.insert(processes)
_APPS_QUERY = sa.select(apps)
_ENVIRONMENTS_QUERY = sa.select(environments)


@dataclasses.dataclass
class Names:
    """App, version and environment records by id."""

    apps: dict[int, AppRecord] = dataclasses.field(default_factory=dict)
    vsns: dict[int, AppVsnRecord] = dataclasses.field(default_factory=dict)
    envs: dict[int, EnvironmentRecord] = dataclasses.field(default_factory=dict)


class Lookups:
    """The app, version, environment and process rows of one store's database, and their caches."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._apps_by_name: BoundedCache[str, AppRecord] = BoundedCache()
        self._apps_by_id: BoundedCache[int, AppRecord] = BoundedCache()
        self._vsns_by_name: BoundedCache[tuple[int, str], AppVsnRecord] = BoundedCache()
        """Keyed by app id and version."""
        self._vsns_by_id: BoundedCache[int, AppVsnRecord] = BoundedCache()
        self._envs_by_name: BoundedCache[str, EnvironmentRecord] = BoundedCache()
        self._envs_by_id: BoundedCache[int, EnvironmentRecord] = BoundedCache()
        self._processes_by_id: BoundedCache[int, ProcessRecord] = BoundedCache()

    def after_fork(self) -> None:
        """In a forked child: caches with locks no parent thread can hold."""
        for cache in (
            self._apps_by_name,
            self._apps_by_id,
            self._vsns_by_name,
            self._vsns_by_id,
            self._envs_by_name,
            self._envs_by_id,
            self._processes_by_id,
        ):
            cache.after_fork()

    def forget_processes(self) -> None:
        """Forget the cached processes (after a prune deleted some)."""
        self._processes_by_id.clear()

    # -- get or create -------------------------------------------------------------------

    def get_or_create_app(self, name: str) -> AppRecord:
        """The app `name`, stored if new."""
        name = clip(name, NAME_LENGTH)
        cached = self._apps_by_name.get(name)
        if cached is not None:
            return cached
        return self._apps_by_name.put(name, AppRecord(self._get_or_create(apps, {"name": name}), name))

    def get_or_create_vsn(self, app: AppRecord, vsn: str) -> AppVsnRecord:
        """Version `vsn` of `app`, stored if new."""
        vsn = clip(vsn, NAME_LENGTH)
        cached = self._vsns_by_name.get((app.id, vsn))
        if cached is not None:
            return cached
        vsn_id = self._get_or_create(app_vsns, {"app_id": app.id, "vsn": vsn})
        return self._vsns_by_name.put((app.id, vsn), AppVsnRecord(vsn_id, vsn, app))

    def get_or_create_env(self, name: str) -> EnvironmentRecord:
        """The environment `name`, stored if new."""
        name = clip(name, NAME_LENGTH)
        cached = self._envs_by_name.get(name)
        if cached is not None:
            return cached
        env_id = self._get_or_create(environments, {"name": name})
        return self._envs_by_name.put(name, EnvironmentRecord(env_id, name))

    def _get_or_create(self, table: sa.Table, values: dict[str, Any]) -> int:
        """The id of the row holding `values`, inserting it if missing; safe against races."""
        match = sa.and_(*(table.c[name] == value for name, value in values.items()))
        query = sa.select(table.c.id).where(match)

        def get_or_insert(conn: sa.Connection) -> int:
            found = conn.execute(query).scalar()
            if found is None:
                found = new_id(conn.execute(sa.insert(table).values(values)))
            return int(found)

        return self._db.retrying(get_or_insert)

    def register_process(self, info: ProcessInfo) -> ProcessRecord:
        """Store a new process, creating its app, app version and environment as needed."""
        environment = self.get_or_create_env(info.env_name) if info.env_name else None
        app = self.get_or_create_app(info.app_name)
        app_vsn = self.get_or_create_vsn(app, info.app_vsn) if info.app_vsn else None
        record = ProcessRecord(
            id=0,
            pid=info.pid,
            username=clip(info.username, NAME_LENGTH),
            fqdn=clip(info.fqdn, NAME_LENGTH),
            exe_path=clip(info.exe_path, TEXT_LIMIT),
            run_ts=float(info.run_ts),
            app=app,
            app_vsn=app_vsn,
            environment=environment,
        )
        with self._db.begin() as conn:
            process_id = new_id(conn.execute(_INSERT_PROCESS, process_values(record)))
        return self._processes_by_id.put(process_id, dataclasses.replace(record, id=process_id))

    # -- reads by name or id -------------------------------------------------------------

    def app_with_id(self, id: int) -> AppRecord | None:
        """The app with this id, or None."""
        return self._first(sa.select(apps).where(apps.c.id == id), app_record)

    def app_named(self, name: str) -> AppRecord | None:
        """The app with this name, or None."""
        return self._first(sa.select(apps).where(apps.c.name == clip(name, NAME_LENGTH)), app_record)

    def vsn_with_id(self, id: int) -> AppVsnRecord | None:
        """The app version with this id, or None."""
        return self._first(APP_VSN_QUERY.where(app_vsns.c.id == id), app_vsn_record)

    def env_with_id(self, id: int) -> EnvironmentRecord | None:
        """The environment with this id, or None."""
        return self._first(sa.select(environments).where(environments.c.id == id), environment_record)

    def env_named(self, name: str) -> EnvironmentRecord | None:
        """The environment with this name, or None."""
        query = sa.select(environments).where(environments.c.name == clip(name, NAME_LENGTH))
        return self._first(query, environment_record)

    def _first(self, query: sa.Select[Any], convert: Callable[[Row], _T]) -> _T | None:
        with self._db.connect() as conn:
            row = conn.execute(query).first()
        return None if row is None else convert(row)

    def process_like(self, info: ProcessInfo) -> ProcessRecord | None:
        """The stored process `info` describes (same pid, start time, host, user, program, app), or None."""
        query = (
            sa.select(processes.c.id)
            .where(processes.c.run_ts == float(info.run_ts), processes.c.pid == info.pid)
            .order_by(processes.c.id)
        )
        with self._db.connect() as conn:
            ids = list(conn.scalars(query))
        wanted = (
            clip(info.username, NAME_LENGTH),
            clip(info.fqdn, NAME_LENGTH),
            clip(info.exe_path, TEXT_LIMIT),
            clip(info.app_name, NAME_LENGTH),
        )
        for found in filter(None, map(self.process_with_id, ids)):
            if (found.username, found.fqdn, found.exe_path, found.app.name) == wanted:
                return found
        return None

    def process_with_id(self, id: int) -> ProcessRecord | None:
        """The process with this id, or None."""
        cached = self._processes_by_id.get(id)
        if cached is not None:
            return cached
        with self._db.connect() as conn:
            return self.processes_with_ids(conn, [id]).get(id)

    def processes_with_ids(self, conn: sa.Connection, ids: Iterable[int]) -> dict[int, ProcessRecord]:
        """The processes with these ids (with app, version and environment), cached by id."""
        return self._processes_by_id.get_many(
            ids, _loader(conn, PROCESS_QUERY, processes.c.id, process_record)
        )

    def processes_started(
        self, app_id: int | None, from_ts: float | None, to_ts: float | None
    ) -> list[ProcessRecord]:
        """Processes by start time (`from_ts` inclusive, `to_ts` exclusive), oldest first."""
        query = PROCESS_QUERY.order_by(processes.c.run_ts, processes.c.id)
        if app_id is not None:
            query = query.where(processes.c.app_id == app_id)
        if from_ts is not None:
            query = query.where(processes.c.run_ts >= from_ts)
        if to_ts is not None:
            query = query.where(processes.c.run_ts < to_ts)
        with self._db.connect() as conn:
            rows = conn.execute(query).all()
        return self.process_records(rows)

    def process_records(self, rows: Iterable[Row]) -> list[ProcessRecord]:
        """The records of `PROCESS_QUERY` rows, cached by id."""
        return [self._processes_by_id.put(row.id, process_record(row)) for row in rows]

    def names(
        self, conn: sa.Connection, app_ids: Iterable[int], vsn_ids: Iterable[int], env_ids: Iterable[int]
    ) -> Names:
        """The app, version and environment records of these ids: cached, else at most three queries."""
        return Names(
            apps=self._apps_by_id.get_many(app_ids, _loader(conn, _APPS_QUERY, apps.c.id, app_record)),
            vsns=self._vsns_by_id.get_many(
                vsn_ids, _loader(conn, APP_VSN_QUERY, app_vsns.c.id, app_vsn_record)
            ),
            envs=self._envs_by_id.get_many(
                env_ids, _loader(conn, _ENVIRONMENTS_QUERY, environments.c.id, environment_record)
            ),
        )

    # -- a filter's names as ids ---------------------------------------------------------

    def scope(self, conn: sa.Connection, f: EventFilter | ProcessFilter) -> Scope | None:
        """The filter's app, version and environment names as ids; None when one does not exist.

        Names once found are cached (apps and environments are never deleted).
        """
        app_id = None
        if f.app is not None:
            app = self._known(conn, self._apps_by_name, apps, clip(f.app, NAME_LENGTH), app_record)
            if app is None:
                return None
            app_id = app.id
        vsn_ids = None
        if f.vsn is not None:
            vsn_ids = self._vsn_ids_named(conn, clip(f.vsn, NAME_LENGTH), app_id)
            if not vsn_ids:
                return None
        env_id = None
        if f.env is not None:
            name = clip(f.env, NAME_LENGTH)
            env = self._known(conn, self._envs_by_name, environments, name, environment_record)
            if env is None:
                return None
            env_id = env.id
        return Scope(app_id, vsn_ids, env_id)

    def _vsn_ids_named(self, conn: sa.Connection, vsn: str, app_id: int | None) -> tuple[int, ...]:
        """The ids of version `vsn` of the app (cached), or of every app that has one."""
        cached = None if app_id is None else self._vsns_by_name.get((app_id, vsn))
        if cached is not None:
            return (cached.id,)
        query = APP_VSN_QUERY.where(*exactly(self._db.dialect, app_vsns.c.vsn, vsn))
        if app_id is not None:
            query = query.where(app_vsns.c.app_id == app_id)
        records = [app_vsn_record(row) for row in conn.execute(query).all()]
        for record in records:
            self._vsns_by_name.put((record.app.id, record.vsn), record)
        return tuple(sorted(record.id for record in records))

    def _known(
        self,
        conn: sa.Connection,
        cache: BoundedCache[str, _N],
        table: sa.Table,
        name: str,
        convert: Callable[[Row], _N],
    ) -> _N | None:
        """The app or environment called `name`, from the cache or the table; never created."""
        cached = cache.get(name)
        if cached is not None:
            return cached
        row = conn.execute(sa.select(table).where(*exactly(self._db.dialect, table.c.name, name))).first()
        return None if row is None else cache.put(name, convert(row))


def _loader(
    conn: sa.Connection, query: sa.Select[Any], id_column: sa.Column[Any], convert: Callable[[Row], _T]
) -> Callable[[list[int]], Iterator[tuple[int, _T]]]:
    """Loads the records of some ids for `BoundedCache.get_many`: `query`'s rows, a chunk of ids at a time."""

    def load(ids: list[int]) -> Iterator[tuple[int, _T]]:
        for chunk in chunks(sorted(ids)):
            for row in conn.execute(query.where(id_column.in_(chunk))).all():
                yield row.id, convert(row)

    return load
