"""Secrets kept out of events: by the name they sit under, and by their shape in any text.

Two rules, applied on the caller's thread before an event leaves it:

- By key: a value under a key whose name looks secret (``db_password``,
  ``X-Api-Key``, ``headers.Authorization``) is replaced by ``[FILTERED]``, at
  every depth of nested mappings and lists. Long fragments (``password``,
  ``token``) match anywhere in the key, ignoring case and separators; short
  ones (``pw``, ``pass``, ``auth``, ``pin``) match a whole part of it
  (``db_pass``, ``newPw``, ``x-auth``), so that ``author`` and ``passenger``
  are kept.
- By shape, in any text (a data value, the formatted message, an exception
  message, a repr): the password of a URL (``scheme://user:PASSWORD@host``),
  the value of a query or form parameter with a secret name
  (``?access_token=...``, ``password=...``), a quoted key/value pair with a
  secret name (``'password': '...'``, as a dict's repr shows it), and
  ``Bearer``/``Basic`` credentials. Each is replaced by ``[FILTERED]``.

docs/security.md says what is filtered, what is not, and how to add to it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from ._text import fold_key

__all__ = ["FILTERED", "Scrubber", "key_parts", "suspicious"]

FILTERED = "[FILTERED]"
"""What a secret is replaced by."""

SHORT_FRAGMENT = 4
"""Fragments this long or shorter match a whole part of a key only: ``auth`` must not hit ``author``."""

_KEY_CACHE_SIZE = 4096
"""Names remembered per scrubber, secret or not; past it they are checked on every call."""

_PARTS = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+")
_URL_PASSWORD = re.compile(r"([a-zA-Z][a-zA-Z0-9+.\-]*://[^\s:/@'\"<>]*:)[^\s/'\"<>]*@")
# Only "name=" is consumed (the value is looked ahead at), so that a parameter inside another's
# value (url=https://x/?api_key=...) is found too.
_PARAM = re.compile(r"(?<![\w.\-\[\]])([A-Za-z_][\w.\-\[\]]*)=(?=([^&\s'\"<>#;,)]*))")
_QUOTED = re.compile(r"""(['"])([A-Za-z_][\w.\- ]*)\1(\s*:\s*)(['"])((?:(?!\4).)*)\4""")
_AUTH = re.compile(r"\b([Bb]earer|Basic)(\s+)[A-Za-z0-9\-._~+/]{6,}=*")


def key_parts(key: str) -> list[str]:
    """The words of a key, lower case: ``X-Api-Key`` is x, api, key; ``newPw`` is new, pw."""
    return [part.lower() for part in _PARTS.findall(key)]


def suspicious(text: str) -> bool:
    """Cheap test first: only text with one of these can hold a secret of a known shape."""
    return "=" in text or "@" in text or "earer" in text or "Basic" in text or "':" in text or '":' in text


class Scrubber:
    """The secret filter of one event policy: which keys are secret, and text with its secrets cut out.

    `fragments` are the configured key fragments; `patterns` extra regular
    expressions whose every match is filtered in text; `by_shape` turns the
    value-shape rules (and `patterns`) on.
    """

    def __init__(self, fragments: Iterable[str], patterns: Iterable[str] = (), by_shape: bool = True) -> None:
        folded = [fold_key(fragment) for fragment in fragments]
        self._long = tuple(f for f in folded if len(f) > SHORT_FRAGMENT)
        self._short = frozenset(f for f in folded if 0 < len(f) <= SHORT_FRAGMENT)
        self._patterns = tuple(re.compile(pattern) for pattern in patterns)
        self.by_shape = by_shape
        self.always = bool(self._patterns)
        """True when every text must be looked at (patterns of the user's own)."""
        self._known: dict[str, bool] = {}

    def is_secret(self, key: str) -> bool:
        """True when `key` names a secret (see the module's docstring); remembered per key."""
        known = self._known.get(key)
        if known is None:
            known = self._decide(key)
            if len(self._known) < _KEY_CACHE_SIZE:
                self._known[key] = known
        return known

    def _decide(self, key: str) -> bool:
        folded = fold_key(key)
        if any(fragment in folded for fragment in self._long):
            return True
        return bool(self._short) and any(part in self._short for part in key_parts(key))

    def text(self, text: str) -> str:
        """`text` with every secret of a known shape, and every match of the patterns, filtered."""
        if self.by_shape and suspicious(text):
            text = self._shapes(text)
        for pattern in self._patterns:
            text = pattern.sub(FILTERED, text)
        return text

    def _shapes(self, text: str) -> str:
        if "@" in text:
            text = _URL_PASSWORD.sub(rf"\1{FILTERED}@", text)
        if "=" in text:
            text = self.params(text)
        if "':" in text or '":' in text:
            text = _QUOTED.sub(self._quoted, text)
        if "earer" in text or "Basic" in text:
            text = _AUTH.sub(rf"\1\2{FILTERED}", text)
        return text

    def params(self, text: str, mask: str = FILTERED) -> str:
        """`text` with the value of every parameter whose name is secret replaced by `mask`."""
        out: list[str] = []
        done = 0
        for match in _PARAM.finditer(text):
            value = match.group(2)
            if match.start() < done or not value or not self.is_secret(match.group(1)):
                continue
            out.append(text[done : match.end()])
            out.append(mask)
            done = match.end() + len(value)
        return "".join(out) + text[done:] if out else text

    def param_values(self, text: str) -> list[str]:
        """The values of the parameters of `text` whose names are secret (``?password=VALUE``)."""
        return [m.group(2) for m in _PARAM.finditer(text) if m.group(2) and self.is_secret(m.group(1))]

    def _quoted(self, match: re.Match[str]) -> str:
        quote, name, colon, value_quote = match.group(1, 2, 3, 4)
        if not self.is_secret(name):
            return match.group(0)
        return f"{quote}{name}{quote}{colon}{value_quote}{FILTERED}{value_quote}"
