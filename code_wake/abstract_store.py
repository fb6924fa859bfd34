"""pycodewake 0.2's module of the store base class, kept for adapters written for it.

``from code_wake.abstract_store import AbstractStore`` gives `code_wake.Store`;
new code imports `code_wake.Store`. docs/stores.md, "Coming from
pycodewake", says what else carries over.
"""

from __future__ import annotations

from .store import AbstractStore

__all__ = ["AbstractStore"]
