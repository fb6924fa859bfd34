"""Records and rows: values clipped to fit their columns, and the queries and conversions that read records.

Every row is read by column name. The queries here are built once, at
import; SQLAlchemy caches their compiled form by statement.
"""

from __future__ import annotations

import json
import operator
from collections.abc import Callable, Sequence
from typing import Any, TypeAlias

import sqlalchemy as sa

from code_wake.event import Pairs
from code_wake.records import (
    AppRecord,
    AppVsnRecord,
    DataItem,
    EnvironmentRecord,
    EventRecord,
    ProcessRecord,
    StackframeRecord,
    StacktraceRecord,
)

from .schema import (
    LONG_TEXT_LIMIT,
    NAME_LENGTH,
    app_vsns,
    apps,
    environments,
    processes,
    stackframes,
    stacktraces,
)

__all__ = [
    "APP_VSN_QUERY",
    "PROCESS_QUERY",
    "Row",
    "app_record",
    "app_vsn_record",
    "chain_of",
    "chain_text",
    "clip",
    "clip_data",
    "column_getter",
    "environment_record",
    "event_record",
    "frame_values",
    "process_record",
    "process_values",
    "select_traces",
]

Row: TypeAlias = Any
"""A result row, read by column name (SQLAlchemy 2.1 types rows by their column tuple, which varies)."""

_VSN_APP = apps.alias("vsn_app")

PROCESS_QUERY = sa.select(
    processes.c.id,
    processes.c.pid,
    processes.c.username,
    processes.c.fqdn,
    processes.c.exe_path,
    processes.c.run_ts,
    apps.c.id.label("app_id"),
    apps.c.name.label("app_name"),
    app_vsns.c.id.label("vsn_id"),
    app_vsns.c.vsn.label("vsn"),
    _VSN_APP.c.id.label("vsn_app_id"),
    _VSN_APP.c.name.label("vsn_app_name"),
    environments.c.id.label("env_id"),
    environments.c.name.label("env_name"),
).select_from(
    processes.join(apps, processes.c.app_id == apps.c.id)
    .outerjoin(app_vsns, processes.c.app_vsn_id == app_vsns.c.id)
    .outerjoin(_VSN_APP, app_vsns.c.app_id == _VSN_APP.c.id)
    .outerjoin(environments, processes.c.environment_id == environments.c.id)
)
"""Processes with their app, version (and its app) and environment: rows for `process_record`."""

APP_VSN_QUERY = sa.select(
    app_vsns.c.id, app_vsns.c.vsn, apps.c.id.label("app_id"), apps.c.name.label("app_name")
).select_from(app_vsns.join(apps, app_vsns.c.app_id == apps.c.id))
"""App versions with their app: rows for `app_vsn_record`."""

_TRACE_QUERY = (
    sa.select(
        stacktraces.c.id,
        stacktraces.c.digest,
        stackframes.c.filename,
        stackframes.c.lineno,
        stackframes.c.src,
        stackframes.c.function,
    )
    .select_from(stacktraces.outerjoin(stackframes, stackframes.c.stacktrace_id == stacktraces.c.id))
    .order_by(stacktraces.c.id, stackframes.c.id)
)


def column_getter(result: sa.Result[Any], *names: str) -> Callable[[Row], tuple[Any, ...]]:
    """Reads the columns `names` (two or more) of each row of `result`, found by name once.

    For the many rows of a summary or a recount: SQLAlchemy 2.1 reads a row's
    attribute in Python, about 0.4 us a column, where this getter takes the
    values by position (found from the result's column names) in C.
    """
    keys = list(result.keys())
    return operator.itemgetter(*(keys.index(name) for name in names))


def clip(text: Any, limit: int) -> Any:
    """`text` cut to `limit` characters (None stays None): what the column can hold everywhere."""
    return text[:limit] if text is not None and len(text) > limit else text


def clip_data(data: Pairs) -> Pairs:
    """An event's items, keys and values clipped to what ``events_data`` holds (`data` if none is cut)."""
    # This runs for every event written, and the event policy has cut keys and values
    # already (unless set to keep more than the columns hold): look first, cut rarely.
    for key, val in data:
        if len(key) > NAME_LENGTH or (val is not None and len(val) > LONG_TEXT_LIMIT):
            return tuple((clip(key, NAME_LENGTH), clip(val, LONG_TEXT_LIMIT)) for key, val in data)
    return data


def process_values(record: ProcessRecord) -> dict[str, Any]:
    """The ``processes`` row of `record`, without its id."""
    return {
        "pid": record.pid,
        "username": record.username,
        "fqdn": record.fqdn,
        "exe_path": record.exe_path,
        "run_ts": record.run_ts,
        "app_id": record.app.id,
        "app_vsn_id": None if record.app_vsn is None else record.app_vsn.id,
        "environment_id": None if record.environment is None else record.environment.id,
    }


def frame_values(trace_id: int, frame: StackframeRecord) -> dict[str, Any]:
    """The ``stackframes`` row of `frame`, a frame of the trace `trace_id`."""
    return {
        "stacktrace_id": trace_id,
        "filename": frame.filename,
        "lineno": frame.lineno,
        "src": frame.src,
        "function": frame.function,
    }


def select_traces(conn: sa.Connection, condition: sa.ColumnElement[bool]) -> dict[int, StacktraceRecord]:
    """The stack traces `condition` selects, by id, with their frames (innermost first)."""
    digests: dict[int, bytes] = {}
    frames: dict[int, list[StackframeRecord]] = {}
    for row in conn.execute(_TRACE_QUERY.where(condition)).all():
        digests.setdefault(row.id, bytes(row.digest))
        stored = frames.setdefault(row.id, [])
        if row.filename is not None:  # the outer join's row for a trace without frames
            stored.append(StackframeRecord(row.filename, row.lineno, row.src, row.function))
    return {
        trace_id: StacktraceRecord(trace_id, digest, tuple(reversed(frames[trace_id])))
        for trace_id, digest in digests.items()
    }


def event_record(
    event_id: int, row: Row, owner: ProcessRecord, data: tuple[DataItem, ...], trace: StacktraceRecord | None
) -> EventRecord:
    """The record of event `event_id`: `row` has its ``events`` columns (a result row, or the row written)."""
    return EventRecord(
        id=event_id,
        when_ts=row.when_ts,
        process=owner,
        data=data,
        stacktrace=trace,
        exc_type=row.exc_type,
        exc_message=row.exc_message,
        digest=None if row.digest is None else bytes(row.digest),
        exc_chain=chain_of(getattr(row, "exc_chain", None)),
    )


def chain_text(chain: Sequence[tuple[str, str]]) -> str | None:
    """``events.exc_chain``: the chain as a JSON list of ``[type, message]``; None for no chain."""
    if not chain:
        return None
    text: str | None = clip(json.dumps([list(link) for link in chain], ensure_ascii=False), LONG_TEXT_LIMIT)
    return text


def chain_of(text: str | None) -> tuple[tuple[str, str], ...]:
    """The chain stored by `chain_text`; empty for null, or for a value clipped or written by hand."""
    if not text:
        return ()
    try:
        links: list[list[str]] = json.loads(text)
        return tuple((str(kind), str(message)) for kind, message in links)
    except (ValueError, TypeError):
        return ()


def app_record(row: Row) -> AppRecord:
    """The record of an ``apps`` row."""
    return AppRecord(row.id, row.name)


def environment_record(row: Row) -> EnvironmentRecord:
    """The record of an ``environments`` row."""
    return EnvironmentRecord(row.id, row.name)


def app_vsn_record(row: Row) -> AppVsnRecord:
    """The record of an `APP_VSN_QUERY` row."""
    return AppVsnRecord(row.id, row.vsn, AppRecord(row.app_id, row.app_name))


def process_record(row: Row) -> ProcessRecord:
    """The record of a `PROCESS_QUERY` row."""
    vsn = None
    if row.vsn_id is not None:
        vsn = AppVsnRecord(row.vsn_id, row.vsn, AppRecord(row.vsn_app_id, row.vsn_app_name))
    return ProcessRecord(
        id=row.id,
        pid=row.pid,
        username=row.username,
        fqdn=row.fqdn,
        exe_path=row.exe_path,
        run_ts=row.run_ts,
        app=AppRecord(row.app_id, row.app_name),
        app_vsn=vsn,
        environment=None if row.env_id is None else EnvironmentRecord(row.env_id, row.env_name),
    )
