"""The disk spool: its records, its files and their locks, delivery, and the queue's use of it."""

from __future__ import annotations

import dataclasses
import json
import os
import stat
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from code_wake import EventRecord, PendingEvent, Process, QueueSettings, QueueStore, StoreError, _spool_format
from code_wake._queue_spool import spool_directory_of
from code_wake._spool import Delivery, Spool, SpoolError, deliver_spool, list_spool, spool_directory
from code_wake._spool_format import decode_event, encode_event
from code_wake.cli import main
from code_wake.config import Config
from code_wake.errors import StoreRefusedError
from code_wake.event import EventPolicy
from code_wake.query import EventFilter
from code_wake.records import ProcessInfo
from code_wake.stack_trace import RawFrame
from code_wake.testing import MemoryStore
from code_wake_sql14_store import Sql14Store

POLICY = EventPolicy()
INFO = ProcessInfo(4242, "ann", "host.example", "/usr/bin/python3", 1_700_000_000.5, "shop", "1.2", "prod")


def event(n: int, process: int | ProcessInfo = 1) -> PendingEvent:
    return POLICY.build(process, {"n": n})


def json_lines(text: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in text.splitlines()]


def ns(events: Sequence[PendingEvent]) -> list[str | None]:
    return [dict(e.data)["n"] for e in events]


class Collector:
    """A `WriteBatch` that keeps what it is given; it can fail, or refuse one value for good."""

    def __init__(self) -> None:
        self.events: list[PendingEvent] = []
        self.maybe_stored: list[bool] = []
        """The flags of every event given, written or not, in order."""
        self.fail_after: int | None = None
        self.refuse: str | None = None

    def __call__(self, batch: list[PendingEvent], maybe_stored: list[bool]) -> int:
        assert len(maybe_stored) == len(batch)
        self.maybe_stored.extend(maybe_stored)
        if self.fail_after is not None and len(self.events) >= self.fail_after:
            raise StoreError("database is down")
        refused = [e for e in batch if dict(e.data).get("n") == self.refuse]
        self.events.extend(e for e in batch if e not in refused)
        return len(refused)


@pytest.fixture
def spool(tmp_path: Path) -> Iterator[Spool]:
    spool = Spool(tmp_path / "spool" / "store", 10_000_000, "sqlite:///the.db")
    yield spool
    spool.release()


def deliver(spool: Spool, collector: Collector, batch_size: int = 100) -> Delivery:
    delivery = Delivery(own_writer=spool.writer)
    deliver_spool(spool.directory, collector, batch_size, delivery)
    return delivery


class TestRecords:
    def test_an_event_comes_back_whole(self) -> None:
        """Every field survives, odd text included: emoji, NUL, a lone surrogate, None values."""
        original = PendingEvent(
            7,
            1_700_000_123.25,
            (("emoji", "\U0001f600"), ("nul", "a\x00b"), ("surrogate", "\udcff"), ("none", None)),
            (RawFrame("/app/x.py", 3, "main"), RawFrame("/app/y.py", 9, None, "raise E()")),
            "app.Error",
            "went wrong",
            (("KeyError", "'k'"),),
        )
        assert decode_event(encode_event(original)) == original

    def test_a_process_comes_back_as_the_same_object(self) -> None:
        """A store caches a process by identity: a replayed event must not register it a second time."""
        decoded = decode_event(encode_event(event(1, INFO)))
        assert decoded.process is INFO

    def test_a_process_of_another_run_is_one_object_for_all_its_events(self) -> None:
        """Events of a process this one never saw share one ProcessInfo (registered once)."""
        other = ProcessInfo(99, None, None, None, 5.0, "elsewhere")
        payloads = [encode_event(event(n, other)) for n in range(3)]
        _spool_format._known_processes.clear()
        first, second, third = (decode_event(p).process for p in payloads)
        assert first is second is third
        assert dataclasses.astuple(first) == dataclasses.astuple(other)  # type: ignore[arg-type]
        assert first is not other


class TestFiles:
    def test_private_directory_and_files(self, spool: Spool) -> None:
        """The spool holds what programs did: 0700 directories, 0600 files."""
        spool.append([event(1)])
        assert stat.S_IMODE(spool.directory.stat().st_mode) == 0o700
        (found,) = list_spool(spool.directory)
        assert stat.S_IMODE(found.path.stat().st_mode) == 0o600

    def test_one_directory_per_store(self, tmp_path: Path) -> None:
        """Stores named differently spool apart; the same name finds the same directory."""
        a = spool_directory(tmp_path, "sqlite:/a.db")
        assert a == spool_directory(tmp_path, "sqlite:/a.db")
        assert a != spool_directory(tmp_path, "sqlite:/b.db")

    def test_a_held_file_waits_until_released(self, spool: Spool) -> None:
        """The file a live queue holds is not delivered under it; once released it is, then deleted."""
        spool.append([event(n) for n in range(3)])
        (shown,) = list_spool(spool.directory)
        assert (shown.in_use, shown.events, shown.header is not None) == (True, 3, True)
        collector = Collector()
        assert deliver(spool, collector).written == 0
        spool.release()
        delivery = deliver(spool, collector)
        assert (delivery.own, delivery.files) == (3, 1)
        assert ns(collector.events) == ["0", "1", "2"]
        assert list_spool(spool.directory) == []

    def test_files_are_delivered_oldest_first(self, tmp_path: Path) -> None:
        """Two writers' files come back in the order they were started; another writer's count as others'."""
        directory = tmp_path / "spool"
        first, second = Spool(directory, 10**7, "db"), Spool(directory, 10**7, "db")
        first.append([event(1)])
        second.append([event(2)])
        first.append([event(3)])
        first.release()
        second.release()
        collector = Collector()
        delivery = Delivery(own_writer=second.writer)
        deliver_spool(directory, collector, 10, delivery)
        assert ns(collector.events) == ["1", "3", "2"]
        assert (delivery.own, delivery.others) == (1, 2)

    def test_full_spool_refuses(self, tmp_path: Path) -> None:
        """Past its size bound the spool refuses with an error that says so; what it took stays whole."""
        spool = Spool(tmp_path / "spool", 2_000, "db")
        taken = 0
        with pytest.raises(SpoolError, match="the spool is full"):  # noqa: PT012 - appends until refused
            for n in range(1_000):
                spool.append([event(n)])
                taken += 1
        spool.release()
        collector = Collector()
        deliver(spool, collector)
        assert 5 < taken < 1_000
        assert ns(collector.events) == [str(n) for n in range(taken)]

    def test_unwritable_directory_refuses(self, tmp_path: Path) -> None:
        """A spool that cannot be created reports why instead of raising OSError."""
        blocker = tmp_path / "file"
        blocker.write_text("not a directory")
        spool = Spool(blocker / "spool", 10**6, "db")
        with pytest.raises(SpoolError, match="cannot be written"):
            spool.append([event(1)])


class TestDamage:
    def _spooled_file(self, spool: Spool, count: int) -> Path:
        spool.append([event(n) for n in range(count)])
        spool.release()
        (found,) = list_spool(spool.directory)
        return found.path

    def test_torn_tail_is_skipped_and_counted(self, spool: Spool, caplog: pytest.LogCaptureFixture) -> None:
        """A record cut off mid-write (a crash) ends the file: what came before is delivered."""
        path = self._spooled_file(spool, 5)
        os.truncate(path, path.stat().st_size - 3)
        (shown,) = list_spool(spool.directory)
        assert (shown.events, shown.torn_bytes > 0) == (4, True)
        collector = Collector()
        delivery = deliver(spool, collector)
        assert ns(collector.events) == ["0", "1", "2", "3"]
        assert (delivery.torn, delivery.files) == (1, 1)
        assert "cut-off record" in caplog.text
        assert not path.exists()

    def test_damaged_record_ends_the_file_there(self, spool: Spool) -> None:
        """A record whose checksum does not match is not trusted, nor anything after it."""
        path = self._spooled_file(spool, 4)
        data = bytearray(path.read_bytes())
        data[-5] ^= 0xFF  # inside the last record's bytes
        path.write_bytes(bytes(data))
        collector = Collector()
        assert deliver(spool, collector).torn == 1
        assert ns(collector.events) == ["0", "1", "2"]

    def test_a_file_that_is_no_spool_is_moved_aside(self, spool: Spool) -> None:
        """Something else under the spool's name is set aside, not read, not deleted."""
        spool.directory.mkdir(parents=True)
        stranger = spool.directory / "00000000000000000001-1-abcdef01.spool"
        stranger.write_bytes(b"hello, world")
        delivery = deliver(spool, Collector())
        assert delivery.damaged == [str(stranger) + ".damaged"]
        assert Path(delivery.damaged[0]).read_bytes() == b"hello, world"


class TestDelivery:
    def test_a_failed_delivery_resumes_where_it_stopped(self, spool: Spool) -> None:
        """Progress is noted batch by batch: nothing is written twice, nothing skipped."""
        spool.append([event(n) for n in range(25)])
        spool.release()
        collector = Collector()
        collector.fail_after = 10
        with pytest.raises(StoreError):
            deliver(spool, collector, batch_size=5)
        (shown,) = list_spool(spool.directory)
        assert shown.events == 15
        collector.fail_after = None
        deliver(spool, collector, batch_size=5)
        assert ns(collector.events) == [str(n) for n in range(25)]

    def test_refused_events_are_counted_not_retried(self, spool: Spool) -> None:
        """An event the store refuses for good is counted and the file is still finished."""
        spool.append([event(n) for n in range(4)])
        spool.release()
        collector = Collector()
        collector.refuse = "2"
        delivery = deliver(spool, collector)
        assert (delivery.own, delivery.own_rejected, delivery.files) == (3, 1, 1)


class TestMaybeStored:
    """Events whose write may have committed are marked, and delivered flagged: the store looks first."""

    def test_a_batch_appended_marked_comes_back_flagged(self, spool: Spool) -> None:
        spool.append([event(0), event(1)])
        spool.append([event(2), event(3)], maybe_stored=True)
        spool.append([event(4)])
        spool.release()
        collector = Collector()
        deliver(spool, collector, batch_size=2)
        assert ns(collector.events) == ["0", "1", "2", "3", "4"]
        assert collector.maybe_stored == [False, False, True, True, False]

    def test_a_delivery_cut_short_flags_its_batch_the_next_time(self, spool: Spool) -> None:
        """The store failed (its answer lost, perhaps after committing): the next delivery looks first."""
        spool.append([event(n) for n in range(6)])
        spool.release()
        collector = Collector()
        collector.fail_after = 3  # the second batch fails
        with pytest.raises(StoreError):
            deliver(spool, collector, batch_size=3)
        collector.fail_after = None
        deliver(spool, collector, batch_size=3)
        assert ns(collector.events) == [str(n) for n in range(6)]
        assert collector.maybe_stored == [False] * 3 + [False] * 3 + [True] * 3

    def test_marks_that_cannot_be_written_or_read_leave_the_events_whole(
        self, spool: Spool, caplog: pytest.LogCaptureFixture
    ) -> None:
        """A mark is best effort: reported when it fails, and the events go on as without it."""
        spool.append([event(0)])
        (shown,) = list_spool(spool.directory)
        shown.path.with_name(shown.path.name + ".maybe").mkdir()  # neither written nor read as a file
        spool.append([event(1)], maybe_stored=True)
        spool.release()
        collector = Collector()
        deliver(spool, collector)
        assert (ns(collector.events), collector.maybe_stored) == (["0", "1"], [False, False])
        assert "could not mark events of the spool file" in caplog.text
        assert "cannot be read: its events are written as they are" in caplog.text

    def test_a_store_that_cannot_look_writes_them_all(self) -> None:
        """`Store.write_spooled` by default writes flagged events too: a plain store has no way to look."""
        store = MemoryStore()
        once = event(1, INFO)
        store.insert_events([once])
        store.write_spooled([once, event(2, INFO)], [True, False])
        assert stored_ns(store) == ["1", "1", "2"]

    def test_marks_go_with_their_file(self, spool: Spool) -> None:
        """Delivered, a file goes with its marks; marks left by a delivery that ignored them go too."""
        spool.append([event(0)], maybe_stored=True)
        spool.release()
        orphan = spool.directory / "00000000000000000001-1-abcdef01.spool.maybe"
        orphan.write_bytes(b"24 80\n")
        deliver(spool, Collector())
        assert list(spool.directory.iterdir()) == []

    def test_a_torn_marks_line_is_skipped(self, spool: Spool) -> None:
        """A crash while marking leaves part of a line: the marks before it hold, the rest is ignored."""
        spool.append([event(0)], maybe_stored=True)
        spool.append([event(1)])
        (shown,) = list_spool(spool.directory)
        with open(shown.path.with_name(shown.path.name + ".maybe"), "ab") as marks:
            marks.write(b"12")
        spool.release()
        collector = Collector()
        deliver(spool, collector)
        assert collector.maybe_stored == [True, False]


# -- the queue and its spool ---------------------------------------------------------------------


class FailingStore(MemoryStore):
    """A memory store that can be made to fail every write, and that names itself for a spool."""

    def __init__(self) -> None:
        super().__init__()
        self.down = False
        self.refuse: str | None = None
        self.attempts = threading.Semaphore(0)

    def spool_key(self) -> str:
        return "memory:test"

    def insert_events(self, events: Sequence[PendingEvent]) -> list[EventRecord]:
        self.attempts.release()
        if self.down:
            raise StoreError("database is down")
        if self.refuse is not None and any(v == self.refuse for e in events for _, v in e.data):
            raise StoreRefusedError("value refused for good")
        return super().insert_events(events)


class SpooledStore(QueueStore, FailingStore):
    """The failing store behind a queue with a spool."""


def spooled_store(tmp_path: Path, **settings: object) -> SpooledStore:
    options: dict[str, object] = {"retry_for": 0.2, "batch_size": 10, "spool_dir": str(tmp_path / "spools")}
    options.update(settings)
    store = SpooledStore(queue_settings=QueueSettings(**options))  # type: ignore[arg-type]
    Process(store=store, app_name="app").init()
    return store


def stored_ns(store: MemoryStore) -> list[str | None]:
    return [e.data_dict().get("n") for e in store.events if "n" in e.data_dict()]


def wait_until(condition: object, timeout: float = 20.0) -> bool:
    done = threading.Event()
    for _ in range(int(timeout / 0.02)):
        if condition():  # type: ignore[operator]
            return True
        done.wait(0.02)
    return False


class TestQueueSpool:
    def test_an_outage_longer_than_retry_for_loses_nothing(self, tmp_path: Path) -> None:
        """Past retry_for the queue spools instead of dropping; once the store is back all is written once."""
        store = spooled_store(tmp_path)
        store.down = True
        for n in range(50):
            store.submit(event(n))
        assert store.flush(timeout=10)
        stats = store.queue_stats
        assert (stats.spooled, stats.dropped, stats.written) == (50, 0, 0)
        assert stats.logged == stats.pending + stats.written + stats.spooled + stats.dropped + stats.rejected
        for n in range(50, 60):  # while down: straight to the spool, no retrying
            store.submit(event(n))
        assert store.flush(timeout=10)
        assert store.queue_stats.spooled == 60
        store.down = False
        assert wait_until(lambda: store.queue_stats.spooled == 0)
        store.submit(event(60))
        assert store.flush(timeout=10)
        assert sorted(map(int, stored_ns(store))) == list(range(61))  # type: ignore[arg-type]
        stats = store.queue_stats
        assert (stats.written, stats.spooled, stats.dropped, stats.logged) == (61, 0, 0, 61)
        assert list_spool(store.queue.spool.directory) == []  # type: ignore[union-attr]
        store.close()

    def test_full_memory_spills_to_the_spool(self, tmp_path: Path) -> None:
        """When memory is full the caller's event goes to the spool, and is written after the rest."""
        store = spooled_store(tmp_path, max_events=20, retry_for=30.0)
        store.down = True
        store.submit(event(-1))
        assert store.attempts.acquire(timeout=5)  # the writer holds one batch, failing
        for n in range(40):
            store.submit(event(n))
        stats = store.queue_stats
        assert (stats.pending, stats.spooled, stats.dropped) == (21, 20, 0)
        store.down = False
        assert store.flush(timeout=20)
        assert wait_until(lambda: store.queue_stats.spooled == 0)
        assert sorted(map(int, stored_ns(store))) == list(range(-1, 40))  # type: ignore[arg-type]
        store.close()

    def test_close_spools_what_is_left(self, tmp_path: Path) -> None:
        """close() while the store fails puts what it could not write in the spool, for the next process."""
        store = spooled_store(tmp_path, retry_for=30.0)
        store.down = True
        for n in range(5):
            store.submit(event(n))
        assert not store.close(timeout=0.3)
        stats = store.queue_stats
        assert (stats.spooled, stats.dropped, stats.pending) == (5, 0, 0)
        (shown,) = list_spool(store.queue.spool.directory)  # type: ignore[union-attr]
        assert (shown.events, shown.in_use) == (5, False)

    def test_the_next_queue_delivers_and_counts_them_as_replayed(self, tmp_path: Path) -> None:
        """A new queue for the same store writes what an earlier one left, counted apart from its own."""
        first = spooled_store(tmp_path, retry_for=30.0)
        first.down = True
        for n in range(5):
            first.submit(event(n))
        first.close(timeout=0.3)
        Process.reset()
        second = spooled_store(tmp_path)
        second.submit(event(5))
        assert second.flush(timeout=10)
        assert stored_ns(second) == ["0", "1", "2", "3", "4", "5"]
        stats = second.queue_stats
        assert (stats.replayed, stats.written, stats.logged) == (5, 1, 1)
        second.close()

    def test_sync_caller_hears_its_event_is_spooled(self, tmp_path: Path) -> None:
        """A sync event the store cannot take raises, and says where the event is."""
        store = spooled_store(tmp_path)
        store.down = True
        with pytest.raises(StoreError, match="kept in the spool"):
            store.submit(event(1), sync=True)
        assert store.queue_stats.spooled == 1
        store.down = False
        assert wait_until(lambda: store.queue_stats.written == 1)
        store.close()

    def test_no_spool_when_turned_off(self, tmp_path: Path) -> None:
        """spool_max_bytes=0: what the store cannot take is dropped and counted, as before."""
        store = spooled_store(tmp_path, spool_max_bytes=0)
        assert store.queue.spool is None
        store.down = True
        store.submit(event(1))
        assert store.flush(timeout=10)
        assert (store.queue_stats.dropped, store.queue_stats.lost) == (1, 1)
        store.down = False
        store.close()

    def test_full_spool_drops_and_notes_it_in_the_data(self, tmp_path: Path) -> None:
        """When the spool is full too, events are dropped, counted, and a note says so once writes work."""
        store = spooled_store(tmp_path, spool_max_bytes=1000, retry_for=0.1)
        store.down = True
        for n in range(30):
            store.submit(event(n))
        assert store.flush(timeout=10)
        stats = store.queue_stats
        assert stats.dropped > 0 and stats.spooled > 0
        assert stats.spooled + stats.dropped == 30
        store.down = False
        assert wait_until(lambda: store.queue_stats.spooled == 0)
        store.submit(event(99))
        assert store.flush(timeout=10)
        notes = [e.data_dict() for e in store.events if e.data_dict().get("event") == "code_wake.dropped"]
        assert notes == [
            {"event": "code_wake.dropped", "count": str(stats.dropped), "reason": "the store is down"}
        ]
        store.close()

    def test_the_store_refusing_a_spooled_event_rejects_only_it(self, tmp_path: Path) -> None:
        """A spooled event the store refuses for good is counted as rejected; its neighbours are written."""
        store = spooled_store(tmp_path)
        store.down = True
        for n in range(4):
            store.submit(event(n))
        assert store.flush(timeout=10)
        store.refuse = "2"
        store.down = False
        assert wait_until(lambda: store.queue_stats.spooled == 0)
        assert stored_ns(store) == ["0", "1", "3"]
        assert store.queue_stats.rejected == 1
        store.close()


# -- code-wake spool -----------------------------------------------------------------------------


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    try:
        status = main(list(argv))
    except SystemExit as exc:
        status = int(exc.code or 0)
    out, err = capsys.readouterr()
    return status, out, err


class TestCommand:
    """The command finds the spool a program of this configuration would use (conftest sets the data dir)."""

    @pytest.fixture
    def url(self, tmp_path: Path) -> str:
        return f"sqlite:///{tmp_path / 'events.sqlite'}"

    def _spool_for(self, url: str) -> Spool:
        store = Sql14Store(url)
        directory = spool_directory_of(store, Config.load().queue_settings())
        assert directory is not None
        return Spool(directory, 10**7, store.describe())

    def test_nothing_waits_and_nothing_is_created(
        self, capsys: pytest.CaptureFixture[str], url: str, tmp_path: Path
    ) -> None:
        """Showing an empty spool says so, and creates neither the spool nor the database."""
        status, out, _ = cli(capsys, "spool", "--store", url)
        assert status == 0
        assert "nothing waits" in out
        assert not (tmp_path / "events.sqlite").exists()
        assert not self._spool_for(url).directory.exists()

    def test_show_then_deliver(self, capsys: pytest.CaptureFixture[str], url: str) -> None:
        """What waits is listed per file with its writer and count; --deliver writes it with its process."""
        spool = self._spool_for(url)
        spool.append([event(n, INFO) for n in range(7)])
        spool.release()
        status, out, _ = cli(capsys, "spool", "--store", url)
        assert status == 0
        assert "7 events wait in 1 file" in out
        assert f" {os.getpid()} " in out and "waiting" in out  # the process that wrote the file
        status, out, _ = cli(capsys, "spool", "--store", url, "--json")
        (shown,) = json_lines(out)
        assert (shown["events"], shown["pid"], shown["in_use"]) == (7, os.getpid(), False)
        status, out, err = cli(capsys, "spool", "--store", url, "--deliver")
        assert (status, err) == (0, "")
        assert f"wrote 7 events from 1 file to {url}" in out
        with Sql14Store(url) as store:
            events = list(store.query_events(EventFilter()))
            assert sorted(int(e.data_dict()["n"]) for e in events) == list(range(7))  # type: ignore[arg-type]
            assert {e.process.pid for e in events} == {4242}
            assert {e.process.app.name for e in events} == {"shop"}
        assert "nothing waits" in cli(capsys, "spool", "--store", url)[1]

    def test_a_held_file_is_left_to_its_process(self, capsys: pytest.CaptureFixture[str], url: str) -> None:
        """A file a running program still holds is shown as held, and --deliver leaves it."""
        spool = self._spool_for(url)
        spool.append([event(1)])
        try:
            assert "held by its process" in cli(capsys, "spool", "--store", url)[1]
            status, out, _ = cli(capsys, "spool", "--store", url, "--deliver")
            assert status == 0
            assert "1 events in 1 file held by a running process" in out
        finally:
            spool.release()

    def test_a_failing_store_says_how_far_it_got(
        self, capsys: pytest.CaptureFixture[str], tmp_path: Path
    ) -> None:
        """--deliver against a store that cannot be written fails with one line; the events keep waiting."""
        url = f"sqlite:///{tmp_path / 'missing' / 'events.sqlite'}"
        spool = self._spool_for(url)
        spool.append([event(1, INFO)])
        spool.release()
        status, _, err = cli(capsys, "spool", "--store", url, "--deliver")
        assert status == 1
        assert err.startswith("code-wake: error: writing the spool stopped after 0 events")
        assert "1 events wait in 1 file" in cli(capsys, "spool", "--store", url)[1]

    def test_no_spool_for_a_memory_database(self, capsys: pytest.CaptureFixture[str]) -> None:
        """A database that lives in one process has no spool; the command says so."""
        status, out, _ = cli(capsys, "spool", "--store", "sqlite://")
        assert status == 0
        assert "has no spool" in out


class TestSpoolKey:
    def test_names_the_database_not_the_driver_nor_the_password(self) -> None:
        """Two drivers, two passwords, one database: one spool; no password in the key."""
        keys = {
            Sql14Store(url).spool_key()
            for url in (
                "postgresql+psycopg://app:secret@db.example:5433/events",
                "postgresql://app:other@db.example:5433/events?sslmode=require",
            )
        }
        assert keys == {"postgresql://app@db.example:5433/events"}

    def test_a_relative_sqlite_path_is_made_absolute(
        self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
    ) -> None:
        """Programs started in different directories write different files: their spools differ too."""
        monkeypatch.chdir(tmp_path)
        assert Sql14Store("sqlite:///events.sqlite").spool_key() == f"sqlite:{tmp_path / 'events.sqlite'}"
        assert Sql14Store("sqlite://").spool_key() is None


class TestFork:
    def test_a_forked_child_spools_to_a_file_of_its_own(self, tmp_path: Path) -> None:
        """The parent's file stays the parent's, held; the child's is free once the child is gone."""
        store = spooled_store(tmp_path)
        store.down = True
        store.submit(event(1))
        assert store.flush(timeout=10)
        child = os.fork()
        if child == 0:  # pragma: no cover - the child reports through its exit status
            try:
                store.submit(event(2))
                ok = store.flush(timeout=10) and store.queue_stats.spooled == 1
            finally:
                os._exit(0 if ok else 1)
        _, status = os.waitpid(child, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        files = list_spool(store.queue.spool.directory)  # type: ignore[union-attr]
        by_pid = {f.header.pid: f for f in files if f.header is not None}
        assert set(by_pid) == {os.getpid(), child}
        assert (by_pid[os.getpid()].in_use, by_pid[os.getpid()].events) == (True, 1)
        assert (by_pid[child].in_use, by_pid[child].events) == (False, 1)
        store.down = False
        assert wait_until(lambda: store.queue_stats.spooled == 0)
        assert sorted(stored_ns(store)) == ["1", "2"]
        assert store.queue_stats.replayed == 1
        store.close()


class TestProcessIdentity:
    def test_a_process_registered_before_the_outage_is_not_registered_again(self, db_url: str) -> None:
        """Events delivered from a spool carry a copy of their ProcessInfo: the stored row is found."""
        with Sql14Store(db_url) as store:
            registered = store.resolve_process(INFO)
        with Sql14Store(db_url) as later:  # the next process, which knows the info only by value
            copy = ProcessInfo(*dataclasses.astuple(INFO))  # type: ignore[arg-type]
            assert later.resolve_process(copy).id == registered.id
            other = dataclasses.replace(INFO, fqdn="elsewhere.example")
            assert later.resolve_process(other).id != registered.id
