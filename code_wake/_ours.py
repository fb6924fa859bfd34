"""Is this log record ours? The one place both doors (logging, structlog) ask.

A record or structlog call never becomes an event when:

- it comes from the store's own stack: loggers named in `IGNORED_LOGGERS`
  (code_wake's own reports, SQLAlchemy, the database drivers), or anything
  logged on a code_wake worker thread (the queue marks its writer with a
  ``code_wake_worker`` attribute);
- it is logged while this thread is already recording an event (re-entry:
  a synchronous store writing through SQLAlchemy, a ``__repr__`` that logs);
- it was already recorded by another door: the same `logging.LogRecord`
  reaching a second `CodeWakeHandler`, or the record a structlog call makes
  through stdlib logging after the `CodeWakeProcessor` recorded that call.

Everything here runs on the caller's thread for every log call, so the
state is one `threading.local` and the checks are attribute reads.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import weakref
from types import FrameType

from .stack_trace import package_dir

__all__ = [
    "IGNORED_LOGGERS",
    "claim_record",
    "enter",
    "ignored_logger",
    "leave",
    "note_structlog_call",
    "state",
]

IGNORED_LOGGERS: tuple[str, ...] = (
    "code_wake",
    "code_wake_sql14_store",
    "sqlalchemy",
    "psycopg",
    "psycopg2",
    "psycopg_pool",
    "pymysql",
    "MySQLdb",
    "sqlite3",
)
"""Loggers (and their children) whose records are never recorded.

code_wake reports its own problems on ``code_wake``; SQLAlchemy logs on
``sqlalchemy.*``; psycopg 3 on ``psycopg`` (and ``psycopg.pool``,
``psycopg.pq``, ...). PyMySQL, mysqlclient (``MySQLdb``) and ``sqlite3`` do
not log today; they are listed so that a version that starts to cannot loop.
"""

_DOTTED = tuple(name + "." for name in IGNORED_LOGGERS)
_DECIDED_MAX = 4096
_decided: dict[str, bool] = {}


_CODE_WAKE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "")
_LOGGING_DIR = os.path.join(os.path.dirname(os.path.abspath(logging.__file__)), "")
_STRUCTLOG_DIR = package_dir("structlog")


class _ThreadState(threading.local):
    """What one thread's doors are doing; `threading.local` runs __init__ once per thread."""

    def __init__(self) -> None:
        # The queue's writer thread is busy for good: nothing logged on it is recorded.
        self.busy = bool(getattr(threading.current_thread(), "code_wake_worker", False))
        self.structlog_recorded = False
        self.last_record: weakref.ref[logging.LogRecord] | None = None


state = _ThreadState()
"""This thread's state; the logging handler reads ``state.busy`` directly on its hot path."""


def ignored_logger(name: str | None) -> bool:
    """True when records of the logger `name` must never become events (see `IGNORED_LOGGERS`)."""
    if name is None:
        # Hand-made records (logging.makeLogRecord) may carry no name at all.
        return False
    known = _decided.get(name)
    if known is None:
        known = isinstance(name, str) and (name in IGNORED_LOGGERS or name.startswith(_DOTTED))
        if len(_decided) < _DECIDED_MAX:
            _decided[name] = known
    return known


def enter() -> bool:
    """Start recording on this thread; False (and nothing changed) when it must not.

    Every True must be paired with a `leave()` in a ``finally``.
    """
    thread = state
    if thread.busy:
        return False
    thread.busy = True
    return True


def leave() -> None:
    """End what `enter()` started."""
    state.busy = False


def note_structlog_call(recorded: bool) -> None:
    """Say whether the structlog call now running on this thread was recorded by the processor.

    The processor calls this for every call it sees, so the note always
    belongs to the latest structlog call of the thread.
    """
    state.structlog_recorded = recorded


def claim_record(record: logging.LogRecord) -> bool:
    """True when a handler should record `record`; from then on it is taken.

    False when this thread already recorded this very record (a second
    handler, or the same handler attached to two loggers on its way up), or
    when the record is the stdlib side of a structlog call the processor has
    recorded.
    """
    thread = state
    last = thread.last_record
    if last is not None and last() is record:
        return False
    taken = weakref.ref(record)
    if thread.structlog_recorded:
        thread.structlog_recorded = False
        if _logged_by_structlog(sys._getframe(1)):
            thread.last_record = taken
            return False
    thread.last_record = taken
    return True


def _logged_by_structlog(frame: FrameType | None) -> bool:
    """True when the logging call being handled was made by structlog's code.

    structlog routes a call to stdlib logging from ``_proxy_to_logger``, on
    the thread of the call, right after its processor chain ran: the first
    frame above logging's and code_wake's own is structlog's.
    """
    if _STRUCTLOG_DIR is None:
        return False
    while frame is not None and frame.f_code.co_filename.startswith((_LOGGING_DIR, _CODE_WAKE_DIR)):
        frame = frame.f_back
    return frame is not None and frame.f_code.co_filename.startswith(_STRUCTLOG_DIR)
