"""Stored stack traces print as Python prints them."""

from __future__ import annotations

import re
import traceback

from code_wake import Process
from code_wake.render import format_event_exception, format_stacktrace
from code_wake.testing.memory import MemoryStore


def parse(text: str) -> None:
    raise ValueError(f"bad input: {text!r}")


def handle(text: str) -> None:
    try:
        parse(text)
    except ValueError as exc:
        raise RuntimeError("request failed") from exc


def python_printout(exc: BaseException) -> str:
    """Python's own printout, without the caret lines that 3.11+ adds under some frames."""
    text = "".join(traceback.format_exception(exc))
    return re.sub(r"^ +[~^]+\n", "", text, flags=re.MULTILINE)


class TestFormat:
    def test_chained_exception_reads_like_python(self) -> None:
        """A stored chained exception prints as Python prints the live one, causes' messages included."""
        try:
            handle("x")
        except RuntimeError as exc:
            event = Process(store=MemoryStore()).log(exc=exc, sync=True)
            expected = python_printout(exc)
        assert event is not None
        assert "ValueError: bad input: 'x'\n" in expected
        assert format_event_exception(event) == expected

    def test_chain_without_messages_names_the_types(self) -> None:
        """An event stored before schema 3 (no chain messages) names each cause by its type alone."""
        try:
            handle("x")
        except RuntimeError as exc:
            event = Process(store=MemoryStore()).log(exc=exc, sync=True)
            expected = python_printout(exc).replace("ValueError: bad input: 'x'\n", "ValueError\n")
        assert event is not None and event.stacktrace is not None
        assert format_stacktrace(event.stacktrace) + "RuntimeError: request failed\n" == expected

    def test_cut_trace_keeps_the_innermost_messages(self) -> None:
        """With st_len cutting off outer causes, the markers left get the innermost messages."""
        try:
            try:
                handle("x")
            except RuntimeError as exc:
                raise LookupError("outermost") from exc
        except LookupError as exc:
            event = Process(store=MemoryStore()).log(exc=exc, st_len=2, sync=True)
        assert event is not None and event.stacktrace is not None
        assert len(event.exc_chain) == 2
        text = format_event_exception(event)
        assert "RuntimeError: request failed\n\nThe above exception" in text
        assert "ValueError" not in text

    def test_caller_trace_has_no_exception_line(self) -> None:
        """A trace without an exception prints its frames only, most recent call last."""
        event = Process(store=MemoryStore()).log(inc_st=True, sync=True)
        assert event is not None and event.stacktrace is not None
        text = format_stacktrace(event.stacktrace)
        assert text.startswith("Traceback (most recent call last):\n")
        assert text.rstrip().endswith("event = Process(store=MemoryStore()).log(inc_st=True, sync=True)")
        assert format_event_exception(event) == text
