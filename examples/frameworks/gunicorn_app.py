"""A WSGI app served by gunicorn; gunicorn.conf.py beside it wires code_wake into gunicorn's logging.

    gunicorn -c examples/frameworks/gunicorn.conf.py examples.frameworks.gunicorn_app:app

The database URL comes from ``SHOP_EVENTS_URL`` (the config file reads it).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

StartResponse = Callable[[str, list[tuple[str, str]]], Any]


def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    if environ["PATH_INFO"] == "/crash":
        # Unhandled: gunicorn logs "Error handling request /crash" on gunicorn.error, with the exception.
        raise RuntimeError("the app failed")
    logging.getLogger("shop.orders").warning("unknown item")
    start_response("404 Not Found", [("Content-Type", "text/plain")])
    return [b"no such item\n"]
