"""How a spool file holds events: a header, then one framed record per event.

A spool file starts with `MAGIC` and a header record; every record after it
is one event. A record is its length and the CRC-32 of its bytes (`_FRAME`,
little-endian), then the bytes: compact JSON (ASCII, so any text survives,
lone surrogates included). JSON rather than pickle: reading a spool must
never run code, whoever wrote the file.

A process killed mid-write leaves a torn last record: a short frame, or
bytes whose CRC does not match. `read_records` stops there and says so; the
records before it are whole.
"""

from __future__ import annotations

import json
import mmap
import struct
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import astuple, dataclass, fields
from typing import Any, TypeAlias

from .event import PendingEvent, ProcessRef
from .records import ProcessInfo
from .stack_trace import RawFrame

__all__ = [
    "MAGIC",
    "Readable",
    "SpoolHeader",
    "decode_event",
    "encode_event",
    "encode_events",
    "encode_header",
    "frame",
    "read_header",
    "read_records",
    "remember_process",
]

MAGIC = b"CWSPOOL1"
"""The first bytes of every spool file (format version 1)."""

_FRAME = struct.Struct("<II")
_MAX_RECORD = 64 * 1024 * 1024
"""No event is this large (values are truncated long before): a longer frame is damage, not data."""

Readable: TypeAlias = "bytes | mmap.mmap"
"""A spool file's bytes: read into memory, or mapped."""

_json = json.JSONEncoder(separators=(",", ":"), check_circular=False)
_decode = json.JSONDecoder().decode


@dataclass(frozen=True)
class SpoolHeader:
    """Who wrote a spool file, for ``code-wake spool`` and for the writer's own accounting."""

    writer: str
    """A token unique to the queue that wrote it: a queue replaying its own file counts it as its own."""
    pid: int
    created: float
    store: str
    """The store it waits for, as `Store.describe` puts it (no password)."""


def frame(payload: bytes) -> bytes:
    """One record: its length and CRC-32, then `payload`."""
    return _FRAME.pack(len(payload), zlib.crc32(payload)) + payload


def encode_header(header: SpoolHeader) -> bytes:
    """The start of a new spool file."""
    return MAGIC + frame(_json.encode(astuple(header)).encode("ascii"))


def read_header(data: Readable) -> tuple[SpoolHeader, int] | None:
    """The header of a spool file and where its records start; None if it is not a whole spool header."""
    if data[: len(MAGIC)] != MAGIC:
        return None
    for payload, end in read_records(data, len(MAGIC)):
        try:
            writer, pid, created, store = json.loads(payload)
            return SpoolHeader(str(writer), int(pid), float(created), str(store)), end
        except (ValueError, TypeError):
            return None
    return None


def read_records(data: Readable, offset: int) -> Iterator[tuple[bytes, int]]:
    """Each whole record's payload from `offset` on, with the offset just past it.

    Stops at the end, or at the first torn or damaged record: the caller
    compares the last offset with ``len(data)`` to know which.
    """
    size = len(data)
    header = _FRAME.size
    while offset + header <= size:
        length, crc = _FRAME.unpack_from(data, offset)
        start = offset + header
        end = start + length
        if length > _MAX_RECORD or end > size:
            return
        payload = data[start:end]
        if zlib.crc32(payload) != crc:
            return
        yield payload, end
        offset = end


# -- events ------------------------------------------------------------------------------------

_known_processes: dict[tuple[Any, ...], ProcessInfo] = {}
"""Every `ProcessInfo` this process spooled, by value: replaying its own events gives back the same
object, which stores cache by identity, so the process is registered once, not once more per replay."""

_process_json: dict[ProcessInfo, str] = {}
"""Each spooled `ProcessInfo` as JSON, made once: a program has a handful, and events repeat them."""


def _fields(info: ProcessInfo) -> tuple[Any, ...]:
    # Not dataclasses.astuple: it deep-copies, which cost 20 us an event here.
    return tuple(getattr(info, name) for name in _PROCESS_FIELDS)


_PROCESS_FIELDS = tuple(f.name for f in fields(ProcessInfo))


def remember_process(info: ProcessInfo) -> str:
    """Note `info` so that events spooled with it come back with this very object; its JSON."""
    found = _process_json.get(info)
    if found is None:
        values = _fields(info)
        _known_processes.setdefault(values, info)
        found = _process_json[info] = _json.encode(values)
    return found


def _process_of(value: Any) -> ProcessRef:
    if isinstance(value, int):
        return value
    key = tuple(value)
    found = _known_processes.get(key)
    if found is None:
        found = _known_processes.setdefault(key, ProcessInfo(*key))
    return found


def encode_event(event: PendingEvent) -> bytes:
    """One event as a record's payload."""
    process = event.process
    rest = _json.encode(
        (event.when_ts, event.data, event.frames, event.exc_type, event.exc_message, event.exc_chain)
    )
    head = remember_process(process) if isinstance(process, ProcessInfo) else str(int(process))
    return f"[{head},{rest[1:]}".encode("ascii")


def decode_event(payload: bytes) -> PendingEvent:
    """The event a record holds; ValueError (or TypeError) when it is not one."""
    process, when_ts, data, frames, exc_type, exc_message, chain = _decode(payload.decode("ascii"))
    return PendingEvent(
        _process_of(process),
        float(when_ts),
        tuple((str(key), value) for key, value in data),
        None if frames is None else tuple(RawFrame(*frame) for frame in frames),
        exc_type,
        exc_message,
        tuple((str(kind), str(message)) for kind, message in chain),
    )


def encode_events(events: Sequence[PendingEvent]) -> bytes:
    """Records for `events`, in order, as one piece to append."""
    return b"".join(frame(encode_event(event)) for event in events)
