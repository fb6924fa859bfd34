"""The before-record hook named in the configuration: ``events.before_record: "package.module:function"``.

The hook sees each event (a `code_wake.PendingEvent`) on the caller's thread
after code_wake's own filters, and returns it, changed (``event._replace(...)``)
or not, or None to drop it, as Sentry's ``before_send`` does. A hook that
raises drops the event, which is reported: a hook that redacts must not let
the event through unredacted when it fails.
"""

from __future__ import annotations

import importlib
from typing import Any

from ._values import Invalid
from .errors import ConfigError
from .event import BeforeRecord

__all__ = ["hook_name", "load_hook"]

_EXPECTED = 'a function as "package.module:function"'


def hook_name(value: object) -> str:
    """`value` checked to look like ``package.module:function``; `Invalid` otherwise."""
    module, colon, name = value.partition(":") if isinstance(value, str) else ("", "", "")
    if not (colon and module.strip() and name.strip()):
        raise Invalid(_EXPECTED)
    return f"{module.strip()}:{name.strip()}"


def load_hook(spec: str, origin: str) -> BeforeRecord:
    """Import the hook `spec` names; `ConfigError` naming `origin` when it cannot be used."""
    module_name, _, attribute = spec.partition(":")
    try:
        found: Any = importlib.import_module(module_name)
        for part in attribute.split("."):
            found = getattr(found, part)
    except Exception as exc:  # any failure to import is a configuration error, as for adapters
        raise ConfigError(f"{origin}: cannot load {spec!r}: {type(exc).__name__}: {exc}") from exc
    if not callable(found):
        raise ConfigError(f"{origin}: {spec!r} is not callable; expected {_EXPECTED}")
    return found  # type: ignore[no-any-return]
