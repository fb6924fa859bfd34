"""The setups of docs/frameworks.md, run with the real frameworks: Django, Flask, gunicorn."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from .helpers import REPO, rows, run_command

EXAMPLES = REPO / "examples" / "frameworks"


def messages(url: str) -> dict[str, str | None]:
    """Each stored event's message, with its exception type."""
    found = rows(
        url,
        "SELECT d.val, e.exc_type FROM events e JOIN events_data d ON d.event_id = e.id "
        "WHERE d.key = 'message'",
    )
    return {str(m): None if t is None else str(t) for m, t in found}


def run_example(name: str, url: str, cwd: Path) -> str:
    return run_command([sys.executable, str(EXAMPLES / name), url], cwd=cwd)


def test_django_logging_setting(tmp_path: Path, sqlite_url: str) -> None:
    """Django's LOGGING setting records the app's warning and the 500 with its exception, once each."""
    pytest.importorskip("django")
    assert run_example("django_site.py", sqlite_url, tmp_path).split() == ["404", "500"]
    assert messages(sqlite_url) == {
        "unknown item 'scone'": None,
        "Not Found: /order": None,
        "Internal Server Error: /crash": "RuntimeError",
    }


def test_flask(tmp_path: Path, sqlite_url: str) -> None:
    """A dictConfig before the Flask app records app.logger's warning and the unhandled exception."""
    pytest.importorskip("flask")
    assert run_example("flask_app.py", sqlite_url, tmp_path).split() == ["404", "500"]
    assert messages(sqlite_url) == {"unknown item 'scone'": None, "Exception on /crash [GET]": "RuntimeError"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def get(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=30) as response:  # noqa: S310 - 127.0.0.1 only
            return int(response.status)
    except urllib.error.HTTPError as err:
        return err.code
    except (urllib.error.URLError, ConnectionError):
        return 0


@pytest.mark.parametrize("preload", [False, True], ids=["fork", "preload"])
def test_gunicorn_error_log(tmp_path: Path, sqlite_url: str, preload: bool) -> None:
    """gunicorn.error's "Error handling request" and the app's warning are recorded, by each worker."""
    pytest.importorskip("gunicorn")
    port = free_port()
    args = [sys.executable, "-m", "gunicorn", "-c", str(EXAMPLES / "gunicorn.conf.py")]
    args += ["--bind", f"127.0.0.1:{port}", *(["--preload"] if preload else [])]
    server = subprocess.Popen(
        [*args, "examples.frameworks.gunicorn_app:app"],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO), "SHOP_EVENTS_URL": sqlite_url},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        # Waiting for the server to listen: a request that does not connect is retried.
        while (status := get(f"{base}/order")) == 0:
            assert server.poll() is None, server.communicate()[1]
        assert status == 404
        assert get(f"{base}/crash") == 500
    finally:
        server.send_signal(signal.SIGTERM)
        _, stderr = server.communicate(timeout=60)
    assert "Error handling request" in stderr
    # gunicorn 23+ says "Error handling request GET /crash", older ones "Error handling request /crash".
    stored = {m.replace(" GET ", " "): t for m, t in messages(sqlite_url).items()}
    assert stored == {"unknown item": None, "Error handling request /crash": "RuntimeError"}
