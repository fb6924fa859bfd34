"""Stored events as people read them: stack traces the way Python prints them."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from .records import EventRecord, StacktraceRecord
from .stack_trace import CAUSE_MARKER, CONTEXT_MARKER

__all__ = ["chain_messages", "format_event_exception", "format_stacktrace"]

_CHAIN_TEXT = {
    CAUSE_MARKER: "The above exception was the direct cause of the following exception:",
    CONTEXT_MARKER: "During handling of the above exception, another exception occurred:",
}


def format_stacktrace(trace: StacktraceRecord, chain: Sequence[tuple[str, str]] = ()) -> str:
    """The trace as Python prints one: most recent call last, file, line, function, source.

    `chain` (an event's ``exc_chain``) gives the chained exceptions' messages,
    printed after their types as Python does.
    """
    return "".join(_lines(trace, chain))


def chain_messages(trace: StacktraceRecord, chain: Sequence[tuple[str, str]]) -> list[str | None]:
    """The message of each chain marker of `trace`, outermost first; None where it is not known.

    A trace cut by ``st_len`` keeps the innermost markers: they are the last
    of `chain`. A message whose type does not match its marker is not used.
    """
    markers = [frame for frame in reversed(trace.stackframes) if frame.filename in _CHAIN_TEXT]
    known = list(chain[-len(markers) :]) if markers and len(chain) >= len(markers) else []
    if not known:
        return [None] * len(markers)
    pairs = zip(markers, known, strict=True)
    return [message or None if kind == frame.src else None for frame, (kind, message) in pairs]


def _chain_lines(trace: StacktraceRecord, chain: Sequence[tuple[str, str]]) -> Iterator[str]:
    """The ``Type: message`` line of each chain marker of `trace`, outermost first."""
    markers = (frame for frame in reversed(trace.stackframes) if frame.filename in _CHAIN_TEXT)
    for frame, message in zip(markers, chain_messages(trace, chain), strict=True):
        name = frame.src or "Exception"
        yield f"{name}: {message}" if message else name


def _lines(trace: StacktraceRecord, chain: Sequence[tuple[str, str]]) -> Iterator[str]:
    headers = _chain_lines(trace, chain)
    yield "Traceback (most recent call last):\n"
    for frame in reversed(trace.stackframes):
        if frame.filename in _CHAIN_TEXT:
            yield f"{next(headers)}\n\n{_CHAIN_TEXT[frame.filename]}\n\n"
            yield "Traceback (most recent call last):\n"
            continue
        where = f'  File "{frame.filename}", line {frame.lineno}'
        yield f"{where}, in {frame.function}\n" if frame.function else f"{where}\n"
        if frame.src:
            yield f"    {frame.src}\n"


def format_event_exception(event: EventRecord) -> str:
    """The event's stack trace followed by its ``Type: message`` line, where it has them."""
    text = format_stacktrace(event.stacktrace, event.exc_chain) if event.stacktrace is not None else ""
    if event.exc_type is not None:
        message = f": {event.exc_message}" if event.exc_message else ""
        text += f"{event.exc_type}{message}\n"
    return text
