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
from typing import Any, NamedTuple, TypeAlias

from ._bounded import MAX_ITEMS
from .event import EventData, EventPolicy, NormalisedData

__all__ = [
    "EventDictFields",
    "RecordSites",
    "exception_of",
    "fields_of",
    "merged",
    "record_fields",
    "shared_fields",
]

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


_RECORD_FIELDS = 8
"""How many fields `record_fields` gives a record with a logger name."""

_SITES_MAX = 4096
"""Call sites remembered per handler; past it, records of new ones take the general way."""

_Site: TypeAlias = "tuple[tuple[tuple[str, str | None], ...], tuple[tuple[str, str | None], ...]]"
"""A call site's normalised fields: those before the message (logger, level), and those after it."""


class RecordSites:
    """Each call site's fields, normalised once per event policy rather than once per record.

    A record's logger, level, template, module, function, line and thread are
    the same on every call from one line of code (and thread); only the
    message and the ``extra`` fields change. Normalising those seven for every
    record was a quarter of the handler's cost on the caller.
    """

    def __init__(self) -> None:
        # One attribute, so that another thread never pairs a new policy with the old sites.
        self._known: tuple[EventPolicy | None, dict[tuple[object, ...], _Site]] = (None, {})

    def data(
        self, policy: EventPolicy, record: logging.LogRecord, message: object, extra: list[tuple[str, Any]]
    ) -> NormalisedData | None:
        """`record_fields` and `extra`, as `policy` normalises them; None: take the general way."""
        name, template, levelname, lineno = record.name, record.msg, record.levelname, record.lineno
        module, func, thread = record.module, record.funcName, record.threadName
        # Exact types only: a key equal to a remembered one must normalise the same (a str
        # subclass would not, and True == 1). Too many items are cut by the general way.
        if (
            type(name) is not str
            or type(template) is not str
            or type(levelname) is not str
            or type(lineno) is not int
            or type(module) is not str
            or (func is not None and type(func) is not str)
            or (thread is not None and type(thread) is not str)
            or len(extra) + _RECORD_FIELDS > MAX_ITEMS
        ):
            return None
        known_policy, sites = self._known
        if policy is not known_policy:
            sites = {}
            self._known = (policy, sites)
        key = (name, levelname, template, module, func, lineno, thread)
        site = sites.get(key)
        if site is None:
            if len(sites) >= _SITES_MAX:
                return None
            site = sites[key] = _normalised_site(policy, key)
        varying = {"message": message}
        if extra:
            varying.update(extra)
        pairs = policy.normalise(varying)
        return NormalisedData(
            site[0] + pairs[:1] + site[1] + pairs[1:] if extra else site[0] + pairs + site[1]
        )


def _normalised_site(policy: EventPolicy, key: tuple[object, ...]) -> _Site:
    """The site's fields before the message (logger, level) and after it, as `record_fields` orders them."""
    name, levelname, template, module, func, lineno, thread = key
    head = policy.normalise({"logger": name, "level": levelname})
    tail = policy.normalise(
        {"msg_template": template, "module": module, "func": func, "lineno": str(lineno), "thread": thread}
    )
    return head, tail


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
