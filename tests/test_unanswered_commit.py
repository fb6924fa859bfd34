"""A COMMIT that gets no answer (the server went down, the connection was cut) is not written twice.

Whether such a transaction committed is unknown to the client. The store
looks before it writes the batch again: if every event of the batch is there,
it returns them as stored rather than store them a second time. The lost
answer is made here by committing for real, then raising the error a dropped
connection raises, from inside the dialect's commit (so SQLAlchemy wraps it
as it would the real one).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from code_wake import Process, QueueSettings
from code_wake._queue_spool import spool_directory_of, write_to
from code_wake._spool import Delivery, deliver_spool
from code_wake.errors import StoreError, StoreUnavailableError
from code_wake.event import EventPolicy, PendingEvent
from code_wake_sql14_store import Sql14QueueStore, Sql14Store, _writes
from code_wake_sql14_store._database import unavailable
from code_wake_sql14_store.schema import events_data

POLICY = EventPolicy()


class LostAnswers:
    """Makes the next `count` COMMITs of a store commit, then fail as if the answer never came."""

    def __init__(self, store: Sql14Store) -> None:
        self.count = 0
        dialect = store._db.engine.dialect
        self._commit = dialect.do_commit
        self._error = dialect.loaded_dbapi.OperationalError
        dialect.do_commit = self._do_commit  # type: ignore[method-assign]

    def _do_commit(self, dbapi_connection: object) -> None:
        self._commit(dbapi_connection)
        if self.count:
            self.count -= 1
            raise self._error("server closed the connection unexpectedly")


@pytest.fixture
def store(db_url: str) -> Iterator[Sql14Store]:
    store = Sql14Store(db_url)
    yield store
    store.close()


def batch(store: Sql14Store, size: int) -> list[PendingEvent]:
    process = Process(store=store, app_name="commit").init()
    return [POLICY.build(process.info, {"n": n}) for n in range(size)]


def stored_ns(store: Sql14Store) -> list[str]:
    query = sa.select(events_data.c.val).where(events_data.c.key == "n").order_by(events_data.c.val)
    with store._db.connect() as conn:
        return [str(v) for (v,) in conn.execute(query)]


def look_fails_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """The store's next look for a batch fails as a lost connection does; the looks after it work."""
    looks = {"left": 1}
    real = _writes._stored_ids

    def unreachable_once(conn: sa.Connection, rows: object) -> object:
        if looks["left"]:
            looks["left"] -= 1
            raise sa.exc.OperationalError("SELECT", {}, Exception("server closed the connection"))
        return real(conn, rows)  # type: ignore[arg-type]

    monkeypatch.setattr(_writes, "_stored_ids", unreachable_once)


def test_a_batch_whose_commit_answer_was_lost_is_stored_once(store: Sql14Store) -> None:
    """The retry finds the batch stored and returns its records; no event twice."""
    events = batch(store, 5)
    LostAnswers(store).count = 1
    records = store.insert_events(events)
    assert [r.data_dict()["n"] for r in records] == ["0", "1", "2", "3", "4"]
    assert len({r.id for r in records}) == 5
    assert stored_ns(store) == ["0", "1", "2", "3", "4"]


def test_the_queue_writing_it_again_later_finds_it_stored(
    store: Sql14Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The store could not look at once (the server was gone): the next write of the batch looks first.

    The queue writes a failed batch again whole, or one event at a time; in
    both forms each event is found stored and not written again.
    """
    events = batch(store, 4)
    LostAnswers(store).count = 1
    look_fails_once(monkeypatch)
    with pytest.raises(Exception, match="server closed the connection"):
        store.insert_events(events)
    first = store.insert_events(events[:1])  # the queue's one-at-a-time form
    rest = store.insert_events(events[1:])
    assert [r.data_dict()["n"] for r in [*first, *rest]] == ["0", "1", "2", "3"]
    assert stored_ns(store) == ["0", "1", "2", "3"]
    # Looked once, found them, forgot them: a new batch is written as usual.
    more = store.insert_events(batch(store, 1))
    assert more[0].id not in {r.id for r in [*first, *rest]}


def test_a_look_that_cannot_connect_is_made_again_before_the_next_write(
    store: Sql14Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server went down with the COMMIT: the look after it cannot even connect.

    That refusal leaves the outcome unknown too; the queue's next write of the
    batch looks first and finds it (seen doubled on MariaDB stopped mid-stream).
    """
    events = batch(store, 2)
    db = store._db
    dialect = db.engine.dialect
    real_commit, real_checkout = dialect.do_commit, db._checkout
    refusals = {"left": 0}

    def commit_then_go_down(dbapi_connection: object) -> None:
        real_commit(dbapi_connection)
        refusals["left"] = 1
        dialect.do_commit = real_commit  # type: ignore[method-assign]
        raise dialect.loaded_dbapi.OperationalError("server closed the connection unexpectedly")

    def refused_once() -> sa.Connection:
        if refusals["left"]:
            refusals["left"] -= 1
            raise unavailable(sa.exc.OperationalError("connect", {}, Exception("Connection refused")), db.url)
        return real_checkout()

    dialect.do_commit = commit_then_go_down  # type: ignore[method-assign]
    monkeypatch.setattr(db, "_checkout", refused_once)
    with pytest.raises(StoreUnavailableError, match="Connection refused"):
        store.insert_events(events)
    records = store.insert_events(events)
    assert [r.data_dict()["n"] for r in records] == ["0", "1"]
    assert stored_ns(store) == ["0", "1"]


def test_rows_found_stored_are_not_written_again_among_others(
    store: Sql14Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The unsure batch was set aside in the spool; delivered later among other events, after another batch.

    Its events are found stored and returned; only the others are written.
    """
    events = batch(store, 5)
    LostAnswers(store).count = 1
    look_fails_once(monkeypatch)
    with pytest.raises(Exception, match="server closed the connection"):
        store.insert_events(events[:3])
    store.insert_events(events[3:4])  # the queue's next batch, written first
    records = store.insert_events(events[:3] + events[4:])  # the spool's delivery
    assert [r.data_dict()["n"] for r in records] == ["0", "1", "2", "4"]
    assert len({r.id for r in records}) == 4
    assert stored_ns(store) == ["0", "1", "2", "3", "4"]


def test_a_batch_that_did_not_commit_is_written(store: Sql14Store) -> None:
    """When the lost COMMIT did not commit (nothing is there), the batch is written: nothing lost."""
    events = batch(store, 3)
    dialect = store._db.engine.dialect
    real = dialect.do_commit
    failed = {"left": 1}

    def rollback_then_fail(dbapi_connection: object) -> None:
        if failed["left"]:
            failed["left"] -= 1
            dialect.do_rollback(dbapi_connection)
            raise dialect.loaded_dbapi.OperationalError("server closed the connection unexpectedly")
        real(dbapi_connection)

    dialect.do_commit = rollback_then_fail  # type: ignore[method-assign]
    with pytest.raises(Exception, match="server closed the connection"):
        store.insert_events(events)
    records = store.insert_events(events)  # the queue's next try: it looks, finds nothing, writes
    assert len(records) == 3
    assert stored_ns(store) == ["0", "1", "2"]


# -- from the spool: events set aside after such a COMMIT ---------------------------------------


def test_the_error_says_whether_the_events_may_be_stored(
    store: Sql14Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After an unanswered COMMIT whose look failed too, the error says so; a refused connection does not."""
    events = batch(store, 2)
    LostAnswers(store).count = 1
    look_fails_once(monkeypatch)
    with pytest.raises(StoreError) as unanswered:
        store.insert_events(events)
    assert unanswered.value.maybe_stored
    db = store._db

    def refused() -> sa.Connection:
        raise unavailable(sa.exc.OperationalError("connect", {}, Exception("Connection refused")), db.url)

    later = batch(store, 1)
    monkeypatch.setattr(db, "_checkout", refused)
    with pytest.raises(StoreUnavailableError) as down:
        store.insert_events(later)
    assert not down.value.maybe_stored


def test_spooled_events_that_may_be_stored_are_looked_for(store: Sql14Store) -> None:
    """Flagged events found stored are not written again; flagged ones not found, and the others, are."""
    events = batch(store, 4)
    store.insert_events(events[:2])
    store.write_spooled(events, [True, True, True, False])
    assert stored_ns(store) == ["0", "1", "2", "3"]


def test_a_stored_event_is_alike_by_process_time_and_data(store: Sql14Store) -> None:
    """One stored twin accounts for one flagged twin, not two; other data at the same instant is written."""
    process = Process(store=store, app_name="commit").init()
    twin = POLICY.build(process.info, {"n": 7}, when_ts=1_700_000_000.25)
    other = POLICY.build(process.info, {"n": 8}, when_ts=twin.when_ts)
    store.insert_events([twin])
    store.write_spooled([twin, twin, other], [True, True, True])
    assert stored_ns(store) == ["7", "7", "8"]


def test_a_batch_spooled_after_an_unanswered_commit_is_delivered_once(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The COMMIT landed, its answer did not, and the server stayed out of reach until the queue gave up.

    The queue spools the batch marked as perhaps stored; a store of another
    process delivers it, finds it stored, and does not write it again.
    """
    settings = QueueSettings(retry_for=0.3, linger=0, spool_dir=str(tmp_path / "spools"))
    queued = Sql14QueueStore(db_url, queue_settings=settings)
    process = Process(store=queued, app_name="commit").init()
    db = queued._db
    dialect = db.engine.dialect
    real_commit, real_checkout = dialect.do_commit, db._checkout
    down = {"now": False}

    def commit_then_go_down(dbapi_connection: object) -> None:
        real_commit(dbapi_connection)
        down["now"] = True
        dialect.do_commit = real_commit  # type: ignore[method-assign]
        raise dialect.loaded_dbapi.OperationalError("server closed the connection unexpectedly")

    def refused_while_down() -> sa.Connection:
        if down["now"]:
            raise unavailable(sa.exc.OperationalError("connect", {}, Exception("Connection refused")), db.url)
        return real_checkout()

    dialect.do_commit = commit_then_go_down  # type: ignore[method-assign]
    monkeypatch.setattr(db, "_checkout", refused_while_down)
    for n in range(3):
        process.log({"n": n})
    assert queued.flush(timeout=10)
    assert (queued.queue_stats.spooled, queued.queue_stats.written) == (3, 0)
    queued.close()

    with Sql14Store(db_url) as deliverer:
        directory = spool_directory_of(deliverer, settings)
        assert directory is not None
        delivery = Delivery()
        deliver_spool(directory, write_to(deliverer), settings.batch_size, delivery)
        assert (delivery.written, delivery.files) == (3, 1)
        assert stored_ns(deliverer) == ["0", "1", "2"]
