"""The web view: what was recorded, over time, in a browser.

`create_app` returns a WSGI application to mount in your own Flask, Django
or gunicorn setup (under any path: links follow ``SCRIPT_NAME``), and
``code-wake serve`` runs the same application on its own (see docs/web.md).
It only reads, through the store's query methods.

Its dependencies (Werkzeug, Jinja2, and waitress for ``serve``) come with
``pip install 'code-wake[web]'``; ``code_wake`` itself imports without
them, and so does this package: they are imported when an app is created.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from code_wake.store import Store

if TYPE_CHECKING:
    from ._app import WebApp

__all__ = ["INSTALL_HINT", "create_app", "require_dependencies"]

INSTALL_HINT = "pip install 'code-wake[web]'"
"""What installs the web view's dependencies."""


def require_dependencies(*modules: str) -> None:
    """Import `modules` (default: Werkzeug and Jinja2), or raise ImportError saying what installs them."""
    for module in modules or ("werkzeug", "jinja2"):
        try:
            __import__(module)
        except ImportError as exc:
            raise ImportError(f"The code_wake web view needs {module}: {INSTALL_HINT} ({exc})") from exc


def create_app(
    store: Store | str | None = None,
    *,
    adapter: str | None = None,
    token: str | None = None,
    clock: Callable[[], float] = time.time,
) -> WebApp:
    """The web view of `store` as a WSGI application.

    `store` is a store object (used as given, and not closed by the app), a
    database URL (opened with code_wake's SQL store, or with `adapter`,
    ``"module,Class"``, as ``code-wake --store URL --adapter ...`` would), or
    None for the store the configuration names, as ``code-wake`` finds it.
    The store must have something to read (`Store.check_readable`): a SQLite
    file that does not exist is refused, not created.

    With `token`, every request must carry it (``Authorization: Bearer
    TOKEN``, or as the password of HTTP basic auth, any user name); without
    one, only clients on this machine's loopback are served. Behind a
    reverse proxy on the same machine every client looks local: give a token.
    """
    require_dependencies()
    from ._app import WebApp

    owns = not isinstance(store, Store)
    if isinstance(store, Store):
        store.check_readable()
        opened = store
    else:
        opened = _open(store, adapter)
    try:
        return WebApp(opened, token=token, clock=clock, owns_store=owns)
    except Exception:
        if owns:
            opened.close()
        raise


def _open(url: str | None, adapter: str | None) -> Store:
    """The store as the ``code-wake`` command opens it: without a queue, checked readable."""
    from code_wake._readers import open_for_reading

    return open_for_reading(url, adapter, adapter_flag="adapter")
