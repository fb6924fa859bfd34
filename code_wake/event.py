"""The pending event: what a log call becomes on the caller's thread.

Every door (``Process.log``, the logging handler, the structlog processor)
builds one `PendingEvent` through `EventPolicy.build`, and every store writes
those. Building one normalises the data (strings as they are, ``None`` as
null, everything else as compact JSON or its ``repr``), truncates over-long
values, filters secrets and captures the stack cheaply; nothing slow happens
here and nothing of the caller's frames or exception is kept alive.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sized
from dataclasses import dataclass, field
from itertools import islice
from typing import Any, NamedTuple, TypeAlias

from ._bounded import MAX_ITEMS, bounded_json, bounded_repr, scalar_text
from ._report import report_problem
from ._scrub import FILTERED, Scrubber
from ._text import safe_repr
from .records import ProcessInfo
from .stack_trace import RawFrame, capture_caller, capture_exception, chained_exceptions, exception_type_name

__all__ = [
    "DEFAULT_MAX_KEY_LENGTH",
    "DEFAULT_MAX_VALUE_LENGTH",
    "DEFAULT_SECRET_KEYS",
    "FILTERED",
    "BeforeRecord",
    "EventData",
    "EventPolicy",
    "ExcChain",
    "NormalisedData",
    "Pairs",
    "PendingEvent",
    "ProcessRef",
    "data_digest",
]

EventData: TypeAlias = "Mapping[Any, Any] | Iterable[tuple[Any, Any]] | None"
"""What a log call accepts as data: a mapping, or ``(key, value)`` pairs (keys may repeat)."""

ProcessRef: TypeAlias = "ProcessInfo | int"
"""Whose event it is: a stored process id, or a process the store has not registered yet."""

Pairs: TypeAlias = tuple[tuple[str, "str | None"], ...]
"""An event's data once normalised (`PendingEvent.data`): ``(key, value)`` pairs, keys may repeat."""


class NormalisedData(tuple[tuple[str, "str | None"], ...]):
    """Pairs the event policy that builds the event has normalised already: `build` keeps them as they are.

    The logging door makes them from each call site's fields, which it
    normalises once and remembers (`code_wake._doors.RecordSites`), rather
    than once per record. Normalising twice would not do: a cut value would
    be cut again.
    """

    __slots__ = ()


ExcChain: TypeAlias = tuple[tuple[str, str], ...]
"""An exception's chained causes and contexts as ``(type, message)`` pairs, outermost first."""

DEFAULT_MAX_VALUE_LENGTH = 8192
"""Characters kept of one value (and of an exception message) before truncation."""

DEFAULT_MAX_KEY_LENGTH = 200
"""Characters kept of one key."""

DEFAULT_SECRET_KEYS: tuple[str, ...] = (
    "password",
    "passwd",
    "passphrase",
    "pwd",
    "pw",
    "pass",
    "secret",
    "token",
    "api_key",
    "apikey",
    "access_key",
    "private_key",
    "authorization",
    "auth",
    "auth_header",
    "bearer",
    "cookie",
    "credential",
    "session_id",
    "sessionid",
    "sid",
    "csrf",
    "xsrf",
    "jwt",
    "otp",
    "pin",
    "signature",
    "dsn",
)
"""Key fragments whose values are filtered, ignoring case and separators: fragments of five
characters or more match anywhere in a key (``db_password``), shorter ones a whole part of it
(``db_pass``, ``newPw``, ``x-auth``, not ``author``); see docs/security.md."""

BeforeRecord: TypeAlias = "Callable[[PendingEvent], PendingEvent | None]"
"""A hook run on each event before it is recorded: returns the event (changed or not), or None to drop it."""

TRUNCATED_MARKER = "...[truncated {} chars]"
"""Appended to a truncated value, saying how much was cut."""

_CLEAN_CACHE_SIZE = 4096
"""Short values remembered as plain per policy; past it, values are checked on every call."""

_CLEAN_MAX_LENGTH = 64
"""Longer values are not remembered: they rarely repeat."""

_KEY_CACHE_SIZE = 4096
"""Distinct keys remembered per policy; past it, keys are checked on every call."""


@dataclass(frozen=True, slots=True)
class _SecretKey:
    """A key whose values are filtered, as the key cache remembers it."""

    text: str


_now = time.time
_new_event = tuple.__new__
"""Builds a PendingEvent without NamedTuple's Python-level __new__: measurably cheaper per event."""


class PendingEvent(NamedTuple):
    """One event on its way to a store: immutable, cheap, free of live objects.

    ``frames`` are outermost first and carry no source lines yet; ``None``
    means the event has no stack trace. A named tuple rather than a frozen
    dataclass: it is built on the caller's thread for every event, and a
    tuple is built several times faster.
    """

    process: ProcessRef
    when_ts: float
    data: Pairs = ()
    frames: tuple[RawFrame, ...] | None = None
    exc_type: str | None = None
    exc_message: str | None = None
    exc_chain: ExcChain = ()
    """The chained exceptions' types and messages, outermost first (their frames' markers, in order)."""


@dataclass(frozen=True, slots=True)
class EventPolicy:
    """How raw log-call input becomes a `PendingEvent`: limits and secret filtering."""

    max_value_length: int = DEFAULT_MAX_VALUE_LENGTH
    max_key_length: int = DEFAULT_MAX_KEY_LENGTH
    secret_keys: tuple[str, ...] = DEFAULT_SECRET_KEYS
    secret_patterns: tuple[str, ...] = ()
    """Regular expressions whose every match in any text of an event is filtered."""
    scrub_values: bool = True
    """Filter secrets by their shape in text (URL passwords, secret parameters, Bearer/Basic)."""
    before_record: BeforeRecord | None = field(default=None, compare=False)
    """Run on each event before it is recorded (see `BeforeRecord`); `Process.log` calls it."""
    _scrubber: Scrubber = field(init=False, repr=False, compare=False)
    _keys: dict[str, str | _SecretKey] = field(init=False, repr=False, compare=False)
    _clean: dict[str, None] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        scrubber = Scrubber(self.secret_keys, self.secret_patterns, self.scrub_values)
        object.__setattr__(self, "_scrubber", scrubber)
        # Keys repeat from call to call: remember each one's clean form and secrecy.
        object.__setattr__(self, "_keys", {})
        # So do many short values: remember those found plain (nothing to cut, filter or escape).
        object.__setattr__(self, "_clean", {})

    def build(
        self,
        process: ProcessRef,
        data: EventData = None,
        exc: BaseException | None = None,
        inc_st: bool = False,
        st_len: int | None = None,
        when_ts: float | None = None,
        frames: tuple[RawFrame, ...] | None = None,
    ) -> PendingEvent:
        """Normalise one log call's input; this runs on the caller's thread for every event.

        `frames` given explicitly (the original's ``st_data``) win over capture;
        otherwise with `inc_st` the trace comes from `exc`, or from the calling
        stack (its code_wake, logging and structlog frames left out).
        """
        bad_exc = exc is not None and not isinstance(exc, BaseException)
        if bad_exc:
            exc, data = None, self._with_bad_exc(data, exc)
        if frames is None and inc_st:
            frames = capture_exception(exc, st_len) if exc is not None else capture_caller(st_len)
        when = _now() if when_ts is None else float(when_ts)
        pairs = self.normalise(data) if data else ()
        if exc is None:
            return _new_event(PendingEvent, (process, when, pairs, frames, None, None, ()))
        message = self.clean_text(self._scrubber.text(_safe_str(exc)))
        kind, chain = exception_type_name(exc), self.exception_chain(exc)
        return _new_event(PendingEvent, (process, when, pairs, frames, kind, message, chain))

    def exception_chain(self, exc: BaseException) -> ExcChain:
        """Type and cleaned, secret-filtered message of each exception chained to `exc`, outermost first."""
        if exc.__cause__ is None and exc.__context__ is None:
            return ()
        clean, scrub = self.clean_text, self._scrubber.text
        return tuple((exception_type_name(e), clean(scrub(_safe_str(e)))) for e in chained_exceptions(exc))

    def _with_bad_exc(self, data: EventData, exc: object) -> EventData:
        """The data with a bad `exc` (a class, a string) kept as its value ``exc``; reported, rate-limited."""
        report_problem(
            "log-exc",
            f"exc must be an exception instance, not {type(exc).__name__} "
            f"{self._scrubber.text(safe_repr(exc)[:100])}; "
            "the event is recorded with it as the data value 'exc'",
        )
        return [*_items(data), ("exc", exc)]

    def normalise(self, data: EventData) -> Pairs:
        """Data as ``(str key, str-or-None value)`` pairs, secrets filtered, at most `MAX_ITEMS`."""
        if not data:
            return ()
        if type(data) is NormalisedData:
            return tuple(data)  # a plain tuple: the mark means nothing past this policy
        # The exact-type test first: a dict is the common case and the cheaper test.
        small_dict = type(data) is dict and len(data) <= MAX_ITEMS
        items = data.items() if small_dict else _items_of(data)  # type: ignore[union-attr]
        keys, limit, scrub = self._keys, self.max_value_length, self._scrubber
        by_shape, always, clean = scrub.by_shape, scrub.always, self._clean
        pairs: list[tuple[str, str | None]] = []
        append = pairs.append
        for key, value in items:
            # The common case inline: a known, non-secret key and a short, plain ASCII string.
            text_key = keys.get(key) if type(key) is str else None
            if text_key is None:
                text_key = self._learn_key(key)
            if isinstance(text_key, _SecretKey):
                append((text_key.text, FILTERED))
            elif type(value) is str:
                if value in clean:
                    # Seen and found clean before: levels, logger and function names, templates repeat.
                    append((text_key, value))
                elif self._plain(value, limit, by_shape, always):
                    append((text_key, value))
                    if len(value) <= _CLEAN_MAX_LENGTH and len(clean) < _CLEAN_CACHE_SIZE:
                        clean[value] = None
                else:
                    append((text_key, self.clean_text(scrub.text(value[: limit + 256]), over=len(value))))
            else:
                append((text_key, None if value is None else self.clean_text(self.value_text(value))))
        return tuple(pairs)

    @staticmethod
    def _plain(value: str, limit: int, by_shape: bool, always: bool) -> bool:
        """True when `value` is stored as it is: short, plain ASCII, and of no secret's shape."""
        if len(value) > limit or not value.isascii() or "\x00" in value or always:
            return False
        if not by_shape:
            return True
        # `_scrub.suspicious`, inlined.
        return not (
            "=" in value
            or "@" in value
            or "earer" in value
            or "Basic" in value
            or "':" in value
            or '":' in value
        )

    def value_text(self, value: Any) -> str:
        """A value that is not a string as text: compact JSON (bounded, secrets filtered), else its repr."""
        if isinstance(value, (bool, int, float)):
            return scalar_text(value)
        if isinstance(value, (Mapping, list, tuple)):
            return bounded_json(value, self.max_value_length, self._scrubber)
        return bounded_repr(value, self.max_value_length, self._scrubber)

    def _learn_key(self, key: Any) -> str | _SecretKey:
        """The key's stored form, marked when secret; remembered for string keys."""
        text_key = self.clean_text(key if isinstance(key, str) else _safe_str(key), self.max_key_length)
        known = _SecretKey(text_key) if self.is_secret(text_key) else text_key
        if type(key) is str and len(self._keys) < _KEY_CACHE_SIZE:
            self._keys[key] = known
        return known

    def is_secret(self, key: str) -> bool:
        """True when the key names a secret (``db_password``, ``X-Api-Key``, ``db_pass``; not ``author``)."""
        return self._scrubber.is_secret(key)

    def scrub_text(self, text: str) -> str:
        """`text` with its secret-shaped parts filtered (URL passwords, secret parameters, credentials)."""
        return self._scrubber.text(text)

    def clean_text(self, text: str, limit: int | None = None, over: int | None = None) -> str:
        """Truncate with a visible marker; make NULs and lone surrogates storable.

        `over` is the length of the text `text` was cut from, when it was cut
        before (so the marker counts what the caller gave).
        """
        limit = self.max_value_length if limit is None else limit
        total = len(text) if over is None else max(over, len(text))
        if total > limit:
            text = text[:limit] + TRUNCATED_MARKER.format(total - limit)
        if "\x00" in text:
            # PostgreSQL refuses NUL in text; every backend gets the same escaped form.
            text = text.replace("\x00", "\\x00")
        if not text.isascii():
            try:
                text.encode("utf-8")
            except UnicodeEncodeError:
                # Lone surrogates cannot be encoded for any database driver.
                text = text.encode("utf-8", "backslashreplace").decode("utf-8")
        return text


def _iterable(data: object) -> bool:
    try:
        iter(data)  # type: ignore[call-overload]
    except TypeError:
        return False
    return True


def _items_of(data: EventData) -> Iterable[tuple[Any, Any]]:
    """The pairs of `data`, at most `MAX_ITEMS` of them (then one saying how many were left out)."""
    if isinstance(data, Mapping):
        return data.items() if len(data) <= MAX_ITEMS else _first(data)
    if isinstance(data, (str, bytes, bytearray)) or not _iterable(data):
        # Never split a string into characters: it is kept whole, as the event's message.
        return (("message", data),)
    return _first_pairs(data)  # type: ignore[arg-type]


def _first(data: Mapping[Any, Any]) -> Iterable[tuple[Any, Any]]:
    """The first `MAX_ITEMS` items of a large mapping, then one saying how many were left out."""
    yield from islice(data.items(), MAX_ITEMS)
    yield "_truncated", f"...[+{len(data) - MAX_ITEMS} items]"


def _first_pairs(data: Iterable[Any]) -> Iterable[tuple[Any, Any]]:
    """The first `MAX_ITEMS` pairs, then one saying that more were left out."""
    pairs = _pairs(data)
    yield from islice(pairs, MAX_ITEMS)
    if next(pairs, None) is not None:
        left = f"+{len(data) - MAX_ITEMS} " if isinstance(data, Sized) else "more "
        yield "_truncated", f"...[{left}items]"


def _items(data: EventData) -> list[tuple[Any, Any]]:
    """`data` as a list of pairs (bounded), to add one more to."""
    if not data:
        return []
    if isinstance(data, Mapping):
        return list(islice(data.items(), MAX_ITEMS))
    if isinstance(data, (str, bytes, bytearray)) or not _iterable(data):
        return [("message", data)]
    return list(_first_pairs(data))


def _pairs(data: Iterable[Any]) -> Iterator[tuple[Any, Any]]:
    for item in data:
        if isinstance(item, (str, bytes)) or not isinstance(item, (tuple, list)) or len(item) != 2:
            # Not a pair: keep it whole under a key that says so, rather than lose it.
            yield "_item", item
        else:
            yield item[0], item[1]


def _safe_str(value: Any) -> str:
    try:
        return str(value)
    except Exception:  # noqa: BLE001 - any __str__ may raise; the event must still be stored
        return safe_repr(value)


def data_digest(data: Pairs) -> bytes | None:
    """pycodewake's ``events.digest``: sha256 of the bencoded ``[[key, val], ...]``.

    A null value is bencoded as an empty list, which no string can be. This
    is `bencode` specialised for pairs of strings, as it runs for every event.
    """
    if not data:
        return None
    parts = [b"l"]
    for key, val in data:
        key_bytes = key.encode("utf-8", "surrogatepass")
        if val is None:
            parts.append(b"l%d:%slee" % (len(key_bytes), key_bytes))
        else:
            val_bytes = val.encode("utf-8", "surrogatepass")
            parts.append(b"l%d:%s%d:%se" % (len(key_bytes), key_bytes, len(val_bytes), val_bytes))
    parts.append(b"e")
    return hashlib.sha256(b"".join(parts)).digest()
