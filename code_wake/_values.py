"""Checks of single values that more than one door takes: the configuration and the handler.

A check returns the value as code_wake keeps it, or raises `Invalid` saying
what was expected; the caller adds where the value came from.
"""

from __future__ import annotations

__all__ = ["Invalid", "text_value", "version_value"]


class Invalid(ValueError):
    """A value is not what it should be; carries what was expected, the caller adds where."""

    def __init__(self, expected: str) -> None:
        super().__init__(expected)
        self.expected = expected


def text_value(value: object) -> str:
    """A non-empty string, as it is."""
    if not isinstance(value, str) or not value:
        raise Invalid("a non-empty string")
    return value


def version_value(value: object) -> str:
    """An app version: a non-empty string, or a number taken as its string.

    YAML and JSON read an unquoted ``1.2`` or ``2`` as a number; a version is text.
    """
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str) or not value:
        raise Invalid("a non-empty string (or a number, taken as its string)")
    return value
