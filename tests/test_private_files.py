"""What code_wake creates is private: directories 0700, the database and its -wal/-shm 0600 (issue 13)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

import code_wake
from code_wake import Config
from code_wake_sql14_store import Sql14Store


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(autouse=True)
def _wide_umask() -> object:
    """The usual umask (022), which would make files 0644 and directories 0755."""
    old = os.umask(0o022)
    yield
    os.umask(old)
    code_wake.Process.reset()


class TestPrivateFiles:
    """Files and directories code_wake creates are the user's alone."""

    def test_sqlite_database_and_wal_files(self, tmp_path: Path) -> None:
        """A new database and, while it is open, its -wal and -shm are 0600."""
        db = tmp_path / "events.sqlite"
        store = Sql14Store(f"sqlite:///{db}")
        code_wake.Process(app_name="private", store=store).log({"a": 1}, sync=True)
        assert mode(db) == 0o600
        for suffix in ("-wal", "-shm"):
            assert mode(Path(f"{db}{suffix}")) == 0o600
        store.close()

    def test_existing_database_keeps_its_mode(self, tmp_path: Path) -> None:
        """A file the user made keeps the mode they gave it."""
        db = tmp_path / "events.sqlite"
        db.touch(mode=0o640)
        store = Sql14Store(f"sqlite:///{db}")
        store.insert_app("kept")
        store.close()
        assert mode(db) == 0o640

    def test_default_store_directories(self, tmp_path: Path) -> None:
        """The embedded default store's directories are created 0700, its file 0600."""
        data = tmp_path / "data"
        config = Config(data_dir=data)
        store = config.build_store(queued=False)
        store.insert_app("default")
        store.close()
        assert mode(data) == 0o700
        assert mode(data / "code_wake") == 0o700
        assert mode(data / "code_wake" / "events.sqlite") == 0o600
