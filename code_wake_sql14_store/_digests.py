"""``events.digest`` for every event written, with what repeats encoded once.

The digest (`code_wake.event.data_digest`, pycodewake's formula) is a sha256
of the event's bencoded items. Bencoding them was a tenth of the writer's
time per log record; most items (a call site's, a thread's, a customer's)
recur from event to event, so each item's bencoding is remembered, a
bounded number of them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

__all__ = ["DataDigests"]

_REMEMBERED = 4096
"""Items whose bencoding is remembered; past it, all are forgotten and the count starts again."""


class DataDigests:
    """`data_digest`, the same bytes, with each item's bencoding remembered. Safe to share between threads."""

    def __init__(self, remembered: int = _REMEMBERED) -> None:
        self._codes: dict[tuple[str, str | None], bytes] = {}
        self._remembered = remembered

    def digest(self, data: Sequence[tuple[str, str | None]]) -> bytes | None:
        """sha256 of the bencoded ``[[key, val], ...]`` (a null value as an empty list); None for no data."""
        if not data:
            return None
        codes = self._codes
        parts = [b"l"]
        for item in data:
            code = codes.get(item)
            if code is None:
                code = _bencoded(*item)
                if len(codes) >= self._remembered:
                    # Items that never recur (messages, ids) would otherwise fill it for good.
                    codes.clear()
                codes[item] = code
            parts.append(code)
        parts.append(b"e")
        return hashlib.sha256(b"".join(parts)).digest()


def _bencoded(key: str, val: str | None) -> bytes:
    key_bytes = key.encode("utf-8", "surrogatepass")
    if val is None:
        return b"l%d:%slee" % (len(key_bytes), key_bytes)
    val_bytes = val.encode("utf-8", "surrogatepass")
    return b"l%d:%s%d:%se" % (len(key_bytes), key_bytes, len(val_bytes), val_bytes)
