"""CodeWakeHandler: real dictConfig configurations, real records, events read back from a real database."""

from __future__ import annotations

import io
import logging
import logging.config
import sys
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

import code_wake
from code_wake import ConfigError, EventRecord, PendingEvent, Process, QueueStore, StoreError, _ours
from code_wake.logging import RECORD_ATTRIBUTES, CodeWakeHandler, _door_process
from code_wake.testing import MemoryStore
from code_wake_sql14_store import Sql14Store

SQL14 = "code_wake_sql14_store,Sql14Store"
FIELDS = ["logger", "level", "message", "msg_template", "module", "func", "lineno", "thread"]


# -- fixtures and helpers ----------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _logging_restored() -> Iterator[None]:
    """Give every test the logging configuration it found, and close what it opened."""
    root = logging.getLogger()
    saved_root = (root.handlers[:], root.level)
    saved = {
        name: (logger.handlers[:], logger.level, logger.propagate, logger.disabled)
        for name, logger in logging.Logger.manager.loggerDict.items()
        if isinstance(logger, logging.Logger)
    }
    yield
    live = Process._instance
    if live is not None:
        live.store.close()
    root.handlers[:], root.level = saved_root
    for name, logger in logging.Logger.manager.loggerDict.items():
        if isinstance(logger, logging.Logger):
            logger.handlers[:], logger.level, logger.propagate, logger.disabled = saved.get(
                name, ([], logging.NOTSET, True, False)
            )


def stored(url: str) -> list[EventRecord]:
    """Every event in the database at `url`, oldest first, after the live queue is flushed."""
    live = Process._instance
    flush = getattr(live.store, "flush", None) if live is not None else None
    if flush is not None:
        assert flush(30), "the queue did not write its events"
    store = Sql14Store(url)
    try:
        return store.get_events_by_data([])
    finally:
        store.close()


def dict_config(url: str, level: str = "WARNING", **handler: Any) -> None:
    """Wire the root logger to a CodeWakeHandler on `url` through a real dictConfig."""
    logging.config.dictConfig(
        {
            "version": 1,
            "disable_existing_loggers": False,
            "handlers": {
                "code_wake": {
                    "class": "code_wake.logging.CodeWakeHandler",
                    "level": level,
                    "store": SQL14,
                    "store_config": url,
                    "app_name": "shop",
                    "app_vsn": "1.2.3",
                    "env_name": "test",
                    **handler,
                }
            },
            "root": {"level": "DEBUG", "handlers": ["code_wake"]},
        }
    )


def configured() -> bool:
    """Whether a Process is live."""
    return Process._instance is not None


def alone(name: str, handler: logging.Handler) -> logging.Logger:
    """A logger whose records reach `handler` only (not pytest's capture on the root logger)."""
    logger = logging.getLogger(name)
    logger.addHandler(handler)
    logger.propagate = False
    return logger


def code_wake_handler() -> CodeWakeHandler:
    """The CodeWakeHandler on the root logger."""
    (handler,) = [h for h in logging.getLogger().handlers if isinstance(h, CodeWakeHandler)]
    return handler


def fail(depth: int) -> None:
    if depth == 0:
        raise ValueError("stock exhausted")
    fail(depth - 1)


class BrokenStore(MemoryStore):
    """A plain (unqueued) store whose every write fails, as a database that went away."""

    def insert_events(self, events: Sequence[PendingEvent]) -> list[EventRecord]:
        raise StoreError("database went away")


class FlushingStore(MemoryStore):
    """A store with a flush method, remembering how it was called."""

    def __init__(self) -> None:
        super().__init__()
        self.flushes: list[float | None] = []

    def flush(self, timeout: float | None = 5.0) -> bool:
        self.flushes.append(timeout)
        return True


class ErrorsSeen:
    """Replaces a handler's handleError, keeping what it was called with."""

    def __init__(self, handler: logging.Handler) -> None:
        self.records: list[logging.LogRecord] = []
        self.errors: list[BaseException | None] = []
        handler.handleError = self._seen  # type: ignore[method-assign]

    def _seen(self, record: logging.LogRecord) -> None:
        self.records.append(record)
        self.errors.append(sys.exc_info()[1])


# -- configuration -----------------------------------------------------------------------------


class TestDictConfig:
    """The handler configured by logging.config.dictConfig alone."""

    def test_class_form_records_into_the_named_store(self, sqlite_url: str) -> None:
        """The class form's keyword arguments choose the store, the app, its version and environment."""
        dict_config(sqlite_url)
        logging.getLogger("shop.orders").warning("low stock of %s", "tea")
        (event,) = stored(sqlite_url)
        assert event.data_dict()["message"] == "low stock of tea"
        assert event.process.app.name == "shop"
        assert event.process.app_vsn is not None and event.process.app_vsn.vsn == "1.2.3"
        assert event.process.environment is not None and event.process.environment.name == "test"

    def test_factory_form(self, sqlite_url: str) -> None:
        """The ``()`` factory form takes the same arguments, level included."""
        logging.config.dictConfig(
            {
                "version": 1,
                "handlers": {
                    "cw": {"()": "code_wake.CodeWakeHandler", "level": "ERROR", "store_config": sqlite_url}
                },
                "root": {"level": "DEBUG", "handlers": ["cw"]},
            }
        )
        log = logging.getLogger("factory")
        log.warning("below the handler's level")
        log.error("recorded")
        assert [e.data_dict()["message"] for e in stored(sqlite_url)] == ["recorded"]

    def test_levels_filter(self, sqlite_url: str) -> None:
        """Records below the handler's level are not recorded; the default level is WARNING."""
        logging.config.dictConfig(
            {
                "version": 1,
                "handlers": {"cw": {"class": "code_wake.CodeWakeHandler", "store_config": sqlite_url}},
                "root": {"level": "DEBUG", "handlers": ["cw"]},
            }
        )
        log = logging.getLogger("levels")
        log.debug("debug")
        log.info("info")
        log.warning("warning")
        log.critical("critical")
        assert [e.data_dict()["level"] for e in stored(sqlite_url)] == ["WARNING", "CRITICAL"]

    def test_configuration_is_lazy(self, sqlite_url: str, tmp_path: Path) -> None:
        """dictConfig opens nothing: the Process and its database appear with the first record."""
        dict_config(sqlite_url)
        assert not configured()
        assert not (tmp_path / "events.sqlite").exists()
        logging.getLogger("lazy").error("first")
        assert configured()
        assert len(stored(sqlite_url)) == 1

    def test_filters_and_formatter_from_dict_config(self, sqlite_url: str) -> None:
        """dictConfig's filters apply, and a formatter, when given, makes the message."""
        logging.config.dictConfig(
            {
                "version": 1,
                "formatters": {"short": {"format": "%(name)s says %(message)s"}},
                "filters": {"orders_only": {"name": "orders"}},
                "handlers": {
                    "cw": {
                        "class": "code_wake.CodeWakeHandler",
                        "store_config": sqlite_url,
                        "formatter": "short",
                        "filters": ["orders_only"],
                    }
                },
                "root": {"level": "DEBUG", "handlers": ["cw"]},
            }
        )
        logging.getLogger("payments").warning("filtered out")
        logging.getLogger("orders").warning("kept %d", 1)
        (event,) = stored(sqlite_url)
        assert event.data_dict()["message"] == "orders says kept 1"
        assert event.data_dict()["msg_template"] == "kept %d"

    def test_bad_arguments_fail_the_dict_config(self, sqlite_url: str) -> None:
        """A malformed adapter string or argument is reported by dictConfig itself, naming the problem."""
        for bad in ({"store": "no comma here"}, {"store_config": 42}, {"app_name": ""}):
            with pytest.raises(ValueError, match="Unable to configure handler") as raised:
                dict_config(sqlite_url, **bad)
            assert isinstance(raised.value.__cause__, ConfigError)

    def test_second_dict_config_with_the_same_settings(self, sqlite_url: str) -> None:
        """Reconfiguring logging with the same handler settings keeps recording through the same Process."""
        dict_config(sqlite_url)
        logging.getLogger("again").warning("before")
        first = Process._instance
        dict_config(sqlite_url)
        logging.getLogger("again").warning("after")
        assert Process._instance is first
        assert [e.data_dict()["message"] for e in stored(sqlite_url)] == ["before", "after"]

    def test_no_arguments_means_the_configuration_decides(
        self, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """``addHandler(CodeWakeHandler())`` records where the configuration says, as the configured app."""
        monkeypatch.setenv("CODE_WAKE_STORE_ADAPTER", SQL14)
        monkeypatch.setenv("CODE_WAKE_STORE_CONFIG", sqlite_url)
        monkeypatch.setenv("CODE_WAKE_APP_NAME", "configured")
        logging.getLogger().addHandler(CodeWakeHandler())
        logging.getLogger("plain").error("from the configuration")
        (event,) = stored(sqlite_url)
        assert event.process.app.name == "configured"


class TestWhichProcess:
    """How a handler finds the Process it records through."""

    def test_uses_the_process_the_app_configured(self) -> None:
        """Without settings, the handler records through the live Process."""
        store = MemoryStore()
        Process(store=store, app_name="app")
        logging.getLogger().addHandler(CodeWakeHandler())
        logging.getLogger("mine").warning("hello")
        assert [e.data_dict()["message"] for e in store.events] == ["hello"]

    def test_follows_process_reset(self) -> None:
        """After Process.reset() the handler records through the new Process, not the old one."""
        old, new = MemoryStore(), MemoryStore()
        Process(store=old)
        logging.getLogger().addHandler(CodeWakeHandler())
        logging.getLogger("mine").warning("one")
        Process.reset()
        Process(store=new)
        logging.getLogger("mine").warning("two")
        assert [len(old.events), len(new.events)] == [1, 1]

    def test_store_object(self) -> None:
        """A store object given to the handler is used as given."""
        store = MemoryStore()
        logging.getLogger().addHandler(CodeWakeHandler(store=store, app_name="given"))
        logging.getLogger("mine").warning("hello")
        assert len(store.events) == 1
        assert store.events[0].process.app.name == "given"

    def test_store_object_with_store_config_is_refused(self) -> None:
        """store_config belongs to an adapter string; with a store object it is an error at once."""
        with pytest.raises(ConfigError, match="store_config"):
            CodeWakeHandler(store=MemoryStore(), store_config="sqlite://")

    def test_process_configured_elsewhere_wins_and_is_reported_once(
        self, sqlite_url: str, caplog: pytest.LogCaptureFixture
    ) -> None:
        """A handler naming a store while Process records elsewhere records there, reported once."""
        elsewhere = MemoryStore()
        Process(store=elsewhere)
        handler = CodeWakeHandler(store_config=sqlite_url)
        seen = ErrorsSeen(handler)
        logging.getLogger().addHandler(handler)
        with caplog.at_level(logging.WARNING, logger="code_wake"):
            logging.getLogger("mine").warning("one")
            logging.getLogger("mine").warning("two")
        assert seen.errors == []
        assert [e.data_dict()["message"] for e in elsewhere.events] == ["one", "two"]
        reports = [r.getMessage() for r in caplog.records if r.name == "code_wake"]
        assert len(reports) == 1 and "already configured" in reports[0]

    def test_two_handlers_with_different_stores(self, sqlite_url: str, tmp_path: Path) -> None:
        """The first of two handlers naming different stores wins: the second's records go there too."""
        first = CodeWakeHandler(store_config=sqlite_url)
        second = CodeWakeHandler(store_config=f"sqlite:///{tmp_path / 'other.sqlite'}")
        seen = ErrorsSeen(second)
        logging.getLogger("a").addHandler(first)
        logging.getLogger("b").addHandler(second)
        logging.getLogger("a").warning("to the first")
        logging.getLogger("b").warning("also to the first")
        assert seen.errors == []
        assert [e.data_dict()["message"] for e in stored(sqlite_url)] == ["to the first", "also to the first"]

    def test_processor_before_the_handler_uses_the_handler_settings(self, sqlite_url: str) -> None:
        """A door without settings, used before a handler's first record, takes that handler's settings."""
        handler = CodeWakeHandler(store_config=sqlite_url, app_name="first-by-handler")
        logging.getLogger().addHandler(handler)
        process = _door_process()
        assert process.app_name == "first-by-handler"
        logging.getLogger("mine").warning("stored")
        assert [e.data_dict()["message"] for e in stored(sqlite_url)] == ["stored"]


# -- what a record becomes ---------------------------------------------------------------------


class TestRecordFields:
    """A record becomes one event with documented keys."""

    def test_fields(self, sqlite_url: str) -> None:
        """Logger, level, message, template, module, function, line and thread name are recorded."""
        dict_config(sqlite_url)
        logging.getLogger("shop.orders").warning("order %s for %s failed", "o1", "c42")
        line = sys._getframe().f_lineno - 1
        (event,) = stored(sqlite_url)
        assert [item.key for item in event.data] == FIELDS
        assert event.data_dict() == {
            "logger": "shop.orders",
            "level": "WARNING",
            "message": "order o1 for c42 failed",
            "msg_template": "order %s for %s failed",
            "module": "test_logging",
            "func": "test_fields",
            "lineno": str(line),
            "thread": threading.current_thread().name,
        }
        assert event.stacktrace is None and event.exc_type is None

    def test_template_groups_one_problem(self, sqlite_url: str) -> None:
        """The same call with different arguments shares its message template."""
        dict_config(sqlite_url)
        for customer in ("c1", "c2", "c3"):
            logging.getLogger("shop").warning("payment declined for %s", customer)
        events = stored(sqlite_url)
        assert {e.data_dict()["msg_template"] for e in events} == {"payment declined for %s"}
        assert len({e.data_dict()["message"] for e in events}) == 3

    def test_extra_fields(self, sqlite_url: str) -> None:
        """Every extra field is recorded under its own name, values normalised, secrets filtered."""
        dict_config(sqlite_url)
        extra = {"customer": "c42", "items": ["tea", 2], "total": 9.5, "db_password": "hunter2", "note": None}
        logging.getLogger("shop").warning("checkout", extra=extra)
        data = stored(sqlite_url)[0].data_dict()
        assert data["customer"] == "c42"
        assert data["items"] == '["tea",2]'
        assert data["total"] == "9.5"
        assert data["db_password"] == "[FILTERED]"
        assert data["note"] is None

    def test_extra_named_like_a_field_keeps_both(self, sqlite_url: str) -> None:
        """An extra called like one of the handler's keys is kept beside it, not instead of it."""
        dict_config(sqlite_url)
        logging.getLogger("shop").warning("clash", extra={"logger": "mine", "level": 3})
        event = stored(sqlite_url)[0]
        assert [(i.key, i.val) for i in event.data if i.key in ("logger", "level")] == [
            ("logger", "shop"),
            ("level", "WARNING"),
            ("logger", "mine"),
            ("level", "3"),
        ]

    def test_record_time_is_the_event_time(self) -> None:
        """The record's creation time is the event's time, not the time it was handled."""
        store = MemoryStore()
        Process(store=store)
        handler = CodeWakeHandler()
        record = logging.makeLogRecord({"msg": "old news", "levelno": logging.ERROR, "created": 1_000_000.5})
        handler.handle(record)
        assert store.events[0].when_ts == 1_000_000.5

    def test_message_that_is_not_a_string(self) -> None:
        """An object logged as the message is recorded as its text, its repr as the template."""

        class Order:
            def __str__(self) -> str:
                return "order o1"

            def __repr__(self) -> str:
                return "Order('o1')"

        store = MemoryStore()
        Process(store=store)
        logging.getLogger().addHandler(CodeWakeHandler())
        logging.getLogger("objects").warning(Order())
        data = store.events[0].data_dict()
        assert (data["message"], data["msg_template"]) == ("order o1", "Order('o1')")

    def test_standard_attributes_are_not_extras(self) -> None:
        """The set of non-extra attributes covers a blank record and what formatters add."""
        blank = logging.LogRecord("n", logging.INFO, "p", 1, "m", (), None)
        assert set(blank.__dict__) <= RECORD_ATTRIBUTES
        assert {"message", "asctime"} <= RECORD_ATTRIBUTES


class TestExceptions:
    """exc_info becomes the event's exception, stack_info its stack trace."""

    def test_logger_exception(self, sqlite_url: str) -> None:
        """logger.exception records type, message and the stack trace, raising line first."""
        dict_config(sqlite_url)
        try:
            fail(3)
        except ValueError:
            logging.getLogger("shop").exception("checkout failed")
        (event,) = stored(sqlite_url)
        assert (event.exc_type, event.exc_message) == ("ValueError", "stock exhausted")
        assert event.stacktrace is not None
        innermost = event.stacktrace.stackframes[0]
        assert (innermost.function, innermost.src) == ("fail", 'raise ValueError("stock exhausted")')
        assert [f.function for f in event.stacktrace.stackframes] == ["fail"] * 4 + ["test_logger_exception"]

    def test_every_exc_info_form(self) -> None:
        """An exception, an exc_info tuple and True inside except record the exception; the rest do not."""
        store = MemoryStore()
        Process(store=store)
        logging.getLogger().addHandler(CodeWakeHandler())
        log = logging.getLogger("forms")
        try:
            fail(0)
        except ValueError as exc:
            caught = exc
            log.error("true", exc_info=True)
            log.error("tuple", exc_info=sys.exc_info())
        log.error("instance", exc_info=caught)
        log.error("true outside except", exc_info=True)
        log.error("empty tuple", exc_info=())  # type: ignore[arg-type]  # logging accepts it at run time
        log.error("none tuple", exc_info=(None, None, None))
        log.error("false", exc_info=False)
        types = {e.data_dict()["message"]: e.exc_type for e in store.events}
        assert types == {
            "true": "ValueError",
            "tuple": "ValueError",
            "instance": "ValueError",
            "true outside except": None,
            "empty tuple": None,
            "none tuple": None,
            "false": None,
        }
        assert all(e.stacktrace is not None for e in store.events if e.exc_type)

    def test_no_traceback_text_on_the_caller(self) -> None:
        """The handler formats no traceback: the record's exc_text stays unset."""
        Process(store=MemoryStore())
        records: list[logging.LogRecord] = []
        handler = CodeWakeHandler()
        handler.addFilter(lambda record: not records.append(record))  # type: ignore[func-returns-value]
        log = alone("text", handler)
        try:
            fail(0)
        except ValueError:
            log.exception("failed")
        assert records[0].exc_text is None

    def test_stack_info_is_the_logging_call(self, sqlite_url: str) -> None:
        """stack_info=True records the stack of the logging call, without logging's own frames."""
        dict_config(sqlite_url)
        logging.getLogger("shop").warning("where am I", stack_info=True)
        line = sys._getframe().f_lineno - 1
        (event,) = stored(sqlite_url)
        assert event.stacktrace is not None
        innermost = event.stacktrace.stackframes[0]
        assert (innermost.function, innermost.lineno) == ("test_stack_info_is_the_logging_call", line)
        assert not any(f.filename == logging.__file__ for f in event.stacktrace.stackframes)

    def test_stack_info_from_another_thread_is_kept_as_text(self) -> None:
        """Handled away from the thread that logged (a QueueListener), the stack text is kept as data."""
        store = MemoryStore()
        Process(store=store)
        record = logging.LogRecord("far", logging.WARNING, __file__, 1, "m", (), None, sinfo="Stack: ...")
        record.thread = -1
        CodeWakeHandler().handle(record)
        (event,) = store.events
        assert event.stacktrace is None
        assert event.data_dict()["stack_info"] == "Stack: ..."


# -- never harming the app -----------------------------------------------------------------------


class TestNoRecursion:
    """Records of code_wake's own stack never become events, and nothing loops."""

    def test_sqlalchemy_engine_logging_at_info(self, sqlite_url: str) -> None:
        """SQLAlchemy logging each statement at INFO through the root logger: only the app is recorded."""
        store = Sql14Store(sqlite_url)  # plain: its SQL runs, and logs, on the caller's thread
        Process(store=store, app_name="recursion")
        root = logging.getLogger()
        root.setLevel(logging.INFO)
        root.addHandler(CodeWakeHandler(logging.INFO))
        sql_log = io.StringIO()
        logging.getLogger("sqlalchemy.engine").addHandler(logging.StreamHandler(sql_log))
        logging.getLogger("sqlalchemy.engine").setLevel(logging.INFO)
        for n in range(3):
            logging.getLogger("app").info("event %d", n)
        events = stored(sqlite_url)
        assert [e.data_dict()["logger"] for e in events] == ["app"] * 3
        assert "INSERT INTO events" in sql_log.getvalue()

    def test_code_wake_reports_are_not_recorded(self) -> None:
        """A problem code_wake reports on its own logger does not become an event."""
        store = MemoryStore()
        Process(store=store)
        logging.getLogger().addHandler(CodeWakeHandler())
        logging.getLogger("code_wake").warning("code_wake: events are being dropped")
        logging.getLogger("psycopg.pool").warning("connection lost")
        assert store.events == []

    def test_logging_while_recording(self) -> None:
        """A warning logged while an event is being recorded (from a __repr__) is not recorded, nor loops."""

        class Noisy:
            def __repr__(self) -> str:
                logging.getLogger("noisy").warning("repr called")
                return "Noisy()"

        store = MemoryStore()
        Process(store=store)
        logging.getLogger().addHandler(CodeWakeHandler())
        logging.getLogger("app").warning("with a noisy value", extra={"value": Noisy()})
        assert [e.data_dict()["message"] for e in store.events] == ["with a noisy value"]
        assert store.events[0].data_dict()["value"] == "Noisy()"

    def test_worker_threads_are_ignored(self) -> None:
        """Nothing logged on a thread marked as a code_wake worker is recorded."""
        store = MemoryStore()
        Process(store=store)
        logging.getLogger().addHandler(CodeWakeHandler())
        worker = threading.Thread(target=lambda: logging.getLogger("app").error("from the writer"))
        worker.code_wake_worker = True  # type: ignore[attr-defined]
        worker.start()
        worker.join()
        logging.getLogger("app").error("from the app")
        assert [e.data_dict()["message"] for e in store.events] == ["from the app"]

    def test_one_record_one_event(self) -> None:
        """A record reaching two CodeWakeHandlers, or one attached twice on its way up, is recorded once."""
        store = MemoryStore()
        Process(store=store)
        handler = CodeWakeHandler()
        logging.getLogger("app").addHandler(handler)
        logging.getLogger().addHandler(handler)
        logging.getLogger().addHandler(CodeWakeHandler())
        logging.getLogger("app").warning("once")
        logging.getLogger("app").warning("once")
        assert len(store.events) == 2

    def test_ignored_loggers(self) -> None:
        """The store's loggers and their children are ignored; similar names are not."""
        assert _ours.ignored_logger("sqlalchemy.engine.Engine")
        assert _ours.ignored_logger("psycopg")
        assert _ours.ignored_logger("code_wake")
        assert not _ours.ignored_logger("sqlalchemy_utils")
        assert not _ours.ignored_logger("code_wake_app")


class TestFailures:
    """Failures go to handleError; nothing is raised into the app."""

    def test_store_that_breaks(self) -> None:
        """A plain store whose writes fail calls handleError for the record, and the app goes on."""
        handler = CodeWakeHandler(store=BrokenStore())
        seen = ErrorsSeen(handler)
        logging.getLogger().addHandler(handler)
        logging.getLogger("app").error("lost")
        assert [r.getMessage() for r in seen.records] == ["lost"]
        assert isinstance(seen.errors[0], StoreError)

    def test_real_database_that_cannot_be_opened(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A real SQLite store whose file cannot be created reports through handleError on stderr."""
        url = f"sqlite:///{tmp_path / 'missing' / 'dir' / 'events.sqlite'}"
        logging.getLogger().addHandler(CodeWakeHandler(store=Sql14Store(url)))
        logging.getLogger("app").error("nowhere to go")
        err = capsys.readouterr().err
        assert "--- Logging error ---" in err
        assert "code_wake.errors.Store" in err
        assert "Message: 'nowhere to go'" in err

    def test_adapter_that_does_not_import(self) -> None:
        """An adapter module that does not import is a ConfigError for handleError at the first record."""
        logging.config.dictConfig(
            {
                "version": 1,
                "disable_existing_loggers": False,
                "handlers": {"cw": {"class": "code_wake.CodeWakeHandler", "store": "no_such_module,Store"}},
                "root": {"handlers": ["cw"]},
            }
        )
        seen = ErrorsSeen(code_wake_handler())
        logging.getLogger("app").error("first")
        assert isinstance(seen.errors[0], ConfigError)
        assert "no_such_module" in str(seen.errors[0])

    def test_bad_format_arguments(self) -> None:
        """A record whose arguments do not fit its format goes to handleError, as with any handler."""
        Process(store=MemoryStore())
        handler = CodeWakeHandler()
        seen = ErrorsSeen(handler)
        alone("format", handler).error("%d items", "many")
        assert isinstance(seen.errors[0], TypeError)


class TestFlushAndClose:
    """flush and close wait with a deadline, and leave the shared store open."""

    def test_flush_writes_the_queue(self, sqlite_url: str) -> None:
        """After flush(), the events queued so far are in the database."""
        dict_config(sqlite_url)
        for n in range(20):
            logging.getLogger("app").warning("event %d", n)
        code_wake_handler().flush()
        store = Sql14Store(sqlite_url)
        try:
            assert len(store.get_events_by_data([])) == 20
        finally:
            store.close()

    def test_flush_is_bounded(self) -> None:
        """flush passes its deadline to the store."""
        store = FlushingStore()
        handler = CodeWakeHandler(store=store, flush_timeout=1.5)
        logging.getLogger().addHandler(handler)
        logging.getLogger("app").warning("one")
        handler.flush()
        assert store.flushes == [1.5]

    def test_flush_does_not_wait_under_the_logging_lock(self) -> None:
        """Called under logging's module lock (as dictConfig does), flush does not wait for the store."""
        store = FlushingStore()
        handler = CodeWakeHandler(store=store)
        logging.getLogger().addHandler(handler)
        logging.getLogger("app").warning("one")
        lock = logging._lock  # type: ignore[attr-defined]
        with lock:
            handler.flush()
        assert store.flushes == []

    def test_close_leaves_the_store_open(self, sqlite_url: str) -> None:
        """Closing the handler does not close the Process's store: the other doors keep recording."""
        dict_config(sqlite_url)
        logging.getLogger("app").warning("through the handler")
        code_wake_handler().close()
        Process().log({"event": "direct"})
        assert len(stored(sqlite_url)) == 2

    def test_flush_before_any_record(self) -> None:
        """A handler that never recorded flushes and closes without creating a Process."""
        handler = CodeWakeHandler(store_config="sqlite://")
        handler.flush()
        handler.close()
        assert Process._instance is None


@pytest.mark.postgresql
class TestPostgreSQL:
    """The handler against a real PostgreSQL server."""

    def test_dict_config_into_postgresql(self, postgresql_url: str) -> None:
        """A dictConfig handler records warnings and exceptions with their traces into PostgreSQL."""
        dict_config(postgresql_url)
        log = logging.getLogger("shop.pg")
        log.info("not recorded")
        log.warning("low stock", extra={"item": "tea"})
        try:
            fail(2)
        except ValueError:
            log.exception("checkout failed")
        warning, error = stored(postgresql_url)
        assert warning.data_dict()["item"] == "tea"
        assert error.exc_type == "ValueError"
        assert error.stacktrace is not None and error.stacktrace.stackframes[0].function == "fail"
        assert isinstance(code_wake.Process().store, QueueStore)
