"""The disk spool: where a queue sets events aside while its store cannot take them.

One directory per store (`spool_directory`), private to the user. Each queue
that sets events aside appends them to a file of its own, named so that
names sort by creation, and holds an exclusive `flock` on it for as long as
it may write to it: a file nobody holds is complete and free to deliver.
Delivering (`deliver_spool`) takes the free files in order, one at a time
under their lock, writes their events to the store in batches and notes its
progress beside the file after each batch; a file is deleted once all of it
is written. So any process that opens the same store, or ``code-wake
spool --deliver``, delivers what an earlier process left.

Nothing here waits for an fsync: appends reach the kernel, which keeps them
through a crash or ``kill -9`` of the process, not through a power cut.
The record format is `_spool_format`; docs/queue.md tells the whole story.
"""

from __future__ import annotations

import contextlib
import hashlib
import mmap
import os
import struct
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ._private import PRIVATE_FILE, make_private_dirs
from ._report import report_problem
from ._spool_format import (
    Readable,
    SpoolHeader,
    decode_event,
    encode_events,
    encode_header,
    read_header,
    read_records,
)
from ._spool_marks import add_mark, marks_of, remove_marks, remove_orphan_marks
from .event import PendingEvent

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: no spool (docs/queue.md)
    fcntl = None  # type: ignore[assignment]

__all__ = [
    "SPOOL_AVAILABLE",
    "Delivery",
    "Spool",
    "SpoolError",
    "SpoolFile",
    "WriteBatch",
    "deliver_spool",
    "list_spool",
    "spool_directory",
]

SPOOL_AVAILABLE = fcntl is not None
"""Spooling needs `flock` (POSIX): elsewhere a queue works as it would without a spool."""

SUFFIX = ".spool"
_WRITING = ".new"
"""A file being started: its header is written before it gets its name, so a `.spool` is never headless."""
_PROGRESS = ".done"
"""Beside a file being delivered: how far it is written (8 bytes, the offset)."""
_DAMAGED = ".damaged"
_OFFSET = struct.Struct("<Q")
_STALE_START = 60.0
"""Seconds after which an unheld `.new` file is an abandoned start (its writer died creating it)."""


class SpoolError(Exception):
    """The spool cannot take these events (full, or the disk refused); they are dropped."""


def spool_directory(root: Path, store_key: str) -> Path:
    """The directory of the store that `store_key` names (`Store.spool_key`), under `root`."""
    return root / hashlib.sha256(store_key.encode("utf-8", "surrogatepass")).hexdigest()[:24]


# -- writing -------------------------------------------------------------------------------------


class Spool:
    """One queue's way into a store's spool directory: appends go to a file only this queue holds."""

    def __init__(self, directory: Path, max_bytes: int, store_name: str) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        self.store_name = store_name
        self._lock = threading.Lock()
        self._start_over()

    def _start_over(self) -> None:
        self.writer = uuid.uuid4().hex
        """This queue's token in the headers of the files it writes."""
        self._fd: int | None = None
        self._path: Path | None = None
        self._size = 0
        self._directory_bytes = 0

    def append(self, events: Sequence[PendingEvent], maybe_stored: bool = False) -> None:
        """Add `events` at the end of this queue's file; `SpoolError` if they cannot all be added.

        `maybe_stored`: the write they were taken from may have committed
        them; they are marked so (`_spool_marks`), and their delivery looks first.
        """
        data = encode_events(events)
        with self._lock:
            try:
                fd = self._open()
                if self._directory_bytes + len(data) > self.max_bytes:
                    self._directory_bytes = directory_bytes(self.directory)
                    if self._directory_bytes + len(data) > self.max_bytes:
                        raise SpoolError(f"the spool is full ({self.max_bytes} bytes) in {self.directory}")
                if maybe_stored and self._path is not None:
                    add_mark(self._path, self._size, self._size + len(data))
                self._write_all(fd, data)
            except OSError as exc:
                raise SpoolError(f"the spool in {self.directory} cannot be written: {exc}") from exc
            self._size += len(data)
            self._directory_bytes += len(data)

    def _write_all(self, fd: int, data: bytes) -> None:
        """All of `data`, or none of it: a short write (disk full) is cut off again."""
        try:
            written = 0
            while written < len(data):
                written += os.write(fd, data[written:])
        except OSError:
            os.ftruncate(fd, self._size)
            raise

    def _open(self) -> int:
        if self._fd is not None:
            return self._fd
        make_private_dirs(self.directory)
        name = f"{time.time_ns():020d}-{os.getpid()}-{self.writer[:8]}"
        starting = self.directory / (name + _WRITING)
        fd = os.open(starting, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, PRIVATE_FILE)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            header = encode_header(SpoolHeader(self.writer, os.getpid(), time.time(), self.store_name))
            self._size = 0
            self._write_all(fd, header)
            self._path = self.directory / (name + SUFFIX)
            os.rename(starting, self._path)
        except OSError:
            os.close(fd)
            with contextlib.suppress(OSError):
                starting.unlink()
            raise
        self._fd = fd
        self._size = len(header)
        self._directory_bytes = directory_bytes(self.directory)
        return fd

    @property
    def holds_a_file(self) -> bool:
        """Whether this queue has a file open (which nobody else may deliver while it does)."""
        return self._fd is not None

    def release(self) -> None:
        """Close this queue's file, so it can be delivered; the next append starts a new one."""
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
            self._fd = None
            self._path = None

    def reset(self) -> None:
        """Start afresh, as in a forked child: files of its own; the parent's stays the parent's, held."""
        self._lock = threading.Lock()
        if self._fd is not None:
            # Closing the child's copy leaves the parent's lock in place: flock belongs to the open file.
            with contextlib.suppress(OSError):
                os.close(self._fd)
        self._start_over()


def directory_bytes(directory: Path) -> int:
    """What the spool files in `directory` take on disk, about (0 when there is none)."""
    total = 0
    with contextlib.suppress(FileNotFoundError):
        for entry in os.scandir(directory):
            with contextlib.suppress(OSError):
                total += entry.stat().st_size
    return total


# -- reading and delivering ----------------------------------------------------------------------


@dataclass
class Delivery:
    """What one delivery wrote, by whose events; kept up to date batch by batch."""

    own_writer: str | None = None
    own: int = 0
    """Events the queue with token `own_writer` had set aside, now written."""
    others: int = 0
    """Events other queues or processes had set aside, now written."""
    own_rejected: int = 0
    others_rejected: int = 0
    files: int = 0
    """Files delivered whole and deleted."""
    torn: int = 0
    """Files that ended in a cut-off record (a crash mid-write): read up to the cut."""
    damaged: list[str] = field(default_factory=list)
    """Files set aside as ``.damaged`` because they are not spool files at all."""

    @property
    def written(self) -> int:
        return self.own + self.others


WriteBatch = Callable[[list[PendingEvent], list[bool]], int]
"""Writes a batch to the store, returning how many of it the store refused for good; raises if it fails.

The flags say which events may be stored already (`_spool_marks`): the store writes those only if not.
"""


def deliver_spool(
    directory: Path, write: WriteBatch, batch_size: int, delivery: Delivery, stop: Callable[[], bool] = bool
) -> None:
    """Write every free file of `directory` to the store, oldest first, adding up in `delivery`.

    What `write` raises ends the delivery: what was written stays noted as
    written, and the rest waits for the next delivery. `stop` is asked between
    batches.
    """
    for path in _files(directory, SUFFIX):
        if stop():
            return
        with _held(path) as fd:
            if fd is not None:
                _deliver_file(path, fd, write, batch_size, delivery, stop)
    _clear_stale_starts(directory)
    remove_orphan_marks(directory)


def _files(directory: Path, suffix: str) -> list[Path]:
    try:
        names = sorted(name for name in os.listdir(directory) if name.endswith(suffix))
    except (FileNotFoundError, NotADirectoryError):
        return []
    return [directory / name for name in names]


@contextlib.contextmanager
def _held(path: Path) -> Iterator[int | None]:
    """`path` open and exclusively locked; None when another queue holds it or it is gone already."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        yield None
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield None
            return
        # Delivered and deleted by another process between our listing and our lock: not again.
        yield fd if os.fstat(fd).st_nlink > 0 else None
    finally:
        os.close(fd)


def _deliver_file(
    path: Path, fd: int, write: WriteBatch, batch_size: int, delivery: Delivery, stop: Callable[[], bool]
) -> None:
    size = os.fstat(fd).st_size
    with _mapped(fd, size) as data:
        found = read_header(data)
        if found is None:
            _set_aside_damaged(path, delivery)
            return
        header, start = found
        own = header.writer == delivery.own_writer
        marks = marks_of(path)
        batch: list[PendingEvent] = []
        flags: list[bool] = []
        offset = max(start, _progress(path))
        batch_start = end = offset
        for payload, end in read_records(data, offset):
            try:
                batch.append(decode_event(payload))
                flags.append(marks.hold(offset))
            except (ValueError, TypeError) as exc:
                report_problem(
                    "spool-damaged", f"a record of the spool file {path} is not an event; skipped", exc
                )
            offset = end  # where the next record starts
            if len(batch) >= batch_size:
                _write_batch(path, (batch_start, end), batch, flags, write, own, delivery)
                _note_progress(path, end)
                batch, flags, batch_start = [], [], end
                if stop():
                    return
        if batch:
            _write_batch(path, (batch_start, end), batch, flags, write, own, delivery)
        if end < size:
            delivery.torn += 1
            report_problem(
                "spool-torn",
                f"the spool file {path} ends in a cut-off record (a crash while writing?): "
                f"{size - end} bytes after the last whole event are skipped",
            )
    _remove(path)
    delivery.files += 1


def _write_batch(
    path: Path,
    span: tuple[int, int],
    batch: list[PendingEvent],
    maybe_stored: list[bool],
    write: WriteBatch,
    own: bool,
    delivery: Delivery,
) -> None:
    """Write `batch`, the records of `span` in `path`, marked first: cut short, it is looked for next time."""
    add_mark(path, *span)
    rejected = write(batch, maybe_stored)
    if own:
        delivery.own += len(batch) - rejected
        delivery.own_rejected += rejected
    else:
        delivery.others += len(batch) - rejected
        delivery.others_rejected += rejected


@contextlib.contextmanager
def _mapped(fd: int, size: int) -> Iterator[Readable]:
    """The file's bytes without reading them all into memory (an empty file maps to nothing)."""
    if size == 0:
        yield b""
        return
    with mmap.mmap(fd, size, access=mmap.ACCESS_READ) as data:
        yield data


def _progress(path: Path) -> int:
    try:
        with open(_sidecar(path), "rb") as file:
            return int(_OFFSET.unpack(file.read(_OFFSET.size))[0])
    except (OSError, struct.error):
        return 0


def _note_progress(path: Path, offset: int) -> None:
    """Note how far `path` is written; a crash before the note costs one batch written twice."""
    fd = os.open(_sidecar(path), os.O_WRONLY | os.O_CREAT, PRIVATE_FILE)
    try:
        os.pwrite(fd, _OFFSET.pack(offset), 0)
    finally:
        os.close(fd)


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + _PROGRESS)


def _remove(path: Path) -> None:
    # The data first: a progress note without its file is harmless, the reverse would write twice.
    path.unlink()
    with contextlib.suppress(FileNotFoundError):
        _sidecar(path).unlink()
    remove_marks(path)


def _set_aside_damaged(path: Path, delivery: Delivery) -> None:
    aside = path.with_name(path.name + _DAMAGED)
    with contextlib.suppress(OSError):
        os.rename(path, aside)
    delivery.damaged.append(str(aside))
    report_problem("spool-damaged", f"{path} is not a spool file; moved aside to {aside.name}")


def _clear_stale_starts(directory: Path) -> None:
    """Remove `.new` files nobody holds that are old: a writer died between creating and naming one."""
    for path in _files(directory, _WRITING):
        with contextlib.suppress(OSError), _held(path) as fd:
            if fd is not None and time.time() - os.fstat(fd).st_mtime > _STALE_START:
                path.unlink()


# -- what waits, for code-wake spool ---------------------------------------------------------------


@dataclass(frozen=True)
class SpoolFile:
    """One file of a spool, as ``code-wake spool`` shows it."""

    path: Path
    size: int
    in_use: bool
    """Held by a live queue, which may still add to it (it is delivered once released)."""
    header: SpoolHeader | None
    events: int
    """Events not yet written (after the progress note)."""
    first_ts: float | None
    last_ts: float | None
    torn_bytes: int


def list_spool(directory: Path) -> list[SpoolFile]:
    """Each spool file of `directory`, oldest first, read without changing anything."""
    found = []
    for path in _files(directory, SUFFIX):
        try:
            found.append(_describe(path))
        except FileNotFoundError:
            continue
    return found


def _describe(path: Path) -> SpoolFile:
    with open(path, "rb") as file:
        fd = file.fileno()
        in_use = False
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            in_use = True
        size = os.fstat(fd).st_size
        with _mapped(fd, size) as data:
            found = read_header(data)
            if found is None:
                return SpoolFile(path, size, in_use, None, 0, None, None, 0)
            header, start = found
            events, first, last = 0, None, None
            end = max(start, _progress(path))
            for payload, record_end in read_records(data, end):
                events, end = events + 1, record_end
                with contextlib.suppress(ValueError, TypeError):
                    when = decode_event(payload).when_ts
                    first = when if first is None else first
                    last = when
            return SpoolFile(path, size, in_use, header, events, first, last, size - end)
