"""code_wake's own reports: seen on stderr when logging would show them nowhere."""

from __future__ import annotations

import logging

import pytest

from code_wake import CodeWakeHandler, _report
from code_wake.testing import MemoryStore


def lone_logger(*handlers: logging.Handler) -> logging.Logger:
    """A `code_wake`-like logger outside the logging tree, with `handlers` only."""
    logger = logging.Logger("code_wake")
    for handler in handlers:
        logger.addHandler(handler)
    return logger


class TestShownByLogging:
    """Whether a code_wake warning would reach anyone through logging."""

    def test_only_code_wake_handlers(self) -> None:
        """A CodeWakeHandler never shows code_wake's reports: nobody would see them."""
        assert not _report._shown_by_logging(lone_logger(CodeWakeHandler(store=MemoryStore())))

    def test_another_handler(self) -> None:
        """Any other handler at WARNING or below shows them."""
        assert _report._shown_by_logging(
            lone_logger(CodeWakeHandler(store=MemoryStore()), logging.NullHandler())
        )

    def test_handler_above_warning(self) -> None:
        """A handler that drops warnings does not count."""
        errors_only = logging.NullHandler()
        errors_only.setLevel(logging.ERROR)
        assert not _report._shown_by_logging(lone_logger(errors_only))

    def test_no_handler_at_all(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """No handler: logging's last resort prints it, unless the app removed the last resort."""
        assert _report._shown_by_logging(lone_logger())
        monkeypatch.setattr(logging, "lastResort", None)
        assert not _report._shown_by_logging(lone_logger())


class TestReportOnStderr:
    """report_problem prints on stderr when logging would not show it, rate-limited as ever."""

    def test_printed_once_per_interval(
        self, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Two reports of one kind in a row: one line on stderr."""
        monkeypatch.setattr(_report, "logger", lone_logger(CodeWakeHandler(store=MemoryStore())))
        _report.report_problem("test-kind", "the store is gone", OSError("no such file"))
        _report.report_problem("test-kind", "the store is gone", OSError("no such file"))
        assert capsys.readouterr().err == "code_wake: the store is gone: OSError: no such file\n"

    def test_not_printed_when_logging_shows_it(
        self, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """With a handler of the app's, the report is the handler's to show."""
        monkeypatch.setattr(_report, "logger", lone_logger(logging.NullHandler()))
        _report.report_problem("test-kind", "the store is gone")
        assert capsys.readouterr().err == ""


class TestHeldBack:
    def test_the_latest_figure_is_reported_at_exit(self, caplog: pytest.LogCaptureFixture) -> None:
        """Reports held back by the interval are not lost: the latest one, with its count, comes at exit."""
        with caplog.at_level(logging.WARNING, logger="code_wake"):
            for total in (1, 2, 3):
                _report.report_problem("test-kind", f"events dropped ({total} so far)")
            assert [r.getMessage() for r in caplog.records] == ["code_wake: events dropped (1 so far)"]
            _report.report_held_back()
            _report.report_held_back()  # once
        assert [r.getMessage() for r in caplog.records] == [
            "code_wake: events dropped (1 so far)",
            "code_wake: events dropped (3 so far) (2 times since the last report)",
        ]
