"""A small WSGI shop wired to code_wake by ``logging.config.dictConfig`` alone.

No code_wake call and no config file: the ``code_wake`` handler's entry in
the logging configuration names the store, the app, its version and the
environment. The app logs as any app does, and its warnings and exceptions
become events.

    python examples/dictconfig_app.py [DATABASE_URL]          # a few requests, then exit
    python examples/dictconfig_app.py [DATABASE_URL] --serve  # serve on http://127.0.0.1:8000

The default database is ``dictconfig_app.sqlite`` in the current directory;
``code-wake`` or `code_wake_sql14_store.Sql14Store` reads it back.
"""

from __future__ import annotations

import logging
import logging.config
import sys
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qs
from wsgiref.simple_server import make_server
from wsgiref.util import setup_testing_defaults

StartResponse = Callable[[str, list[tuple[str, str]]], Any]

STOCK = {"tea": 10, "cake": 2}

log = logging.getLogger("shop.orders")


def logging_config(database_url: str) -> dict[str, Any]:
    """The app's whole logging configuration: the console, and code_wake for warnings and up."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"console": {"format": "%(levelname)-8s %(name)s: %(message)s"}},
        "handlers": {
            "console": {
                "class": "logging.StreamHandler",
                "formatter": "console",
                "stream": "ext://sys.stdout",
            },
            "code_wake": {
                "class": "code_wake.logging.CodeWakeHandler",
                "level": "WARNING",
                "store": "code_wake_sql14_store,Sql14Store",
                "store_config": database_url,
                "app_name": "dictconfig-shop",
                "app_vsn": "1.0.0",
                "env_name": "example",
            },
        },
        "root": {"level": "INFO", "handlers": ["console", "code_wake"]},
    }


class OutOfStock(Exception):
    """Raised when an order asks for more than there is."""


def reserve(item: str, quantity: int) -> None:
    if quantity > STOCK.get(item, 0):
        raise OutOfStock(f"{item}: wanted {quantity}, have {STOCK.get(item, 0)}")
    STOCK[item] -= quantity


def order(query: dict[str, list[str]]) -> tuple[str, str]:
    item, quantity = query.get("item", [""])[0], int(query.get("qty", ["1"])[0])
    customer = query.get("customer", ["anonymous"])[0]
    if item not in STOCK:
        log.warning("unknown item %r", item, extra={"customer": customer})
        return "404 Not Found", "no such item\n"
    try:
        reserve(item, quantity)
    except OutOfStock:
        log.exception("order of %s failed", item, extra={"customer": customer, "quantity": quantity})
        return "409 Conflict", "out of stock\n"
    log.info("ordered %d x %s", quantity, item)
    return "200 OK", "ordered\n"


def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    """The WSGI application: ``/order?item=tea&qty=2&customer=c42``."""
    if environ.get("PATH_INFO") == "/order":
        status, body = order(parse_qs(environ.get("QUERY_STRING", "")))
    else:
        status, body = "404 Not Found", "try /order?item=tea\n"
    start_response(status, [("Content-Type", "text/plain; charset=utf-8")])
    return [body.encode()]


def request(path: str, query: str) -> str:
    """Send one request through the app in-process; its status line."""
    environ: dict[str, Any] = {"PATH_INFO": path, "QUERY_STRING": query}
    setup_testing_defaults(environ)
    statuses: list[str] = []
    b"".join(app(environ, lambda status, headers: statuses.append(status)))
    return statuses[0]


def main(argv: list[str]) -> None:
    args = [a for a in argv if a != "--serve"]
    logging.config.dictConfig(logging_config(args[0] if args else "sqlite:///dictconfig_app.sqlite"))
    if "--serve" in argv:
        with make_server("127.0.0.1", 8000, app) as server:
            print("serving on http://127.0.0.1:8000/order?item=tea")
            server.serve_forever()
        return
    for query in ("item=tea&qty=2&customer=c1", "item=cake&qty=5&customer=c42", "item=scone&customer=c7"):
        print(f"/order?{query} -> {request('/order', query)}")


if __name__ == "__main__":
    main(sys.argv[1:])
