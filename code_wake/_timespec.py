"""Times as people type them on a command line: ``2h``, ``7d``, ``yesterday``, ``2026-11-27T10:00``.

Every time is read in UTC unless it says otherwise (``+02:00``, ``Z``), the
same way the command prints times.
"""

from __future__ import annotations

import datetime
import re

__all__ = ["TimeSpecError", "format_utc", "parse_time"]

_UNITS = {"s": 1, "m": 60, "min": 60, "h": 3600, "d": 86_400, "w": 7 * 86_400}
_RELATIVE = re.compile(r"(\d+(?:\.\d+)?)\s*(s|min|m|h|d|w)", re.IGNORECASE)
_EPOCH = re.compile(r"@(-?\d+(?:\.\d+)?)")
_EXPECTED = (
    "expected a time: a duration before now (30m, 2h, 7d, 1w), today, yesterday, "
    "a date or time (2026-11-27, 2026-11-27T10:00; UTC unless it has an offset) or @epoch-seconds"
)


class TimeSpecError(ValueError):
    """Raised when a text is not a time this module reads; the message says what is expected."""


def parse_time(text: str, now: float) -> float:
    """Epoch seconds of `text`; a duration means that long before `now` (epoch seconds)."""
    spec = text.strip()
    relative = _RELATIVE.fullmatch(spec)
    if relative is not None:
        return now - float(relative.group(1)) * _UNITS[relative.group(2).lower()]
    epoch = _EPOCH.fullmatch(spec)
    if epoch is not None:
        return float(epoch.group(1))
    word = spec.lower()
    if word == "now":
        return now
    if word in ("today", "yesterday"):
        midnight = now // 86_400 * 86_400
        return midnight if word == "today" else midnight - 86_400
    return _iso(spec, text)


def _iso(spec: str, text: str) -> float:
    # Python 3.10's fromisoformat knows neither "Z" nor a space before the offset's sign.
    if spec[-1:] in ("Z", "z"):
        spec = spec[:-1] + "+00:00"
    try:
        when = datetime.datetime.fromisoformat(spec)
    except ValueError:
        raise TimeSpecError(f"{_EXPECTED}; got {text!r}") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.timezone.utc)
    return when.timestamp()


def format_utc(ts: float, precise: bool = False) -> str:
    """``2026-11-27 10:00:00`` (UTC), with microseconds when `precise`."""
    when = datetime.datetime.fromtimestamp(ts, datetime.timezone.utc)
    return when.strftime("%Y-%m-%d %H:%M:%S.%f" if precise else "%Y-%m-%d %H:%M:%S")
