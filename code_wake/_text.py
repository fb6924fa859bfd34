"""How event data is written as text, shared by the event policy, queries and configuration."""

from __future__ import annotations

import json
import re
from typing import Any

__all__ = ["fold_key", "safe_repr", "value_text"]

_SEPARATORS = re.compile(r"[^0-9a-z]+")


def fold_key(key: str) -> str:
    """`key` as secret fragments are matched: lower case, letters and digits only."""
    return _SEPARATORS.sub("", key.lower())


def value_text(value: Any) -> str:
    """A data value that is not a string, as it is stored: compact JSON, else its ``repr``."""
    if isinstance(value, (bool, int, float, dict, list, tuple)):
        try:
            return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=True)
        except (TypeError, ValueError, RecursionError):
            pass
    return safe_repr(value)


def safe_repr(value: Any) -> str:
    """``repr(value)``, or a stand-in naming its type when that raises."""
    try:
        return repr(value)
    except Exception:  # noqa: BLE001 - any repr may raise; the event must still be stored
        return f"<unrepresentable {type(value).__qualname__} object>"
