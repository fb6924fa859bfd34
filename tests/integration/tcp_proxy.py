"""A TCP proxy on 127.0.0.1 that can stop forwarding: a half-open connection, made to order.

While stalled it keeps every connection open and reads nothing, so the
client's kernel sees its bytes acknowledged (by the proxy's) and nothing
comes back: what a firewall or a hung load balancer does. TCP keepalive and
server-side timeouts cannot notice that; only the client can.

Muted after a marker (`mute_after`), it forwards what the client sends but
no longer what the server answers, from the moment the client sent the
marker: a COMMIT that the server carries out and whose answer never comes.
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import threading
from collections.abc import Iterator

__all__ = ["TcpProxy"]


class TcpProxy:
    """Forwards 127.0.0.1:`port` to `target`; `stall()` and `resume()` stop and restart forwarding."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._forwarding = threading.Event()
        self._forwarding.set()
        self._mute_marker: bytes | None = None
        self.muted = threading.Event()
        """Set once the marker went by: the server's answers are dropped from then on."""
        self._closed = threading.Event()
        self._sockets: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, name="test-tcp-proxy", daemon=True)
        self._thread.start()

    def stall(self) -> None:
        """Stop forwarding: connections stay open, bytes stay where they are."""
        self._forwarding.clear()

    def resume(self) -> None:
        """Forward again."""
        self._forwarding.set()

    def mute_after(self, marker: bytes) -> None:
        """Drop the server's answers from the moment a client sends `marker` (in one read) on."""
        self._mute_marker = marker

    def unmute(self) -> None:
        """Forward the server's answers again, and watch for no marker."""
        self._mute_marker = None
        self.muted.clear()

    def close(self) -> None:
        self._closed.set()
        self._forwarding.set()
        self._listener.close()
        for sock in list(self._sockets):
            with contextlib.suppress(OSError):
                sock.close()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            self._sockets += [client, upstream]
            threading.Thread(target=self._pump, args=(client, upstream), daemon=True).start()

    def _pump(self, client: socket.socket, upstream: socket.socket) -> None:
        """Copy both ways until either side closes; while stalled, read nothing."""
        peer = {client: upstream, upstream: client}
        with selectors.DefaultSelector() as selector:
            selector.register(client, selectors.EVENT_READ)
            selector.register(upstream, selectors.EVENT_READ)
            for ready in self._readable(selector):
                data = b""
                with contextlib.suppress(OSError):
                    data = ready.recv(65536)
                if not data:
                    break
                if ready is client and self._mute_marker is not None and self._mute_marker in data:
                    self.muted.set()
                if ready is upstream and self.muted.is_set():
                    continue
                try:
                    peer[ready].sendall(data)
                except OSError:
                    break
        for sock in (client, upstream):
            with contextlib.suppress(OSError):
                sock.close()

    def _readable(self, selector: selectors.BaseSelector) -> Iterator[socket.socket]:
        while not self._closed.is_set():
            if not self._forwarding.wait(0.2):
                continue
            for key, _ in selector.select(0.2):
                if self._forwarding.is_set():
                    yield key.fileobj  # type: ignore[misc]
