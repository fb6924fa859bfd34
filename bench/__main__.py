"""``python -m bench [--only NAME ...] [--quick] [--json FILE]``: run the benchmarks, print their tables."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from dataclasses import asdict

from . import (
    bounds,
    doors,
    growth,
    handler_persisted,
    many_writers,
    queries,
    queue_bench,
    server_throughput,
    spool_bench,
    sync_latency,
    web_pages,
    write_growth,
)
from .timing import Row, print_table

Bench = Callable[[bool], list[Row]]
"""A benchmark: given `quick`, measure and return its table's rows."""

BENCHES: dict[str, tuple[str, Bench]] = {
    "caller": (
        "Caller cost of one plain event, us per call (lower is better)",
        lambda quick: queue_bench.caller_cost(calls=5_000 if quick else 20_000),
    ),
    "memory": (
        "Memory per queued event (lower is better)",
        lambda quick: queue_bench.memory_per_event(count=2_000 if quick else 10_000),
    ),
    "throughput": (
        "Persisted throughput into a SQLite WAL file (higher is better)",
        lambda quick: queue_bench.throughput(count=10_000 if quick else 50_000),
    ),
    "busy": (
        "Persisted throughput while the main thread is CPU-bound (higher is better)",
        lambda quick: queue_bench.throughput_under_load(count=5_000 if quick else 20_000),
    ),
    "spool": (
        "The disk spool beside the store's own rate: set aside and delivered (higher is better), one event",
        spool_bench.run,
    ),
    "servers": (
        "Persisted throughput on PostgreSQL and MariaDB vs the raw driver (higher is better)",
        server_throughput.run,
    ),
    "sync": (
        "log(sync=True) on a SQLite file (lower is better)",
        lambda quick: sync_latency.run(sizes=(0, 10_000) if quick else (0, 100_000)),
    ),
    "handler": (
        "logger.warning / logger.exception, writer held back: CodeWakeHandler vs QueueHandler, us per call",
        lambda quick: doors.handler_cost(calls=5_000 if quick else 20_000),
    ),
    "handler-running": (
        "logger.warning with writers running, into SQLite vs QueueListener -> FileHandler (lower is better)",
        handler_persisted.run,
    ),
    "processor": (
        "structlog: CodeWakeProcessor vs format_exc_info + queue put, us per call",
        lambda quick: doors.processor_cost(calls=5_000 if quick else 20_000),
    ),
    "bounds": (
        "Bad input: caller time of one log call given huge or hostile data, ms (lower is better)",
        bounds.run,
    ),
    "queries": (
        "Analysis queries at 1M stored events (--queries-size), ms per page (lower is better)",
        queries.run,
    ),
    "growth": (
        "Growth: log(sync=True) and analysis queries at 10k, 100k, 1M stored events (lower is better)",
        growth.run,
    ),
    "write-growth": (
        "Write growth: batch write rate at 100k, 500k, 1M stored events vs an empty store (higher is better)",
        write_growth.run,
    ),
    "web": (
        "Web view pages at 1M stored events, ms of server time per page (lower is better)",
        web_pages.run,
    ),
    "writers": (
        "Many writers: 8 processes x 4 threads at once vs one writer, events/s stored (higher is better)",
        many_writers.run,
    ),
}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--only", nargs="+", choices=sorted(BENCHES), help="run only these benchmarks")
    parser.add_argument("--quick", action="store_true", help="smaller sizes, for a smoke run")
    parser.add_argument("--json", metavar="FILE", help="also write the figures as JSON to FILE")
    queries.add_options(parser)
    args = parser.parse_args()
    queries.configure(args)

    results: dict[str, list[Row]] = {}
    for name in args.only or BENCHES:
        title, bench = BENCHES[name]
        results[name] = bench(args.quick)
        print_table(title, results[name])
    if args.json:
        with open(args.json, "w", encoding="utf-8") as out:
            json.dump({name: [asdict(r) for r in rows] for name, rows in results.items()}, out, indent=2)


if __name__ == "__main__":
    main()
