"""Stack traces: cheap capture on the caller's thread, resolution off it.

Capture keeps only ``(filename, lineno, function)`` per frame: no frame or
traceback object survives it, and no source file is read. `resolve_frames`
later adds the source lines (through `linecache`) and the digest by which
identical traces are stored once.
"""

from __future__ import annotations

import hashlib
import linecache
import logging
import os
import sys
from collections.abc import Iterable, Sequence
from importlib.util import find_spec
from types import FrameType, TracebackType
from typing import NamedTuple

__all__ = [
    "CAUSE_MARKER",
    "CONTEXT_MARKER",
    "RawFrame",
    "ResolvedTrace",
    "Stackframe",
    "Stacktrace",
    "bencode",
    "capture_caller",
    "capture_exception",
    "chained_exceptions",
    "exception_type_name",
    "frames_from_st_data",
    "package_dir",
    "resolve_frames",
    "trace_digest",
]

CAUSE_MARKER = "<cause>"
"""Filename of the marker frame after a ``raise ... from`` cause's frames."""

CONTEXT_MARKER = "<context>"
"""Filename of the marker frame after an implicitly chained exception's frames."""

MAX_FRAMES = 200
"""Frames kept at most from one stack (innermost ones), whatever ``st_len`` says."""

_MAX_CHAIN = 8
"""Chained exceptions followed at most (cause of a cause of ...)."""


class RawFrame(NamedTuple):
    """One captured frame; ``src`` is None until resolved (markers carry theirs)."""

    filename: str
    lineno: int
    function: str | None
    src: str | None = None


class ResolvedTrace(NamedTuple):
    """Frames outermost first, each with its source line, and their digest."""

    frames: tuple[RawFrame, ...]
    digest: bytes


def package_dir(name: str) -> str | None:
    """The directory of package `name`, with a trailing separator, found without importing it."""
    try:
        spec = find_spec(name)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return os.path.join(next(iter(spec.submodule_search_locations)), "")


def _internal_prefixes() -> tuple[str, ...]:
    names = ("code_wake", "code_wake_sql14_store", "logging", "structlog")
    return tuple(p for p in map(package_dir, names) if p is not None)


_INTERNAL = _internal_prefixes()
# The contract suite's own test functions are user code, not library frames.
_TESTING = os.path.join(os.path.dirname(os.path.abspath(__file__)), "testing", "")
_LOGGING_FILE = logging.__file__


def _is_internal(filename: str) -> bool:
    if filename.startswith(_TESTING):
        return False
    return filename.startswith(_INTERNAL) or filename == _LOGGING_FILE


def capture_caller(st_len: int | None = None) -> tuple[RawFrame, ...]:
    """The calling stack, outermost first, without code_wake/logging/structlog frames.

    The innermost `st_len` frames are kept.
    """
    limit = _limit(st_len)
    current: FrameType | None = sys._getframe(1)
    frames: list[RawFrame] = []
    while current is not None and len(frames) < limit:
        code = current.f_code
        if not _is_internal(code.co_filename):
            frames.append(RawFrame(code.co_filename, current.f_lineno, code.co_name))
        current = current.f_back
    frames.reverse()
    return tuple(frames)


def capture_exception(exc: BaseException, st_len: int | None = None) -> tuple[RawFrame, ...]:
    """The frames of `exc` outermost first, preceded by those of its chained causes.

    Each chained exception's frames end with a marker frame (`CAUSE_MARKER` or
    `CONTEXT_MARKER`, its ``src`` the chained exception's type), so a trace
    reads like Python's own printout. `st_len` keeps the innermost frames.
    """
    parts: list[RawFrame] = []
    for linked, marker in reversed(_chain(exc)):
        parts.extend(_traceback_frames(linked.__traceback__))
        if marker is not None:
            parts.append(RawFrame(marker, 0, None, exception_type_name(linked)))
    limit = _limit(st_len)
    return tuple(parts[-limit:]) if len(parts) > limit else tuple(parts)


def chained_exceptions(exc: BaseException) -> tuple[BaseException, ...]:
    """The exceptions chained to `exc` (causes and contexts), outermost first, as the trace's markers run.

    Their messages are kept beside the event, not in the frames, so that the
    trace's digest (and its deduplication) does not depend on them.
    """
    return tuple(linked for linked, _ in reversed(_chain(exc)[1:]))


def _chain(exc: BaseException) -> list[tuple[BaseException, str | None]]:
    """`exc` and the exceptions chained to it, newest first, cycles cut."""
    chain: list[tuple[BaseException, str | None]] = [(exc, None)]
    seen = {id(exc)}
    current = exc
    while len(chain) <= _MAX_CHAIN:
        if current.__cause__ is not None:
            current, marker = current.__cause__, CAUSE_MARKER
        elif current.__context__ is not None and not current.__suppress_context__:
            current, marker = current.__context__, CONTEXT_MARKER
        else:
            break
        if id(current) in seen:
            break
        seen.add(id(current))
        chain.append((current, marker))
    return chain


def _traceback_frames(tb: TracebackType | None) -> list[RawFrame]:
    frames: list[RawFrame] = []
    while tb is not None:
        code = tb.tb_frame.f_code
        frames.append(RawFrame(code.co_filename, tb.tb_lineno, code.co_name))
        tb = tb.tb_next
    return frames


def _limit(st_len: int | None) -> int:
    if st_len is None or st_len <= 0:
        return MAX_FRAMES
    return min(st_len, MAX_FRAMES)


def exception_type_name(exc: BaseException) -> str:
    """``ValueError`` for builtins, ``package.module.Name`` for the rest."""
    cls = type(exc)
    module = cls.__module__
    if module in ("builtins", "__builtin__"):
        return cls.__qualname__
    return f"{module}.{cls.__qualname__}"


def frames_from_st_data(st_data: Iterable[Sequence[object]]) -> tuple[RawFrame, ...]:
    """Frames from the original's ``Stacktrace.data()`` form, outermost first.

    Each item is ``[filename, lineno, src]`` with an optional fourth item, the
    function name.
    """
    frames: list[RawFrame] = []
    for item in st_data:
        filename, lineno, src = str(item[0]), int(str(item[1])), item[2]
        function = str(item[3]) if len(item) > 3 and item[3] is not None else None
        frames.append(RawFrame(filename, lineno, function, "" if src is None else str(src)))
    return tuple(frames)


def resolve_frames(frames: Iterable[RawFrame]) -> ResolvedTrace:
    """Fill in source lines (stripped, as `traceback` does) and compute the digest."""
    resolved = tuple(
        frame
        if frame.src is not None
        else frame._replace(src=linecache.getline(frame.filename, frame.lineno).strip())
        for frame in frames
    )
    return ResolvedTrace(resolved, trace_digest(resolved))


def trace_digest(frames: Iterable[RawFrame]) -> bytes:
    """sha256 of the bencoded ``[[filename, lineno, src], ...]``, outermost first.

    This is pycodewake's formula, so traces written by it and by us dedupe
    together; the function name is deliberately not part of it.
    """
    triples = [[f.filename, f.lineno, f.src or ""] for f in frames]
    return hashlib.sha256(bencode(triples)).digest()


def bencode(value: object) -> bytes:
    """Bencode ints, strings (as UTF-8), bytes and lists of those."""
    out: list[bytes] = []
    _bencode_into(value, out)
    return b"".join(out)


def _bencode_into(value: object, out: list[bytes]) -> None:
    if isinstance(value, bool):
        raise TypeError("bencode does not encode booleans")
    if isinstance(value, int):
        out.append(b"i%de" % value)
    elif isinstance(value, str):
        _bencode_into(value.encode("utf-8", "surrogatepass"), out)
    elif isinstance(value, bytes):
        out.append(b"%d:%s" % (len(value), value))
    elif isinstance(value, (list, tuple)):
        out.append(b"l")
        for item in value:
            _bencode_into(item, out)
        out.append(b"e")
    else:
        raise TypeError(f"bencode cannot encode {type(value).__name__}")


# -- pycodewake's stack trace value, for adapters written for it -------------------------------------


class Stackframe(NamedTuple):
    """One frame of a `Stacktrace`: pycodewake's ``filename``, ``lineno`` and ``src``, and the function."""

    filename: str
    lineno: int
    src: str
    function: str | None = None


class Stacktrace:
    """pycodewake 0.2's stack trace, for store adapters written for it.

    ``stackframes`` run outermost first, the order pycodewake stored them in;
    `digest` is the digest both pycodewake and code_wake store traces by.
    New code has no need of it: a store receives `code_wake.PendingEvent`
    frames and resolves them with `resolve_frames`.
    """

    __slots__ = ("stackframes",)

    def __init__(self, stackframes: Iterable[Stackframe]) -> None:
        self.stackframes: tuple[Stackframe, ...] = tuple(stackframes)

    @classmethod
    def from_exc(cls, exc: BaseException, st_len: int | None = None) -> Stacktrace:
        """The frames of `exc` (and its chained causes), the innermost `st_len` of them."""
        return cls._resolved(capture_exception(exc, st_len))

    @classmethod
    def from_caller(cls, st_len: int | None = None) -> Stacktrace:
        """The stack of whoever called the code that calls this, the innermost `st_len` frames.

        An adapter calls it from its ``insert_event``: the adapter's own frames
        (those of the file that called this) and code_wake's are left out, so
        the trace ends at the line that logged.
        """
        caller_file = sys._getframe(1).f_code.co_filename
        frames = list(capture_caller())
        while frames and frames[-1].filename == caller_file:
            frames.pop()
        limit = _limit(st_len)
        return cls._resolved(frames[-limit:])

    @classmethod
    def from_data(cls, st_data: Iterable[Sequence[object]], st_len: int | None = None) -> Stacktrace:
        """From ``[filename, lineno, src]`` items, outermost first (the form `data` gives)."""
        frames = frames_from_st_data(st_data)
        return cls._resolved(frames[-_limit(st_len) :])

    @classmethod
    def _resolved(cls, frames: Iterable[RawFrame]) -> Stacktrace:
        resolved = resolve_frames(frames).frames
        return cls(Stackframe(f.filename, f.lineno, f.src or "", f.function) for f in resolved)

    def data(self) -> list[list[object]]:
        """The frames as ``[filename, lineno, src]`` lists, outermost first."""
        return [[f.filename, f.lineno, f.src] for f in self.stackframes]

    def digest(self) -> bytes:
        """sha256 of the bencoded frames: the ``stacktraces.digest`` of pycodewake and code_wake."""
        return trace_digest(RawFrame(f.filename, f.lineno, f.function, f.src) for f in self.stackframes)

    def __len__(self) -> int:
        return len(self.stackframes)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Stacktrace) and self.stackframes == other.stackframes

    def __hash__(self) -> int:
        return hash(self.stackframes)

    def __repr__(self) -> str:
        return f"Stacktrace({len(self.stackframes)} frames)"
