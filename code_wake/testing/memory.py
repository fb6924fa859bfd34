"""An in-memory store: the reference adapter, for tests that need no database.

It keeps everything in Python lists and dicts, behind one lock, and passes
the same `StoreContract` as the SQL adapter. Its trace groups and daily
counts are the base class's, derived from `query_events` by the reference
functions of `code_wake.query`.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterable, Iterator, Sequence
from typing import TypeVar

from code_wake.errors import StoreError
from code_wake.event import PendingEvent, data_digest
from code_wake.query import EventFilter, PruneReport, event_matches
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

__all__ = ["MemoryStore", "newest_first"]

_R = TypeVar("_R")


class MemoryStore(Store):
    """A complete store that lives in this process's memory."""

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.RLock()
        self._apps: list[AppRecord] = []
        self._vsns: list[AppVsnRecord] = []
        self._environments: list[EnvironmentRecord] = []
        # Events, processes and traces can be pruned: kept by id, ids from counters (never reused).
        self._processes: dict[int, ProcessRecord] = {}
        self._events: dict[int, EventRecord] = {}
        self._traces: dict[bytes, StacktraceRecord] = {}
        self._event_ids = itertools.count(1)
        self._process_ids = itertools.count(1)
        self._trace_ids = itertools.count(1)
        self.closed = False

    # -- writes --------------------------------------------------------------------

    def insert_events(self, events: Sequence[PendingEvent]) -> list[EventRecord]:
        """Store the batch; all or nothing, like a transaction."""
        processes = [self.resolve_process(event.process) for event in events]
        with self._lock:
            for process in processes:
                # A process pruned while it still runs is written back when it logs again.
                self._processes.setdefault(process.id, process)
            records = [
                self._event_record(next(self._event_ids), e, p)
                for e, p in zip(events, processes, strict=True)
            ]
            self._events.update((record.id, record) for record in records)
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
            exc_chain=event.exc_chain,
        )

    def _trace(self, frames: Sequence[RawFrame]) -> StacktraceRecord:
        resolved = resolve_frames(frames)
        known = self._traces.get(resolved.digest)
        if known is None:
            stackframes = tuple(
                StackframeRecord(f.filename, f.lineno, f.src, f.function) for f in reversed(resolved.frames)
            )
            known = StacktraceRecord(next(self._trace_ids), resolved.digest, stackframes)
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
                id=next(self._process_ids),
                pid=info.pid,
                username=info.username,
                fqdn=info.fqdn,
                exe_path=info.exe_path,
                run_ts=info.run_ts,
                app=app,
                app_vsn=vsn,
                environment=env,
            )
            self._processes[record.id] = record
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
        return self._processes.get(id)

    def get_processes(
        self, app_id: int | None = None, from_ts: float | None = None, to_ts: float | None = None
    ) -> list[ProcessRecord]:
        """Processes by start time, `from_ts` inclusive, `to_ts` exclusive."""
        with self._lock:
            found = [
                p
                for p in self._processes.values()
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
        return self._events.get(id)

    def get_events_by_data(
        self, where: Iterable[tuple[str, str | None]], process_id: int | None = None
    ) -> list[EventRecord]:
        """Events carrying every ``(key, value)`` term, oldest first."""
        terms = [(str(k), v) for k, v in where]
        with self._lock:
            found = [
                e
                for e in self._events.values()
                if (process_id is None or e.process.id == process_id)
                and all(DataItem(k, v) in e.data for k, v in terms)
            ]
        return sorted(found, key=lambda e: (e.when_ts, e.id))

    # -- queries ---------------------------------------------------------------------

    def query_events(self, event_filter: EventFilter | None = None) -> Iterator[EventRecord]:
        """Events matching the filter, newest first."""
        f = event_filter or EventFilter()
        with self._lock:
            found = sorted((e for e in self._events.values() if event_matches(f, e)), key=newest_first)
        return iter(found if f.limit is None else found[: f.limit])

    def prune(self, before_ts: float, *, dry_run: bool = False, batch_size: int = 5000) -> PruneReport:
        """Delete events older than `before_ts`, then unused traces and processes (see `Store.prune`)."""
        with self._lock:
            old = [e for e in self._events.values() if e.when_ts < before_ts]
            kept = [e for e in self._events.values() if e.when_ts >= before_ts]
            used_traces = {e.stacktrace.id for e in kept if e.stacktrace is not None}
            owners = {e.process.id for e in kept}
            # The SQL store keeps its newest trace and process, used or not (SQLite would
            # hand their ids out again); the reference store does too, so both report alike.
            newest_trace = max((t.id for t in self._traces.values()), default=0)
            newest_process = max(self._processes, default=0)
            used_traces.add(newest_trace)
            traces = [t for t in self._traces.values() if t.id not in used_traces]
            processes = [
                p
                for p in self._processes.values()
                if p.run_ts < before_ts and p.id not in owners and p.id != newest_process
            ]
            report = PruneReport(
                before_ts=before_ts,
                dry_run=dry_run,
                events=len(old),
                data=sum(len(e.data) for e in old),
                stacktraces=len(traces),
                stackframes=sum(len(t.stackframes) for t in traces),
                processes=len(processes),
            )
            if not dry_run:
                for event in old:
                    del self._events[event.id]
                for trace in traces:
                    del self._traces[trace.digest]
                for process in processes:
                    del self._processes[process.id]
        return report

    def close(self) -> None:
        """Nothing to release; remembered so tests can check who closed what."""
        self.closed = True

    @property
    def events(self) -> list[EventRecord]:
        """Every stored event, oldest first (a copy)."""
        with self._lock:
            return sorted(self._events.values(), key=lambda e: e.id)


def newest_first(event: EventRecord) -> tuple[float, int]:
    """Sort key of the order `Store.query_events` answers in: newest first, ties by the higher id."""
    return (-event.when_ts, -event.id)


def _by_id(records: Sequence[_R], id: int) -> _R | None:
    # Ids are 1-based positions: records are never deleted from a MemoryStore.
    return records[id - 1] if 0 < id <= len(records) else None
