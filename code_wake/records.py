"""What a store hands back: plain, immutable records, usable long after the
database session that loaded them has closed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

__all__ = [
    "AppRecord",
    "AppVsnRecord",
    "DataItem",
    "EnvironmentRecord",
    "EventRecord",
    "ProcessInfo",
    "ProcessRecord",
    "StackframeRecord",
    "StacktraceRecord",
]


@dataclass(frozen=True, slots=True, eq=False)
class ProcessInfo:
    """Everything that identifies a running process before a store has seen it.

    `code_wake.Process` builds one at start (and again in a forked child); a
    store turns it into a `ProcessRecord` with `insert_process`. Equality is
    identity: each one is one run of a program, and stores cache by it.
    """

    pid: int
    username: str | None
    fqdn: str | None
    exe_path: str | None
    run_ts: float
    app_name: str
    app_vsn: str | None = None
    env_name: str | None = None


@dataclass(frozen=True, slots=True)
class EnvironmentRecord:
    """A stored environment (``production``, ``staging``, ...)."""

    id: int
    name: str


@dataclass(frozen=True, slots=True)
class AppRecord:
    """A stored application."""

    id: int
    name: str


@dataclass(frozen=True, slots=True)
class AppVsnRecord:
    """A stored version of one application (versions belong to their app)."""

    id: int
    vsn: str
    app: AppRecord


@dataclass(frozen=True, slots=True)
class ProcessRecord:
    """A stored process: one run of one program."""

    id: int
    pid: int | None
    username: str | None
    fqdn: str | None
    exe_path: str | None
    run_ts: float
    app: AppRecord
    app_vsn: AppVsnRecord | None
    environment: EnvironmentRecord | None


@dataclass(frozen=True, slots=True)
class StackframeRecord:
    """One frame of a stored stack trace.

    A frame whose ``filename`` is ``<cause>`` or ``<context>`` is not code: it
    marks where a chained exception's frames end, and its ``src`` holds that
    exception's type (see docs/stores.md).
    """

    filename: str
    lineno: int
    src: str | None
    function: str | None = None


@dataclass(frozen=True, slots=True)
class StacktraceRecord:
    """A stored, deduplicated stack trace; ``stackframes[0]`` is innermost."""

    id: int
    digest: bytes
    stackframes: tuple[StackframeRecord, ...]


class DataItem(NamedTuple):
    """One key/value pair of an event's data (keys may repeat in an event).

    A named tuple: stores build one per value of every event they write or
    read, and a tuple is several times cheaper to build than a dataclass.
    """

    key: str
    val: str | None


@dataclass(frozen=True, slots=True)
class EventRecord:
    """A stored event."""

    id: int
    when_ts: float
    process: ProcessRecord
    data: tuple[DataItem, ...] = ()
    stacktrace: StacktraceRecord | None = None
    exc_type: str | None = None
    exc_message: str | None = None
    digest: bytes | None = field(default=None, repr=False)
    exc_chain: tuple[tuple[str, str], ...] = ()
    """The chained causes and contexts as ``(type, message)``, outermost first (schema 3; older: empty)."""

    def data_dict(self) -> dict[str, str | None]:
        """The data as a dict; where a key repeats, its last value wins."""
        return {item.key: item.val for item in self.data}
