"""Outages of a real database while a real program logs: nothing lost, nothing doubled, nobody held up.

Issue 11's fault tests that hold without the disk spool (those that need it
are in test_outage_spool.py). Each stops or locks a real database (marker
`fault`); a stopped server is started again, and answers, before the test
ends, whatever happened. The suite runs serially: while a server is down,
other tests against it would fail.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from .servers import KINDS, stopped
from .steady import SteadyLogger, missing_and_doubled, stored_sequence

pytestmark = pytest.mark.fault

RATE = 500
"""Events a second, the issue's rate."""


@pytest.mark.parametrize("kind", KINDS)
def test_server_down_for_30_s_loses_nothing(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """500 events/s for 60 s, the server stopped for the middle 30 s (< retry_for): each stored once."""
    url = str(request.getfixturevalue(f"{kind}_url"))
    child = SteadyLogger(url, tmp_path, rate=RATE, seconds=60)  # the default QueueSettings
    child.start()
    try:
        child.wait_until(15)
        with stopped(kind):
            child.wait_until(45)
        stats = child.finish()
    finally:
        child.kill()
    missing, doubled = missing_and_doubled(stored_sequence(url), child.events)
    assert (len(missing), len(doubled)) == (0, 0), f"missing {missing[:20]}..., doubled {doubled[:20]}..."
    assert (stats["logged"], stats["written"], stats["dropped"], stats["rejected"]) == (30_000, 30_000, 0, 0)
    assert stats["retries"] > 0  # the outage was seen
    assert "not written" not in child.stderr()


def test_sqlite_locked_for_30_s_loses_nothing(tmp_path: Path) -> None:
    """A SQLite file under another connection's BEGIN EXCLUSIVE for 30 s, 500 events/s: each stored once."""
    path = tmp_path / "locked.sqlite"
    url = f"sqlite:///{path}"
    child = SteadyLogger(url, tmp_path, rate=RATE, seconds=40)  # 5 s, 30 s locked, 5 s
    child.start()
    try:
        child.wait_until(5)
        blocker = sqlite3.connect(path, isolation_level=None)
        try:
            blocker.execute("BEGIN EXCLUSIVE")
            (before,) = blocker.execute("SELECT count(*) FROM events").fetchone()
            child.wait_until(35)
            (after,) = blocker.execute("SELECT count(*) FROM events").fetchone()
            blocker.execute("COMMIT")
        finally:
            blocker.close()
        stats = child.finish()
    finally:
        child.kill()
    assert before == after  # nothing was written while the lock was held
    missing, doubled = missing_and_doubled(stored_sequence(url), child.events)
    assert (len(missing), len(doubled)) == (0, 0), f"missing {missing[:20]}..., doubled {doubled[:20]}..."
    assert (stats["logged"], stats["written"], stats["dropped"], stats["rejected"]) == (20_000, 20_000, 0, 0)
