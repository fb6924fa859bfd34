"""Crashes nobody logged: the uncaught-exception hooks, and the exit scan for failed asyncio tasks.

Once code_wake is configured (a `code_wake.Process` created, a
`code_wake.CodeWakeHandler` made), `arm` installs, once per interpreter:

- ``sys.excepthook`` (the main thread; also ``asyncio.run(main())`` whose
  ``main`` raised, since ``asyncio.run`` re-raises it there),
- ``threading.excepthook`` (other threads),
- ``sys.unraisablehook`` (``__del__``, finalizers, a generator's cleanup),
- asyncio's ``BaseEventLoop.call_exception_handler`` (a failed task garbage
  collected, a failing callback), wrapped at class level so that a loop's own
  ``set_exception_handler`` (installed after us) is still what handles it,
- an ``atexit`` scan for asyncio futures that failed and were kept alive until
  exit: their exception is never reported otherwise before the store closes.

Each hook records one event, then calls the hook that was there before, so
the program prints what it printed before; none raises. An exception is
recorded once: a hook skips one a door already recorded (the app logged it,
then let it go), and a door skips one a hook recorded (asyncio's default
handler logs the exception the hook has just recorded). docs/crashes.md is
the user's description.
"""

from __future__ import annotations

import atexit
import contextlib
import gc
import sys
import threading
from collections.abc import Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any

from . import _ours
from . import queue_store as _queue_store

if TYPE_CHECKING:
    from .process import Process

__all__ = ["HOOKS", "arm", "is_armed", "note_logged", "recorded_as_uncaught"]

HOOKS = ("sys.excepthook", "threading.excepthook", "sys.unraisablehook", "asyncio")
"""The ``hook`` values a crash event carries: which hook saw it."""

_MARK = "_code_wake_recorded"
"""Attribute set on an exception once it is recorded: ``"logged"`` by a door, ``"uncaught"`` by a hook."""

_installed = threading.Event()
_arm_lock = threading.Lock()


def arm() -> None:
    """Install the hooks, once per interpreter (a hook replaced since is not put back)."""
    with _arm_lock:
        if _installed.is_set():
            return
        _installed.set()
        _install()


def is_armed() -> bool:
    """True once the hooks are installed in this interpreter."""
    return _installed.is_set()


def note_logged(exc: BaseException) -> bool:
    """Called by `Process.log` for each exception it records; False when a hook already recorded it.

    Marks `exc` so that a hook does not record it again when it goes on to
    crash the program.
    """
    if getattr(exc, _MARK, None) == "uncaught":
        return False
    _set_mark(exc, "logged")
    return True


def recorded_as_uncaught(exc: BaseException) -> bool:
    """True when a crash hook recorded `exc`."""
    return getattr(exc, _MARK, None) == "uncaught"


def _set_mark(exc: BaseException, value: str) -> None:
    # An exception class with __slots__ and no __dict__ cannot be marked: it may be recorded twice.
    with contextlib.suppress(AttributeError, TypeError):
        setattr(exc, _MARK, value)


# -- recording ---------------------------------------------------------------------------------------


def record_crash(exc: BaseException | None, hook: str, extra: Mapping[str, object] | None = None) -> None:
    """Record `exc` as an uncaught exception seen by `hook`; never raises."""
    if exc is None or isinstance(exc, KeyboardInterrupt) or getattr(exc, _MARK, None) is not None:
        return
    if not _ours.enter():
        # Raised while code_wake was recording on this thread, or on its writer: not the app's crash.
        return
    try:
        _record(exc, hook, extra or {})
    except BaseException:  # noqa: BLE001, S110 - a hook must never raise; the previous hook still prints it
        pass
    finally:
        _ours.leave()


def _find_process() -> Process | None:
    """The live Process, else the one a handler's settings configure; None if code_wake is not set up."""
    # Imported here: code_wake.logging imports process.py, which imports this module.
    from .logging import _process_for_crash

    return _process_for_crash()


def _record(exc: BaseException, hook: str, extra: Mapping[str, object]) -> None:
    process = _find_process()
    if process is None or not process.record_crashes:
        return
    data: dict[str, object] = {"uncaught": "true", "hook": hook, "thread": _thread_name()}
    data.update(extra)
    process.log(data, exc, inc_st=True)
    _set_mark(exc, "uncaught")


def _thread_name() -> str:
    try:
        return threading.current_thread().name
    except Exception:  # noqa: BLE001 - at interpreter shutdown anything may be gone
        return "?"


# -- the hooks ---------------------------------------------------------------------------------------


def _install() -> None:
    previous_excepthook = sys.excepthook
    previous_threading = threading.excepthook
    previous_unraisable = sys.unraisablehook

    def excepthook(exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
        """code_wake's sys.excepthook: record the crash, then what was there before prints it."""
        record_crash(exc, "sys.excepthook")
        previous_excepthook(exc_type, exc, tb)

    def threading_excepthook(args: threading.ExceptHookArgs) -> None:
        """code_wake's threading.excepthook: record the thread's crash, then the previous hook."""
        if not isinstance(args.exc_value, SystemExit):  # threading ignores SystemExit silently
            thread = {"thread": args.thread.name} if args.thread is not None else {}
            record_crash(args.exc_value, "threading.excepthook", thread)
        previous_threading(args)

    def unraisablehook(unraisable: Any) -> None:
        """code_wake's sys.unraisablehook: record the exception of a __del__ or finalizer."""
        record_crash(unraisable.exc_value, "sys.unraisablehook", _unraisable_data(unraisable))
        previous_unraisable(unraisable)

    sys.excepthook = excepthook
    threading.excepthook = threading_excepthook
    sys.unraisablehook = unraisablehook
    _wrap_asyncio()
    # Registered after the queue's exit flush (imported above), so atexit runs it first.
    atexit.register(_record_failed_futures_at_exit)
    assert _queue_store  # the import is for the atexit order


def _unraisable_data(unraisable: Any) -> dict[str, object]:
    data: dict[str, object] = {}
    if unraisable.err_msg:
        data["message"] = unraisable.err_msg
    if unraisable.object is not None:
        data["object"] = _safe_repr(unraisable.object)
    return data


def _safe_repr(value: object) -> str:
    try:
        return repr(value)
    except Exception:  # noqa: BLE001 - an object being finalised may be half torn down
        return f"<{type(value).__name__} object>"


# -- asyncio -----------------------------------------------------------------------------------------


def _wrap_asyncio() -> None:
    """Wrap ``BaseEventLoop.call_exception_handler``; loops not built on it (uvloop) are not seen."""
    from asyncio import base_events  # SQLAlchemy imports asyncio anyway

    loop_class: Any = base_events.BaseEventLoop
    original = loop_class.call_exception_handler

    def call_exception_handler(self: Any, context: dict[str, Any]) -> None:
        exc = context.get("exception")
        if isinstance(exc, BaseException):
            record_crash(exc, "asyncio", _asyncio_data(context))
        original(self, context)

    call_exception_handler.__wrapped__ = original  # type: ignore[attr-defined]
    loop_class.call_exception_handler = call_exception_handler


def _asyncio_data(context: Mapping[str, Any]) -> dict[str, object]:
    data: dict[str, object] = {}
    if context.get("message"):
        data["message"] = str(context["message"])
    future = context.get("future") or context.get("task")
    get_name = getattr(future, "get_name", None)
    if callable(get_name):
        data["task"] = str(get_name())
    return data


def _record_failed_futures_at_exit() -> None:
    """Record the asyncio futures that failed and that nobody asked for their result.

    asyncio reports such a future only when it is garbage-collected; one kept
    alive until exit is collected after the store has closed, or never. The
    exception is read without retrieving it, so asyncio still prints its
    "exception was never retrieved" where it did before.
    """
    asyncio = sys.modules.get("asyncio")
    if asyncio is None:
        return
    for future in _failed_futures(asyncio.Future):
        message = f"{type(future).__name__} exception was never retrieved"
        record_crash(future._exception, "asyncio", _asyncio_data({"message": message, "future": future}))


def _failed_futures(future_class: type[Any]) -> list[Any]:
    try:
        return [
            obj
            for obj in gc.get_objects()
            if isinstance(obj, future_class)
            and getattr(obj, "_log_traceback", False)
            and isinstance(getattr(obj, "_exception", None), BaseException)
        ]
    except Exception:  # noqa: BLE001 - at exit: report nothing rather than fail
        return []
