"""After fork, the child is a process of its own: its own record, its own pid, nothing doubled."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from .helpers import rows, run_python

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="fork is POSIX only")


def test_bare_fork_registers_child_as_its_own_process(tmp_path: Path, sqlite_url: str) -> None:
    """A child of os.fork() records under its own pid and process record; the parent's events stay single."""
    out = run_python(
        f"""
        import os
        import code_wake
        from code_wake_sql14_store import Sql14Store

        proc = code_wake.Process(store=Sql14Store({sqlite_url!r}), app_name="forker")
        proc.log({{"who": "parent-before"}}, sync=True)
        child = os.fork()
        if child == 0:
            code_wake.Process().log({{"who": "child"}}, sync=True)
            os._exit(0)
        _, status = os.waitpid(child, 0)
        assert status == 0, status
        proc.log({{"who": "parent-after"}})
        print(os.getpid(), child)
        """,
        tmp_path,
    )
    parent_pid, child_pid = map(int, out.split())
    stored = rows(
        sqlite_url,
        "SELECT d.val, p.pid, p.id FROM events e JOIN events_data d ON d.event_id = e.id "
        "JOIN processes p ON p.id = e.process_id ORDER BY e.id",
    )
    by_who = {who: (pid, proc_id) for who, pid, proc_id in stored}
    assert len(stored) == 3
    assert by_who["parent-before"][0] == by_who["parent-after"][0] == parent_pid
    assert by_who["child"][0] == child_pid
    assert by_who["child"][1] != by_who["parent-before"][1] == by_who["parent-after"][1]
    assert rows(sqlite_url, "SELECT count(*) FROM processes") == [(2,)]


def test_multiprocessing_fork_pool(tmp_path: Path, sqlite_url: str) -> None:
    """Each worker of a fork-started pool is recorded as its own process, each event once."""
    run_python(
        f"""
        import multiprocessing
        import os
        import code_wake
        from code_wake_sql14_store import Sql14Store

        def work(n):
            code_wake.Process().log({{"task": str(n)}}, sync=True)
            return os.getpid()

        if __name__ == "__main__":
            proc = code_wake.Process(store=Sql14Store({sqlite_url!r}), app_name="pool")
            proc.log({{"task": "start"}}, sync=True)
            with multiprocessing.get_context("fork").Pool(3) as pool:
                pids = set(pool.map(work, range(12)))
            print(len(pids))
        """,
        tmp_path,
    )
    tasks = rows(sqlite_url, "SELECT val FROM events_data WHERE key = 'task'")
    assert sorted(v for (v,) in tasks) == sorted(["start", *map(str, range(12))])
    per_process = rows(
        sqlite_url,
        "SELECT p.pid, count(*) FROM events e JOIN processes p ON p.id = e.process_id GROUP BY p.id, p.pid",
    )
    pids = [pid for pid, _ in per_process]
    assert len(pids) == len(set(pids)), "a pid was registered twice"
    assert sum(n for _, n in per_process) == 13


def test_child_work_runs_in_phase_order(tmp_path: Path) -> None:
    """A forked child renews queues, stores, Process and handler in that order, whatever registered first."""
    out = run_python(
        """
        import os
        import code_wake
        import code_wake.logging
        from code_wake._fork import ForkPhase, at_fork_in_child
        from code_wake.queue_store import QueueStore
        from code_wake.testing import MemoryStore

        class QueuedMemoryStore(QueueStore, MemoryStore):
            pass

        store = QueuedMemoryStore()
        proc = code_wake.Process(store=store, app_name="phases")
        proc.log({"who": "parent"})
        assert store.flush(5)
        parent_store_lock = store._registered_lock
        parent_handler_lock = code_wake.logging._configured.lock
        seen = []

        def recorder(phase):
            def record():
                done = (
                    store.queue.worker is None,
                    store._registered_lock is not parent_store_lock,
                    proc.info.pid == os.getpid(),
                    code_wake.logging._configured.lock is not parent_handler_lock,
                )
                seen.append(phase.name + " " + "".join("x" if d else "-" for d in done))
            return record

        # Registered last phase first: the order they run in must not follow registration.
        for phase in reversed(ForkPhase):
            at_fork_in_child(phase, recorder(phase))
        read_end, write_end = os.pipe()
        child = os.fork()
        if child == 0:
            os.write(write_end, "\\n".join(seen).encode())
            os._exit(0)
        os.close(write_end)
        _, status = os.waitpid(child, 0)
        assert status == 0, status
        with os.fdopen(read_end) as pipe:
            print(pipe.read())
        """,
        tmp_path,
    )
    # Each phase sees its own work and the earlier phases' done, the later phases' not yet.
    assert out.split("\n")[:4] == ["QUEUES x---", "STORES xx--", "PROCESS xxx-", "HANDLER xxxx"]


def test_one_register_at_fork_in_the_package() -> None:
    """Only code_wake._fork registers with os.register_at_fork; other modules use its phases."""
    package = Path(__file__).resolve().parents[2] / "code_wake"
    calls = {
        path.relative_to(package).as_posix(): path.read_text(encoding="utf-8").count("os.register_at_fork(")
        for path in package.rglob("*.py")
    }
    assert {name: n for name, n in calls.items() if n} == {"_fork.py": 1}


def test_closed_queue_stays_closed_in_the_child(tmp_path: Path) -> None:
    """A queued store closed before fork refuses events in the child too, as in the parent."""
    out = run_python(
        """
        import os
        from code_wake import StoreError
        from code_wake.event import PendingEvent
        from code_wake.queue_store import QueueStore
        from code_wake.testing import MemoryStore

        class QueuedMemoryStore(QueueStore, MemoryStore):
            pass

        store = QueuedMemoryStore()
        store.close()
        read_end, write_end = os.pipe()
        child = os.fork()
        if child == 0:
            try:
                store.submit(PendingEvent(1, 0.0))
                answer = "accepted"
            except StoreError as exc:
                answer = str(exc)
            os.write(write_end, answer.encode())
            os._exit(0)
        os.close(write_end)
        os.waitpid(child, 0)
        with os.fdopen(read_end) as pipe:
            print(pipe.read())
        """,
        tmp_path,
    )
    assert "This store is closed" in out
