"""The ``event_counts`` summary: events per hour, per day and in all, kept in step with ``events``.

Every batch of events adds its counts in the same transaction (`add_counts`),
so trace groups and daily counts read a few summary rows instead of every
event. All of time is one row per key. A time range is answered in pieces
(`segments`): whole days from the day rows, whole hours at its ends from the
hour rows, and the minutes before the first and after the last whole hour
from ``events`` itself, so answers are exact for any range.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, TypeAlias

import sqlalchemy as sa
from sqlalchemy.dialects import mysql, postgresql, sqlite

from code_wake.query import EventFilter

from ._records import column_getter
from .schema import ALL_TIME, COUNT_SPANS, MYSQL_DIALECTS, event_counts, events

__all__ = [
    "CountRow",
    "Segment",
    "add_counts",
    "count_rows",
    "none_if_empty",
    "rebuild_all_time",
    "rebuild_counts",
    "segments",
    "time_pieces",
    "upsert_statement",
]

CountKey: TypeAlias = tuple[int, int, int, int, int, int, str]
"""span, bucket_ts, app_id, app_vsn_id, environment_id, stacktrace_id, exc_type (0 and "" for none)."""

CountRow: TypeAlias = tuple[int, float, "int | None", "int | None", "int | None", "int | None", "str | None"]
"""What counting needs of one event: its id, when_ts, app_id, app_vsn_id, environment_id,
stacktrace_id and exc_type."""

Segment: TypeAlias = tuple["int | None", "float | None", "float | None"]
"""A piece of a time range: (span of the summary rows to read, or None for events; from; to)."""

KEY_COLUMNS = ("span", "bucket_ts", "app_id", "app_vsn_id", "environment_id", "stacktrace_id", "exc_type")
LEVELS = (ALL_TIME, *COUNT_SPANS)
"""Every span a new event is counted in."""
_REBUILD_CHUNK = 10_000


def count_rows(rows: Iterable[CountRow], spans: tuple[int, ...] = LEVELS) -> dict[CountKey, list[Any]]:
    """The summary rows for `rows`: per key, [count, first time, last time, highest event id].

    Each event is tallied once, in the finest span's bucket; the coarser spans
    (each a multiple of the finest) are then summed from those few tallies.
    """
    finest = min((span for span in spans if span), default=0)
    fine: dict[CountKey, list[Any]] = {}
    for event_id, when_ts, app_id, vsn_id, env_id, trace_id, exc_type in rows:
        bucket = int(when_ts // finest) * finest if finest else 0
        key = (finest, bucket, app_id or 0, vsn_id or 0, env_id or 0, trace_id or 0, exc_type or "")
        tally = fine.get(key)
        if tally is None:
            fine[key] = [1, when_ts, when_ts, event_id]
            continue
        # `_merge` of one event, written out: this runs for every event written.
        tally[0] += 1
        if when_ts < tally[1]:
            tally[1] = when_ts
        elif when_ts > tally[2]:
            tally[2] = when_ts
        tally[3] = max(tally[3], event_id)
    tallies: dict[CountKey, list[Any]] = {}
    for span in spans:
        for (_, bucket, app_id, vsn_id, env_id, trace_id, exc_type), tally in fine.items():
            key = (span, bucket // span * span if span else 0, app_id, vsn_id, env_id, trace_id, exc_type)
            known = tallies.get(key)
            if known is None:
                tallies[key] = list(tally)
            else:
                _merge(known, tally)
    return tallies


def _merge(tally: list[Any], other: Sequence[Any]) -> None:
    """Add the tally `other` to `tally`, in place."""
    tally[0] += other[0]
    tally[1] = min(tally[1], other[1])
    tally[2] = max(tally[2], other[2])
    tally[3] = max(tally[3], other[3])


def _parameters(tallies: dict[CountKey, list[Any]]) -> list[dict[str, Any]]:
    # Sorted by key: concurrent writers then lock summary rows in one order (no deadlocks).
    return [
        {
            **dict(zip(KEY_COLUMNS, key, strict=True)),
            "n": n,
            "first_ts": first,
            "last_ts": last,
            "last_event_id": last_id,
        }
        for key, (n, first, last, last_id) in sorted(tallies.items())
    ]


def upsert_statement(dialect: sa.Dialect) -> sa.Executable | None:
    """INSERT that adds to an existing row instead (None: this dialect has no such statement)."""
    table = event_counts
    if dialect.name in ("sqlite", "postgresql"):
        insert = sqlite.insert(table) if dialect.name == "sqlite" else postgresql.insert(table)
        new = insert.excluded
        # SQLite's two-argument min()/max() are its least()/greatest().
        least, greatest = (
            (sa.func.min, sa.func.max) if dialect.name == "sqlite" else (sa.func.least, sa.func.greatest)
        )
        return insert.on_conflict_do_update(
            index_elements=list(KEY_COLUMNS),
            set_={
                "n": table.c.n + new.n,
                "first_ts": least(table.c.first_ts, new.first_ts),
                "last_ts": greatest(table.c.last_ts, new.last_ts),
                "last_event_id": greatest(table.c.last_event_id, new.last_event_id),
            },
        )
    if dialect.name in MYSQL_DIALECTS:
        mysql_insert = mysql.insert(table)
        new_row = mysql_insert.inserted
        return mysql_insert.on_duplicate_key_update(
            n=table.c.n + new_row.n,
            first_ts=sa.func.least(table.c.first_ts, new_row.first_ts),
            last_ts=sa.func.greatest(table.c.last_ts, new_row.last_ts),
            last_event_id=sa.func.greatest(table.c.last_event_id, new_row.last_event_id),
        )
    return None


def add_counts(conn: sa.Connection, upsert: sa.Executable | None, rows: Iterable[CountRow]) -> None:
    """Add the counts of `rows` (events just written in this transaction) to the summary."""
    _upsert(conn, upsert, _parameters(count_rows(rows)))


def _upsert(conn: sa.Connection, upsert: sa.Executable | None, parameters: list[dict[str, Any]]) -> None:
    if not parameters:
        return
    if upsert is not None:
        conn.execute(upsert, parameters)
        return
    # Another database: update, else insert. Not safe against a concurrent writer of the
    # same row, which the dialects above are.
    for row in parameters:
        match = sa.and_(*(event_counts.c[name] == row[name] for name in KEY_COLUMNS))
        changed = conn.execute(
            sa.update(event_counts)
            .where(match)
            .values(
                n=event_counts.c.n + row["n"],
                first_ts=sa.case(
                    (event_counts.c.first_ts > row["first_ts"], row["first_ts"]),
                    else_=event_counts.c.first_ts,
                ),
                last_ts=sa.case(
                    (event_counts.c.last_ts < row["last_ts"], row["last_ts"]), else_=event_counts.c.last_ts
                ),
                last_event_id=sa.case(
                    (event_counts.c.last_event_id < row["last_event_id"], row["last_event_id"]),
                    else_=event_counts.c.last_event_id,
                ),
            )
        )
        if changed.rowcount == 0:
            conn.execute(sa.insert(event_counts), row)


_EVENT_COUNT_COLUMNS = (
    events.c.id,
    events.c.when_ts,
    events.c.app_id,
    events.c.app_vsn_id,
    events.c.environment_id,
    events.c.stacktrace_id,
    events.c.exc_type,
)


def rebuild_counts(
    conn: sa.Connection, upsert: sa.Executable | None, since: float | None = None, until: float | None = None
) -> None:
    """Count again, from ``events``, every level (no bounds) or the days and hours from `since` to `until`.

    The bounds must be midnights. The summary rows are deleted first: on
    SQLite that takes the write lock, so no event slips in between the
    delete and the count. With bounds, `rebuild_all_time` must follow.
    """
    remove = sa.delete(event_counts)
    query = sa.select(*_EVENT_COUNT_COLUMNS).order_by(events.c.id)
    spans: tuple[int, ...] = LEVELS
    if since is not None and until is not None:
        spans = COUNT_SPANS
        remove = remove.where(
            event_counts.c.span != ALL_TIME,
            event_counts.c.bucket_ts >= since,
            event_counts.c.bucket_ts < until,
        )
        query = query.where(events.c.when_ts >= since, events.c.when_ts < until)
    conn.execute(remove)
    last_id: int | None = None
    while True:
        # Keyset chunks: the whole table is never held in memory at once.
        chunk = query if last_id is None else query.where(events.c.id > last_id)
        result = conn.execute(chunk.limit(_REBUILD_CHUNK))
        read = column_getter(result, *(column.name for column in _EVENT_COUNT_COLUMNS))
        rows: list[CountRow] = [read(row) for row in result]
        if not rows:
            return
        _upsert(conn, upsert, _parameters(count_rows(rows, spans)))
        last_id = rows[-1][0]  # a CountRow starts with the event's id


def rebuild_all_time(conn: sa.Connection) -> None:
    """Make the all-of-time rows again from the day rows (after a prune removed days)."""
    c = event_counts.c
    keys = (c.app_id, c.app_vsn_id, c.environment_id, c.stacktrace_id, c.exc_type)
    totals = (
        sa.select(
            sa.literal(ALL_TIME),
            sa.literal(0),
            *keys,
            sa.func.sum(c.n),
            sa.func.min(c.first_ts),
            sa.func.max(c.last_ts),
            sa.func.max(c.last_event_id),
        )
        .where(c.span == COUNT_SPANS[0])
        .group_by(*keys)
    )
    conn.execute(sa.delete(event_counts).where(c.span == ALL_TIME))
    columns = [*KEY_COLUMNS, "n", "first_ts", "last_ts", "last_event_id"]
    conn.execute(sa.insert(event_counts).from_select(columns, totals))


def segments(
    since: float | None, until: float | None, spans: tuple[int, ...] = COUNT_SPANS, whole: bool = True
) -> list[Segment]:
    """Split [since, until) into pieces the summary answers (largest spans first) and pieces it does not.

    None is an open end; with `whole`, all of time is one piece. A piece with
    span None must be read from ``events``.
    """
    if whole and since is None and until is None:
        return [(ALL_TIME, None, None)]
    if since is not None and until is not None and since >= until:
        return []
    if not spans:
        return [(None, since, until)]
    span, smaller = spans[0], spans[1:]
    first = None if since is None else -(-since // span) * span  # since, rounded up to a bucket start
    last = None if until is None else until // span * span  # until, rounded down
    if first is not None and last is not None and first >= last:
        return segments(since, until, smaller, whole=False)
    pieces: list[Segment] = []
    if since is not None and first is not None and since < first:
        pieces.extend(segments(since, first, smaller, whole=False))
    pieces.append((span, first, last))
    if until is not None and last is not None and last < until:
        pieces.extend(segments(last, until, smaller, whole=False))
    return pieces


def time_pieces(f: EventFilter, whole: bool = True) -> list[Segment]:
    """How to read the filter's time range: summary rows where they can answer, else events.

    The summary knows no process and no data: a filter by either reads
    ``events`` for all of its range. With `whole`, all of time is one piece
    (its own summary rows); daily counts need days.
    """
    if f.by_process_or_data:
        return [(None, f.since, f.until)] if f.since is None or f.until is None or f.since < f.until else []
    return segments(f.since, f.until, whole=whole)


def none_if_empty(value: Any) -> Any:
    """The summary's "none" (0 or "") as None."""
    return value or None
