"""Reading never writes: the CLI and read-only stores change no byte and leave no file (issue 13).

Every test takes checksums of the directory it reads before and after, and
the list of its files: nothing changed, nothing added. The CLI runs as a user
runs it (``main(argv)``), and once as another user, in a subprocess.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import pwd
import shutil
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

import code_wake
from code_wake import StoreError
from code_wake.cli import main
from code_wake_sql14_store import Sql14Store

PYCODEWAKE_DB = Path(__file__).parent / "data" / "pycodewake-0.2.2.sqlite"
READER = "cwreader"
"""The unprivileged user the other-user test creates (as root) and runs the CLI as."""


def snapshot(directory: Path) -> dict[str, str]:
    """Each file of `directory` by name, with the sha256 of its bytes."""
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(directory.iterdir())}


def write_events(path: Path, count: int = 3) -> None:
    """Record `count` events into a code_wake SQLite file through the library, and close it."""
    store = Sql14Store(f"sqlite:///{path}")
    process = code_wake.Process(app_name="ro", store=store)
    for i in range(count):
        process.log({"i": i}, sync=True)
    code_wake.Process.reset()
    store.close()


@pytest.fixture(autouse=True)
def _no_process() -> object:
    yield
    code_wake.Process.reset()


class TestReaderOnForeignDatabases:
    """A reader pointed at a database that is not code_wake's reports it and changes nothing."""

    def test_other_application_database(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """Another app's database: a clear error; no table added, its journal mode kept."""
        db = tmp_path / "other-app.db"
        conn = sqlite3.connect(db)
        conn.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY)")
        conn.commit()
        conn.close()
        before = snapshot(tmp_path)
        assert main(["events", "--store", f"sqlite:///{db}"]) == 1
        assert "is not a code_wake database" in capsys.readouterr().err
        assert snapshot(tmp_path) == before
        with contextlib.closing(sqlite3.connect(db)) as check:
            assert check.execute("PRAGMA journal_mode").fetchone()[0] == "delete"

    def test_empty_file_stays_empty(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """A 0-byte file is not made a database."""
        db = tmp_path / "empty.db"
        db.touch()
        assert main(["processes", "--store", f"sqlite:///{db}"]) == 1
        assert "is not a code_wake database" in capsys.readouterr().err
        assert db.stat().st_size == 0
        assert sorted(p.name for p in tmp_path.iterdir()) == ["empty.db"]

    def test_uri_form_does_not_create(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """``sqlite:///file:...?uri=true`` naming no file is refused, not created."""
        missing = tmp_path / "missing.db"
        assert main(["events", "--store", f"sqlite:///file:{missing}?uri=true"]) == 1
        assert "no database file" in capsys.readouterr().err
        assert not list(tmp_path.iterdir())


class TestUpgradeOnPurpose:
    """An older layout is read by no reader until `code-wake upgrade` upgrades it."""

    def test_pycodewake_database(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """Listing refuses and changes nothing; --dry-run says the steps; upgrade makes it readable."""
        db = tmp_path / "old.sqlite"
        shutil.copy(PYCODEWAKE_DB, db)
        url = f"sqlite:///{db}"
        before = snapshot(tmp_path)
        assert main(["events", "--store", url]) == 1
        assert "run `code-wake upgrade`" in capsys.readouterr().err
        assert main(["upgrade", "--dry-run", "--store", url]) == 0
        assert "would upgrade" in capsys.readouterr().out
        assert snapshot(tmp_path) == before
        assert main(["prune", "--older-than", "1d", "--store", url]) == 1
        assert "run `code-wake upgrade`" in capsys.readouterr().err
        assert snapshot(tmp_path) == before
        assert main(["upgrade", "--store", url]) == 0
        assert "upgraded" in capsys.readouterr().out
        assert main(["upgrade", "--store", url]) == 0
        assert "up to date" in capsys.readouterr().out
        assert main(["events", "--store", url]) == 0

    def test_upgrade_needs_a_file(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """An upgrade does not start a new database."""
        assert main(["upgrade", "--store", f"sqlite:///{tmp_path / 'none.db'}"]) == 1
        assert "no database file" in capsys.readouterr().err
        assert not list(tmp_path.iterdir())


class TestReadOnlyStore:
    """`Sql14Store(read_only=True)` reads a code_wake database and leaves no trace."""

    def test_wal_database_leaves_no_files(self, tmp_path: Path) -> None:
        """A cleanly closed WAL database is read without -wal/-shm files appearing."""
        db = tmp_path / "events.sqlite"
        write_events(db)
        before = snapshot(tmp_path)
        reader = Sql14Store(f"sqlite:///{db}", read_only=True)
        reader.check_readable()
        assert len(list(reader.query_events())) == 3
        reader.close()
        assert snapshot(tmp_path) == before

    def test_sees_a_writer_that_started_later(self, tmp_path: Path) -> None:
        """Each query opens the file afresh: events written after the reader opened are read."""
        db = tmp_path / "events.sqlite"
        write_events(db, 1)
        reader = Sql14Store(f"sqlite:///{db}", read_only=True)
        assert len(list(reader.query_events())) == 1
        writer = Sql14Store(f"sqlite:///{db}")
        code_wake.Process(app_name="ro", store=writer).log({"late": 1}, sync=True)
        assert len(list(reader.query_events())) == 2
        writer.close()
        reader.close()

    def test_refuses_writes(self, tmp_path: Path) -> None:
        """A read-only store refuses to register anything."""
        db = tmp_path / "events.sqlite"
        write_events(db, 1)
        reader = Sql14Store(f"sqlite:///{db}", read_only=True)
        with pytest.raises(StoreError, match="read-only"):
            reader.insert_app("x")
        reader.close()

    def test_memory_database_is_not_code_wake(self) -> None:
        """A fresh memory database has nothing to read: reported, not created."""
        reader = Sql14Store("sqlite://", read_only=True)
        with pytest.raises(StoreError, match="not a code_wake database"):
            reader.check_readable()
        reader.close()


def _reader_python() -> list[str] | None:
    """An interpreter another user can run, with this environment's packages: the command prefix.

    The test's own interpreter may sit in a directory only root can enter
    (pyenv under /root); then the system's Python of the same version runs
    the packages of this environment and this checkout through PYTHONPATH.
    """
    if not (hasattr(os, "geteuid") and os.geteuid() == 0 and shutil.which("runuser")):
        return None
    here = Path(sys.executable).resolve()
    if all(p.stat().st_mode & stat.S_IXOTH for p in here.parents):
        return [sys.executable]
    system = Path(f"/usr/bin/python{sys.version_info.major}.{sys.version_info.minor}")
    return [str(system)] if system.exists() else None


def _reader_path() -> str:
    site = next(p for p in sys.path if p.endswith("site-packages") and p.startswith(sys.prefix))
    return os.pathsep.join([str(Path(code_wake.__file__).parent.parent), site])


@pytest.mark.skipif(
    _reader_python() is None,
    reason="needs root, runuser and a Python interpreter another user can run (same version)",
)
class TestAnotherUser:
    """As another user, in a directory that user cannot write, the CLI reads and changes nothing."""

    @pytest.fixture
    def reader(self) -> str:
        try:
            pwd.getpwnam(READER)
        except KeyError:
            subprocess.run(
                [
                    shutil.which("useradd") or "/usr/sbin/useradd",
                    "--no-create-home",
                    "--shell",
                    "/bin/false",
                    READER,
                ],
                check=True,
            )
        return READER

    def test_reads_root_owned_database(self, tmp_path: Path, reader: str) -> None:
        """Checksums and file list before and after are equal; the events are printed."""
        directory = tmp_path / "root-owned"
        directory.mkdir(mode=0o755)
        db = directory / "events.sqlite"
        write_events(db)
        os.chmod(db, 0o644)
        # The reader must be able to reach the directory through tmp_path's parents.
        for parent in (tmp_path, *tmp_path.parents):
            if parent == Path("/"):
                break
            parent.chmod(parent.stat().st_mode | stat.S_IXOTH)
        before = snapshot(directory)
        for command in (["events"], ["errors"], ["processes"], ["stats"], ["upgrade", "--dry-run"]):
            result = subprocess.run(
                [
                    shutil.which("runuser") or "/usr/sbin/runuser",
                    "-u",
                    reader,
                    "--",
                    *(_reader_python() or []),
                    "-m",
                    "code_wake",
                    *command,
                    "--store",
                    f"sqlite:///{db}",
                ],
                env={
                    "PATH": os.environ.get("PATH", ""),
                    "PYTHONPATH": _reader_path(),
                    "HOME": "/nonexistent",
                },
                cwd="/",
                capture_output=True,
                text=True,
                check=False,
            )
            assert result.returncode == 0, result.stderr
        assert snapshot(directory) == before


class TestEveryBackend:
    """On every backend a reader creates nothing and reports what it finds."""

    def test_empty_database_gets_no_tables(self, db_url: str) -> None:
        """An empty database: "not a code_wake database", and still no table afterwards (no DDL)."""
        if db_url.startswith("sqlite"):
            Path(db_url.removeprefix("sqlite:///")).touch()
        reader = Sql14Store(db_url, read_only=True)
        with pytest.raises(StoreError, match="not a code_wake database"):
            reader.check_readable()
        reader.close()
        engine = sa.create_engine(db_url)
        try:
            assert sa.inspect(engine).get_table_names() == []
        finally:
            engine.dispose()

    def test_reads_what_a_writer_wrote(self, db_url: str) -> None:
        """After a writer created the schema, the reader reads and refuses to write."""
        writer = Sql14Store(db_url)
        writer.insert_app("shop")
        writer.close()
        reader = Sql14Store(db_url, read_only=True)
        reader.check_readable()
        app = reader.get_app_by_name("shop")
        assert app is not None
        with pytest.raises(StoreError, match="read-only"):
            reader.insert_app("other")
        assert reader.upgrade(dry_run=True) == []
        reader.close()
