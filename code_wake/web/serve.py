"""``code-wake serve``: the web view on its own, served by waitress.

The command opens the store as every ``code-wake`` command does (cli.py
hands `run` the store it opened and checked), then listens on 127.0.0.1
unless told otherwise. Another address needs a token (``--token``, or the
``CODE_WAKE_WEB_TOKEN`` variable, which unlike an argument does not show in
``ps``): every request must then carry it. Werkzeug, Jinja2 and waitress are
imported only here, when the command runs.
"""

from __future__ import annotations

import argparse
import os
import socket
from typing import TYPE_CHECKING, Any, TextIO

from code_wake._values import whole_number_argument
from code_wake.errors import CodeWakeError

from . import require_dependencies

if TYPE_CHECKING:
    from code_wake.store import Store

__all__ = ["DEFAULT_HOST", "DEFAULT_PORT", "TOKEN_VARIABLE", "ServeError", "add_options", "check_host", "run"]

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
TOKEN_VARIABLE = "CODE_WAKE_WEB_TOKEN"  # noqa: S105 - the variable's name, not a secret
"""The environment variable that gives the token when ``--token`` does not."""


class ServeError(CodeWakeError):
    """Raised when the web view cannot start: an open address without a token, a port in use,
    a missing dependency. The command prints it as one line."""


def _port(text: str) -> int:
    try:
        number = int(text)
    except ValueError:
        number = -1
    if not 0 <= number <= 65_535:
        raise argparse.ArgumentTypeError(
            f"expected a port number (0-65535; 0 picks a free one), got {text!r}"
        )
    return number


_threads = whole_number_argument(1, "a number of threads (1 or more)")


def add_options(parser: argparse.ArgumentParser) -> None:
    """The options of ``code-wake serve``."""
    group = parser.add_argument_group("serving")
    group.add_argument(
        "--host",
        default=DEFAULT_HOST,
        help=f"the address to listen on (default {DEFAULT_HOST}: this machine only); any other needs a token",
    )
    group.add_argument(
        "--port", type=_port, default=DEFAULT_PORT, help=f"the port (default {DEFAULT_PORT}; 0: a free one)"
    )
    group.add_argument(
        "--token",
        help=f"the credential every request must carry (default ${TOKEN_VARIABLE}, which ps does not show): "
        "the password of HTTP basic auth, or Authorization: Bearer TOKEN",
    )
    group.add_argument("--threads", type=_threads, default=4, help="requests answered at once (default 4)")


def _addresses(host: str, port: int) -> list[tuple[Any, ...]]:
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise ServeError(f"cannot listen on {host!r}: {exc}") from None
    return [(family, address) for family, _, _, _, address in found]


def check_host(host: str, token: str | None) -> None:
    """Refuse to listen beyond this machine without a token."""
    from ._app import is_loopback

    if token:
        return
    if any(not is_loopback(address[0]) for _, address in _addresses(host, 0)):
        raise ServeError(
            f"refusing to serve on {host}, which other machines can reach, without a token: "
            f"give --token TOKEN or set {TOKEN_VARIABLE} (or listen on {DEFAULT_HOST})"
        )


def _listen(host: str, port: int) -> socket.socket:
    family, address = _addresses(host, port)[0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError as exc:
        sock.close()
        raise ServeError(f"cannot listen on {host} port {port}: {exc.strerror or exc}") from None
    return sock


def _url(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/"


def run(args: argparse.Namespace, store: Store, out: TextIO) -> int:
    """Serve the web view of `store` until interrupted."""
    token = args.token or os.environ.get(TOKEN_VARIABLE) or None
    check_host(args.host, token)
    try:
        require_dependencies("werkzeug", "jinja2", "waitress")
    except ImportError as exc:
        raise ServeError(str(exc)) from None
    from waitress.server import create_server

    from ._app import WebApp

    sock = _listen(args.host, args.port)
    server = create_server(
        WebApp(store, token=token), sockets=[sock], threads=args.threads, ident="code_wake"
    )
    out.write(f"code_wake web view of {store.describe()}\n")
    out.write(f"Open {_url(sock)} in a browser (Ctrl-C stops it).\n")
    out.flush()
    try:
        server.run()  # returns on Ctrl-C: waitress catches the KeyboardInterrupt and closes
    except KeyboardInterrupt:  # pragma: no cover - raised between waitress's loop and its catch
        pass
    finally:
        server.close()
    out.write("Stopped.\n")
    return 0
