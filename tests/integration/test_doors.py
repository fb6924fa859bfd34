"""The logging and structlog doors in real programs: the examples, exit, reconfiguration, SQL logging."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from .helpers import REPO, rows, run_python, values_of

PRELUDE = """\
import logging, logging.config, os, sys


def config(level="WARNING", flush_timeout=5.0):
    return {{
        "version": 1,
        "disable_existing_loggers": False,
        "handlers": {{
            "code_wake": {{
                "class": "code_wake.logging.CodeWakeHandler",
                "level": level,
                "store_config": {url!r},
                "app_name": "doors",
                "flush_timeout": flush_timeout,
            }},
        }},
        "root": {{"level": "INFO", "handlers": ["code_wake"]}},
        "loggers": {{"sqlalchemy.engine": {{"level": "INFO"}}}},
    }}

"""


def program(url: str, body: str) -> str:
    """A script: `PRELUDE` (its ``config()`` naming the store at `url`), then `body`."""
    return PRELUDE.format(url=url) + textwrap.dedent(body)


def run_example(name: str, url: str, cwd: Path) -> str:
    done = subprocess.run(
        [sys.executable, str(REPO / "examples" / name), url],
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def by_message(url: str) -> dict[str, tuple[str | None, str]]:
    """Each stored event's message, with its exception type and app name."""
    found = rows(
        url,
        "SELECT d.val, e.exc_type, a.name FROM events e JOIN events_data d ON d.event_id = e.id "
        "JOIN processes p ON p.id = e.process_id JOIN apps a ON a.id = p.app_id WHERE d.key = 'message'",
    )
    messages = [str(m) for m, _, _ in found]
    assert len(messages) == len(set(messages)), f"an event was recorded twice: {messages}"
    return {str(m): (None if t is None else str(t), str(a)) for m, t, a in found}


class TestExamples:
    """The examples run as they are and record what they say."""

    def test_dictconfig_app(self, tmp_path: Path, sqlite_url: str) -> None:
        """The WSGI app configured by dictConfig alone records its warning and its exception, not its info."""
        out = run_example("dictconfig_app.py", sqlite_url, tmp_path)
        assert "409 Conflict" in out
        assert by_message(sqlite_url) == {
            "order of cake failed": ("__main__.OutOfStock", "dictconfig-shop"),
            "unknown item 'scone'": (None, "dictconfig-shop"),
        }

    def test_structlog_app(self, tmp_path: Path, sqlite_url: str) -> None:
        """The structlog app with both doors records each call once, structlog's and the library's."""
        out = run_example("structlog_app.py", sqlite_url, tmp_path)
        assert "PaymentDeclined: card of c42 declined" in out
        assert by_message(sqlite_url) == {
            "large order": (None, "structlog-shop"),
            "manual review for c42": (None, "structlog-shop"),
            "payment failed": ("__main__.PaymentDeclined", "structlog-shop"),
        }
        bound = rows(sqlite_url, "SELECT val FROM events_data WHERE key = 'request_id'")
        assert bound == [("req-c42",), ("req-c42",)]


class TestExit:
    """Programs that log through the handler exit promptly with their events written."""

    def test_logging_shutdown_flushes_the_queue(self, tmp_path: Path, sqlite_url: str) -> None:
        """logging.shutdown() writes what is queued, even when the program then leaves through os._exit."""
        body = """
            logging.config.dictConfig(config())
            for n in range(300):
                logging.getLogger("app").warning("event %d", n)
            logging.shutdown()
            os._exit(0)
        """
        run_python(program(sqlite_url, body), tmp_path)
        assert rows(sqlite_url, "SELECT count(*) FROM events") == [(300,)]

    def test_exit_without_shutdown(self, tmp_path: Path, sqlite_url: str) -> None:
        """A program that just ends has its events written at exit, and does end."""
        body = """
            logging.config.dictConfig(config())
            for n in range(300):
                logging.getLogger("app").error("event %d", n)
        """
        run_python(program(sqlite_url, body), tmp_path)
        assert rows(sqlite_url, "SELECT count(*) FROM events") == [(300,)]

    def test_second_dict_config_while_the_writer_logs(self, tmp_path: Path, sqlite_url: str) -> None:
        """dictConfig again and again while the writer logs its SQL at INFO: no deadlock, nothing lost."""
        body = """
            for round in range(5):
                logging.config.dictConfig(config("INFO"))
                for n in range(200):
                    logging.getLogger("app").info("round %d event %d", round, n)
        """
        # A deadlock detector, not a timing assertion: a flush waiting under dictConfig's lock
        # for a writer that waits for that lock costs its whole deadline at every reconfiguration.
        run_python(program(sqlite_url, body), tmp_path, timeout=15)
        assert rows(sqlite_url, "SELECT count(*) FROM events") == [(1000,)]
        assert values_of(sqlite_url, "logger") == {"app": 1000}


class TestNoRecursion:
    """SQLAlchemy logging at INFO through a root logger that has the handler."""

    def test_sqlalchemy_info_on_the_root_logger(self, tmp_path: Path, sqlite_url: str) -> None:
        """The store's SQL logging is printed by other handlers but never recorded, and the program ends."""
        body = """
            logging.config.dictConfig(config("INFO", flush_timeout=30))
            logging.getLogger().addHandler(logging.StreamHandler(sys.stdout))
            for n in range(50):
                logging.getLogger("app.worker").info("job %d done", n)
            logging.shutdown()
        """
        # A deadlock detector: a handler that took its lock for the writer's SQL records would
        # block the writer while logging.shutdown() holds that lock and waits for the writer.
        out = run_python(program(sqlite_url, body), tmp_path, timeout=15)
        assert "INSERT INTO events" in out
        assert values_of(sqlite_url, "logger") == {"app.worker": 50}


def test_a_handler_imports_its_store_when_made_not_on_the_first_record(tmp_path: Path) -> None:
    """dictConfig time pays for importing SQLAlchemy and the driver, not the first request that logs."""
    out = run_python(
        f"""
        import logging.config, sys
        logging.config.dictConfig({{
            "version": 1,
            "handlers": {{"wake": {{"class": "code_wake.CodeWakeHandler", "store_config": "sqlite:///{tmp_path}/e.sqlite"}}}},
            "root": {{"handlers": ["wake"]}},
        }})
        print("code_wake_sql14_store" in sys.modules, "sqlalchemy" in sys.modules)
        """,
        tmp_path,
    )
    assert out.split() == ["True", "True"]
