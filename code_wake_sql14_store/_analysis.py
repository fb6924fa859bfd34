"""Pieces of the analysis queries that are not SQL: filters resolved to ids, partial results merged.

A trace-group or daily-count query is answered in pieces (summary rows for
whole days and hours, events for the minutes at the ends, see `_counts`);
each piece gives partial rows, merged here into the answer.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeAlias

import sqlalchemy as sa

from code_wake.query import TraceGroup, day_of

__all__ = [
    "DailyTotals",
    "GroupPart",
    "GroupTally",
    "Scope",
    "distinct_rows",
    "merge_groups",
    "none_if_empty",
    "time_range",
]

GroupPart: TypeAlias = tuple[Any, ...]
"""stacktrace_id, exc_type, count, first_ts, last_ts, last_event_id, and the app, version and
environment ids seen: each comma-separated, or the one id (an int) where the filter fixes it."""

DailyKey: TypeAlias = tuple[datetime.date, int, "int | None", "int | None"]
"""UTC day, app_id, app_vsn_id, environment_id."""


@dataclass(frozen=True)
class Scope:
    """The app, versions and environment a filter names, as ids (None: not filtered on)."""

    app_id: int | None = None
    vsn_ids: tuple[int, ...] | None = None
    env_id: int | None = None

    def conditions(self, table: sa.TableClause) -> list[sa.ColumnElement[bool]]:
        """Conditions on a table with ``app_id``, ``app_vsn_id`` and ``environment_id`` columns."""
        found: list[sa.ColumnElement[bool]] = []
        if self.app_id is not None:
            found.append(table.c.app_id == self.app_id)
        if self.vsn_ids is not None:
            # One version is the usual case: equality lets the index give the time order too.
            vsn = table.c.app_vsn_id
            found.append(vsn == self.vsn_ids[0] if len(self.vsn_ids) == 1 else vsn.in_(self.vsn_ids))
        if self.env_id is not None:
            found.append(table.c.environment_id == self.env_id)
        return found


def time_range(
    column: sa.ColumnElement[Any],
    since: float | sa.BindParameter[Any] | None,
    until: float | sa.BindParameter[Any] | None,
) -> list[sa.ColumnElement[bool]]:
    """`column` from `since` (inclusive) to `until` (exclusive): values or parameters; None is open."""
    found: list[sa.ColumnElement[bool]] = []
    if since is not None:
        found.append(column >= since)
    if until is not None:
        found.append(column < until)
    return found


def none_if_empty(value: Any) -> Any:
    """The summary's "none" (0 or "") as None."""
    return value or None


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
        _, _, count, first_ts, last_ts, last_event_id, app_ids, vsn_ids, env_ids = part
        self.count += int(count)
        self.first_ts = min(self.first_ts, float(first_ts))
        self.last_ts = max(self.last_ts, float(last_ts))
        self.last_event_id = max(self.last_event_id, int(last_event_id))
        for ids, listed in ((self.app_ids, app_ids), (self.vsn_ids, vsn_ids), (self.env_ids, env_ids)):
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
        key = (none_if_empty(part[0]), none_if_empty(part[1]))
        tally = tallies.get(key)
        if tally is None:
            tally = tallies[key] = GroupTally(*key)
        tally.add(part)
    ordered = sorted(tallies.values(), key=GroupTally.order)
    return ordered if limit is None else ordered[:limit]


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

    def add_bucket(self, bucket_ts: int, *rest: Any) -> None:
        """Add a summary row of an hour or a day starting at `bucket_ts`."""
        self.add(day_of(float(bucket_ts)), *rest)

    def app_ids(self) -> list[int]:
        """The distinct app ids in the totals."""
        return sorted({key[1] for key in self.totals})

    def vsn_ids(self) -> list[int]:
        """The distinct app version ids in the totals."""
        return sorted({key[2] for key in self.totals if key[2] is not None})

    def env_ids(self) -> list[int]:
        """The distinct environment ids in the totals."""
        return sorted({key[3] for key in self.totals if key[3] is not None})


def distinct_rows(rows: Sequence[Any], previous_id: int | None) -> list[Any]:
    """`rows` without repeats of the same event (a term matched twice), which are adjacent."""
    found: list[Any] = []
    for row in rows:
        if row.id != previous_id:
            found.append(row)
        previous_id = row.id
    return found
