"""The Process: this program's run, the singleton every log call goes through."""

from __future__ import annotations

import getpass
import os
import socket
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import replace
from typing import ClassVar

from . import _crash_hooks, _wiring
from ._fork import ForkPhase, at_fork_in_child
from ._legacy_store import LEGACY_METHODS, LegacyStore, is_legacy_adapter
from ._report import report_problem
from .config import Config
from .errors import CodeWakeError, ConfigError
from .event import BeforeRecord, EventData, EventPolicy
from .records import AppRecord, AppVsnRecord, EnvironmentRecord, EventRecord, ProcessInfo, ProcessRecord
from .store import Store

__all__ = ["Process"]


class Process:
    """The running process; a singleton.

    The first call configures it (arguments not given come from the
    configuration); later calls return the same object, and raise
    `ConfigError` when their arguments contradict it. `Process.reset()`
    drops it. Registration with the store happens on first use, or at once
    with `init()`. After ``os.fork()`` the child registers as a new process.
    """

    _instance: ClassVar[Process | None] = None
    _instance_lock: ClassVar[threading.Lock] = threading.Lock()

    def __new__(
        cls,
        app_name: str | None = None,
        app_vsn: str | None = None,
        exe_path: str | None = None,
        env_name: str | None = None,
        st_for_non_exceptions: bool | None = None,
        st_from_exceptions: bool | None = None,
        store: Store | None = None,
    ) -> Process:
        with cls._instance_lock:
            live = cls._instance
            if live is not None:
                live._check_consistent(
                    {
                        "app_name": app_name,
                        "app_vsn": app_vsn,
                        "exe_path": exe_path,
                        "env_name": env_name,
                        "st_for_non_exceptions": st_for_non_exceptions,
                        "st_from_exceptions": st_from_exceptions,
                        "store": store,
                    }
                )
                return live
            live = super().__new__(cls)
            live._configure(
                app_name, app_vsn, exe_path, env_name, st_for_non_exceptions, st_from_exceptions, store
            )
            cls._instance = live
            return live

    def __init__(self, *args: object, **kwargs: object) -> None:
        """Everything happens in ``__new__``, once per singleton."""

    @classmethod
    def current(cls) -> Process | None:
        """The live process, or None if none is configured yet (never creates one)."""
        return cls._instance

    @classmethod
    def singleton_detach_ref(cls) -> None:
        """pycodewake's name for `reset`: forget the singleton, so the next call configures anew."""
        cls.reset()

    @classmethod
    def reset(cls) -> None:
        """Drop the singleton; the next ``Process(...)`` configures a new one.

        The old instance's store is not closed: it may be shared, and whoever
        made it decides.
        """
        with cls._instance_lock:
            cls._instance = None
        # Handlers made before the reset are not the new configuration's.
        _wiring.forget()

    # -- configuration ---------------------------------------------------------

    def _configure(
        self,
        app_name: str | None,
        app_vsn: str | None,
        exe_path: str | None,
        env_name: str | None,
        st_for_non_exceptions: bool | None,
        st_from_exceptions: bool | None,
        store: Store | None,
    ) -> None:
        config = Config.load()
        self._exe_path = exe_path or (sys.argv[0] if sys.argv and sys.argv[0] else "<unknown>")
        self._app_name = app_name or config.app_name or self._exe_path
        self._app_vsn = app_vsn or config.app_vsn
        self._env_name = env_name or config.env_name
        self.st_for_non_exceptions = _pick(st_for_non_exceptions, config.st_for_non_exceptions)
        self.st_from_exceptions = _pick(st_from_exceptions, config.st_from_exceptions)
        self._policy: EventPolicy = config.event_policy()
        self._store = _as_store(store) if store is not None else config.build_store()
        self._store_given: object = store if store is not None else self._store
        self._username = _username()
        self._fqdn = _fqdn()
        self._register_lock = threading.Lock()
        self._start_run()
        # Whether uncaught exceptions are recorded (crashes.record; docs/crashes.md).
        self.record_crashes = config.record_crashes
        if self.record_crashes:
            _crash_hooks.arm()

    def _start_run(self) -> None:
        """A new run: at start, and again in a forked child."""
        self._info = ProcessInfo(
            pid=os.getpid(),
            username=self._username,
            fqdn=self._fqdn,
            exe_path=self._exe_path,
            run_ts=time.time(),
            app_name=self._app_name,
            app_vsn=self._app_vsn,
            env_name=self._env_name,
        )
        self._record: ProcessRecord | None = None
        # The lock may have been held by another thread of the parent at fork.
        self._register_lock = threading.Lock()

    def _check_consistent(self, given: Mapping[str, object]) -> None:
        live = {
            "app_name": self._app_name,
            "app_vsn": self._app_vsn,
            "exe_path": self._exe_path,
            "env_name": self._env_name,
            "st_for_non_exceptions": self.st_for_non_exceptions,
            "st_from_exceptions": self.st_from_exceptions,
            "store": self._store_given,
        }
        for name, value in given.items():
            if value is not None and value is not live[name] and value != live[name]:
                shown = "another store" if name == "store" else repr(value)
                current = "a different store" if name == "store" else repr(live[name])
                raise ConfigError(
                    f"Process() is already configured with {name}={current}; this call asks for "
                    f"{name}={shown}. Call Process.reset() first to reconfigure."
                )

    # -- identity and registration ----------------------------------------------

    @property
    def info(self) -> ProcessInfo:
        """Who this process is (pid, user, host, app, version, environment, start time)."""
        return self._info

    def init(self) -> Process:
        """Register with the store now rather than on first use; returns self."""
        self._registered()
        return self

    def _registered(self) -> ProcessRecord:
        record = self._record
        if record is None:
            with self._register_lock:
                record = self._record
                if record is None:
                    record = self._store.resolve_process(self._info)
                    self._record = record
        return record

    @property
    def id(self) -> int:
        """The stored process id (registers on first use)."""
        return self._registered().id

    @property
    def store(self) -> Store:
        """The store events go to."""
        return self._store

    @property
    def app(self) -> AppRecord:
        """The stored app record (registers on first use)."""
        return self._registered().app

    @property
    def app_vsn(self) -> AppVsnRecord | None:
        """The stored app version record, if a version is set (registers on first use)."""
        return self._registered().app_vsn

    @property
    def environment(self) -> EnvironmentRecord | None:
        """The stored environment record, if one is set (registers on first use)."""
        return self._registered().environment

    @property
    def pid(self) -> int:
        """The operating system's process id of this run."""
        return self._info.pid

    @property
    def username(self) -> str | None:
        """The user this process runs as (None where it cannot be told)."""
        return self._info.username

    @property
    def fqdn(self) -> str | None:
        """The host's fully qualified name."""
        return self._info.fqdn

    @property
    def exe_path(self) -> str | None:
        """The program's path, as pycodewake recorded it."""
        return self._info.exe_path

    @property
    def app_name(self) -> str:
        """The app name events are recorded under."""
        return self._app_name

    @property
    def app_vsn_name(self) -> str | None:
        """The app version string events are recorded under."""
        return self._app_vsn

    @property
    def env_name(self) -> str | None:
        """The environment name events are recorded under."""
        return self._env_name

    @property
    def event_policy(self) -> EventPolicy:
        """How this process normalises event data (limits, secret filtering)."""
        return self._policy

    def set_before_record(self, hook: BeforeRecord | None) -> None:
        """Run `hook` on every event before it is recorded, from every door (None: no hook).

        The hook gets a `code_wake.PendingEvent` on the logging thread, after
        code_wake's secret filters, and returns it (changed with
        ``event._replace(...)`` or not) or None to drop it. If it raises, the
        event is dropped and the failure reported. The configuration can
        name one too (``events.before_record``, docs/security.md).
        """
        self._policy = replace(self._policy, before_record=hook)

    # -- recording ----------------------------------------------------------------

    def log(
        self,
        data: EventData = None,
        exc: BaseException | None = None,
        inc_st: bool | None = None,
        st_len: int | None = None,
        when_ts: float | None = None,
        sync: bool = False,
    ) -> EventRecord | None:
        """Record one event.

        `data` is a mapping or ``(key, value)`` pairs; `exc` an exception whose
        type, message and (by default) stack trace are recorded. Returns None,
        or with ``sync=True`` the stored event. Without `sync` nothing is ever
        raised: problems are counted and reported on the ``code_wake`` logger.
        """
        try:
            if inc_st is None:
                inc_st = self.st_from_exceptions if exc is not None else self.st_for_non_exceptions
            if exc is not None and not _crash_hooks.note_logged(exc) and not sync:
                return None  # a crash hook recorded it already (asyncio's handler logs it after)
            record = self._record
            policy = self._policy
            built = policy.build(
                self._info if record is None else record.id, data, exc, inc_st, st_len, when_ts
            )
            # The user's hook may change the event or drop it (None); if it raises, the event is dropped.
            pending = built if policy.before_record is None else policy.before_record(built)
            if pending is None:
                return None
            if sync:
                return self._store.submit(pending, sync=True)
            self._store.submit(pending)
        except Exception as err:
            if sync:
                raise
            _report_log_failure(err)
        return None


def _report_log_failure(err: Exception) -> None:
    kind = "store" if isinstance(err, CodeWakeError) else "event"
    report_problem(f"log-{kind}", "an event could not be recorded", err)


def _pick(given: bool | None, configured: bool) -> bool:
    return configured if given is None else given


def _username() -> str | None:
    try:
        return getpass.getuser()
    except (KeyError, OSError, ImportError):
        return None


def _fqdn() -> str | None:
    try:
        return socket.getfqdn()
    except OSError:
        return None


def _after_fork_in_child() -> None:
    """A forked child is a new run: new pid, start time and process record."""
    # Another thread of the parent may have held the lock at fork time.
    Process._instance_lock = threading.Lock()
    live = Process._instance
    if live is not None:
        live._start_run()


at_fork_in_child(ForkPhase.PROCESS, _after_fork_in_child)


def _as_store(store: object) -> Store:
    """`store` as a code_wake store: a pycodewake 0.2 adapter is wrapped (`LegacyStore`)."""
    if isinstance(store, Store):
        return store
    if is_legacy_adapter(store):
        return LegacyStore(store)
    raise ConfigError(
        f"store={store!r} is not a store: give a code_wake.Store (or a pycodewake adapter, "
        f"which has {', '.join(LEGACY_METHODS)})"
    )
