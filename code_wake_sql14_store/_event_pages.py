"""One page of events, newest first: its query, and which index drives it.

A filter's data terms decide (`TermPlan`, made once per listing on its
first page's connection):

- a term on an event's own data drives the page through the (key, value)
  index of ``events_data``, whose entries hold the time: newest first,
  without a sort. The rarest such term drives; the others, and any on a
  call site's keys, are checked per event;
- terms on call-site keys alone drive it through ``events`` by call site:
  with one matching site that index gives the time order too; with
  several, SQLite (which keeps no statistics to choose by) is told whether
  to read them by site and merge (`_read_by_time`) or by time and check
  the site; the servers choose by their statistics.
  Events stored before schema 4 hold such terms as data rows: where any do,
  they are read as above and merged in, a page from each;
- no term: by time, or by the filter's own index.

A thread name held by some events' call sites and by other events' own
rows (`placed_terms`) drives nothing: it is checked per event, against
the ids of both kinds of events.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias

import sqlalchemy as sa

from code_wake.query import EventFilter

from ._filters import (
    Scope,
    Term,
    bound_conditions,
    by_site_or_own,
    held_as_data_rows,
    most_selective_first,
    placed_terms,
    sites_carrying,
    term,
    term_row,
    time_range,
    unindexed,
)
from .schema import events

__all__ = ["Cursor", "TermPlan", "events_page"]

Cursor: TypeAlias = tuple[Any, int]
"""Where a keyset page starts: after this (sort time, id)."""

_SITE_IDS_INLINE = 1000
"""Matching call sites given to the page query as their ids, at most; past it, as a subquery."""

_FEW_SITES = 100
"""Matching call sites SQLite reads one by one at most, without counting their events first."""

_COMMON_EVENTS = 5000
"""Events of more than `_FEW_SITES` matching sites from which SQLite reads by time rather than by site."""


@dataclass(frozen=True)
class TermPlan:
    """A filter's data terms, resolved against the database for reading its pages."""

    own: list[Term]
    """Terms on the events' own data, the rarest first on SQLite."""
    site: list[Term]
    """Terms on call-site keys."""
    site_ids: list[int] | None
    """The call sites carrying every `site` term; None when there are too many to list."""
    legacy: bool
    """Whether events stored with their call-site items as data rows may match the `site` terms."""
    common: bool
    """Whether SQLite reads the matching sites' events by time, checking the site (`_read_by_time`)."""
    either: list[Term]
    """Thread names held by some events' call sites and by other events' own rows."""

    @classmethod
    def of(cls, conn: sa.Connection, terms: Sequence[Term]) -> TermPlan:
        """The plan of `terms` against the database behind `conn` (a few small queries)."""
        own, site, either = placed_terms(conn, terms)
        sqlite = conn.dialect.name == "sqlite"
        if sqlite and len(own) > 1:
            own = most_selective_first(conn, own)
        if not site:
            return cls(own, site, None, False, False, either)
        dialect = conn.dialect.name
        found = conn.execute(sites_carrying(dialect, site).distinct().limit(_SITE_IDS_INLINE + 1))
        site_ids: list[int] | None = sorted(int(i) for i in found.scalars())
        if len(site_ids or ()) > _SITE_IDS_INLINE:
            site_ids = None
        legacy = held_as_data_rows(conn, site)
        # A term of the events' own drives the page whenever there is one (`events_page`).
        common = sqlite and not own and _read_by_time(conn, dialect, site, site_ids)
        return cls(own, site, site_ids, legacy, common, either)


def _read_by_time(
    conn: sa.Connection, dialect: str, site: Sequence[Term], site_ids: list[int] | None
) -> bool:
    """Whether SQLite should read the events of the sites carrying `site` by time, checking the site.

    By site, SQLite reads each site's index entries newest first into a
    sorter of one page, and leaves a site as soon as its entries are older
    than the page's last (its ORDER BY ... LIMIT early exit): about 10 us a
    site at 1M events, however many events they have. By time, it reads
    events until a page of them matched: cheaper when they are common,
    unbounded when they are rare. So up to `_FEW_SITES` sites are read by
    site without a look at their events; past that, a bounded count decides.
    """
    if site_ids is not None and len(site_ids) <= _FEW_SITES:
        return False
    return _many_events(conn, dialect, site)


def _many_events(conn: sa.Connection, dialect: str, site: Sequence[Term]) -> bool:
    """Whether the sites carrying `site` have `_COMMON_EVENTS` events or more (a bounded count)."""
    limited = (
        sa.select(events.c.id)
        .where(events.c.call_site_id.in_(sites_carrying(dialect, site)))
        .limit(_COMMON_EVENTS)
        .subquery()
    )
    return int(conn.execute(sa.select(sa.func.count()).select_from(limited)).scalar_one()) >= _COMMON_EVENTS


def events_page(
    dialect: str, f: EventFilter, scope: Scope, plan: TermPlan, cursor: Cursor | None, size: int
) -> sa.Select[Any] | None:
    """One page of events matching `f`, newest first, after `cursor`; None when none can match."""
    either = [by_site_or_own(dialect, [found]) for found in plan.either]
    if plan.own:
        return _driven_by_data(dialect, f, scope, plan.own, plan, either, cursor, size)
    if not plan.site:
        everything = sa.select(events)
        return _finished(dialect, f, scope, events.c.when_ts, events.c.id, everything, either, cursor, size)
    pages = []
    if plan.site_ids is None or plan.site_ids:
        pages.append(_driven_by_site(dialect, f, scope, plan, either, cursor, size))
    if plan.legacy:
        pages.append(_driven_by_data(dialect, f, scope, plan.site, None, either, cursor, size))
    if len(pages) < 2:
        return pages[0] if pages else None
    both = sa.union_all(*(sa.select(page.subquery()) for page in pages)).subquery()
    return sa.select(both).order_by(both.c.sort_ts.desc(), both.c.id.desc()).limit(size)


def _driven_by_data(
    dialect: str,
    f: EventFilter,
    scope: Scope,
    terms: Sequence[Term],
    plan: TermPlan | None,
    checks: list[sa.ColumnElement[bool]],
    cursor: Cursor | None,
    size: int,
) -> sa.Select[Any]:
    """Driven by the first term's index entries, which hold the time: newest first, no sort.

    The other terms are checked per event, and `checks`; so are `plan`'s
    call-site terms, when given (the others are then the event's own).
    """
    first = term_row(0)
    query = sa.select(events).select_from(first.join(events, events.c.id == first.c.event_id))
    conditions = term(dialect, first, *terms[0]) + checks
    conditions.extend(_holds(dialect, first, number, found) for number, found in enumerate(terms[1:], 1))
    if plan is not None and plan.site:
        of_sites = _of_sites(dialect, plan, indexed=False)
        if plan.legacy:
            # Or, stored before schema 4, the event holds the call-site terms as data rows.
            numbered = enumerate(plan.site, len(terms))
            of_sites = sa.or_(of_sites, sa.and_(*(_holds(dialect, first, n, found) for n, found in numbered)))
        conditions.append(of_sites)
    return _finished(dialect, f, scope, first.c.when_ts, first.c.event_id, query, conditions, cursor, size)


def _holds(dialect: str, first: sa.FromClause, number: int, found: Term) -> sa.ColumnElement[bool]:
    """The event of `first`'s row holds `found` too (a data row of its own, through the event id index)."""
    other = term_row(number)
    return sa.exists().where(other.c.event_id == first.c.event_id, *term(dialect, other, *found))


def _driven_by_site(
    dialect: str,
    f: EventFilter,
    scope: Scope,
    plan: TermPlan,
    checks: list[sa.ColumnElement[bool]],
    cursor: Cursor | None,
    size: int,
) -> sa.Select[Any]:
    """Events of the call sites carrying the terms (since schema 4), and `checks`: by site or by time."""
    by_site = not plan.common
    conditions = [_of_sites(dialect, plan, indexed=by_site), *checks]
    return _finished(
        dialect, f, scope, events.c.when_ts, events.c.id, sa.select(events), conditions, cursor, size, by_site
    )


def _of_sites(dialect: str, plan: TermPlan, indexed: bool) -> sa.ColumnElement[bool]:
    """The event's call site carries the plan's call-site terms (in a form SQLite looks up, or not)."""
    column: sa.ColumnElement[Any] = events.c.call_site_id
    if dialect == "sqlite" and not indexed:
        column = unindexed(column)
    if plan.site_ids is None:
        return column.in_(sites_carrying(dialect, plan.site))
    if len(plan.site_ids) == 1:
        return column == plan.site_ids[0]
    return column.in_(plan.site_ids)


def _finished(
    dialect: str,
    f: EventFilter,
    scope: Scope,
    sort_ts: sa.ColumnElement[Any],
    sort_id: sa.ColumnElement[Any],
    query: sa.Select[Any],
    conditions: list[sa.ColumnElement[bool]],
    cursor: Cursor | None,
    size: int,
    driven_elsewhere: bool | None = None,
) -> sa.Select[Any]:
    """`query` with the filter's conditions, its time range, the cursor, newest first, `size` rows.

    `driven_elsewhere`: another index than the filter's drives the query (by
    default, when there are `conditions`), so on SQLite the filter's are
    checked per row.
    """
    elsewhere = bool(conditions) if driven_elsewhere is None else driven_elsewhere
    query = query.add_columns(sort_ts.label("sort_ts")).where(
        *conditions,
        *bound_conditions(dialect, f, scope, indexed=not elsewhere),
        *time_range(sort_ts, f.since, f.until),
    )
    if cursor is not None:
        # Written so that every backend sees a range on the time column of the index.
        query = query.where(sort_ts <= cursor[0], sa.or_(sort_ts < cursor[0], sort_id < cursor[1]))
    return query.order_by(sort_ts.desc(), sort_id.desc()).limit(size)
