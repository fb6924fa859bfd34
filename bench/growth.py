"""Growth: insert latency and the analysis queries as one database grows to 10k, 100k and 1M events.

Target (BENCHMARKS.md): flat. ``log(sync=True)`` stays within 1.5 x of its
latency at the smallest size; each analysis query stays within 5 ms.

Each backend gets one database (a SQLite file always; PostgreSQL and
MySQL/MariaDB where their servers answer, in scratch databases dropped
afterwards, see `bench.queries.database`), grown in steps to 10,000, 100,000
and 1,000,000 events (``--quick``: 1,000, 10,000 and 50,000) by
`bench.queries.Filler`: the rows the store writes, in large batches, each
step's events spread over the same 30 days, so the store gets denser as a
busier application's would; the servers are ANALYZEd after each step.

This machine is shared: figures measured minutes apart differ by 2 x with
the load of others, so a ratio to a figure of an earlier step would say more
about the neighbours than about the database's size. At each step a fresh
reference database of the smallest size, filled the same way, is measured
side by side with the grown one instead, interleaved round by round; the
ratio to it is the growth (at the smallest size it is the noise floor). At
each size:

- the analysis queries, exactly as ``bench.queries`` runs them: a page of
  events with one data term (a rare one, and a common one whose page is full
  at every size), a time-range page, trace groups of one app version in one
  environment since a day; median ms of interleaved rounds. Its anchor, the
  floor of any newest-first page (a raw ``SELECT id ... LIMIT 50``), shows
  what the database itself does. Each row says how many records the call
  returned: the rare term and the one-hour range fill their page only once
  the store is dense enough, so their cost grows with what they return.
- insert latency: ``log(sync=True)`` of a plain event with 3 data fields
  through a `code_wake.Process` on a `Sql14Store`, us per call (medians of
  rounds); on the reference, the same two calls ``Process.log`` makes
  (`EventPolicy.build`, ``Store.submit(sync=True)``). Interleaved with both:
  the database's own driver writing the same rows into the grown database
  (`bench.sync_latency.RawWriter`). These events have data keys of their
  own, so they match none of the queries' terms; they stay, and the next
  step fills up to its size exactly.

Options (shared with ``bench.queries``): ``--queries-backends`` chooses the
backends, ``--queries-explain`` prints every query's plan on the grown
database at each size.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable

import sqlalchemy as sa

import code_wake
from code_wake_sql14_store import Sql14Store
from code_wake_sql14_store.schema import events

from . import queries, sync_latency
from .timing import Row

SIZES = (10_000, 100_000, 1_000_000)
QUICK_SIZES = (1_000, 10_000, 50_000)
DATA = {"request": "checkout", "user": "u42", "region": "eu-west"}
"""The inserted event: keys no query of `QUERIES` looks for."""
QUERIES = (
    "events, one data term (rare: customer=c42)",
    "events, one data term (common: event=order)",
    "events, time-range page (one hour, 15 days back)",
    "trace groups, app/version/env, since 1 day",
    "anchor: raw SELECT id ... ORDER BY when_ts DESC LIMIT 50",
)
"""The cases of `bench.queries.cases` measured at each size; the anchor last."""
INSERT_TARGET = 1.5
"""log(sync=True) at any size within this many times its latency at the smallest."""
_REFERENCE = "reference: "


def run(quick: bool = False) -> list[Row]:
    """Grow a database on each backend and measure at each size."""
    sizes = QUICK_SIZES if quick else SIZES
    rows: list[Row] = []
    for backend in queries.SETTINGS["backends"]:
        with queries.database(backend) as url:
            if url is None:
                rows.append(Row(f"{backend}: no server", 0, "", "skipped"))
                continue
            rows.extend(_grow(backend, url, sizes, quick))
    return rows


def _grow(backend: str, url: str, sizes: tuple[int, ...], quick: bool) -> list[Row]:
    rows: list[Row] = []
    code_wake.Process.reset()
    store = Sql14Store(url)
    filler = queries.Filler(store)  # first: the store creates its schema
    proc = code_wake.Process(store=store, app_name="bench-growth")
    raw = sync_latency.RawWriter(url, proc, DATA)
    try:
        for size in sizes:
            started = time.perf_counter()
            filler.add(max(0, size - _stored(store)))
            grown = time.perf_counter() - started
            stored = _stored(store)
            rows.append(
                Row(f"{backend}, {stored:,} events: growing to it took", grown, "s", "(not measured)")
            )
            with queries.database(backend) as reference_url:
                assert reference_url is not None  # the server answered a moment ago
                rows.extend(_step(store, proc, raw, reference_url, sizes[0], quick))
    finally:
        raw.close()
        store.close()
        code_wake.Process.reset()
    return rows


def _step(
    store: Sql14Store,
    proc: code_wake.Process,
    raw: sync_latency.RawWriter,
    reference_url: str,
    reference_size: int,
    quick: bool,
) -> list[Row]:
    """Measure the grown store side by side with a fresh one of `reference_size` events."""
    calls, repeats, query_repeats = (50, 5, 7) if quick else (200, 7, 21)
    reference = Sql14Store(reference_url)
    try:
        queries.Filler(reference).add(reference_size)
        owner = reference.insert_process(proc.info)
        policy, inc_st = proc.event_policy, proc.st_for_non_exceptions

        def log_reference() -> object:
            return reference.submit(policy.build(owner.id, DATA, inc_st=inc_st), sync=True)

        timed = _cases(store)
        compared = _cases(reference)
        if queries.SETTINGS["explain"]:
            queries.explain(store, timed)
        ms = queries.measure(
            {**timed, **{_REFERENCE + name: case for name, case in compared.items()}}, query_repeats
        )
        us = sync_latency.measure(
            {
                "grown": functools.partial(proc.log, DATA, sync=True),
                "reference": log_reference,
                "raw": raw.insert,
            },
            calls,
            repeats,
        )
        label = f"{reference_size:,}"
        grown, then, floor = us["grown"], us["reference"], us["raw"]
        rows = [
            Row(
                "    log(sync=True), 3 data fields",
                grown,
                "us",
                f"{grown / then:5.2f} x {label} ({then:,.0f} us), target <= {INSERT_TARGET} x"
                f" | {grown / floor:.2f} x raw driver ({floor:,.0f} us)",
            )
        ]
        for name, case in timed.items():
            mine, theirs = ms[name], ms[_REFERENCE + name]
            target = "" if name.startswith("anchor") else f", target <= {queries.TARGET_MS:.0f} ms"
            rows.append(
                Row(
                    f"    {name}",
                    mine,
                    "ms",
                    f"{mine / theirs:5.2f} x {label} ({theirs:.2f} ms){target}"
                    f" | returns {queries.returned(case)} ({queries.returned(compared[name])})",
                )
            )
        return rows
    finally:
        reference.close()


def _cases(store: Sql14Store) -> dict[str, Callable[[], object]]:
    every = queries.cases(store)
    return {name: every[name] for name in QUERIES}


def _stored(store: Sql14Store) -> int:
    with store.engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(events)).scalar_one())
