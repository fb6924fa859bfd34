"""Retention: deleting old events and what only they used, each batch in a short transaction of its own.

Old events go first (with their data rows), oldest first, then the summary
rows they were counted in, then the stack traces, call sites and processes
nothing uses any more. The newest stack trace, call site and process are
always kept: a SQLite table hands out max(id) + 1 as the next id, and a
removed newest row would give its id to a new one while a running program
still holds it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import sqlalchemy as sa

from code_wake.query import DAY, PruneReport

from ._counts import rebuild_all_time, rebuild_counts
from ._database import Database, chunks, transient
from .schema import (
    ALL_TIME,
    call_site_data,
    call_sites,
    event_counts,
    events,
    events_data,
    processes,
    stackframes,
    stacktraces,
)

__all__ = [
    "count_prunable",
    "delete_events",
    "delete_processes",
    "delete_sites",
    "delete_traces",
    "dry_run",
    "old_event_ids",
    "prunable_processes",
    "prune",
    "recount_after",
    "unused_sites",
    "unused_traces",
]


def prune(db: Database, before_ts: float, batch_size: int) -> PruneReport:
    """Delete the events before `before_ts`, `batch_size` per transaction, then what only they used.

    The summary rows of the pruned days go next, and the day of the cut is
    counted again; then the stack traces and processes nothing uses any
    more, `CHUNK` per transaction.
    """
    removed, data = _prune_events(db, before_ts, batch_size)
    db.retrying(lambda conn: recount_after(conn, db.upsert_counts, before_ts), transient)
    traces, frames = _in_chunks(db, unused_traces, delete_traces)
    sites, _ = _in_chunks(db, unused_sites, delete_sites)
    idle, _ = _in_chunks(
        db,
        lambda conn: prunable_processes(conn, before_ts),
        lambda conn, ids: (delete_processes(conn, ids, before_ts), 0),
    )
    return PruneReport(before_ts, False, removed, data, traces, frames, idle, sites)


def dry_run(db: Database, before_ts: float) -> PruneReport:
    """What `prune` at `before_ts` would delete, counted without deleting."""
    with db.read() as conn:
        return PruneReport(before_ts, True, **count_prunable(conn, before_ts))


def _prune_events(db: Database, before_ts: float, batch_size: int) -> tuple[int, int]:
    """Delete the events before `before_ts`, oldest first, by batch; how many events and data rows went."""
    removed = data = 0
    while True:
        with db.connect() as conn:
            ids = old_event_ids(conn, before_ts, batch_size)
        if not ids:
            return removed, data
        # Each transaction is retried whole after a deadlock, a lock timeout or a lost connection.
        gone, rows = db.retrying(_bound(_delete_all, ids), transient)
        removed, data = removed + gone, data + rows


def _delete_all(conn: sa.Connection, ids: Sequence[int]) -> tuple[int, int]:
    """Delete these events, a chunk per statement, in the caller's transaction; how many of each went."""
    removed = data = 0
    for chunk in chunks(ids):
        gone, rows = delete_events(conn, chunk)
        removed, data = removed + gone, data + rows
    return removed, data


def _in_chunks(
    db: Database,
    find: Callable[[sa.Connection], list[int]],
    delete: Callable[[sa.Connection, Sequence[int]], tuple[int, int]],
) -> tuple[int, int]:
    """Find candidates, then delete them a chunk per transaction; the two counts added up."""
    with db.connect() as conn:
        candidates = find(conn)
    first = second = 0
    for chunk in chunks(candidates):
        one, two = db.retrying(_bound(delete, chunk), transient)
        first, second = first + one, second + two
    return first, second


def _bound(
    delete: Callable[[sa.Connection, Sequence[int]], tuple[int, int]], ids: Sequence[int]
) -> Callable[[sa.Connection], tuple[int, int]]:
    return lambda conn: delete(conn, ids)


def old_event_ids(conn: sa.Connection, before_ts: float, size: int) -> list[int]:
    """The ids of at most `size` of the oldest events before `before_ts` (through the time index)."""
    query = sa.select(events.c.id).where(events.c.when_ts < before_ts).order_by(events.c.when_ts).limit(size)
    return [int(i) for i in conn.execute(query).scalars()]


def delete_events(conn: sa.Connection, ids: Sequence[int]) -> tuple[int, int]:
    """Delete these events and their data rows; how many of each went."""
    data = conn.execute(sa.delete(events_data).where(events_data.c.event_id.in_(ids))).rowcount
    gone = conn.execute(sa.delete(events).where(events.c.id.in_(ids))).rowcount
    return gone, data


def recount_after(conn: sa.Connection, upsert: sa.Executable | None, before_ts: float) -> None:
    """Drop the summary rows of the pruned days, count the day of the cut again, then all of time.

    On PostgreSQL writers are held off for this one transaction (a batch
    adding its counts between the delete and the recount would be counted
    twice); on SQLite the first delete takes the write lock; on MySQL the
    delete's next-key locks hold off writers of the all-time rows.
    """
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql("LOCK TABLE event_counts IN SHARE ROW EXCLUSIVE MODE")
    day = before_ts // DAY * DAY
    c = event_counts.c
    conn.execute(sa.delete(event_counts).where(c.span != ALL_TIME, c.bucket_ts < day))
    if day < before_ts:
        rebuild_counts(conn, upsert, day, day + DAY)
    rebuild_all_time(conn)


def _newest(conn: sa.Connection, column: sa.Column[Any]) -> int:
    return int(conn.execute(sa.select(sa.func.max(column))).scalar() or 0)


def _unused_trace(since: float | None) -> sa.ColumnElement[bool]:
    """No event (at or after `since`, when given) uses the trace."""
    users = sa.exists().where(events.c.stacktrace_id == stacktraces.c.id)
    if since is not None:
        users = users.where(events.c.when_ts >= since)
    return ~users


def _unused_site(since: float | None) -> sa.ColumnElement[bool]:
    """No event (at or after `since`, when given) refers to the call site."""
    users = sa.exists().where(events.c.call_site_id == call_sites.c.id)
    if since is not None:
        users = users.where(events.c.when_ts >= since)
    return ~users


def _idle_process(before_ts: float, since: float | None) -> sa.ColumnElement[bool]:
    """The process started before `before_ts` and has no event (at or after `since`, when given)."""
    users = sa.exists().where(events.c.process_id == processes.c.id)
    if since is not None:
        users = users.where(events.c.when_ts >= since)
    return sa.and_(processes.c.run_ts < before_ts, ~users)


def unused_traces(conn: sa.Connection) -> list[int]:
    """The stack traces no event uses, but the newest."""
    query = sa.select(stacktraces.c.id).where(
        stacktraces.c.id < _newest(conn, stacktraces.c.id), _unused_trace(None)
    )
    return [int(i) for i in conn.execute(query.order_by(stacktraces.c.id)).scalars()]


def delete_traces(conn: sa.Connection, ids: Sequence[int]) -> tuple[int, int]:
    """Delete those of these traces still unused, with their frames; how many of each went.

    The traces are locked first (PostgreSQL, MySQL): a writer storing an event
    that uses one waits for this transaction, then finds the trace gone and
    stores it again. On SQLite the first delete takes the database's write lock.
    """
    chosen = sa.and_(stacktraces.c.id.in_(ids), _unused_trace(None))
    conn.execute(sa.select(stacktraces.c.id).where(stacktraces.c.id.in_(ids)).with_for_update()).all()
    frames = conn.execute(
        sa.delete(stackframes).where(
            stackframes.c.stacktrace_id.in_(sa.select(stacktraces.c.id).where(chosen))
        )
    ).rowcount
    gone = conn.execute(sa.delete(stacktraces).where(chosen)).rowcount
    return gone, frames


def unused_sites(conn: sa.Connection) -> list[int]:
    """The call sites no event refers to, but the newest."""
    newest = _newest(conn, call_sites.c.id)
    query = sa.select(call_sites.c.id).where(call_sites.c.id < newest, _unused_site(None))
    return [int(i) for i in conn.execute(query.order_by(call_sites.c.id)).scalars()]


def delete_sites(conn: sa.Connection, ids: Sequence[int]) -> tuple[int, int]:
    """Delete those of these call sites still unused, with their items; how many of each went.

    Locked first as traces are (`delete_traces`): a writer storing an event of
    one waits, then finds it gone (the foreign key refuses the event) and
    stores the site again.
    """
    chosen = sa.and_(call_sites.c.id.in_(ids), _unused_site(None))
    conn.execute(sa.select(call_sites.c.id).where(call_sites.c.id.in_(ids)).with_for_update()).all()
    unused = sa.select(call_sites.c.id).where(chosen)
    items = conn.execute(sa.delete(call_site_data).where(call_site_data.c.call_site_id.in_(unused))).rowcount
    gone = conn.execute(sa.delete(call_sites).where(chosen)).rowcount
    return gone, items


def prunable_processes(conn: sa.Connection, before_ts: float) -> list[int]:
    """The processes started before `before_ts` with no events, but the newest."""
    newest = _newest(conn, processes.c.id)
    query = sa.select(processes.c.id).where(processes.c.id < newest, _idle_process(before_ts, None))
    return [int(i) for i in conn.execute(query.order_by(processes.c.id)).scalars()]


def delete_processes(conn: sa.Connection, ids: Sequence[int], before_ts: float) -> int:
    """Delete those of these processes still without events; how many went (locked first, as traces)."""
    conn.execute(sa.select(processes.c.id).where(processes.c.id.in_(ids)).with_for_update()).all()
    chosen = sa.and_(processes.c.id.in_(ids), _idle_process(before_ts, None))
    return int(conn.execute(sa.delete(processes).where(chosen)).rowcount)


def count_prunable(conn: sa.Connection, before_ts: float) -> dict[str, int]:
    """What a prune at `before_ts` would delete, counted without deleting (the dry run)."""
    old = events.c.when_ts < before_ts
    traces = sa.select(stacktraces.c.id).where(
        stacktraces.c.id < _newest(conn, stacktraces.c.id), _unused_trace(before_ts)
    )
    idle = sa.select(processes.c.id).where(
        processes.c.id < _newest(conn, processes.c.id), _idle_process(before_ts, before_ts)
    )
    sites = sa.select(call_sites.c.id).where(
        call_sites.c.id < _newest(conn, call_sites.c.id), _unused_site(before_ts)
    )

    def count(query: sa.Select[Any]) -> int:
        return int(conn.execute(sa.select(sa.func.count()).select_from(query.subquery())).scalar_one())

    return {
        "events": count(sa.select(events.c.id).where(old)),
        "data": count(
            sa.select(events_data.c.id).join(events, events.c.id == events_data.c.event_id).where(old)
        ),
        "stacktraces": count(traces),
        "stackframes": count(sa.select(stackframes.c.id).where(stackframes.c.stacktrace_id.in_(traces))),
        "processes": count(idle),
        "call_sites": count(sites),
    }
