"""Call sites (schema 4): what log records from one line of code repeat is stored once, and found as before.

Events are written through a real `CodeWakeHandler` on a `Sql14Store` (each
backend), and checked in the tables and through every way of reading:
by id, by data, pages of a filter, trace groups, daily counts and counts
over time. Events written the way schema 3 wrote them (every item a data row
of its own: before the upgrade, or by an older writer since) are found and
read alongside.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from code_wake import EventFilter, Process
from code_wake.event import EventPolicy
from code_wake.logging import CodeWakeHandler
from code_wake.records import DataItem, EventRecord
from code_wake_sql14_store import Sql14Store, _call_sites, _event_pages
from code_wake_sql14_store._call_sites import ThreadNames, merged, site_digest, split

LOGGER = "call_sites.orders"
POLICY = EventPolicy()


@pytest.fixture
def store(db_url: str) -> Iterator[Sql14Store]:
    with Sql14Store(db_url) as opened:
        yield opened


@pytest.fixture
def log(store: Sql14Store) -> Iterator[logging.Logger]:
    """A logger whose records go, synchronously, to `store` through a real handler."""
    handler = CodeWakeHandler(logging.DEBUG, store=store, app_name="shop")
    logger = logging.getLogger(LOGGER)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    logger.addHandler(handler)
    yield logger
    logger.removeHandler(handler)
    logger.setLevel(logging.NOTSET)
    logger.propagate = True
    handler.close()


def count(store: Sql14Store, table: str) -> int:
    with store.engine.connect() as conn:
        return int(conn.execute(sa.text(f"SELECT COUNT(*) FROM {table}")).scalar_one())


def keys_of_own_rows(store: Sql14Store) -> set[str]:
    """The keys of the events' own data rows (``key`` is a reserved word on MySQL: quoted)."""
    key = store.engine.dialect.identifier_preparer.quote("key")
    with store.engine.connect() as conn:
        return {str(k) for (k,) in conn.execute(sa.text(f"SELECT DISTINCT {key} FROM events_data"))}


def checkout(logger: logging.Logger, n: int) -> None:
    logger.info("order %s paid", n, extra={"customer": f"c{n % 3}"})


def refund(logger: logging.Logger, n: int) -> None:
    try:
        raise ValueError(f"refund {n}")
    except ValueError:
        logger.exception("refund %s failed", n)


def flushed(logger: logging.Logger) -> None:
    for handler in logger.handlers:
        handler.flush()


def all_events(store: Sql14Store) -> list[EventRecord]:
    return sorted(store.query_events(EventFilter()), key=lambda e: e.id)


def ids(found: Any) -> list[int]:
    return sorted(e.id for e in found)


class TestStoredOnce:
    def test_a_records_call_site_is_stored_once_and_reads_back_as_logged(
        self, store: Sql14Store, log: logging.Logger
    ) -> None:
        for n in range(6):
            checkout(log, n)
        refund(log, 9)
        flushed(log)
        assert count(store, "call_sites") == 2
        assert (
            count(store, "call_site_data") == 14
        )  # logger, level, msg_template, module, func, lineno, thread
        # Only what varies is stored per event: the message, the extra field.
        assert keys_of_own_rows(store) == {"message", "customer"}
        assert count(store, "events_data") == 6 * 2 + 1  # the error: its message
        first = all_events(store)[0]
        assert [item.key for item in first.data] == [
            "logger", "level", "message", "msg_template", "module", "func", "lineno", "thread", "customer",
        ]  # fmt: skip
        assert first.data_dict()["message"] == "order 0 paid"
        assert first.data_dict()["level"] == "INFO"
        assert store.get_event_by_id(first.id) == first

    def test_the_record_returned_by_a_write_is_the_one_read(self, store: Sql14Store) -> None:
        """Duplicate keys, nulls and call-site keys after the own ones keep their places."""
        process = Process(store=store, app_name="shop").init()
        data = [
            ("message", "m"),
            ("level", "INFO"),
            ("level", None),
            ("x", "1"),
            ("lineno", "7"),
            ("y", None),
        ]
        written = process.log(data, sync=True)
        assert written is not None
        assert [tuple(item) for item in written.data] == data
        assert store.get_event_by_id(written.id) == written

    def test_an_event_without_call_site_keys_has_no_site(self, store: Sql14Store) -> None:
        Process(store=store, app_name="shop").init().log({"customer": "c1"}, sync=True)
        assert count(store, "call_sites") == 0
        with store.engine.connect() as conn:
            assert conn.execute(sa.text("SELECT call_site_id FROM events")).scalar_one() is None

    def test_another_store_finds_the_site_stored_by_the_first(self, db_url: str, store: Sql14Store) -> None:
        process = Process(store=store, app_name="shop").init()
        site = {"logger": "a", "level": "INFO"}
        process.log({**site, "message": "one"}, sync=True)
        with Sql14Store(db_url) as other:
            other.insert_events([POLICY.build(process.info, {**site, "message": "two"})])
        assert count(store, "call_sites") == 1
        assert [e.data_dict()["message"] for e in all_events(store)] == ["one", "two"]

    def test_a_site_stored_meanwhile_by_another_writer_is_not_stored_twice(
        self, db_url: str, store: Sql14Store, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """The look for the site comes back empty, another writer stores it, the insert loses the race."""
        site = {"logger": "a", "level": "WARNING"}
        process = Process(store=store, app_name="shop").init()
        real_select = sa.select
        raced = {"left": 1}

        def select_then_race(*args: Any, **kwargs: Any) -> Any:
            query = real_select(*args, **kwargs)
            if raced["left"] and args and getattr(args[0], "table", None) is _call_sites.call_sites:
                raced["left"] -= 1
                with Sql14Store(db_url) as other:  # the other writer, just before our insert
                    other.insert_events([POLICY.build(process.info, {**site, "message": "theirs"})])
            return query

        monkeypatch.setattr(_call_sites.sa, "select", select_then_race)
        process.log({**site, "message": "ours"}, sync=True)
        assert raced["left"] == 0
        assert count(store, "call_sites") == 1
        assert sorted(e.data_dict()["message"] for e in all_events(store)) == ["ours", "theirs"]


class TestFound:
    """Events are found by their call site's items through every way of reading."""

    @pytest.fixture
    def logged(self, log: logging.Logger) -> None:
        for n in range(5):
            checkout(log, n)
            if n % 2:
                refund(log, n)
        log.warning("stock low")
        flushed(log)

    @pytest.mark.usefixtures("logged")
    def test_by_data(self, store: Sql14Store) -> None:
        errors = store.get_events_by_data([("level", "ERROR")])
        assert [e.data_dict()["message"] for e in errors] == ["refund 1 failed", "refund 3 failed"]
        by_logger = store.get_events_by_data([("logger", LOGGER)])
        assert len(by_logger) == 8
        mixed = store.get_events_by_data([("level", "INFO"), ("customer", "c1")])
        assert [e.data_dict()["message"] for e in mixed] == ["order 1 paid", "order 4 paid"]
        assert store.get_events_by_data([("level", "ERROR"), ("customer", "c1")]) == []
        assert store.get_events_by_data([("level", "CRITICAL")]) == []

    @pytest.mark.usefixtures("logged")
    @pytest.mark.parametrize("common", [False, True])
    def test_pages_of_a_filter(
        self, store: Sql14Store, common: bool, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Newest first, across pages; on SQLite read by site or by time, the same events."""
        if common:
            monkeypatch.setattr(_event_pages, "_FEW_SITES", 1)
            monkeypatch.setattr(_event_pages, "_COMMON_EVENTS", 1)
        newest_first = sorted(all_events(store), key=lambda e: (e.when_ts, e.id), reverse=True)
        monkeypatch.setattr("code_wake_sql14_store._reading.PAGE", 2)
        for where in [{"logger": LOGGER}, {"level": "ERROR"}, {"level": "INFO", "customer": "c2"}]:
            expected = [
                e.id for e in newest_first if all(e.data_dict().get(k) == v for k, v in where.items())
            ]
            assert expected
            assert [e.id for e in store.query_events(EventFilter(where=where))] == expected
        assert [e.id for e in store.query_events(EventFilter(where={"level": "DEBUG"}))] == []

    @pytest.mark.usefixtures("logged")
    def test_how_sqlite_reads_several_sites(self, store: Sql14Store, monkeypatch: pytest.MonkeyPatch) -> None:
        """By site up to `_FEW_SITES` sites, uncounted; past it, by time if they have many events.

        Only where the call-site terms drive the page: a term of the events' own drives it otherwise.
        """
        monkeypatch.setattr(_event_pages, "_COMMON_EVENTS", 1)
        by_time = {}
        for few in (3, 2):
            monkeypatch.setattr(_event_pages, "_FEW_SITES", few)
            with store.engine.connect() as conn:
                alone = _event_pages.TermPlan.of(conn, [("logger", LOGGER)])
                with_own = _event_pages.TermPlan.of(conn, [("logger", LOGGER), ("customer", "c1")])
            assert alone.site_ids is not None and len(alone.site_ids) == 3
            by_time[few] = (alone.common, with_own.common)
        assert by_time == {3: (False, False), 2: (store.engine.dialect.name == "sqlite", False)}

    @pytest.mark.usefixtures("logged")
    def test_analysis_queries(self, store: Sql14Store) -> None:
        errors = EventFilter(where={"level": "ERROR"})
        assert sum(group.count for group in store.query_trace_groups(errors)) == 2
        assert sum(day.events for day in store.query_daily_counts(errors)) == 2
        assert sum(bucket.count for bucket in store.query_counts_over_time(errors)) == 2


class TestWrittenTheOldWay:
    """Events whose call-site items are data rows of their own (schema 3, or an older writer)."""

    @pytest.fixture
    def mixed(self, store: Sql14Store, log: logging.Logger, monkeypatch: pytest.MonkeyPatch) -> list[int]:
        """Old-way events (the first three), then new ones; the ids of the errors among them, oldest first."""
        with monkeypatch.context() as old_way:
            old_way.setattr(_call_sites, "CALL_SITE_KEYS", frozenset())
            old_way.setattr(store._sites, "threads", ThreadNames(0))
            checkout(log, 0)
            refund(log, 1)
            checkout(log, 2)
        checkout(log, 3)
        refund(log, 4)
        flushed(log)
        events = all_events(store)
        assert [e.id for e in events[:3]] == ids(events[:3])
        return [e.id for e in events if e.data_dict()["level"] == "ERROR"]

    def test_stored_as_before_and_read_back(self, store: Sql14Store, mixed: list[int]) -> None:
        with store.engine.connect() as conn:
            nulls = conn.execute(
                sa.text("SELECT COUNT(*) FROM events WHERE call_site_id IS NULL")
            ).scalar_one()
        assert nulls == 3
        old, new = all_events(store)[0], all_events(store)[3]
        assert [i.key for i in old.data] == [i.key for i in new.data]

    def test_found_with_the_new_ones(self, store: Sql14Store, mixed: list[int]) -> None:
        assert ids(store.get_events_by_data([("level", "ERROR")])) == mixed
        assert [e.id for e in store.query_events(EventFilter(where={"level": "ERROR"}))] == mixed[::-1]
        everything = ids(store.query_events(EventFilter(where={"logger": LOGGER})))
        assert everything == ids(all_events(store))
        paid = store.query_events(EventFilter(where={"level": "INFO", "customer": "c0"}))
        assert [e.data_dict()["message"] for e in paid] == ["order 3 paid", "order 0 paid"]
        errors = EventFilter(where={"level": "ERROR"})
        assert sum(g.count for g in store.query_trace_groups(errors)) == 2
        assert sum(d.events for d in store.query_daily_counts(errors)) == 2
        assert sum(b.count for b in store.query_counts_over_time(errors)) == 2
        # The thread: a row of its own in the old events, in the call site of the new ones.
        on_main = {"level": "ERROR", "thread": "MainThread"}
        assert ids(store.get_events_by_data(list(on_main.items()))) == mixed
        assert [e.id for e in store.query_events(EventFilter(where=on_main))] == mixed[::-1]
        assert sum(g.count for g in store.query_trace_groups(EventFilter(where=on_main))) == 2

    def test_pages_merge_old_and_new_newest_first(
        self, store: Sql14Store, mixed: list[int], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr("code_wake_sql14_store._reading.PAGE", 1)
        found = [e.id for e in store.query_events(EventFilter(where={"logger": LOGGER}))]
        assert found == ids(all_events(store))[::-1]


class TestItems:
    """`split` and `merged`: the site's items leave and come back at their positions."""

    @pytest.mark.parametrize(
        "data",
        [
            [],
            [("customer", "c1")],
            [("logger", "a"), ("level", "INFO"), ("message", "m"), ("msg_template", "m"), ("thread", "t")],
            [("message", "m"), ("lineno", "3"), ("lineno", None), ("x", "1")],
            [("level", "a"), ("level", "b")],
        ],
    )
    def test_round_trip(self, data: list[tuple[str, str | None]]) -> None:
        items = tuple(DataItem(k, v) for k, v in data)
        site, own = split(items)
        assert all(key in _call_sites.CALL_SITE_KEYS for _, key, _ in site)
        assert merged(site, own) == items
        with_thread, rest = split(items, ThreadNames())
        assert merged(with_thread, rest) == items
        assert [item for item in rest if item.key == "thread"] == []

    def test_thread_names_are_admitted_up_to_the_bound_and_for_good(self) -> None:
        names = ThreadNames(2)
        assert [names.admits(n) for n in ["a", None, "b", "a", None, "b"]] == [
            True,
            True,
            False,
            True,
            True,
            False,
        ]

    def test_the_digest_tells_positions_and_nulls_apart(self) -> None:
        assert site_digest(((0, "level", "INFO"),)) != site_digest(((1, "level", "INFO"),))
        assert site_digest(((0, "level", None),)) != site_digest(((0, "level", ""),))


class TestThreads:
    """A thread's name is in the call site for the first names a store meets; later ones are rows."""

    def test_names_past_the_bound_stay_rows_of_their_own(
        self, store: Sql14Store, log: logging.Logger, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(store._sites, "threads", ThreadNames(2))
        checkout(log, 0)  # MainThread
        for n, name in enumerate(["pool-1", "request-7"], 1):
            worker = threading.Thread(target=checkout, args=(log, n), name=name)
            worker.start()
            worker.join()
        # One line of code: a site with each admitted name, and one without the thread.
        assert count(store, "call_sites") == 3
        assert keys_of_own_rows(store) == {"message", "customer", "thread"}
        assert count(store, "events_data") == 3 * 2 + 1
        events = all_events(store)
        assert [e.data_dict()["thread"] for e in events] == ["MainThread", "pool-1", "request-7"]
        assert len({tuple(item.key for item in e.data) for e in events}) == 1
        for n, name in enumerate(["MainThread", "pool-1", "request-7"]):
            where = {"thread": name, "level": "INFO"}
            assert ids(store.get_events_by_data(list(where.items()))) == [events[n].id]
            assert [e.id for e in store.query_events(EventFilter(where=where))] == [events[n].id]

    @pytest.fixture
    def both_ways(self, db_url: str, store: Sql14Store) -> list[EventRecord]:
        """The thread ``worker`` in call sites (this store) and as rows (another, past its bound)."""
        process = Process(store=store, app_name="shop").init()

        def record(n: int, level: str) -> dict[str, str]:
            return {
                "logger": LOGGER,
                "level": level,
                "message": f"m{n}",
                "thread": "worker",
                "customer": f"c{n // 3}",
            }

        now = time.time()
        with Sql14Store(db_url) as other:
            other._sites.threads = ThreadNames(0)
            for n in range(6):
                writer = store if n % 2 else other
                level = "ERROR" if n in (2, 3) else "INFO"
                # Each with an exception, for the trace groups to count it; recent, for the daily counts.
                event = POLICY.build(process.info, record(n, level), ValueError(n), when_ts=now - 10 + n)
                writer.insert_events([event])
        process.log({"thread": "main", "message": "elsewhere"}, sync=True)
        assert keys_of_own_rows(store) == {"message", "customer", "thread"}
        return all_events(store)[:6]

    @pytest.mark.parametrize(
        "where",
        [
            {"thread": "worker"},
            {"thread": "worker", "level": "ERROR"},
            {"thread": "worker", "customer": "c1"},
            {"thread": "worker", "level": "INFO", "customer": "c0"},
        ],
    )
    def test_a_name_held_both_ways_is_found_both_ways(
        self,
        store: Sql14Store,
        both_ways: list[EventRecord],
        where: dict[str, str],
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        expected = [e.id for e in both_ways if all(e.data_dict()[k] == v for k, v in where.items())]
        writers = {int(e.data_dict()["message"][1:]) % 2 for e in both_ways if e.id in expected}
        assert writers == {0, 1}  # both ways
        assert ids(store.get_events_by_data(list(where.items()))) == expected
        monkeypatch.setattr("code_wake_sql14_store._reading.PAGE", 1)
        assert [e.id for e in store.query_events(EventFilter(where=where))] == expected[::-1]
        f = EventFilter(where=where)
        assert sum(g.count for g in store.query_trace_groups(f)) == len(expected)
        assert sum(d.events for d in store.query_daily_counts(f)) == len(expected)
        assert sum(b.count for b in store.query_counts_over_time(f)) == len(expected)


class TestPrune:
    """Unused call sites go with a prune, but the newest; writers that knew one store it anew."""

    def sites_of(self, store: Sql14Store, process: Process, *levels: str, at: float | None = None) -> None:
        store.insert_events(
            [POLICY.build(process.info, {"level": level, "message": level}, when_ts=at) for level in levels]
        )

    def test_unused_sites_are_pruned_and_counted(self, store: Sql14Store) -> None:
        process = Process(store=store, app_name="shop").init()
        self.sites_of(store, process, "INFO", "DEBUG", at=1_000.0)  # old: pruned with their events
        self.sites_of(store, process, "WARNING")
        # The newest site (DEBUG's would be, were WARNING's not newer) is kept whatever uses it.
        report = store.prune(2_000.0, dry_run=True)
        assert (report.events, report.call_sites) == (2, 2)
        report = store.prune(2_000.0)
        assert (report.events, report.call_sites) == (2, 2)
        assert count(store, "call_sites") == 1
        assert count(store, "call_site_data") == 1
        assert [e.data_dict() for e in all_events(store)] == [{"level": "WARNING", "message": "WARNING"}]

    def test_a_writer_that_knew_a_pruned_site_stores_it_again(self, db_url: str, store: Sql14Store) -> None:
        process = Process(store=store, app_name="shop").init()
        self.sites_of(store, process, "INFO", at=1_000.0)
        self.sites_of(store, process, "WARNING")
        with Sql14Store(db_url) as other:
            assert other.prune(2_000.0).call_sites == 1
        self.sites_of(store, process, "INFO")  # this store still has INFO's old id cached
        assert sorted(e.data_dict()["level"] for e in all_events(store)) == ["INFO", "WARNING"]
        assert store.get_events_by_data([("level", "INFO")])[0].data_dict()["message"] == "INFO"


def test_an_event_whose_site_is_gone_keeps_its_own_items(sqlite_url: str) -> None:
    """Only a database without the foreign key (upgraded from schema 3) can lose one under an event."""
    with Sql14Store(sqlite_url) as store:
        Process(store=store, app_name="shop").init().log({"level": "INFO", "message": "m"}, sync=True)
    with contextlib.closing(sqlite3.connect(sqlite_url.removeprefix("sqlite:///"))) as raw, raw:
        raw.execute("DELETE FROM call_site_data")
        raw.execute("DELETE FROM call_sites")
    with Sql14Store(sqlite_url) as store:
        assert [e.data_dict() for e in all_events(store)] == [{"message": "m"}]
