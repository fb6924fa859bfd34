"""The logging door: `CodeWakeHandler`, a `logging.Handler` that records records as events.

``logging.getLogger().addHandler(CodeWakeHandler())`` records the app's
warnings and errors into the store the configuration names. From
``logging.config.dictConfig`` the handler's keyword arguments wire the store
and the app without a config file. docs/logging.md is the user's
description: the event's keys, the dictConfig forms, failure handling.

Inside this package ``import logging`` is the standard library's (absolute
imports); users import this module as ``code_wake.logging``.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import weakref
from collections.abc import Callable, Mapping, Sequence
from itertools import filterfalse
from typing import Any, TypeAlias

from . import _crash_hooks, _ours, _wiring
from ._adapters import DEFAULT_ADAPTER, build_store, import_ahead, parse_adapter
from ._doors import RecordSites, exception_of, fields_of, merged, record_fields
from ._fork import ForkPhase, at_fork_in_child
from ._masking import mask_secret_url
from ._report import report_problem
from ._values import Invalid, text_value, version_value
from .config import Config
from .errors import ConfigError
from .event import EventData
from .process import Process
from .store import Store

__all__ = ["RECORD_ATTRIBUTES", "CodeWakeHandler"]

RECORD_ATTRIBUTES: frozenset[str] = frozenset(
    [
        *logging.LogRecord("", logging.NOTSET, "", 0, "", (), None).__dict__,
        # Set later by Formatter.format, or by Python versions newer than the one running.
        "message",
        "asctime",
        "taskName",
        # structlog's ProcessorFormatter.wrap_for_formatter plumbing.
        "_logger",
        "_name",
        "_from_structlog",
    ]
)
"""`logging.LogRecord` attributes that are not ``extra`` fields (computed from a blank record)."""

_is_record_attribute = RECORD_ATTRIBUTES.__contains__

_PLAIN_RECORD_SIZE = len(logging.LogRecord("", logging.NOTSET, "", 0, "", (), None).__dict__)
_state = _ours.state

_Event: TypeAlias = "tuple[EventData, BaseException | None, bool | None]"
"""What a record becomes: the event's data, its exception, and whether to capture the stack."""


@dataclasses.dataclass(frozen=True)
class _Settings:
    """What a handler was told about the store and the app; empty: the configuration decides."""

    store_adapter: str | None = None
    store_args: tuple[str, ...] = ()
    store: Store | None = None
    app_name: str | None = None
    app_vsn: str | None = None
    env_name: str | None = None

    def names_a_store(self) -> bool:
        return self.store_adapter is not None or bool(self.store_args)

    def store_key(self) -> tuple[str | None, tuple[str, ...]]:
        return self.store_adapter, self.store_args

    def is_empty(self) -> bool:
        return self == _NO_SETTINGS

    def process_args(self) -> dict[str, Any]:
        return {"app_name": self.app_name, "app_vsn": self.app_vsn, "env_name": self.env_name}

    def describe(self) -> str:
        shown = ", ".join(repr(mask_secret_url(arg)) for arg in self.store_args)
        return f"store={self.store_adapter!r}, store_config=[{shown}]"

    def build_store(self) -> Store:
        """The store these settings name, built as configured stores are (queued by default)."""
        config = Config.load()
        if self.store_adapter is not None:
            adapter, origin = self.store_adapter, "the handler's store argument"
        elif config.store_adapter is not None:
            adapter, origin = config.store_adapter, config.origin("store.adapter")
        else:
            adapter, origin = DEFAULT_ADAPTER, "the default"
        try:
            return build_store(
                adapter,
                self.store_args,
                queued=config.queue_enabled,
                queue_settings=config.queue_settings(),
                where=f"store adapter {adapter!r} (from {origin})",
            )
        except ConfigError as exc:
            raise ConfigError(f"CodeWakeHandler({self.describe()}): {exc}") from exc


_NO_SETTINGS = _Settings()


class _Configured:
    """The Process a handler configured from its settings, and those settings."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self._process: weakref.ref[Process] | None = None
        self._settings = _NO_SETTINGS

    def remember(self, process: Process, settings: _Settings) -> None:
        self._process, self._settings = weakref.ref(process), settings

    def settings_of(self, live: Process) -> _Settings | None:
        """The settings `live` was configured from by a handler, or None if it was not."""
        if self._process is None or self._process() is not live:
            return None
        return self._settings


_configured = _Configured()


def _after_fork_in_child() -> None:
    # Another thread of the parent may have held the lock at fork time.
    _configured.lock = threading.Lock()


at_fork_in_child(ForkPhase.HANDLER, _after_fork_in_child)


class CodeWakeHandler(logging.Handler):
    """A logging handler that records each record it handles as a code_wake event.

    With no arguments the configuration decides the store and the app
    (docs/configuration.md). `store` (a ``"module,Class"`` adapter string, or
    a store object), `store_config` (the adapter's argument, such as a
    database URL, or a list of them), `app_name`, `app_vsn` and `env_name`
    configure `code_wake.Process` on the first record instead, so that
    ``dictConfig`` alone can wire everything; nothing is opened before then.
    `level` defaults to WARNING. `flush_timeout` bounds how long `flush` and
    `close` wait for a queued store.

    Failures go to `handleError`, never into the app; records of code_wake's
    own stack (SQLAlchemy, the database drivers, the queue's writer) are
    never recorded (`code_wake._ours` decides what is code_wake's own).
    """

    code_wake_door = True
    """Marks code_wake's own handler: it never shows code_wake's reports (`code_wake._report`)."""

    def __init__(
        self,
        level: int | str = logging.WARNING,
        *,
        store: str | Store | None = None,
        store_config: str | Sequence[str] | None = None,
        app_name: str | None = None,
        app_vsn: str | float | None = None,
        env_name: str | None = None,
        flush_timeout: float = 5.0,
    ) -> None:
        # Checked before Handler.__init__ registers the handler with logging (for shutdown).
        self._settings = _settings(store, store_config, app_name, app_vsn, env_name)
        self.flush_timeout = _timeout(flush_timeout)
        self._process: Process | None = None
        self._sync = False
        self._sites = RecordSites()
        if self._settings.names_a_store():
            import_ahead(self._settings.store_adapter or DEFAULT_ADAPTER)
        super().__init__(level)
        # Made means configured: the other doors and the crash hooks find this handler's settings.
        _wiring.arm(self)
        _crash_hooks.arm()

    # -- the caller's path ---------------------------------------------------------------

    def handle(self, record: logging.LogRecord) -> bool:
        """Filter `record` and record it unless it is code_wake's own or already recorded.

        Unlike `logging.Handler.handle` this takes no handler lock: recording
        is thread-safe, and a lock held while a synchronous store writes
        would be a lock the store's own logging could wait on. The level is
        tested here too, for callers that skip it (``QueueListener``).
        """
        if record.levelno < self.level or _state.busy or _ours.ignored_logger(record.name):
            return False
        if self.filters:
            verdict: object = self.filter(record)
            if not verdict:
                return False
            if isinstance(verdict, logging.LogRecord):
                # Python 3.12+: a filter may hand back a replacement record.
                record = verdict
        if not _ours.claim_record(record):
            return False
        self.emit(record)
        return True

    def emit(self, record: logging.LogRecord) -> None:
        """Record `record` as one event; any failure goes to `handleError`."""
        # _ours.enter()/leave() inlined: this runs for every record.
        state = _state
        if state.busy:
            return
        state.busy = True
        try:
            process = self._process
            # Process.reset() (tests, reconfiguring programs) must not leave us writing to the old one.
            if process is None or process is not Process.current():
                process = self._resolve_process()
            data, exc, inc_st = self._event(record, process)
            process.log(data, exc, inc_st, None, record.created, self._sync)
        except Exception:  # noqa: BLE001 - logging's contract: a handler never raises into the app
            self.handleError(record)
        finally:
            state.busy = False

    def _event(self, record: logging.LogRecord, process: Process) -> _Event:
        """The event's data, exception and stack trace wish for `record`."""
        msg = record.msg
        if type(msg) is dict and hasattr(record, "_logger"):
            return self._structlog_event(record, msg, process)
        message = record.getMessage() if self.formatter is None else self.format(record)
        extra = _extra_of(record.__dict__)
        data: EventData = None
        if not record.stack_info:
            # A stack_info record may gain a field in _with_stack: it takes the general way.
            data = self._sites.data(process.event_policy, record, message, extra)
        if data is None:
            fields = record_fields(record, message, msg)
            data = merged(fields, extra) if extra else fields
        if record.exc_info or record.stack_info or process.st_for_non_exceptions:
            return _with_stack(record, process, data, exception_of(record.exc_info), False)
        return data, None, False  # the common case, without the calls

    def _structlog_event(
        self, record: logging.LogRecord, event_dict: dict[str, Any], process: Process
    ) -> _Event:
        """A record from structlog's ``wrap_for_formatter``: its message is the event dict."""
        fields = fields_of(event_dict)
        data = record_fields(record, fields.message, fields.template)
        extra = fields.bound + [(k, v) for k, v in record.__dict__.items() if k not in RECORD_ATTRIBUTES]
        exc = exception_of(record.exc_info)
        if exc is None:
            exc = fields.exc
        return _with_stack(record, process, merged(data, extra), exc, fields.stack_info)

    def _resolve_process(self) -> Process:
        process = _resolve(self._settings)
        # A plain store writes on this thread anyway: asking for the result costs nothing
        # and lets its failures reach handleError. A queued one only enqueues.
        self._sync = type(process.store).submit is Store.submit
        self._process = process
        return process

    # -- flush and close ---------------------------------------------------------------------

    def flush(self) -> None:
        """Wait (at most `flush_timeout` seconds) until the queued events are written.

        Does not wait when called under the logging module's lock (as a
        second ``dictConfig`` does): the queue's writer may be waiting for
        that lock to log, and will write the events anyway.
        """
        process = self._process
        store_flush = getattr(process.store, "flush", None) if process is not None else None
        if store_flush is None or _holding_logging_lock():
            return
        try:
            store_flush(self.flush_timeout)
        except Exception as err:  # noqa: BLE001 - flush runs at exit and in dictConfig: never raise there
            report_problem("handler-flush", "CodeWakeHandler could not flush its store", err)

    def close(self) -> None:
        """Flush within `flush_timeout`, then detach from logging.

        The store is not closed: it belongs to `code_wake.Process`, which the
        other doors (and a handler a later ``dictConfig`` creates) go on
        using; a queued store flushes itself at exit.
        """
        self.flush()
        self._process = None
        super().close()


def _extra_of(attributes: dict[str, Any]) -> list[tuple[str, Any]]:
    """The record's ``extra`` fields, in the order they were set; none for a plain record."""
    if len(attributes) == _PLAIN_RECORD_SIZE:
        return []
    # filterfalse runs the test in C: a comprehension over the ~25 attributes cost twice as much.
    return [(key, attributes[key]) for key in filterfalse(_is_record_attribute, attributes)]


def _with_stack(
    record: logging.LogRecord, process: Process, data: EventData, exc: BaseException | None, stack_info: bool
) -> _Event:
    """Decide the event's stack trace: the exception's, the logging call's, or none."""
    if exc is not None:
        return data, exc, None
    stack_info = stack_info or bool(record.stack_info)
    if not (stack_info or process.st_for_non_exceptions):
        return data, None, False
    # A stack is captured here, so only on the thread that logged (not a QueueListener's).
    here = record.thread is None or record.thread == threading.get_ident()
    if stack_info and not here and record.stack_info:
        data = [*_items(data), ("stack_info", record.stack_info)]
    return data, None, here


def _items(data: EventData) -> list[tuple[Any, Any]]:
    if data is None:
        return []
    return list(data.items()) if isinstance(data, Mapping) else list(data)


def _door_process() -> Process:
    """The Process a door without settings of its own records through.

    The live one; else the one the first handler made with settings describes
    (so a structlog call or a crash before that handler's first record does
    not configure code_wake from the configuration alone); else the
    configuration's.
    """
    live = Process.current()
    if live is not None:
        return live
    for handler in _wiring.armed_handlers():
        if not handler._settings.is_empty():
            return _resolve(handler._settings)
    return Process()


def _process_for_crash() -> Process | None:
    """The Process a crash hook records through; None when nothing configured code_wake."""
    if Process.current() is None and not _wiring.armed_handlers():
        return None
    return _door_process()


def _resolve(settings: _Settings) -> Process:
    """The Process this handler records through, configuring it from `settings` if none is live.

    When the live Process disagrees with `settings` (another store, another
    app), the first configuration wins: records go to the live Process and
    the disagreement is reported once on the ``code_wake`` logger.
    """
    if settings.is_empty():
        return _door_process()
    with _configured.lock:
        live = Process.current()
        if live is None:
            return _configure(settings)
        problem = _disagreement(live, settings)
    if problem is not None:
        _report_once(problem)
    return live


def _disagreement(live: Process, settings: _Settings) -> str | None:
    configured = _configured.settings_of(live)
    same_store = configured is not None and configured.store_key() == settings.store_key()
    if settings.names_a_store() and not same_store:
        return str(_conflict(configured, settings))
    try:
        Process(**settings.process_args(), store=settings.store)
    except ConfigError as exc:
        return f"CodeWakeHandler({settings.describe()}): {exc} Recording through the live Process."
    return None


_reported: set[str] = set()


def _report_once(problem: str) -> None:
    if problem not in _reported:
        _reported.add(problem)
        report_problem("handler-conflict", problem)


def _configure(settings: _Settings) -> Process:
    """Create the Process from `settings`; remember that we did, so equal settings share it."""
    built = settings.build_store() if settings.names_a_store() else None
    try:
        process = Process(**settings.process_args(), store=settings.store or built)
    except Exception:
        if built is not None:
            built.close()
        raise
    _configured.remember(process, settings)
    return process


def _conflict(other: _Settings | None, settings: _Settings) -> ConfigError:
    by = f"another CodeWakeHandler ({other.describe()})" if other else "Process(...) or the configuration"
    return ConfigError(
        f"code_wake.Process is already configured with a store by {by}; this CodeWakeHandler asks for "
        f"{settings.describe()} and records into the live Process's store instead. Name the store in "
        "one place, or call code_wake.Process.reset() first."
    )


def _settings(
    store: object, store_config: object, app_name: object, app_vsn: object, env_name: object
) -> _Settings:
    """The handler's arguments, checked at construction (so dictConfig reports them at once)."""
    adapter: str | None = None
    store_object: Store | None = None
    if isinstance(store, Store):
        store_object = store
    elif store is not None:
        adapter = _adapter(store)
    args = _store_args(store_config)
    if store_object is not None and args:
        raise ConfigError("CodeWakeHandler: store_config goes with an adapter string, not a store object")
    return _Settings(
        store_adapter=adapter,
        store_args=args,
        store=store_object,
        app_name=_checked("app_name", text_value, app_name),
        app_vsn=_checked("app_vsn", version_value, app_vsn),
        env_name=_checked("env_name", text_value, env_name),
    )


def _adapter(store: object) -> str:
    try:
        return parse_adapter(store)
    except Invalid as exc:
        raise ConfigError(
            f"CodeWakeHandler: store must be {exc.expected} or a store object, got {store!r}"
        ) from None


def _store_args(store_config: object) -> tuple[str, ...]:
    if store_config is None:
        return ()
    if isinstance(store_config, str) and store_config:
        return (store_config,)
    if isinstance(store_config, (list, tuple)) and all(isinstance(a, str) for a in store_config):
        return tuple(store_config)
    raise ConfigError(
        "CodeWakeHandler: store_config must be the store adapter's argument (such as a database URL) "
        f"or a list of them, got {type(store_config).__name__}"
    )


def _checked(name: str, check: Callable[[object], str], value: object) -> str | None:
    if value is None:
        return None
    try:
        return check(value)
    except Invalid as exc:
        raise ConfigError(f"CodeWakeHandler: {name} must be {exc.expected}, got {value!r}") from None


def _timeout(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
        raise ConfigError(f"CodeWakeHandler: flush_timeout must be a number of seconds >= 0, got {value!r}")
    return float(value)


def _holding_logging_lock() -> bool:
    """True when this thread holds the logging module's lock (dictConfig, fileConfig).

    CPython's module lock is an RLock; its ``_is_owned`` is the only way to ask.
    """
    is_owned = getattr(getattr(logging, "_lock", None), "_is_owned", None)
    return bool(is_owned()) if callable(is_owned) else False
