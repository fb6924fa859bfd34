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
        """A stored chained exception prints as Python prints the live one.

        The one difference: a cause is named by its type alone, since its
        message is not part of the shared, deduplicated stack trace.
        """
        try:
            handle("x")
        except RuntimeError as exc:
            event = Process(store=MemoryStore()).log(exc=exc, sync=True)
            expected = python_printout(exc).replace("ValueError: bad input: 'x'\n", "ValueError\n")
        assert event is not None
        assert format_event_exception(event) == expected

    def test_caller_trace_has_no_exception_line(self) -> None:
        """A trace without an exception prints its frames only, most recent call last."""
        event = Process(store=MemoryStore()).log(inc_st=True, sync=True)
        assert event is not None and event.stacktrace is not None
        text = format_stacktrace(event.stacktrace)
        assert text.startswith("Traceback (most recent call last):\n")
        assert text.rstrip().endswith("event = Process(store=MemoryStore()).log(inc_st=True, sync=True)")
        assert format_event_exception(event) == text
