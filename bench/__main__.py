"""``python -m bench [--json FILE] [--quick]``: run the benchmarks and print their tables."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict

from . import sync_latency
from .timing import print_table


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--json", metavar="FILE", help="also write the figures as JSON to FILE")
    parser.add_argument("--quick", action="store_true", help="smaller sizes, for a smoke run")
    args = parser.parse_args()

    sizes = (0, 10_000) if args.quick else (0, 100_000)
    results = {"sync_latency": sync_latency.run(sizes=sizes)}
    print_table("log(sync=True) on a SQLite file (medians; lower is better)", results["sync_latency"])
    if args.json:
        with open(args.json, "w", encoding="utf-8") as out:
            json.dump({name: [asdict(r) for r in rows] for name, rows in results.items()}, out, indent=2)


if __name__ == "__main__":
    main()
