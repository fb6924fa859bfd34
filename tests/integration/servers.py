"""Stopping and starting this machine's database servers, for the outage tests (marker `fault`).

`stopped(kind)` stops the server and, whatever happens inside the block,
starts it again and waits until it answers. The commands are the ones
.ci/run starts the servers with; only 127.0.0.1 is ever touched.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

__all__ = ["KINDS", "answers", "start", "stop", "stopped", "wait_until_answering"]

KINDS = [
    pytest.param("postgresql", marks=pytest.mark.postgresql),
    pytest.param("mysql", marks=pytest.mark.mysql),
]
"""The servers, as `kind` parameters: their `{kind}_url` fixtures give the test's database."""

_ANSWER_TIMEOUT = 90.0


def _run(args: list[str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout, check=False)


def _pg_cluster() -> list[str]:
    (version,) = os.listdir("/etc/postgresql")
    return ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main"]


def _mariadb_admin(*command: str) -> list[str]:
    return ["mariadb-admin", "-h", "127.0.0.1", "-P", "3306", "-uroot", "--connect-timeout=2", *command]


def answers(kind: str) -> bool:
    """Whether the server of `kind` ("postgresql" or "mysql") answers on 127.0.0.1 now."""
    if kind == "postgresql":
        return _run(["pg_isready", "-q", "-h", "127.0.0.1", "-p", "5432", "-t", "2"]).returncode == 0
    return _run(_mariadb_admin("ping")).returncode == 0


def stop(kind: str) -> None:
    """Stop the server of `kind` and wait until it no longer answers."""
    if kind == "postgresql":
        done = _run([*_pg_cluster(), "stop", "-m", "fast"])
    else:
        done = _run(_mariadb_admin("shutdown"))
    assert done.returncode == 0, f"stopping {kind} failed: {done.stdout}{done.stderr}"
    deadline = time.monotonic() + 60
    while answers(kind):
        assert time.monotonic() < deadline, f"{kind} still answers after being stopped"
        time.sleep(0.1)
    if kind == "mysql":
        # mariadb-admin returns once the server stops listening; the process may take a moment more.
        pid_file = Path("/run/mysqld/mysqld.pid")
        while pid_file.exists() and time.monotonic() < deadline:
            time.sleep(0.1)


def start(kind: str) -> None:
    """Start the server of `kind` (a no-op if it runs) and wait until it answers."""
    if not answers(kind):
        if kind == "postgresql":
            done = _run([*_pg_cluster(), "start"])
        else:
            daemon = ["start-stop-daemon", "--start", "--oknodo", "--background"]
            done = _run([*daemon, "--exec", "/usr/sbin/mariadbd"])
        assert done.returncode == 0, f"starting {kind} failed: {done.stdout}{done.stderr}"
    wait_until_answering(kind)


def wait_until_answering(kind: str, timeout: float = _ANSWER_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while not answers(kind):
        assert time.monotonic() < deadline, f"{kind} did not answer within {timeout} s of being started"
        time.sleep(0.2)


@contextlib.contextmanager
def stopped(kind: str) -> Iterator[None]:
    """The server of `kind` is down inside the block; it is started again (and answers) after it."""
    try:
        stop(kind)
        yield
    finally:
        start(kind)
