"""Configuration files someone else could have written do not count (issue 13)."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from code_wake.config import Config

LOCAL = "app:\n  name: from-local\nevents:\n  secret_keys: []\n"
GLOBAL = "app:\n  name: from-global\n"


@pytest.fixture
def app_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The working directory, where ./etc/code_wake.conf is looked for; no global file."""
    monkeypatch.setenv("CODE_WAKE_GLOBAL_CONFIG", str(tmp_path / "none.conf"))
    path = tmp_path / "app"
    (path / "etc").mkdir(parents=True)
    monkeypatch.chdir(path)
    return path


def local_file(app_dir: Path, mode: int = 0o644) -> Path:
    path = app_dir / "etc" / "code_wake.conf"
    path.write_text(LOCAL, encoding="utf-8")
    path.chmod(mode)
    return path


class TestLocalFile:
    """./etc/code_wake.conf counts only when it is the user's own and only theirs to write."""

    def test_own_file_counts(self, app_dir: Path) -> None:
        """The usual case: the user's file, 0644."""
        local_file(app_dir)
        assert Config.load().app_name == "from-local"

    def test_writable_by_others_is_ignored(self, app_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
        """A file others can write is ignored, with a warning saying why."""
        path = local_file(app_dir, 0o666)
        with caplog.at_level(logging.WARNING, logger="code_wake"):
            config = Config.load()
        assert config.app_name is None
        assert config.secret_keys != ()
        assert f"ignoring the config file {path}: others can write it (mode 0666)" in caplog.text

    @pytest.mark.skipif(
        not hasattr(os, "geteuid") or os.geteuid() != 0, reason="needs root to give a file away"
    )
    def test_owned_by_another_user_is_ignored(self, app_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
        """A file planted by another user is ignored, with a warning naming the owner."""
        path = local_file(app_dir)
        os.chown(path, 65534, 65534)
        with caplog.at_level(logging.WARNING, logger="code_wake"):
            assert Config.load().app_name is None
        assert "owned by uid 65534, not by the current user" in caplog.text

    def test_named_file_is_trusted(self, app_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        """CODE_WAKE_CONFIG names a file on purpose: it counts whatever its mode."""
        path = local_file(app_dir, 0o666)
        monkeypatch.setenv("CODE_WAKE_CONFIG", str(path))
        assert Config.load().app_name == "from-local"


class TestGlobalFile:
    """The global file counts unless anyone can write it."""

    def test_world_writable_global_is_ignored(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
    ) -> None:
        """A world-writable /etc/code_wake.conf is ignored, with a warning."""
        path = tmp_path / "global.conf"
        path.write_text(GLOBAL, encoding="utf-8")
        monkeypatch.setenv("CODE_WAKE_GLOBAL_CONFIG", str(path))
        monkeypatch.chdir(tmp_path)
        assert Config.load().app_name == "from-global"
        path.chmod(0o646)
        with caplog.at_level(logging.WARNING, logger="code_wake"):
            assert Config.load().app_name is None
        assert "anyone can write it (mode 0646)" in caplog.text
