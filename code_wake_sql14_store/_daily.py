"""Daily counts: events and errors per UTC day, app, version and environment.

Whole days of the filter's time range come from the day rows of
``event_counts``, whole hours at its ends from the hour rows, and the
minutes beyond them (and any filter by process or data terms) from
``events`` (`_counts.time_pieces`); `DailyTotals` adds the pieces up.
"""

from __future__ import annotations

import datetime
from typing import Any, TypeAlias

import sqlalchemy as sa

from code_wake.query import DailyCount, EventFilter, day_of

from ._counts import Segment, none_if_empty, time_pieces
from ._filters import Scope, bound_conditions, bucket_range, carrying_conditions, time_range
from ._lookups import Lookups
from ._records import column_getter
from .schema import event_counts, events

__all__ = ["DailyTotals", "daily_counts"]

DailyKey: TypeAlias = tuple[datetime.date, int, "int | None", "int | None"]
"""UTC day, app_id, app_vsn_id, environment_id."""


class DailyTotals:
    """Events and errors per UTC day, app, version and environment, added up from the pieces."""

    def __init__(self) -> None:
        self.totals: dict[DailyKey, list[int]] = {}

    def add(
        self, day: datetime.date, app_id: Any, vsn_id: Any, env_id: Any, events: int, errors: int
    ) -> None:
        """Add counts for one day and app version; rows without an app (not code_wake's) are left out."""
        if not app_id:
            return
        key = (day, int(app_id), none_if_empty(vsn_id), none_if_empty(env_id))
        total = self.totals.setdefault(key, [0, 0])
        total[0] += int(events)
        total[1] += int(errors)

    def app_ids(self) -> list[int]:
        """The distinct app ids in the totals."""
        return sorted({key[1] for key in self.totals})

    def vsn_ids(self) -> list[int]:
        """The distinct app version ids in the totals."""
        return sorted({key[2] for key in self.totals if key[2] is not None})

    def env_ids(self) -> list[int]:
        """The distinct environment ids in the totals."""
        return sorted({key[3] for key in self.totals if key[3] is not None})


def daily_counts(conn: sa.Connection, lookups: Lookups, f: EventFilter) -> list[DailyCount]:
    """Events (and errors) per UTC day, app, version and environment, newest day first."""
    scope = lookups.scope(conn, f)
    if scope is None:
        return []
    totals = DailyTotals()
    for piece in time_pieces(f, whole=False):
        _add_piece(conn, f, scope, piece, totals)
    names = lookups.names(conn, totals.app_ids(), totals.vsn_ids(), totals.env_ids())
    rows = [
        DailyCount(
            day=day,
            app=names.apps[app_id],
            app_vsn=None if vsn_id is None else names.vsns[vsn_id],
            environment=None if env_id is None else names.envs[env_id],
            events=count,
            errors=errors,
        )
        for (day, app_id, vsn_id, env_id), (count, errors) in totals.totals.items()
    ]
    rows.sort(key=DailyCount.sort_key)
    return rows if f.limit is None else rows[: f.limit]


def _add_piece(
    conn: sa.Connection, f: EventFilter, scope: Scope, piece: Segment, totals: DailyTotals
) -> None:
    """Add the counts of one piece of the time range: events one by one, or summary rows."""
    span, since, until = piece
    dialect = conn.dialect.name
    if span is None:
        c = events.c
        query = sa.select(
            c.when_ts, c.app_id, c.app_vsn_id, c.environment_id, c.exc_type.is_not(None).label("error")
        ).where(*bound_conditions(dialect, f, scope), *time_range(c.when_ts, since, until))
        if f.terms:
            query = query.where(*carrying_conditions(conn, list(f.terms)))
        result = conn.execute(query)
        read = column_getter(result, "when_ts", "app_id", "app_vsn_id", "environment_id", "error")
        for when_ts, app_id, vsn_id, env_id, error in map(read, result):
            totals.add(day_of(when_ts), app_id, vsn_id, env_id, 1, int(bool(error)))
        return
    k = event_counts.c
    errors = sa.func.sum(sa.case((k.exc_type != "", k.n), else_=0)).label("errors")
    scope_key = (k.bucket_ts, k.app_id, k.app_vsn_id, k.environment_id)
    query = (
        sa.select(*scope_key, sa.func.sum(k.n).label("n"), errors)
        .where(
            k.span == span,
            *bound_conditions(dialect, f, scope, event_counts),
            *bucket_range(k.bucket_ts, since, until),
        )
        .group_by(*scope_key)
    )
    result = conn.execute(query)
    read = column_getter(result, "bucket_ts", "app_id", "app_vsn_id", "environment_id", "n", "errors")
    for bucket_ts, app_id, vsn_id, env_id, count, errors in map(read, result.all()):
        totals.add(day_of(float(bucket_ts)), app_id, vsn_id, env_id, count, errors)
