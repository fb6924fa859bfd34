"""Every documented wiring of the doors, in every order of configuration and first use, in real programs.

Each program configures stdlib logging one documented way and structlog one
documented way, in either order, then makes one stdlib call and one structlog
call, in either order. Both must be stored, once, in the store the handler
names, and no record may be refused.
"""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from .helpers import REPO, rows

HANDLERS = {
    "dictconfig-class": """
        logging.config.dictConfig({
            "version": 1,
            "disable_existing_loggers": False,
            "handlers": {"code_wake": {
                "class": "code_wake.logging.CodeWakeHandler",
                "level": "WARNING",
                "store": "code_wake_sql14_store,Sql14Store",
                "store_config": URL,
                "app_name": "shop",
                "app_vsn": "1.4.2",
                "env_name": "production",
            }},
            "root": {"level": "INFO", "handlers": ["code_wake"]},
        })
    """,
    "dictconfig-factory": """
        logging.config.dictConfig({
            "version": 1,
            "disable_existing_loggers": False,
            "handlers": {"code_wake": {
                "()": "code_wake.logging.CodeWakeHandler",
                "level": "WARNING",
                "store_config": URL,
                "app_name": "shop",
            }},
            "root": {"level": "INFO", "handlers": ["code_wake"]},
        })
    """,
    "addHandler": """
        from code_wake import CodeWakeHandler
        logging.getLogger().addHandler(CodeWakeHandler(store_config=URL, app_name="shop"))
        logging.getLogger().setLevel(logging.INFO)
    """,
}

STRUCTLOGS = {
    "processor": """
        structlog.configure(processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            CodeWakeProcessor(level="warning"),
            structlog.processors.format_exc_info,
            structlog.dev.ConsoleRenderer(),
        ])
    """,
    "processor-formatter": """
        shared = [structlog.contextvars.merge_contextvars, structlog.stdlib.add_log_level,
                  structlog.stdlib.add_logger_name]
        structlog.configure(
            processors=[structlog.stdlib.filter_by_level, *shared, CodeWakeProcessor(level="warning"),
                        structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
            logger_factory=structlog.stdlib.LoggerFactory(),
            wrapper_class=structlog.stdlib.BoundLogger,
        )
        console = logging.StreamHandler(sys.stdout)
        console.setFormatter(structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared, processors=[structlog.dev.ConsoleRenderer()]))
        logging.getLogger().addHandler(console)
    """,
}

CALLS = {
    "stdlib": 'logging.getLogger("lib").warning("from stdlib")\n',
    "structlog": 'structlog.get_logger("app").warning("from structlog")\n',
}

PRELUDE = """\
import logging, logging.config, os, sys
import structlog
from code_wake.structlog import CodeWakeProcessor
URL = os.environ["URL"]
"""


def run(code: str, cwd: Path, url: str, **env: str) -> subprocess.CompletedProcess[str]:
    script = cwd / "program.py"
    script.write_text(code)
    done = subprocess.run(
        [sys.executable, str(script)],
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(REPO), "URL": url, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done


def stored(url: str) -> list[tuple[str, str]]:
    """Each stored event's message and app name, sorted."""
    found = rows(
        url,
        "SELECT d.val, a.name FROM events e JOIN events_data d ON d.event_id = e.id "
        "JOIN processes p ON p.id = e.process_id JOIN apps a ON a.id = p.app_id WHERE d.key = 'message'",
    )
    return sorted((str(m), str(a)) for m, a in found)


EVERYTHING = [("from stdlib", "shop"), ("from structlog", "shop")]


@pytest.mark.parametrize("calls_first", ["stdlib", "structlog"])
@pytest.mark.parametrize("configured_first", ["logging", "structlog"])
@pytest.mark.parametrize("structlog_way", sorted(STRUCTLOGS))
@pytest.mark.parametrize("handler_way", sorted(HANDLERS))
def test_handler_and_processor(
    tmp_path: Path,
    sqlite_url: str,
    handler_way: str,
    structlog_way: str,
    configured_first: str,
    calls_first: str,
) -> None:
    """Both calls are stored once, in the handler's store, as its app, whatever came first."""
    setups = [textwrap.dedent(HANDLERS[handler_way]), textwrap.dedent(STRUCTLOGS[structlog_way])]
    if configured_first == "structlog":
        setups.reverse()
    calls = [CALLS["stdlib"], CALLS["structlog"]]
    if calls_first == "structlog":
        calls.reverse()
    done = run(PRELUDE + "".join(setups) + "".join(calls), tmp_path, sqlite_url)
    assert "Logging error" not in done.stderr
    assert stored(sqlite_url) == EVERYTHING


@pytest.mark.parametrize(("first", "second"), list(itertools.permutations(["stdlib", "structlog"])))
def test_direct_process_with_both_doors(tmp_path: Path, sqlite_url: str, first: str, second: str) -> None:
    """``code_wake.Process(...)`` at startup, a handler without arguments and the processor: all stored."""
    setup = """
        import code_wake
        from code_wake import CodeWakeHandler
        from code_wake_sql14_store import Sql14QueueStore
        code_wake.Process(app_name="shop", store=Sql14QueueStore(URL))
        logging.getLogger().addHandler(CodeWakeHandler())
    """
    code = (
        PRELUDE
        + textwrap.dedent(setup)
        + textwrap.dedent(STRUCTLOGS["processor"])
        + CALLS[first]
        + CALLS[second]
    )
    run(code, tmp_path, sqlite_url)
    assert stored(sqlite_url) == EVERYTHING


def test_processor_alone(tmp_path: Path, sqlite_url: str) -> None:
    """The processor without any handler records into the configured store."""
    code = PRELUDE + textwrap.dedent(STRUCTLOGS["processor"]) + CALLS["structlog"]
    env = {
        "CODE_WAKE_STORE_ADAPTER": "code_wake_sql14_store,Sql14Store",
        "CODE_WAKE_STORE_CONFIG": sqlite_url,
    }
    run(code, tmp_path, sqlite_url, CODE_WAKE_APP_NAME="shop", **env)
    assert stored(sqlite_url) == [("from structlog", "shop")]


@pytest.mark.parametrize("handler_way", sorted(HANDLERS))
def test_handler_alone_through_processor_formatter(tmp_path: Path, sqlite_url: str, handler_way: str) -> None:
    """structlog through ProcessorFormatter with no processor: the handler records both calls."""
    setup = """
        structlog.configure(
            processors=[
                structlog.stdlib.add_log_level,
                structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
            ],
            logger_factory=structlog.stdlib.LoggerFactory(),
            wrapper_class=structlog.stdlib.BoundLogger,
        )
    """
    code = PRELUDE + textwrap.dedent(HANDLERS[handler_way]) + textwrap.dedent(setup)
    run(code + CALLS["structlog"] + CALLS["stdlib"], tmp_path, sqlite_url)
    assert stored(sqlite_url) == EVERYTHING


def test_handler_naming_another_store_than_the_process(tmp_path: Path, sqlite_url: str) -> None:
    """The first configuration wins: the handler's records go to the Process's store, reported once."""
    setup = f"""
        import code_wake
        from code_wake import CodeWakeHandler
        from code_wake_sql14_store import Sql14QueueStore
        code_wake.Process(app_name="shop", store=Sql14QueueStore(URL))
        logging.getLogger().addHandler(CodeWakeHandler(store_config={str(tmp_path / "unused.sqlite")!r}))
        logging.getLogger("lib").warning("from stdlib")
        logging.getLogger("lib").warning("again")
    """
    done = run(PRELUDE + textwrap.dedent(setup), tmp_path, sqlite_url)
    assert done.stderr.count("already configured with a store") == 1
    assert stored(sqlite_url) == [("again", "shop"), ("from stdlib", "shop")]
    assert not (tmp_path / "unused.sqlite").exists()


def test_reports_reach_stderr_when_only_code_wake_handles_logging(tmp_path: Path) -> None:
    """With CodeWakeHandler the root logger's only handler, a store that cannot open is said on stderr."""
    setup = """
        from code_wake import CodeWakeHandler
        logging.getLogger().addHandler(
            CodeWakeHandler(store_config="sqlite:////nonexistent/dir/events.sqlite", flush_timeout=0))
        logging.getLogger("app").error("cannot be stored")
    """
    done = run(PRELUDE + textwrap.dedent(setup), tmp_path, "sqlite://")
    assert "code_wake: writing queued events failed" in done.stderr
