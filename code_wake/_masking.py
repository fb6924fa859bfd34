"""Passwords kept out of messages: store URLs and arguments shown with their secrets masked.

Plain text parsing, no database library: whatever sits between the first
colon after ``scheme://`` (or the start of the text) and the last ``@`` is
the password. A password may hold an unescaped ``@``, ``:`` or ``/``, so the
span errs on the side of hiding too much.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple
from urllib.parse import unquote

from ._scrub import Scrubber
from .event import DEFAULT_SECRET_KEYS

__all__ = ["mask_secret_url", "scrub"]

MASK = "***"
"""What a password is shown as."""

_QUERY = Scrubber(DEFAULT_SECRET_KEYS)
"""Finds the query parameters with secret names (``?password=...``) of a URL."""


class _Userinfo(NamedTuple):
    """A text cut around its password: ``head`` + password + ``tail``."""

    head: str
    password: str
    tail: str


def _userinfo(text: str) -> _Userinfo | None:
    """`text` cut around the password of its ``user:password@host`` part; None without one."""
    scheme, sep, rest = text.partition("://")
    if not sep:
        scheme, rest = "", text
    # The last "@", so that a password containing "@" is masked whole.
    userinfo, at, host = rest.rpartition("@")
    user, colon, password = userinfo.partition(":")
    if not at or not colon:
        return None
    return _Userinfo(f"{scheme}{sep}{user}:", password, f"@{host}")


def mask_secret_url(text: str) -> str:
    """`text` with any password in it replaced by ``***``; fit for messages and logs.

    The user-info password and the values of query parameters with secret
    names (``?password=...``, ``&sslpassword=...``) are masked.

    ``postgresql://scott:tiger@host/db`` becomes ``postgresql://scott:***@host/db``,
    and so does a URL whose password holds an unescaped ``@`` or ``:``; text
    without a ``user:password@`` part is returned unchanged.
    """
    found = _userinfo(text)
    text = text if found is None else f"{found.head}{MASK}{found.tail}"
    # A password can also ride in the query: ...?password=hunter2, ?sslpassword=...
    return _QUERY.params(text, MASK) if "=" in text else text


def _passwords(text: str) -> set[str]:
    """The password in `text` as written and percent-decoded, so that both can be scrubbed."""
    found = _userinfo(text)
    values = [] if found is None else [found.password]
    values += _QUERY.param_values(text)
    return {form for value in values for form in (value, unquote(value))} - {""}


def scrub(message: str, secrets_from: Iterable[str]) -> str:
    """`message` with each of `secrets_from` masked and its password, however written, removed."""
    for arg in secrets_from:
        message = message.replace(arg, mask_secret_url(arg))
        for password in _passwords(arg):
            message = message.replace(password, MASK)
    return message
