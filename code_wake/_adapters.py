"""Which store: the adapter string, the class it names, and the store made from it.

The configuration, the logging handler's ``store``/``store_config`` and the
CLI's ``--adapter``/``--store`` all build their store here: the default
adapter is named once, ``"module,Class"`` is parsed once, and a failing
adapter becomes one `ConfigError` that names where the adapter came from and
never shows a password. Nothing here imports a store adapter until a store
is built.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import threading
from pathlib import Path
from typing import Any

from ._legacy_store import LEGACY_METHODS, LegacyStore, is_legacy_adapter
from ._masking import mask_secret_url, scrub
from ._private import make_private_dirs
from ._values import Invalid
from .errors import ConfigError
from .queue_store import QueueSettings, QueueStore
from .store import Store

__all__ = ["DEFAULT_ADAPTER", "build_default_store", "build_store", "import_ahead", "parse_adapter"]

DEFAULT_ADAPTER = "code_wake_sql14_store,Sql14Store"
"""The adapter of the embedded default store, and of a store given only its arguments."""

_ADAPTER_EXPECTED = 'a store adapter as "module,Class" (two non-empty parts separated by one comma)'
"""What `parse_adapter` expects, for messages."""

logger = logging.getLogger("code_wake")


def parse_adapter(text: object) -> str:
    """`text` as ``"module,Class"``, whitespace around the two parts stripped.

    Raises `Invalid` saying what is expected for anything else.
    """
    parts = [part.strip() for part in text.split(",")] if isinstance(text, str) else []
    if len(parts) != 2 or not all(parts):
        raise Invalid(_ADAPTER_EXPECTED)
    return ",".join(parts)


def build_store(
    adapter: str,
    args: tuple[str, ...],
    *,
    queued: bool,
    queue_settings: QueueSettings | None,
    where: str,
    args_origin: str = "",
    read_only: bool = False,
) -> Store:
    """The store `adapter` names, constructed with `args`; `ConfigError` says why not.

    `queued` puts the class behind the background queue; `queue_settings`
    go to a queued class (None: the class's own). `where` names the adapter
    and where it came from and `args_origin` where the arguments came from,
    for messages. `read_only` is passed on as ``read_only=True`` to a class
    whose `Store.supports_read_only` says it takes it (readers ask for it).
    """
    store_class = _adapter_class(adapter, where)
    failed = f"{where} could not be created"
    if not is_legacy_adapter(store_class):
        options = {"read_only": True} if read_only and store_class.supports_read_only else {}
        store_class = _queued(store_class) if queued else store_class
        return _construct(store_class, args, queue_settings, failed, args_origin, options)  # type: ignore[no-any-return]
    # A pycodewake adapter is built with its own arguments, then wrapped.
    legacy = _construct(store_class, args, None, failed, args_origin, {})
    if not queued:
        return LegacyStore(legacy)
    queued_class: Any = _queued(LegacyStore)
    return queued_class(legacy, queue_settings=queue_settings or QueueSettings())  # type: ignore[no-any-return]


def build_default_store(
    path: Path, url: str, *, queued: bool, queue_settings: QueueSettings | None, read_only: bool = False
) -> Store:
    """The embedded default: the SQLite file at `path` (`url`), its directory created; announced once.

    `read_only` creates nothing (a reader of a store never written finds no file there).
    """
    if read_only:
        where = f"the embedded default store at {path}"
        return build_store(
            DEFAULT_ADAPTER,
            (url,),
            queued=False,
            queue_settings=None,
            where=where,
            read_only=True,
        )
    try:
        make_private_dirs(path.parent)
    except OSError as exc:
        raise ConfigError(
            f"cannot create the directory {path.parent} for the embedded default store: "
            f"{exc.strerror or exc}; configure a store (store.adapter) or set XDG_DATA_HOME"
        ) from exc
    store = build_store(
        DEFAULT_ADAPTER,
        (url,),
        queued=queued,
        queue_settings=queue_settings,
        where=f"the embedded default store at {path}",
    )
    if _default_store_announced.claim():
        logger.info(
            "code_wake: no store configured; recording into the embedded default store at %s "
            "(set store.adapter/store.config or CODE_WAKE_STORE_ADAPTER to choose one)",
            path,
        )
    return store


def import_ahead(adapter: str) -> None:
    """Import the adapter's module now, quietly: a failure is reported when the store is built.

    A logging handler is made at start-up (``dictConfig``) and builds its
    store on its first record; importing the adapter then (SQLAlchemy and
    a driver, half a second) would land on whichever request logs first.
    """
    with contextlib.suppress(Exception):
        importlib.import_module(parse_adapter(adapter).partition(",")[0])


def _adapter_class(adapter: str, where: str) -> type[Any]:
    """Import the adapter's module and return its class, checked to be a `Store`."""
    try:
        module_name, _, class_name = parse_adapter(adapter).partition(",")
    except Invalid as exc:
        raise ConfigError(f"{where}: expected {exc.expected}") from None
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # any failure to import (even a SyntaxError) is a configuration error
        raise ConfigError(
            f"{where}: module {module_name!r} cannot be imported: {type(exc).__name__}: {exc}"
        ) from exc
    try:
        found = getattr(module, class_name)
    except AttributeError as exc:
        raise ConfigError(f"{where}: module {module_name!r} has no {class_name!r}: {exc}") from exc
    if not (isinstance(found, type) and (issubclass(found, Store) or is_legacy_adapter(found))):
        raise ConfigError(
            f"{where}: {found!r} is not a subclass of code_wake.store.Store "
            f"(nor a pycodewake adapter, which has {', '.join(LEGACY_METHODS)})"
        )
    return found


_queued_classes: dict[type[Store], type[Store]] = {}


def _queued(store_class: type[Store]) -> type[Store]:
    """`store_class` behind the background queue: ``class Queued(QueueStore, store_class)``."""
    if issubclass(store_class, QueueStore):
        return store_class
    known = _queued_classes.get(store_class)
    if known is None:
        known = type(f"Queued{store_class.__name__}", (QueueStore, store_class), {"__module__": __name__})
        _queued_classes[store_class] = known
    return known


def _construct(
    store_class: type[Any],
    args: tuple[Any, ...],
    queue_settings: QueueSettings | None,
    failed: str,
    args_origin: str,
    options: dict[str, Any],
) -> Any:
    """Call the adapter's constructor; its failure becomes a `ConfigError` without passwords."""
    try:
        if queue_settings is not None and issubclass(store_class, QueueStore):
            return store_class(*args, queue_settings=queue_settings, **options)
        return store_class(*args, **options)
    except Exception as exc:  # an adapter may raise anything; we add where and why
        shown = ", ".join(repr(mask_secret_url(arg)) for arg in args)
        origin = f" (from {args_origin})" if args_origin else ""
        detail = scrub(f"{type(exc).__name__}: {exc}", args)
        raise ConfigError(f"{failed} with arguments ({shown}){origin}: {detail}") from exc


class _Once:
    """Lets exactly one caller through per process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._done = False

    def claim(self) -> bool:
        """True the first time it is called, False ever after."""
        with self._lock:
            if self._done:
                return False
            self._done = True
            return True


_default_store_announced = _Once()
