"""Records as the pages show them: times, stack traces in sections, where an error was raised.

Pure functions of records; the templates escape what they return.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from code_wake._timespec import format_utc
from code_wake.records import AppVsnRecord, ProcessRecord, StackframeRecord, StacktraceRecord
from code_wake.render import chain_messages, format_stacktrace
from code_wake.stack_trace import CAUSE_MARKER, CONTEXT_MARKER

__all__ = [
    "FrameView",
    "TraceSection",
    "ago",
    "group_key",
    "is_library",
    "iso",
    "parse_group_key",
    "trace_sections",
    "trace_text",
    "utc",
    "versions_text",
    "where",
    "where_frame",
]

_CHAIN_TEXT = {
    CAUSE_MARKER: "The above exception was the direct cause of the following exception:",
    CONTEXT_MARKER: "During handling of the above exception, another exception occurred:",
}

# Frames that are not the app's own code: installed packages, the standard library
# (".../lib/python3.11/..."), frozen modules and code compiled from strings ("<string>").
_LIBRARY = re.compile(r"[/\\](site|dist)-packages[/\\]|[/\\]lib(64)?[/\\]python\d+(\.\d+)?[/\\]|^<")

NONE_KEY = "-"
"""How a group's missing exception type or stack trace is written in its URL."""


def utc(ts: float) -> str:
    """``2026-11-28 08:49:02`` (UTC)."""
    return format_utc(ts)


def iso(ts: float) -> str:
    """ISO 8601 with an offset, for ``<time datetime=...>``."""
    return datetime.datetime.fromtimestamp(ts, datetime.timezone.utc).isoformat(timespec="seconds")


def ago(ts: float, now: float) -> str:
    """How long before `now` `ts` was, in the largest whole unit: ``just now``, ``5 min ago``, ``3 d ago``."""
    seconds = now - ts
    if seconds < 0:
        return "in the future"
    for unit, size in (("d", 86_400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{int(seconds // size)} {unit} ago"
    return "just now"


def versions_text(vsns: Sequence[AppVsnRecord]) -> str:
    """``1.0, 1.1`` when one app has them, ``billing 1.0, shop 1.1`` when several do."""
    several = len({vsn.app.id for vsn in vsns}) > 1
    return ", ".join(f"{vsn.app.name} {vsn.vsn}" if several else vsn.vsn for vsn in vsns)


def process_text(process: ProcessRecord) -> str:
    """``shop 1.2.3 production``: the app, version and environment of a process."""
    parts = [process.app.name]
    if process.app_vsn is not None:
        parts.append(process.app_vsn.vsn)
    if process.environment is not None:
        parts.append(process.environment.name)
    return " ".join(parts)


def is_library(filename: str) -> bool:
    """True for a frame outside the app's own code (an installed package, the standard library)."""
    return bool(_LIBRARY.search(filename))


def _is_marker(frame: StackframeRecord) -> bool:
    return frame.filename in _CHAIN_TEXT


def where_frame(trace: StacktraceRecord | None) -> StackframeRecord | None:
    """Where the error was raised: the innermost frame of the app's own code in the raised
    exception's frames, else the innermost frame there, else the innermost frame at all."""
    if trace is None:
        return None
    main: list[StackframeRecord] = []
    for frame in trace.stackframes:  # innermost first: the raised exception's frames come first
        if _is_marker(frame):
            break
        main.append(frame)
    code = [f for f in trace.stackframes if not _is_marker(f)]
    candidates = main or code
    return next((f for f in main if not is_library(f.filename)), candidates[0] if candidates else None)


def where(trace: StacktraceRecord | None) -> str:
    """`where_frame` as ``file:line in function``; empty when there is no frame."""
    frame = where_frame(trace)
    if frame is None:
        return ""
    text = f"{frame.filename}:{frame.lineno}"
    return f"{text} in {frame.function}" if frame.function else text


@dataclass(frozen=True)
class FrameView:
    """One frame as shown: its directory and file name apart, and whether it is library code."""

    directory: str
    name: str
    lineno: int
    function: str | None
    src: str | None
    library: bool


@dataclass(frozen=True)
class TraceSection:
    """One exception of a (possibly chained) trace: its frames outermost first, its type line,
    and the sentence Python prints before the next exception (None for the last)."""

    frames: tuple[FrameView, ...]
    exc_type: str | None
    message: str | None
    then: str | None


def _view(frame: StackframeRecord) -> FrameView:
    head, sep, tail = frame.filename.replace("\\", "/").rpartition("/")
    return FrameView(
        directory=head + sep,
        name=tail,
        lineno=frame.lineno,
        function=frame.function,
        src=frame.src,
        library=is_library(frame.filename),
    )


def trace_sections(
    trace: StacktraceRecord | None,
    exc_type: str | None,
    message: str | None,
    chain: Sequence[tuple[str, str]] = (),
) -> list[TraceSection]:
    """The trace as Python prints it, split per exception: causes first, the raised one last.

    `chain` (an event's ``exc_chain``) gives the causes' messages.
    """
    if trace is None:
        return [TraceSection((), exc_type, message, None)] if exc_type else []
    messages = iter(chain_messages(trace, chain))
    sections: list[TraceSection] = []
    frames: list[FrameView] = []
    for frame in reversed(trace.stackframes):  # outermost first, as Python prints
        if _is_marker(frame):
            sections.append(
                TraceSection(
                    tuple(frames), frame.src or "Exception", next(messages), _CHAIN_TEXT[frame.filename]
                )
            )
            frames = []
        else:
            frames.append(_view(frame))
    sections.append(TraceSection(tuple(frames), exc_type, message, None))
    return sections


def trace_text(
    trace: StacktraceRecord | None,
    exc_type: str | None,
    message: str | None,
    chain: Sequence[tuple[str, str]] = (),
) -> str:
    """The plain printout, as ``code-wake show`` prints it (for copying into a ticket)."""
    text = "" if trace is None else format_stacktrace(trace, chain)
    if exc_type is not None:
        text += f"{exc_type}: {message}\n" if message else f"{exc_type}\n"
    return text


def group_key(exc_type: str | None, stacktrace_id: int | None) -> dict[str, str]:
    """A trace group's part of its URL: ``/group/<trace>/<exc>``, ``-`` for a missing one."""
    return {
        "trace": NONE_KEY if stacktrace_id is None else str(stacktrace_id),
        "exc": NONE_KEY if exc_type is None else exc_type,
    }


def parse_group_key(trace: str, exc: str) -> tuple[str | None, int | None] | None:
    """The (exception type, stack trace id) of a group's URL parts, or None if they are not one."""
    trace_id: int | None = None
    if trace != NONE_KEY:
        if not trace.isdigit() or int(trace) < 1:
            return None
        trace_id = int(trace)
    exc_type = None if exc == NONE_KEY else exc
    if exc_type is None and trace_id is None:
        return None
    return exc_type, trace_id


def names(records: Iterable[object], attribute: str = "name") -> str:
    """The names of records, comma-separated."""
    return ", ".join(str(getattr(record, attribute)) for record in records)
