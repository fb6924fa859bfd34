"""gunicorn's configuration: code_wake records the app's warnings and gunicorn's own errors.

gunicorn's error log (``gunicorn.error``: "Error handling request", "WORKER
TIMEOUT", a worker that failed to boot) does not propagate to the root
logger, so the handler is named on it as well as on the root logger. The
handler is made in the master, before the workers fork; each worker records
as its own process.
"""

import os

_handler = {
    "class": "code_wake.logging.CodeWakeHandler",
    "level": "WARNING",
    "store_config": os.environ.get("SHOP_EVENTS_URL", "sqlite:///gunicorn_app.sqlite"),
    "app_name": "gunicorn-shop",
    "env_name": "test",
}

logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {
        "code_wake": _handler,
        "console": {"class": "logging.StreamHandler", "stream": "ext://sys.stderr"},
    },
    "root": {"level": "INFO", "handlers": ["code_wake", "console"]},
    "loggers": {
        "gunicorn.error": {"level": "INFO", "handlers": ["code_wake", "console"], "propagate": False},
        "gunicorn.access": {"level": "INFO", "handlers": ["console"], "propagate": False},
    },
}
workers = 2
