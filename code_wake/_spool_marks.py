"""Marks beside a spool file: its records that may be in the store already.

Records may be stored already when the write they were set aside after got
no answer to its COMMIT, when the exit took them over in the middle of a
write, or when a delivery of them was cut short (a crash, a lost answer)
before it noted its progress. Their byte range in the file is noted in
``<file>.maybe``, a line ``start end`` each, before they are appended or
delivered: a mark whose records never got there costs a look, no more. A
delivery hands the store the records of marked ranges flagged
(`Store.write_spooled`), and the store writes those it does not hold.

A code_wake that predates the marks ignores the file and delivers every
record, as it always did.
"""

from __future__ import annotations

import bisect
import contextlib
import os
from pathlib import Path

from ._private import PRIVATE_FILE
from ._report import report_problem

__all__ = ["Marks", "add_mark", "marks_of", "remove_marks", "remove_orphan_marks"]

_MARKS = ".maybe"


def _marks_path(path: Path) -> Path:
    return path.with_name(path.name + _MARKS)


def add_mark(path: Path, start: int, end: int) -> None:
    """Note that the records of `path` from byte `start` to `end` may be stored; best effort.

    Without the mark the records are delivered as they were before marks:
    written whether or not the store holds them. Reported, not raised.
    """
    try:
        fd = os.open(_marks_path(path), os.O_WRONLY | os.O_CREAT | os.O_APPEND, PRIVATE_FILE)
        try:
            os.write(fd, b"%d %d\n" % (start, end))
        finally:
            os.close(fd)
    except OSError as exc:
        report_problem(
            "spool-mark",
            f"could not mark events of the spool file {path} as perhaps stored: their delivery may store "
            "them a second time",
            exc,
        )


def remove_marks(path: Path) -> None:
    with contextlib.suppress(OSError):
        _marks_path(path).unlink()


def remove_orphan_marks(directory: Path) -> None:
    """Remove the marks whose spool file is gone: a code_wake that predates marks delivered it.

    A mark is only ever added to a file that exists, so none is taken from under its writer.
    """
    try:
        names = os.listdir(directory)
    except OSError:
        return
    for name in names:
        if name.endswith(_MARKS) and not (directory / name.removesuffix(_MARKS)).exists():
            with contextlib.suppress(OSError):
                (directory / name).unlink()


class Marks:
    """The marked ranges of one spool file, merged: whether a record lies in one."""

    def __init__(self, ranges: list[tuple[int, int]]) -> None:
        merged: list[tuple[int, int]] = []
        for start, end in sorted(ranges):
            if merged and start <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
            else:
                merged.append((start, end))
        self._starts = [start for start, _ in merged]
        self._ends = [end for _, end in merged]

    def hold(self, offset: int) -> bool:
        """Whether the record starting at byte `offset` lies in a marked range."""
        at = bisect.bisect_right(self._starts, offset) - 1
        return at >= 0 and offset < self._ends[at]


def marks_of(path: Path) -> Marks:
    """The marks of `path` (none when it has no marks file); a line that is not two numbers is skipped.

    Marks that cannot be read are reported, and the file delivered without them rather than not at all.
    """
    try:
        text = _marks_path(path).read_bytes().decode("ascii", "replace")
    except FileNotFoundError:
        return Marks([])
    except OSError as exc:
        report_problem(
            "spool-marks-unread",
            f"the marks of the spool file {path} cannot be read: its events are written as they are",
            exc,
        )
        return Marks([])
    ranges = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0].isdigit() and parts[1].isdigit():
            ranges.append((int(parts[0]), int(parts[1])))
    return Marks(ranges)
