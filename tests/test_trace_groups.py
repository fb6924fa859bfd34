"""Sql14Store's trace groups beyond the contract: one statement built once per shape of the filter,
id lists left to the filter where it fixes them, and pieces of hours at the ends of a range.

Every answer is compared with `code_wake.query.group_traces` over the events the
filter selects (the reference the contract uses), on every backend.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import pytest
import sqlalchemy as sa

from code_wake.event import PendingEvent
from code_wake.query import EventFilter, TraceGroup, event_matches, group_traces
from code_wake.records import EventRecord, ProcessRecord
from code_wake.stack_trace import RawFrame
from code_wake.testing.contract import DAY0, HOUR, TRACE_A, TRACE_B, TRACE_C, TRACE_D, process_info
from code_wake_sql14_store import Sql14Store

Opener = Callable[[str], Sql14Store]
"""The `open_store` fixture: a Sql14Store for a URL, closed at the end of the test."""

PROCESSES = {
    # name: (app, version, environment)
    "shop10_prod": ("shop", "1.0", "production"),
    "shop11_prod": ("shop", "1.1", "production"),
    "shop11_stag": ("shop", "1.1", "staging"),
    "bill10_prod": ("billing", "1.0", "production"),
    "bill11_stag": ("billing", "1.1", "staging"),
    "search20": ("search", "2.0", None),
    "cron": ("cron", None, None),
}
SPAN = 3 * 24 * HOUR
"""The events lie in three days from DAY0."""


@dataclass(frozen=True)
class Dense:
    """What `dense` stored: processes by name and every event."""

    store: Sql14Store
    processes: dict[str, ProcessRecord]
    events: list[EventRecord]

    def expected(self, event_filter: EventFilter) -> list[TraceGroup]:
        selected = [e for e in self.events if event_matches(replace(event_filter, limit=None), e)]
        return group_traces(selected, event_filter.errors, event_filter.limit)


@pytest.fixture
def dense(db_url: str, open_store: Opener) -> Dense:
    """600 events of seven processes over three days, many in each hour: every group straddles hours."""
    store = open_store(db_url)
    processes = {
        name: store.insert_process(
            process_info(app_name=app, app_vsn=vsn, env_name=env, run_ts=DAY0 - HOUR, pid=2000 + n)
        )
        for n, (name, (app, vsn, env)) in enumerate(PROCESSES.items())
    }
    rng = random.Random(11)
    owners = list(processes.values())
    pending: list[PendingEvent] = []
    for n in range(600):
        owner = rng.choice(owners)
        # Three clusters of times, so that some hours are busy and others empty.
        when = DAY0 + rng.choice((0.2, 1.1, 2.4)) * 24 * HOUR + rng.uniform(0, 14 * HOUR)
        when = round(when, 3) if n % 7 else float(int(when // HOUR) * HOUR)  # some on the hour exactly
        kind = rng.randrange(6)
        exc: BaseException | None = None
        frames: tuple[RawFrame, ...] | None = None
        if kind == 0:
            exc, frames = ValueError(f"item {n}"), TRACE_A
        elif kind == 1:
            exc, frames = ValueError(f"price {n}"), TRACE_B
        elif kind == 2:
            exc = RuntimeError(f"no trace {n}")
        elif kind == 3:
            frames = TRACE_C
        elif kind == 4 and owner.app.name == "cron":
            exc, frames = KeyError(f"job {n}"), TRACE_D
        data = {"customer": f"c{n % 3}", "n": str(n)}
        pending.append(store.event_policy.build(owner.id, data, exc=exc, when_ts=when, frames=frames))
    events = store.insert_events(pending)
    return Dense(store, processes, events)


def _named_filters(dense: Dense) -> dict[str, EventFilter]:
    """Filters on each side of every branch: fixed scope or not, whole and partial hours at each end."""
    trace_a = next(
        e.stacktrace.id for e in dense.events if e.stacktrace is not None and e.exc_type == "ValueError"
    )
    partial = DAY0 + 26 * HOUR + 1234.5  # inside a busy hour of the second day
    scope: dict[str, Any] = {"app": "shop", "vsn": "1.1", "env": "production"}
    return {
        "app, version, environment: all of time": EventFilter(**scope),
        "app, version, environment: since a partial hour": EventFilter(**scope, since=partial),
        "app, version, environment: since a partial hour, errors, limit": EventFilter(
            **scope, since=partial, errors=True, limit=2
        ),
        "app, version, environment: both ends partial": EventFilter(
            **scope, since=DAY0 + 0.2 * 24 * HOUR + 77.7, until=DAY0 + 2.4 * 24 * HOUR + 3 * HOUR + 5.5
        ),
        "app, version, environment: within one hour": EventFilter(
            **scope, since=DAY0 + 27 * HOUR + 100, until=DAY0 + 27 * HOUR + 3000
        ),
        "app, version, environment: whole hours only": EventFilter(
            **scope, since=DAY0 + 5 * HOUR, until=DAY0 + 50 * HOUR
        ),
        "app and version": EventFilter(app="shop", vsn="1.1", since=partial),
        "app and environment": EventFilter(app="shop", env="production", until=partial),
        "version of two apps": EventFilter(vsn="1.0", since=DAY0 + 3 * HOUR + 1),
        "version of two apps and an environment": EventFilter(vsn="1.1", env="staging", since=partial),
        "version of one app, no app named": EventFilter(vsn="2.0", since=DAY0 + HOUR / 2),
        "environment": EventFilter(env="staging", since=DAY0 + 24 * HOUR, until=DAY0 + 60 * HOUR + 1),
        "app without version or environment": EventFilter(app="cron", errors=True, since=partial - 9 * HOUR),
        "exception type": EventFilter(exc_type="ValueError", since=partial, until=partial + 30 * HOUR),
        "exception type padded (no match on MySQL either)": EventFilter(exc_type="ValueError "),
        "exception type and full scope": EventFilter(**scope, exc_type="RuntimeError", since=partial),
        "stack trace": EventFilter(stacktrace_id=trace_a, since=partial - 20 * HOUR),
        "process": EventFilter(process_id=dense.processes["shop11_prod"].id, since=partial),
        "process, no range": EventFilter(process_id=dense.processes["bill11_stag"].id),
        "data term and scope": EventFilter(where={"customer": "c1"}, **scope, since=partial - 24 * HOUR),
        "data term, errors": EventFilter(where={"customer": "c2"}, errors=True, until=partial),
        "until only, partial": EventFilter(until=DAY0 + 30 * HOUR + 17.25),
        "since a midnight": EventFilter(since=DAY0 + 24 * HOUR),
        "empty range": EventFilter(since=partial, until=partial),
        "reversed range": EventFilter(since=partial, until=partial - 1),
        "after every event": EventFilter(**scope, since=DAY0 + SPAN + HOUR / 3),
        "no such version": EventFilter(app="shop", vsn="9.9"),
    }


def test_named_filters(dense: Dense) -> None:
    """Groups of each branch's filters equal the reference's."""
    for name, event_filter in _named_filters(dense).items():
        assert dense.store.query_trace_groups(event_filter) == dense.expected(event_filter), name


def _bound(rng: random.Random) -> float | None:
    """A range end: none, a midnight, an hour, or anywhere."""
    choice = rng.randrange(5)
    if choice == 0:
        return None
    if choice == 1:
        return DAY0 + rng.randrange(4) * 24 * HOUR
    if choice == 2:
        return DAY0 + rng.randrange(80) * HOUR
    return DAY0 + rng.uniform(-HOUR, SPAN + HOUR)


def test_random_filters(dense: Dense) -> None:
    """Random combinations of scope, error, type and time range: the same groups as the reference."""
    rng = random.Random(7)
    for number in range(150):
        app = rng.choice([None, None, "shop", "billing", "search", "cron"])
        vsn = rng.choice([None, None, "1.0", "1.1", "2.0"])
        env = rng.choice([None, None, "production", "staging"])
        since, until = _bound(rng), _bound(rng)
        event_filter = EventFilter(
            app=app,
            vsn=vsn,
            env=env,
            since=since,
            until=until,
            errors=rng.random() < 0.3,
            exc_type=rng.choice([None, None, None, "ValueError", "RuntimeError"]),
            where={"customer": "c0"} if rng.random() < 0.1 else (),
            limit=rng.choice([None, None, 1, 3]),
        )
        got = dense.store.query_trace_groups(event_filter)
        assert got == dense.expected(event_filter), (number, event_filter)


def _statements(store: Sql14Store, query: Callable[[], object]) -> list[str]:
    """The SELECT statements `query` runs, as sent to the database."""
    captured: list[str] = []

    def capture(
        conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool
    ) -> None:
        if statement.lstrip().upper().startswith("SELECT") and "code_wake_schema" not in statement:
            captured.append(statement)

    sa.event.listen(store.engine, "before_cursor_execute", capture)
    try:
        query()
    finally:
        sa.event.remove(store.engine, "before_cursor_execute", capture)
    return captured


def _grouping(store: Sql14Store, event_filter: EventFilter) -> str:
    """The text of the statement that groups the events for `event_filter`."""
    found = _statements(store, lambda: store.query_trace_groups(event_filter))
    return next(text for text in found if "GROUP BY" in text)


def test_one_statement_per_call(dense: Dense) -> None:
    """A range read from summary rows and events together is one statement, then the messages."""
    store = dense.store
    event_filter = EventFilter(since=DAY0 + 26 * HOUR + 1234.5, until=DAY0 + 50 * HOUR + 99.5)
    store.query_trace_groups(event_filter)  # loads traces, apps, versions and environments
    statements = _statements(store, lambda: store.query_trace_groups(event_filter))
    assert len(statements) == 2
    assert "event_counts" in statements[0]
    assert "FROM events" in statements[0]
    assert "UNION ALL" in statements[0]
    assert "exc_message" in statements[1]


def test_statement_is_reused_for_other_values(dense: Dense) -> None:
    """Filters of one shape and other values send the same statement text."""
    store = dense.store
    first = EventFilter(app="shop", vsn="1.1", env="production", since=DAY0 + 26 * HOUR + 1.5, errors=True)
    second = EventFilter(app="billing", vsn="1.0", env="production", since=DAY0 + 2 * HOUR + 7, errors=True)
    assert _grouping(store, first) == _grouping(store, second)
    assert store.query_trace_groups(second) == dense.expected(second)


@pytest.mark.parametrize(
    ("scope", "aggregated"),
    [
        ({"app": "shop", "vsn": "1.1", "env": "production"}, 0),
        ({"app": "shop", "env": "production"}, 1),
        ({"vsn": "1.0", "env": "production"}, 2),  # 1.0 of two apps: the version is not fixed
        ({"vsn": "2.0"}, 2),  # one app's version: fixed, but the app and environment are not
        ({}, 3),
    ],
)
def test_id_lists_only_where_the_filter_leaves_them_open(
    dense: Dense, scope: dict[str, Any], aggregated: int
) -> None:
    """No DISTINCT id list is aggregated for a dimension the filter fixes; the groups stay the same."""
    store = dense.store
    event_filter = EventFilter(**scope, since=DAY0 + 26 * HOUR + 1234.5)
    first_branch = _grouping(store, event_filter).split("UNION ALL")[0].upper()
    assert first_branch.count("DISTINCT") == aggregated, first_branch
    groups = store.query_trace_groups(event_filter)
    assert groups == dense.expected(event_filter)
    assert groups
    if "app" in scope:
        assert all([a.name for a in g.apps] == [scope["app"]] for g in groups)
    if "env" in scope:
        assert all([e.name for e in g.environments] == [scope["env"]] for g in groups)
