"""A real program logging at a steady rate while the test breaks its database, and what it stored.

`SteadyLogger` runs a child interpreter that logs `rate` events a second for
`seconds` seconds through `Sql14QueueStore`, each carrying its sequence
number (`seq`), then waits for its queue to empty and prints its
`queue_stats` as JSON. The test does its damage while the child runs,
timed from the moment the child starts logging.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from collections import Counter
from pathlib import Path
from typing import IO, Any

from .helpers import REPO, rows

__all__ = ["SteadyLogger", "missing_and_doubled", "stored_sequence"]

PROGRAM = """
    import dataclasses
    import json
    import sys
    import time

    import code_wake
    from code_wake_sql14_store import Sql14QueueStore

    url, rate, seconds, settings = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), json.loads(sys.argv[4])
    store = Sql14QueueStore(url, queue_settings=code_wake.QueueSettings(**settings))
    proc = code_wake.Process(store=store, app_name="steady").init()
    print("logging", flush=True)
    start = time.monotonic()
    for n in range(int(rate * seconds)):
        delay = start + n / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        proc.log({"seq": str(n)})
    print("logged", flush=True)
    # Everything logged is written (or spooled) before the figures are taken, and the spool emptied:
    # its delivery runs on the writer's own schedule, so it is polled for.
    deadline = time.monotonic() + 180
    store.flush(timeout=180)
    while time.monotonic() < deadline:
        stats = store.queue_stats
        if stats.pending == 0 and stats.spooled == 0:
            break
        time.sleep(0.1)
    print(json.dumps(dataclasses.asdict(store.queue_stats)), flush=True)
"""


class SteadyLogger:
    """The child program; `start()`, then `wait_until(t)` to time the damage, then `finish()`."""

    def __init__(
        self,
        url: str,
        cwd: Path,
        *,
        rate: int,
        seconds: float,
        settings: dict[str, Any] | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        self.url = url
        self.cwd = cwd
        self.rate = rate
        self.seconds = seconds
        self.settings = settings or {}
        self.env = env or {}
        self.started_at = 0.0
        self._child: subprocess.Popen[str] | None = None
        self._stderr = cwd / "steady.stderr"
        self._stderr_file: IO[str] | None = None

    @property
    def events(self) -> int:
        return int(self.rate * self.seconds)

    def start(self) -> None:
        script = self.cwd / "steady.py"
        script.write_text(textwrap.dedent(PROGRAM))
        self._stderr_file = self._stderr.open("w")
        args = [sys.executable, str(script), self.url, str(self.rate), str(self.seconds)]
        self._child = subprocess.Popen(
            [*args, json.dumps(self.settings)],
            cwd=self.cwd,
            env={**os.environ, "PYTHONPATH": str(REPO), **self.env},
            stdout=subprocess.PIPE,
            stderr=self._stderr_file,
            text=True,
        )
        assert self._child.stdout is not None
        line = self._child.stdout.readline()
        assert line == "logging\n", f"the program did not start: {line!r}\n{self.stderr()}"
        self.started_at = time.monotonic()

    def wait_until(self, second: float) -> None:
        """Sleep until `second` seconds after the child began logging."""
        time.sleep(max(0.0, self.started_at + second - time.monotonic()))

    def finish(self, timeout: float = 300) -> dict[str, int]:
        """Wait for the child to end; assert it exited 0; its final queue_stats."""
        assert self._child is not None
        try:
            stdout, _ = self._child.communicate(timeout=timeout)
        finally:
            self.kill()
        assert self._child.returncode == 0, f"the program failed ({self._child.returncode}):\n{self.stderr()}"
        lines = stdout.splitlines()
        assert lines[:1] == ["logged"], f"{stdout}\n{self.stderr()}"
        stats: dict[str, int] = json.loads(lines[-1])
        return stats

    def kill(self) -> None:
        """End the child if it still runs (a test that failed before `finish`)."""
        if self._child is not None and self._child.poll() is None:
            self._child.kill()
            self._child.wait()
        if self._child is not None and self._child.stdout is not None:
            self._child.stdout.close()
        if self._stderr_file is not None:
            self._stderr_file.close()

    def stderr(self) -> str:
        return self._stderr.read_text() if self._stderr.exists() else ""


def stored_sequence(url: str) -> Counter[int]:
    """How many times each sequence number was stored."""
    found = rows(url, "SELECT d.val FROM events_data d WHERE d.key = 'seq'")
    return Counter(int(str(val)) for (val,) in found)


def missing_and_doubled(stored: Counter[int], expected: int) -> tuple[list[int], list[int]]:
    """The sequence numbers never stored, and those stored more than once."""
    missing = [n for n in range(expected) if stored[n] == 0]
    doubled = sorted(n for n, count in stored.items() if count > 1)
    return missing, doubled
