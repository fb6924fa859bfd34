"""How the ``code-wake`` command prints records: aligned tables, JSON lines, one event whole.

Both forms stream: a table is printed in blocks (its column widths are fixed
by the first block), JSON lines one object per row, so a query over a large
store never waits for its last row to print its first.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import islice
from typing import Any, Generic, TextIO, TypeVar

from ._timespec import format_utc
from .query import DailyCount, PruneReport, TraceGroup
from .records import AppVsnRecord, EventRecord, ProcessRecord, StackframeRecord
from .render import format_event_exception
from .stack_trace import CAUSE_MARKER, CONTEXT_MARKER

__all__ = [
    "DAILY_COLUMNS",
    "EVENT_COLUMNS",
    "GROUP_COLUMNS",
    "PROCESS_COLUMNS",
    "Column",
    "daily_json",
    "event_json",
    "format_event",
    "group_json",
    "process_json",
    "prune_json",
    "prune_text",
    "write_json_lines",
    "write_table",
]

R = TypeVar("R")

BLOCK = 500
"""Rows per block of a table: the first block fixes the column widths."""

CELL_WIDTH = 60
"""Characters a table cell shows at most, unless its column says (the JSON form has everything)."""

VALUE_WIDTH = 40
"""Characters of one data value in the events table."""

_ESCAPES = str.maketrans({"\n": "\\n", "\r": "\\r", "\t": "\\t"})


@dataclass(frozen=True)
class Column(Generic[R]):
    """One column of a table: its header, how a record fills it, and its alignment."""

    header: str
    cell: Callable[[R], str]
    right: bool = False
    width: int = CELL_WIDTH


def _clean(text: str, width: int = CELL_WIDTH) -> str:
    """One line of at most `width` characters: control characters escaped, the cut marked."""
    text = text.translate(_ESCAPES)
    return text if len(text) <= width else text[: width - 1] + "…"


def write_table(rows: Iterable[R], columns: Sequence[Column[R]], out: TextIO) -> int:
    """Print `rows` as a table with a header; returns how many rows were printed."""
    iterator = iter(rows)
    block = _block(iterator, columns)
    headers = [column.header for column in columns]
    widths = [max([len(h)] + [len(cells[i]) for cells in block]) for i, h in enumerate(headers)]
    printed = 0
    _write_row(out, headers, widths, columns)
    while block:
        for cells in block:
            _write_row(out, cells, widths, columns)
        printed += len(block)
        out.flush()
        block = _block(iterator, columns)
    return printed


def _block(rows: Iterator[R], columns: Sequence[Column[R]]) -> list[list[str]]:
    return [[_clean(column.cell(row), column.width) for column in columns] for row in islice(rows, BLOCK)]


def _write_row(
    out: TextIO, cells: Sequence[str], widths: Sequence[int], columns: Sequence[Column[Any]]
) -> None:
    parts = [
        cell.rjust(width) if column.right else cell.ljust(width)
        for cell, width, column in zip(cells, widths, columns, strict=True)
    ]
    out.write("  ".join(parts).rstrip() + "\n")


def write_json_lines(rows: Iterable[R], to_json: Callable[[R], dict[str, Any]], out: TextIO) -> int:
    """Print one JSON object per row; returns how many were printed."""
    printed = 0
    for row in rows:
        out.write(json.dumps(to_json(row), ensure_ascii=False) + "\n")
        printed += 1
        if printed % BLOCK == 0:
            out.flush()
    return printed


# -- pieces of records --------------------------------------------------------------------------


def _iso(ts: float) -> str:
    return datetime.datetime.fromtimestamp(ts, datetime.timezone.utc).isoformat(timespec="microseconds")


def _or_dash(text: str | None) -> str:
    return "-" if text is None or text == "" else text


def _vsn(process: ProcessRecord) -> str | None:
    return None if process.app_vsn is None else process.app_vsn.vsn


def _env(process: ProcessRecord) -> str | None:
    return None if process.environment is None else process.environment.name


def _data_cell(event: EventRecord) -> str:
    return " ".join(
        f"{item.key}={'null' if item.val is None else _clean(item.val, VALUE_WIDTH)}" for item in event.data
    )


def _versions(vsns: Sequence[AppVsnRecord]) -> str:
    """``1.0, 1.1`` when one app has them, ``billing 1.0, shop 1.1`` when several do."""
    several = len({vsn.app.id for vsn in vsns}) > 1
    return ", ".join(f"{vsn.app.name} {vsn.vsn}" if several else vsn.vsn for vsn in vsns) or "-"


def _where_of(group: TraceGroup) -> str:
    """The innermost frame of the group's trace that is code: ``file:line in function``."""
    trace = group.stacktrace
    frame = (
        next((f for f in trace.stackframes if f.filename not in (CAUSE_MARKER, CONTEXT_MARKER)), None)
        if trace
        else None
    )
    if frame is None:
        return "-"
    where = f"{frame.filename}:{frame.lineno}"
    return f"{where} in {frame.function}" if frame.function else where


# -- events ---------------------------------------------------------------------------------------

EVENT_COLUMNS: tuple[Column[EventRecord], ...] = (
    Column("ID", lambda e: str(e.id), right=True),
    Column("TIME (UTC)", lambda e: format_utc(e.when_ts)),
    Column("APP", lambda e: e.process.app.name),
    Column("VERSION", lambda e: _or_dash(_vsn(e.process))),
    Column("ENV", lambda e: _or_dash(_env(e.process))),
    Column("PROCESS", lambda e: str(e.process.id), right=True),
    Column("EXCEPTION", lambda e: _or_dash(e.exc_type)),
    Column("DATA", _data_cell, width=400),
)


def event_json(event: EventRecord, whole: bool = False) -> dict[str, Any]:
    """The event as JSON: stable keys; `whole` adds its process's details and its stack trace."""
    process = event.process
    found: dict[str, Any] = {
        "id": event.id,
        "time": _iso(event.when_ts),
        "when_ts": event.when_ts,
        "process_id": process.id,
        "pid": process.pid,
        "app": process.app.name,
        "vsn": _vsn(process),
        "env": _env(process),
        "exc_type": event.exc_type,
        "exc_message": event.exc_message,
        "stacktrace_id": None if event.stacktrace is None else event.stacktrace.id,
        "data": [[item.key, item.val] for item in event.data],
    }
    if whole:
        found["process"] = process_json(process)
        found["stacktrace"] = None if event.stacktrace is None else {
            "id": event.stacktrace.id,
            "digest": event.stacktrace.digest.hex(),
            "frames": [_frame_json(frame) for frame in event.stacktrace.stackframes],
        }  # fmt: skip
        found["exc_chain"] = [[kind, message] for kind, message in event.exc_chain]
        found["traceback"] = format_event_exception(event) or None
    return found


def _frame_json(frame: StackframeRecord) -> dict[str, Any]:
    return {"filename": frame.filename, "lineno": frame.lineno, "function": frame.function, "src": frame.src}


def format_event(event: EventRecord) -> Iterator[str]:
    """The lines of `code-wake show`: the event, its process, its data, its stack trace."""
    process = event.process
    local = datetime.datetime.fromtimestamp(event.when_ts).astimezone()
    yield f"Event {event.id}\n"
    utc = format_utc(event.when_ts, precise=True)
    yield f"  time         {utc} UTC ({local:%Y-%m-%d %H:%M:%S %Z} local)\n"
    vsn, env = _or_dash(_vsn(process)), _or_dash(_env(process))
    yield f"  app          {process.app.name} {vsn}, environment {env}\n"
    pid = _or_dash(None if process.pid is None else str(process.pid))
    yield (
        f"  process      {process.id}: pid {pid}, user {_or_dash(process.username)}, "
        f"host {_or_dash(process.fqdn)}, started {format_utc(process.run_ts)} UTC\n"
    )
    yield f"  program      {_or_dash(process.exe_path)}\n"
    if event.exc_type is not None:
        yield f"  exception    {event.exc_type}: {event.exc_message or ''}".rstrip() + "\n"
    if event.stacktrace is not None:
        yield f"  stack trace  {event.stacktrace.id} ({len(event.stacktrace.stackframes)} frames)\n"
    yield from _data_lines(event)
    trace = format_event_exception(event)
    if trace:
        yield "\n" + trace


def _data_lines(event: EventRecord) -> Iterator[str]:
    yield "\nData\n"
    if not event.data:
        yield "  (none)\n"
    width = max((len(item.key) for item in event.data), default=0)
    for item in event.data:
        value = "null" if item.val is None else item.val.translate(_ESCAPES)
        yield f"  {item.key.ljust(width)} = {value}\n"


# -- processes ------------------------------------------------------------------------------------

PROCESS_COLUMNS: tuple[Column[ProcessRecord], ...] = (
    Column("ID", lambda p: str(p.id), right=True),
    Column("STARTED (UTC)", lambda p: format_utc(p.run_ts)),
    Column("APP", lambda p: p.app.name),
    Column("VERSION", lambda p: _or_dash(_vsn(p))),
    Column("ENV", lambda p: _or_dash(_env(p))),
    Column("PID", lambda p: _or_dash(None if p.pid is None else str(p.pid)), right=True),
    Column("USER", lambda p: _or_dash(p.username)),
    Column("HOST", lambda p: _or_dash(p.fqdn)),
    Column("PROGRAM", lambda p: _or_dash(p.exe_path), width=200),
)


def process_json(process: ProcessRecord) -> dict[str, Any]:
    """The process as JSON, with the ids of its app, version and environment."""
    return {
        "id": process.id,
        "started": _iso(process.run_ts),
        "run_ts": process.run_ts,
        "app": process.app.name,
        "app_id": process.app.id,
        "vsn": _vsn(process),
        "app_vsn_id": None if process.app_vsn is None else process.app_vsn.id,
        "env": _env(process),
        "environment_id": None if process.environment is None else process.environment.id,
        "pid": process.pid,
        "user": process.username,
        "host": process.fqdn,
        "exe_path": process.exe_path,
    }


# -- trace groups ---------------------------------------------------------------------------------

GROUP_COLUMNS: tuple[Column[TraceGroup], ...] = (
    Column("COUNT", lambda g: str(g.count), right=True),
    Column("FIRST SEEN (UTC)", lambda g: format_utc(g.first_ts)),
    Column("LAST SEEN (UTC)", lambda g: format_utc(g.last_ts)),
    Column("EXCEPTION", lambda g: _or_dash(g.exc_type)),
    Column(
        "TRACE", lambda g: _or_dash(None if g.stacktrace_id is None else str(g.stacktrace_id)), right=True
    ),
    Column("WHERE", _where_of, width=100),
    Column("APPS", lambda g: ", ".join(a.name for a in g.apps) or "-"),
    Column("VERSIONS", lambda g: _versions(g.app_vsns)),
    Column("ENVS", lambda g: ", ".join(e.name for e in g.environments) or "-"),
    Column("LAST EVENT", lambda g: str(g.last_event_id), right=True),
    Column("MESSAGE", lambda g: _or_dash(g.message), width=200),
)


def group_json(group: TraceGroup) -> dict[str, Any]:
    """The trace group as JSON."""
    return {
        "count": group.count,
        "first_seen": _iso(group.first_ts),
        "last_seen": _iso(group.last_ts),
        "first_ts": group.first_ts,
        "last_ts": group.last_ts,
        "exc_type": group.exc_type,
        "stacktrace_id": group.stacktrace_id,
        "where": _where_of(group),
        "apps": [app.name for app in group.apps],
        "versions": [{"app": vsn.app.name, "vsn": vsn.vsn} for vsn in group.app_vsns],
        "envs": [env.name for env in group.environments],
        "last_event_id": group.last_event_id,
        "message": group.message,
    }


# -- daily counts ---------------------------------------------------------------------------------

DAILY_COLUMNS: tuple[Column[DailyCount], ...] = (
    Column("DAY (UTC)", lambda r: r.day.isoformat()),
    Column("APP", lambda r: r.app.name),
    Column("VERSION", lambda r: _or_dash(None if r.app_vsn is None else r.app_vsn.vsn)),
    Column("ENV", lambda r: _or_dash(None if r.environment is None else r.environment.name)),
    Column("EVENTS", lambda r: str(r.events), right=True),
    Column("ERRORS", lambda r: str(r.errors), right=True),
)


def daily_json(row: DailyCount) -> dict[str, Any]:
    """One day's count as JSON."""
    return {
        "day": row.day.isoformat(),
        "app": row.app.name,
        "app_id": row.app.id,
        "vsn": None if row.app_vsn is None else row.app_vsn.vsn,
        "app_vsn_id": None if row.app_vsn is None else row.app_vsn.id,
        "env": None if row.environment is None else row.environment.name,
        "environment_id": None if row.environment is None else row.environment.id,
        "events": row.events,
        "errors": row.errors,
    }


# -- prune ------------------------------------------------------------------------------------------


def _counted(count: int, one: str, many: str) -> str:
    return f"{count:,} {one if count == 1 else many}"


def prune_text(report: PruneReport) -> str:
    """One line saying what a prune deleted (or would delete)."""
    verb = "Would delete" if report.dry_run else "Deleted"
    return (
        f"{verb} {_counted(report.events, 'event', 'events')} "
        f"({_counted(report.data, 'data row', 'data rows')}), "
        f"{_counted(report.stacktraces, 'stack trace', 'stack traces')} "
        f"({_counted(report.stackframes, 'frame', 'frames')}), "
        f"{_counted(report.call_sites, 'call site', 'call sites')} and "
        f"{_counted(report.processes, 'process', 'processes')}, "
        f"recorded before {format_utc(report.before_ts)} UTC.\n"
    )


def prune_json(report: PruneReport) -> dict[str, Any]:
    """The prune report as JSON."""
    return {
        "before": _iso(report.before_ts),
        "before_ts": report.before_ts,
        "dry_run": report.dry_run,
        "events": report.events,
        "data": report.data,
        "stacktraces": report.stacktraces,
        "stackframes": report.stackframes,
        "call_sites": report.call_sites,
        "processes": report.processes,
    }
