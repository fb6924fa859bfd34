"""Checks of single values that more than one door takes: configuration, handler, command line.

A check returns the value as code_wake keeps it, or raises `Invalid` saying
what was expected; the caller adds where the value came from.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

__all__ = ["MAX_NUMBER", "Invalid", "text_value", "version_value", "whole_number_argument"]

MAX_NUMBER = 2**63 - 1
"""The largest id or count a database column holds: larger ones are usage errors, not overflows."""


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


def whole_number_argument(least: int, expected: str, most: int = MAX_NUMBER) -> Callable[[str], int]:
    """An argparse ``type``: a whole number from `least` to `most`; `expected` says so in the error
    (``{most}`` in it is replaced by the bound)."""

    def parse(text: str) -> int:
        try:
            number = int(text)
        except ValueError:
            number = least - 1
        if not least <= number <= most:
            raise argparse.ArgumentTypeError(f"expected {expected.format(most=most)}, got {text!r}")
        return number

    return parse
