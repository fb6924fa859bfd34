"""The exceptions code_wake raises: one root, one class per kind of failure."""

from __future__ import annotations

__all__ = ["CodeWakeError", "ConfigError", "StoreError", "StoreUnavailableError"]


class CodeWakeError(Exception):
    """Root of every exception code_wake raises on purpose."""


class ConfigError(CodeWakeError):
    """Raised when configuration is missing, malformed or contradictory.

    The message names the file, key or environment variable at fault and what
    was expected there.
    """


class StoreError(CodeWakeError):
    """Raised when a store cannot do what was asked (a failed write or query).

    Adapters translate their driver's errors into this at their boundary, with
    the original chained as ``__cause__``.
    """


class StoreUnavailableError(StoreError):
    """Raised when the store's database cannot be reached at all."""
