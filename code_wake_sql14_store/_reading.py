"""Reading events and processes: by id, by data, and filtered in keyset pages; rows made records.

An event's record needs its data rows, its stack trace and its process:
`EventReader._records_for` reads them for a whole page in a few queries,
never one per event.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, TypeAlias, TypeVar

import sqlalchemy as sa

from code_wake.query import EventFilter, ProcessFilter
from code_wake.records import DataItem, EventRecord, ProcessRecord

from ._database import Database, chunks
from ._filters import (
    Scope,
    Term,
    bound_conditions,
    data_conditions,
    most_selective_first,
    term,
    term_row,
    time_range,
)
from ._lookups import Lookups
from ._records import PROCESS_QUERY, Row, event_record
from ._traces import StackTraces
from .schema import events, events_data, processes

__all__ = ["PAGE", "EventReader", "events_query"]

_T = TypeVar("_T")

PAGE = 500
"""Events (or processes) fetched per query while a query's results are streamed."""

Cursor: TypeAlias = tuple[Any, int]
"""Where a keyset page starts: after this (sort time, id)."""

_Build: TypeAlias = Callable[[sa.Connection, Cursor | None, int], sa.Select[Any] | None]
"""Makes the query of a page after a cursor (None: no page at all), given its size."""

_EVENT_ORDER = (events.c.when_ts, events.c.id)


def events_query(conditions: Sequence[sa.ColumnElement[bool]]) -> sa.Select[Any]:
    """The ``events`` rows matching `conditions`, oldest first."""
    return sa.select(events).where(*conditions).order_by(*_EVENT_ORDER)


class EventReader:
    """Reads the events and processes of one store's database."""

    def __init__(self, db: Database, lookups: Lookups, traces: StackTraces) -> None:
        self._db = db
        self._lookups = lookups
        self._traces = traces

    def event_with_id(self, id: int) -> EventRecord | None:
        """The event with this id, with its data and stack trace, or None."""
        with self._db.connect() as conn:
            found = self._load_events(conn, [events.c.id == id])
        return found[0] if found else None

    def events_carrying(self, where: Iterable[Term], process_id: int | None) -> list[EventRecord]:
        """Events carrying every term of `where` (of `process_id`, if given), oldest first."""
        terms = list(where)
        with self._db.connect() as conn:
            if self._db.sqlite and len(terms) > 1:
                terms = most_selective_first(conn, terms)
            return self._load_events(conn, data_conditions(self._db.dialect, terms, process_id))

    def event_pages(self, f: EventFilter) -> Iterator[EventRecord]:
        """Events matching `f`, newest first, a page per query (`EventReader._pages`)."""
        plan: list[tuple[Scope | None, list[Term]]] = []
        previous: list[int | None] = [None]  # the id of the last row read

        def build(conn: sa.Connection, cursor: Cursor | None, size: int) -> sa.Select[Any] | None:
            if not plan:
                # On the first page's connection: names to ids, the rarest term first.
                terms = list(f.terms)
                scope = self._lookups.scope(conn, f)
                plan.append((scope, most_selective_first(conn, terms) if len(terms) > 1 else terms))
            scope, terms = plan[0]
            return None if scope is None else self._events_page(f, scope, terms, cursor, size)

        def convert(conn: sa.Connection, rows: Sequence[Row]) -> list[EventRecord]:
            # A term matched twice in one event gives adjacent rows: one record each.
            fresh = _distinct_rows(rows, previous[0])
            previous[0] = rows[-1].id
            return self._records_for(conn, fresh)

        return self._pages("query events", build, convert, f.limit)

    def process_pages(self, f: ProcessFilter) -> Iterator[ProcessRecord]:
        """Processes matching `f`, newest start first, a page per query."""
        scopes: list[Scope | None] = []

        def build(conn: sa.Connection, cursor: Cursor | None, size: int) -> sa.Select[Any] | None:
            if not scopes:
                scopes.append(self._lookups.scope(conn, f))
            scope = scopes[0]
            if scope is None:
                return None
            run_ts = processes.c.run_ts
            query = PROCESS_QUERY.add_columns(run_ts.label("sort_ts")).where(
                *scope.conditions(processes), *time_range(run_ts, f.since, f.until)
            )
            if cursor is not None:
                query = query.where(
                    run_ts <= cursor[0], sa.or_(run_ts < cursor[0], processes.c.id < cursor[1])
                )
            return query.order_by(run_ts.desc(), processes.c.id.desc()).limit(size)

        def convert(conn: sa.Connection, rows: Sequence[Row]) -> list[ProcessRecord]:
            return self._lookups.process_records(rows)

        return self._pages("list processes", build, convert, f.limit)

    def _pages(
        self,
        operation: str,
        build: _Build,
        convert: Callable[[sa.Connection, Sequence[Row]], Sequence[_T]],
        limit: int | None,
    ) -> Iterator[_T]:
        """Records of keyset pages: `build` makes the query after a (sort_ts, id) cursor (None: no answer).

        Each page is read on a connection of its own, so nothing is held open
        between pages; errors are raised as code_wake's, naming `operation`.
        """
        remaining = limit
        cursor: Cursor | None = None
        while remaining is None or remaining > 0:
            size = PAGE if remaining is None else min(PAGE, remaining)
            with self._db.translating(operation), self._db.read() as conn:
                query = build(conn, cursor, size)
                rows = [] if query is None else conn.execute(query).all()
                records = convert(conn, rows) if rows else []
            # Yielded outside the connection: a consumer may take its time.
            yield from records
            if remaining is not None:
                remaining -= len(records)
            if len(rows) < size:
                return
            cursor = (rows[-1].sort_ts, rows[-1].id)

    def _events_page(
        self, f: EventFilter, scope: Scope, terms: Sequence[Term], cursor: Cursor | None, size: int
    ) -> sa.Select[Any]:
        """One page of events, newest first, after `cursor`."""
        dialect = self._db.dialect
        if terms:
            # Driven by the rarest term's index entries, which hold the time: newest first, no sort.
            first = term_row(0)
            sort_ts, sort_id = first.c.when_ts, first.c.event_id
            query = (
                sa.select(events, sort_ts.label("sort_ts"))
                .select_from(first.join(events, events.c.id == first.c.event_id))
                .where(*term(dialect, first, *terms[0]))
            )
            for number, (key, val) in enumerate(terms[1:], start=1):
                other = term_row(number)
                query = query.where(
                    sa.exists().where(other.c.event_id == first.c.event_id, *term(dialect, other, key, val))
                )
        else:
            sort_ts, sort_id = events.c.when_ts, events.c.id
            query = sa.select(events, sort_ts.label("sort_ts"))
        conditions = bound_conditions(dialect, f, scope, indexed=not terms)
        query = query.where(*conditions, *time_range(sort_ts, f.since, f.until))
        if cursor is not None:
            # Written so that every backend sees a range on the time column of the index.
            query = query.where(sort_ts <= cursor[0], sa.or_(sort_ts < cursor[0], sort_id < cursor[1]))
        return query.order_by(sort_ts.desc(), sort_id.desc()).limit(size)

    def _load_events(
        self, conn: sa.Connection, conditions: Sequence[sa.ColumnElement[bool]]
    ) -> list[EventRecord]:
        """Events matching `conditions`, oldest first, with data, traces and processes.

        Four queries whatever the number of events (more only past `CHUNK`
        distinct ids of one kind), never one per event.
        """
        return self._records_for(conn, conn.execute(events_query(conditions)).all())

    def _records_for(self, conn: sa.Connection, rows: Sequence[Row]) -> list[EventRecord]:
        """The records of these ``events`` rows, in their order, with data, traces and processes."""
        data: dict[int, tuple[DataItem, ...]] = {}
        for chunk in chunks([row.id for row in rows]):
            data.update(_load_data(conn, chunk))
        traces = self._traces.with_ids(
            conn, {row.stacktrace_id for row in rows if row.stacktrace_id is not None}
        )
        owners = self._lookups.processes_with_ids(conn, sorted({row.process_id for row in rows}))
        return [
            event_record(
                row.id,
                row,
                owners[row.process_id],
                data.get(row.id, ()),
                None if row.stacktrace_id is None else traces[row.stacktrace_id],
            )
            for row in rows
        ]


def _load_data(conn: sa.Connection, event_ids: Sequence[int]) -> dict[int, tuple[DataItem, ...]]:
    """The data items of these events, in insertion order."""
    query = (
        sa.select(events_data.c.event_id, events_data.c.key, events_data.c.val)
        .where(events_data.c.event_id.in_(event_ids))
        .order_by(events_data.c.event_id, events_data.c.id)
    )
    data: dict[int, list[DataItem]] = {}
    for row in conn.execute(query).all():
        data.setdefault(row.event_id, []).append(DataItem(row.key, row.val))
    return {event_id: tuple(items) for event_id, items in data.items()}


def _distinct_rows(rows: Sequence[Row], previous_id: int | None) -> list[Row]:
    """`rows` without repeats of the same event (a term matched twice), which are adjacent."""
    found: list[Row] = []
    for row in rows:
        if row.id != previous_id:
            found.append(row)
        previous_id = row.id
    return found
