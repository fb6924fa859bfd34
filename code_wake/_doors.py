"""What both doors, the logging handler and the structlog processor, make of a log call.

The fields every event of theirs carries are built here, once: ``logger``,
``level``, ``message`` and ``msg_template``, then for a logging record where
it was made (``module``, ``func``, ``lineno``, ``thread``). A structlog event
dict is read here too, since it reaches both doors: the processor's, and the
handler's through structlog's ``ProcessorFormatter.wrap_for_formatter``.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping
from typing import Any, NamedTuple

from .event import EventData

__all__ = ["EventDictFields", "exception_of", "fields_of", "merged", "record_fields", "shared_fields"]

_META_KEYS = frozenset(
    {"event", "level", "logger", "exc_info", "stack_info", "positional_args", "_record", "_from_structlog"}
)
"""Event dict keys that are not bound data: recorded as fields of their own, or structlog's plumbing."""


def shared_fields(logger: object, level: str, message: object, template: object) -> dict[str, Any]:
    """The fields both doors record, in this order; ``logger`` only where it is known.

    A dict, not pairs: the event policy normalises a dict on its fast path.
    """
    data: dict[str, Any] = {} if logger is None else {"logger": logger}
    data["level"] = level
    data["message"] = message
    data["msg_template"] = template
    return data


def record_fields(record: logging.LogRecord, message: object, template: object) -> dict[str, Any]:
    """A logging record's fields: the shared ones, then where the record was made."""
    data = shared_fields(record.name, record.levelname, message, template)
    data["module"] = record.module
    data["func"] = record.funcName
    data["lineno"] = str(record.lineno)
    data["thread"] = record.threadName
    return data


def merged(fields: dict[str, Any], extra: list[tuple[str, Any]]) -> EventData:
    """`fields` and the extra data; as pairs when an extra reuses a field's name, so both are kept."""
    for key, _ in extra:
        if key in fields:
            return [*fields.items(), *extra]
    fields.update(extra)
    return fields


class EventDictFields(NamedTuple):
    """What a structlog event dict contributes to an event."""

    message: object
    template: object
    bound: list[tuple[str, Any]]
    exc: BaseException | None
    stack_info: bool


def fields_of(event_dict: Mapping[str, Any]) -> EventDictFields:
    """Message, template, bound data, exception and stack wish of a structlog event dict."""
    message, template = _message(event_dict.get("event"), event_dict.get("positional_args"))
    bound = [(key, value) for key, value in event_dict.items() if key not in _META_KEYS]
    return EventDictFields(
        message, template, bound, exception_of(event_dict.get("exc_info")), bool(event_dict.get("stack_info"))
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


def exception_of(exc_info: object) -> BaseException | None:
    """The exception `exc_info` stands for, in every form logging and structlog accept.

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
