"""What a page is asked for: its query string read into filters, and links that keep them.

Every page's state is in its URL (a link to it can go into a ticket): the
scope (``app``, ``vsn``, ``env``), the time window (``window`` = ``1h``,
``24h``, ``7d``, ``30d``, ``90d`` or ``all``; or ``since``/``until`` in the
forms ``code-wake`` reads: ``2h``, ``yesterday``, ``2026-11-27T10:00``,
``@1764000000``), and each page's own filters. A value that cannot be read
is a `BadQuery`, shown to the user as a 400 page naming the parameter.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlencode

from code_wake._timespec import TimeSpecError, format_utc, parse_time
from code_wake.query import DAY, HOUR, BucketCount

__all__ = [
    "HOURLY_UP_TO",
    "WINDOWS",
    "WINDOW_LABELS",
    "Args",
    "BadQuery",
    "Query",
    "Scope",
    "Window",
    "cursor_text",
    "read_cursor",
    "read_id",
    "read_scope",
    "read_terms",
    "read_window",
]

WINDOWS: dict[str, float | None] = {
    "1h": HOUR,
    "24h": DAY,
    "7d": 7 * DAY,
    "30d": 30 * DAY,
    "90d": 90 * DAY,
    "all": None,
}
"""The time windows offered, by name: seconds back from now (None: all of time)."""

WINDOW_LABELS = {
    "1h": "the last hour",
    "24h": "the last 24 hours",
    "7d": "the last 7 days",
    "30d": "the last 30 days",
    "90d": "the last 90 days",
    "all": "all time",
}
"""Each window in words."""

HOURLY_UP_TO = 2 * DAY
"""Charts of windows up to this long (seconds) count per hour; longer ones per UTC day."""


class Args(Protocol):
    """A query string as Werkzeug reads it (a MultiDict): one value, or every value, of a key."""

    def get(self, key: str) -> str | None: ...

    def getlist(self, key: str) -> list[str]: ...


class BadQuery(ValueError):
    """Raised when a query string value cannot be read; the message names it and says what is expected."""


@dataclass(frozen=True)
class Window:
    """The time window a page looks at: `since` (inclusive) to `until` (exclusive), None where open."""

    since: float | None
    until: float | None
    name: str
    """A `WINDOWS` name, or ``custom`` for since/until."""
    now: float

    @property
    def label(self) -> str:
        """The window in words: ``the last 7 days``, ``all time``, ``2026-11-27 10:00 - now (UTC)``."""
        if self.name != "custom":
            return WINDOW_LABELS[self.name]
        since = "the beginning" if self.since is None else format_utc(self.since)[:16]
        until = "now" if self.until is None else format_utc(self.until)[:16]
        return f"{since} - {until} (UTC)"

    @property
    def end(self) -> float:
        """Where the window ends: `until`, or now."""
        return self.now if self.until is None else self.until

    def span(self, start: float) -> int:
        """The bucket size of a chart of this window that starts at `start`."""
        return HOUR if self.end - start <= HOURLY_UP_TO else DAY

    def chart_range(self, first_seen: float | None) -> tuple[float, float, int]:
        """(start, end, span) of a chart of this window; an open start begins at `first_seen`."""
        start = self.since if self.since is not None else first_seen if first_seen is not None else self.end
        start = min(start, self.end)
        span = self.span(start)
        if self.since is None:
            # All of time: whole buckets from the first event's, never fewer than a day's worth.
            start = min(BucketCount.bucket_of(start, span), self.end - span * (24 if span == HOUR else 7))
        return start, self.end, span


@dataclass(frozen=True)
class Scope:
    """Which app, version and environment a page is narrowed to (None: all)."""

    app: str | None = None
    vsn: str | None = None
    env: str | None = None


def _text(args: Args, key: str) -> str | None:
    value = args.get(key)
    return None if value is None or not value.strip() else value.strip()


def read_scope(args: Args) -> Scope:
    """``app``, ``vsn`` and ``env`` of the query string."""
    return Scope(_text(args, "app"), _text(args, "vsn"), _text(args, "env"))


def read_window(args: Args, now: float, default: str) -> Window:
    """The window of ``since``/``until`` when either is given, else of ``window`` (else `default`)."""
    since_text, until_text = _text(args, "since"), _text(args, "until")
    if since_text is not None or until_text is not None:
        since = None if since_text is None else _time(since_text, "since", now)
        until = None if until_text is None else _time(until_text, "until", now)
        return Window(since, until, "custom", now)
    name = _text(args, "window") or default
    if name == "custom":  # the menu's entry for since/until, submitted without them
        name = default
    if name not in WINDOWS:
        raise BadQuery(f"window: expected one of {', '.join(WINDOWS)}, got {name!r}")
    back = WINDOWS[name]
    return Window(None if back is None else now - back, None, name, now)


def _time(text: str, name: str, now: float) -> float:
    try:
        return parse_time(text, now)
    except TimeSpecError as exc:
        raise BadQuery(f"{name}: {exc}") from None


def read_id(args: Args, key: str) -> int | None:
    """A positive whole number, or None when the key is absent or empty."""
    text = _text(args, key)
    if text is None:
        return None
    if not text.isdigit() or int(text) < 1:
        raise BadQuery(f"{key}: expected an id (a whole number from 1), got {text!r}")
    return int(text)


def read_terms(args: Args) -> tuple[tuple[str, str], ...]:
    """The ``where`` terms, ``KEY=VALUE`` each (everything after the first ``=`` is the value)."""
    terms = []
    for text in args.getlist("where"):
        if not text.strip():
            continue
        key, equals, value = text.partition("=")
        if not equals or not key:
            raise BadQuery(f"where: expected KEY=VALUE (a data key, '=', the value to match), got {text!r}")
        terms.append((key, value))
    return tuple(terms)


def read_cursor(args: Args) -> tuple[float, int] | None:
    """``before``: the time and id of the last row of the previous page (``TIME,ID``), or None."""
    text = _text(args, "before")
    if text is None:
        return None
    ts_text, _, id_text = text.partition(",")
    try:
        ts, row_id = float(ts_text), int(id_text)
    except ValueError:
        ts, row_id = math.nan, 0
    if not math.isfinite(ts) or row_id < 1:
        raise BadQuery(f"before: expected TIME,ID (a page's cursor), got {text!r}")
    return ts, row_id


def cursor_text(ts: float, row_id: int) -> str:
    """The ``before`` value after a row at time `ts` with id `row_id`."""
    return f"{ts!r},{row_id}"


class Query:
    """A page's query string as ordered pairs, for links that keep its filters and change one."""

    __slots__ = ("pairs",)

    def __init__(self, pairs: Iterable[tuple[str, str]] = ()) -> None:
        self.pairs: tuple[tuple[str, str], ...] = tuple((k, v) for k, v in pairs if v != "")

    @classmethod
    def of(cls, args: Args, keys: Sequence[str]) -> Query:
        """The values of `keys` in `args`, in that order (repeated keys keep every value)."""
        return cls((key, value) for key in keys for value in args.getlist(key))

    def get(self, key: str) -> str | None:
        """The first value of `key`, or None."""
        return next((v for k, v in self.pairs if k == key), None)

    def getlist(self, key: str) -> list[str]:
        """Every value of `key`."""
        return [v for k, v in self.pairs if k == key]

    def set(self, changes: Mapping[str, str | None] | None = None, **more: str | None) -> Query:
        """This query with each key given replaced by its value (None: removed)."""
        new = {**(changes or {}), **more}
        kept = [(k, v) for k, v in self.pairs if k not in new]
        return Query([*kept, *((k, v) for k, v in new.items() if v is not None)])

    def without(self, key: str, value: str | None = None) -> Query:
        """This query without `key` (or without that one value of it)."""
        return Query((k, v) for k, v in self.pairs if not (k == key and (value is None or v == value)))

    def only(self, *keys: str) -> Query:
        """This query with only `keys`."""
        return Query((k, v) for k, v in self.pairs if k in keys)

    def string(self) -> str:
        """``?a=1&b=2``, or the empty string."""
        return "?" + urlencode(self.pairs) if self.pairs else ""

    def __bool__(self) -> bool:
        return bool(self.pairs)
