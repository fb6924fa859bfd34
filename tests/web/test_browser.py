"""The web view in a real browser: Debian's Chromium, driven by Playwright, against a served store.

The app is served by waitress on 127.0.0.1 (a free port) from a thread; the
store is a SQLite file, or PostgreSQL where its server answers. Every page
is watched: no dialog may open (recorded markup must stay text), no request
may leave for another address, no script error or CSP violation may be
logged. Screenshots go to the test's tmp_path and must not be blank.

Skips where /usr/bin/chromium or Playwright is missing, unless
CODE_WAKE_TEST_REQUIRE_BROWSER is set (as .ci/run does): then it fails.
"""

from __future__ import annotations

import base64
import os
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from code_wake.web import create_app

from .conftest import SCRIPT_PAYLOAD, Recorded, record

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _missing() -> str | None:
    if not Path(CHROMIUM).exists():
        return f"no {CHROMIUM} (apt-get install chromium chromium-driver)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed (pip install -e '.[dev]')"
    return None


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Chromium, launched once for the module."""
    reason = _missing()
    if reason is not None:
        if os.environ.get("CODE_WAKE_TEST_REQUIRE_BROWSER"):
            pytest.fail(reason)
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@contextmanager
def serving(wsgi: Any) -> Iterator[str]:
    """`wsgi` served by waitress on 127.0.0.1 from a thread; yields its base URL."""
    from waitress.server import create_server

    server = create_server(wsgi, host="127.0.0.1", port=0, threads=4)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.effective_port}"  # type: ignore[union-attr]
    finally:
        server.close()
        thread.join(timeout=10)


@dataclass
class Watched:
    """A browser page, and everything it did that a safe page must not."""

    page: Any
    base: str
    dialogs: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def check(self) -> None:
        """No dialog, no request elsewhere, no script error or CSP report, no payload run."""
        assert self.dialogs == []
        assert [url for url in self.requests if not url.startswith(self.base + "/")] == []
        assert self.problems == []
        assert self.page.evaluate("window.__cw_xss") is None

    def go(self, path: str) -> None:
        response = self.page.goto(self.base + path)
        assert response is not None and response.status == 200, path
        self.check()


def _dismiss(dialogs: list[str], dialog: Any) -> None:
    dialogs.append(dialog.message)
    dialog.dismiss()


@contextmanager
def watched_page(browser: Any, base: str, width: int = 1280, height: int = 900) -> Iterator[Watched]:
    context = browser.new_context(viewport={"width": width, "height": height})
    page = context.new_page()
    watched = Watched(page, base)
    page.on("dialog", lambda dialog: _dismiss(watched.dialogs, dialog))
    page.on("request", lambda request: watched.requests.append(request.url))
    page.on("console", lambda m: watched.problems.append(m.text) if m.type in ("error", "warning") else None)
    page.on("pageerror", lambda error: watched.problems.append(str(error)))
    try:
        yield watched
    finally:
        context.close()


def distinct_colours(browser: Any, png: bytes) -> int:
    """How many colours a screenshot has (sampled), counted by the browser itself on a blank page."""
    context = browser.new_context()
    page = context.new_page()
    source = "data:image/png;base64," + base64.b64encode(png).decode()
    count = page.evaluate(
        """async (source) => {
            const image = new Image();
            image.src = source;
            await image.decode();
            const canvas = document.createElement("canvas");
            canvas.width = image.width;
            canvas.height = image.height;
            const context = canvas.getContext("2d");
            context.drawImage(image, 0, 0);
            const pixels = context.getImageData(0, 0, canvas.width, canvas.height).data;
            const seen = new Set();
            for (let i = 0; i < pixels.length; i += 4 * 5) {
                seen.add((pixels[i] << 16) | (pixels[i + 1] << 8) | pixels[i + 2]);
            }
            return seen.size;
        }""",
        source,
    )
    context.close()
    return int(count)


def screenshot(browser: Any, watched: Watched, path: Path) -> None:
    """Save a full-page screenshot to `path`; it must be a picture, not a blank."""
    png = watched.page.screenshot(path=str(path), full_page=True)
    assert distinct_colours(browser, png) > 40, path


@pytest.fixture(
    params=[pytest.param("sqlite"), pytest.param("postgresql", marks=pytest.mark.postgresql)],
)
def served(request: pytest.FixtureRequest) -> Iterator[tuple[str, Recorded]]:
    """The recorded history on each backend, served; yields (base URL, history)."""
    url = str(request.getfixturevalue(f"{request.param}_url"))
    history = record(url)
    app = create_app(url, clock=lambda: history.now)
    with serving(app) as base:
        yield base, history
    app.close()


class TestInABrowser:
    def test_click_through_and_back(self, browser: Any, served: tuple[str, Recorded], tmp_path: Path) -> None:
        """Errors -> a group -> an event -> its older neighbour, then back to the errors, all safe."""
        base, history = served
        with watched_page(browser, base) as w:
            page = w.page
            w.go("/?window=7d")
            assert page.locator("h1").inner_text() == "Errors"
            screenshot(browser, w, tmp_path / "errors.png")
            assert page.locator("table.groups a.exc").all_inner_texts() == [
                "RuntimeError",
                "KeyError",
                "ValueError",
            ]
            title = page.locator("svg.chart rect.bar title").first.text_content() or ""
            assert re.search(r"\(UTC\): \d+ errors?$", title)

            page.locator("table.groups a.exc").first.click()
            page.wait_for_url(re.compile(r"/group/1/RuntimeError\?window=7d$"))
            assert page.locator("h1").inner_text() == "RuntimeError"
            assert "The above exception was the direct cause" in page.locator(".trace").inner_text()
            screenshot(browser, w, tmp_path / "group.png")

            newest = history.of("RuntimeError")[0]
            page.locator("table.events a").first.click()
            page.wait_for_url(re.compile(rf"/event/{newest.id}$"))
            values = page.locator(".kvtable .value").all_inner_texts()
            assert SCRIPT_PAYLOAD in values  # shown as the text it was
            screenshot(browser, w, tmp_path / "event.png")
            page.locator("a.older").click()
            page.wait_for_url(re.compile(rf"/event/{history.of('RuntimeError')[1].id}$"))

            for expected in (rf"/event/{newest.id}$", r"/group/1/RuntimeError\?window=7d$", r"/\?window=7d$"):
                page.go_back()
                page.wait_for_url(re.compile(expected))
            assert page.locator("table.groups a.exc").count() == 3
            w.check()

    def test_filters(self, browser: Any, served: tuple[str, Recorded]) -> None:
        """Choosing an app or a window reloads with it in the URL; data terms add and come off."""
        base, _ = served
        with watched_page(browser, base) as w:
            page = w.page
            w.go("/?window=7d")
            page.select_option("select[name=app]", "billing")
            page.wait_for_url(re.compile(r"app=billing"))
            assert page.locator("table.groups a.exc").all_inner_texts() == ["KeyError", "ValueError"]
            page.select_option("select[name=window]", "1h")
            page.wait_for_url(re.compile(r"window=1h"))
            assert "app=billing" in page.url
            assert page.locator("table.groups a.exc").all_inner_texts() == ["KeyError"]

            w.go("/events")
            page.fill("input.term", "customer=c1")
            page.press("input.term", "Enter")
            page.wait_for_url(re.compile(r"where=customer%3Dc1"))
            assert "exc_type=" not in page.url  # empty fields stay out of the link
            page.fill("input.term", "event=fault")
            page.press("input.term", "Enter")
            page.wait_for_url(re.compile(r"where=event%3Dfault"))
            assert page.locator("a.chip").count() == 2
            assert set(page.locator("table.events td .exc").all_inner_texts()) == {"KeyError"}
            page.locator("a.chip").first.click()
            page.wait_for_url(re.compile(r"^(?!.*customer%3Dc1).*where=event%3Dfault"))
            w.check()

    def test_every_page_at_desktop_and_phone_width(
        self, browser: Any, served: tuple[str, Recorded], tmp_path: Path
    ) -> None:
        """Each page renders something real, and at 390 px nothing runs off the side."""
        base, history = served
        fault = history.of("RuntimeError")[0]
        pages = [
            "/?window=30d",
            "/group/1/RuntimeError",
            f"/event/{fault.id}",
            "/events",
            "/processes",
            "/daily",
        ]
        for width in (1280, 390):
            with watched_page(browser, base, width=width, height=844) as w:
                for number, path in enumerate(pages):
                    w.go(path)
                    screenshot(browser, w, tmp_path / f"page{number}-{width}.png")
                    overflow = w.page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
                    assert overflow <= 1, (path, width, overflow)


def test_mounted_under_a_prefix_in_flask(browser: Any, recorded: Recorded) -> None:
    """Inside a Flask app at /tools/code-wake, the pages, their links and their files stay under it."""
    flask = pytest.importorskip("flask", reason="Flask is in the dev extra")
    from werkzeug.middleware.dispatcher import DispatcherMiddleware

    site = flask.Flask("host_site")
    view = create_app(recorded.url, clock=lambda: recorded.now)
    site.wsgi_app = DispatcherMiddleware(site.wsgi_app, {"/tools/code-wake": view})  # type: ignore[method-assign]
    with serving(site) as base, watched_page(browser, base) as w:
        page = w.page
        w.go("/tools/code-wake/?window=7d")
        assert page.locator("link[rel=stylesheet]").evaluate("link => link.sheet !== null")
        page.locator("table.groups a.exc").first.click()
        page.wait_for_url(re.compile(r"/tools/code-wake/group/"))
        page.locator("table.events a").first.click()
        page.wait_for_url(re.compile(r"/tools/code-wake/event/\d+$"))
        hrefs = page.eval_on_selector_all("a[href]", "links => links.map(a => a.getAttribute('href'))")
        assert hrefs and all(h.startswith("/tools/code-wake/") for h in hrefs), hrefs
        page.locator("header nav a", has_text="Daily").click()
        page.wait_for_url(re.compile(r"/tools/code-wake/daily$"))
        assert all(url.startswith(base + "/tools/code-wake/") for url in w.requests)
        w.check()
    view.close()
