"""The in-memory reference store passes the whole store contract."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from code_wake.testing import MemoryStore, StoreContract


class TestMemoryStore(StoreContract):
    @pytest.fixture
    def store(self) -> Iterator[MemoryStore]:
        store = MemoryStore()
        yield store
        store.close()
