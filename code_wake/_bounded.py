"""A data value as compact JSON text, its work bounded before it runs, its secrets filtered.

``json.dumps`` converts the whole value before anything can be cut: a list of
five million numbers cost a third of a second on the caller's thread, only
for all but 8 KB of the text to be thrown away. Here the value is walked and
written as it goes, and the walk stops

- at `MAX_DEPTH` levels of nesting (deeper values become ``"[...too deep]"``),
- after `MAX_ITEMS` items of one list or mapping (then an item saying how many
  were left out, ``"...[+4999900 items]"``),
- once the text is longer than the size limit, or `MAX_TOTAL_ITEMS` items
  were written at all depths (then it ends with ``...[cut at N chars]``),

so the work is bounded by the size limit whatever the value. Every item
written adds at least one character, so even a self-referencing list stops.
On the way, values under secret keys become ``[FILTERED]`` and every string
has its secret-shaped parts filtered (`code_wake._scrub`).

Plain values come out as ``json.dumps(value, separators=(",", ":"),
ensure_ascii=False)`` writes them, tuples as arrays; anything else as its
(filtered, bounded) ``repr``, a JSON string inside a container.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from itertools import islice
from typing import Any

from ._scrub import FILTERED, Scrubber
from ._text import safe_repr

__all__ = [
    "CUT_MARKER",
    "ITEMS_MARKER",
    "MAX_DEPTH",
    "MAX_ITEMS",
    "bounded_json",
    "bounded_repr",
    "scalar_text",
]

MAX_DEPTH = 8
"""Levels of nested lists and mappings written; deeper ones are marked, not walked."""

MAX_ITEMS = 100
"""Items written of one list or mapping (and pairs of one event's data): enough for what a person
reads in one event, and few enough that a huge value costs well under a millisecond to cut."""

MAX_TOTAL_ITEMS = 1000
"""Items written of one value at all depths: nested lists of short items stop here, not at the size."""

CUT_MARKER = "...[cut at {} chars]"
"""Ends a value whose text was cut at the size limit before it was all written."""

ITEMS_MARKER = "...[cut after {} items]"
"""Ends a value whose walk stopped at `MAX_TOTAL_ITEMS`."""

_SCAN_MARGIN = 256
"""Characters of a long string scrubbed beyond the limit, so a secret the cut splits is still caught."""

_encode: Any = getattr(json.encoder, "c_encode_basestring", None) or json.encoder.encode_basestring
_SCALARS = (bool, int, float)


def bounded_repr(value: Any, limit: int, scrubber: Scrubber) -> str:
    """``repr(value)`` for a value that is not plain data: bytes cut before, and secrets filtered."""
    if isinstance(value, (bytes, bytearray)) and len(value) > limit:
        text = safe_repr(bytes(value[:limit])) + CUT_MARKER.format(limit)
    elif isinstance(value, (set, frozenset)) and len(value) > MAX_ITEMS:
        shown = ", ".join(safe_repr(item) for item in islice(value, MAX_ITEMS))
        text = f"{{{shown[: limit + _SCAN_MARGIN]}, ...[+{len(value) - MAX_ITEMS} items]}}"
    elif (
        isinstance(value, Collection)
        and not isinstance(value, (str, bytes, bytearray))
        and len(value) > MAX_ITEMS
    ):
        # Any other large container: its repr could be as costly as the container is long.
        text = f"<{type(value).__qualname__} of {len(value)} items>"
    else:
        text = safe_repr(value)
    return scrubber.text(text[: limit + _SCAN_MARGIN])


def bounded_json(value: Any, limit: int, scrubber: Scrubber) -> str:
    """`value` (a list, tuple or mapping) as compact JSON of at most about `limit` characters."""
    writer = _Writer(limit, scrubber)
    writer.value(value, 0)
    text = "".join(writer.out)
    if not writer.full:
        return text
    # The marker fits within the limit, so the value is not truncated a second time.
    cut = ITEMS_MARKER.format(MAX_TOTAL_ITEMS) if writer.too_many else CUT_MARKER.format(limit)
    return text[: max(0, limit - len(cut))] + cut


class _Writer:
    """The walk of one value: its text so far, and whether the size limit was reached."""

    def __init__(self, limit: int, scrubber: Scrubber) -> None:
        self.out: list[str] = []
        self.size = 0
        self.limit = limit
        self.scrubber = scrubber
        self.full = False
        self.items = 0
        self.too_many = False

    def write(self, text: str) -> None:
        self.out.append(text)
        self.size += len(text)
        if self.size > self.limit:
            self.full = True

    def value(self, value: Any, depth: int) -> None:
        kind = type(value)
        if kind is int or kind is float:
            # The common leaves, without json.dumps's call overhead (it writes them the same way).
            self.write(scalar_text(value) if kind is float else _int_text(value))
        elif value is None:
            self.write("null")
        elif isinstance(value, str):
            self.write(_encode(self.scrubber.text(value[: self.limit + _SCAN_MARGIN])))
        elif isinstance(value, _SCALARS):
            self.write(scalar_text(value))
        elif isinstance(value, (Mapping, list, tuple)):
            self.container(value, depth + 1)
        else:
            self.write(_encode(bounded_repr(value, self.limit, self.scrubber)))

    def container(self, value: Any, depth: int) -> None:
        mapping = isinstance(value, Mapping)
        if depth > MAX_DEPTH:
            self.write('"[...too deep]"')
            return
        self.write("{" if mapping else "[")
        for written, item in enumerate(value.items() if mapping else value):
            self.items += 1
            if self.items > MAX_TOTAL_ITEMS:
                self.full, self.too_many = True, True
            if self.full:
                break
            if written == MAX_ITEMS:
                self.write(f',"...[+{len(value) - written} items]"')
                break
            if written:
                self.write(",")
            if mapping:
                self.entry(item[0], item[1], depth)
            else:
                self.value(item, depth)
        self.write("}" if mapping else "]")

    def entry(self, key: Any, value: Any, depth: int) -> None:
        text_key = key if isinstance(key, str) else _key_text(key)
        self.write(_encode(text_key) + ":")
        if self.scrubber.is_secret(text_key):
            self.write(f'"{FILTERED}"')
        else:
            self.value(value, depth)


def _int_text(value: int) -> str:
    try:
        return int.__repr__(value)
    except ValueError:
        return scalar_text(value)


def scalar_text(value: bool | int | float) -> str:
    try:
        return json.dumps(value, allow_nan=True)
    except ValueError:
        # An int too long to print (Python 3.11's limit on digits): say what it was.
        return f'"<int of {value.bit_length()} bits>"' if isinstance(value, int) else '"<number>"'


def _key_text(key: Any) -> str:
    """A mapping key as ``json.dumps`` writes it, or its repr where JSON has no form for it."""
    if key is None or isinstance(key, _SCALARS):
        return scalar_text(key).strip('"') if key is not None else "null"
    return safe_repr(key)
