"""A small bounded mapping for rows that never change once written."""

from __future__ import annotations

import threading
from typing import Generic, TypeVar

__all__ = ["BoundedCache"]

K = TypeVar("K")
V = TypeVar("V")


class BoundedCache(Generic[K, V]):
    """At most `size` entries; the oldest goes first. Safe to share between threads."""

    def __init__(self, size: int) -> None:
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

    def after_fork(self) -> None:
        """In a forked child: a new lock (another thread of the parent may have held the old one)."""
        self._lock = threading.Lock()

    def clear(self) -> None:
        """Forget everything."""
        with self._lock:
            self._data.clear()
