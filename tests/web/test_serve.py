"""``code-wake serve``: the store found as every command finds it; no open address without a token."""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from code_wake.cli import main
from code_wake.web.serve import ServeError, check_host

from .conftest import Recorded

CONSOLE_SCRIPT = str(Path(sys.executable).with_name("code-wake"))


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    try:
        status = main(list(argv))
    except SystemExit as exc:
        status = int(exc.code or 0)
    out, err = capsys.readouterr()
    return status, out, err


class TestRefusals:
    """What the command refuses, each as one line and exit status 1 (2 for a bad command line)."""

    def test_an_open_address_without_a_token(
        self, capsys: pytest.CaptureFixture[str], recorded: Recorded
    ) -> None:
        status, _, err = run(capsys, "serve", "--store", recorded.url, "--host", "0.0.0.0")
        assert status == 1
        assert err.startswith("code-wake: error: refusing to serve on 0.0.0.0")
        assert "--token" in err and "CODE_WAKE_WEB_TOKEN" in err

    def test_a_missing_database(self, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
        status, _, err = run(capsys, "serve", "--store", f"sqlite:///{tmp_path / 'none.sqlite'}")
        assert (status, err.count("\n")) == (1, 1)
        assert "no database file" in err
        assert not (tmp_path / "none.sqlite").exists()

    @pytest.mark.parametrize("argv", [["--port", "70000"], ["--port", "x"], ["--threads", "0"]])
    def test_bad_options(
        self, capsys: pytest.CaptureFixture[str], recorded: Recorded, argv: list[str]
    ) -> None:
        status, _, err = run(capsys, "serve", "--store", recorded.url, *argv)
        assert status == 2 and "code-wake: error: serve: argument" in err

    def test_an_unknown_host(self, capsys: pytest.CaptureFixture[str], recorded: Recorded) -> None:
        status, _, err = run(capsys, "serve", "--store", recorded.url, "--host", "no such host.invalid")
        assert status == 1 and "cannot listen on" in err

    def test_a_port_in_use(self, capsys: pytest.CaptureFixture[str], recorded: Recorded) -> None:
        import socket

        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen(1)
            port = str(taken.getsockname()[1])
            status, _, err = run(capsys, "serve", "--store", recorded.url, "--port", port)
        assert status == 1 and f"cannot listen on 127.0.0.1 port {port}" in err

    def test_check_host(self) -> None:
        """Loopback names need no token; any other address does, and a token lets it through."""
        check_host("127.0.0.1", None)
        check_host("localhost", None)
        check_host("::1", None)
        with pytest.raises(ServeError):
            check_host("0.0.0.0", None)
        with pytest.raises(ServeError):
            check_host("::", "")
        check_host("0.0.0.0", "a-token")  # nothing is bound: only the check


class TestServing:
    """The installed command serves the store until stopped."""

    @pytest.mark.parametrize("token", [None, "t0ken"])
    def test_serves_until_stopped(self, recorded: Recorded, token: str | None) -> None:
        """It prints where to look, answers there (the token from the environment), and stops on SIGINT."""
        env = {**os.environ}
        if token:
            env["CODE_WAKE_WEB_TOKEN"] = token
        server = subprocess.Popen(
            [CONSOLE_SCRIPT, "serve", "--store", recorded.url, "--port", "0"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        try:
            assert server.stdout is not None
            assert server.stdout.readline().startswith("code_wake web view of sqlite:///")
            line = server.stdout.readline()
            url = line.split()[1]
            assert url.startswith("http://127.0.0.1:") and url.endswith("/")
            request = urllib.request.Request(url + "?window=all")  # noqa: S310 - http, our own server
            if token:
                request.add_header("Authorization", f"Bearer {token}")
            with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - our own loopback server
                page = response.read().decode()
            assert "RuntimeError" in page and "checkout of cake failed" in page
        finally:
            server.send_signal(2)  # SIGINT, as Ctrl-C
            out, err = server.communicate(timeout=30)
        assert server.returncode == 0, err
        assert "Stopped." in out
