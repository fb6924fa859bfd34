"""An in-memory store: the reference adapter, for tests that need no database.

It keeps everything in Python lists and dicts, behind one lock, and passes
the same `StoreContract` as the SQL adapter.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from typing import TypeVar

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
from code_wake.stack_trace import RawFrame, resolve_frames
from code_wake.store import HasProcessInfo, Store, process_info_of

__all__ = ["MemoryStore"]

_R = TypeVar("_R")


class MemoryStore(Store):
    """A complete store that lives in this process's memory."""

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.RLock()
        self._apps: list[AppRecord] = []
        self._vsns: list[AppVsnRecord] = []
        self._environments: list[EnvironmentRecord] = []
        self._processes: list[ProcessRecord] = []
        self._events: list[EventRecord] = []
        self._traces: dict[bytes, StacktraceRecord] = {}
        self.closed = False

    # -- writes --------------------------------------------------------------------

    def insert_events(self, events: Sequence[PendingEvent]) -> list[EventRecord]:
        """Store the batch; all or nothing, like a transaction."""
        processes = [self.resolve_process(event.process) for event in events]
        with self._lock:
            first_id = len(self._events) + 1
            records = [
                self._event_record(first_id + i, e, p)
                for i, (e, p) in enumerate(zip(events, processes, strict=True))
            ]
            self._events.extend(records)
        return records

    def _event_record(self, event_id: int, event: PendingEvent, process: ProcessRecord) -> EventRecord:
        return EventRecord(
            id=event_id,
            when_ts=event.when_ts,
            process=process,
            data=tuple(DataItem(k, v) for k, v in event.data),
            stacktrace=None if event.frames is None else self._trace(event.frames),
            exc_type=event.exc_type,
            exc_message=event.exc_message,
            digest=data_digest(event.data),
        )

    def _trace(self, frames: Sequence[RawFrame]) -> StacktraceRecord:
        resolved = resolve_frames(frames)
        known = self._traces.get(resolved.digest)
        if known is None:
            stackframes = tuple(
                StackframeRecord(f.filename, f.lineno, f.src, f.function) for f in reversed(resolved.frames)
            )
            known = StacktraceRecord(len(self._traces) + 1, resolved.digest, stackframes)
            self._traces[resolved.digest] = known
        return known

    def insert_process(self, process: ProcessInfo | HasProcessInfo) -> ProcessRecord:
        """Register a process, creating its app, version and environment as needed."""
        info = process_info_of(process)
        with self._lock:
            app = self.insert_app(info.app_name)
            vsn = None if info.app_vsn is None else self.insert_app_vsn(app.id, info.app_vsn)
            env = None if info.env_name is None else self._get_or_create_environment(info.env_name)
            record = ProcessRecord(
                id=len(self._processes) + 1,
                pid=info.pid,
                username=info.username,
                fqdn=info.fqdn,
                exe_path=info.exe_path,
                run_ts=info.run_ts,
                app=app,
                app_vsn=vsn,
                environment=env,
            )
            self._processes.append(record)
            return record

    def insert_app(self, name: str, vsn: str | None = None) -> AppRecord:
        """Get or create an app (and its version)."""
        with self._lock:
            app = self.get_app_by_name(name)
            if app is None:
                app = AppRecord(len(self._apps) + 1, name)
                self._apps.append(app)
            if vsn is not None:
                self.insert_app_vsn(app.id, vsn)
            return app

    def insert_app_vsn(self, app_id: int, vsn: str) -> AppVsnRecord:
        """Get or create a version of one app."""
        with self._lock:
            for known in self._vsns:
                if known.app.id == app_id and known.vsn == vsn:
                    return known
            app = self.get_app_by_id(app_id)
            if app is None:
                raise StoreError(f"no app with id {app_id} in this store")
            record = AppVsnRecord(len(self._vsns) + 1, vsn, app)
            self._vsns.append(record)
            return record

    def _get_or_create_environment(self, name: str) -> EnvironmentRecord:
        known = self.get_environment_by_name(name)
        if known is None:
            known = EnvironmentRecord(len(self._environments) + 1, name)
            self._environments.append(known)
        return known

    # -- reads ---------------------------------------------------------------------

    def get_process_by_id(self, id: int) -> ProcessRecord | None:
        """The process with this id, or None."""
        return _by_id(self._processes, id)

    def get_processes(
        self, app_id: int | None = None, from_ts: float | None = None, to_ts: float | None = None
    ) -> list[ProcessRecord]:
        """Processes by start time, `from_ts` inclusive, `to_ts` exclusive."""
        with self._lock:
            found = [
                p
                for p in self._processes
                if (app_id is None or p.app.id == app_id)
                and (from_ts is None or p.run_ts >= from_ts)
                and (to_ts is None or p.run_ts < to_ts)
            ]
        return sorted(found, key=lambda p: (p.run_ts, p.id))

    def get_app_by_id(self, id: int) -> AppRecord | None:
        """The app with this id, or None."""
        return _by_id(self._apps, id)

    def get_app_by_name(self, name: str) -> AppRecord | None:
        """The app with this name, or None."""
        with self._lock:
            return next((a for a in self._apps if a.name == name), None)

    def get_app_vsn_by_id(self, id: int) -> AppVsnRecord | None:
        """The app version with this id, or None."""
        return _by_id(self._vsns, id)

    def get_environment_by_id(self, id: int) -> EnvironmentRecord | None:
        """The environment with this id, or None."""
        return _by_id(self._environments, id)

    def get_environment_by_name(self, name: str) -> EnvironmentRecord | None:
        """The environment with this name, or None."""
        with self._lock:
            return next((e for e in self._environments if e.name == name), None)

    def get_event_by_id(self, id: int) -> EventRecord | None:
        """The event with this id, or None."""
        return _by_id(self._events, id)

    def get_events_by_data(
        self, where: Iterable[tuple[str, str | None]], process_id: int | None = None
    ) -> list[EventRecord]:
        """Events carrying every ``(key, value)`` term, oldest first."""
        terms = [(str(k), v) for k, v in where]
        with self._lock:
            found = [
                e
                for e in self._events
                if (process_id is None or e.process.id == process_id)
                and all(DataItem(k, v) in e.data for k, v in terms)
            ]
        return sorted(found, key=lambda e: (e.when_ts, e.id))

    def close(self) -> None:
        """Nothing to release; remembered so tests can check who closed what."""
        self.closed = True

    @property
    def events(self) -> list[EventRecord]:
        """Every stored event, oldest first (a copy)."""
        with self._lock:
            return list(self._events)


def _by_id(records: Sequence[_R], id: int) -> _R | None:
    # Ids are 1-based positions: records are never deleted from a MemoryStore.
    return records[id - 1] if 0 < id <= len(records) else None
