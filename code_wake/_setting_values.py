"""How each configuration value is checked: as a file holds it, and as an environment variable says it.

Each ``*_value`` check takes what a file holds, each ``*_text`` parse what a
variable says; both return the value as `code_wake.Config` keeps it or raise
`Invalid` saying what was expected.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterable

from ._text import fold_key
from ._values import Invalid

__all__ = [
    "bool_text",
    "bool_value",
    "comma_list",
    "directory_text",
    "directory_value",
    "patterns_text",
    "patterns_value",
    "positive_int_text",
    "positive_int_value",
    "positive_number_text",
    "positive_number_value",
    "seconds_text",
    "seconds_value",
    "secret_keys_text",
    "secret_keys_value",
    "store_args_value",
    "whole_int_text",
    "whole_int_value",
]

_BOOL_WORDS = {
    "true": True,
    "1": True,
    "yes": True,
    "on": True,
    "false": False,
    "0": False,
    "no": False,
    "off": False,
}
_BOOL_EXPECTED = "a boolean: true or false (also 1/0, yes/no, on/off; any case)"


def bool_value(value: object) -> bool:
    if not isinstance(value, bool):
        raise Invalid("a boolean (true or false)")
    return value


def bool_text(text: str) -> bool:
    try:
        return _BOOL_WORDS[text.strip().lower()]
    except KeyError:
        raise Invalid(_BOOL_EXPECTED) from None


def positive_int_value(value: object) -> int:
    # bool is an int subclass: `max_value_length: true` must not read as 1.
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise Invalid("a positive integer")
    return value


def positive_int_text(text: str) -> int:
    try:
        return positive_int_value(int(text.strip()))
    except ValueError:
        raise Invalid("a positive integer") from None


def whole_int_value(value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise Invalid("a whole number (0 or more)")
    return value


def whole_int_text(text: str) -> int:
    try:
        return whole_int_value(int(text.strip()))
    except ValueError:
        raise Invalid("a whole number (0 or more)") from None


def directory_value(value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise Invalid("a directory path")
    return directory_text(value)


def directory_text(text: str) -> str:
    path = os.path.expanduser(text.strip())
    if not os.path.isabs(path):
        # Relative to what? The working directory of whichever process logs: a surprise waiting to happen.
        raise Invalid("an absolute directory path (~ is expanded)")
    return path


def positive_number_value(value: object) -> float:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not value > 0:
        raise Invalid("a positive number of seconds")
    return float(value)


def positive_number_text(text: str) -> float:
    try:
        return positive_number_value(float(text.strip()))
    except ValueError:
        raise Invalid("a positive number of seconds") from None


def seconds_value(value: object) -> float:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0 <= value < math.inf:
        raise Invalid("a number of seconds, 0 or more")
    return float(value)


def seconds_text(text: str) -> float:
    try:
        return seconds_value(float(text.strip()))
    except ValueError:
        raise Invalid("a number of seconds, 0 or more") from None


def store_args_value(value: object) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return tuple(value)
    raise Invalid("a string (one adapter argument) or a list of strings")


def comma_list(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(","))


def _secret_keys(items: Iterable[object]) -> tuple[str, ...]:
    keys = tuple(items)
    # A fragment without letters or digits folds to "" and would silently match nothing.
    if not all(isinstance(key, str) and fold_key(key) for key in keys):
        raise Invalid("a list of key fragments (strings containing letters or digits)")
    return tuple(str(key) for key in keys)


def secret_keys_value(value: object) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise Invalid("a list of key fragments (strings containing letters or digits)")
    return _secret_keys(value)


def secret_keys_text(text: str) -> tuple[str, ...]:
    return _secret_keys(part for part in comma_list(text) if part)


def _patterns(items: Iterable[object]) -> tuple[str, ...]:
    patterns = tuple(items)
    for pattern in patterns:
        try:
            re.compile(pattern)  # type: ignore[call-overload]
        except (re.error, TypeError) as exc:
            raise Invalid(f"a list of regular expressions ({pattern!r}: {exc})") from None
    return tuple(str(pattern) for pattern in patterns)


def patterns_value(value: object) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise Invalid("a list of regular expressions")
    return _patterns(value)


def patterns_text(text: str) -> tuple[str, ...]:
    # One per line: a regular expression may well contain a comma.
    return _patterns(line for line in text.splitlines() if line.strip())
