"""CodeWakeProcessor: real structlog chains, native and through stdlib logging, events read from SQLite."""

from __future__ import annotations

import io
import json
import logging
import os
import sys
from collections.abc import Iterator
from typing import Any

import pytest
import structlog

from code_wake import EventRecord, Process
from code_wake.logging import CodeWakeHandler
from code_wake.structlog import CodeWakeProcessor
from code_wake.testing import MemoryStore
from code_wake_sql14_store import Sql14Store


@pytest.fixture(autouse=True)
def _logging_and_structlog_restored() -> Iterator[None]:
    """Give every test structlog's defaults and the logging configuration it found."""
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    yield
    structlog.reset_defaults()
    structlog.contextvars.clear_contextvars()
    root.handlers[:], root.level = saved
    for logger in logging.Logger.manager.loggerDict.values():
        if isinstance(logger, logging.Logger) and logger.name.startswith("t."):
            logger.handlers[:], logger.propagate, logger.level = [], True, logging.NOTSET


@pytest.fixture
def store(sqlite_url: str) -> Iterator[Sql14Store]:
    """A real SQLite store, written synchronously, behind the Process."""
    store = Sql14Store(sqlite_url)
    Process(store=store, app_name="structlog-tests")
    yield store
    store.close()


def events(store: Sql14Store) -> list[EventRecord]:
    return store.get_events_by_data([])


def messages(store: Sql14Store) -> list[str | None]:
    return [e.data_dict().get("message") for e in events(store)]


def native(*processors: Any) -> Any:
    """A native structlog logger returning what its chain rendered, over `processors` + JSON."""
    return structlog.wrap_logger(
        structlog.ReturnLogger(), processors=[*processors, structlog.processors.JSONRenderer(sort_keys=True)]
    )


def fail(depth: int) -> None:
    if depth == 0:
        raise ValueError("stock exhausted")
    fail(depth - 1)


SHARED: list[Any] = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
]


def through_stdlib(*processors: Any) -> None:
    """structlog routed into stdlib logging, its chain `SHARED` + `processors`."""
    structlog.configure(
        processors=[*SHARED, *processors],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )


def root_handlers(*handlers: logging.Handler) -> None:
    root = logging.getLogger()
    root.handlers[:] = list(handlers)
    root.setLevel(logging.DEBUG)


def console(formatter: logging.Formatter | None = None) -> tuple[logging.Handler, io.StringIO]:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    if formatter is not None:
        handler.setFormatter(formatter)
    return handler, out


def exercise(log: Any) -> None:
    """The calls every both-doors test makes: two structlog calls, one exception, one stdlib record."""
    log = log.bind(user="u1")
    log.info("below the level")
    log.warning("low stock", item="tea")
    try:
        fail(1)
    except ValueError:
        log.exception("checkout failed")
    logging.getLogger("t.library").warning("library says %s", "hi")


# -- the processor in a native chain ---------------------------------------------------------------


class TestNativeChain:
    """The processor in a structlog chain of native loggers."""

    def test_levels(self, store: Sql14Store) -> None:
        """Calls below the level (default WARNING) are not recorded; a level can be a name or a number."""
        log = native(structlog.processors.add_log_level, CodeWakeProcessor())
        log.debug("d")
        log.info("i")
        log.warning("w")
        log.error("e")
        low = native(CodeWakeProcessor("info"))
        low.info("i2")
        low.debug("d2")
        assert messages(store) == ["w", "e", "i2"]
        assert [e.data_dict()["level"] for e in events(store)] == ["WARNING", "ERROR", "INFO"]

    def test_event_dict_passes_unchanged(self, store: Sql14Store) -> None:
        """The processor returns the event dict as it came: rendering is the same with and without it."""
        plain = native(structlog.processors.add_log_level)
        ours = native(structlog.processors.add_log_level, CodeWakeProcessor())
        kwargs = {"item": "tea", "count": 3, "tags": ["a", "b"]}
        assert ours.warning("low stock", **kwargs) == plain.warning("low stock", **kwargs)
        event_dict = {"event": "x", "k": 1}
        assert CodeWakeProcessor()(None, "error", event_dict) is event_dict
        assert event_dict == {"event": "x", "k": 1}

    def test_bound_and_context_variables(self, store: Sql14Store) -> None:
        """Bound and context variables are recorded as data, beside the level and the event text."""
        structlog.contextvars.bind_contextvars(request_id="r-17")
        log = native(structlog.contextvars.merge_contextvars, CodeWakeProcessor()).bind(user="u1")
        log.warning("payment declined", amount=9.5, card_token="4111")
        (event,) = events(store)
        assert event.data_dict() == {
            "level": "WARNING",
            "message": "payment declined",
            "msg_template": "payment declined",
            "request_id": "r-17",
            "user": "u1",
            "amount": "9.5",
            "card_token": "[FILTERED]",
        }

    def test_exception_with_format_exc_info_after(self, store: Sql14Store) -> None:
        """exc_info is the event's exception, raising line first, and format_exc_info still renders it."""
        log = native(CodeWakeProcessor(), structlog.processors.format_exc_info)
        try:
            fail(2)
        except ValueError:
            rendered = json.loads(log.exception("checkout failed"))
        assert "ValueError: stock exhausted" in rendered["exception"]
        (event,) = events(store)
        assert (event.exc_type, event.exc_message) == ("ValueError", "stock exhausted")
        assert event.stacktrace is not None
        assert event.stacktrace.stackframes[0].src == 'raise ValueError("stock exhausted")'
        assert event.stacktrace.stackframes[-1].function == "test_exception_with_format_exc_info_after"

    def test_every_exc_info_form(self, store: Sql14Store) -> None:
        """True in except, an exception, a tuple are recorded; True outside except, False, empty forms not."""
        log = native(CodeWakeProcessor())
        try:
            fail(0)
        except ValueError as exc:
            caught = exc
            log.error("true", exc_info=True)
            log.error("tuple", exc_info=sys.exc_info())
        log.error("instance", exc_info=caught)
        log.error("true outside except", exc_info=True)
        log.error("false", exc_info=False)
        log.error("none tuple", exc_info=(None, None, None))
        log.error("empty tuple", exc_info=())
        assert {e.data_dict()["message"]: e.exc_type for e in events(store)} == {
            "true": "ValueError",
            "tuple": "ValueError",
            "instance": "ValueError",
            "true outside except": None,
            "false": None,
            "none tuple": None,
            "empty tuple": None,
        }

    def test_stack_info(self, store: Sql14Store) -> None:
        """stack_info=True records the stack of the log call, without structlog's or code_wake's frames."""
        log = native(CodeWakeProcessor())
        log.warning("where am I", stack_info=True)
        line = sys._getframe().f_lineno - 1
        (event,) = events(store)
        assert event.stacktrace is not None
        assert (event.stacktrace.stackframes[0].function, event.stacktrace.stackframes[0].lineno) == (
            "test_stack_info",
            line,
        )
        package = os.path.dirname(structlog.__file__)
        assert not any(f.filename.startswith(package) for f in event.stacktrace.stackframes)

    def test_positional_arguments(self, store: Sql14Store) -> None:
        """Before PositionalArgumentsFormatter, the message is formatted and the template kept."""
        through_stdlib(
            CodeWakeProcessor(),
            structlog.stdlib.PositionalArgumentsFormatter(),
            structlog.stdlib.render_to_log_kwargs,
        )
        logging.getLogger("t.pos").propagate = False
        structlog.get_logger("t.pos").warning("order %s for %s", "o1", "c42")
        data = events(store)[0].data_dict()
        assert (data["message"], data["msg_template"]) == ("order o1 for c42", "order %s for %s")

    def test_never_raises(self, store: Sql14Store, caplog: pytest.LogCaptureFixture) -> None:
        """A Process that cannot be configured is reported on the code_wake logger; the call goes on."""
        Process.reset()
        log = native(CodeWakeProcessor())
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("CODE_WAKE_ST_FROM_EXCEPTIONS", "maybe")
            rendered = log.error("still logged")
        assert json.loads(rendered) == {"event": "still logged"}
        assert "structlog call could not be recorded" in caplog.text
        assert "CODE_WAKE_ST_FROM_EXCEPTIONS" in caplog.text

    def test_bad_level(self) -> None:
        """An unknown level name is refused when the processor is made."""
        with pytest.raises(ValueError, match="unknown level"):
            CodeWakeProcessor("loud")
        assert repr(CodeWakeProcessor(logging.ERROR)) == "CodeWakeProcessor(level='ERROR')"


# -- structlog through stdlib logging, with a CodeWakeHandler too ------------------------------------


class TestBothDoors:
    """One log call makes one event when structlog routes through logging and both doors are hooked."""

    def test_recommended_setup(self, store: Sql14Store) -> None:
        """ProcessorFormatter rendering, the processor before wrap_for_formatter, the handler on the root."""
        through_stdlib(
            structlog.stdlib.filter_by_level,
            CodeWakeProcessor(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        )
        formatter = structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=SHARED,
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                structlog.processors.JSONRenderer(),
            ],
        )
        handler, out = console(formatter)
        root_handlers(handler, CodeWakeHandler())
        exercise(structlog.get_logger("t.app"))
        assert messages(store) == ["low stock", "checkout failed", "library says hi"]
        warning, error, library = events(store)
        assert warning.data_dict() == {
            "logger": "t.app",
            "level": "WARNING",
            "message": "low stock",
            "msg_template": "low stock",
            "user": "u1",
            "item": "tea",
        }
        assert error.exc_type == "ValueError" and error.stacktrace is not None
        assert library.data_dict()["msg_template"] == "library says %s"
        rendered = [json.loads(line) for line in out.getvalue().splitlines()]
        assert [r["event"] for r in rendered] == [
            "below the level",
            "low stock",
            "checkout failed",
            "library says hi",
        ]
        assert "ValueError: stock exhausted" in rendered[2]["exception"]

    def test_naive_setup_renderer_last(self, store: Sql14Store) -> None:
        """A renderer as the last processor hands logging a string; still one event per call."""
        through_stdlib(
            CodeWakeProcessor(), structlog.processors.format_exc_info, structlog.processors.JSONRenderer()
        )
        handler, _ = console()
        root_handlers(handler, CodeWakeHandler())
        exercise(structlog.get_logger("t.app"))
        assert messages(store) == ["low stock", "checkout failed", "library says hi"]

    def test_naive_setup_render_to_log_kwargs(self, store: Sql14Store) -> None:
        """render_to_log_kwargs hands logging the event as msg, the rest as extra: one event per call."""
        through_stdlib(CodeWakeProcessor(), structlog.stdlib.render_to_log_kwargs)
        handler, _ = console()
        root_handlers(handler, CodeWakeHandler())
        exercise(structlog.get_logger("t.app"))
        assert messages(store) == ["low stock", "checkout failed", "library says hi"]

    def test_processor_in_the_shared_chain_too(self, store: Sql14Store) -> None:
        """The processor also in ProcessorFormatter's foreign_pre_chain leaves foreign records alone."""
        shared = [*SHARED, CodeWakeProcessor()]
        structlog.configure(
            processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
            logger_factory=structlog.stdlib.LoggerFactory(),
            wrapper_class=structlog.stdlib.BoundLogger,
        )
        formatter = structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared, processors=[structlog.dev.ConsoleRenderer(colors=False)]
        )
        handler, _ = console(formatter)
        root_handlers(handler, CodeWakeHandler())
        exercise(structlog.get_logger("t.app"))
        assert messages(store) == ["low stock", "checkout failed", "library says hi"]

    def test_handler_alone_reads_structlog_records(self, store: Sql14Store) -> None:
        """Without the processor, the handler records structlog's records with their bound variables."""
        through_stdlib(
            structlog.stdlib.PositionalArgumentsFormatter(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        )
        root_handlers(CodeWakeHandler())
        exercise(structlog.get_logger("t.app"))
        warning, error, _ = events(store)
        assert messages(store) == ["low stock", "checkout failed", "library says hi"]
        data = warning.data_dict()
        assert (data["user"], data["item"], data["logger"], data["func"]) == (
            "u1",
            "tea",
            "t.app",
            "exercise",
        )
        assert "_logger" not in data and "_name" not in data
        assert error.exc_type == "ValueError"

    def test_calls_below_the_processor_level_go_to_the_handler(self, store: Sql14Store) -> None:
        """A call the processor leaves (below its level) is recorded by the handler if it reaches it."""
        through_stdlib(CodeWakeProcessor("error"), structlog.stdlib.render_to_log_kwargs)
        root_handlers(CodeWakeHandler(logging.INFO))
        log = structlog.get_logger("t.app")
        log.info("info, by the handler")
        log.error("error, by the processor")
        assert messages(store) == ["info, by the handler", "error, by the processor"]
        assert "module" in events(store)[0].data_dict()
        assert "module" not in events(store)[1].data_dict()

    def test_plain_record_after_a_native_call(self) -> None:
        """A stdlib record logged after a structlog call that never reached logging is still recorded."""
        memory = MemoryStore()
        Process(store=memory)
        root_handlers(CodeWakeHandler())
        native(CodeWakeProcessor()).warning("native only")
        logging.getLogger("t.plain").warning("plain")
        assert [e.data_dict()["message"] for e in memory.events] == ["native only", "plain"]
