"""What keeps the web view safe: who may ask, what may be asked, what the browser may run.

Requests are crafted WSGI calls (a REMOTE_ADDR of another machine is just a
string here), so nothing is sent beyond this process.
"""

from __future__ import annotations

import base64
import re
from pathlib import Path

import pytest
from werkzeug.test import Client

from code_wake import StoreError
from code_wake.testing import MemoryStore
from code_wake.web import create_app, require_dependencies
from code_wake.web._app import CONTENT_SECURITY_POLICY, WebApp, is_loopback

from .conftest import ONERROR_PAYLOAD, SCRIPT_PAYLOAD, Browserless, Recorded, record

PAGES = ["/", "/events", "/processes", "/daily", "/group/1/RuntimeError", "/event/1"]


def basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


class TestWhoMayAsk:
    """Without a token only this machine is served; with one, only requests that carry it."""

    @pytest.mark.parametrize("address", ["127.0.0.1", "127.8.9.10", "::1", "::ffff:127.0.0.1"])
    def test_loopback_clients_are_served(self, app: WebApp, address: str) -> None:
        assert Browserless(app, address).get("/").status_code == 200

    @pytest.mark.parametrize(
        "address", ["192.0.2.10", "10.1.2.3", "2001:db8::1", "::ffff:192.0.2.1", "", "bogus"]
    )
    @pytest.mark.parametrize("path", [*PAGES, "/static/code-wake.css", "/nothing"])
    def test_other_clients_are_refused(self, app: WebApp, address: str, path: str) -> None:
        """Every path, static files included, is a 401 asking for credentials; nothing is shown."""
        response = Browserless(app, address).get(path)
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"].startswith("Basic ")
        body = response.get_data(as_text=True)
        assert "RuntimeError" not in body and "--token" in body

    def test_forwarded_headers_are_not_believed(self, app: WebApp) -> None:
        """A proxy header claiming a local client does not make a remote one local."""
        response = Browserless(app, "192.0.2.10").get("/", headers={"X-Forwarded-For": "127.0.0.1"})
        assert response.status_code == 401

    def test_a_token_is_needed_from_everyone(self, recorded: Recorded) -> None:
        """With a token, local and remote clients alike must give it: Bearer, or basic auth's password."""
        app = create_app(recorded.url, token="s3cret-token", clock=lambda: recorded.now)
        for address in ("127.0.0.1", "192.0.2.10"):
            client = Browserless(app, address)
            assert client.get("/").status_code == 401
            assert client.get("/", headers={"Authorization": "Bearer s3cret-token"}).status_code == 200
            assert client.get("/", headers=basic("anyone", "s3cret-token")).status_code == 200
            assert client.get("/", headers={"Authorization": "Bearer wrong"}).status_code == 401
            assert client.get("/", headers=basic("s3cret-token", "")).status_code == 401
            assert client.get("/", headers={"Authorization": "Digest x"}).status_code == 401
        app.close()

    def test_is_loopback(self) -> None:
        assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("fe80::1%lo") is False
        assert not is_loopback(None) and not is_loopback("0.0.0.0")  # noqa: S104 - an address compared, nothing bound


class TestWhatMayBeAsked:
    """Only GET and HEAD; every answer carries headers that confine the browser."""

    @pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "OPTIONS"])
    def test_only_get_and_head(self, web: Browserless, method: str) -> None:
        response = web.open("/", method)
        assert response.status_code == 405
        assert response.headers["Allow"] == "GET, HEAD"

    def test_head(self, web: Browserless) -> None:
        response = web.client.head("/", environ_base={"REMOTE_ADDR": "127.0.0.1"})
        assert response.status_code == 200 and response.data == b""

    @pytest.mark.parametrize("path", [*PAGES, "/static/code-wake.js", "/nothing", "/event/987654"])
    def test_headers(self, web: Browserless, path: str) -> None:
        """CSP without inline script, no framing, no sniffing, on pages, files and errors alike."""
        headers = web.get(path).headers
        assert headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
        assert (
            "script-src 'self'" in CONTENT_SECURITY_POLICY and "unsafe-inline" not in CONTENT_SECURITY_POLICY
        )
        assert "frame-ancestors 'none'" in CONTENT_SECURITY_POLICY
        assert "default-src 'self'" in CONTENT_SECURITY_POLICY
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["X-Frame-Options"] == "DENY"

    def test_static_files(self, web: Browserless) -> None:
        """The app's own CSS, script and icon, with their types; nothing else."""
        assert web.get("/static/code-wake.css").content_type == "text/css; charset=utf-8"
        assert web.get("/static/code-wake.js").content_type == "text/javascript; charset=utf-8"
        assert web.get("/static/favicon.svg").content_type == "image/svg+xml"
        assert web.get("/static/../__init__.py").status_code == 404
        assert web.get("/static/nothing.css").status_code == 404
        assert web.get("/events/").status_code in (308, 404)

    def test_pages_have_no_inline_script_or_style(self, web: Browserless) -> None:
        """Every script is a file of the app's; no element carries an event handler or a style."""
        for path in PAGES:
            html = web.page(path)
            assert re.findall(r"<script[^>]*>", html) == [
                f'<script src="/static/code-wake.js?v={_version()}" defer>'
            ]
            assert not re.search(r"<[^>]+\son\w+=", html), path
            assert not re.search(r"<[^>]+\sstyle=", html), path


def _version() -> str:
    import code_wake

    return code_wake.__version__


class TestRecordedTextIsText:
    """Markup someone logged (a User-Agent, a message) is shown, escaped, never run."""

    def test_payloads_are_escaped_everywhere(self, web: Browserless, recorded: Recorded) -> None:
        order = recorded.of(None, None)[0]
        fault = recorded.of("RuntimeError")[0]
        for path in (
            "/events",
            f"/event/{order.id}",
            f"/event/{fault.id}",
            "/group/1/RuntimeError?window=all",
        ):
            html = web.page(path)
            assert SCRIPT_PAYLOAD not in html and ONERROR_PAYLOAD not in html, path
            assert "window.__cw_xss" in html, path  # shown, as text
            assert "<script>window" not in html and "<img src" not in html

    def test_no_password_on_any_page(self, postgresql_url: str) -> None:
        """A store URL's password appears on no page (PostgreSQL here trusts local clients)."""
        with_password = postgresql_url.replace("postgres@", "postgres:pw-S3cret@", 1)
        assert "pw-S3cret" in with_password
        recorded = record(with_password)
        app = create_app(with_password, clock=lambda: recorded.now)
        web = Browserless(app)
        for path in [*PAGES, "/nothing", "/?window=2y"]:
            body = web.get(path).get_data(as_text=True)
            assert "pw-S3cret" not in body and "***" in body, path
        app.close()


class TestCreateApp:
    """The ways to build the app, and what it refuses."""

    def test_a_store_object(self, recorded: Recorded) -> None:
        """A store passed in is used as given and left open."""
        store = MemoryStore()
        app = create_app(store)
        assert Browserless(app).get("/").status_code == 200
        app.close()
        assert store.closed is False

    def test_a_missing_sqlite_file(self, tmp_path: Path) -> None:
        """A database that does not exist is an error, and is not created."""
        missing = tmp_path / "none.sqlite"
        with pytest.raises(StoreError, match="no database file"):
            create_app(f"sqlite:///{missing}")
        assert not missing.exists()

    def test_an_adapter(self, recorded: Recorded) -> None:
        app = create_app(recorded.url, adapter="code_wake_sql14_store,Sql14Store")
        assert Browserless(app).get("/events").status_code == 200
        app.close()

    def test_store_errors_are_a_page(self, recorded: Recorded) -> None:
        """A store that fails is a 503 page naming the failure, not a traceback."""
        from code_wake_sql14_store import Sql14Store

        store = Sql14Store(recorded.url)
        app = WebApp(store)
        store.close()
        response = Browserless(app).get("/events")
        assert response.status_code == 503
        assert "is closed" in response.get_data(as_text=True)

    def test_the_configured_store(self, recorded: Recorded, monkeypatch: pytest.MonkeyPatch) -> None:
        """No store given: the one the configuration names, as code-wake finds it."""
        monkeypatch.setenv("CODE_WAKE_STORE_ADAPTER", "code_wake_sql14_store,Sql14Store")
        monkeypatch.setenv("CODE_WAKE_STORE_CONFIG", recorded.url)
        app = create_app(clock=lambda: recorded.now)
        assert "RuntimeError" in Browserless(app).page("/")
        app.close()

    def test_missing_dependencies_name_the_extra(self) -> None:
        with pytest.raises(ImportError, match=r"pip install 'code-wake\[web\]'"):
            require_dependencies("code_wake_no_such_module")

    def test_wsgi_from_another_client(self, app: WebApp) -> None:
        """Werkzeug's own client sends no REMOTE_ADDR: refused, since nothing says it is local."""
        assert Client(app).get("/", environ_base={"REMOTE_ADDR": ""}).status_code == 401
