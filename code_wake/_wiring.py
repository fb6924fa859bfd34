"""The handlers made so far, for the doors that need a Process before any handler has recorded.

``dictConfig`` makes a `code_wake.CodeWakeHandler` long before its first
record. If the first event comes from another door (the structlog
processor, a crash hook), the Process it creates must be the one that
handler's arguments describe, not one built from the configuration alone
(which would leave the handler's store unused). So every handler is noted
here when made; `code_wake.logging._door_process` asks for them.
"""

from __future__ import annotations

import threading
import weakref
from typing import Any

__all__ = ["arm", "armed_handlers", "forget"]

_lock = threading.Lock()
_handlers: list[weakref.ref[Any]] = []


def arm(handler: object) -> None:
    """Note `handler` (a CodeWakeHandler), in the order handlers are made."""
    with _lock:
        _handlers.append(weakref.ref(handler))


def armed_handlers() -> list[Any]:
    """The noted handlers still alive and not closed, oldest first."""
    with _lock:
        _handlers[:] = [ref for ref in _handlers if ref() is not None]
        alive = [ref() for ref in _handlers]
    return [h for h in alive if h is not None and not getattr(h, "_closed", False)]


def forget() -> None:
    """Forget every handler noted so far (`Process.reset`: a program that reconfigures starts over)."""
    with _lock:
        _handlers.clear()
