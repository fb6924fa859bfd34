"""PostgreSQL without foreign keys on ``events``: a writer and a prune in either order lose nothing.

The writer share-locks the process, trace and call site its batch refers to
(`_references`: in a batch's id query, in a lone event's INSERT); prune locks
what it deletes ``FOR UPDATE``.
Each test holds one side inside its transaction, at the lock, while the
other runs into it, and waits until PostgreSQL reports the other side
waiting for that lock; then lets go. No sleeps: the server says who waits.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from code_wake.records import EventRecord, ProcessRecord
from code_wake.testing.contract import DAY0, HOUR, process_info
from code_wake_sql14_store import Sql14Store, _references
from code_wake_sql14_store.schema import processes

pytestmark = pytest.mark.postgresql

Opener = Callable[[str], Sql14Store]

WAIT_SECONDS = 30.0


@pytest.fixture
def engine(postgresql_url: str) -> Iterator[sa.Engine]:
    engine = sa.create_engine(postgresql_url)
    yield engine
    engine.dispose()


def waiting_for_a_lock(engine: sa.Engine, fragment: str) -> bool:
    """Whether a session of the server waits for a lock in a statement containing `fragment`."""
    query = sa.text(
        "SELECT count(*) FROM pg_stat_activity"
        " WHERE wait_event_type = 'Lock' AND position(:fragment in query) > 0"
    )
    with engine.connect() as conn:
        return bool(conn.execute(query, {"fragment": fragment}).scalar())


def soon(condition: Callable[[], bool]) -> None:
    """Return once `condition` holds; fail after `WAIT_SECONDS`."""
    for _ in range(int(WAIT_SECONDS / 0.01)):
        if condition():
            return
        threading.Event().wait(0.01)
    raise AssertionError("the other side never came to wait for the lock")


class InThread:
    """Runs `work` on a thread of its own; `result()` joins it and gives its result or raises its error."""

    def __init__(self, work: Callable[[], Any]) -> None:
        self._outcome: list[Any] = []
        self._thread = threading.Thread(target=self._run, args=(work,), daemon=True)
        self._thread.start()

    def _run(self, work: Callable[[], Any]) -> None:
        try:
            self._outcome.append(("ok", work()))
        except BaseException as exc:  # handed to the test's thread
            self._outcome.append(("error", exc))

    def result(self) -> Any:
        self._thread.join(WAIT_SECONDS)
        assert not self._thread.is_alive(), "still running"
        kind, value = self._outcome[0]
        if kind == "error":
            raise value
        return value


def quiet_process(writer: Sql14Store, pruner: Sql14Store) -> ProcessRecord:
    """A process without events, started before the prune's cut-off; the pruner's own is the newest."""
    quiet = writer.insert_process(process_info(app_name="quiet", run_ts=DAY0 - HOUR))
    pruner.insert_process(process_info(app_name="busy"))
    return quiet


WAYS = {"insert_one_locking": 1, "ids_locking_references": 3}
"""The writer's two ways to lock, by function, and how many events a write takes to go that way."""


@pytest.fixture(params=list(WAYS))
def way(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def write(writer: Sql14Store, process: ProcessRecord, count: int) -> list[EventRecord]:
    """`count` events of `process` in one write, after the prune's cut-off."""
    batch = [
        writer.event_policy.build(process.id, {"n": str(n)}, when_ts=DAY0 + 2 * HOUR) for n in range(count)
    ]
    return writer.insert_events(batch)


def test_a_prune_first_makes_the_writer_store_the_process_again(
    postgresql_url: str, open_store: Opener, engine: sa.Engine, way: str
) -> None:
    """The prune deletes the process under its lock; the writer waits, finds it gone, and puts it back."""
    writer, pruner = open_store(postgresql_url), open_store(postgresql_url)
    quiet = quiet_process(writer, pruner)
    with engine.begin() as prune:
        prune.execute(sa.select(processes.c.id).where(processes.c.id == quiet.id).with_for_update())
        prune.execute(sa.delete(processes).where(processes.c.id == quiet.id))
        writing = InThread(lambda: write(writer, quiet, WAYS[way]))
        soon(lambda: waiting_for_a_lock(engine, "FOR KEY SHARE"))
    records: list[EventRecord] = writing.result()
    assert len(records) == WAYS[way]
    assert pruner.get_process_by_id(quiet.id) == quiet
    assert [pruner.get_event_by_id(record.id) for record in records] == records


def test_a_writer_first_keeps_the_prune_from_taking_its_process(
    postgresql_url: str, open_store: Opener, engine: sa.Engine, monkeypatch: pytest.MonkeyPatch, way: str
) -> None:
    """The writer holds the process locked in its transaction; the prune waits, then sees its events."""
    writer, pruner = open_store(postgresql_url), open_store(postgresql_url)
    quiet = quiet_process(writer, pruner)
    locked, release = threading.Event(), threading.Event()
    lock = getattr(_references, way)

    def lock_and_hold(conn: sa.Connection, rows: Any) -> Any:
        taken = lock(conn, rows)
        locked.set()
        assert release.wait(WAIT_SECONDS)
        return taken

    monkeypatch.setattr(f"code_wake_sql14_store._writes.{way}", lock_and_hold)
    writing = InThread(lambda: write(writer, quiet, WAYS[way]))
    assert locked.wait(WAIT_SECONDS)
    prune = InThread(lambda: pruner.prune(DAY0 + HOUR))
    soon(lambda: waiting_for_a_lock(engine, "FOR UPDATE"))
    release.set()
    records: list[EventRecord] = writing.result()
    assert prune.result().processes == 0
    assert pruner.get_process_by_id(quiet.id) == quiet
    assert [pruner.get_event_by_id(record.id) for record in records] == records
