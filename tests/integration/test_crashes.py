"""Crashes nobody logged, in real programs: one event each, with the raising line, before exit."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from code_wake import EventRecord
from code_wake_sql14_store import Sql14Store

from .helpers import REPO

WITH_PROCESS = "import code_wake\ncode_wake.Process(app_name='crashes')\n"
WITH_HANDLER = (
    "import logging\nfrom code_wake import CodeWakeHandler\n"
    "logging.getLogger().addHandler(CodeWakeHandler(store_config=os.environ['URL'], app_name='crashes'))\n"
)


COLLECTED_TASK = """
import asyncio, gc
async def fail():
    raise ZeroDivisionError('collected')
async def main():
    task = asyncio.ensure_future(fail())
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    del task
    gc.collect()
asyncio.run(main())
"""
"""A task that fails and is garbage-collected while the loop runs, its exception never asked for."""


def run(
    body: str, cwd: Path, url: str, setup: str = WITH_PROCESS, **env: str
) -> subprocess.CompletedProcess[str]:
    """Run `setup` then `body` as a script whose store is the SQLite database at `url`."""
    script = cwd / "program.py"
    script.write_text("import os\n" + setup + textwrap.dedent(body))
    return subprocess.run(
        [sys.executable, str(script)],
        cwd=cwd,
        env={
            **os.environ,
            "PYTHONPATH": str(REPO),
            "URL": url,
            "CODE_WAKE_STORE_ADAPTER": "code_wake_sql14_store,Sql14Store",
            "CODE_WAKE_STORE_CONFIG": url,
            **env,
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def crashes(url: str) -> list[EventRecord]:
    """The stored events marked as uncaught."""
    store = Sql14Store(url)
    try:
        return list(store.get_events_by_data([("uncaught", "true")]))
    finally:
        store.close()


def raising_line(event: EventRecord) -> tuple[int, str | None]:
    assert event.stacktrace is not None
    frame = event.stacktrace.stackframes[0]
    return frame.lineno, frame.src


class TestEachCrash:
    """One test per kind of crash: one event, its raising line, the thread, and Python's own printout."""

    def test_main_thread(self, tmp_path: Path, sqlite_url: str) -> None:
        """An exception leaving the script is recorded through sys.excepthook and still printed."""
        body = "def fail():\n    raise ValueError('top of the script')\nfail()\n"
        done = run(body, tmp_path, sqlite_url)
        assert done.returncode == 1
        assert "ValueError: top of the script" in done.stderr
        (event,) = crashes(sqlite_url)
        assert event.exc_type == "ValueError" and event.exc_message == "top of the script"
        assert raising_line(event)[1] == "raise ValueError('top of the script')"
        assert event.data_dict()["hook"] == "sys.excepthook"
        assert event.data_dict()["thread"] == "MainThread"

    def test_other_thread(self, tmp_path: Path, sqlite_url: str) -> None:
        """An exception ending a thread is recorded with that thread's name; Python still prints it."""
        body = """
            import threading
            def work():
                raise RuntimeError('in the worker')
            t = threading.Thread(target=work, name='worker-1')
            t.start()
            t.join()
        """
        done = run(body, tmp_path, sqlite_url)
        assert done.returncode == 0
        assert "Exception in thread worker-1" in done.stderr
        (event,) = crashes(sqlite_url)
        assert raising_line(event)[1] == "raise RuntimeError('in the worker')"
        assert event.data_dict()["thread"] == "worker-1"
        assert event.data_dict()["hook"] == "threading.excepthook"

    def test_asyncio_run(self, tmp_path: Path, sqlite_url: str) -> None:
        """``asyncio.run(main())`` whose main raises is one event with main's raising line."""
        body = """
            import asyncio
            async def main():
                raise LookupError('async main')
            asyncio.run(main())
        """
        done = run(body, tmp_path, sqlite_url)
        assert done.returncode == 1
        assert "LookupError: async main" in done.stderr
        (event,) = crashes(sqlite_url)
        assert raising_line(event)[1] == "raise LookupError('async main')"

    def test_del(self, tmp_path: Path, sqlite_url: str) -> None:
        """An exception in ``__del__`` is recorded through sys.unraisablehook; Python still prints it."""
        body = """
            class Leaky:
                def __del__(self):
                    raise OSError('in __del__')
            leaky = Leaky()
            del leaky
        """
        done = run(body, tmp_path, sqlite_url)
        assert done.returncode == 0
        assert "Exception ignored in" in done.stderr
        (event,) = crashes(sqlite_url)
        assert raising_line(event)[1] == "raise OSError('in __del__')"
        assert event.data_dict()["hook"] == "sys.unraisablehook"
        assert "Leaky" in (event.data_dict()["object"] or "")

    def test_failed_task_kept_alive_until_exit(self, tmp_path: Path, sqlite_url: str) -> None:
        """A task that failed and was kept alive until exit is recorded at exit, before the store closes."""
        body = """
            import asyncio
            kept = []
            async def fail():
                raise KeyError('kept alive')
            async def main():
                kept.append(asyncio.ensure_future(fail(), loop=None))
                await asyncio.sleep(0)
                await asyncio.sleep(0)
            asyncio.run(main())
        """
        done = run(body, tmp_path, sqlite_url)
        assert done.returncode == 0, done.stderr
        (event,) = crashes(sqlite_url)
        assert raising_line(event)[1] == "raise KeyError('kept alive')"
        assert event.data_dict()["hook"] == "asyncio"

    def test_failed_task_garbage_collected(self, tmp_path: Path, sqlite_url: str) -> None:
        """A failed task collected without anyone asking for its result is one event."""
        body = COLLECTED_TASK
        done = run(body, tmp_path, sqlite_url)
        assert done.returncode == 0, done.stderr
        assert "Task exception was never retrieved" in done.stderr
        (event,) = crashes(sqlite_url)
        assert raising_line(event)[1] == "raise ZeroDivisionError('collected')"
        assert event.data_dict()["message"] == "Task exception was never retrieved"


class TestOnce:
    """A crash is one event, whichever doors also see it."""

    def test_with_only_a_handler(self, tmp_path: Path, sqlite_url: str) -> None:
        """A handler attached (no Process created yet) is enough; the event goes to the handler's store."""
        done = run("raise ValueError('handler only')\n", tmp_path, sqlite_url, setup=WITH_HANDLER)
        assert done.returncode == 1
        (event,) = crashes(sqlite_url)
        assert event.process.app.name == "crashes"

    def test_logged_then_raised(self, tmp_path: Path, sqlite_url: str) -> None:
        """An exception the app logged and then let go is the one event the app logged."""
        body = """
            try:
                raise ValueError('logged, then raised')
            except ValueError:
                logging.exception('about to die')
                raise
        """
        done = run(body, tmp_path, sqlite_url, setup=WITH_HANDLER)
        assert done.returncode == 1
        store = Sql14Store(sqlite_url)
        try:
            events = list(store.get_events_by_data([]))
        finally:
            store.close()
        assert [e.exc_message for e in events] == ["logged, then raised"]

    def test_asyncio_logger_and_hook(self, tmp_path: Path, sqlite_url: str) -> None:
        """A collected failed task, which asyncio also logs to a root handler of ours, is one event."""
        body = COLLECTED_TASK
        done = run(body, tmp_path, sqlite_url, setup=WITH_HANDLER)
        assert done.returncode == 0, done.stderr
        store = Sql14Store(sqlite_url)
        try:
            events = list(store.get_events_by_data([]))
        finally:
            store.close()
        assert len(events) == 1 and events[0].data_dict()["uncaught"] == "true"


class TestHooksChain:
    """Hooks chain both ways, and configuration turns recording off."""

    def test_hook_installed_after_ours_keeps_working(self, tmp_path: Path, sqlite_url: str) -> None:
        """A later sys.excepthook that chains to ours runs, and the crash is still recorded once."""
        body = """
            import sys
            before = sys.excepthook
            def mine(*args):
                print('mine ran', file=sys.stderr)
                before(*args)
            sys.excepthook = mine
            code_wake.Process.reset()
            code_wake.Process(app_name='crashes')
            raise ValueError('after mine')
        """
        done = run(body, tmp_path, sqlite_url)
        assert "mine ran" in done.stderr and "ValueError: after mine" in done.stderr
        assert len(crashes(sqlite_url)) == 1

    def test_turned_off(self, tmp_path: Path, sqlite_url: str) -> None:
        """``CODE_WAKE_RECORD_CRASHES=false`` records no crash; Python prints it as ever."""
        done = run("raise ValueError('off')\n", tmp_path, sqlite_url, CODE_WAKE_RECORD_CRASHES="false")
        assert "ValueError: off" in done.stderr
        assert crashes(sqlite_url) == []


def test_nothing_configured_records_nothing(tmp_path: Path, sqlite_url: str) -> None:
    """A program that never configures code_wake is left alone, even with code_wake imported."""
    done = run("import code_wake\nraise ValueError('alone')\n", tmp_path, sqlite_url, setup="")
    assert "ValueError: alone" in done.stderr
    assert not Path(sqlite_url.removeprefix("sqlite:///")).exists()
