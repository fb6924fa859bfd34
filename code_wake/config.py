"""Configuration: files, environment variables, defaults, validation, store construction.

STUB: the interface Process relies on; the full loader replaces this.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from .event import DEFAULT_MAX_VALUE_LENGTH, DEFAULT_SECRET_KEYS, EventPolicy
from .store import Store

__all__ = ["Config"]


@dataclass(frozen=True)
class Config:
    """Validated configuration, read once and handed down as plain values."""

    store_adapter: str | None = None
    store_args: tuple[str, ...] = ()
    app_name: str | None = None
    app_vsn: str | None = None
    env_name: str | None = None
    st_from_exceptions: bool = True
    st_for_non_exceptions: bool = False
    max_value_length: int = DEFAULT_MAX_VALUE_LENGTH
    secret_keys: tuple[str, ...] = DEFAULT_SECRET_KEYS
    origins: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def load(cls, environ: Mapping[str, str] | None = None, cwd: Path | None = None) -> Config:
        """Read the files and environment variables (SPEC section 5) and validate them."""
        return cls()

    def event_policy(self) -> EventPolicy:
        """The data limits and secret filtering this configuration asks for."""
        return EventPolicy(max_value_length=self.max_value_length, secret_keys=self.secret_keys)

    def build_store(self) -> Store:
        """The configured store, or the embedded default."""
        from code_wake_sql14_store import Sql14Store

        return Sql14Store("sqlite://")
