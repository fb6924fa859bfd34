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

from ._call_sites import CallSites, SiteItems, merged
from ._database import Database, chunks
from ._event_pages import Cursor, TermPlan, events_page
from ._filters import Scope, Term, data_conditions, most_selective_first, placed_terms, time_range
from ._lookups import Lookups
from ._records import PROCESS_QUERY, Row, event_record
from ._traces import StackTraces
from .schema import events, events_data, processes

__all__ = ["PAGE", "EventReader", "events_query"]

_T = TypeVar("_T")

PAGE = 500
"""Events (or processes) fetched per query while a query's results are streamed."""

_Build: TypeAlias = Callable[[sa.Connection, Cursor | None, int], sa.Select[Any] | None]
"""Makes the query of a page after a cursor (None: no page at all), given its size."""

_EVENT_ORDER = (events.c.when_ts, events.c.id)


def events_query(conditions: Sequence[sa.ColumnElement[bool]]) -> sa.Select[Any]:
    """The ``events`` rows matching `conditions`, oldest first."""
    return sa.select(events).where(*conditions).order_by(*_EVENT_ORDER)


class EventReader:
    """Reads the events and processes of one store's database."""

    def __init__(self, db: Database, lookups: Lookups, traces: StackTraces, sites: CallSites) -> None:
        self._db = db
        self._lookups = lookups
        self._traces = traces
        self._sites = sites

    def event_with_id(self, id: int) -> EventRecord | None:
        """The event with this id, with its data and stack trace, or None."""
        with self._db.connect() as conn:
            found = self._load_events(conn, [events.c.id == id])
        return found[0] if found else None

    def events_carrying(self, where: Iterable[Term], process_id: int | None) -> list[EventRecord]:
        """Events carrying every term of `where` (of `process_id`, if given), oldest first."""
        with self._db.connect() as conn:
            placed = placed_terms(conn, where)
            # Only the events' own rows are counted to order: a call-site term is looked up apart.
            if self._db.sqlite and len(placed.own) > 1:
                placed = placed._replace(own=most_selective_first(conn, placed.own))
            return self._load_events(conn, data_conditions(conn, placed, process_id))

    def event_pages(self, f: EventFilter) -> Iterator[EventRecord]:
        """Events matching `f`, newest first, a page per query (`EventReader._pages`)."""
        plan: list[tuple[Scope | None, TermPlan]] = []
        previous: list[int | None] = [None]  # the id of the last row read

        def build(conn: sa.Connection, cursor: Cursor | None, size: int) -> sa.Select[Any] | None:
            if not plan:
                # On the first page's connection: names to ids, terms to where they are held.
                scope = self._lookups.scope(conn, f)
                plan.append((scope, TermPlan.of(conn, list(f.terms))))
            scope, terms = plan[0]
            return None if scope is None else events_page(self._db.dialect, f, scope, terms, cursor, size)

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
        sites = self._sites.with_ids(conn, {row.call_site_id for row in rows if row.call_site_id is not None})
        owners = self._lookups.processes_with_ids(conn, sorted({row.process_id for row in rows}))
        return [
            event_record(
                row.id,
                row,
                owners[row.process_id],
                _data_of(row, data, sites),
                None if row.stacktrace_id is None else traces[row.stacktrace_id],
            )
            for row in rows
        ]


def _data_of(
    row: Row, own: dict[int, tuple[DataItem, ...]], sites: dict[int, SiteItems]
) -> tuple[DataItem, ...]:
    """The event's data: its own items, and its call site's at their positions.

    A site can be missing only where the database lacks the foreign key (one
    upgraded from schema 3) and a prune removed it just as an event of it was
    written: the event keeps its own items.
    """
    items = own.get(row.id, ())
    site = None if row.call_site_id is None else sites.get(row.call_site_id)
    return items if site is None else merged(site, items)


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
