"""The structlog door: `CodeWakeProcessor`, a processor for structlog's chain.

Put it in ``structlog.configure(processors=[...])`` after the processors that
add data (``merge_contextvars``, ``add_log_level``, ``add_logger_name``) and
before those that turn ``exc_info`` into text (``format_exc_info``,
``dict_tracebacks``) and before the renderer. For every call at or above its
level it records one event through `code_wake.Process`, and it returns the
event dict unchanged, so rendering goes on as before. docs/structlog.md is
the user's description, with the recommended setup when stdlib logging also
has a `code_wake.logging.CodeWakeHandler`.

This module does not import structlog: a processor is a plain callable.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping, MutableMapping
from typing import Any, NamedTuple, TypeAlias

from . import _guard
from ._report import report_problem
from .event import EventData
from .process import Process

__all__ = ["CodeWakeProcessor", "EventDict"]

EventDict: TypeAlias = "MutableMapping[str, Any]"
"""What structlog passes from processor to processor: the event text and every key/value."""

_METHOD_LEVELS: dict[str, int] = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "msg": logging.INFO,
    "warning": logging.WARNING,
    "warn": logging.WARNING,
    "error": logging.ERROR,
    "err": logging.ERROR,
    "exception": logging.ERROR,
    "critical": logging.CRITICAL,
    "fatal": logging.CRITICAL,
}
"""structlog's method names (stdlib, native and Twisted loggers) and their levels."""

_LEVEL_NAMES: dict[str, str] = {
    "warn": "WARNING",
    "exception": "ERROR",
    "err": "ERROR",
    "fatal": "CRITICAL",
    "msg": "INFO",
}
"""Method names stored as the stdlib level name they stand for, so both doors' levels match."""

_META_KEYS = frozenset(
    {"event", "level", "logger", "exc_info", "stack_info", "positional_args", "_record", "_from_structlog"}
)
"""Event dict keys that are not bound data: recorded as fields of their own, or structlog's plumbing."""


class _Fields(NamedTuple):
    """What an event dict contributes to an event."""

    message: object
    template: object
    bound: list[tuple[str, Any]]
    exc: BaseException | None
    stack_info: bool


class CodeWakeProcessor:
    """Record each structlog call at or above `level` as a code_wake event.

    `level` is a number or a level name (``"warning"``, ``logging.ERROR``);
    default WARNING. The event carries the level, the event text (as
    ``message`` and ``msg_template``), the logger name where one was added,
    every bound and context variable, ``exc_info`` in any form structlog
    accepts as the event's exception, and with ``stack_info`` the call's
    stack. The event dict is returned unchanged; recording never raises.
    """

    def __init__(self, level: int | str = logging.WARNING) -> None:
        self.level = _level_number(level)
        self._process: Process | None = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}(level={logging.getLevelName(self.level)!r})"

    def __call__(self, logger: Any, method_name: str, event_dict: EventDict) -> EventDict:
        """Record the call if it is at or above the level; return `event_dict` as it came."""
        if "_record" in event_dict:
            # Inside a ProcessorFormatter: the record is logging's, and the CodeWakeHandler's door.
            return event_dict
        recorded = False
        if _METHOD_LEVELS.get(method_name, logging.INFO) >= self.level and _guard.enter():
            try:
                recorded = self._record(logger, method_name, event_dict)
            except Exception as err:  # noqa: BLE001 - a log call must go on whatever its data does
                report_problem("structlog-event", "a structlog call could not be recorded", err)
            finally:
                _guard.leave()
        _guard.note_structlog_call(recorded)
        return event_dict

    def _record(self, logger: Any, method_name: str, event_dict: EventDict) -> bool:
        name = event_dict.get("logger")
        if name is None:
            name = getattr(logger, "name", None)
        if isinstance(name, str) and _guard.ignored_logger(name):
            return False
        fields = _fields_of(event_dict)
        # A dict, not pairs: the event policy normalises a dict on its fast path.
        data: dict[str, Any] = {} if name is None else {"logger": name}
        data["level"] = _level_name(event_dict.get("level"), method_name)
        data["message"] = fields.message
        data["msg_template"] = fields.template
        inc_st = True if fields.stack_info and fields.exc is None else None
        self._current_process().log(_merged(data, fields.bound), fields.exc, inc_st)
        return True

    def _current_process(self) -> Process:
        process = self._process
        # Process.reset() (tests, reconfiguring programs) must not leave us writing to the old one.
        if process is None or process is not Process.current():
            process = self._process = Process()
        return process


def _level_number(level: int | str) -> int:
    if isinstance(level, bool):
        raise TypeError(f"level must be a level number or name, not {level!r}")
    if isinstance(level, int):
        return level
    number = logging.getLevelName(str(level).upper())
    if not isinstance(number, int):
        raise ValueError(f"unknown level name {level!r}: use debug, info, warning, error or critical")
    return number


def _level_name(level: object, method_name: str) -> str:
    """The stored level: ``add_log_level``'s value if present, else the method's, as stdlib names it."""
    name = level if isinstance(level, str) else method_name
    return _LEVEL_NAMES.get(name) or name.upper()


def _merged(fields: dict[str, Any], extra: list[tuple[str, Any]]) -> EventData:
    """`fields` and the extra data; as pairs when an extra reuses a field's name, so both are kept."""
    for key, _ in extra:
        if key in fields:
            return [*fields.items(), *extra]
    fields.update(extra)
    return fields


def _fields_of(event_dict: Mapping[str, Any]) -> _Fields:
    """Message, template, bound data, exception and stack wish of a structlog event dict."""
    message, template = _message(event_dict.get("event"), event_dict.get("positional_args"))
    bound = [(key, value) for key, value in event_dict.items() if key not in _META_KEYS]
    return _Fields(
        message, template, bound, _exception(event_dict.get("exc_info")), bool(event_dict.get("stack_info"))
    )


def _message(event: object, args: object) -> tuple[object, object]:
    """The event text with ``positional_args`` applied, as structlog.stdlib formats it, and the template."""
    if not args or not isinstance(event, str) or not isinstance(args, tuple):
        return event, event
    if len(args) == 1 and isinstance(args[0], dict) and args[0]:
        args = args[0]
    try:
        return event % args, event
    except (TypeError, ValueError, KeyError):
        return event, event


def _exception(exc_info: object) -> BaseException | None:
    """The exception `exc_info` stands for, in every form structlog accepts.

    An exception; an ``exc_info`` tuple; any other true value for the
    exception being handled (``sys.exc_info()``); a false value or
    ``(None, None, None)`` for none.
    """
    if not exc_info:
        return None
    if isinstance(exc_info, BaseException):
        return exc_info
    if isinstance(exc_info, tuple):
        value = exc_info[1] if len(exc_info) == 3 else None
        return value if isinstance(value, BaseException) else None
    return sys.exc_info()[1]
