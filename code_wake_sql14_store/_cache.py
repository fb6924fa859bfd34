"""A small bounded mapping, shared between threads, for records that never change once written."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Generic, TypeVar

__all__ = ["CACHE_SIZE", "BoundedCache"]

K = TypeVar("K")
V = TypeVar("V")

CACHE_SIZE = 1024
"""Entries per cache by default (apps, versions, environments, processes, stack traces)."""


class BoundedCache(Generic[K, V]):
    """At most `size` entries; the oldest goes first. Safe to share between threads."""

    def __init__(self, size: int = CACHE_SIZE) -> None:
        self._size = size
        self._data: dict[K, V] = {}
        self._lock = threading.Lock()

    def get(self, key: K) -> V | None:
        """The cached value, or None."""
        # A single dict lookup is atomic under the GIL; only writers take the lock.
        return self._data.get(key)

    def put(self, key: K, value: V) -> V:
        """Cache `value` unless another thread cached one first; return the one kept."""
        with self._lock:
            if key not in self._data and len(self._data) >= self._size:
                del self._data[next(iter(self._data))]
            return self._data.setdefault(key, value)

    def get_many(self, keys: Iterable[K], load: Callable[[list[K]], Iterable[tuple[K, V]]]) -> dict[K, V]:
        """The values of `keys`: cached ones, and the others from `load` (given their keys), cached."""
        found: dict[K, V] = {}
        missing: list[K] = []
        for key in dict.fromkeys(keys):
            cached = self._data.get(key)
            if cached is None:
                missing.append(key)
            else:
                found[key] = cached
        if missing:
            for key, value in load(missing):
                found[key] = self.put(key, value)
        return found

    def values(self) -> list[V]:
        """The cached values, at this moment."""
        with self._lock:
            return list(self._data.values())

    def after_fork(self) -> None:
        """In a forked child: a new lock (another thread of the parent may have held the old one)."""
        self._lock = threading.Lock()

    def clear(self) -> None:
        """Forget everything."""
        with self._lock:
            self._data.clear()
