"""Cutting a write whose connection stopped answering: the read timeout psycopg lacks.

A connection can die without the operating system noticing: a firewall or
proxy that stops forwarding keeps the TCP connection open and acknowledges
every byte, so neither TCP keepalive nor the server's statement timeout
(the server never sees the statement) ends the wait, and libpq has no read
timeout. The writer thread would wait forever, holding its batch. A
`StallGuard` gives every write transaction a time limit: past it, the
socket is shut down under the driver, whose blocked read then fails as a
lost connection; SQLAlchemy invalidates the connection, and the write is
retried on a fresh one (`_database.transient`).
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa

__all__ = ["WRITE_STALL_SECONDS", "StallGuard", "socket_fd"]

WRITE_STALL_SECONDS = 15.0
"""How long one write transaction may wait on the server before its connection is cut.

A batch takes milliseconds on a healthy server; a lock wait cut here is
retried like any transient error.
"""


def socket_fd(dbapi: Any) -> int | None:
    """The file descriptor of a DBAPI connection's socket (psycopg, psycopg2, PyMySQL); None for SQLite."""
    fileno = getattr(dbapi, "fileno", None)
    if fileno is None:
        # PyMySQL keeps its socket private; the attribute has kept its name since 0.x.
        sock = getattr(dbapi, "_sock", None)
        fileno = getattr(sock, "fileno", None)
    if fileno is None:
        return None
    try:
        fd = fileno()
    except Exception:  # noqa: BLE001 - a closed or odd connection: nothing to guard
        return None
    return fd if isinstance(fd, int) and fd >= 0 else None


class _Watch:
    """One guarded transaction: the timer may cut it only while it is still running."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.lock = threading.Lock()
        self.running = True
        self.cut = False

    def fire(self) -> None:
        # Under the lock: once the transaction has ended, its fd may belong to someone else.
        with self.lock:
            if self.running:
                self.cut = _shut_down(self.fd)

    def end(self) -> None:
        with self.lock:
            self.running = False


def _shut_down(fd: int) -> bool:
    """Shut the socket down for both directions, on a duplicate so the driver still owns and closes `fd`."""
    try:
        sock = socket.socket(fileno=os.dup(fd))
    except OSError:
        return False
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        return False
    finally:
        sock.close()
    return True


class StallGuard:
    """Time limits for write transactions on a server database (a no-op where there is no socket)."""

    def __init__(self, seconds: float = WRITE_STALL_SECONDS) -> None:
        self.seconds = seconds
        self.cuts = 0
        """How many connections were cut so far."""

    def guard_pings(self, engine: sa.Engine) -> None:
        """Put SQLAlchemy's pre-ping of a pooled connection under the guard too.

        The ping runs inside ``engine.connect()``, before `watching` can see the
        connection, and a ping on a half-open connection waits as long as any read.
        """
        dialect = engine.dialect
        ping: Callable[[Any], bool] = dialect.do_ping

        def guarded_ping(dbapi_connection: Any) -> bool:
            with self.watching(dbapi_connection):
                return ping(dbapi_connection)

        # An attribute of this engine's own dialect instance: no other engine is affected.
        dialect.do_ping = guarded_ping  # type: ignore[method-assign]

    @contextmanager
    def watching(self, dbapi_connection: Any) -> Iterator[None]:
        """Cut the connection's socket if the block is still running `seconds` from now."""
        fd = socket_fd(dbapi_connection) if self.seconds > 0 else None
        if fd is None:
            yield
            return
        watch = _Watch(fd)
        timer = threading.Timer(self.seconds, watch.fire)
        timer.daemon = True
        timer.name = "code_wake-stall-guard"
        try:
            timer.start()
        except RuntimeError:
            # Python 3.12 starts no thread at interpreter shutdown: the exit flush writes unguarded
            # rather than not at all.
            yield
            return
        try:
            yield
        finally:
            watch.end()
            timer.cancel()
            if watch.cut:
                self.cuts += 1
