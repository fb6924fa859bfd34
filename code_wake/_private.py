"""Files and directories code_wake creates are private to the user: 0700 directories, 0600 files.

Events carry what programs were doing, and a database or spool another user
can read leaks them. Only what code_wake creates is made private: a file or
directory that exists keeps the mode its owner gave it.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

__all__ = ["PRIVATE_DIR", "PRIVATE_FILE", "create_private_file", "make_private_dirs"]

PRIVATE_DIR = 0o700
"""The mode of a directory code_wake creates (the umask may only narrow it)."""

PRIVATE_FILE = 0o600
"""The mode of a file code_wake creates (the umask may only narrow it)."""


def make_private_dirs(path: Path) -> None:
    """Create `path` and any missing parents, each 0700; existing ones are left as they are."""
    missing: list[Path] = []
    for directory in (path, *path.parents):
        if directory.exists():
            break
        missing.append(directory)
    for directory in reversed(missing):
        # exist_ok: another process may create it between the test and here.
        directory.mkdir(mode=PRIVATE_DIR, exist_ok=True)


def create_private_file(path: str) -> None:
    """Create `path` empty with mode 0600 unless it exists.

    SQLite gives a database's ``-wal`` and ``-shm`` files the mode of the
    database file, so a database created this way keeps all three private.
    """
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE))
