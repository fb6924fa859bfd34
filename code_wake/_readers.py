"""Opening a store to read it: what the ``code-wake`` command and the web view share.

A reader names a store (a URL or other argument, through an adapter that
defaults to the SQL store) or reads the configured one. Either way the store
comes without the background queue (readers do not write) and is checked to
have something to read (`Store.check_readable`), so that reading a database
that does not exist reports it instead of creating an empty one.
"""

from __future__ import annotations

from ._adapters import DEFAULT_ADAPTER, build_store
from .config import Config
from .errors import ConfigError
from .store import Store

__all__ = ["open_for_reading"]


def open_for_reading(store_arg: str | None, adapter: str | None, adapter_flag: str = "--adapter") -> Store:
    """The store `store_arg` names through `adapter`, else the configured one; checked readable.

    `adapter_flag` names the adapter's option in messages. Raises
    `ConfigError` (a bad adapter, or an adapter without a store argument)
    and `StoreError` (nothing to read there).
    """
    if store_arg is None and adapter is None:
        store = Config.load().build_store(queued=False)
    elif store_arg is None:
        raise ConfigError(f"{adapter_flag} needs --store, the argument to give that adapter")
    else:
        where = f"{adapter_flag} {adapter!r}" if adapter else "the store of --store"
        store = build_store(
            adapter or DEFAULT_ADAPTER, (store_arg,), queued=False, queue_settings=None, where=where
        )
    try:
        store.check_readable()
    except BaseException:
        store.close()
        raise
    return store
