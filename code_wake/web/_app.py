"""The web view as a WSGI application: routing, access control, security headers, rendering.

`WebApp` is what `code_wake.web.create_app` returns. Each request is, in
order: checked for credentials (`_authorized`), refused unless GET or HEAD,
routed (under the ``SCRIPT_NAME`` it is mounted at, so every link it
builds works under a prefix), answered by a page function of `_pages` that
only calls the store's query methods, rendered by Jinja2 with autoescaping,
and sent with headers that forbid inline script, framing and type sniffing.
"""

from __future__ import annotations

import hmac
import ipaddress
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from importlib import resources
from typing import TYPE_CHECKING, Any

import jinja2
from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound
from werkzeug.routing import Map, MapAdapter, Rule
from werkzeug.wrappers import Request, Response

from code_wake._version import __version__
from code_wake.errors import StoreError
from code_wake.store import Store

from . import _charts, _format, _pages
from ._filters import WINDOWS, BadQuery, Query

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

__all__ = ["CONTENT_SECURITY_POLICY", "Urls", "WebApp", "is_loopback"]

CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)
"""Scripts and styles only from the app's own static files: no inline script, no inline handlers."""

_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}
_STATIC_TYPES = {
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
}
_REALM = 'Basic realm="code_wake", charset="UTF-8"'

_ROUTES = (
    ("/", "errors"),
    ("/group/<trace>/<path:exc>", "group"),
    ("/event/<int:event_id>", "event"),
    ("/events", "events"),
    ("/processes", "processes"),
    ("/daily", "daily"),
    ("/static/<name>", "static"),
)


def is_loopback(address: str | None) -> bool:
    """True for an address of this machine's loopback (127.0.0.0/8, ::1, ::ffff:127.x.x.x)."""
    if not address:
        return False
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    mapped = getattr(ip, "ipv4_mapped", None)
    return bool((mapped or ip).is_loopback)


class Urls:
    """Builds the app's links, under the prefix it is mounted at (``SCRIPT_NAME``)."""

    def __init__(self, adapter: MapAdapter, nav: Query) -> None:
        self._adapter = adapter
        self.nav = nav
        """The query string the navigation links carry: the scope chosen."""

    def __call__(self, endpoint: str, query: Query | None = None, **values: Any) -> str:
        """The path of `endpoint` with its path `values`, and `query` as its query string."""
        path = self._adapter.build(endpoint, values, append_unknown=False)
        return path + (query.string() if query else "")

    def static(self, name: str) -> str:
        """A static file's path; the version in the query string renews browser caches on upgrade."""
        return self._adapter.build("static", {"name": name}) + f"?v={__version__}"


@dataclass(frozen=True)
class _Static:
    body: bytes
    content_type: str


class WebApp:
    """The web view of one store, a WSGI application (see `code_wake.web.create_app`).

    `token` is the credential every request must carry when set (as
    ``Authorization: Bearer TOKEN``, or as the password of HTTP basic auth);
    without one only loopback clients are served. `clock` gives "now" in
    epoch seconds (the windows count back from it).
    """

    def __init__(
        self,
        store: Store,
        *,
        token: str | None = None,
        clock: Callable[[], float] = time.time,
        owns_store: bool = False,
        page_size: int = 50,
    ) -> None:
        self.store = store
        self._token = token.encode("utf-8") if token else None
        self._clock = clock
        self._owns_store = owns_store
        self._page_size = page_size
        # Rules belong to one map: each app makes its own.
        self._map = Map([Rule(path, endpoint=name) for path, name in _ROUTES], merge_slashes=False)
        self._static = _load_static()
        self._templates = _environment()
        self._choices = _pages.ChoiceCache(store)

    def close(self) -> None:
        """Close the store, if this app opened it."""
        if self._owns_store:
            self.store.close()

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        request = Request(environ)
        response = self._respond(request)
        for name, value in _HEADERS.items():
            response.headers.setdefault(name, value)
        response.headers.setdefault("Cache-Control", "no-store")
        return response(environ, start_response)

    # -- access -----------------------------------------------------------------------------------

    def _authorized(self, request: Request) -> bool:
        """With a token: the request carries it. Without: the client is this machine."""
        if self._token is None:
            return is_loopback(request.remote_addr)
        given = _credential(request)
        # compare_digest: the time taken does not tell how much of a guess was right.
        return given is not None and hmac.compare_digest(given.encode("utf-8"), self._token)

    def _refusal(self) -> Response:
        why = (
            "This page needs the code_wake web token (HTTP basic auth password, or Authorization: Bearer)."
            if self._token is not None
            else "The code_wake web view answers this machine only; start it with a token "
            "(code-wake serve --token, or CODE_WAKE_WEB_TOKEN) to open it to others."
        )
        response = Response(why + "\n", status=401, mimetype="text/plain")
        response.headers["WWW-Authenticate"] = _REALM
        return response

    # -- answering --------------------------------------------------------------------------------

    def _respond(self, request: Request) -> Response:
        if not self._authorized(request):
            return self._refusal()
        adapter = self._map.bind_to_environ(request.environ)
        # Links between pages keep the app, version and environment chosen.
        urls = Urls(adapter, Query.of(request.args, ("app", "vsn", "env")))
        if request.method not in ("GET", "HEAD"):
            return self._error(urls, MethodNotAllowed(valid_methods=["GET", "HEAD"]))
        try:
            endpoint, values = adapter.match()
        except HTTPException as exc:
            return self._error(urls, exc)
        if endpoint == "static":
            return self._static_file(str(values["name"]))
        return self._page(request, urls, endpoint, values)

    def _page(self, request: Request, urls: Urls, endpoint: str, values: Mapping[str, Any]) -> Response:
        context = _pages.Context(
            store=self.store,
            args=request.args,
            now=self._clock(),
            urls=urls,
            page_size=self._page_size,
            choices=self._choices,
        )
        try:
            page = _pages.PAGES[endpoint](context, **values)
        except BadQuery as exc:
            return self._render(urls, "error.html", {"title": "Bad request", "message": str(exc)}, 400)
        except _pages.Missing as exc:
            return self._render(urls, "error.html", {"title": "Not found", "message": str(exc)}, 404)
        except StoreError as exc:
            # Store errors name the database with its password masked.
            message = f"The store could not be read: {exc}"
            return self._render(urls, "error.html", {"title": "Store unavailable", "message": message}, 503)
        return self._render(urls, page.template, {**page.context, "nav": endpoint}, 200)

    def _error(self, urls: Urls, exc: HTTPException) -> Response:
        if not isinstance(exc, (NotFound, MethodNotAllowed)):
            # Redirects (a missing slash) and the like are answers of their own.
            return exc.get_response()
        response = self._render(
            urls, "error.html", {"title": exc.name, "message": exc.description or exc.name}, exc.code or 500
        )
        if isinstance(exc, MethodNotAllowed):
            response.headers["Allow"] = "GET, HEAD"
        return response

    def _render(self, urls: Urls, template: str, context: dict[str, Any], status: int) -> Response:
        values = {
            "nav": "",
            "urls": urls,
            "store_name": self.store.describe(),
            "version": __version__,
            **context,
        }
        body = self._templates.get_template(template).render(values)
        return Response(body, status=status, mimetype="text/html")

    def _static_file(self, name: str) -> Response:
        found = self._static.get(name)
        if found is None:
            return Response("not found\n", status=404, mimetype="text/plain")
        response = Response(found.body, content_type=found.content_type)
        response.headers["Cache-Control"] = "public, max-age=86400"
        return response


def _credential(request: Request) -> str | None:
    """The token the request offers: a Bearer token, or the password of basic auth."""
    auth = request.authorization
    if auth is None:
        return None
    if auth.type == "bearer":
        return auth.token
    if auth.type == "basic":
        return auth.password
    return None


def _load_static() -> dict[str, _Static]:
    """The app's CSS, script and icon, read once."""
    folder = resources.files("code_wake.web") / "static"
    found = {}
    for entry in folder.iterdir():
        suffix = "." + entry.name.rpartition(".")[2]
        if suffix in _STATIC_TYPES:
            found[entry.name] = _Static(entry.read_bytes(), _STATIC_TYPES[suffix])
    return found


def _environment() -> jinja2.Environment:
    """Jinja2 with autoescaping for every template: recorded text is never markup."""
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("code_wake.web", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        utc=_format.utc,
        iso=_format.iso,
        where=_format.where,
        versions=_format.versions_text,
        names=_format.names,
        process_text=_format.process_text,
        number=lambda n: f"{n:,}",
    )
    env.globals.update(
        ago=_format.ago,
        group_key=_format.group_key,
        trace_sections=_format.trace_sections,
        trace_text=_format.trace_text,
        bucket_title=_charts.bucket_title,
        svg=_charts.svg,
        windows=list(WINDOWS),
        q=lambda **pairs: Query((k, str(v)) for k, v in pairs.items() if v is not None),
    )
    return env
