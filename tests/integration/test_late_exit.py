"""Events logged at the very end of a program, after code_wake's own exit flush has run.

An ``atexit`` function registered before code_wake was imported runs after
code_wake's (``atexit`` runs last-registered first). Python 3.12 refuses to
start a thread at that point, so the queue cannot start its writer and must
write on the calling thread; 3.11 and 3.13 start the thread, and the event
must still be written before the process ends. Either way nothing is lost.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from .helpers import rows, run_python

LATE_LOG = """
    import atexit
    import threading

    def late():
        {probe}
        proc.log({{"when": "late"}})

    atexit.register(late)  # before code_wake is imported: runs after its exit flush

    import code_wake
    from code_wake_sql14_store import Sql14QueueStore

    proc = code_wake.Process(store=Sql14QueueStore({url!r}), app_name="late")
    {first}
"""

# Whether this interpreter can start a thread once atexit runs, printed by the program.
THREAD_PROBE = """try:
            threading.Thread(target=print).start()
            print("threads start at exit")
        except RuntimeError:
            print("no thread starts at exit")"""


def stored_whens(url: str) -> list[str]:
    return [str(val) for (val,) in rows(url, "SELECT val FROM events_data WHERE key = 'when' ORDER BY id")]


class TestLogAfterExitFlush:
    @pytest.mark.parametrize("first", ["pass", 'proc.log({"when": "early"})'], ids=["idle", "running"])
    def test_late_event_is_stored(self, tmp_path: Path, sqlite_url: str, first: str) -> None:
        """An event logged after the exit flush is stored, whether or not the writer ever ran."""
        out = run_python(LATE_LOG.format(url=sqlite_url, first=first, probe=THREAD_PROBE), tmp_path)
        expected = ["late"] if first == "pass" else ["early", "late"]
        assert stored_whens(sqlite_url) == expected
        # The probe shows which path ran: on 3.12 the event was written on the calling thread.
        refused = sys.version_info[:2] == (3, 12)
        assert ("no thread starts at exit" in out) == refused, out
