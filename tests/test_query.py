"""The query API's parts: filters, times typed on a command line, time ranges split for the summary,
and the defaults an adapter written before the queries existed inherits."""

from __future__ import annotations

import datetime
import itertools
import random
from collections.abc import Iterable, Sequence
from dataclasses import FrozenInstanceError

import pytest

from code_wake import EventRecord, ProcessInfo, ProcessRecord, Store
from code_wake._timespec import TimeSpecError, format_utc, parse_time
from code_wake.event import PendingEvent
from code_wake.query import (
    DailyCount,
    EventFilter,
    ProcessFilter,
    PruneReport,
    TraceGroup,
    count_daily,
    day_of,
    group_traces,
)
from code_wake.records import AppRecord, AppVsnRecord, EnvironmentRecord
from code_wake.testing import MemoryStore
from code_wake.testing.contract import DAY0, HOUR, build_scene
from code_wake_sql14_store._counts import segments

NOW = 1_764_322_200.0  # 2025-11-28 09:30:00 UTC


class TestEventFilter:
    """EventFilter and ProcessFilter: small frozen values, checked when made."""

    def test_where_takes_a_mapping_or_pairs(self) -> None:
        """Terms come as a mapping or as pairs (keys may repeat); values are compared as stored."""
        assert EventFilter(where={"a": "1", "b": None}).where == (("a", "1"), ("b", None))
        assert EventFilter(where=[("tag", "x"), ("tag", "y")]).where == (("tag", "x"), ("tag", "y"))
        assert EventFilter(where={"n": 42, "ok": True, 3: [1, "a"]}).where == (
            ("n", "42"),
            ("ok", "true"),
            ("3", '[1,"a"]'),
        )

    def test_is_frozen_and_comparable(self) -> None:
        """Two filters with the same parts are equal, and a filter cannot change."""
        assert EventFilter(app="shop", since=1) == EventFilter(app="shop", since=1.0)
        with pytest.raises(FrozenInstanceError):
            EventFilter().app = "x"  # type: ignore[misc]

    @pytest.mark.parametrize(
        "make",
        [
            lambda: EventFilter(limit=-1),
            lambda: EventFilter(limit=True),
            lambda: EventFilter(since="yesterday"),  # type: ignore[arg-type]
            lambda: ProcessFilter(until="2026"),  # type: ignore[arg-type]
            lambda: ProcessFilter(limit=2.5),  # type: ignore[arg-type]
        ],
    )
    def test_bad_values_are_refused(self, make: object) -> None:
        """A negative or non-integer limit, or a time that is not a number, is a ValueError that says so."""
        with pytest.raises(ValueError, match=r"must be .*\.$"):
            make()  # type: ignore[operator]


class TestTimeSpec:
    """Times as typed after --since, --until and --older-than."""

    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("30s", NOW - 30),
            ("15m", NOW - 900),
            ("15min", NOW - 900),
            ("2h", NOW - 7200),
            ("1.5h", NOW - 5400),
            ("7d", NOW - 7 * 86_400),
            ("1w", NOW - 7 * 86_400),
            (" 2H ", NOW - 7200),
            ("now", NOW),
            ("today", 1_764_288_000.0),
            ("yesterday", 1_764_288_000.0 - 86_400),
            ("2025-11-27", 1_764_201_600.0),
            ("2025-11-27T10:00", 1_764_237_600.0),
            ("2025-11-27 10:00:00", 1_764_237_600.0),
            ("2025-11-27T10:00:00Z", 1_764_237_600.0),
            ("2025-11-27T12:00:00+02:00", 1_764_237_600.0),
            ("@1764237600.5", 1_764_237_600.5),
        ],
    )
    def test_forms(self, text: str, expected: float) -> None:
        """Durations count back from now; dates and times are UTC unless they carry an offset."""
        assert parse_time(text, NOW) == expected

    @pytest.mark.parametrize("text", ["", "yesterdayish", "2h ago", "-2h", "12", "2025-13-01", "2y", "@"])
    def test_bad_forms(self, text: str) -> None:
        """Anything else is a TimeSpecError naming the forms it takes and what it got."""
        with pytest.raises(TimeSpecError, match=r"^expected a time: .*; got "):
            parse_time(text, NOW)

    def test_format_utc(self) -> None:
        """Times print in UTC, to the second or the microsecond."""
        assert format_utc(1_764_237_600.25) == "2025-11-27 10:00:00"
        assert format_utc(1_764_237_600.25, precise=True) == "2025-11-27 10:00:00.250000"
        assert day_of(1_764_237_600.25) == datetime.date(2025, 11, 27)
        assert day_of(-1.0) == datetime.date(1969, 12, 31)


class TestSegments:
    """A time range split into summary pieces (days, hours) and event pieces."""

    def test_all_of_time_is_one_piece(self) -> None:
        """No bounds: the all-time summary rows; for daily counts, all days."""
        assert segments(None, None) == [(0, None, None)]
        assert segments(None, None, whole=False) == [(86_400, None, None)]

    def test_a_range_within_an_hour_reads_events(self) -> None:
        """Less than an aligned hour needs the events themselves."""
        assert segments(DAY0 + 10, DAY0 + 20) == [(None, DAY0 + 10, DAY0 + 20)]
        assert segments(DAY0 + 20, DAY0 + 10) == []

    def test_pieces(self) -> None:
        """Minutes, then hours, then days, then hours, then minutes; each piece aligned to its span."""
        since, until = DAY0 - 2 * HOUR - 5, DAY0 + 2 * 86_400 + 3 * HOUR + 7
        assert segments(since, until) == [
            (None, since, DAY0 - 2 * HOUR),
            (3600, DAY0 - 2 * HOUR, DAY0),
            (86_400, DAY0, DAY0 + 2 * 86_400),
            (3600, DAY0 + 2 * 86_400, DAY0 + 2 * 86_400 + 3 * HOUR),
            (None, DAY0 + 2 * 86_400 + 3 * HOUR, until),
        ]

    def test_pieces_cover_the_range_exactly(self) -> None:
        """For any range the pieces follow each other without gap or overlap, on their spans' boundaries."""
        rng = random.Random(5)
        for _ in range(500):
            since = rng.choice(
                [None, DAY0 + rng.uniform(-3, 3) * 86_400, DAY0 + rng.randrange(-72, 72) * HOUR]
            )
            until = rng.choice(
                [None, DAY0 + rng.uniform(-3, 3) * 86_400, DAY0 + rng.randrange(-72, 72) * HOUR]
            )
            pieces = segments(since, until, whole=False)
            if since is not None and until is not None and since >= until:
                assert pieces == []
                continue
            assert pieces[0][1] == since
            assert pieces[-1][2] == until
            for (_, _, end), (_, start, _) in itertools.pairwise(pieces):
                assert end == start
            for span, start, end in pieces:
                if span is not None:
                    assert all(edge is None or edge % span == 0 for edge in (start, end))


# -- an adapter from before the queries -----------------------------------------------------------------


class OldAdapter(Store):
    """An adapter written against the original contract: it knows nothing of the queries."""

    def __init__(self) -> None:
        super().__init__()
        self.memory = MemoryStore()

    def insert_events(self, events: Sequence[PendingEvent]) -> list[EventRecord]:
        return self.memory.insert_events(events)

    def insert_process(self, process: ProcessInfo | object) -> ProcessRecord:  # type: ignore[override]
        return self.memory.insert_process(process)  # type: ignore[arg-type]

    def get_process_by_id(self, id: int) -> ProcessRecord | None:
        return self.memory.get_process_by_id(id)

    def get_processes(
        self, app_id: int | None = None, from_ts: float | None = None, to_ts: float | None = None
    ) -> list[ProcessRecord]:
        return self.memory.get_processes(app_id, from_ts, to_ts)

    def insert_app(self, name: str, vsn: str | None = None) -> AppRecord:
        return self.memory.insert_app(name, vsn)

    def insert_app_vsn(self, app_id: int, vsn: str) -> AppVsnRecord:
        return self.memory.insert_app_vsn(app_id, vsn)

    def get_app_by_id(self, id: int) -> AppRecord | None:
        return self.memory.get_app_by_id(id)

    def get_app_by_name(self, name: str) -> AppRecord | None:
        return self.memory.get_app_by_name(name)

    def get_app_vsn_by_id(self, id: int) -> AppVsnRecord | None:
        return self.memory.get_app_vsn_by_id(id)

    def get_environment_by_id(self, id: int) -> EnvironmentRecord | None:
        return self.memory.get_environment_by_id(id)

    def get_environment_by_name(self, name: str) -> EnvironmentRecord | None:
        return self.memory.get_environment_by_name(name)

    def get_event_by_id(self, id: int) -> EventRecord | None:
        return self.memory.get_event_by_id(id)

    def get_events_by_data(
        self, where: Iterable[tuple[str, str | None]], process_id: int | None = None
    ) -> list[EventRecord]:
        return self.memory.get_events_by_data(where, process_id)


class WithEvents(OldAdapter):
    """The same adapter once it implements query_events: groups and counts come with it."""

    def query_events(self, event_filter: EventFilter | None = None) -> Iterable[EventRecord]:  # type: ignore[override]
        return self.memory.query_events(event_filter)


class TestDefaults:
    """What Store gives an adapter that does not implement the queries."""

    def test_missing_queries_say_so(self) -> None:
        """query_events and prune raise NotImplementedError with a full sentence; nothing breaks on import."""
        store = OldAdapter()
        with pytest.raises(
            NotImplementedError, match=r"^OldAdapter does not implement query_events\(\), .*\.$"
        ):
            store.query_events()
        with pytest.raises(NotImplementedError, match=r"^OldAdapter does not implement prune\(\); .*\.$"):
            store.prune(0.0)
        with pytest.raises(NotImplementedError):
            store.query_trace_groups()

    def test_processes_come_from_get_processes(self) -> None:
        """query_processes is derived from get_processes, newest first, filtered by name."""
        store = OldAdapter()
        scene = build_scene(store.memory)
        found = list(store.query_processes(ProcessFilter(app="shop", vsn="1.1")))
        assert found == [scene.processes[n] for n in ("idle_new", "shop11_stag", "shop11_prod")]
        assert list(store.query_processes(ProcessFilter(app="none"))) == []
        assert len(list(store.query_processes(ProcessFilter(limit=3)))) == 3

    def test_groups_and_counts_come_from_query_events(self) -> None:
        """With query_events alone, trace groups and daily counts work (by reading every event)."""
        store = WithEvents()
        scene = build_scene(store.memory)
        assert store.query_trace_groups(EventFilter(app="shop")) == group_traces(
            e for e in scene.events if e.process.app.name == "shop"
        )
        assert store.query_daily_counts() == count_daily(scene.events)


def test_result_types_are_plain_values() -> None:
    """Groups, counts and reports are frozen records that compare by value."""
    app = AppRecord(1, "shop")
    group = TraceGroup("KeyError", None, 2, 1.0, 2.0, 7, "'k'", (app,))
    assert group == TraceGroup("KeyError", None, 2, 1.0, 2.0, 7, "'k'", (app,))
    assert group.stacktrace_id is None
    assert DailyCount(datetime.date(2025, 1, 1), app, None, None, 3, 1).events == 3
    with pytest.raises(FrozenInstanceError):
        PruneReport(1.0, True).events = 3  # type: ignore[misc]
