"""Write growth: the store's batch write rate as one database grows to 100k, 500k and 1M events.

Target (issue 15): at 1M stored events the batch write rate is >= 0.7 x the
rate on an empty database, with realistic data, on SQLite and PostgreSQL.

Realistic data: each event has four data fields, ``event`` (one of a few
kinds), ``customer`` (one of 50,000), ``order`` (unique per event) and
``msg`` (a short message, a few hundred distinct), and a time drawn at random
from the last 30 days (what a spool replay or ``when_ts`` gives: every index
holding the time takes its rows all over its range, not at its end). They
come from five processes of two apps in two environments.

The write path measured is `Sql14Store.insert_events` with batches of 500
`PendingEvent`, built by ``EventPolicy().build(info, data, when_ts=...)``
beforehand and outside the timing: the very call the queue's writer thread
makes per batch, without the queue's thread hand-offs and batching, whose
cost does not depend on the database's size and whose timing (a flush
waits for the writer's poll) would blur the rate. The database is grown by
the same call (and the same data) to each size; its servers are not
ANALYZEd: autovacuum sees to that, as in production.

A second database is grown the same way with the events' times in order
(a live service's log: each event a little after the one before, the
million spanning the 30 days), to tell what the random times cost. The
target is for the random times.

This machine is shared: figures measured minutes apart differ by 2 x with
the load of others, so the rate at each size is compared with a fresh
database measured side by side, interleaved round by round: ``--quick`` 5
rounds of 2 batches each, else 7 rounds of 4 batches, into the grown
database and into the fresh one (which so holds 5,000 or 14,000 events at
the end: "empty" is a fresh database's first events). Rates are medians of
the rounds; at size 0 the ratio is the noise floor. Sizes: 0, 100,000,
500,000 and 1,000,000 events (``--quick``: 0, 20,000, 50,000). Backends and
scratch databases are those of ``bench.queries`` (``--queries-backends``).
"""

from __future__ import annotations

import random
import statistics
import time

import code_wake
from code_wake.event import EventPolicy, PendingEvent
from code_wake.testing.contract import process_info
from code_wake_sql14_store import Sql14Store

from . import queries
from .timing import Row

SIZES = (0, 100_000, 500_000, 1_000_000)
QUICK_SIZES = (0, 20_000, 50_000)
BATCH = 500
TARGET = 0.7
"""The rate at the largest size at least this many times the rate on an empty database."""
DAYS = 30
CUSTOMERS = 50_000
KINDS = ("order", "view", "payment", "refund", "login")
STATUSES = ("accepted", "declined", "pending", "retried", "timed out")
END = 1_767_225_600.0  # 2026-01-01 00:00 UTC: the newest event is just before it
_IN_ORDER_STEP = DAYS * 86_400 / 1_050_000
"""Seconds between events in time order: a little over 1M of them span the 30 days."""


class Events:
    """Batches of realistic events for one store, each event unique (its order id)."""

    def __init__(self, store: Sql14Store, seed: int, in_order: bool = False) -> None:
        self._rng = random.Random(seed)
        self._in_order = in_order
        self._policy = EventPolicy()
        self._order = 0
        # Five processes: two apps, two environments; registering creates the schema.
        infos = [
            process_info(app_name=app, app_vsn="2.1", env_name=env, pid=pid, run_ts=END - DAYS * 86_400 - pid)
            for pid, (app, env) in enumerate(
                [("shop", "production")] * 3 + [("shop", "staging"), ("billing", "production")]
            )
        ]
        for info in infos:
            store.insert_process(info)
        self._infos = infos

    def batch(self) -> list[PendingEvent]:
        """`BATCH` new events, their times at random in the last `DAYS` days."""
        rng, build = self._rng, self._policy.build
        made = []
        for _ in range(BATCH):
            self._order += 1
            data = {
                "event": rng.choice(KINDS),
                "customer": f"c{rng.randrange(CUSTOMERS)}",
                "order": f"o-{self._order}",
                "msg": f"payment {rng.choice(STATUSES)} after {rng.randrange(60)} tries",
            }
            if self._in_order:
                when = END - DAYS * 86_400 + self._order * _IN_ORDER_STEP
            else:
                when = END - rng.random() * DAYS * 86_400
            made.append(build(rng.choice(self._infos), data, when_ts=when))
        return made


def run(quick: bool = False) -> list[Row]:
    """Grow a database on each backend; at each size, its batch write rate vs a fresh database's."""
    sizes = QUICK_SIZES if quick else SIZES
    rounds, batches = (5, 2) if quick else (7, 4)
    rows: list[Row] = []
    for backend in queries.SETTINGS["backends"]:
        with queries.database(backend) as url:
            if url is None:
                rows.append(Row(f"{backend}: no server", 0, "", "skipped"))
                continue
            rows.extend(_grow(backend, url, sizes, rounds, batches, in_order=False))
        with queries.database(backend) as url:
            if url is not None:
                rows.extend(_grow(backend, url, sizes, rounds, batches, in_order=True))
    return rows


def _grow(
    backend: str, url: str, sizes: tuple[int, ...], rounds: int, batches: int, in_order: bool
) -> list[Row]:
    rows: list[Row] = []
    code_wake.Process.reset()
    store = Sql14Store(url)
    events = Events(store, seed=15, in_order=in_order)
    label = f"{backend}, times in order" if in_order else backend
    stored = 0
    try:
        for size in sizes:
            grown, start = 0.0, stored
            while stored < size:
                batch = events.batch()
                started = time.perf_counter()
                store.insert_events(batch)
                grown += time.perf_counter() - started
                stored += len(batch)
            if grown:
                rate = f"{(stored - start) / grown:,.0f} events/s, not interleaved"
                rows.append(Row(f"{label}, growing to {stored:,} events took", grown, "s", f"({rate})"))
            mine, fresh = _interleaved(store, events, backend, rounds, batches, in_order)
            stored += rounds * batches * BATCH
            note = f"{mine / fresh:5.2f} x empty ({fresh:,.0f} events/s)"
            if size == sizes[-1] and not in_order:
                note += f", target >= {TARGET} x: {'met' if mine >= TARGET * fresh else 'MISSED'}"
            elif size == 0:
                note += " (noise floor)"
            rows.append(Row(f"{label}, {size:,} events: batch write rate", mine, "events/s", note))
    finally:
        store.close()
        code_wake.Process.reset()
    return rows


def _interleaved(
    store: Sql14Store, events: Events, backend: str, rounds: int, batches: int, in_order: bool
) -> tuple[float, float]:
    """Median events/s of `rounds` rounds of `batches` batches into `store` and into a fresh database."""
    with queries.database(backend) as fresh_url:
        assert fresh_url is not None  # the server answered a moment ago
        fresh = Sql14Store(fresh_url)
        try:
            fresh_events = Events(fresh, seed=16, in_order=in_order)
            samples: dict[str, list[float]] = {"grown": [], "fresh": []}
            for _ in range(rounds):
                for name, target, source in (("grown", store, events), ("fresh", fresh, fresh_events)):
                    samples[name].append(_rate(target, _batches(source, batches)))
        finally:
            fresh.close()
    return statistics.median(samples["grown"]), statistics.median(samples["fresh"])


def _batches(events: Events, count: int) -> list[list[PendingEvent]]:
    return [events.batch() for _ in range(count)]


def _rate(store: Sql14Store, batches: list[list[PendingEvent]]) -> float:
    """Events/s of writing `batches` one `insert_events` call each."""
    started = time.perf_counter()
    for batch in batches:
        store.insert_events(batch)
    return sum(map(len, batches)) / (time.perf_counter() - started)
