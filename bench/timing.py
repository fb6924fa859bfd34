"""Small helpers for measuring: medians of repeated, interleaved runs."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Row:
    """One line of a benchmark table."""

    name: str
    value: float
    unit: str
    note: str = ""


def per_call_us(func: Callable[[], object], calls: int) -> float:
    """Microseconds per call of `func`, over `calls` calls."""
    start = time.perf_counter()
    for _ in range(calls):
        func()
    return (time.perf_counter() - start) / calls * 1e6


def interleaved_medians(candidates: dict[str, Callable[[], float]], repeats: int) -> dict[str, float]:
    """Run each measurement `repeats` times, alternating between them; medians by name."""
    samples: dict[str, list[float]] = {name: [] for name in candidates}
    for _ in range(repeats):
        for name, measure in candidates.items():
            samples[name].append(measure())
    return {name: statistics.median(values) for name, values in samples.items()}


def print_table(title: str, rows: list[Row]) -> None:
    """Print rows as an aligned table under a title."""
    print(f"\n{title}")
    width = max(len(r.name) for r in rows)
    for r in rows:
        note = f"  {r.note}" if r.note else ""
        print(f"  {r.name:<{width}}  {r.value:>12,.3f} {r.unit}{note}")
