"""Many writers: 8 processes x 4 threads, all started in the same instant, into one database.

Every event must be stored exactly once, under the process that logged it;
no lock or deadlock may surface (nothing on any child's stderr, no event
dropped, lost or rejected); and the registrations the processes race for
(the schema, the app, its version, the environment) must come out as one
row each, with one process row per process. The scenario and its checks are
the many-writer benchmark's (bench/many_writers.py), here at a CI size.
"""

from __future__ import annotations

from pathlib import Path

from bench.many_writers import PROCESSES, THREADS, problems, run_writers
from code_wake_sql14_store import Sql14Store

PER_THREAD = 100


def test_many_writers_store_every_event_once(tmp_path: Path, db_url: str) -> None:
    """8 processes x 4 threads log at full speed, released together: nothing lost, doubled or raced."""
    writers = run_writers(tmp_path, db_url, PROCESSES, THREADS, PER_THREAD)
    assert writers.stderr == [""] * PROCESSES
    assert problems(db_url, writers.reports, THREADS, PER_THREAD) == []


def test_the_check_sees_a_doubled_event(tmp_path: Path, sqlite_url: str) -> None:
    """The check is not blind: one event written twice is reported (and one thread's worth too few)."""
    writers = run_writers(tmp_path, sqlite_url, 2, 1, 5)
    assert problems(sqlite_url, writers.reports, 1, 5) == []
    with Sql14Store(sqlite_url) as store:
        first = store.get_event_by_id(1)
        assert first is not None
        store.insert_event(first.process, [(d.key, d.val) for d in first.data], sync=True)
    found = problems(sqlite_url, writers.reports, 1, 5)
    assert any("1 doubled" in line for line in found), found
    assert any("summary counts 11" in line for line in found), found
    assert problems(sqlite_url, writers.reports, 1, 6) != []
