"""QueueStore: bounded, batched, retrying, honest about what it could not write."""

from __future__ import annotations

import logging
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path

import pytest

from code_wake import EventRecord, PendingEvent, Process, QueueSettings, QueueStore, StoreError
from code_wake._queue_items import Waiter, events_in, waited_positions, waiters_in
from code_wake.errors import StoreRefusedError
from code_wake.event import EventPolicy
from code_wake.testing import MemoryStore
from code_wake_sql14_store import Sql14QueueStore

POLICY = EventPolicy()


class ControlledStore(MemoryStore):
    """A store whose writes can be held at a gate, or made to fail."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Event()
        self.failures_left = 0
        self.poison: str | None = None
        self.refuse: str | None = None
        self.batches: list[int] = []

    def insert_events(self, events: Sequence[PendingEvent]) -> list[EventRecord]:
        self.entered.set()
        self.gate.wait()
        if self.failures_left:
            self.failures_left -= 1
            raise StoreError("database is locked")
        if self.poison is not None and any(v == self.poison for e in events for _, v in e.data):
            raise StoreError("value refused")
        if self.refuse is not None and any(v == self.refuse for e in events for _, v in e.data):
            raise StoreRefusedError("value refused for good")
        self.batches.append(len(events))
        return super().insert_events(events)


class QueuedStore(QueueStore, ControlledStore):
    """The controlled store behind the queue."""


class GatedSqlite(Sql14QueueStore):
    """A queued SQLite store whose writer can be held at a gate."""

    def __init__(self, url: str, queue_settings: QueueSettings) -> None:
        super().__init__(url, queue_settings=queue_settings)
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Event()

    def write_events(self, events: Sequence[PendingEvent], wanted: Iterable[int]) -> dict[int, EventRecord]:
        self.entered.set()
        self.gate.wait()
        return super().write_events(events, wanted)


def soon(condition: Callable[[], bool]) -> bool:
    """Whether `condition` holds within 10 s: for states no flush can wait for (a held writer, a linger)."""
    deadline = time.monotonic() + 10
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def event(n: int, process: int = 1) -> PendingEvent:
    return POLICY.build(process, {"n": n})


@pytest.fixture
def store() -> Iterator[QueuedStore]:
    store = QueuedStore(queue_settings=QueueSettings(max_events=100, batch_size=10, retry_for=30.0))
    Process(store=store, app_name="app").init()  # process 1, which event() refers to
    yield store
    store.gate.set()
    store.close(timeout=5)


def stored_ns(store: MemoryStore) -> list[str | None]:
    return [e.data_dict().get("n") for e in store.events if "n" in e.data_dict()]


class TestWriting:
    def test_submit_returns_at_once_and_flush_writes(self, store: QueuedStore) -> None:
        """Events are queued, then written in order by the worker, in batches."""
        for n in range(35):
            assert store.submit(event(n)) is None
        assert store.flush(timeout=10)
        assert stored_ns(store) == [str(n) for n in range(35)]
        assert max(store.batches) <= 10
        assert store.queue_stats.written == 35

    def test_sync_waits_for_its_own_event(self, store: QueuedStore) -> None:
        """sync=True through the queue returns the stored record."""
        store.submit(event(1))
        record = store.submit(event(2), sync=True)
        assert record is not None
        assert record.data_dict() == {"n": "2"}
        assert stored_ns(store) == ["1", "2"]

    def test_sync_callers_in_a_batch_get_their_own_records(self, tmp_path: Path) -> None:
        """Waiters among queued events and flush markers each get their own event's record (SQLite)."""
        url = f"sqlite:///{tmp_path / 'queue.db'}"
        store = GatedSqlite(url, queue_settings=QueueSettings(batch_size=100))
        proc = Process(store=store, app_name="app")
        try:
            store.gate.clear()
            proc.log({"n": "held"})
            assert store.entered.wait(10)  # the writer holds the first batch at the gate
            records: dict[int, EventRecord | None] = {}

            def log_sync(n: int) -> None:
                records[n] = proc.log({"n": str(n)}, sync=True)

            callers = []
            for n in range(12):
                if n % 3 == 0:
                    callers.append(threading.Thread(target=log_sync, args=(n,)))
                    callers[-1].start()
                elif n % 4 == 1:
                    callers.append(threading.Thread(target=store.flush))
                    callers[-1].start()
                else:
                    proc.log({"n": str(n)})
            # The writer is held, so no flush can tell: 1 held + 10 queued, the 4 sync ones among them.
            assert soon(lambda: store.queue_stats.pending == 11)
            store.gate.set()
            for caller in callers:
                caller.join(10)
                assert not caller.is_alive()
            assert sorted(records) == [0, 3, 6, 9]
            for n, record in records.items():
                assert record is not None
                assert record.data_dict() == {"n": str(n)}
                assert store.get_event_by_id(record.id) == record
            assert store.flush(10)
            assert store.queue_stats.written == 11
        finally:
            store.gate.set()
            store.close(timeout=5)

    def test_waiters_are_paired_with_their_events_positions(self) -> None:
        """A sync event's position counts the batch's events only; a flush marker has none."""
        first, second = Waiter(event(1)), Waiter(event(3))
        markers = [Waiter(None), Waiter(None)]
        batch = [event(0), markers[0], first, event(2), markers[1], second]
        assert waiters_in(batch) == [(markers[0], None), (first, 1), (markers[1], None), (second, 3)]
        assert waited_positions(waiters_in(batch)) == [1, 3]
        assert [e.data for e in events_in(batch)] == [event(n).data for n in range(4)]

    def test_process_log_sync_through_the_queue(self, store: QueuedStore) -> None:
        """Process().log(sync=True) returns the event whatever the store."""
        record = Process().log({"k": "v"}, sync=True)
        assert record is not None
        assert record.data_dict() == {"k": "v"}

    def test_flush_with_nothing_queued(self, store: QueuedStore) -> None:
        """A flush of an empty queue succeeds at once."""
        assert store.flush(timeout=1)


def written_soon(store: QueuedStore, count: int) -> bool:
    """Whether `count` events are written within 10 s, without a flush (which would end a linger)."""
    return soon(lambda: store.queue_stats.written >= count)


class TestLinger:
    """A batch smaller than batch_size waits `linger` for more; nobody waiting for the queue waits for it."""

    @pytest.fixture
    def lingering(self) -> Iterator[QueuedStore]:
        # A linger far longer than any of these tests: what is written before it ends was not held.
        store = QueuedStore(queue_settings=QueueSettings(batch_size=10, linger=600.0, sync_timeout=10.0))
        Process(store=store, app_name="app").init()
        yield store
        store.close(timeout=5)

    def test_events_wait_for_the_batch_to_fill(self, lingering: QueuedStore) -> None:
        for n in range(7):
            lingering.submit(event(n))
        assert lingering.flush(timeout=10)  # ends the linger
        assert lingering.batches == [7]
        assert stored_ns(lingering) == [str(n) for n in range(7)]

    def test_a_full_batch_is_written_at_once(self, lingering: QueuedStore) -> None:
        for n in range(25):
            lingering.submit(event(n))
        assert written_soon(lingering, 20)
        assert lingering.batches == [10, 10]  # the last 5 linger

    def test_a_sync_event_is_not_kept_waiting(self, lingering: QueuedStore) -> None:
        lingering.submit(event(1))
        record = lingering.submit(event(2), sync=True)  # raises after sync_timeout if it waited
        assert record is not None
        assert lingering.batches == [2]

    def test_close_ends_the_linger(self, lingering: QueuedStore) -> None:
        lingering.submit(event(1))
        assert lingering.close(timeout=10)
        assert stored_ns(lingering) == ["1"]

    def test_no_linger_writes_when_woken(self) -> None:
        store = QueuedStore(queue_settings=QueueSettings(batch_size=10, linger=0))
        Process(store=store, app_name="app").init()
        try:
            store.submit(event(1))
            assert written_soon(store, 1)
        finally:
            store.close(timeout=5)

    @pytest.mark.parametrize("linger", [-1.0, float("nan"), float("inf")])
    def test_a_bad_linger_is_refused(self, linger: float) -> None:
        with pytest.raises(ValueError, match="linger must be 0 or more seconds"):
            QueueSettings(linger=linger)


class TestBound:
    def test_full_queue_drops_and_counts(self, store: QueuedStore, caplog: pytest.LogCaptureFixture) -> None:
        """Past max_events new events are dropped, counted and reported, never blocking the caller."""
        store.gate.clear()
        store.submit(event(-1))
        assert store.entered.wait(5)
        with caplog.at_level(logging.WARNING, logger="code_wake"):
            for n in range(150):
                store.submit(event(n))
        stats = store.queue_stats
        assert stats.pending == 101  # 100 waiting, and the one held at the gate
        assert stats.dropped == 50
        assert stats.logged == 151
        assert "events are being dropped" in caplog.text

    def test_bound_is_bytes(self) -> None:
        """Large events fill the queue by their size, long before its event count."""
        store = QueuedStore(queue_settings=QueueSettings(max_bytes=200_000))
        Process(store=store, app_name="app").init()
        store.gate.clear()
        store.submit(event(-1))
        assert store.entered.wait(5)
        for n in range(100):
            store.submit(POLICY.build(1, {"n": n, "blob": "x" * 4000}))
        stats = store.queue_stats
        assert 40 <= stats.pending < 60
        assert stats.pending_bytes <= 200_000
        assert stats.dropped == 101 - stats.pending
        store.gate.set()
        assert store.close(timeout=10)

    def test_default_bound_takes_a_burst(self) -> None:
        """With default settings, 80,000 events logged while the store is stalled are all kept."""
        store = QueuedStore()
        Process(store=store, app_name="app").init()
        store.gate.clear()
        for n in range(80_000):
            store.submit(POLICY.build(1, {"worker": "w1", "n": n, "text": "order placed"}))
        assert store.queue_stats.dropped == 0
        store.gate.set()
        assert store.close(timeout=60)
        assert store.queue_stats.written == 80_000

    def test_drops_are_recorded_once_the_store_writes(self, store: QueuedStore) -> None:
        """After a stall, an event records how many were dropped."""
        store.gate.clear()
        store.submit(event(-1))
        assert store.entered.wait(5)
        for n in range(130):
            store.submit(event(n))
        store.gate.set()
        assert store.flush(timeout=10)
        notes = [e.data_dict() for e in store.events if e.data_dict().get("event") == "code_wake.dropped"]
        assert notes == [{"event": "code_wake.dropped", "count": "30", "reason": "queue full"}]
        assert len(stored_ns(store)) == 101

    def test_memory_stays_flat_under_a_flood(self, store: QueuedStore) -> None:
        """Once the queue is full, more events cost no more memory."""
        store.gate.clear()
        store.submit(event(-1))
        assert store.entered.wait(5)
        ready = [event(n) for n in range(20_000)]
        for pending in ready[:200]:
            store.submit(pending)
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            for pending in ready:
                store.submit(pending)
            grown = tracemalloc.get_traced_memory()[0] - before
        finally:
            tracemalloc.stop()
        assert store.queue_stats.pending == 101
        assert grown < 20_000  # bytes, for 20,000 refused events: nothing kept per event


class TestFailures:
    def test_failing_store_is_retried(self, store: QueuedStore) -> None:
        """A store that fails a few times (a locked database) is waited out; nothing is lost."""
        store.failures_left = 2
        for n in range(5):
            store.submit(event(n))
        assert store.flush(timeout=10)
        assert stored_ns(store) == [str(n) for n in range(5)]
        assert store.queue_stats.retries == 2
        assert store.queue_stats.lost == 0

    def test_given_up_after_retry_for(self, caplog: pytest.LogCaptureFixture) -> None:
        """A store that keeps failing is given up after retry_for; the loss is counted and reported."""
        store = QueuedStore(queue_settings=QueueSettings(retry_for=0.2))
        Process(store=store).init()
        store.failures_left = 1_000_000
        with caplog.at_level(logging.WARNING, logger="code_wake"):
            for n in range(3):
                store.submit(event(n))
            assert store.flush(timeout=10)
        stats = store.queue_stats
        assert stats.lost == stats.dropped == 3
        assert stats.logged == stats.pending + stats.written + stats.dropped + stats.rejected
        assert "given up" in caplog.text
        store.failures_left = 0
        store.close()

    def test_sync_caller_hears_of_the_loss(self) -> None:
        """A sync event that is given up raises StoreError in its caller."""
        store = QueuedStore(queue_settings=QueueSettings(retry_for=0.2))
        Process(store=store).init()
        store.failures_left = 1_000_000
        with pytest.raises(StoreError, match="could not be written"):
            store.submit(event(1), sync=True)
        store.failures_left = 0
        store.close()

    def test_refused_event_does_not_sink_its_batch(self, store: QueuedStore) -> None:
        """An event the store always refuses is dropped alone; the rest of its batch is written."""
        store.poison = "4"
        for n in range(8):
            store.submit(event(n))
        assert store.flush(timeout=30)
        assert stored_ns(store) == ["0", "1", "2", "3", "5", "6", "7"]
        assert store.queue_stats.rejected == 1

    def test_refusal_is_not_retried(self, store: QueuedStore) -> None:
        """An event the store refuses for good is rejected at once: no retries, its neighbours written."""
        store.refuse = "4"
        for n in range(8):
            store.submit(event(n))
        assert store.flush(timeout=30)
        assert stored_ns(store) == ["0", "1", "2", "3", "5", "6", "7"]
        stats = store.queue_stats
        assert (stats.rejected, stats.retries) == (1, 0)
        assert stats.logged == stats.written + stats.rejected

    def test_dead_worker_is_restarted(self, store: QueuedStore) -> None:
        """If the worker dies anyway, the next event starts a new one."""

        class Fatal(BaseException):
            """Something no except-Exception catches."""

        original = store.insert_events

        def die_once(events: Sequence[PendingEvent]) -> list[EventRecord]:
            store.insert_events = original  # type: ignore[method-assign]
            raise Fatal

        store.insert_events = die_once  # type: ignore[method-assign]
        store.submit(event(1))
        first = store.queue.worker
        assert first is not None
        first.join(5)
        assert not first.is_alive()
        assert store.queue_stats.lost == 1
        store.submit(event(2))
        assert store.flush(timeout=5)
        assert store.queue.worker is not first
        assert stored_ns(store) == ["2"]

    def test_flush_is_honest_about_its_deadline(self, store: QueuedStore) -> None:
        """flush returns False when the store could not take the events in time, True once it did."""
        store.gate.clear()
        store.submit(event(1))
        assert not store.flush(timeout=0.05)
        store.gate.set()
        assert store.flush(timeout=10)


class TestClose:
    def test_close_flushes_and_refuses_more(self, store: QueuedStore) -> None:
        """close writes what is queued, closes the store, and later events are refused."""
        for n in range(3):
            store.submit(event(n))
        assert store.close(timeout=5)
        assert store.closed
        assert stored_ns(store) == ["0", "1", "2"]
        with pytest.raises(StoreError, match="closed"):
            store.submit(event(4))

    def test_log_after_close_does_not_raise(self, store: QueuedStore) -> None:
        """Process.log never raises, even into a closed store."""
        store.close()
        assert Process().log({"late": "event"}) is None

    def test_close_twice(self, store: QueuedStore) -> None:
        """A second close is harmless."""
        assert store.close()
        assert store.close()


class TestSqliteMemory:
    def test_memory_database_behind_the_queue(self) -> None:
        """sqlite:///:memory: works with the queue: one shared connection, many threads."""
        store = Sql14QueueStore("sqlite:///:memory:")
        proc = Process(store=store, app_name="mem")

        def work(worker: int) -> None:
            for n in range(50):
                proc.log({"worker": str(worker), "n": str(n)})

        threads = [threading.Thread(target=work, args=(w,)) for w in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert store.flush(timeout=10)
        for worker in range(4):
            assert len(store.get_events_by_data([("worker", str(worker))])) == 50
        store.close()
