"""pycodewake 0.2 adapters behind code_wake's store contract.

An adapter written for pycodewake is a plain class (it need not subclass
`AbstractStore`) with the original's methods: ``insert_process(process)``
reading ``process.app.name``, ``process.app_vsn.vsn``,
``process.environment.name``, ``pid``, ``username``, ``fqdn``,
``exe_path``; ``insert_event(process, data, exc, inc_st, st_len, st_data,
..., sync)`` reading ``process.id``; ``get_*_by_id`` and
``get_events_by_data``. Its records are its own (often ORM objects).

`LegacyStore` wraps one so that `code_wake.Process`, the handler, the
processor and the queue use it like any store: events go down as the
original sent them (data as ``(key, value)`` string pairs, the stack trace as
``st_data``), and what comes back is read attribute by attribute into
code_wake's records. The analysis queries (``query_events``, ``prune``)
stay unavailable: the original had none.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

from .errors import StoreError
from .event import PendingEvent
from .records import (
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
from .store import HasProcessInfo, Store

__all__ = ["LEGACY_METHODS", "LegacyStore", "is_legacy_adapter"]

LEGACY_METHODS = ("insert_process", "insert_event", "get_process_by_id")
"""The methods that make an object a pycodewake adapter."""


def is_legacy_adapter(candidate: object) -> bool:
    """True for a pycodewake-style adapter (class or instance) that is not a code_wake `Store`."""
    if isinstance(candidate, Store) or (isinstance(candidate, type) and issubclass(candidate, Store)):
        return False
    return all(callable(getattr(candidate, name, None)) for name in LEGACY_METHODS)


class _Named(NamedTuple):
    """An app or environment before it is stored, as the original's ``NoStore`` records were."""

    name: str


class _Version(NamedTuple):
    """An app version before it is stored."""

    vsn: str


class _UnstoredProcess:
    """What a pycodewake adapter's ``insert_process`` reads: the process, not yet stored."""

    def __init__(self, info: ProcessInfo) -> None:
        self.pid = info.pid
        self.username = info.username
        self.fqdn = info.fqdn
        self.exe_path = info.exe_path
        self.run_ts = info.run_ts
        self.app = _Named(info.app_name)
        self.app_vsn = None if info.app_vsn is None else _Version(info.app_vsn)
        self.environment = None if info.env_name is None else _Named(info.env_name)


class _StoredProcess(NamedTuple):
    """What a pycodewake adapter's ``insert_event`` reads of its process: the stored id."""

    id: int


class LegacyStore(Store):
    """A pycodewake 0.2 adapter instance, used through code_wake's store contract."""

    def __init__(self, adapter: Any) -> None:
        super().__init__()
        self.adapter = adapter
        """The wrapped adapter, for what only it offers."""
        accepted = inspect.signature(adapter.insert_event).parameters
        # 0.2's abstract signature has no when_ts; adapters that take it keep the event's time.
        self._takes_when_ts = "when_ts" in accepted or any(
            p.kind is inspect.Parameter.VAR_KEYWORD for p in accepted.values()
        )

    def describe(self) -> str:
        return f"{type(self.adapter).__name__} (a pycodewake adapter)"

    # -- writes -------------------------------------------------------------------------------

    def insert_events(self, events: Sequence[PendingEvent]) -> list[EventRecord]:
        """Each event through the adapter's ``insert_event``, one at a time, as the original did."""
        return [self._insert_one(event) for event in events]

    def _insert_one(self, event: PendingEvent) -> EventRecord:
        owner = self.resolve_process(event.process)
        extra: dict[str, Any] = {"when_ts": event.when_ts} if self._takes_when_ts else {}
        st_data = None if event.frames is None else [[f.filename, f.lineno, f.src] for f in _resolved(event)]
        found = self._call(
            "insert_event",
            _StoredProcess(owner.id),
            list(event.data) or None,
            None,
            inc_st=st_data is not None,
            st_len=None,
            st_data=st_data,
            sync=True,
            **extra,
        )
        if found is None:
            raise StoreError(f"{self.describe()}: insert_event(..., sync=True) returned no event")
        return _event(found, owner, event)

    def insert_process(self, process: ProcessInfo | HasProcessInfo) -> ProcessRecord:
        info = process if isinstance(process, ProcessInfo) else process.info
        return _process(self._call("insert_process", _UnstoredProcess(info)))

    def insert_app(self, name: str, vsn: str | None = None) -> AppRecord:
        return _app(self._call("insert_app", name, vsn))

    def insert_app_vsn(self, app_id: int, vsn: str) -> AppVsnRecord:
        found = _app_vsn(self._call("insert_app_vsn", app_id, vsn))
        if found is None:
            raise StoreError(f"{self.describe()}: insert_app_vsn() returned nothing")
        return found

    # -- reads ---------------------------------------------------------------------------------

    def get_process_by_id(self, id: int) -> ProcessRecord | None:
        found = self._call("get_process_by_id", id)
        return None if found is None else _process(found)

    def get_processes(
        self, app_id: int | None = None, from_ts: float | None = None, to_ts: float | None = None
    ) -> list[ProcessRecord]:
        return [_process(p) for p in self._call("get_processes", app_id, from_ts, to_ts)]

    def get_app_by_id(self, id: int) -> AppRecord | None:
        found = self._call("get_app_by_id", id)
        return None if found is None else _app(found)

    def get_app_by_name(self, name: str) -> AppRecord | None:
        found = self._call("get_app_by_name", name)
        return None if found is None else _app(found)

    def get_app_vsn_by_id(self, id: int) -> AppVsnRecord | None:
        return _app_vsn(self._call("get_app_vsn_by_id", id))

    def get_environment_by_id(self, id: int) -> EnvironmentRecord | None:
        return _environment(self._call("get_environment_by_id", id))

    def get_environment_by_name(self, name: str) -> EnvironmentRecord | None:
        return _environment(self._call("get_environment_by_name", name))

    def get_event_by_id(self, id: int) -> EventRecord | None:
        found = self._call("get_event_by_id", id)
        return None if found is None else _event(found)

    def get_events_by_data(
        self, where: Iterable[tuple[str, str | None]], process_id: int | None = None
    ) -> list[EventRecord]:
        # The 0.2 abstract signature has no process_id: pass it only when asked for.
        args = (tuple(where),) if process_id is None else (tuple(where), process_id)
        return [_event(e) for e in self._call("get_events_by_data", *args) or ()]

    def close(self) -> None:
        closer = getattr(self.adapter, "close", None)
        if callable(closer):
            closer()

    def _call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        """The adapter's `method`; a missing one, or its failure, as a `StoreError` that names it."""
        function = getattr(self.adapter, method, None)
        if not callable(function):
            raise StoreError(f"{self.describe()} has no {method}(), which this call needs")
        try:
            return function(*args, **kwargs)
        except StoreError:
            raise
        except Exception as exc:  # an adapter may raise anything: the boundary translates it
            raise StoreError(f"{self.describe()}.{method}() failed: {type(exc).__name__}: {exc}") from exc


# -- the adapter's records, read into code_wake's ----------------------------------------------


def _resolved(event: PendingEvent) -> Iterable[Any]:
    from .stack_trace import resolve_frames  # the trace module is only needed for events with frames

    return resolve_frames(event.frames or ()).frames


def _app(found: Any) -> AppRecord:
    return AppRecord(int(found.id), str(found.name))


def _app_vsn(found: Any) -> AppVsnRecord | None:
    return None if found is None else AppVsnRecord(int(found.id), str(found.vsn), _app(found.app))


def _environment(found: Any) -> EnvironmentRecord | None:
    return None if found is None else EnvironmentRecord(int(found.id), str(found.name))


def _process(found: Any) -> ProcessRecord:
    return ProcessRecord(
        id=int(found.id),
        pid=found.pid,
        username=found.username,
        fqdn=found.fqdn,
        exe_path=found.exe_path,
        run_ts=float(getattr(found, "run_ts", 0.0) or 0.0),
        app=_app(found.app),
        app_vsn=_app_vsn(found.app_vsn),
        environment=_environment(found.environment),
    )


def _trace(found: Any) -> StacktraceRecord | None:
    if found is None:
        return None
    frames = tuple(
        StackframeRecord(str(f.filename), int(f.lineno), f.src, getattr(f, "function", None))
        for f in found.stackframes
    )
    return StacktraceRecord(int(found.id), bytes(found.digest), frames)


def _event(found: Any, owner: ProcessRecord | None = None, sent: PendingEvent | None = None) -> EventRecord:
    """The adapter's event as an `EventRecord`; what the original's records lack comes from `sent`."""
    process = owner if owner is not None else _process(found.process)
    data = tuple(DataItem(str(d.key), d.val) for d in getattr(found, "data", ()) or ())
    return EventRecord(
        id=int(found.id),
        when_ts=float(found.when_ts),
        process=process,
        data=data,
        stacktrace=_trace(getattr(found, "stacktrace", None)),
        exc_type=getattr(found, "exc_type", None) or (sent.exc_type if sent is not None else None),
        exc_message=getattr(found, "exc_message", None) or (sent.exc_message if sent is not None else None),
        digest=getattr(found, "digest", None),
        exc_chain=getattr(found, "exc_chain", None) or (sent.exc_chain if sent is not None else ()),
    )
