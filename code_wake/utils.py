"""pycodewake 0.2's helpers module, kept for adapters written for it."""

from __future__ import annotations

from .event import data_digest

__all__ = ["data_digest"]
