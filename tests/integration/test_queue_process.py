"""The queue in real programs: exit without flush, fork, dead and locked databases."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import textwrap
from contextlib import closing
from pathlib import Path

import pytest

from code_wake import Process
from code_wake_sql14_store import Sql14QueueStore, Sql14Store

from .helpers import REPO, rows, run_python

THREADS_THEN_EXIT = """
    import threading
    import code_wake
    from code_wake_sql14_store import Sql14QueueStore

    proc = code_wake.Process(store=Sql14QueueStore({url!r}), app_name="threads")

    def work(worker):
        for n in range(500):
            proc.log({{"worker": str(worker), "n": str(n)}})

    threads = [threading.Thread(target=work, args=(w,)) for w in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # No flush, no close: the exit flush must write everything.
"""


BURST_THEN_EXIT = """
    import threading
    import code_wake
    from code_wake_sql14_store import Sql14QueueStore

    # The default settings: what the 5 s exit deadline leaves goes to the spool.
    proc = code_wake.Process(store=Sql14QueueStore({url!r}), app_name="burst")

    def work(worker):
        for n in range(10_000):
            proc.log({{"worker": str(worker), "n": str(n), "text": "order placed"}})

    threads = [threading.Thread(target=work, args=(w,)) for w in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    print(proc.store.queue_stats.dropped)
"""

HANDLERS_AGAINST_A_DEAD_STORE = """
    import logging
    from code_wake import CodeWakeHandler

    for name in ("a", "b", "c"):
        logger = logging.getLogger(name)
        logger.addHandler(CodeWakeHandler(
            store="code_wake_sql14_store,Sql14Store",
            store_config="postgresql+psycopg://someone@127.0.0.1:1/nowhere",
            app_name="dead-store",
        ))
        logger.warning("the store is down (%s)", name)
    print("logged")
"""


def count_events(url: str) -> int:
    ((count,),) = rows(url, "SELECT count(*) FROM events")
    return int(str(count))


class TestExit:
    def test_threads_then_exit_lose_nothing_sqlite(self, tmp_path: Path, sqlite_url: str) -> None:
        """Four threads log 2,000 events and the program ends without flushing: all are stored."""
        run_python(THREADS_THEN_EXIT.format(url=sqlite_url), tmp_path)
        assert count_events(sqlite_url) == 2000

    def test_threads_then_exit_lose_nothing_postgresql(self, tmp_path: Path, postgresql_url: str) -> None:
        """The same against a PostgreSQL server."""
        run_python(THREADS_THEN_EXIT.format(url=postgresql_url), tmp_path)
        assert count_events(postgresql_url) == 2000

    @pytest.mark.parametrize("backend", ["sqlite", "postgresql", "mysql"])
    def test_burst_then_exit_loses_nothing(
        self, tmp_path: Path, backend: str, request: pytest.FixtureRequest
    ) -> None:
        """Eight threads log 80,000 events (default settings) and exit without flushing: all are stored.

        What the database did not take by the exit deadline waits in the spool
        and is written, once, by the next process that logs to the database.
        """
        url = str(request.getfixturevalue(f"{backend}_url"))
        dropped = run_python(BURST_THEN_EXIT.format(url=url), tmp_path, timeout=240)
        assert dropped.strip() == "0"
        written_by_the_burst = count_events(url)
        with closing(Sql14QueueStore(url)) as store:
            Process(store=store, app_name="next").log({"n": "next"})
            assert store.flush(timeout=240)
            assert store.queue_stats.replayed == 80_000 - written_by_the_burst
        pairs = rows(
            url,
            "SELECT w.val, n.val FROM events_data w JOIN events_data n ON n.event_id = w.event_id "
            "WHERE w.key = 'worker' AND n.key = 'n'",
        )
        assert len(pairs) == len(set(pairs)) == 80_000  # each once
        assert count_events(url) == 80_001

    def test_one_exit_deadline_for_every_door(self, tmp_path: Path) -> None:
        """Three handlers against a dead store share one exit deadline; the exit line counts events."""
        script = tmp_path / "program.py"
        script.write_text(textwrap.dedent(HANDLERS_AGAINST_A_DEAD_STORE))
        done = subprocess.run(
            [sys.executable, str(script)],
            cwd=tmp_path,
            env={**os.environ, "PYTHONPATH": str(REPO), "CODE_WAKE_QUEUE_EXIT_TIMEOUT": "1"},
            capture_output=True,
            text=True,
            timeout=8,  # each of the six flushes and closes used to wait its own timeout
            check=False,
        )
        assert done.returncode == 0, done.stderr
        assert "3 of 3 events not written: 3 set aside in the spool" in done.stderr

    def test_exit_after_logging_shutdown(self, tmp_path: Path, sqlite_url: str) -> None:
        """logging.shutdown() before the end does not stop the exit flush, nor hang it."""
        run_python(
            f"""
            import logging
            import code_wake
            from code_wake_sql14_store import Sql14QueueStore

            logging.basicConfig()
            proc = code_wake.Process(store=Sql14QueueStore({sqlite_url!r}))
            for n in range(300):
                proc.log({{"n": str(n)}})
            logging.shutdown()
            for n in range(300, 600):
                proc.log({{"n": str(n)}})
            """,
            tmp_path,
        )
        assert count_events(sqlite_url) == 600

    def test_unreachable_store_does_not_hold_the_program(self, tmp_path: Path) -> None:
        """With the server down, log calls return and the program exits, saying what was not written."""
        script = tmp_path / "program.py"
        script.write_text(
            textwrap.dedent(
                """
                import code_wake
                from code_wake import QueueSettings
                from code_wake_sql14_store import Sql14QueueStore

                store = Sql14QueueStore(
                    "postgresql+psycopg://someone:s3cret@127.0.0.1:1/nowhere",
                    queue_settings=QueueSettings(exit_timeout=1.0),
                )
                proc = code_wake.Process(store=store, app_name="offline")
                for n in range(1000):
                    assert proc.log({"n": str(n)}) is None
                print("logged")
                """
            )
        )
        done = subprocess.run(
            [sys.executable, str(script)],
            cwd=tmp_path,
            env={**os.environ, "PYTHONPATH": str(REPO)},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == "logged"
        assert "1000 of 1000 events not written: 1000 set aside in the spool" in done.stderr
        assert "s3cret" not in done.stderr


class TestFork:
    def test_bare_fork_writes_each_event_once(self, tmp_path: Path, sqlite_url: str) -> None:
        """Events queued before a fork are written by the parent alone; the child writes its own."""
        out = run_python(
            f"""
            import os
            import code_wake
            from code_wake_sql14_store import Sql14QueueStore

            proc = code_wake.Process(store=Sql14QueueStore({sqlite_url!r}), app_name="forker")
            for n in range(200):
                proc.log({{"who": "parent", "n": str(n)}})
            child = os.fork()
            if child == 0:
                for n in range(50):
                    code_wake.Process().log({{"who": "child", "n": str(n)}})
                code_wake.Process().store.flush(10)
                os._exit(0)
            os.waitpid(child, 0)
            for n in range(200, 250):
                proc.log({{"who": "parent", "n": str(n)}})
            print(os.getpid(), child)
            """,
            tmp_path,
        )
        parent, child = map(int, out.split())
        by_pid = dict(
            rows(
                sqlite_url,
                "SELECT p.pid, count(*) FROM events e JOIN processes p ON p.id = e.process_id GROUP BY p.pid",
            )
        )
        assert by_pid == {parent: 250, child: 50}
        doubled = rows(
            sqlite_url,
            "SELECT d.val, count(*) FROM events_data d WHERE d.key = 'n' AND d.event_id IN "
            "(SELECT event_id FROM events_data WHERE key = 'who' AND val = 'parent') "
            "GROUP BY d.val HAVING count(*) > 1",
        )
        assert doubled == []

    def test_multiprocessing_children_flush_at_their_exit(self, tmp_path: Path, sqlite_url: str) -> None:
        """Fork-started pool workers leave through os._exit; their queued events are written anyway."""
        run_python(
            f"""
            import multiprocessing
            import code_wake
            from code_wake_sql14_store import Sql14QueueStore

            def work(n):
                code_wake.Process().log({{"task": str(n)}})

            if __name__ == "__main__":
                code_wake.Process(store=Sql14QueueStore({sqlite_url!r}), app_name="pool").init()
                pool = multiprocessing.get_context("fork").Pool(3)
                pool.map(work, range(300))
                pool.close()
                pool.join()
            """,
            tmp_path,
        )
        assert count_events(sqlite_url) == 300
        per_process = rows(sqlite_url, "SELECT p.pid FROM processes p")
        assert len(per_process) == len(set(per_process))


class TestLockedDatabase:
    def test_locked_database_is_waited_out(self, tmp_path: Path) -> None:
        """While another connection holds the SQLite file locked, events wait; then all are written."""
        path = tmp_path / "locked.sqlite"
        url = f"sqlite:///{path}"
        store = Sql14QueueStore(url)
        proc = Process(store=store, app_name="locked").init()
        blocker = sqlite3.connect(path, isolation_level=None)
        blocker.execute("BEGIN EXCLUSIVE")
        try:
            for n in range(100):
                proc.log({"n": str(n)})
            assert not store.flush(timeout=0.5)
        finally:
            blocker.execute("COMMIT")
            blocker.close()
        assert store.flush(timeout=30)
        assert count_events(url) == 100
        assert store.queue_stats.lost == 0
        store.close()


class TestFlood:
    def test_flood_against_a_locked_database_stays_bounded(self, tmp_path: Path) -> None:
        """300,000 events of 1 KB into a locked SQLite file: memory grows < 200 MB, the spool keeps the rest.

        Once the lock is gone, the next process that logs to the store writes
        every one of them, with the flooding process's identity.
        """
        path = tmp_path / "locked.sqlite"
        url = f"sqlite:///{path}"
        with Sql14Store(url) as schema_maker:
            schema_maker.get_app_by_name("creates the schema")
        blocker = sqlite3.connect(path, isolation_level=None)
        blocker.execute("BEGIN EXCLUSIVE")
        try:
            out = run_python(
                f"""
                import os, resource
                import code_wake
                from code_wake_sql14_store import Sql14QueueStore

                store = Sql14QueueStore({url!r})
                proc = code_wake.Process(store=store, app_name="flood")
                before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
                blob = "x" * 1024
                for n in range(300_000):
                    proc.log({{"n": str(n), "blob": blob}})
                grown_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
                stats = store.queue_stats
                print(grown_kb, stats.pending, stats.spooled, stats.dropped, stats.logged, os.getpid())
                """,
                tmp_path,
                env={"CODE_WAKE_QUEUE_EXIT_TIMEOUT": "0.5"},
                timeout=300,
            )
        finally:
            blocker.execute("COMMIT")
            blocker.close()
        grown_kb, pending, spooled, dropped, logged, flood_pid = map(int, out.split())
        assert grown_kb < 200 * 1024
        assert logged == 300_000
        assert (pending + spooled, dropped) == (logged, 0)  # nothing written, nothing lost
        assert spooled > 0

        with closing(Sql14QueueStore(url)) as store:
            Process(store=store, app_name="next").log({"n": "next"})
            assert store.flush(timeout=240)
            assert store.queue_stats.replayed == 300_000
        stored = rows(
            url, "SELECT p.pid, count(*) FROM events e JOIN processes p ON p.id = e.process_id GROUP BY p.pid"
        )
        assert dict(stored) == {flood_pid: 300_000, os.getpid(): 1}
