"""Queries for analysis: what to look for, and what comes back.

`EventFilter` says which events a query looks at (every field given narrows
it), `ProcessFilter` which processes. The store's query methods
(`Store.query_events`, `query_processes`, `query_trace_groups`,
`query_daily_counts`, `prune`) answer with records and with the result
types here: `TraceGroup`, `DailyCount`, `PruneReport`.

The functions at the bottom compute groups and counts from events in
Python. `Store` uses them to derive its default implementations from
`query_events`, and `code_wake.testing.MemoryStore` is built on them; they
are also the reference the store contract compares a SQL store's answers with.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeAlias

from ._text import value_text
from .records import AppRecord, AppVsnRecord, EnvironmentRecord, EventRecord, ProcessRecord, StacktraceRecord

__all__ = [
    "DAY",
    "HOUR",
    "BucketCount",
    "DailyCount",
    "EventFilter",
    "ProcessFilter",
    "PruneReport",
    "Terms",
    "TraceGroup",
    "Where",
    "count_daily",
    "count_over_time",
    "day_of",
    "event_matches",
    "group_traces",
    "process_matches",
]

Terms: TypeAlias = tuple[tuple[str, "str | None"], ...]
"""Data terms: ``(key, value)`` pairs an event must all carry; a None value means a null value."""

Where: TypeAlias = "Terms | Mapping[Any, Any] | Iterable[tuple[Any, Any]]"
"""Data terms as given: a mapping, or ``(key, value)`` pairs (so that a key can repeat)."""

DAY = 86_400
"""Seconds in a day; days are UTC days."""

HOUR = 3_600
"""Seconds in an hour: the other bucket size of `Store.query_counts_over_time`."""


def _terms(where: Where) -> Terms:
    """`where` as ``(str key, str-or-None value)`` pairs, values written as the event policy stores them."""
    items = where.items() if isinstance(where, Mapping) else where
    return tuple(
        (str(key), None if val is None else val if isinstance(val, str) else value_text(val))
        for key, val in items
    )


def _check_limit(limit: int | None) -> None:
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
        raise ValueError(f"A limit must be None or an integer of at least 0, not {limit!r}.")


def _check_time(name: str, value: float | None) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{name} must be epoch seconds (a number) or None, not {value!r}.")
    return float(value)


@dataclass(frozen=True, slots=True)
class EventFilter:
    """Which events a query looks at. Every field given narrows the answer (AND).

    - `where`: data terms, all of which an event must carry (a mapping, or
      ``(key, value)`` pairs so that a key can repeat); values match exactly,
      None meaning a null value; non-string values are compared as the event
      policy stores them (``42`` as ``"42"``).
    - `app`, `vsn`, `env`: names of the app, app version and environment of
      the event's process. A version without an app matches that version of
      every app.
    - `process_id`, `stacktrace_id`: ids of the event's process and stack trace.
    - `exc_type`: the exception type, exactly as recorded (``ValueError``,
      ``package.module.Error``); `errors`: only events carrying an exception.
    - `since` (inclusive) and `until` (exclusive): epoch seconds of the event time.
    - `limit`: at most this many results (events, groups or rows); None: all.
    """

    where: Where = ()
    app: str | None = None
    vsn: str | None = None
    env: str | None = None
    process_id: int | None = None
    exc_type: str | None = None
    stacktrace_id: int | None = None
    errors: bool = False
    since: float | None = None
    until: float | None = None
    limit: int | None = None

    def __post_init__(self) -> None:
        # Frozen: normalising in place needs object.__setattr__ (the dataclasses idiom).
        object.__setattr__(self, "where", _terms(self.where))
        object.__setattr__(self, "since", _check_time("since", self.since))
        object.__setattr__(self, "until", _check_time("until", self.until))
        _check_limit(self.limit)

    @property
    def terms(self) -> Terms:
        """`where` as given, as ``(str key, str-or-None value)`` pairs: what stores read."""
        # __post_init__ made it so; the field's type is the wider one a caller may give.
        return self.where  # type: ignore[return-value]

    @property
    def by_process_or_data(self) -> bool:
        """True when the filter names a process or data terms (no summary table can answer it)."""
        return bool(self.terms) or self.process_id is not None


@dataclass(frozen=True, slots=True)
class ProcessFilter:
    """Which processes a query looks at: by app, version and environment names, and start time.

    `since` (inclusive) and `until` (exclusive) bound the process's start
    time (``run_ts``); `limit` caps the answer.
    """

    app: str | None = None
    vsn: str | None = None
    env: str | None = None
    since: float | None = None
    until: float | None = None
    limit: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "since", _check_time("since", self.since))
        object.__setattr__(self, "until", _check_time("until", self.until))
        _check_limit(self.limit)


@dataclass(frozen=True, slots=True)
class TraceGroup:
    """Events of one exception type with one stack trace, as `Store.query_trace_groups` counts them.

    `count`, `first_ts` and `last_ts` cover the events the filter selected.
    `last_event_id` is the newest of them (by id), and `message` its
    exception message: the group's representative. `apps`, `app_vsns` and
    `environments` are where the group was seen, sorted by name.
    `exc_type` is None for a trace recorded without an exception (a caller's
    stack), `stacktrace` None for an exception recorded without its trace.
    """

    exc_type: str | None
    stacktrace: StacktraceRecord | None
    count: int
    first_ts: float
    last_ts: float
    last_event_id: int
    message: str | None = None
    apps: tuple[AppRecord, ...] = ()
    app_vsns: tuple[AppVsnRecord, ...] = ()
    environments: tuple[EnvironmentRecord, ...] = ()

    @property
    def stacktrace_id(self) -> int | None:
        """The stack trace's id, or None."""
        return None if self.stacktrace is None else self.stacktrace.id

    @staticmethod
    def rank(
        count: int, last_ts: float, stacktrace_id: int | None, exc_type: str | None
    ) -> tuple[int, float, int, str]:
        """The order of trace groups, from their parts: most frequent first, then most
        recently seen, then by stack trace id and exception type. Adapters that rank
        groups before building them use this, so every store orders alike."""
        return (-count, -last_ts, stacktrace_id or 0, exc_type or "")

    def sort_key(self) -> tuple[int, float, int, str]:
        """This group's place in the order of trace groups (see `rank`)."""
        return TraceGroup.rank(self.count, self.last_ts, self.stacktrace_id, self.exc_type)


@dataclass(frozen=True, slots=True)
class DailyCount:
    """How many events (and how many of them with an exception) one app version in one
    environment recorded on one UTC day."""

    day: datetime.date
    app: AppRecord
    app_vsn: AppVsnRecord | None
    environment: EnvironmentRecord | None
    events: int
    errors: int

    def sort_key(self) -> tuple[int, str, str, str]:
        """The order of daily counts: newest day first, then app, version and environment by name."""
        return (-self.day.toordinal(), self.app.name, _name(self.app_vsn), _name(self.environment))


@dataclass(frozen=True, slots=True)
class PruneReport:
    """What `Store.prune` removed (or, with ``dry_run``, would remove).

    `data` counts the data rows (key/value pairs) of the removed events,
    `stackframes` the frames of the removed stack traces, and `call_sites`
    the call sites no event uses any more (a store that keeps what log
    records from one line of code share once, as `Sql14Store` does, counts
    their items there, not in `data`). Where a store has no such rows, the
    count is 0.
    """

    before_ts: float
    dry_run: bool
    events: int = 0
    data: int = 0
    stacktraces: int = 0
    stackframes: int = 0
    processes: int = 0
    call_sites: int = 0


# -- the reference implementations, over events in memory -----------------------------------------


def day_of(ts: float) -> datetime.date:
    """The UTC day of epoch seconds `ts`."""
    return datetime.date(1970, 1, 1) + datetime.timedelta(days=int(ts // DAY))


def _name(record: AppRecord | AppVsnRecord | EnvironmentRecord | None) -> str:
    if record is None:
        return ""
    return record.vsn if isinstance(record, AppVsnRecord) else record.name


def process_matches(process_filter: ProcessFilter | EventFilter, process: ProcessRecord) -> bool:
    """True when `process` is of the filter's app, version and environment (by name)."""
    f, vsn, env = process_filter, process.app_vsn, process.environment
    return (
        (f.app is None or process.app.name == f.app)
        and (f.vsn is None or (vsn is not None and vsn.vsn == f.vsn))
        and (f.env is None or (env is not None and env.name == f.env))
    )


def event_matches(event_filter: EventFilter, event: EventRecord) -> bool:
    """True when `event` passes every part of the filter but its limit."""
    f = event_filter
    return (
        process_matches(f, event.process)
        and (f.process_id is None or event.process.id == f.process_id)
        and (f.exc_type is None or event.exc_type == f.exc_type)
        and (not f.errors or event.exc_type is not None)
        and (
            f.stacktrace_id is None
            or (event.stacktrace is not None and event.stacktrace.id == f.stacktrace_id)
        )
        and (f.since is None or event.when_ts >= f.since)
        and (f.until is None or event.when_ts < f.until)
        and all(any(item.key == k and item.val == v for item in event.data) for k, v in f.terms)
    )


@dataclass
class _Tally:
    """One trace group while it is being counted."""

    first: EventRecord
    count: int = 0
    first_ts: float = float("inf")
    last_ts: float = float("-inf")
    last: EventRecord | None = None
    apps: dict[int, AppRecord] = field(default_factory=dict)
    vsns: dict[int, AppVsnRecord] = field(default_factory=dict)
    envs: dict[int, EnvironmentRecord] = field(default_factory=dict)

    def add(self, event: EventRecord) -> None:
        self.count += 1
        self.first_ts = min(self.first_ts, event.when_ts)
        self.last_ts = max(self.last_ts, event.when_ts)
        if self.last is None or event.id > self.last.id:
            self.last = event
        process = event.process
        self.apps[process.app.id] = process.app
        if process.app_vsn is not None:
            self.vsns[process.app_vsn.id] = process.app_vsn
        if process.environment is not None:
            self.envs[process.environment.id] = process.environment

    def group(self) -> TraceGroup:
        last = self.last or self.first
        return TraceGroup(
            exc_type=self.first.exc_type,
            stacktrace=self.first.stacktrace,
            count=self.count,
            first_ts=self.first_ts,
            last_ts=self.last_ts,
            last_event_id=last.id,
            message=last.exc_message,
            apps=tuple(sorted(self.apps.values(), key=_by_name)),
            app_vsns=tuple(sorted(self.vsns.values(), key=_vsn_order)),
            environments=tuple(sorted(self.envs.values(), key=_by_name)),
        )


def _by_name(record: AppRecord | EnvironmentRecord) -> tuple[str, int]:
    return (record.name, record.id)


def _vsn_order(record: AppVsnRecord) -> tuple[str, str, int]:
    return (record.app.name, record.vsn, record.id)


def group_traces(
    events: Iterable[EventRecord], errors: bool = False, limit: int | None = None
) -> list[TraceGroup]:
    """Trace groups of `events` that carry a stack trace or an exception (with `errors`: an exception).

    One group per (exception type, stack trace), most frequent first.
    """
    tallies: dict[tuple[str | None, int | None], _Tally] = {}
    for event in events:
        if event.exc_type is None and (errors or event.stacktrace is None):
            continue
        key = (event.exc_type, None if event.stacktrace is None else event.stacktrace.id)
        tally = tallies.get(key)
        if tally is None:
            tally = tallies[key] = _Tally(event)
        tally.add(event)
    groups = sorted((tally.group() for tally in tallies.values()), key=TraceGroup.sort_key)
    return groups if limit is None else groups[:limit]


def count_daily(events: Iterable[EventRecord], limit: int | None = None) -> list[DailyCount]:
    """Events per UTC day, app, version and environment, with how many carried an exception."""
    counts: dict[tuple[datetime.date, int, int | None, int | None], list[Any]] = {}
    for event in events:
        process = event.process
        vsn, env = process.app_vsn, process.environment
        key = (
            day_of(event.when_ts),
            process.app.id,
            None if vsn is None else vsn.id,
            None if env is None else env.id,
        )
        row = counts.get(key)
        if row is None:
            row = counts[key] = [process.app, vsn, env, 0, 0]
        row[3] += 1
        row[4] += event.exc_type is not None
    rows = sorted(
        (DailyCount(key[0], *values) for key, values in counts.items()),
        key=DailyCount.sort_key,
    )
    return rows if limit is None else rows[:limit]


# -- counts over time (appended: the web view's charts) ---------------------------------------------


@dataclass(frozen=True, slots=True)
class BucketCount:
    """How many events of one exception type and stack trace one hour or UTC day holds,
    as `Store.query_counts_over_time` counts them.

    `bucket_ts` is the bucket's start, in epoch seconds (a multiple of
    `span`, which is `HOUR` or `DAY`). `exc_type` and `stacktrace_id` name
    the trace group (None: no exception, no stack trace; events with
    neither count under None and None). `app`, `app_vsn` and `environment`
    say where, when the counts were asked for per app version and
    environment (``by_scope``); otherwise all three are None.
    """

    bucket_ts: int
    span: int
    exc_type: str | None
    stacktrace_id: int | None
    count: int
    app: AppRecord | None = None
    app_vsn: AppVsnRecord | None = None
    environment: EnvironmentRecord | None = None

    @staticmethod
    def check_span(span: int) -> int:
        """`span` if it is a bucket size stores count in (`HOUR` or `DAY`), else ValueError."""
        if span not in (HOUR, DAY) or isinstance(span, bool):
            raise ValueError(f"A span must be HOUR ({HOUR}) or DAY ({DAY}) seconds, not {span!r}.")
        return int(span)

    @staticmethod
    def bucket_of(ts: float, span: int) -> int:
        """The start of the bucket of `span` seconds that epoch seconds `ts` fall in."""
        return int(ts // span) * span

    def sort_key(self) -> tuple[int, str, int, str, str, str]:
        """The order of bucket counts: oldest bucket first, then exception type, stack trace id,
        app, version and environment by name."""
        return (
            self.bucket_ts,
            self.exc_type or "",
            self.stacktrace_id or 0,
            _name(self.app),
            _name(self.app_vsn),
            _name(self.environment),
        )


def count_over_time(
    events: Iterable[EventRecord], span: int = HOUR, by_scope: bool = False, limit: int | None = None
) -> list[BucketCount]:
    """`events` counted per bucket of `span` seconds and per (exception type, stack trace);
    with `by_scope`, per app, version and environment too. Oldest bucket first."""
    span = BucketCount.check_span(span)
    counts: dict[tuple[Any, ...], list[Any]] = {}
    for event in events:
        process = event.process
        trace_id = None if event.stacktrace is None else event.stacktrace.id
        key: tuple[Any, ...] = (BucketCount.bucket_of(event.when_ts, span), event.exc_type, trace_id)
        where: tuple[Any, ...] = (None, None, None)
        if by_scope:
            where = (process.app, process.app_vsn, process.environment)
            key += tuple(None if record is None else record.id for record in where)
        row = counts.get(key)
        if row is None:
            row = counts[key] = [0, *where]
        row[0] += 1
    rows = sorted(
        (BucketCount(key[0], span, key[1], key[2], *values) for key, values in counts.items()),
        key=BucketCount.sort_key,
    )
    return rows if limit is None else rows[:limit]
