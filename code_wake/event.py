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
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple, TypeAlias

from ._text import fold_key, safe_repr, value_text
from .records import ProcessInfo
from .stack_trace import RawFrame, capture_caller, capture_exception, chained_exceptions, exception_type_name

__all__ = [
    "DEFAULT_MAX_KEY_LENGTH",
    "DEFAULT_MAX_VALUE_LENGTH",
    "DEFAULT_SECRET_KEYS",
    "FILTERED",
    "EventData",
    "EventPolicy",
    "ExcChain",
    "PendingEvent",
    "ProcessRef",
    "data_digest",
]

EventData: TypeAlias = "Mapping[Any, Any] | Iterable[tuple[Any, Any]] | None"
"""What a log call accepts as data: a mapping, or ``(key, value)`` pairs (keys may repeat)."""

ProcessRef: TypeAlias = "ProcessInfo | int"
"""Whose event it is: a stored process id, or a process the store has not registered yet."""

Pairs: TypeAlias = tuple[tuple[str, "str | None"], ...]

ExcChain: TypeAlias = tuple[tuple[str, str], ...]
"""An exception's chained causes and contexts as ``(type, message)`` pairs, outermost first."""

DEFAULT_MAX_VALUE_LENGTH = 8192
"""Characters kept of one value (and of an exception message) before truncation."""

DEFAULT_MAX_KEY_LENGTH = 200
"""Characters kept of one key."""

DEFAULT_SECRET_KEYS: tuple[str, ...] = (
    "password",
    "passwd",
    "pwd",
    "secret",
    "token",
    "api_key",
    "access_key",
    "private_key",
    "authorization",
    "auth_header",
    "cookie",
    "credential",
    "session_id",
    "signature",
)
"""Key fragments whose values are filtered; matched inside keys, ignoring case and separators."""

FILTERED = "[FILTERED]"
"""What a secret value is replaced by."""

TRUNCATED_MARKER = "...[truncated {} chars]"
"""Appended to a truncated value, saying how much was cut."""

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
    _secret_fragments: tuple[str, ...] = field(init=False, repr=False, compare=False)
    _keys: dict[str, str | _SecretKey] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        fragments = tuple(fold_key(k) for k in self.secret_keys if fold_key(k))
        object.__setattr__(self, "_secret_fragments", fragments)
        # Keys repeat from call to call: remember each one's clean form and secrecy.
        object.__setattr__(self, "_keys", {})

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
        if frames is None and inc_st:
            frames = capture_exception(exc, st_len) if exc is not None else capture_caller(st_len)
        when = _now() if when_ts is None else float(when_ts)
        pairs = self.normalise(data) if data else ()
        if exc is None:
            return _new_event(PendingEvent, (process, when, pairs, frames, None, None, ()))
        message = self.clean_text(_safe_str(exc))
        kind, chain = exception_type_name(exc), self.exception_chain(exc)
        return _new_event(PendingEvent, (process, when, pairs, frames, kind, message, chain))

    def exception_chain(self, exc: BaseException) -> ExcChain:
        """The types and cleaned messages of the exceptions chained to `exc`, outermost first."""
        if exc.__cause__ is None and exc.__context__ is None:
            return ()
        clean = self.clean_text
        return tuple((exception_type_name(e), clean(_safe_str(e))) for e in chained_exceptions(exc))

    def normalise(self, data: EventData) -> Pairs:
        """Data as ``(str key, str-or-None value)`` pairs, secrets filtered."""
        if not data:
            return ()
        # The exact-type test first: a dict is the common case and the cheaper test.
        items = data.items() if type(data) is dict or isinstance(data, Mapping) else _pairs(data)
        keys, limit = self._keys, self.max_value_length
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
                fits = len(value) <= limit and value.isascii() and "\x00" not in value
                append((text_key, value if fits else self.clean_text(value)))
            else:
                append((text_key, None if value is None else self.clean_text(value_text(value))))
        return tuple(pairs)

    def _learn_key(self, key: Any) -> str | _SecretKey:
        """The key's stored form, marked when secret; remembered for string keys."""
        text_key = self.clean_text(key if isinstance(key, str) else _safe_str(key), self.max_key_length)
        known = _SecretKey(text_key) if self.is_secret(text_key) else text_key
        if type(key) is str and len(self._keys) < _KEY_CACHE_SIZE:
            self._keys[key] = known
        return known

    def is_secret(self, key: str) -> bool:
        """True when the key contains a secret fragment (``db_password``, ``X-Api-Key``)."""
        folded = fold_key(key)
        return any(fragment in folded for fragment in self._secret_fragments)

    def clean_text(self, text: str, limit: int | None = None) -> str:
        """Truncate with a visible marker; make NULs and lone surrogates storable."""
        limit = self.max_value_length if limit is None else limit
        if len(text) > limit:
            text = text[:limit] + TRUNCATED_MARKER.format(len(text) - limit)
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


def _pairs(data: Iterable[Any]) -> Iterable[tuple[Any, Any]]:
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
