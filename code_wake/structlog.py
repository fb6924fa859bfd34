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
from collections.abc import MutableMapping
from typing import Any, TypeAlias

from . import _ours
from ._doors import fields_of, merged, shared_fields
from ._report import report_problem
from .logging import _door_process
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
        if _METHOD_LEVELS.get(method_name, logging.INFO) >= self.level and _ours.enter():
            try:
                recorded = self._record(logger, method_name, event_dict)
            except Exception as err:  # noqa: BLE001 - a log call must go on whatever its data does
                report_problem("structlog-event", "a structlog call could not be recorded", err)
            finally:
                _ours.leave()
        _ours.note_structlog_call(recorded)
        return event_dict

    def _record(self, logger: Any, method_name: str, event_dict: EventDict) -> bool:
        name = event_dict.get("logger")
        if name is None:
            name = getattr(logger, "name", None)
        if isinstance(name, str) and _ours.ignored_logger(name):
            return False
        fields = fields_of(event_dict)
        level = _level_name(event_dict.get("level"), method_name)
        data = shared_fields(name, level, fields.message, fields.template)
        inc_st = True if fields.stack_info and fields.exc is None else None
        self._current_process().log(merged(data, fields.bound), fields.exc, inc_st)
        return True

    def _current_process(self) -> Process:
        process = self._process
        # Process.reset() (tests, reconfiguring programs) must not leave us writing to the old one.
        if process is None or process is not Process.current():
            process = self._process = _door_process()
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
