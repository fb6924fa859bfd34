"""The exceptions code_wake raises: one root, one class per kind of failure."""

from __future__ import annotations

__all__ = ["CodeWakeError", "ConfigError", "StoreError", "StoreRefusedError", "StoreUnavailableError"]


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

    maybe_stored: bool = False
    """True when a write failed after its COMMIT was sent and no answer came: its events may be
    stored. The queue marks them so in its spool, and their delivery looks before writing them."""


class StoreUnavailableError(StoreError):
    """Raised when the store's database cannot be reached at all."""


class StoreRefusedError(StoreError):
    """Raised when the store refuses a write in a way that trying again cannot change.

    A value the database refuses, or a database whose schema is newer than
    this code_wake: the queue does not retry these for ``retry_for`` seconds,
    it rejects the events at once and reports why.
    """
