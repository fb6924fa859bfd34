"""Dead connections are noticed and writing resumes; refusals are final, transient failures retried."""

from __future__ import annotations

import os
import select
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from code_wake import Process, QueueSettings
from code_wake_sql14_store import Sql14QueueStore, Sql14Store
from code_wake_sql14_store._database import transient

from .helpers import REPO, rows, values_of
from .tcp_proxy import TcpProxy


@pytest.fixture(params=["postgresql", "mysql"])
def proxied(request: pytest.FixtureRequest) -> Iterator[tuple[str, str, TcpProxy]]:
    """The test database's URL, and the same database through a proxy that can stall."""
    url = str(request.getfixturevalue(f"{request.param}_url"))
    parsed = sa.make_url(url)
    if parsed.get_backend_name() == "postgresql":
        # In clear, so that the proxy can see a COMMIT go by (`TcpProxy.mute_after`).
        parsed = parsed.update_query_dict({"sslmode": "disable"})
    proxy = TcpProxy((parsed.host or "127.0.0.1", parsed.port or 0))
    try:
        yield url, parsed.set(port=proxy.port).render_as_string(hide_password=False), proxy
    finally:
        proxy.close()


def wait_for(condition: object, timeout: float) -> bool:
    """Poll `condition` (a callable) until true or `timeout` seconds pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return True
        time.sleep(0.05)
    return False


def test_stalled_connection_is_cut_and_writing_resumes(proxied: tuple[str, str, TcpProxy]) -> None:
    """A proxy stops forwarding mid-stream: the stuck write is cut, retried, and nothing is lost."""
    direct, through_proxy, proxy = proxied
    store = Sql14QueueStore(through_proxy, queue_settings=QueueSettings(retry_for=600))
    # Short, so the test is: the default (15 s) is what the 15 s stall meets.
    store._db.stall_guard.seconds = 2
    proc = Process(store=store, app_name="half-open").init()
    for n in range(100):
        proc.log({"n": str(n)})
    assert store.flush(timeout=30)
    proxy.stall()
    try:
        for n in range(100, 200):
            proc.log({"n": str(n)})
        assert wait_for(lambda: store._db.stall_guard.cuts >= 1, timeout=30)
    finally:
        proxy.resume()
    assert store.flush(timeout=60)
    stats = store.queue_stats
    assert (stats.written, stats.dropped, stats.rejected) == (200, 0, 0)
    ((count, distinct),) = rows(
        direct, "SELECT count(*), count(DISTINCT d.val) FROM events_data d WHERE d.key = 'n'"
    )
    assert (count, distinct) == (200, 200)
    store.close()


class TestTransient:
    @pytest.mark.parametrize(
        ("error", "expected"),
        [
            (sa.exc.OperationalError("x", {}, Exception(1213, "Deadlock found")), True),
            (sa.exc.OperationalError("x", {}, Exception(1205, "Lock wait timeout exceeded")), True),
            (
                sa.exc.OperationalError(
                    "x", {}, Exception(2013, "Lost connection"), connection_invalidated=True
                ),
                True,
            ),
            (sa.exc.DataError("x", {}, Exception(1406, "Data too long")), False),
            (sa.exc.ProgrammingError("x", {}, Exception(1146, "Table doesn't exist")), False),
        ],
    )
    def test_which_errors_are_transient(self, error: sa.exc.DBAPIError, expected: bool) -> None:
        """Deadlocks, lock timeouts and lost connections are tried again; the rest is not."""
        assert transient(error) is expected


def test_newer_schema_is_rejected_at_once(sqlite_url: str) -> None:
    """A database newer than this code refuses every write: rejected at once, not retried for retry_for."""
    first = Sql14QueueStore(sqlite_url)
    Process(store=first, app_name="older").init()
    first.close()
    Process.reset()
    engine = sa.create_engine(sqlite_url)
    with engine.begin() as conn:
        conn.exec_driver_sql("UPDATE code_wake_schema SET version = 99")
    engine.dispose()
    store = Sql14QueueStore(sqlite_url, queue_settings=QueueSettings(retry_for=600))
    proc = Process(store=store, app_name="older")
    for n in range(3):
        assert proc.log({"n": str(n)}) is None
    assert store.flush(timeout=30)
    stats = store.queue_stats
    assert (stats.rejected, stats.retries, stats.written) == (3, 0, 0)
    store.close()


def test_postgresql_connections_have_keepalive_and_timeouts(postgresql_url: str) -> None:
    """A PostgreSQL connection is opened with a connect timeout, TCP keepalive and a user timeout."""
    store = Sql14Store(postgresql_url)
    with store.engine.connect() as conn:
        parameters = conn.connection.dbapi_connection.info.get_parameters()  # type: ignore[union-attr]
    store.close()
    assert parameters["connect_timeout"] == "10"
    assert (parameters["keepalives"], parameters["keepalives_idle"]) == ("1", "10")
    assert parameters["tcp_user_timeout"] == "30000"


@pytest.mark.fault
def test_a_15_s_stall_with_the_defaults_loses_nothing(proxied: tuple[str, str, TcpProxy]) -> None:
    """The issue's case as a user meets it: default settings, events flowing, the proxy silent for 15 s.

    The stuck write is cut by the stall guard (15 s), retried on a fresh
    connection once the proxy forwards again, and every event is stored once.
    """
    direct, through_proxy, proxy = proxied
    store = Sql14QueueStore(through_proxy)
    proc = Process(store=store, app_name="stalled").init()
    proc.log({"n": "0"})
    assert store.flush(timeout=30)
    proxy.stall()
    try:
        stalled_until = time.monotonic() + 15
        n = 1
        while time.monotonic() < stalled_until:
            proc.log({"n": str(n)})
            n += 1
            time.sleep(0.01)
    finally:
        proxy.resume()
    assert store.flush(timeout=60)
    stats = store.queue_stats
    assert (stats.written, stats.dropped, stats.spooled, stats.rejected) == (n, 0, 0, 0)
    ((count, distinct),) = rows(
        direct, "SELECT count(*), count(DISTINCT d.val) FROM events_data d WHERE d.key = 'n'"
    )
    assert (count, distinct) == (n, n)
    store.close()


UNANSWERED_COMMIT_AT_EXIT = """
    import sys
    import code_wake
    from code_wake_sql14_store import Sql14QueueStore

    settings = code_wake.QueueSettings(exit_timeout=2, spool_dir={spools!r})
    proc = code_wake.Process(store=Sql14QueueStore({url!r}, queue_settings=settings), app_name="unanswered")
    proc.log({{"n": "ready"}}, sync=True)
    print("ready", flush=True)
    sys.stdin.readline()
    for n in range(5):
        proc.log({{"n": str(n)}})
    # No flush: the exit flush writes them; the answer to its COMMIT never comes.
"""


def test_a_batch_committed_unanswered_at_exit_is_stored_once(
    proxied: tuple[str, str, TcpProxy], tmp_path: Path
) -> None:
    """The exit deadline takes over a write whose COMMIT the server carried out: delivered later, once.

    A real program: its writer's COMMIT goes through the proxy, which drops
    the server's answer from then on. At the exit deadline the queue sets the
    batch aside in the spool, marked as perhaps stored; the next program
    delivers the spool, finds those events stored and writes them not again.
    """
    direct, through_proxy, proxy = proxied
    spools = tmp_path / "spools"
    script = tmp_path / "program.py"
    program_text = UNANSWERED_COMMIT_AT_EXIT.format(url=through_proxy, spools=str(spools))
    script.write_text(textwrap.dedent(program_text))
    program = subprocess.Popen(
        [sys.executable, str(script)],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert program.stdout is not None
        readable, _, _ = select.select([program.stdout], [], [], 30)
        assert readable, "the program did not get ready within 30 s"
        assert program.stdout.readline() == "ready\n"
        proxy.mute_after(b"COMMIT")
        _, err = program.communicate("go\n", timeout=30)
    finally:
        program.kill()
    assert program.returncode == 0, err
    assert proxy.muted.is_set()
    assert "5 set aside in the spool" in err
    once = dict.fromkeys(["0", "1", "2", "3", "4", "ready"], 1)
    assert values_of(direct, "n") == once  # the COMMIT was carried out

    # The spool is the database's as the program named it: through the proxy.
    proxy.unmute()
    with Sql14QueueStore(through_proxy, queue_settings=QueueSettings(spool_dir=str(spools))) as store:
        Process(store=store, app_name="next").log({"n": "next"})
        assert store.flush(timeout=30)
        delivered = store.queue_stats.replayed
    assert (delivered, values_of(direct, "n")) == (5, {**once, "next": 1})
