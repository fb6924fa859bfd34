"""Stack trace capture (cheap, on the caller) and resolution (source lines, digest)."""

from __future__ import annotations

import contextlib
import gc
import logging
import sqlite3
import weakref
from pathlib import Path

import pytest

from code_wake.stack_trace import (
    CAUSE_MARKER,
    CONTEXT_MARKER,
    MAX_FRAMES,
    RawFrame,
    bencode,
    capture_caller,
    capture_exception,
    exception_type_name,
    frames_from_st_data,
    resolve_frames,
    trace_digest,
)

COMPAT_DB = Path(__file__).parent / "data" / "pycodewake-0.2.2.sqlite"


def fail_deep(n: int) -> None:
    if n == 0:
        raise ValueError("stock exhausted")
    fail_deep(n - 1)


def raised(n: int = 2) -> BaseException:
    try:
        fail_deep(n)
    except ValueError as exc:
        return exc
    raise AssertionError("fail_deep did not raise")


class CustomError(Exception):
    """An exception defined outside builtins."""


class TestCaptureCaller:
    def test_innermost_frame_is_the_caller(self) -> None:
        """The last captured frame (outermost first) is the line that asked for the trace."""
        frames = capture_caller()
        assert frames[-1].filename == __file__
        assert frames[-1].function == "test_innermost_frame_is_the_caller"
        assert frames[-1].src is None

    def test_st_len_keeps_innermost(self) -> None:
        """st_len keeps only the innermost frames."""
        frames = capture_caller(st_len=2)
        assert len(frames) == 2
        assert frames[-1].function == "test_st_len_keeps_innermost"

    def test_library_frames_are_left_out(self) -> None:
        """Frames of the logging module never appear in a caller trace."""
        seen: list[tuple[RawFrame, ...]] = []

        class Capture(logging.Handler):
            def emit(self, record: logging.LogRecord) -> None:
                seen.append(capture_caller())

        logger = logging.getLogger("tests.capture")
        handler = Capture()
        logger.addHandler(handler)
        try:
            logger.warning("hello")
        finally:
            logger.removeHandler(handler)
        (frames,) = seen
        assert not any(f.filename == logging.__file__ for f in frames)
        # The innermost kept frame is our emit (a test file), then this test's call.
        assert frames[-1].function == "emit"
        assert frames[-2].function == "test_library_frames_are_left_out"

    def test_is_bounded(self) -> None:
        """A very deep stack is cut to the innermost MAX_FRAMES frames."""

        def recurse(n: int) -> tuple[RawFrame, ...]:
            return capture_caller() if n == 0 else recurse(n - 1)

        frames = recurse(MAX_FRAMES + 50)
        assert len(frames) == MAX_FRAMES


class TestCaptureException:
    def test_frames_outermost_first(self) -> None:
        """An exception's frames run from the catching function to the raising line."""
        frames = capture_exception(raised(2))
        assert [f.function for f in frames] == ["raised", "fail_deep", "fail_deep", "fail_deep"]
        resolved = resolve_frames(frames).frames
        assert resolved[-1].src == 'raise ValueError("stock exhausted")'

    def test_st_len_keeps_the_raising_frames(self) -> None:
        """st_len with an exception keeps the innermost frames (the original raised TypeError)."""
        frames = capture_exception(raised(3), st_len=2)
        assert [f.function for f in frames] == ["fail_deep", "fail_deep"]

    def test_explicit_cause_is_kept(self) -> None:
        """`raise ... from` keeps the cause's frames, then a marker naming its type."""
        try:
            try:
                fail_deep(0)
            except ValueError as inner:
                raise CustomError("outer") from inner
        except CustomError as exc:
            frames = capture_exception(exc)
        markers = [f for f in frames if f.filename == CAUSE_MARKER]
        assert markers == [RawFrame(CAUSE_MARKER, 0, None, "ValueError")]
        marker_at = frames.index(markers[0])
        assert frames[marker_at - 1].function == "fail_deep"
        assert frames[-1].function == "test_explicit_cause_is_kept"

    def test_implicit_context_is_kept(self) -> None:
        """An exception raised while handling another keeps that one too."""
        try:
            try:
                fail_deep(0)
            except ValueError:
                {}["while handling"]
        except KeyError as exc:
            frames = capture_exception(exc)
        assert [f.src for f in frames if f.filename == CONTEXT_MARKER] == ["ValueError"]

    def test_suppressed_context_is_dropped(self) -> None:
        """`raise ... from None` hides the context, as Python's printout does."""
        try:
            try:
                fail_deep(0)
            except ValueError:
                raise KeyError("clean") from None
        except KeyError as exc:
            frames = capture_exception(exc)
        assert not [f for f in frames if f.filename in (CAUSE_MARKER, CONTEXT_MARKER)]

    def test_cyclic_chain_terminates(self) -> None:
        """An exception chained to itself is followed once."""
        first, second = ValueError("a"), ValueError("b")
        first.__cause__, second.__cause__ = second, first
        assert len([f for f in capture_exception(first) if f.filename == CAUSE_MARKER]) == 1

    def test_keeps_no_traceback_alive(self) -> None:
        """Captured frames keep nothing alive: the raising frame's locals are freed with the exception."""

        class Local:
            """Something only the raising frame refers to."""

        def raise_holding(local: Local) -> None:
            raise CustomError(str(id(local)))

        local = Local()
        ref = weakref.ref(local)
        try:
            raise_holding(local)
        except CustomError as exc:
            frames = capture_exception(exc)
        del local
        gc.collect()
        assert ref() is None
        assert frames[-1].function == "raise_holding"

    def test_never_raised_exception_has_no_frames(self) -> None:
        """An exception object that was never raised has an empty trace."""
        assert capture_exception(ValueError("never raised")) == ()


class TestNames:
    def test_builtin_type_name(self) -> None:
        """Builtin exceptions are named bare."""
        assert exception_type_name(ZeroDivisionError()) == "ZeroDivisionError"

    def test_qualified_type_name(self) -> None:
        """Other exceptions carry their module."""
        assert exception_type_name(CustomError()) == f"{__name__}.CustomError"


class TestResolveAndDigest:
    def test_source_lines_filled_in(self) -> None:
        """Resolution reads the source line, stripped, as traceback does."""
        (frame,) = resolve_frames(
            [RawFrame(__file__, fail_deep.__code__.co_firstlineno + 2, "fail_deep")]
        ).frames
        assert frame.src == 'raise ValueError("stock exhausted")'

    def test_missing_source_is_empty(self) -> None:
        """A frame whose file cannot be read gets an empty source line, as the original stored."""
        (frame,) = resolve_frames([RawFrame("<string>", 6, "<module>")]).frames
        assert frame.src == ""

    def test_digest_ignores_function_names(self) -> None:
        """The function name is not part of the digest (file and line determine it)."""
        a = [RawFrame("f.py", 1, "one", "x = 1")]
        b = [RawFrame("f.py", 1, "two", "x = 1")]
        assert trace_digest(a) == trace_digest(b)

    def test_digest_matches_pycodewake_database(self) -> None:
        """Every stack trace digest in a database pycodewake 0.2.2 wrote is reproduced exactly."""
        with contextlib.closing(sqlite3.connect(f"file:{COMPAT_DB}?mode=ro", uri=True)) as db:
            traces = db.execute("SELECT id, digest FROM stacktraces").fetchall()
            assert traces
            for trace_id, digest in traces:
                rows = db.execute(
                    "SELECT filename, lineno, src FROM stackframes WHERE stacktrace_id = ? ORDER BY id",
                    (trace_id,),
                ).fetchall()
                assert trace_digest([RawFrame(f, n, None, s) for f, n, s in rows]) == digest

    def test_st_data_round_trip(self) -> None:
        """The original's [filename, lineno, src] lists (optionally with a function) become frames."""
        frames = frames_from_st_data([["a.py", "3", "x()"], ("b.py", 4, None, "main")])
        assert frames == (RawFrame("a.py", 3, None, "x()"), RawFrame("b.py", 4, "main", ""))


class TestBencode:
    def test_forms(self) -> None:
        """Integers, strings (UTF-8 byte length), bytes and nested lists."""
        assert bencode([1, "é", b"ab", [-2]]) == b"li1e2:\xc3\xa92:abli-2eee"

    def test_refuses_other_types(self) -> None:
        """Booleans and other types are not silently encoded."""
        with pytest.raises(TypeError):
            bencode(True)
        with pytest.raises(TypeError):
            bencode(1.5)
