"""A structlog app with both doors: structlog's calls and the libraries' stdlib logging.

The recommended setup of docs/structlog.md: structlog routed through stdlib
logging and rendered by ``ProcessorFormatter``; `CodeWakeProcessor` in
structlog's chain records structlog's calls (with their bound and context
variables); a `CodeWakeHandler` on the root logger records what the
libraries log. Each log call becomes exactly one event.

    python examples/structlog_app.py [DATABASE_URL]

The default database is ``structlog_app.sqlite`` in the current directory.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog

import code_wake
from code_wake.logging import CodeWakeHandler
from code_wake.structlog import CodeWakeProcessor
from code_wake_sql14_store import Sql14QueueStore

SHARED: list[Any] = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
]
"""Processors both structlog's calls and foreign (stdlib) records go through."""


def configure(database_url: str) -> None:
    """code_wake once, then structlog and logging; both doors record through the same Process."""
    code_wake.Process(
        app_name="structlog-shop",
        app_vsn="1.0.0",
        env_name="example",
        store=Sql14QueueStore(database_url),
    )
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *SHARED,
            CodeWakeProcessor(level="warning"),
            structlog.stdlib.PositionalArgumentsFormatter(),
            structlog.processors.TimeStamper(fmt="iso"),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    console = logging.StreamHandler(sys.stdout)
    console.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=SHARED,
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.dev.ConsoleRenderer(colors=False),
            ],
        )
    )
    root = logging.getLogger()
    root.addHandler(console)
    root.addHandler(CodeWakeHandler(level="WARNING"))
    root.setLevel(logging.INFO)


class PaymentDeclined(Exception):
    """Raised by the payment provider."""


def charge(customer: str, amount: float) -> None:
    if amount > 100:
        raise PaymentDeclined(f"card of {customer} declined for {amount}")


def checkout(customer: str, amount: float) -> None:
    structlog.contextvars.bind_contextvars(request_id=f"req-{customer}")
    log = structlog.get_logger("shop.checkout").bind(customer=customer)
    log.info("checkout started", amount=amount)
    if amount > 50:
        log.warning("large order", amount=amount)
        # A library of the app, logging through stdlib logging:
        logging.getLogger("shop.fraud").warning("manual review for %s", customer)
    try:
        charge(customer, amount)
    except PaymentDeclined:
        log.exception("payment failed", amount=amount)
    structlog.contextvars.clear_contextvars()


def main(argv: list[str]) -> None:
    configure(argv[0] if argv else "sqlite:///structlog_app.sqlite")
    checkout("c1", 20.0)
    checkout("c42", 250.0)


if __name__ == "__main__":
    main(sys.argv[1:])
