"""Stored events as people read them: stack traces the way Python prints them."""

from __future__ import annotations

from collections.abc import Iterator

from .records import EventRecord, StacktraceRecord
from .stack_trace import CAUSE_MARKER, CONTEXT_MARKER

__all__ = ["format_event_exception", "format_stacktrace"]

_CHAIN_TEXT = {
    CAUSE_MARKER: "The above exception was the direct cause of the following exception:",
    CONTEXT_MARKER: "During handling of the above exception, another exception occurred:",
}


def format_stacktrace(trace: StacktraceRecord) -> str:
    """The trace as Python prints one: most recent call last, file, line, function, source."""
    return "".join(_lines(trace))


def _lines(trace: StacktraceRecord) -> Iterator[str]:
    yield "Traceback (most recent call last):\n"
    for frame in reversed(trace.stackframes):
        if frame.filename in _CHAIN_TEXT:
            yield f"{frame.src or 'Exception'}\n\n{_CHAIN_TEXT[frame.filename]}\n\n"
            yield "Traceback (most recent call last):\n"
            continue
        where = f'  File "{frame.filename}", line {frame.lineno}'
        yield f"{where}, in {frame.function}\n" if frame.function else f"{where}\n"
        if frame.src:
            yield f"    {frame.src}\n"


def format_event_exception(event: EventRecord) -> str:
    """The event's stack trace followed by its ``Type: message`` line, where it has them."""
    text = format_stacktrace(event.stacktrace) if event.stacktrace is not None else ""
    if event.exc_type is not None:
        message = f": {event.exc_message}" if event.exc_message else ""
        text += f"{event.exc_type}{message}\n"
    return text
