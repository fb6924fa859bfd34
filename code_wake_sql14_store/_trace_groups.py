"""Trace groups: the events with a stack trace or an exception, one group per (trace, exception type).

The filter's time range is read in pieces (`_counts.time_pieces`): whole
days and hours from ``event_counts``, its ends (and any filter by process or
data terms) from ``events``. One statement answers them all, the pieces'
grouped selects joined by UNION ALL; it is built once per shape of the
filter (`GroupShape`), its values bound as parameters, so SQLAlchemy also
reuses its compiled form. Each piece gives partial rows per group
(`GroupPart`), merged here (`GroupTally`) into the answer.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import sqlalchemy as sa

from code_wake.query import EventFilter, TraceGroup

from ._counts import Segment, none_if_empty, time_pieces
from ._database import chunks
from ._filters import (
    FilterShape,
    Scope,
    carrying_conditions,
    filter_conditions,
    filter_parameters,
    time_range,
)
from ._lookups import Lookups
from ._records import column_getter
from ._traces import StackTraces
from .schema import MYSQL_DIALECTS, event_counts, events

__all__ = ["GroupPart", "GroupShape", "GroupTally", "merge_groups", "trace_groups"]

_MESSAGES_QUERY = sa.select(events.c.id, events.c.exc_message).where(
    events.c.id.in_(sa.bindparam("ids", expanding=True))
)

_COUNT_LABELS = ("n", "first_ts", "last_ts", "last_event_id")
"""The labels of the aggregates of a piece's rows, named as the fields of `GroupPart`."""

_COUNT_COLUMNS = ("stacktrace_id", "exc_type", *_COUNT_LABELS)
"""The columns of every row of a trace-group statement: the group and its counts."""

_SCOPE_LISTS = ("app_ids", "vsn_ids", "env_ids")
"""The labels of the where-seen columns of a piece's rows: app, version and environment ids."""


class GroupShape(NamedTuple):
    """What a trace-group statement depends on: the shape of the filter and of its time range.

    A statement is built once per shape (`_cached_group_statement`); the
    values come as bound parameters (`filter_parameters`, `_piece_parameters`).
    """

    filter: FilterShape
    pieces: tuple[tuple[int | None, bool, bool], ...]
    """Per piece of the time range: its span (None: read ``events``), whether it has a start, an end."""

    @classmethod
    def of(cls, dialect: str, f: EventFilter, scope: Scope, pieces: Sequence[Segment]) -> GroupShape:
        """The shape of `f` (its names as ids in `scope`), read in `pieces`."""
        return cls(
            filter=FilterShape.of(dialect, f, scope),
            pieces=tuple((span, since is not None, until is not None) for span, since, until in pieces),
        )


class GroupPart(NamedTuple):
    """One piece's partial row of a trace group."""

    stacktrace_id: int | None
    exc_type: str | None
    n: int
    """Events counted."""
    first_ts: float
    last_ts: float
    last_event_id: int
    app_ids: Any
    """The app ids seen, comma-separated; or the one id (an int) where the filter fixes it."""
    vsn_ids: Any
    """The same for app versions."""
    env_ids: Any
    """The same for environments."""


@dataclass
class GroupTally:
    """One trace group, merged from the partial rows of every piece of the time range."""

    trace_id: int | None
    exc_type: str | None
    count: int = 0
    first_ts: float = float("inf")
    last_ts: float = float("-inf")
    last_event_id: int = 0
    app_ids: set[int] = field(default_factory=set)
    vsn_ids: set[int] = field(default_factory=set)
    env_ids: set[int] = field(default_factory=set)

    def add(self, part: GroupPart) -> None:
        """Count a piece's partial row of this group in."""
        self.count += int(part.n)
        self.first_ts = min(self.first_ts, float(part.first_ts))
        self.last_ts = max(self.last_ts, float(part.last_ts))
        self.last_event_id = max(self.last_event_id, int(part.last_event_id))
        seen = ((self.app_ids, part.app_ids), (self.vsn_ids, part.vsn_ids), (self.env_ids, part.env_ids))
        for ids, listed in seen:
            if isinstance(listed, int):
                ids.update((listed,) if listed else ())
                continue
            # 0 is the summary's "none"; NULLs are left out of the list by the database.
            ids.update(int(i) for i in str(listed or "").split(",") if i and i != "0")

    def order(self) -> tuple[int, float, int, str]:
        """The order of trace groups, `code_wake.query.TraceGroup.rank`."""
        return TraceGroup.rank(self.count, self.last_ts, self.trace_id, self.exc_type)


def merge_groups(parts: Iterable[GroupPart], limit: int | None) -> list[GroupTally]:
    """Partial rows merged per (stack trace, exception type), most frequent first, at most `limit`."""
    tallies: dict[tuple[int | None, str | None], GroupTally] = {}
    for part in parts:
        key = (none_if_empty(part.stacktrace_id), none_if_empty(part.exc_type))
        tally = tallies.get(key)
        if tally is None:
            tally = tallies[key] = GroupTally(*key)
        tally.add(part)
    ordered = sorted(tallies.values(), key=GroupTally.order)
    return ordered if limit is None else ordered[:limit]


def trace_groups(
    conn: sa.Connection, lookups: Lookups, traces: StackTraces, f: EventFilter
) -> list[TraceGroup]:
    """The trace groups of the events `f` selects, most frequent first, at most `f.limit`."""
    scope = lookups.scope(conn, f)
    if scope is None:
        return []
    pieces = time_pieces(f)
    if not pieces:
        return []
    dialect = conn.dialect.name
    shape = GroupShape.of(dialect, f, scope, pieces)
    if f.terms:
        # Data terms have values in the statement (their index needs them): built each time.
        statement = _group_statement(shape, carrying_conditions(conn, list(f.terms)))
    else:
        statement = _cached_group_statement(shape)
    if not all(shape.filter.fixed):
        _prepare_id_lists(conn)
    fixed = scope.fixed_ids()
    result = conn.execute(statement, {**filter_parameters(f, scope), **_piece_parameters(pieces)})
    parts = _group_parts(result, fixed)
    return _records(conn, lookups, traces, merge_groups(parts, f.limit))


def _prepare_id_lists(conn: sa.Connection) -> None:
    """MySQL cuts GROUP_CONCAT at 1,024 bytes unless told otherwise (once per connection)."""
    if conn.dialect.name in MYSQL_DIALECTS and not conn.info.get("code_wake_group_concat"):
        conn.exec_driver_sql("SET SESSION group_concat_max_len = 4194304")
        conn.info["code_wake_group_concat"] = True


def _records(
    conn: sa.Connection, lookups: Lookups, traces: StackTraces, tallies: Sequence[GroupTally]
) -> list[TraceGroup]:
    """The records of the chosen groups: traces, messages, apps, versions and environments."""
    stored = traces.with_ids(conn, {t.trace_id for t in tallies if t.trace_id is not None})
    messages: dict[int, str | None] = {}
    for chunk in chunks(sorted({t.last_event_id for t in tallies})):
        rows = conn.execute(_MESSAGES_QUERY, {"ids": list(chunk)}).all()
        messages.update((int(row.id), row.exc_message) for row in rows)
    names = lookups.names(
        conn,
        {i for t in tallies for i in t.app_ids},
        {i for t in tallies for i in t.vsn_ids},
        {i for t in tallies for i in t.env_ids},
    )
    return [
        TraceGroup(
            exc_type=t.exc_type,
            stacktrace=None if t.trace_id is None else stored.get(t.trace_id),
            count=t.count,
            first_ts=t.first_ts,
            last_ts=t.last_ts,
            last_event_id=t.last_event_id,
            message=messages.get(t.last_event_id),
            apps=tuple(sorted((names.apps[i] for i in t.app_ids), key=lambda a: (a.name, a.id))),
            app_vsns=tuple(
                sorted((names.vsns[i] for i in t.vsn_ids), key=lambda v: (v.app.name, v.vsn, v.id))
            ),
            environments=tuple(sorted((names.envs[i] for i in t.env_ids), key=lambda e: (e.name, e.id))),
        )
        for t in tallies
    ]


def _piece_parameters(pieces: Sequence[Segment]) -> dict[str, Any]:
    """The values of the time bounds of the pieces of a trace-group statement."""
    found: dict[str, Any] = {}
    for number, (span, since, until) in enumerate(pieces):
        # Summary pieces start and end on bucket boundaries: integers, as the column is (bucket_range).
        if since is not None:
            found[f"since{number}"] = since if span is None else int(since)
        if until is not None:
            found[f"until{number}"] = until if span is None else int(until)
    return found


def _group_parts(result: sa.Result[Any], fixed: tuple[int | None, int | None, int | None]) -> list[GroupPart]:
    """The rows of the trace-group statement as `GroupPart`s: the fixed ids where no list was read.

    Columns are found by name once (`column_getter`): a statement has a row
    per group and piece, hundreds on a busy store.
    """
    counts = column_getter(result, *_COUNT_COLUMNS)
    keys = list(result.keys())
    lists = [
        (None if known is not None else keys.index(name), known)
        for name, known in zip(_SCOPE_LISTS, fixed, strict=True)
    ]
    return [
        GroupPart(*counts(row), *(known if index is None else row[index] for index, known in lists))
        for row in result.all()
    ]


@functools.lru_cache(maxsize=256)
def _cached_group_statement(shape: GroupShape) -> sa.Select[Any] | sa.CompoundSelect[Any]:
    """`_group_statement` of a filter without data terms, made once per shape."""
    return _group_statement(shape, ())


def _group_statement(
    shape: GroupShape, carrying: Sequence[sa.ColumnElement[bool]]
) -> sa.Select[Any] | sa.CompoundSelect[Any]:
    """Every piece's groups in one statement: per piece and (trace, type), a `GroupPart`'s columns.

    `carrying` are the conditions on ``events`` of the filter's data terms (none without terms).
    """
    branches = [
        _group_branch(shape.filter, number, piece, carrying) for number, piece in enumerate(shape.pieces)
    ]
    return branches[0] if len(branches) == 1 else sa.union_all(*branches)


def _group_branch(
    shape: FilterShape,
    number: int,
    piece: tuple[int | None, bool, bool],
    carrying: Sequence[sa.ColumnElement[bool]],
) -> sa.Select[Any]:
    """One piece's groups: per (trace, type) the count, first and last seen, latest event, where seen.

    Where seen comes as comma-separated ids, aggregated by the database, so
    that a piece returns a row per group rather than per app version too;
    not for what the filter fixes (one app, version or environment), which
    the caller fills in (`_group_parts`).
    """
    span, has_since, has_until = piece
    since: sa.BindParameter[Any] | None = sa.bindparam(f"since{number}") if has_since else None
    until: sa.BindParameter[Any] | None = sa.bindparam(f"until{number}") if has_until else None
    c: Any
    if span is None:
        c = events.c
        counts: tuple[sa.ColumnElement[Any], ...] = (
            sa.func.count(),
            sa.func.min(c.when_ts),
            sa.func.max(c.when_ts),
            sa.func.max(c.id),
        )
        conditions = [
            *filter_conditions(shape, events, indexed=not shape.terms),
            *time_range(c.when_ts, since, until),
        ]
        if not shape.errors:
            conditions.append(sa.or_(c.stacktrace_id.is_not(None), c.exc_type.is_not(None)))
        conditions.extend(carrying)
    else:
        c = event_counts.c
        counts = (
            sa.func.sum(c.n),
            sa.func.min(c.first_ts),
            sa.func.max(c.last_ts),
            sa.func.max(c.last_event_id),
        )
        conditions = [
            c.span == span,
            sa.or_(c.stacktrace_id != 0, c.exc_type != ""),
            *filter_conditions(shape, event_counts),
            *time_range(c.bucket_ts, since, until),
        ]
    # "n", not "count": a row's count() is the tuple method.
    labelled = [count.label(name) for count, name in zip(counts, _COUNT_LABELS, strict=True)]
    scope_columns = (c.app_id, c.app_vsn_id, c.environment_id)
    lists = [
        _id_list(shape.dialect, column).label(name)
        for column, name, fixed in zip(scope_columns, _SCOPE_LISTS, shape.fixed, strict=True)
        if not fixed
    ]
    return (
        sa.select(c.stacktrace_id, c.exc_type, *labelled, *lists)
        .where(*conditions)
        .group_by(c.stacktrace_id, c.exc_type)
    )


def _id_list(dialect: str, column: sa.ColumnElement[Any]) -> sa.ColumnElement[Any]:
    """Aggregate: the distinct ids of `column` in a group, comma-separated."""
    if dialect == "postgresql":
        comma: sa.ColumnElement[str] = sa.literal_column("','")
        return sa.func.string_agg(sa.distinct(sa.cast(column, sa.Text)), comma)
    return sa.func.group_concat(sa.distinct(column))
