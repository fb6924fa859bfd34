"""Mounted under a path of a real Flask application: every link of every page resolves under it."""

from __future__ import annotations

import re
from collections.abc import Iterator
from html import unescape

import pytest
from werkzeug.middleware.dispatcher import DispatcherMiddleware
from werkzeug.test import Client

from code_wake.web import create_app

from .conftest import Recorded

flask = pytest.importorskip("flask", reason="Flask is in the dev extra")

PREFIX = "/tools/code-wake"


def host_app(recorded: Recorded) -> tuple[object, object]:
    """A Flask app of its own, with the web view mounted at PREFIX."""
    site = flask.Flask("host_site")

    @site.get("/")
    def home() -> str:
        return "the host site"

    view = create_app(recorded.url, clock=lambda: recorded.now)
    site.wsgi_app = DispatcherMiddleware(site.wsgi_app, {PREFIX: view})  # type: ignore[method-assign]
    return site, view


def crawl(client: Client, start: str, limit: int = 60) -> dict[str, int]:
    """Status of every page reachable by links from `start` (static files included), breadth first."""
    seen: dict[str, int] = {}
    queue = [start]
    while queue and len(seen) < limit:
        path = queue.pop(0)
        if path in seen:
            continue
        response = client.get(path, environ_base={"REMOTE_ADDR": "127.0.0.1"})
        seen[path] = response.status_code
        if response.mimetype != "text/html":
            continue
        html = response.get_data(as_text=True)
        found = [unescape(h) for h in re.findall(r'(?:href|src)="([^"]+)"', html)]
        queue.extend(h for h in found if h not in seen)
    return seen


@pytest.fixture
def site(recorded: Recorded) -> Iterator[Client]:
    app, view = host_app(recorded)
    yield Client(app)  # type: ignore[arg-type]
    view.close()  # type: ignore[attr-defined]


def test_every_link_resolves_under_the_prefix(site: Client) -> None:
    """Links, forms' targets, scripts and styles all start with the prefix, and all answer 200."""
    seen = crawl(site, PREFIX + "/?window=7d")
    assert len(seen) > 20
    assert all(path.startswith(PREFIX + "/") for path in seen), [p for p in seen if not p.startswith(PREFIX)]
    assert {path: status for path, status in seen.items() if status != 200} == {}
    assert any("/group/" in p for p in seen) and any("/event/" in p for p in seen)
    assert any("/static/code-wake.css" in p for p in seen)


def test_the_host_app_is_untouched(site: Client) -> None:
    assert site.get("/").get_data(as_text=True) == "the host site"
    assert site.get(PREFIX + "/", environ_base={"REMOTE_ADDR": "192.0.2.1"}).status_code == 401
