"""Events per hour or UTC day and per trace group: `Sql14Store.query_counts_over_time`.

What the web view's charts draw. A time window is read in pieces, as trace
groups and daily counts are (`_counts.segments`): whole days from the day
rows of ``event_counts``, whole hours from its hour rows, and the minutes at
either end from ``events`` itself, so the counts are exact for any window.
An hourly series never reads day rows (a day row cannot be split into
hours). A filter by process or data terms is answered from ``events`` alone,
since the summary does not know them. Every piece is a grouped SELECT, and
the pieces are one statement (UNION ALL): one round trip.

Names become ids and ids records through `_lookups`, and the filter's
conditions come from `_filters`, as for trace groups, so this counts exactly
what ``query_trace_groups`` would select.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeAlias

import sqlalchemy as sa

from code_wake.query import BucketCount, EventFilter

from ._counts import Segment, none_if_empty, segments
from ._filters import Scope, bound_conditions, carrying_conditions, time_range
from ._lookups import Lookups
from .schema import COUNT_SPANS, event_counts, events

__all__ = ["counts_over_time"]

SeriesKey: TypeAlias = tuple[int, "int | None", "str | None", "int | None", "int | None", "int | None"]
"""bucket_ts, stacktrace_id, exc_type, app_id, app_vsn_id, environment_id (None: none, or not asked)."""

_SCOPE_COLUMNS = ("app_id", "app_vsn_id", "environment_id")


def counts_over_time(
    conn: sa.Connection, lookups: Lookups, f: EventFilter, span: int, by_scope: bool
) -> list[BucketCount]:
    """The store's answer to `code_wake.Store.query_counts_over_time`."""
    span = BucketCount.check_span(span)
    scope = lookups.scope(conn, f)
    parts = _pieces(f, span)
    if scope is None or not parts:
        return []
    carrying = carrying_conditions(conn, list(f.terms)) if f.terms else []
    statement = _statement(conn.dialect.name, f, scope, parts, by_scope, carrying)
    totals: dict[SeriesKey, int] = {}
    for row in conn.execute(statement):
        _add(totals, row, span)
    names = (
        lookups.names(
            conn,
            sorted({k[3] for k in totals if k[3]}),
            sorted({k[4] for k in totals if k[4]}),
            sorted({k[5] for k in totals if k[5]}),
        )
        if by_scope
        else None
    )
    rows = [
        BucketCount(
            bucket_ts=key[0],
            span=span,
            exc_type=key[2],
            stacktrace_id=key[1],
            count=count,
            app=None if names is None or key[3] is None else names.apps[key[3]],
            app_vsn=None if names is None or key[4] is None else names.vsns[key[4]],
            environment=None if names is None or key[5] is None else names.envs[key[5]],
        )
        for key, count in totals.items()
    ]
    rows.sort(key=BucketCount.sort_key)
    return rows if f.limit is None else rows[: f.limit]


def _pieces(f: EventFilter, span: int) -> list[Segment]:
    """How to read the window: summary rows no larger than `span` where they answer, else events."""
    if f.since is not None and f.until is not None and f.since >= f.until:
        return []
    if f.by_process_or_data:
        return [(None, f.since, f.until)]
    return segments(f.since, f.until, tuple(s for s in COUNT_SPANS if s <= span), whole=False)


def _statement(
    dialect: str,
    f: EventFilter,
    scope: Scope,
    parts: Sequence[Segment],
    by_scope: bool,
    carrying: Sequence[sa.ColumnElement[bool]],
) -> sa.Select[Any] | sa.CompoundSelect[Any]:
    branches = [_branch(dialect, f, scope, part, by_scope, carrying) for part in parts]
    return branches[0] if len(branches) == 1 else sa.union_all(*branches)


def _branch(
    dialect: str,
    f: EventFilter,
    scope: Scope,
    part: Segment,
    by_scope: bool,
    carrying: Sequence[sa.ColumnElement[bool]],
) -> sa.Select[Any]:
    """One piece's counts per bucket (of the piece's rows), trace group and, with `by_scope`, scope.

    `carrying`: the conditions of the filter's data terms (read from ``events`` only).
    """
    piece_span, since, until = part
    c: Any
    if piece_span is None:
        c = events.c
        bucket = _hour_start(dialect, c.when_ts)
        count: sa.ColumnElement[Any] = sa.func.count()
        conditions = [
            *bound_conditions(dialect, f, scope, indexed=not f.terms),
            *time_range(c.when_ts, since, until),
        ]
        conditions.extend(carrying)
    else:
        c = event_counts.c
        bucket = c.bucket_ts
        count = sa.func.sum(c.n)
        # Summary pieces start and end on bucket boundaries, compared as the integers they are
        # (PostgreSQL would cast the column to compare it with a float, and miss its index).
        conditions = [
            c.span == piece_span,
            *bound_conditions(dialect, f, scope, event_counts),
            *time_range(c.bucket_ts, _whole(since), _whole(until)),
        ]
    keys: list[sa.ColumnElement[Any]] = [bucket.label("bucket"), c.stacktrace_id, c.exc_type]
    if by_scope:
        keys.extend(c[name] for name in _SCOPE_COLUMNS)
    return sa.select(*keys, count.label("n")).where(*conditions).group_by(bucket, *keys[1:])


def _hour_start(dialect: str, when_ts: sa.ColumnElement[float]) -> sa.ColumnElement[Any]:
    """The start of the hour of `when_ts` (epoch seconds), computed by the database.

    SQLite may lack floor() (its math functions are a compile-time option);
    CAST truncates, which is floor for the positive times events have. The
    hour is a literal so that the expression in SELECT and GROUP BY is the
    same text (PostgreSQL would not match two bound parameters).
    """
    hour: sa.ColumnElement[Any] = sa.literal_column(str(COUNT_SPANS[-1]))
    hours = sa.cast(when_ts / hour, sa.Integer) if dialect == "sqlite" else sa.func.floor(when_ts / hour)
    return hours * hour


def _whole(bound: float | None) -> int | None:
    return None if bound is None else int(bound)


def _add(totals: dict[SeriesKey, int], row: Any, span: int) -> None:
    """Add one piece's row (counts of an hour or a day) to the totals, in the series' bucket."""
    bucket, trace_id, exc_type, *scope, count = row
    app_id, vsn_id, env_id = (_id(value) for value in scope) if scope else (None, None, None)
    key = (
        BucketCount.bucket_of(float(bucket), span),
        none_if_empty(trace_id),
        none_if_empty(exc_type),
        app_id,
        vsn_id,
        env_id,
    )
    totals[key] = totals.get(key, 0) + int(count)


def _id(value: Any) -> int | None:
    return None if not value else int(value)
