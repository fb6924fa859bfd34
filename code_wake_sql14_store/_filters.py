"""How a filter becomes SQL: the one place that turns an `EventFilter` into conditions.

A filter's app, version and environment names become ids first (`Scope`,
resolved by `_lookups`). Its other fields become conditions on ``events``
or on the ``event_counts`` summary (`filter_conditions`), each value a
bound parameter named as in `filter_parameters`; its time range becomes
`time_range` (or `bucket_range` on the summary); its data terms become
conditions on ``events_data`` (`term`, `carrying`), or for the keys of a
call site on ``call_site_data`` (`sites_carrying`), placed by
`placed_terms`, together `carrying_conditions`. Event listing, trace
groups and daily counts all build their statements from these.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, TypeAlias

import sqlalchemy as sa

from code_wake.query import EventFilter

from ._call_sites import CALL_SITE_KEYS, THREAD_KEY
from ._records import clip
from .schema import (
    LONG_TEXT_LIMIT,
    MYSQL_DIALECTS,
    NAME_LENGTH,
    VAL_PREFIX_LENGTH,
    call_site_data,
    event_counts,
    events,
    events_data,
    val_prefix,
)

__all__ = [
    "FilterShape",
    "PlacedTerms",
    "Scope",
    "Term",
    "bound_conditions",
    "bucket_range",
    "by_site_or_own",
    "carrying",
    "carrying_conditions",
    "data_conditions",
    "exactly",
    "filter_conditions",
    "filter_parameters",
    "held_as_data_rows",
    "most_selective_first",
    "placed_conditions",
    "placed_terms",
    "sites_carrying",
    "term",
    "term_row",
    "time_range",
    "unindexed",
]

Term: TypeAlias = tuple[str, str | None]
"""A data term: an event carries this key with this value (None: a null value)."""

_PROBE_LIMIT = 1000
"""Rows counted at most per term when SQLite orders the terms of a data query."""


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

    def fixed_ids(self) -> tuple[int | None, int | None, int | None]:
        """The app, version and environment ids the scope fixes (None: not one id)."""
        vsn_ids = self.vsn_ids
        return (self.app_id, vsn_ids[0] if vsn_ids is not None and len(vsn_ids) == 1 else None, self.env_id)


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


def bucket_range(
    column: sa.ColumnElement[Any], since: float | None, until: float | None
) -> list[sa.ColumnElement[bool]]:
    """Buckets from `since` to `until`, which are bucket boundaries: compared as the integers they are.

    PostgreSQL would compare a float bound to the integer column by casting the
    column, and then not use the index.
    """
    return time_range(column, None if since is None else int(since), None if until is None else int(until))


class FilterShape(NamedTuple):
    """What the conditions of a filter depend on: which fields it sets, not their values.

    Statements built from a shape take the values as bound parameters
    (`filter_parameters`), so one statement serves every filter of a shape.
    """

    dialect: str
    process: bool
    stacktrace: bool
    exc_type: bool
    vsns: int
    """Versions the filter matches: 0 (not filtered), 1, or 2 for more than one."""
    app: bool
    env: bool
    errors: bool
    terms: bool

    @classmethod
    def of(cls, dialect: str, f: EventFilter, scope: Scope) -> FilterShape:
        """The shape of `f`, whose names `scope` holds as ids, on the database `dialect`."""
        return cls(
            dialect=dialect,
            process=f.process_id is not None,
            stacktrace=f.stacktrace_id is not None,
            exc_type=f.exc_type is not None,
            vsns=0 if scope.vsn_ids is None else min(len(scope.vsn_ids), 2),
            app=scope.app_id is not None,
            env=scope.env_id is not None,
            errors=f.errors,
            terms=bool(f.terms),
        )

    @property
    def fixed(self) -> tuple[bool, bool, bool]:
        """Whether the filter fixes the app, the version and the environment of every event it selects."""
        return (self.app, self.vsns == 1, self.env)


def filter_parameters(f: EventFilter, scope: Scope) -> dict[str, Any]:
    """The values of the bound parameters of `filter_conditions` for `f`."""
    found: dict[str, Any] = {}
    if f.process_id is not None:
        found["process_id"] = f.process_id
    if f.stacktrace_id is not None:
        found["stacktrace_id"] = f.stacktrace_id
    if f.exc_type is not None:
        exc_type = clip(f.exc_type, NAME_LENGTH)
        found["exc_type"] = exc_type
        found["exc_type_length"] = len(exc_type)
    if scope.vsn_ids is not None:
        if len(scope.vsn_ids) == 1:
            found["vsn_id"] = scope.vsn_ids[0]
        else:
            found["vsn_ids"] = list(scope.vsn_ids)
    if scope.app_id is not None:
        found["app_id"] = scope.app_id
    if scope.env_id is not None:
        found["env_id"] = scope.env_id
    return found


def _named(name: str) -> sa.BindParameter[Any]:
    """A parameter of `filter_conditions` whose value comes at execution (`filter_parameters`)."""
    return sa.bindparam(name, expanding=_expanding(name))


def _expanding(name: str) -> bool:
    """Whether the parameter `name` of `filter_parameters` is a list (for ``IN``)."""
    return name == "vsn_ids"


def filter_conditions(
    shape: FilterShape,
    table: sa.TableClause,
    indexed: bool = True,
    param: Callable[[str], sa.BindParameter[Any]] = _named,
) -> list[sa.ColumnElement[bool]]:
    """The filter's conditions on ``events`` or ``event_counts`` (not time, not data terms).

    Each value is `param(name)`, a parameter named as in `filter_parameters`:
    unset for statements built once per shape, set for one filter's query
    (`bound_conditions`). `indexed` False: another index drives the query (a
    data term's), so on SQLite none of these may be looked up through an
    events index.
    """
    summary = table is event_counts
    mysql = shape.dialect in MYSQL_DIALECTS
    equal: dict[str, Callable[[sa.ColumnElement[Any]], list[sa.ColumnElement[bool]]]] = {}
    if shape.process and not summary:
        equal["process_id"] = lambda c: [c == param("process_id")]
    if shape.stacktrace:
        equal["stacktrace_id"] = lambda c: [c == param("stacktrace_id")]
    if shape.exc_type:
        # MySQL's utf8mb4_bin collation pads: 'a' = 'a ' is true. Equal lengths make it exact.
        equal["exc_type"] = lambda c: (
            [c == param("exc_type")] + ([sa.func.char_length(c) == param("exc_type_length")] if mysql else [])
        )
    if shape.vsns == 1:
        equal["app_vsn_id"] = lambda c: [c == param("vsn_id")]
    elif shape.vsns:
        equal["app_vsn_id"] = lambda c: [c.in_(param("vsn_ids"))]
    if shape.app:
        equal["app_id"] = lambda c: [c == param("app_id")]
    if shape.env:
        equal["environment_id"] = lambda c: [c == param("env_id")]
    # SQLite keeps no statistics to choose among indexes by, and may scan a wide one
    # (production's) for a narrow match: only the filter that is usually the narrowest
    # (the order above) keeps its index; the others are checked per row.
    steer = shape.dialect == "sqlite" and not summary
    driver = next(iter(equal), None) if indexed else None
    found: list[sa.ColumnElement[bool]] = []
    for name, condition in equal.items():
        column = table.c[name]
        found.extend(condition(unindexed(column) if steer and name != driver else column))
    if shape.errors:
        # Never through the exception-type index: every error, in no time order.
        exc_type = unindexed(table.c.exc_type) if steer else table.c.exc_type
        found.append(exc_type != "" if summary else exc_type.is_not(None))
    return found


def bound_conditions(
    dialect: str, f: EventFilter, scope: Scope, table: sa.TableClause = events, indexed: bool = True
) -> list[sa.ColumnElement[bool]]:
    """`filter_conditions` of one filter, its values bound in: for statements built per query."""
    values = filter_parameters(f, scope)

    def bound(name: str) -> sa.BindParameter[Any]:
        return sa.bindparam(name, values[name], expanding=_expanding(name))

    return filter_conditions(FilterShape.of(dialect, f, scope), table, indexed, bound)


def unindexed(column: sa.ColumnElement[Any]) -> sa.ColumnElement[Any]:
    """`column`, unchanged, in a form SQLite's planner cannot look up through an index."""
    return sa.func.coalesce(column, column)


# -- data terms ---------------------------------------------------------------------------------


def exactly(dialect: str, column: sa.ColumnElement[Any], text: str) -> list[sa.ColumnElement[bool]]:
    """``column = text``, exactly, on every backend."""
    if dialect not in MYSQL_DIALECTS:
        return [column == text]
    # MySQL's utf8mb4_bin collation pads: 'a' = 'a ' is true. Equal lengths make it exact.
    return [column == text, sa.func.char_length(column) == len(text)]


def term(dialect: str, row: sa.FromClause, key: str, val: str | None) -> list[sa.ColumnElement[bool]]:
    """`row` (of ``events_data`` or ``call_site_data``) holds ``(key, val)``, as its index serves."""
    match = exactly(dialect, row.c.key, clip(key, NAME_LENGTH))
    if val is None:
        match.append(row.c.val.is_(None))
        return match
    val = clip(val, LONG_TEXT_LIMIT)
    if dialect not in MYSQL_DIALECTS:
        # The expression index holds a prefix: compare it so the index is used,
        # and the whole value for the answer. MySQL's prefix index needs neither.
        match.append(val_prefix(row.c.val) == val_prefix(sa.literal(val, sa.Text)))
        if len(val) < VAL_PREFIX_LENGTH:
            # The whole value is in the prefix: its match is the answer. Comparing the value
            # too made PostgreSQL multiply two estimates of one thing (42 rows for 50,000).
            return match
    if dialect == "sqlite":
        # Not "val = ?": SQLite's constant propagation would rewrite the prefix term
        # into substr(?, 1, 200), which no longer matches the index. For a non-null
        # value, IS is the same test and is not propagated.
        match.append(row.c.val.is_not_distinct_from(val))
    else:
        match.extend(exactly(dialect, row.c.val, val))
    return match


@functools.lru_cache(maxsize=16)
def term_row(number: int) -> sa.FromClause:
    """``events_data`` as the alias of data term `number` (made once: aliases are not free to build)."""
    return events_data.alias(f"term{number}")


def carrying(dialect: str, terms: Sequence[Term]) -> sa.Select[Any]:
    """The ids of events carrying all `terms`: one events_data alias per term, joined on the event.

    The first term is looked up through the (key, value) index, the others
    through the event_id index. PostgreSQL and MySQL pick the most selective
    term to start from by their statistics; SQLite starts from the first.
    """
    return _holding(dialect, events_data, "event_id", "term", terms)


def _holding(dialect: str, table: sa.Table, owner: str, alias: str, terms: Sequence[Term]) -> sa.Select[Any]:
    """The `owner` ids of `table`'s rows holding all `terms`: an alias of `table` per term, joined on it."""
    rows = [table.alias(f"{alias}{n}") for n in range(len(terms))]
    joined: sa.FromClause = rows[0]
    for row in rows[1:]:
        joined = joined.join(row, row.c[owner] == rows[0].c[owner])
    query = sa.select(rows[0].c[owner]).select_from(joined)
    for row, (key, val) in zip(rows, terms, strict=True):
        query = query.where(*term(dialect, row, key, val))
    return query


class PlacedTerms(NamedTuple):
    """A filter's data terms by where the events hold them."""

    own: list[Term]
    """Held by the events' own data rows."""
    site: list[Term]
    """On call-site keys: held by the events' call sites (or, stored before schema 4, their own rows)."""
    either: list[Term]
    """Thread names some events' call sites hold and other events' own rows do."""


def placed_terms(conn: sa.Connection, terms: Iterable[Term]) -> PlacedTerms:
    """Where `terms` are held; a thread term is looked up in both tables (one index probe each).

    A store puts a thread name in call sites while it has met few of them
    (`_call_sites.ThreadNames`), so one name can be held either way.
    """
    placed = PlacedTerms([], [], [])
    for found in terms:
        key = found[0]
        if key in CALL_SITE_KEYS:
            placed.site.append(found)
        elif key != THREAD_KEY:
            placed.own.append(found)
        else:
            in_sites = _held_by(conn, call_site_data, found)
            in_own = _held_by(conn, events_data, found)
            (placed.either if in_sites and in_own else placed.site if in_sites else placed.own).append(found)
    return placed


def _held_by(conn: sa.Connection, table: sa.Table, found: Term) -> bool:
    """Whether some row of `table` (``events_data`` or ``call_site_data``) holds `found`."""
    row = table.alias("held")
    query = sa.select(row.c.id).where(*term(conn.dialect.name, row, *found)).limit(1)
    return conn.execute(query).first() is not None


def sites_carrying(dialect: str, terms: Sequence[Term]) -> sa.Select[Any]:
    """The ids of the call sites carrying all `terms` (on call-site keys), as `carrying` finds events."""
    return _holding(dialect, call_site_data, "call_site_id", "site", terms)


def held_as_data_rows(conn: sa.Connection, terms: Sequence[Term]) -> bool:
    """Whether some events may hold every one of `terms` (on call-site keys) as data rows of their own.

    Events stored before schema 4, or by an older code_wake writing since, do.
    One index probe per term: a term no event holds that way rules them all out.
    """
    return all(_held_by(conn, events_data, found) for found in terms)


def by_site_or_own(dialect: str, terms: Sequence[Term]) -> sa.ColumnElement[bool]:
    """The event's call site carries all `terms`, or its own data rows do: one set of ids from both.

    Not an OR of the two conditions: that would make the servers read every event.
    """
    by_site = events.alias("by_site")
    from_sites = sa.select(by_site.c.id).where(by_site.c.call_site_id.in_(sites_carrying(dialect, terms)))
    return events.c.id.in_(sa.union_all(from_sites, carrying(dialect, terms)))


def carrying_conditions(conn: sa.Connection, terms: Sequence[Term]) -> list[sa.ColumnElement[bool]]:
    """Conditions on ``events`` for the events carrying every term, whichever table holds it."""
    return placed_conditions(conn, placed_terms(conn, terms))


def placed_conditions(conn: sa.Connection, placed: PlacedTerms) -> list[sa.ColumnElement[bool]]:
    """Conditions on ``events`` for the events carrying every one of the `placed` terms.

    A term on a call-site key is held by the event's call site; and, where
    `held_as_data_rows` finds some, by events holding it as a row of their own.
    """
    dialect = conn.dialect.name
    conditions: list[sa.ColumnElement[bool]] = []
    if placed.own:
        conditions.append(events.c.id.in_(carrying(dialect, placed.own)))
    if placed.site:
        if held_as_data_rows(conn, placed.site):
            conditions.append(by_site_or_own(dialect, placed.site))
        else:
            conditions.append(events.c.call_site_id.in_(sites_carrying(dialect, placed.site)))
    conditions.extend(by_site_or_own(dialect, [found]) for found in placed.either)
    return conditions


def data_conditions(
    conn: sa.Connection, placed: PlacedTerms, process_id: int | None
) -> list[sa.ColumnElement[bool]]:
    """Conditions on ``events`` for events carrying every term (and of `process_id`, if given)."""
    conditions = placed_conditions(conn, placed)
    if process_id is not None:
        conditions.append(events.c.process_id == process_id)
    return conditions


def most_selective_first(conn: sa.Connection, terms: list[Term]) -> list[Term]:
    """The terms ordered by how many rows match each, counted up to `_PROBE_LIMIT`.

    SQLite (without STAT4 statistics) starts the search from the first
    term; starting from a term that every event carries would read them all.
    A bounded count through the index costs a fraction of a millisecond.
    """
    row = events_data.alias("probe")
    dialect = conn.dialect.name

    def matches(probed: Term) -> int:
        limited = sa.select(row.c.id).where(*term(dialect, row, *probed)).limit(_PROBE_LIMIT).subquery()
        return int(conn.execute(sa.select(sa.func.count()).select_from(limited)).scalar_one())

    return sorted(terms, key=matches)
