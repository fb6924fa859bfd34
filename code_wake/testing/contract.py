"""The store contract as a pytest suite: what every store adapter must pass.

Subclass `StoreContract` in a test module named ``test_*.py`` under a class
named ``Test*``, and give it a function-scoped ``store`` fixture that yields a
new, empty store and closes it afterwards::

    import pytest
    from code_wake.testing import StoreContract
    from my_adapter import MyStore

    class TestMyStore(StoreContract):
        @pytest.fixture
        def store(self, tmp_path):
            store = MyStore(tmp_path / "events.db")
            yield store
            store.close()

pytest does not collect `StoreContract` itself (its name does not start with
``Test``). Every test writes with ``sync=True``, so a queued store is tested
through the same doors as a plain one. docs/stores.md describes the contract.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import FrozenInstanceError, dataclass, replace
from typing import Any

import pytest

from code_wake.errors import StoreError
from code_wake.event import PendingEvent, data_digest
from code_wake.query import (
    DAY,
    EventFilter,
    ProcessFilter,
    count_daily,
    count_over_time,
    event_matches,
    group_traces,
)
from code_wake.records import DataItem, EventRecord, ProcessInfo, ProcessRecord, StacktraceRecord
from code_wake.stack_trace import CAUSE_MARKER, CONTEXT_MARKER, RawFrame, bencode, trace_digest
from code_wake.store import Store

from .memory import newest_first

__all__ = [
    "DAY0",
    "PYCODEWAKE_CONTRACT",
    "Scene",
    "StoreContract",
    "build_scene",
    "process_info",
    "raised_through_foo_bar_baz",
    "stored",
    "trace_of",
]

APP = "contract_app"
"""The app name the suite's processes run under unless a test says otherwise."""


def process_info(**overrides: Any) -> ProcessInfo:
    """A process the store has not seen yet (this one, with `overrides`)."""
    values: dict[str, Any] = {
        "pid": os.getpid(),
        "username": "contract_user",
        "fqdn": "contract.example.org",
        "exe_path": "/opt/contract/bin/contract.py",
        "run_ts": time.time(),
        "app_name": APP,
        "app_vsn": "1.0",
        "env_name": "test",
    }
    values.update(overrides)
    return ProcessInfo(**values)


def stored(event: EventRecord | None) -> EventRecord:
    """The record a ``sync=True`` write returned (never None)."""
    assert event is not None, "insert_event(..., sync=True) must return the stored event"
    return event


def trace_of(event: EventRecord | None) -> StacktraceRecord:
    """The event's stack trace (which it must have)."""
    trace = stored(event).stacktrace
    assert trace is not None, "the event has no stack trace"
    return trace


def _ids(records: Sequence[ProcessRecord | EventRecord]) -> list[int]:
    return [record.id for record in records]


class _Unrepresentable:
    """A value whose repr raises, as some third-party objects' do."""

    def __repr__(self) -> str:
        raise RuntimeError("no repr for you")


BAD_VALUES: dict[str, Any] = {
    "none": None,
    "int": 42,
    "float": 1.5,
    "bool": True,
    "nested": {"a": [1, {"b": None}], "c": "d"},
    "list": [1, "two", 3.0],
    "bytes": b"\x00\xffbytes",
    "huge": "x" * 1_000_000,
    "nul": "before\x00after",
    "lone_surrogate": "a\ud800b",
    "unrepresentable": _Unrepresentable(),
    "emoji": "party \U0001f389 time \U0001f600",
}
"""Values that log calls get in real life, each of which must be stored (normalised), never raise."""


PYCODEWAKE_CONTRACT = frozenset(
    {
        "test_insert_process",
        "test_insert_event_without_sync_returns_none",
        "test_insert_event_records_its_data",
        "test_stack_trace_only_when_asked",
        "test_like_stack_traces_are_not_duplicated",
        "test_same_exception_shares_its_trace",
        "test_caller_trace_frames",
        "test_exception_trace_frames",
        "test_exception_trace_by_default",
        "test_events_by_data_one_term",
        "test_events_by_data_two_terms",
        "test_events_by_data_three_terms",
        "test_events_by_data_no_match",
        "test_events_by_data_load_their_stack_traces",
    }
)
"""The tests that check what pycodewake 0.2.2's own store suite checked, through the methods
its adapters had (``insert_app``, ``insert_process``, ``get_process_by_id``, ``insert_event``,
``get_events_by_data``). `code_wake.test.store` runs only these on a pycodewake adapter;
docs/stores.md maps each original test to them."""


def raised_through_foo_bar_baz() -> BaseException:
    """An exception raised through foo() -> bar() -> baz(), caught: the suites' ``exc`` fixture."""

    def baz() -> None:
        raise Exception("foo bar baz")

    def bar() -> None:
        baz()

    def foo() -> None:
        bar()

    try:
        foo()
    except Exception as caught:  # noqa: BLE001 - the fixture hands the exception to the tests
        return caught
    raise AssertionError("foo() did not raise")


# -- the scene the query tests look at ---------------------------------------------------------

DAY0 = 1_700_006_400.0
"""Midnight UTC on 2023-11-15: the first day of the query tests' scene."""

HOUR = 3600.0


def _frames(*frames: tuple[str, int, str, str]) -> tuple[RawFrame, ...]:
    """A stack trace given outright (outermost first), source lines included."""
    return tuple(RawFrame(filename, lineno, function, src) for filename, lineno, src, function in frames)


TRACE_A = _frames(
    ("shop/app.py", 10, "run()", "<module>"), ("shop/stock.py", 30, "raise ValueError(item)", "take")
)
TRACE_B = _frames(
    ("shop/app.py", 10, "run()", "<module>"), ("shop/price.py", 44, "raise ValueError(price)", "quote")
)
TRACE_C = _frames(("shop/report.py", 7, "log_report()", "<module>"))
TRACE_D = _frames(("cron/job.py", 5, "raise KeyError(name)", "main"))

_PROCESSES = {
    # name: (app, version, environment, start time)
    "cron": ("cron", None, None, DAY0 - 3600),
    "idle_old": ("shop", "1.0", "production", DAY0 - 5000),
    "shop10_prod": ("shop", "1.0", "production", DAY0 - 7200),
    "shop11_prod": ("shop", "1.1", "production", DAY0 - 7100),
    "shop11_stag": ("shop", "1.1", "staging", DAY0 - 7000),
    "bill10_prod": ("billing", "1.0", "production", DAY0 - 6900),
    "idle_new": ("shop", "1.1", "production", DAY0 + 60 * HOUR),
}
_CYCLE = ("shop10_prod", "shop11_prod", "shop11_stag", "bill10_prod")
SCENE_SIZE = 48
"""Events in the scene: one every 90 minutes over three days."""


@dataclass(frozen=True)
class Scene:
    """What `build_scene` stored: processes by name, events in the order written."""

    processes: dict[str, ProcessRecord]
    events: list[EventRecord]

    def expected(self, event_filter: EventFilter) -> list[EventRecord]:
        """The events a query with `event_filter` must answer, computed in Python."""
        found = sorted((e for e in self.events if event_matches(event_filter, e)), key=newest_first)
        return found if event_filter.limit is None else found[: event_filter.limit]


def _scene_event(store: Store, n: int, processes: dict[str, ProcessRecord]) -> PendingEvent:
    """Event `n` of the scene: who logged it, when, with what data, exception and trace."""
    owner = "cron" if n < 12 and n % 3 == 0 else _CYCLE[n // 4 % 4]
    when = DAY0 + n * 5400 + (n % 3) * 7.25
    if n == 31:
        when = DAY0 + 30 * 5400  # the same time as event 30: ties are ordered by id
    data: list[tuple[str, str | None]] = [("customer", f"c{n % 3}"), ("n", str(n))]
    if n == 5:
        data.append(("note", None))
    exc: BaseException | None = None
    frames: tuple[RawFrame, ...] | None = None
    if owner == "cron":
        exc, frames = KeyError(f"job{n}"), TRACE_D
    elif n % 4 == 1:
        exc, frames = ValueError(f"bad item {n}"), TRACE_A
    elif n % 8 == 2:
        exc, frames = ValueError(f"bad price {n}"), TRACE_B
    elif n % 4 == 2:
        exc = RuntimeError(f"no trace {n}")
    elif n % 4 == 3:
        frames = TRACE_C
    event = "fault" if exc is not None else "report" if frames is not None else "order"
    data.insert(0, ("event", event))
    return store.event_policy.build(processes[owner].id, data, exc=exc, when_ts=when, frames=frames)


def build_scene(store: Store) -> Scene:
    """Store the query tests' scene: seven processes of three apps, 48 events over three days.

    Apps shop (1.0 and 1.1, production and staging), billing 1.0 (production)
    and cron (no version, no environment); processes "idle_old" (started
    before the first event) and "idle_new" (started on the third day) log
    nothing. Events carry ``event``, ``customer`` (c0..c2) and ``n``; errors
    are ValueErrors with two traces, RuntimeErrors without a trace and (only
    from cron, only in the first 18 hours) KeyErrors; some events carry a
    caller trace and no exception.
    """
    processes = {
        name: store.insert_process(
            process_info(app_name=app, app_vsn=vsn, env_name=env, run_ts=run_ts, pid=1000 + number)
        )
        for number, (name, (app, vsn, env, run_ts)) in enumerate(_PROCESSES.items())
    }
    events = store.insert_events([_scene_event(store, n, processes) for n in range(SCENE_SIZE)])
    return Scene(processes, events)


def _trace_id(scene: Scene, frames: tuple[RawFrame, ...]) -> int:
    """The id under which the scene's events share `frames`."""
    digest = trace_digest(frames)
    return next(
        e.stacktrace.id for e in scene.events if e.stacktrace is not None and e.stacktrace.digest == digest
    )


def _filter_cases(scene: Scene) -> dict[str, EventFilter]:
    """Filters that each select some, but not all, of the scene's events."""
    shop11 = scene.processes["shop11_prod"].id
    trace_a = _trace_id(scene, TRACE_A)
    return {
        "one data term": EventFilter(where={"customer": "c1"}),
        "two data terms": EventFilter(where=[("customer", "c1"), ("event", "fault")]),
        "a null value": EventFilter(where=[("note", None)]),
        "app": EventFilter(app="shop"),
        "version of any app": EventFilter(vsn="1.0"),
        "app and version": EventFilter(app="shop", vsn="1.1"),
        "environment": EventFilter(env="staging"),
        "process": EventFilter(process_id=shop11),
        "exception type": EventFilter(exc_type="ValueError"),
        "stack trace": EventFilter(stacktrace_id=trace_a),
        "errors": EventFilter(errors=True),
        "since": EventFilter(since=DAY0 + 20 * HOUR + 0.5),
        "until": EventFilter(until=DAY0 + 50 * HOUR - 3),
        "time range": EventFilter(since=DAY0 + 25 * HOUR + 17, until=DAY0 + 26 * HOUR + 1),
        "all at once": EventFilter(
            where={"event": "fault"}, app="shop", env="production", errors=True, since=DAY0 + 3 * HOUR
        ),
        "limit": EventFilter(limit=5),
        "limit with a filter": EventFilter(app="billing", limit=3),
    }


def _window_cases(scene: Scene) -> dict[str, EventFilter]:
    """Filters for groups and daily counts: time windows on and off hour and day boundaries."""
    return {
        "everything": EventFilter(),
        "errors": EventFilter(errors=True),
        "across days": EventFilter(since=DAY0 + 1800.5, until=DAY0 + 70 * HOUR - 1),
        "within a day": EventFilter(since=DAY0 + 25 * HOUR + 17, until=DAY0 + 29 * HOUR + 1),
        "within an hour": EventFilter(since=DAY0 + 30 * 5400 - 1, until=DAY0 + 30 * 5400 + 1),
        "until only": EventFilter(until=DAY0 + 36 * HOUR + 3),
        "since a midnight": EventFilter(since=DAY0 + 24 * HOUR),
        "app and environment": EventFilter(app="shop", env="production"),
        "version of any app": EventFilter(vsn="1.0", errors=True),
        "exception type": EventFilter(exc_type="ValueError", since=DAY0 + 5 * HOUR + 1),
        "data term": EventFilter(where={"customer": "c2"}),
        "process": EventFilter(process_id=scene.processes["shop11_stag"].id, until=DAY0 + 40 * HOUR),
        "limit": EventFilter(limit=2),
        "nothing": EventFilter(app="no_such_app"),
    }


class StoreContract:
    """The store contract suite; subclass it and provide a ``store`` fixture."""

    # -- fixtures -------------------------------------------------------------------------

    @pytest.fixture
    def store(self) -> Store:
        """Subclasses provide an empty store (and close it afterwards)."""
        pytest.fail("a StoreContract subclass must define a `store` fixture yielding an empty store")

    @pytest.fixture
    def process(self, store: Store) -> ProcessRecord:
        """A registered process."""
        return store.insert_process(process_info())

    @pytest.fixture
    def exc(self) -> BaseException:
        """An exception raised through foo() -> bar() -> baz()."""
        return raised_through_foo_bar_baz()

    # -- processes -----------------------------------------------------------------------------

    @pytest.mark.parametrize("env_name", [None, "production"])
    @pytest.mark.parametrize("app_exists", [False, True])
    @pytest.mark.parametrize("app_vsn", [None, "2.0"])
    def test_insert_process(
        self, store: Store, env_name: str | None, app_exists: bool, app_vsn: str | None
    ) -> None:
        """A process registers with or without environment and version, for a new or known app."""
        existing = store.insert_app(APP) if app_exists else None
        record = store.insert_process(process_info(env_name=env_name, app_vsn=app_vsn))
        loaded = store.get_process_by_id(record.id)
        assert isinstance(loaded, store.Process)
        assert loaded == record
        assert loaded.app.name == APP
        if existing is not None:
            assert loaded.app.id == existing.id
        if env_name is None:
            assert loaded.environment is None
        else:
            assert loaded.environment is not None
            assert loaded.environment.name == env_name
        if app_vsn is None:
            assert loaded.app_vsn is None
        else:
            assert loaded.app_vsn is not None
            assert (loaded.app_vsn.vsn, loaded.app_vsn.app) == (app_vsn, loaded.app)

    def test_insert_process_keeps_its_fields(self, store: Store) -> None:
        """pid, user, host, exe path and start time (to the microsecond) are stored."""
        info = process_info(run_ts=1795852521.489002)
        loaded = store.get_process_by_id(store.insert_process(info).id)
        assert loaded is not None
        assert (loaded.pid, loaded.username, loaded.fqdn, loaded.exe_path, loaded.run_ts) == (
            info.pid,
            info.username,
            info.fqdn,
            info.exe_path,
            info.run_ts,
        )

    def test_insert_process_accepts_an_object_with_info(self, store: Store) -> None:
        """insert_process takes anything with an ``info`` (as `code_wake.Process` has)."""

        class Holder:
            info = process_info(app_name="holder_app")

        record = store.insert_process(Holder())
        assert record.app.name == "holder_app"

    def test_processes_are_separate_runs(self, store: Store) -> None:
        """Two registrations of the same program are two processes of one app."""
        first = store.insert_process(process_info())
        second = store.insert_process(process_info())
        assert first.id != second.id
        assert first.app == second.app
        assert first.app_vsn == second.app_vsn
        assert first.environment == second.environment

    def test_get_processes_by_time(self, store: Store) -> None:
        """get_processes filters on start time, from inclusive and to exclusive, oldest first."""
        early = store.insert_process(process_info(run_ts=1000.0))
        middle = store.insert_process(process_info(run_ts=2000.0, app_name="other_app"))
        late = store.insert_process(process_info(run_ts=3000.0))
        same_time = store.insert_process(process_info(run_ts=2000.0))
        assert _ids(store.get_processes()) == [early.id, middle.id, same_time.id, late.id]
        assert _ids(store.get_processes(from_ts=2000.0, to_ts=3000.0)) == [middle.id, same_time.id]
        assert _ids(store.get_processes(from_ts=2000.0)) == [middle.id, same_time.id, late.id]
        assert _ids(store.get_processes(to_ts=2000.0)) == [early.id]
        assert all(isinstance(p, store.Process) for p in store.get_processes())

    def test_get_processes_by_app(self, store: Store) -> None:
        """get_processes filters on the app, alone and with a time range."""
        mine = [store.insert_process(process_info(run_ts=ts)) for ts in (10.0, 20.0, 30.0)]
        store.insert_process(process_info(run_ts=15.0, app_name="other_app"))
        app_id = mine[0].app.id
        assert [p.id for p in store.get_processes(app_id=app_id)] == [p.id for p in mine]
        assert [p.id for p in store.get_processes(app_id=app_id, from_ts=15.0, to_ts=30.0)] == [mine[1].id]
        assert store.get_processes(app_id=app_id + 1000) == []

    # -- apps, versions, environments ----------------------------------------------------------

    def test_insert_app_is_get_or_create(self, store: Store) -> None:
        """insert_app returns the same app for the same name, and a new one for a new name."""
        first = store.insert_app("app_x")
        assert isinstance(first, store.App)
        assert store.insert_app("app_x") == first
        assert store.insert_app("app_y").id != first.id
        assert store.get_app_by_name("app_x") == first
        assert store.get_app_by_id(first.id) == first

    def test_insert_app_with_vsn_creates_the_version(self, store: Store) -> None:
        """insert_app(name, vsn) also registers that version of that app."""
        app = store.insert_app("app_x", "3.1")
        vsn = store.insert_app_vsn(app.id, "3.1")
        assert isinstance(vsn, store.AppVsn)
        assert (vsn.vsn, vsn.app) == ("3.1", app)
        assert store.insert_app("app_x", "3.1") == app
        assert store.insert_app_vsn(app.id, "3.1") == vsn

    def test_insert_app_vsn_is_get_or_create(self, store: Store) -> None:
        """insert_app_vsn returns one record per (app, version), loadable by id."""
        app = store.insert_app("app_x")
        first = store.insert_app_vsn(app.id, "1.0")
        assert store.insert_app_vsn(app.id, "1.0") == first
        second = store.insert_app_vsn(app.id, "1.1")
        assert second.id != first.id
        assert store.get_app_vsn_by_id(first.id) == first
        assert store.get_app_vsn_by_id(second.id) == second

    def test_app_versions_belong_to_their_app(self, store: Store) -> None:
        """app_a 1.0 and app_b 1.0 are two versions, each of its own app (the original mixed them)."""
        a = store.insert_process(process_info(app_name="app_a", app_vsn="1.0"))
        b = store.insert_process(process_info(app_name="app_b", app_vsn="1.0"))
        assert a.app_vsn is not None
        assert b.app_vsn is not None
        assert a.app_vsn.id != b.app_vsn.id
        loaded_a = store.get_app_vsn_by_id(a.app_vsn.id)
        loaded_b = store.get_app_vsn_by_id(b.app_vsn.id)
        assert loaded_a is not None
        assert loaded_b is not None
        assert (loaded_a.app.name, loaded_b.app.name) == ("app_a", "app_b")
        loaded_process = store.get_process_by_id(b.id)
        assert loaded_process is not None
        assert loaded_process.app_vsn == b.app_vsn

    def test_insert_app_vsn_for_an_unknown_app_raises(self, store: Store) -> None:
        """A version of an app that does not exist is a StoreError."""
        with pytest.raises(StoreError):
            store.insert_app_vsn(987_654, "1.0")

    def test_environments(self, store: Store) -> None:
        """Environments are shared by name and loadable by name and id."""
        first = store.insert_process(process_info(env_name="staging")).environment
        second = store.insert_process(process_info(env_name="staging")).environment
        assert first is not None
        assert isinstance(first, store.Environment)
        assert second == first
        assert store.get_environment_by_name("staging") == first
        assert store.get_environment_by_id(first.id) == first

    def test_unknown_names_are_none(self, store: Store) -> None:
        """get_app_by_name and get_environment_by_name give None for names never stored."""
        store.insert_process(process_info())
        assert store.get_app_by_name("no_such_app") is None
        assert store.get_environment_by_name("no_such_environment") is None

    def test_unknown_ids_are_none(self, store: Store, process: ProcessRecord) -> None:
        """Every get_*_by_id gives None for an id never stored."""
        missing = 987_654
        assert store.get_process_by_id(missing) is None
        assert store.get_app_by_id(missing) is None
        assert store.get_app_vsn_by_id(missing) is None
        assert store.get_environment_by_id(missing) is None
        assert store.get_event_by_id(missing) is None

    # -- events ------------------------------------------------------------------------------

    def test_insert_event_returns_the_event(self, store: Store, process: ProcessRecord) -> None:
        """insert_event returns a store.Event with an id, its process and its time."""
        before = time.time()
        event = stored(store.insert_event(process, sync=True))
        assert isinstance(event, store.Event)
        assert event.process == process
        assert before <= event.when_ts <= time.time()
        assert event.data == ()
        assert store.get_event_by_id(event.id) == event

    def test_insert_event_without_sync_returns_none(self, store: Store, process: ProcessRecord) -> None:
        """Without ``sync=True``, insert_event returns None (the event is still stored)."""
        assert store.insert_event(process, [("n", "1")]) is None
        assert store.insert_event(process, [("n", "2")], sync=False) is None
        flush = getattr(store, "flush", None)
        if callable(flush):
            assert flush(10.0)
        assert [e.data for e in store.get_events_by_data([("n", "2")])] == [(DataItem("n", "2"),)]

    def test_insert_event_records_its_data(self, store: Store, process: ProcessRecord) -> None:
        """The returned event is a store.Event carrying every pair given, and no stack trace."""
        event = stored(store.insert_event(process, [("foo1", "foo1bar"), ("bar2", "bar2baz")], sync=True))
        assert isinstance(event, store.Event)
        assert sorted(event.data) == [DataItem("bar2", "bar2baz"), DataItem("foo1", "foo1bar")]
        assert event.stacktrace is None

    def test_data_as_pairs(self, store: Store, process: ProcessRecord) -> None:
        """Data given as (key, value) pairs is stored, every pair."""
        event = stored(store.insert_event(process, [("foo", "bar"), ("baz", "bat")], sync=True))
        loaded = stored(store.get_event_by_id(event.id))
        assert len(loaded.data) == 2
        assert {item.key: item.val for item in loaded.data} == {"foo": "bar", "baz": "bat"}
        assert all(isinstance(item, DataItem) for item in loaded.data)

    def test_data_as_dict(self, store: Store, process: ProcessRecord) -> None:
        """Data given as a dict is stored as its items (two-character keys stay whole)."""
        event = stored(store.insert_event(process, {"ab": "cd", "event": "order"}, sync=True))
        loaded = stored(store.get_event_by_id(event.id))
        assert loaded.data == (DataItem("ab", "cd"), DataItem("event", "order"))
        assert loaded.data_dict() == {"ab": "cd", "event": "order"}

    def test_data_pairs_with_repeated_keys(self, store: Store, process: ProcessRecord) -> None:
        """A key may repeat; every pair is kept, in the order given."""
        pairs = [("tag", "a"), ("other", "x"), ("tag", "b"), ("tag", "a")]
        event = stored(store.insert_event(process, pairs, sync=True))
        loaded = stored(store.get_event_by_id(event.id))
        assert [(item.key, item.val) for item in loaded.data] == pairs
        assert loaded.data == event.data

    def test_data_none_value(self, store: Store, process: ProcessRecord) -> None:
        """None is stored as null, not as the text 'None'."""
        event = stored(store.insert_event(process, {"missing": None, "present": "yes"}, sync=True))
        loaded = stored(store.get_event_by_id(event.id))
        assert loaded.data == (DataItem("missing", None), DataItem("present", "yes"))

    def test_event_digest(self, store: Store, process: ProcessRecord) -> None:
        """Event.digest is pycodewake's: sha256 of the bencoded [[key, val], ...]; None without data."""
        event = stored(store.insert_event(process, [("a", "1"), ("b", "2")], sync=True))
        expected = hashlib.sha256(bencode([["a", "1"], ["b", "2"]])).digest()
        assert event.digest == expected
        assert stored(store.get_event_by_id(event.id)).digest == expected
        assert stored(store.insert_event(process, sync=True)).digest is None
        with_null = stored(store.insert_event(process, {"a": None}, sync=True))
        assert with_null.digest == data_digest((("a", None),))

    def test_when_ts_is_honoured(self, store: Store, process: ProcessRecord) -> None:
        """An explicit when_ts is the event's time, exactly (the original ignored it)."""
        event = stored(store.insert_event(process, {"a": "b"}, when_ts=1234567890.123456, sync=True))
        assert event.when_ts == 1234567890.123456
        assert stored(store.get_event_by_id(event.id)).when_ts == 1234567890.123456

    def test_event_for_an_unregistered_process(self, store: Store) -> None:
        """An event for a ProcessInfo registers the process once, on first sight."""
        info = process_info(app_name="lazy_app")
        first = stored(store.insert_event(info, {"n": "1"}, sync=True))
        second = stored(store.insert_event(info, {"n": "2"}, sync=True))
        assert first.process.app.name == "lazy_app"
        assert first.process.pid == info.pid
        assert second.process.id == first.process.id
        assert store.get_process_by_id(first.process.id) == first.process

    def test_event_for_a_process_id(self, store: Store, process: ProcessRecord) -> None:
        """An event may name its process by id."""
        event = stored(store.insert_event(process.id, {"a": "b"}, sync=True))
        assert event.process == process

    def test_event_for_an_unknown_process_id_raises(self, store: Store) -> None:
        """An event for a process id the store does not hold is a StoreError."""
        with pytest.raises(StoreError):
            store.insert_event(987_654, {"a": "b"}, sync=True)

    def test_get_event_by_id_round_trip(
        self, store: Store, process: ProcessRecord, exc: BaseException
    ) -> None:
        """get_event_by_id returns the event whole: data, trace, exception, process."""
        event = stored(store.insert_event(process, [("k", "v"), ("n", None)], exc=exc, sync=True))
        loaded = store.get_event_by_id(event.id)
        assert loaded == event
        assert loaded is not None
        assert loaded.process == process

    def test_exception_type_and_message(self, store: Store, process: ProcessRecord) -> None:
        """An exception's type and message are recorded (the original kept neither)."""
        empty: dict[str, str] = {}
        try:
            empty["nope"]
        except KeyError as err:
            event = stored(store.insert_event(process, exc=err, sync=True))
        loaded = stored(store.get_event_by_id(event.id))
        assert (loaded.exc_type, loaded.exc_message) == ("KeyError", "'nope'")
        plain = stored(store.insert_event(process, {"a": "b"}, sync=True))
        assert (plain.exc_type, plain.exc_message) == (None, None)

    def test_exception_type_of_a_non_builtin(self, store: Store, process: ProcessRecord) -> None:
        """A non-builtin exception type is recorded with its module."""
        event = stored(store.insert_event(process, exc=FrozenInstanceError("frozen"), sync=True))
        assert stored(store.get_event_by_id(event.id)).exc_type == "dataclasses.FrozenInstanceError"

    def test_insert_events_batch(self, store: Store, process: ProcessRecord) -> None:
        """insert_events writes a batch and returns its records in order, with their data."""
        policy = store.event_policy
        batch = [
            policy.build(process.id, {"n": str(n), "half": str(n // 2)}, when_ts=1000.0 + n)
            for n in range(25)
        ]
        records = store.insert_events(batch)
        assert [r.data_dict()["n"] for r in records] == [str(n) for n in range(25)]
        assert [r.when_ts for r in records] == [1000.0 + n for n in range(25)]
        assert len({r.id for r in records}) == 25
        for record in records:
            assert store.get_event_by_id(record.id) == record

    def test_insert_events_mixed_batch(
        self, store: Store, process: ProcessRecord, exc: BaseException
    ) -> None:
        """A batch may mix processes, traces and data-less events; each record is its own."""
        other = store.insert_process(process_info(app_name="other_app"))
        policy = store.event_policy
        batch = [
            policy.build(process.id, {"i": "0"}, exc=exc, inc_st=True),
            policy.build(other.id, None),
            policy.build(process.id, {"i": "2"}, exc=exc, inc_st=True),
            policy.build(other.id, {"i": "3"}, frames=()),
        ]
        records = store.insert_events(batch)
        assert [r.process.id for r in records] == [process.id, other.id, process.id, other.id]
        assert records[0].stacktrace is not None
        assert records[2].stacktrace == records[0].stacktrace
        assert records[1].stacktrace is None
        assert records[3].stacktrace is not None
        assert records[3].stacktrace.stackframes == ()
        assert [store.get_event_by_id(r.id) for r in records] == records

    def test_insert_events_empty_batch(self, store: Store) -> None:
        """An empty batch writes nothing and returns an empty list."""
        assert store.insert_events([]) == []

    def test_write_events_returns_only_the_wanted_records(self, store: Store, process: ProcessRecord) -> None:
        """write_events writes the whole batch and returns the records of the wanted positions only."""
        policy = store.event_policy
        batch = [policy.build(process.id, {"w": str(n), "batch": "wanted"}) for n in range(6)]
        records = store.write_events(batch, [1, 4])
        assert sorted(records) == [1, 4]
        assert [records[p].data_dict()["w"] for p in (1, 4)] == ["1", "4"]
        for record in records.values():
            assert store.get_event_by_id(record.id) == record
        stored_values = [str(e.data_dict()["w"]) for e in store.get_events_by_data([("batch", "wanted")])]
        assert sorted(stored_values) == [str(n) for n in range(6)]
        assert store.write_events([policy.build(process.id, {"batch": "wanted"})], ()) == {}
        assert len(store.get_events_by_data([("batch", "wanted")])) == 7

    def test_records_are_usable_after_close(
        self, store: Store, process: ProcessRecord, exc: BaseException
    ) -> None:
        """Records stay readable after the store (and any session) is closed; close may repeat."""
        event = stored(store.insert_event(process, {"a": "b"}, exc=exc, sync=True))
        loaded = stored(store.get_event_by_id(event.id))
        found = store.get_events_by_data([("a", "b")])
        store.close()
        store.close()
        trace = trace_of(loaded)
        assert loaded.process.app.name == APP
        assert loaded.process.environment is not None
        assert loaded.process.environment.name == "test"
        assert loaded.data[0].val == "b"
        assert trace.stackframes[0].src == 'raise Exception("foo bar baz")'
        assert found[0].data_dict() == {"a": "b"}

    # -- stack traces ----------------------------------------------------------------------------

    def test_no_stack_trace_by_default(self, store: Store, process: ProcessRecord) -> None:
        """A plain event has no stack trace unless asked."""
        event = stored(store.insert_event(process, {"a": "b"}, sync=True))
        assert event.stacktrace is None
        assert stored(store.get_event_by_id(event.id)).stacktrace is None

    def test_stack_trace_with_inc_st(self, store: Store, process: ProcessRecord) -> None:
        """inc_st=True records the caller's stack trace."""
        event = stored(store.insert_event(process, {"a": "b"}, inc_st=True, sync=True))
        trace = trace_of(event)
        assert isinstance(trace, store.Stacktrace)
        assert trace.stackframes
        assert all(isinstance(frame, store.Stackframe) for frame in trace.stackframes)
        assert trace_of(store.get_event_by_id(event.id)) == trace

    def test_stack_trace_only_when_asked(self, store: Store, process: ProcessRecord) -> None:
        """A plain event has no trace; inc_st=True gives the caller's, of store.Stacktrace frames."""
        assert stored(store.insert_event(process, sync=True)).stacktrace is None
        trace = trace_of(store.insert_event(process, inc_st=True, sync=True))
        assert isinstance(trace, store.Stacktrace)
        assert trace.stackframes
        assert all(isinstance(frame, store.Stackframe) for frame in trace.stackframes)

    def test_like_stack_traces_are_not_duplicated(self, store: Store, process: ProcessRecord) -> None:
        """Identical traces share one stored trace; traces from different lines do not."""

        def bat(st_len: int) -> EventRecord | None:
            return store.insert_event(process, inc_st=True, st_len=st_len, sync=True)

        first, second = bat(1), bat(1)
        assert trace_of(first).id == trace_of(second).id
        third = bat(2)
        fourth = bat(2)
        assert trace_of(third).id != trace_of(fourth).id
        assert len(trace_of(third).stackframes) == 2

    def test_same_exception_shares_its_trace(
        self, store: Store, process: ProcessRecord, exc: BaseException
    ) -> None:
        """The same exception logged twice has one trace; a different exception another."""
        first = trace_of(store.insert_event(process, exc=exc, sync=True))
        second = trace_of(store.insert_event(process, exc=exc, sync=True))
        assert first.id == second.id
        try:
            1 / 0  # noqa: B018 - raising ZeroDivisionError is the point
        except ZeroDivisionError as err:
            other = trace_of(store.insert_event(process, exc=err, sync=True))
        assert other.id != first.id

    def test_caller_trace_frames(self, store: Store, process: ProcessRecord) -> None:
        """A caller trace is innermost first, from the line that called insert_event."""

        def baz() -> EventRecord | None:
            return store.insert_event(process, inc_st=True, sync=True)

        def bar() -> EventRecord | None:
            return baz()

        def foo() -> EventRecord | None:
            return bar()

        event = foo()
        frames = trace_of(event).stackframes
        assert [frame.src for frame in frames[:4]] == [
            "return store.insert_event(process, inc_st=True, sync=True)",
            "return baz()",
            "return bar()",
            "event = foo()",
        ]
        assert all(frame.filename.endswith(".py") for frame in frames[:4])
        assert all(isinstance(frame.lineno, int) and frame.lineno > 0 for frame in frames)
        assert frames[0].lineno < frames[1].lineno < frames[2].lineno < frames[3].lineno

    def test_exception_trace_frames(self, store: Store, process: ProcessRecord, exc: BaseException) -> None:
        """An exception's trace is innermost first, from the raising line."""
        frames = trace_of(store.insert_event(process, exc=exc, sync=True)).stackframes
        assert [frame.src for frame in frames] == [
            'raise Exception("foo bar baz")',
            "baz()",
            "bar()",
            "foo()",
        ]
        assert all(frame.filename.endswith(".py") for frame in frames)
        assert all(isinstance(frame.lineno, int) for frame in frames)

    def test_exception_trace_by_default(
        self, store: Store, process: ProcessRecord, exc: BaseException
    ) -> None:
        """An exception event has its trace by default, and none with inc_st=False."""
        assert stored(store.insert_event(process, exc=exc, sync=True)).stacktrace is not None
        assert stored(store.insert_event(process, exc=exc, inc_st=False, sync=True)).stacktrace is None

    def test_function_names_in_frames(self, store: Store, process: ProcessRecord, exc: BaseException) -> None:
        """Frames carry their function names (not part of the digest)."""
        frames = trace_of(store.insert_event(process, exc=exc, sync=True)).stackframes
        functions = ["baz", "bar", "foo", "raised_through_foo_bar_baz"]
        assert [frame.function for frame in frames] == functions
        loaded = trace_of(store.get_event_by_id(stored(store.insert_event(process, exc=exc, sync=True)).id))
        assert [frame.function for frame in loaded.stackframes] == functions

    def test_st_len_keeps_the_innermost_frames(
        self, store: Store, process: ProcessRecord, exc: BaseException
    ) -> None:
        """st_len with an exception keeps its innermost frames (the original raised TypeError)."""
        frames = trace_of(store.insert_event(process, exc=exc, st_len=2, sync=True)).stackframes
        assert [frame.src for frame in frames] == ['raise Exception("foo bar baz")', "baz()"]

    def test_chained_cause_keeps_its_frames(self, store: Store, process: ProcessRecord) -> None:
        """``raise ... from`` keeps the cause's frames after a "<cause>" marker frame."""

        def inner() -> None:
            raise KeyError("inner")

        def outer() -> None:
            try:
                inner()
            except KeyError as err:
                raise ValueError("outer") from err

        try:
            outer()
        except ValueError as err:
            event = stored(store.insert_event(process, exc=err, sync=True))
        frames = trace_of(store.get_event_by_id(event.id)).stackframes
        assert [frame.src for frame in frames] == [
            'raise ValueError("outer") from err',
            "outer()",
            "KeyError",
            'raise KeyError("inner")',
            "inner()",
        ]
        assert frames[2].filename == CAUSE_MARKER
        assert (event.exc_type, event.exc_message) == ("ValueError", "outer")
        assert stored(store.get_event_by_id(event.id)).exc_chain == (("KeyError", "'inner'"),)

    def test_chain_messages_leave_the_digest_alone(self, store: Store, process: ProcessRecord) -> None:
        """Two chains raised on the same lines with other messages share their stack trace."""

        def fail(message: str) -> None:
            try:
                raise KeyError(message)
            except KeyError as err:
                raise ValueError("outer") from err

        stored_events: list[EventRecord] = []
        for message in ("first", "second"):
            try:
                fail(message)
            except ValueError as err:
                stored_events.append(stored(store.insert_event(process, exc=err, sync=True)))
        first, second = (stored(store.get_event_by_id(e.id)) for e in stored_events)
        assert trace_of(first).id == trace_of(second).id
        assert first.exc_chain == (("KeyError", "'first'"),)
        assert second.exc_chain == (("KeyError", "'second'"),)

    def test_chained_context_keeps_its_frames(self, store: Store, process: ProcessRecord) -> None:
        """An exception raised while handling another keeps that one after a "<context>" marker."""

        empty: dict[str, str] = {}

        def outer() -> None:
            try:
                empty["k"]
            except KeyError:
                raise ValueError("while handling")  # noqa: B904 - the implicit chain is under test

        try:
            outer()
        except ValueError as err:
            event = stored(store.insert_event(process, exc=err, sync=True))
        frames = trace_of(event).stackframes
        assert [frame.filename for frame in frames].count(CONTEXT_MARKER) == 1
        marker = next(frame for frame in frames if frame.filename == CONTEXT_MARKER)
        assert marker.src == "KeyError"
        assert frames[-1].src == 'empty["k"]'

    def test_st_data_is_stored_as_given(self, store: Store, process: ProcessRecord) -> None:
        """st_data frames (outermost first) are stored as given and read back innermost first."""
        st_data = [["main.py", 10, "run()"], ["lib/work.py", 20, "work()", "run"], ["lib/deep.py", 30, None]]
        event = stored(store.insert_event(process, {"a": "b"}, st_data=st_data, sync=True))
        for trace in (trace_of(event), trace_of(store.get_event_by_id(event.id))):
            assert [(f.filename, f.lineno, f.src, f.function) for f in trace.stackframes] == [
                ("lib/deep.py", 30, "", None),
                ("lib/work.py", 20, "work()", "run"),
                ("main.py", 10, "run()", None),
            ]

    def test_st_data_traces_dedupe(self, store: Store, process: ProcessRecord) -> None:
        """Identical st_data share one trace id, whatever the function names; different ones do not."""
        st_data = [["main.py", 1, "go()"], ["lib.py", 2, "x = 1"]]
        first = trace_of(store.insert_event(process, st_data=st_data, sync=True))
        named = [["main.py", 1, "go()", "main"], ["lib.py", 2, "x = 1", "go"]]
        second = trace_of(store.insert_event(process, st_data=named, sync=True))
        other = trace_of(store.insert_event(process, st_data=[["main.py", 1, "go()"]], sync=True))
        assert first.id == second.id
        assert other.id != first.id

    def test_trace_digest_is_pycodewakes(self, store: Store, process: ProcessRecord) -> None:
        """Stacktrace.digest is sha256 of the bencoded [[filename, lineno, src], ...], outermost first."""
        st_data = [["main.py", 1, "go()"], ["lib.py", 2, "x = 1"]]
        trace = trace_of(store.insert_event(process, st_data=st_data, sync=True))
        assert trace.digest == hashlib.sha256(bencode(st_data)).digest()

    # -- queries ------------------------------------------------------------------------------

    @pytest.fixture
    def tagged(self, store: Store, process: ProcessRecord) -> list[EventRecord]:
        """Four events: a=1 with b=2; a=1 with b=3; a=1 with b=2 and b=4; a=2."""
        datas = [
            [("a", "1"), ("b", "2")],
            [("a", "1"), ("b", "3")],
            [("a", "1"), ("b", "2"), ("b", "4")],
            [("a", "2")],
        ]
        return [stored(store.insert_event(process, data, sync=True)) for data in datas]

    def test_events_by_data_one_term(self, store: Store, tagged: list[EventRecord]) -> None:
        """One term finds every event carrying that pair, oldest first."""
        found = store.get_events_by_data([("a", "1")])
        assert [e.id for e in found] == [e.id for e in tagged[:3]]
        assert all(isinstance(e, store.Event) for e in found)
        assert found == tagged[:3]

    def test_events_by_data_two_terms(self, store: Store, tagged: list[EventRecord]) -> None:
        """Two terms must both be carried (AND)."""
        found = store.get_events_by_data([("a", "1"), ("b", "2")])
        assert [e.id for e in found] == [tagged[0].id, tagged[2].id]

    def test_events_by_data_three_terms(self, store: Store, tagged: list[EventRecord]) -> None:
        """Three terms over two keys, one key repeated: only the event carrying all three."""
        found = store.get_events_by_data([("a", "1"), ("b", "2"), ("b", "4")])
        assert [e.id for e in found] == [tagged[2].id]
        assert found[0].data == tagged[2].data

    def test_events_by_data_no_match(self, store: Store, tagged: list[EventRecord]) -> None:
        """Terms that no event carries together find nothing."""
        assert store.get_events_by_data([("a", "2"), ("b", "2")]) == []
        assert store.get_events_by_data([("nope", "1")]) == []

    def test_events_by_data_load_their_stack_traces(self, store: Store, process: ProcessRecord) -> None:
        """Events found by data come with their stack trace and its frames."""
        written = trace_of(store.insert_event(process, [("foo", "foo1")], inc_st=True, sync=True))
        (found,) = store.get_events_by_data([("foo", "foo1")])
        trace = trace_of(found)
        assert isinstance(trace, store.Stacktrace)
        assert (trace.id, trace.stackframes) == (written.id, written.stackframes)
        first = trace.stackframes[0]
        assert (first.filename.endswith(".py"), isinstance(first.lineno, int)) == (True, True)
        assert isinstance(first.src, str)

    def test_events_by_data_for_a_process(self, store: Store, tagged: list[EventRecord]) -> None:
        """process_id restricts the answer to that process's events."""
        other = store.insert_process(process_info(app_name="other_app"))
        theirs = stored(store.insert_event(other, [("a", "1")], sync=True))
        assert [e.id for e in store.get_events_by_data([("a", "1")], process_id=other.id)] == [theirs.id]
        mine = store.get_events_by_data([("a", "1")], process_id=tagged[0].process.id)
        assert [e.id for e in mine] == [e.id for e in tagged[:3]]
        assert len(store.get_events_by_data([("a", "1")])) == 4

    def test_events_by_data_null_value(self, store: Store, process: ProcessRecord) -> None:
        """A None value in a term means: the key is present with a null value."""
        null = stored(store.insert_event(process, {"k": None}, sync=True))
        stored(store.insert_event(process, {"k": "None"}, sync=True))
        stored(store.insert_event(process, {"other": None}, sync=True))
        assert [e.id for e in store.get_events_by_data([("k", None)])] == [null.id]

    def test_events_by_data_oldest_first(self, store: Store, process: ProcessRecord) -> None:
        """Results are ordered by event time, whatever the insertion order."""
        late = stored(store.insert_event(process, {"t": "x"}, when_ts=3000.0, sync=True))
        early = stored(store.insert_event(process, {"t": "x"}, when_ts=1000.0, sync=True))
        middle = stored(store.insert_event(process, {"t": "x"}, when_ts=2000.0, sync=True))
        assert [e.id for e in store.get_events_by_data([("t", "x")])] == [early.id, middle.id, late.id]

    def test_events_by_data_long_values(self, store: Store, process: ProcessRecord) -> None:
        """Long values that share a long prefix are told apart by their whole text."""
        common = "p" * 5000
        first = stored(store.insert_event(process, {"v": common + "1"}, sync=True))
        stored(store.insert_event(process, {"v": common + "2"}, sync=True))
        assert [e.id for e in store.get_events_by_data([("v", common + "1")])] == [first.id]
        assert store.get_events_by_data([("v", common)]) == []

    def test_events_by_data_is_exact(self, store: Store, process: ProcessRecord) -> None:
        """Values match exactly: case, trailing spaces and other keys count."""
        exact = stored(store.insert_event(process, {"name": "Shop"}, sync=True))
        stored(store.insert_event(process, {"name": "shop"}, sync=True))
        stored(store.insert_event(process, {"Name": "Shop"}, sync=True))
        stored(store.insert_event(process, {"name": "Shop "}, sync=True))
        stored(store.insert_event(process, {"name": "Shop\t"}, sync=True))
        assert [e.id for e in store.get_events_by_data([("name", "Shop")])] == [exact.id]

    # -- bad data ------------------------------------------------------------------------------

    @pytest.mark.parametrize("kind", sorted(BAD_VALUES))
    def test_bad_data_is_stored_normalised(self, store: Store, process: ProcessRecord, kind: str) -> None:
        """Awkward values are stored as their normalised text, and insert_event does not raise."""
        data = [("value", BAD_VALUES[kind]), ("kind", kind)]
        expected = tuple(DataItem(k, v) for k, v in store.event_policy.normalise(data))
        event = stored(store.insert_event(process, data, sync=True))
        assert event.data == expected
        assert stored(store.get_event_by_id(event.id)).data == expected
        assert store.get_events_by_data([("kind", kind), ("value", expected[0].val)])[0].id == event.id

    def test_huge_values_are_truncated_with_a_marker(self, store: Store, process: ProcessRecord) -> None:
        """A 1 MB string is cut to the configured limit with a visible marker."""
        event = stored(store.insert_event(process, {"big": "x" * 1_000_000}, sync=True))
        value = stored(store.get_event_by_id(event.id)).data[0].val
        assert value is not None
        assert value.startswith("x" * 1000)
        assert "truncated" in value
        assert len(value) < 1_000_000

    def test_non_string_keys(self, store: Store, process: ProcessRecord) -> None:
        """Keys become strings."""
        event = stored(store.insert_event(process, {1: "int", None: "none", (1, 2): "tuple"}, sync=True))
        loaded = stored(store.get_event_by_id(event.id))
        assert [item.key for item in loaded.data] == ["1", "None", "(1, 2)"]

    def test_exception_with_awkward_message(self, store: Store, process: ProcessRecord) -> None:
        """An exception message with NULs, emoji and lone surrogates is stored cleaned."""
        err = ValueError("bad\x00 \U0001f4a5 \udcff")
        event = stored(store.insert_event(process, exc=err, inc_st=False, sync=True))
        loaded = stored(store.get_event_by_id(event.id))
        assert loaded.exc_message == store.event_policy.clean_text(str(err))
        assert loaded.exc_message == event.exc_message

    def test_large_values_emoji_and_long_keys(self, store: Store, process: ProcessRecord) -> None:
        """Values of 100,000 characters (300 KB), 4-byte characters and 200-character keys are kept."""
        key = "k" * 199 + "\U0001f511"
        big = "\u00e9\U0001f600" * 50_000
        pending = PendingEvent(process.id, time.time(), ((key, big), ("emoji", "\U0001f389")))
        event = store.insert_events([pending])[0]
        loaded = stored(store.get_event_by_id(event.id))
        assert loaded.data == (DataItem(key, big), DataItem("emoji", "\U0001f389"))
        assert [e.id for e in store.get_events_by_data([(key, big)])] == [event.id]

    # -- queries for analysis ------------------------------------------------------------------

    @pytest.fixture
    def scene(self, store: Store) -> Scene:
        """The query tests' scene (see `build_scene`)."""
        return build_scene(store)

    def test_query_events_newest_first(self, store: Store, scene: Scene) -> None:
        """query_events gives every event, newest first, ties by the higher id, as an iterator."""
        found = store.query_events()
        assert isinstance(found, Iterator)
        events = list(found)
        assert [e.id for e in events] == [e.id for e in sorted(scene.events, key=newest_first)]
        assert events == sorted(scene.events, key=newest_first)
        tied = [e for e in events if e.when_ts == DAY0 + 30 * 5400]
        assert len(tied) == 2
        assert tied[0].id > tied[1].id

    def test_query_events_each_filter_narrows(self, store: Store, scene: Scene) -> None:
        """Every filter selects exactly the events it describes: some, not all."""
        for name, event_filter in _filter_cases(scene).items():
            expected = scene.expected(event_filter)
            assert 0 < len(expected) < len(scene.events), f"the case {name!r} does not narrow"
            found = list(store.query_events(event_filter))
            assert [e.id for e in found] == [e.id for e in expected], name
            assert found == expected, name

    def test_query_events_filter_meanings(self, store: Store, scene: Scene) -> None:
        """A version alone matches every app's; since is inclusive, until exclusive; names are exact."""
        by_vsn = list(store.query_events(EventFilter(vsn="1.0")))
        assert {e.process.app.name for e in by_vsn} == {"shop", "billing"}
        at = scene.events[30].when_ts
        assert {e.id for e in store.query_events(EventFilter(since=at, until=at))} == set()
        assert {e.id for e in store.query_events(EventFilter(since=at, until=at + 0.001))} == {
            scene.events[30].id,
            scene.events[31].id,
        }
        for unknown in (
            EventFilter(app="Shop"),
            EventFilter(app="shop", vsn="9.9"),
            EventFilter(env="prod"),
            EventFilter(process_id=987_654),
            EventFilter(exc_type="valueerror"),
            EventFilter(where={"customer": "C1"}),
            EventFilter(app="cron", vsn="1.0"),
        ):
            assert list(store.query_events(unknown)) == [], unknown
        assert list(store.query_events(EventFilter(limit=0))) == []

    def test_query_events_pages_through_ties(self, store: Store, process: ProcessRecord) -> None:
        """More events than a page, most of them at the same instant, come whole and in order."""
        batch = [
            PendingEvent(process.id, 5000.0 + n % 3, (("page", "p"), ("n", str(n)))) for n in range(1205)
        ]
        written = store.insert_events(batch)
        expected = [e.id for e in sorted(written, key=newest_first)]
        assert [e.id for e in store.query_events()] == expected
        assert [e.id for e in store.query_events(EventFilter(where={"page": "p"}))] == expected
        assert [e.id for e in store.query_events(EventFilter(limit=700))] == expected[:700]
        assert [e.id for e in store.query_events(EventFilter(since=5001.0, limit=600))] == [
            i for i, e in zip(expected, sorted(written, key=newest_first), strict=True) if e.when_ts >= 5001.0
        ][:600]

    def test_query_events_repeated_pair_once(self, store: Store, process: ProcessRecord) -> None:
        """An event carrying a term twice is found once."""
        event = stored(store.insert_event(process, [("tag", "x"), ("tag", "x"), ("other", "y")], sync=True))
        found = list(store.query_events(EventFilter(where=[("tag", "x"), ("tag", "x")])))
        assert [e.id for e in found] == [event.id]

    def test_trace_groups(self, store: Store, scene: Scene) -> None:
        """Groups count per exception type and trace, with first/last seen, where seen, and a message."""
        groups = store.query_trace_groups()
        by_key = {(g.exc_type, g.stacktrace_id): g for g in groups}
        trace_a = _trace_id(scene, TRACE_A)
        members = [
            e
            for e in scene.events
            if e.exc_type == "ValueError" and e.stacktrace and e.stacktrace.id == trace_a
        ]
        group = by_key["ValueError", trace_a]
        assert group.count == len(members) == 11
        assert (group.first_ts, group.last_ts) == (members[0].when_ts, members[-1].when_ts)
        assert group.last_event_id == members[-1].id
        assert group.message == members[-1].exc_message == "bad item 45"
        assert group.stacktrace == members[0].stacktrace
        assert [a.name for a in group.apps] == ["billing", "shop"]
        assert [(v.app.name, v.vsn) for v in group.app_vsns] == [
            ("billing", "1.0"),
            ("shop", "1.0"),
            ("shop", "1.1"),
        ]
        assert [env.name for env in group.environments] == ["production", "staging"]
        assert by_key["ValueError", _trace_id(scene, TRACE_B)].count == 6
        assert by_key["RuntimeError", None].count == 5
        assert by_key["RuntimeError", None].stacktrace is None
        assert by_key["KeyError", _trace_id(scene, TRACE_D)].apps[0].name == "cron"
        caller = by_key[None, _trace_id(scene, TRACE_C)]
        assert (caller.count, caller.message) == (11, None)
        assert [g.count for g in groups] == sorted((g.count for g in groups), reverse=True)
        assert sum(g.count for g in groups) == sum(1 for e in scene.events if e.exc_type or e.stacktrace)
        assert (None, _trace_id(scene, TRACE_C)) not in {
            (g.exc_type, g.stacktrace_id) for g in store.query_trace_groups(EventFilter(errors=True))
        }

    def test_trace_groups_count_what_the_filter_selects(self, store: Store, scene: Scene) -> None:
        """Groups of any filter and time window equal those computed from the selected events."""
        for name, event_filter in _window_cases(scene).items():
            selected = scene.expected(replace(event_filter, limit=None))
            expected = group_traces(selected, event_filter.errors, event_filter.limit)
            assert store.query_trace_groups(event_filter) == expected, name

    def test_daily_counts(self, store: Store, scene: Scene) -> None:
        """Events per UTC day, app, version and environment, errors among them, newest day first."""
        rows = store.query_daily_counts()
        assert rows == count_daily(scene.events)
        assert sum(row.events for row in rows) == SCENE_SIZE
        assert sum(row.errors for row in rows) == sum(1 for e in scene.events if e.exc_type)
        assert [row.day.isoformat() for row in rows][:1] == ["2023-11-17"]
        assert rows[-1].day.isoformat() == "2023-11-15"
        cron = [row for row in rows if row.app.name == "cron"]
        assert [(row.day.isoformat(), row.app_vsn, row.environment, row.events) for row in cron] == [
            ("2023-11-15", None, None, 4)
        ]
        for name, event_filter in _window_cases(scene).items():
            selected = scene.expected(replace(event_filter, limit=None))
            assert store.query_daily_counts(event_filter) == count_daily(selected, event_filter.limit), name

    def test_counts_over_time(self, store: Store, scene: Scene) -> None:
        """Events per hour or day and trace group (and app version and environment) equal the reference."""
        hourly = store.query_counts_over_time()
        assert hourly == count_over_time(scene.events)
        assert sum(row.count for row in hourly) == SCENE_SIZE
        assert [row.bucket_ts for row in hourly] == sorted(row.bucket_ts for row in hourly)
        assert hourly[0].bucket_ts == DAY0 and hourly[0].span == 3600
        for name, event_filter in _window_cases(scene).items():
            selected = scene.expected(replace(event_filter, limit=None))
            for span in (3600, DAY):
                for by_scope in (False, True):
                    found = store.query_counts_over_time(event_filter, span, by_scope)
                    expected = count_over_time(selected, span, by_scope, event_filter.limit)
                    assert found == expected, (name, span, by_scope)
        with pytest.raises(ValueError, match="span"):
            store.query_counts_over_time(span=60)

    def test_query_processes(self, store: Store, scene: Scene) -> None:
        """Processes by app, version, environment and start time, newest first."""
        p = scene.processes

        def names(process_filter: ProcessFilter) -> list[str]:
            by_id = {record.id: name for name, record in p.items()}
            return [by_id[record.id] for record in store.query_processes(process_filter)]

        assert names(ProcessFilter()) == [
            "idle_new", "cron", "idle_old", "bill10_prod", "shop11_stag", "shop11_prod", "shop10_prod"
        ]  # fmt: skip
        assert names(ProcessFilter(app="shop", vsn="1.1")) == ["idle_new", "shop11_stag", "shop11_prod"]
        assert names(ProcessFilter(vsn="1.0")) == ["idle_old", "bill10_prod", "shop10_prod"]
        assert names(ProcessFilter(env="staging")) == ["shop11_stag"]
        assert names(ProcessFilter(since=DAY0 - 7000, until=DAY0)) == [
            "cron",
            "idle_old",
            "bill10_prod",
            "shop11_stag",
        ]
        assert names(ProcessFilter(limit=2)) == ["idle_new", "cron"]
        assert names(ProcessFilter(app="nope")) == []
        assert isinstance(store.query_processes(), Iterator)

    def test_prune(self, store: Store, scene: Scene) -> None:
        """prune deletes old events and what only they used; a dry run reports that and deletes nothing."""
        cutoff = DAY0 + 30 * HOUR + 1234.5
        old = [e for e in scene.events if e.when_ts < cutoff]
        kept = [e for e in scene.events if e.when_ts >= cutoff]
        dry = store.prune(cutoff, dry_run=True)
        assert list(store.query_events()) == sorted(scene.events, key=newest_first)
        report = store.prune(cutoff, batch_size=7)
        assert replace(dry, dry_run=False) == report
        assert (report.before_ts, report.dry_run) == (cutoff, False)
        assert report.events == len(old) == 21
        assert report.data == sum(len(e.data) for e in old)
        # Trace D (cron's KeyError) was used only by old events; cron and idle_old
        # started early and have no events left.
        assert (report.stacktraces, report.stackframes, report.processes) == (1, 1, 2)
        assert list(store.query_events()) == sorted(kept, key=newest_first)
        assert all(store.get_event_by_id(e.id) == e for e in kept)
        assert all(store.get_event_by_id(e.id) is None for e in old)
        assert store.get_process_by_id(scene.processes["cron"].id) is None
        assert store.get_process_by_id(scene.processes["idle_old"].id) is None
        assert store.get_process_by_id(scene.processes["idle_new"].id) == scene.processes["idle_new"]
        assert store.query_trace_groups() == group_traces(kept)
        assert store.query_daily_counts() == count_daily(kept)
        assert store.prune(cutoff) == replace(
            report, events=0, data=0, stacktraces=0, stackframes=0, processes=0
        )

    def test_logging_goes_on_after_a_prune(self, store: Store, scene: Scene) -> None:
        """A process and a trace that a prune removed are stored again when they are used again."""
        cron = scene.processes["cron"]
        store.prune(DAY0 + 30 * HOUR)
        assert store.get_process_by_id(cron.id) is None
        later = store.event_policy.build(
            cron.id, {"event": "again"}, exc=KeyError("job"), when_ts=DAY0 + 99 * HOUR, frames=TRACE_D
        )
        event = store.insert_events([later])[0]
        loaded = stored(store.get_event_by_id(event.id))
        assert loaded.process == cron
        assert store.get_process_by_id(cron.id) == cron
        assert trace_of(loaded).digest == trace_digest(TRACE_D)
        assert [f.src for f in trace_of(loaded).stackframes] == ["raise KeyError(name)"]
        assert [e.id for e in store.query_events(EventFilter(app="cron"))] == [event.id]
        groups = store.query_trace_groups(EventFilter(app="cron"))
        assert [(g.exc_type, g.count, g.stacktrace) for g in groups] == [("KeyError", 1, loaded.stacktrace)]
