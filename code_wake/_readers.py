"""Opening a store to read it: what the ``code-wake`` command and the web view share.

A reader names a store (a URL or other argument, through an adapter that
defaults to the SQL store) or reads the configured one. Either way the store
comes without the background queue (readers do not write), opened read-only
where the adapter can (`Store.supports_read_only`: the SQL store then opens
SQLite in read-only mode and never creates or upgrades tables), and checked
to have something to read (`Store.check_readable`), so that reading a
database that does not exist, or is not code_wake's, reports it instead of
changing it.

The commands that write on purpose (``prune``, ``upgrade``) open the store
with ``read_only=False``.
"""

from __future__ import annotations

from ._adapters import DEFAULT_ADAPTER, build_store
from .config import Config
from .errors import ConfigError
from .store import Store

__all__ = ["open_for_reading", "open_store"]


def open_for_reading(store_arg: str | None, adapter: str | None, adapter_flag: str = "--adapter") -> Store:
    """The store `store_arg` names through `adapter`, else the configured one; read-only, checked readable.

    `adapter_flag` names the adapter's option in messages. Raises
    `ConfigError` (a bad adapter, or an adapter without a store argument)
    and `StoreError` (nothing to read there).
    """
    store = open_store(store_arg, adapter, adapter_flag, read_only=True)
    try:
        store.check_readable()
    except BaseException:
        store.close()
        raise
    return store


def open_store(
    store_arg: str | None, adapter: str | None, adapter_flag: str = "--adapter", *, read_only: bool
) -> Store:
    """The store `store_arg` names through `adapter`, else the configured one; without a queue, unchecked."""
    if store_arg is None and adapter is None:
        return Config.load().build_store(queued=False, read_only=read_only)
    if store_arg is None:
        raise ConfigError(f"{adapter_flag} needs --store, the argument to give that adapter")
    where = f"{adapter_flag} {adapter!r}" if adapter else "the store of --store"
    return build_store(
        adapter or DEFAULT_ADAPTER,
        (store_arg,),
        queued=False,
        queue_settings=None,
        where=where,
        read_only=read_only,
    )
