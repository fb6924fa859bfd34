"""Bad input costs little: caller time of one ``Process.log`` given huge or hostile data (issue 13).

Each input is logged through a queued store, on the caller's thread, against
the anchor of a plain three-field event in the same run. The target is "a
millisecond or so" for a 5-million-item list and for 100,000 keys, whatever
the size of the input: conversion stops at the bounds of `code_wake._bounded`.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

from code_wake import Process
from code_wake.testing.memory import MemoryStore

from .timing import Row

TARGET_MS = 1.5
"""What "a millisecond or so" is taken to mean here."""


def _inputs() -> dict[str, Callable[[Process], object]]:
    big_list = list(range(5_000_000))
    big_dict = {f"k{i}": i for i in range(100_000)}
    long_text = "x" * 1_000_000
    nested = {"a": [{"b": list(range(100_000))} for _ in range(100)]}
    return {
        "plain event, 3 fields (anchor)": lambda p: p.log({"a": "1", "b": "2", "c": "3"}),
        "a 5,000,000-item list as a value": lambda p: p.log({"v": big_list}),
        "a 100,000-key dict as a value": lambda p: p.log({"v": big_dict}),
        "a 100,000-key dict as the data": lambda p: p.log(big_dict),
        "a 1 MB string as the data": lambda p: p.log(long_text),  # type: ignore[arg-type]
        "100 nested lists of 100,000 items": lambda p: p.log({"v": nested}),
        "a 1 MB string with secrets as a value": lambda p: p.log({"v": "password=x&" * 90_000}),
    }


def run(quick: bool) -> list[Row]:
    """Median milliseconds per call of each input, on the caller's thread."""
    Process.reset()
    process = Process(app_name="bench-bounds", store=MemoryStore())
    repeats = 5 if quick else 20
    rows = []
    for name, call in _inputs().items():
        samples = []
        for _ in range(repeats):
            start = time.perf_counter()
            call(process)
            samples.append((time.perf_counter() - start) * 1e3)
        median = statistics.median(samples)
        note = "anchor" if "anchor" in name else f"target <= {TARGET_MS} ms"
        rows.append(Row(name, median, "ms", note))
    Process.reset()
    return rows
