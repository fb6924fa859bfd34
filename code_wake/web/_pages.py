"""The pages: each reads its query string, asks the store's query methods, and hands a template its values.

Nothing here writes, and nothing reaches past the store contract: trace
groups (`query_trace_groups`), counts over time (`query_counts_over_time`),
events (`query_events`, `get_event_by_id`), processes (`query_processes`)
and daily counts (`query_daily_counts`).
"""

from __future__ import annotations

import math
import threading
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, TypeVar

from code_wake.query import DAY, BucketCount, EventFilter, ProcessFilter, TraceGroup
from code_wake.records import EventRecord, ProcessRecord
from code_wake.store import Store

from ._charts import Chart, bar_chart
from ._filters import (
    Args,
    BadQuery,
    Query,
    Scope,
    Window,
    cursor_text,
    read_cursor,
    read_id,
    read_scope,
    read_terms,
    read_window,
)
from ._format import group_key, parse_group_key, versions_text, where

if TYPE_CHECKING:
    from ._app import Urls

__all__ = ["PAGES", "ChoiceCache", "Choices", "Context", "Missing", "Page"]

R = TypeVar("R")
GroupKey = tuple["str | None", "int | None"]

SCOPE_KEYS = ("app", "vsn", "env")
WINDOW_KEYS = ("window", "since", "until")
DEFAULT_WINDOW = "7d"
GROUPS_SHOWN = 50
"""Groups the errors page lists; ``more=1`` lists up to `MORE_GROUPS`."""
MORE_GROUPS = 500
EVENTS_OF_A_GROUP = 20
SCAN_LIMIT = 500
"""Events read at most to find a group's members where the filter cannot say "no exception"."""


class Missing(LookupError):
    """Raised when a page's subject (an event, a trace group) is not in the store."""


@dataclass(frozen=True)
class Choices:
    """What the filter menus offer: app names, (app, version) pairs and environment names."""

    apps: tuple[str, ...] = ()
    vsns: tuple[tuple[str, str], ...] = ()
    envs: tuple[str, ...] = ()

    def versions(self, app: str | None) -> list[str]:
        """The versions of `app`, or every version string when no app is chosen."""
        return sorted({vsn for a, vsn in self.vsns if app is None or a == app})


class ChoiceCache:
    """The filter menus' choices, from the most recent processes, read at most once a minute."""

    TTL = 60.0
    PROCESSES = 1000

    def __init__(self, store: Store) -> None:
        self._store = store
        self._lock = threading.Lock()
        self._at = -math.inf
        self._value = Choices()

    def get(self, now: float) -> Choices:
        """The choices, read again when older than `TTL` seconds."""
        with self._lock:
            if now - self._at < self.TTL:
                return self._value
        found = list(self._store.query_processes(ProcessFilter(limit=self.PROCESSES)))
        value = Choices(
            apps=tuple(sorted({p.app.name for p in found})),
            vsns=tuple(sorted({(p.app.name, p.app_vsn.vsn) for p in found if p.app_vsn is not None})),
            envs=tuple(sorted({p.environment.name for p in found if p.environment is not None})),
        )
        with self._lock:
            self._at, self._value = now, value
        return value


@dataclass(frozen=True)
class Context:
    """What a page function gets: the store, the query string, now, and the link builder."""

    store: Store
    args: Args
    now: float
    urls: Urls
    page_size: int
    choices: ChoiceCache


@dataclass(frozen=True)
class Page:
    """A page function's answer: the template to render and its values."""

    template: str
    context: dict[str, Any]


def _filters(ctx: Context, scope: Scope, window: Window, keys: Sequence[str] = ()) -> dict[str, Any]:
    """The values every filter bar needs."""
    return {
        "scope": scope,
        "window": window,
        "choices": ctx.choices.get(ctx.now),
        "query": Query.of(ctx.args, (*SCOPE_KEYS, *WINDOW_KEYS, *keys)),
        "keep": Query.of(ctx.args, (*SCOPE_KEYS, *WINDOW_KEYS)),
        "now": ctx.now,
    }


def _key(group: TraceGroup | BucketCount) -> GroupKey:
    return (group.exc_type, group.stacktrace_id)


def _series(rows: Iterable[BucketCount]) -> dict[int, list[int]]:
    counts: dict[int, list[int]] = {}
    for row in rows:
        counts.setdefault(row.bucket_ts, [0])[0] += row.count
    return counts


def _spark(counts: dict[int, list[int]], start: float, end: float, span: int, unit: str = "error") -> Chart:
    return bar_chart(counts, start, end, span, units=(unit,), width=240, height=40, axes=False)


# -- errors: the home page ------------------------------------------------------------------------


def errors(ctx: Context) -> Page:
    """Trace groups of the window with their charts, first and last seen, versions and environments."""
    scope, window = read_scope(ctx.args), read_window(ctx.args, ctx.now, DEFAULT_WINDOW)
    sort = ctx.args.get("sort") or "count"
    if sort not in ("count", "last"):
        raise BadQuery(f"sort: expected count or last, got {sort!r}")
    base = EventFilter(app=scope.app, vsn=scope.vsn, env=scope.env, errors=True)
    windowed = replace(base, since=window.since, until=window.until)
    groups = ctx.store.query_trace_groups(windowed)
    whole = window.since is None and window.until is None
    ever = {_key(g): g for g in (groups if whole else ctx.store.query_trace_groups(base))}
    start, end, span = window.chart_range(min((g.first_ts for g in groups), default=None))
    per_group: dict[GroupKey, list[BucketCount]] = defaultdict(list)
    for row in ctx.store.query_counts_over_time(windowed, span):
        per_group[_key(row)].append(row)
    if sort == "last":
        groups = sorted(groups, key=lambda g: (-g.last_ts, g.sort_key()))
    rows = []
    more = ctx.args.get("more") == "1"
    for group in groups[: MORE_GROUPS if more else GROUPS_SHOWN]:
        first = ever.get(_key(group), group)
        rows.append(
            {
                "group": group,
                "key": group_key(*_key(group)),
                "where": where(group.stacktrace),
                "versions": versions_text(group.app_vsns),
                "first_ts": first.first_ts,
                "new": window.since is not None and first.first_ts >= window.since,
                "chart": _spark(_series(per_group[_key(group)]), start, end, span),
            }
        )
    all_rows = [row for rows_of in per_group.values() for row in rows_of]
    return Page(
        "errors.html",
        {
            **_filters(ctx, scope, window, ("sort", "more")),
            "rows": rows,
            "total_groups": len(groups),
            "total_events": sum(g.count for g in groups),
            "sort": sort,
            "chart": bar_chart(_series(all_rows), start, end, span, units=("error",), kinds=("err",)),
        },
    )


# -- one trace group --------------------------------------------------------------------------------


def _members(store: Store, f: EventFilter, key: GroupKey, limit: int) -> list[EventRecord]:
    """The newest events of the group `key` that `f` selects (f names its type or its trace)."""
    exc_type, trace_id = key
    if exc_type is not None and trace_id is not None:
        return list(store.query_events(replace(f, limit=limit)))
    # The filter cannot say "without an exception" or "without a trace": sift a bounded number.
    found = []
    for event in store.query_events(replace(f, limit=SCAN_LIMIT)):
        if event.exc_type == exc_type and (event.stacktrace.id if event.stacktrace else None) == trace_id:
            found.append(event)
            if len(found) == limit:
                break
    return found


def _group_filter(key: GroupKey, scope: Scope) -> EventFilter:
    exc_type, trace_id = key
    return EventFilter(
        app=scope.app,
        vsn=scope.vsn,
        env=scope.env,
        exc_type=exc_type,
        stacktrace_id=trace_id,
        errors=exc_type is not None,
    )


def _one_group(store: Store, f: EventFilter, key: GroupKey) -> TraceGroup | None:
    return next((g for g in store.query_trace_groups(f) if _key(g) == key), None)


def _breakdown(
    rows: Iterable[BucketCount], label: Callable[[BucketCount], str], start: float, end: float, span: int
) -> list[dict[str, Any]]:
    """Per label (a version, an environment): its count and its chart, most frequent first."""
    counts: dict[str, dict[int, list[int]]] = defaultdict(dict)
    for row in rows:
        counts[label(row)].setdefault(row.bucket_ts, [0])[0] += row.count
    found = [
        {
            "label": name,
            "count": sum(v[0] for v in series.values()),
            "chart": _spark(series, start, end, span),
        }
        for name, series in counts.items()
    ]
    return sorted(found, key=lambda item: (-item["count"], item["label"]))


def _vsn_label(row: BucketCount) -> str:
    app = row.app.name if row.app else "-"
    return f"{app} {row.app_vsn.vsn}" if row.app_vsn else f"{app} (no version)"


def _env_label(row: BucketCount) -> str:
    return row.environment.name if row.environment else "(no environment)"


def group(ctx: Context, trace: str, exc: str) -> Page:
    """One trace group: its charts by version and environment, its stack trace, its latest events."""
    key = parse_group_key(trace, exc)
    if key is None:
        raise Missing(f"There is no trace group {trace}/{exc}.")
    scope, window = read_scope(ctx.args), read_window(ctx.args, ctx.now, DEFAULT_WINDOW)
    base = _group_filter(key, scope)
    windowed = replace(base, since=window.since, until=window.until)
    ever = _one_group(ctx.store, base, key)
    if ever is None:
        raise Missing(f"No events of the trace group {trace}/{exc} match these filters.")
    current = _one_group(ctx.store, windowed, key)
    start, end, span = window.chart_range(ever.first_ts)
    rows = [r for r in ctx.store.query_counts_over_time(windowed, span, by_scope=True) if _key(r) == key]
    events = _members(ctx.store, windowed, key, EVENTS_OF_A_GROUP)
    return Page(
        "group.html",
        {
            **_filters(ctx, scope, window),
            "group": current,
            "ever": ever,
            "key": group_key(*key),
            "exc_type": key[0],
            "trace": ever.stacktrace,
            "message": (events[0].exc_message if events else ever.message),
            "where": where(ever.stacktrace),
            "chart": bar_chart(_series(rows), start, end, span, units=("error",), kinds=("err",)),
            "by_version": _breakdown(rows, _vsn_label, start, end, span),
            "by_env": _breakdown(rows, _env_label, start, end, span),
            "events": events,
            "events_query": Query(
                [
                    *((k, v) for k, v in (("trace", str(key[1]) if key[1] else ""),) if v),
                    ("exc_type", key[0] or ""),
                    *Query.of(ctx.args, (*SCOPE_KEYS, *WINDOW_KEYS)).pairs,
                ]
            ),
        },
    )


# -- one event --------------------------------------------------------------------------------------


def _in_group(event: EventRecord, key: GroupKey) -> bool:
    return _key_of(event) == key


def _key_of(event: EventRecord) -> GroupKey:
    return (event.exc_type, None if event.stacktrace is None else event.stacktrace.id)


def _older(store: Store, f: EventFilter, event: EventRecord) -> EventRecord | None:
    """The newest event of the group before `event` (time, then id)."""
    here = (event.when_ts, event.id)
    until = math.nextafter(event.when_ts, math.inf)
    for candidate in store.query_events(replace(f, until=until, limit=SCAN_LIMIT)):
        if (candidate.when_ts, candidate.id) < here and _in_group(candidate, _key_of(event)):
            return candidate
    return None


def _newer(store: Store, f: EventFilter, event: EventRecord, now: float) -> EventRecord | None:
    """The oldest event of the group after `event`: windows of growing size after it, halved
    while a window holds more than one page (the store reads newest first)."""
    here, key = (event.when_ts, event.id), _key_of(event)
    size = EVENTS_OF_A_GROUP
    newest = next(iter(store.query_events(replace(f, limit=1))), None)
    if newest is None or (newest.when_ts, newest.id) <= here:
        return None
    end = math.nextafter(max(newest.when_ts, now), math.inf)
    low, high, full_at = event.when_ts, min(event.when_ts + 3600.0, end), end
    later: list[EventRecord] = []
    for _ in range(64):
        page = list(store.query_events(replace(f, since=low, until=high, limit=size)))
        later = [e for e in page if (e.when_ts, e.id) > here and _in_group(e, key)]
        if len(page) < size:
            if later:
                return min(later, key=lambda e: (e.when_ts, e.id))
            if high >= end:
                return None
            # Nothing after `event` before `high`: look further, not past a window known full.
            low, cap = high, full_at if full_at > high else end
            high = min(low + (low - event.when_ts) * 16, cap)
            continue
        middle = low + (high - low) / 2
        if not low < middle < high:
            break  # more events at one instant than a page: take what this page shows
        full_at, high = high, middle
    return min(later, key=lambda e: (e.when_ts, e.id), default=None)


def event(ctx: Context, event_id: int) -> Page:
    """One event whole: data, process, stack trace, and its group's neighbours."""
    found = ctx.store.get_event_by_id(event_id)
    if found is None:
        raise Missing(f"There is no event with id {event_id}.")
    key = _key_of(found)
    older = newer = None
    if key != (None, None):
        f = _group_filter(key, Scope())
        older, newer = _older(ctx.store, f, found), _newer(ctx.store, f, found, ctx.now)
    return Page(
        "event.html",
        {
            "event": found,
            "process": found.process,
            "key": group_key(*key) if key != (None, None) else None,
            "older": older,
            "newer": newer,
            "now": ctx.now,
        },
    )


# -- events and processes: lists, a page at a time --------------------------------------------------


def _keyset_page(
    fetch: Callable[[float | None, int], Iterable[R]],
    position: Callable[[R], tuple[float, int]],
    cursor: tuple[float, int] | None,
    size: int,
) -> tuple[list[R], bool]:
    """One page of a newest-first list after `cursor` (time, id), and whether more follow.

    `fetch(until, limit)` reads the list up to `until` (exclusive). Rows at the
    cursor's very instant are read again and skipped (the store bounds time only).
    """
    until = None if cursor is None else math.nextafter(cursor[0], math.inf)
    limit = size + 1 + 20
    while True:
        got = list(fetch(until, limit))
        fresh = [row for row in got if cursor is None or position(row) < cursor]
        if len(fresh) > size or len(got) < limit:
            return fresh[:size], len(fresh) > size
        limit *= 4


def _earlier(first: float | None, second: float | None) -> float | None:
    return second if first is None else first if second is None else min(first, second)


def events(ctx: Context) -> Page:
    """Events, newest first, with the filters of ``code-wake events``, a page at a time."""
    scope, window = read_scope(ctx.args), read_window(ctx.args, ctx.now, "all")
    terms = read_terms(ctx.args)
    exc_type = (ctx.args.get("exc_type") or "").strip() or None
    f = EventFilter(
        where=terms,
        app=scope.app,
        vsn=scope.vsn,
        env=scope.env,
        process_id=read_id(ctx.args, "process"),
        exc_type=exc_type,
        stacktrace_id=read_id(ctx.args, "trace"),
        errors=ctx.args.get("errors") == "1",
        since=window.since,
        until=window.until,
    )
    rows, more = _keyset_page(
        lambda until, limit: ctx.store.query_events(replace(f, until=_earlier(f.until, until), limit=limit)),
        lambda e: (e.when_ts, e.id),
        read_cursor(ctx.args),
        ctx.page_size,
    )
    keys = ("where", "exc_type", "process", "trace", "errors")
    query = Query.of(ctx.args, (*SCOPE_KEYS, *WINDOW_KEYS, *keys))
    return Page(
        "events.html",
        {
            **_filters(ctx, scope, window, keys),
            "events": rows,
            "terms": terms,
            "filter": f,
            "first_page": read_cursor(ctx.args) is None,
            "newest": query.without("before"),
            "older": query.set(before=cursor_text(rows[-1].when_ts, rows[-1].id)) if more else None,
        },
    )


def processes(ctx: Context) -> Page:
    """Processes (runs of programs), newest start first, a page at a time."""
    scope, window = read_scope(ctx.args), read_window(ctx.args, ctx.now, "all")
    f = ProcessFilter(app=scope.app, vsn=scope.vsn, env=scope.env, since=window.since, until=window.until)
    rows, more = _keyset_page(
        lambda until, limit: ctx.store.query_processes(
            replace(f, until=_earlier(f.until, until), limit=limit)
        ),
        lambda p: (p.run_ts, p.id),
        read_cursor(ctx.args),
        ctx.page_size,
    )
    query = Query.of(ctx.args, (*SCOPE_KEYS, *WINDOW_KEYS))
    last: ProcessRecord | None = rows[-1] if rows else None
    return Page(
        "processes.html",
        {
            **_filters(ctx, scope, window),
            "processes": rows,
            "first_page": read_cursor(ctx.args) is None,
            "newest": query,
            "older": query.set(before=cursor_text(last.run_ts, last.id)) if more and last else None,
        },
    )


# -- daily counts -----------------------------------------------------------------------------------


def daily(ctx: Context) -> Page:
    """Events and errors per UTC day, as a chart and a table per app, version and environment."""
    scope, window = read_scope(ctx.args), read_window(ctx.args, ctx.now, "30d")
    f = EventFilter(app=scope.app, vsn=scope.vsn, env=scope.env, since=window.since, until=window.until)
    rows = ctx.store.query_daily_counts(f)
    counts: dict[int, list[int]] = {}
    for row in rows:
        bucket = row.day.toordinal() - 719_163  # days since 1970-01-01
        totals = counts.setdefault(bucket * DAY, [0, 0])
        totals[0] += row.errors
        totals[1] += row.events - row.errors
    first = min(counts, default=None)
    start = window.since if window.since is not None else first if first is not None else window.end - 7 * DAY
    chart = bar_chart(
        counts, start, window.end, DAY, kinds=("err", "ok"), units=("error", "other event"), height=200
    )
    return Page(
        "daily.html",
        {
            **_filters(ctx, scope, window),
            "rows": rows,
            "chart": chart,
            "total_events": sum(r.events for r in rows),
            "total_errors": sum(r.errors for r in rows),
        },
    )


PAGES: dict[str, Callable[..., Page]] = {
    "errors": errors,
    "group": group,
    "event": event,
    "events": events,
    "processes": processes,
    "daily": daily,
}
"""Page functions by endpoint; each takes the `Context` and the URL's path values."""
