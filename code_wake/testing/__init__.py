"""Testing helpers for code_wake users and store adapter authors.

`StoreContract` is the store contract as a pytest suite (subclass it and give
it a ``store`` fixture); `MemoryStore` is a complete store that lives in
memory, for tests that need no database. Importing this package needs pytest.
"""

from .contract import StoreContract
from .memory import MemoryStore

__all__ = ["MemoryStore", "StoreContract"]
