"""The Process singleton: configuration, registration and log()."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence

import pytest

import code_wake
from code_wake import ConfigError, EventRecord, PendingEvent, Process, StoreError
from code_wake.testing.memory import MemoryStore


class BrokenStore(MemoryStore):
    """A store whose writes always fail, as a dead database's would."""

    def insert_events(self, events: Sequence[PendingEvent]) -> list[EventRecord]:
        raise StoreError("the database went away")


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore()


def nested_log(proc: Process, **kwargs: object) -> EventRecord | None:
    return proc.log({"where": "nested"}, sync=True, **kwargs)  # type: ignore[arg-type]


class TestSingleton:
    def test_same_object(self, store: MemoryStore) -> None:
        """Process() after the first call returns the same object."""
        first = Process(store=store, app_name="a")
        assert Process() is first
        assert Process(app_name="a") is first

    def test_contradiction_raises(self, store: MemoryStore) -> None:
        """A later call asking for other settings raises instead of being ignored."""
        Process(store=store, app_name="a")
        with pytest.raises(ConfigError, match=r"app_name='a'.*app_name='b'.*Process.reset\(\)"):
            Process(app_name="b")

    def test_another_store_raises(self, store: MemoryStore) -> None:
        """Passing a different store object to a configured process raises."""
        Process(store=store)
        with pytest.raises(ConfigError, match="store"):
            Process(store=MemoryStore())

    def test_reset_reconfigures(self, store: MemoryStore) -> None:
        """After reset() the next call configures a new process."""
        first = Process(store=store, app_name="a")
        Process.reset()
        second = Process(store=store, app_name="b")
        assert second is not first
        assert second.app_name == "b"


class TestIdentity:
    def test_defaults(self, store: MemoryStore) -> None:
        """pid, user, host and exe path are recorded; the app name defaults to the exe path."""
        proc = Process(store=store)
        assert proc.pid == os.getpid()
        assert proc.info.exe_path
        assert proc.app_name == proc.info.exe_path
        assert proc.info.fqdn
        assert proc.info.run_ts > 0

    def test_registration_is_lazy(self, store: MemoryStore) -> None:
        """Nothing reaches the store until the process is used."""
        Process(store=store, app_name="lazy")
        assert store.get_processes() == []

    def test_init_registers_once(self, store: MemoryStore) -> None:
        """init() registers at once and returns the process; using it adds no second record."""
        proc = Process(store=store, app_name="app", app_vsn="1.2.3", env_name="production").init()
        proc.log({"k": "v"})
        (record,) = store.get_processes()
        assert record.id == proc.id
        assert proc.app.name == "app"
        assert proc.app_vsn is not None and proc.app_vsn.vsn == "1.2.3"
        assert proc.environment is not None and proc.environment.name == "production"
        assert proc.store is store

    def test_first_log_registers(self, store: MemoryStore) -> None:
        """The first log call registers the process and the event belongs to it."""
        proc = Process(store=store, app_name="app")
        event = proc.log({"k": "v"}, sync=True)
        assert event is not None
        assert event.process.id == proc.id
        assert len(store.get_processes()) == 1

    def test_no_version_no_environment(self, store: MemoryStore) -> None:
        """Without a version or environment their records are None."""
        proc = Process(store=store, app_name="app")
        assert proc.app_vsn is None
        assert proc.environment is None


class TestLog:
    def test_returns_none_without_sync(self, store: MemoryStore) -> None:
        """log() returns None unless asked to wait, and the event is stored."""
        proc = Process(store=store)
        assert proc.log({"event": "order"}) is None
        (event,) = store.events
        assert event.data_dict() == {"event": "order"}

    def test_sync_returns_the_stored_event(self, store: MemoryStore) -> None:
        """sync=True returns the event with id, time, data and stack trace."""
        event = Process(store=store).log({"k": 1}, sync=True)
        assert isinstance(event, code_wake.EventRecord)
        assert event.id == store.events[0].id
        assert event.data_dict() == {"k": "1"}
        assert event.stacktrace is None

    def test_when_ts_is_honoured(self, store: MemoryStore) -> None:
        """when_ts sets the event's time (the original ignored it)."""
        event = Process(store=store).log(when_ts=1_000_000.25, sync=True)
        assert event is not None and event.when_ts == 1_000_000.25

    def test_exception_recorded_with_trace(self, store: MemoryStore) -> None:
        """An exception's type, message and stack trace are recorded by default."""
        try:
            {}["missing"]
        except KeyError as exc:
            event = Process(store=store).log({"doing": "lookup"}, exc, sync=True)
        assert event is not None and event.stacktrace is not None
        assert event.exc_type == "KeyError"
        assert event.exc_message == "'missing'"
        assert event.stacktrace.stackframes[0].src == '{}["missing"]'

    def test_st_len_with_exception(self, store: MemoryStore) -> None:
        """st_len with an exception keeps the innermost frames (the original raised TypeError)."""

        def deeper() -> None:
            raise ValueError("deep")

        try:
            deeper()
        except ValueError as exc:
            event = Process(store=store).log(exc=exc, st_len=1, sync=True)
        assert event is not None and event.stacktrace is not None
        assert [f.function for f in event.stacktrace.stackframes] == ["deeper"]

    def test_caller_trace_on_request(self, store: MemoryStore) -> None:
        """inc_st=True records the caller's stack, its first frame the line that called log."""
        event = nested_log(Process(store=store), inc_st=True)
        assert event is not None and event.stacktrace is not None
        frames = event.stacktrace.stackframes
        assert frames[0].function == "nested_log"
        assert (
            frames[0].src
            == 'return proc.log({"where": "nested"}, sync=True, **kwargs)  # type: ignore[arg-type]'
        )
        assert frames[1].function == "test_caller_trace_on_request"

    def test_stack_trace_defaults_follow_settings(self, store: MemoryStore) -> None:
        """st_for_non_exceptions and st_from_exceptions decide when inc_st is not given."""
        proc = Process(store=store, st_for_non_exceptions=True, st_from_exceptions=False)
        plain = proc.log(sync=True)
        with_exc = proc.log(exc=ValueError("x"), sync=True)
        assert plain is not None and plain.stacktrace is not None
        assert with_exc is not None and with_exc.stacktrace is None and with_exc.exc_type == "ValueError"

    def test_data_is_normalised_and_scrubbed(self, store: MemoryStore) -> None:
        """log() applies the data rules: JSON for non-strings, null for None, secrets filtered."""
        event = Process(store=store).log({"n": 2, "none": None, "db_password": "pw"}, sync=True)
        assert event is not None
        assert event.data_dict() == {"n": "2", "none": None, "db_password": "[FILTERED]"}


class TestFailures:
    def test_store_failure_never_raises(self, caplog: pytest.LogCaptureFixture) -> None:
        """A failing store does not raise into log(); the problem is reported on the code_wake logger."""
        proc = Process(store=BrokenStore())
        with caplog.at_level(logging.WARNING, logger="code_wake"):
            assert proc.log({"k": "v"}) is None
        assert "the database went away" in caplog.text

    def test_sync_raises_store_failure(self) -> None:
        """sync=True asked to wait for the result, so it raises the store's error."""
        with pytest.raises(StoreError, match="went away"):
            Process(store=BrokenStore()).log({"k": "v"}, sync=True)

    def test_reports_are_rate_limited(self, caplog: pytest.LogCaptureFixture) -> None:
        """Many failures in a row produce one report, not one per event."""
        proc = Process(store=BrokenStore())
        with caplog.at_level(logging.WARNING, logger="code_wake"):
            for _ in range(50):
                proc.log({"k": "v"})
        assert len([r for r in caplog.records if "went away" in r.getMessage()]) == 1
        assert code_wake._report.counts()["log-store"] == 50


class TestCurrent:
    def test_none_before_configuration(self) -> None:
        """current() tells whether a process is configured, without creating one."""
        assert Process.current() is None

    def test_the_live_process(self, store: MemoryStore) -> None:
        """current() returns the singleton once it exists, and None after reset()."""
        proc = Process(store=store)
        assert Process.current() is proc
        Process.reset()
        assert Process.current() is None
