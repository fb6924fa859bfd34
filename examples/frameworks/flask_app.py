"""A Flask app recording its warnings and unhandled exceptions with code_wake.

    python examples/frameworks/flask_app.py DATABASE_URL   # two requests through Flask's test client

Flask logs an unhandled exception on ``app.logger`` (named after the app),
which propagates to the root logger: one ``dictConfig`` before the app is
made is all it takes. docs/frameworks.md explains it; the tests run this file.
"""

from __future__ import annotations

import logging
import logging.config
import sys

from flask import Flask, request

DATABASE_URL = sys.argv[1] if len(sys.argv) > 1 else "sqlite:///flask_app.sqlite"

logging.config.dictConfig(
    {
        "version": 1,
        "disable_existing_loggers": False,
        "handlers": {
            "code_wake": {
                "class": "code_wake.logging.CodeWakeHandler",
                "store_config": DATABASE_URL,
                "app_name": "flask-shop",
                "env_name": "test",
            },
        },
        "root": {"level": "INFO", "handlers": ["code_wake"]},
    }
)

app = Flask("shop")


@app.get("/order")
def order() -> tuple[str, int]:
    app.logger.warning("unknown item %r", request.args.get("item"))
    return "no such item", 404


@app.get("/crash")
def crash() -> str:
    raise RuntimeError("the view failed")


if __name__ == "__main__":
    client = app.test_client()
    print(client.get("/order?item=scone").status_code)
    print(client.get("/crash").status_code)
