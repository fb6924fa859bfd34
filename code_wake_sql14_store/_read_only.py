"""Opening a database only to read it: no file created, no journal changed, no table made.

Readers (the CLI, the web view) open a store with ``read_only=True``. On
SQLite each connection opens the file in SQLite's read-only mode (a
``file:...?mode=ro`` URI), so that nothing is written, the journal mode is
left as it is, and a file in a directory the reader cannot write is readable.

One case needs more: a WAL database whose ``-wal`` and ``-shm`` files are
gone (its last writer closed it cleanly). SQLite's read-only mode would
create them and, unable to checkpoint, leave them behind; where the reader
cannot write the directory it cannot open the file at all. Then the WAL is
empty and the main file is the whole database, so it is opened ``immutable``:
SQLite touches no other file and takes no lock. Each connection decides
afresh (the pool keeps none), so a writer that starts later is seen by the
next query.

On every backend a reader checks the schema instead of creating or
upgrading it (`check_schema`): a database without code_wake's tables, or
with an older layout, is reported, naming ``code-wake upgrade``.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable
from urllib.parse import quote

import sqlalchemy as sa

from code_wake.errors import StoreError

from .schema import SCHEMA_VERSION, metadata, schema_version

__all__ = ["check_schema", "sqlite_file", "sqlite_read_only_creator"]

_WAL_FORMAT = 2
"""Bytes 18 and 19 of a SQLite header in WAL mode (1: a rollback journal)."""


def sqlite_file(database: str) -> str:
    """The file path of a SQLite URL's database, a ``file:`` URI's parameters dropped."""
    if not database.startswith("file:"):
        return database
    path = database.removeprefix("file:").partition("?")[0].partition("#")[0]
    # file:///abs/path and file://localhost/abs/path name the same file as /abs/path.
    if path.startswith("//"):
        path = "/" + path[2:].partition("/")[2]
    return path


def _in_wal_mode(path: str) -> bool:
    try:
        with open(path, "rb") as file:
            header = file.read(20)
    except OSError:
        return False
    return len(header) == 20 and header[18] == _WAL_FORMAT and header[19] == _WAL_FORMAT


def _uri(path: str) -> str:
    """The ``file:`` URI that opens `path` read-only, without creating any file."""
    mode = "mode=ro"
    if _in_wal_mode(path) and not (os.path.exists(path + "-wal") and os.path.exists(path + "-shm")):
        mode = "mode=ro&immutable=1"
    return f"file:{quote(os.path.abspath(path))}?{mode}"


def sqlite_read_only_creator(path: str) -> Callable[[], sqlite3.Connection]:
    """A connection factory for SQLAlchemy's ``creator``: `path` opened read-only (see the module)."""

    def connect() -> sqlite3.Connection:
        # check_same_thread=False as SQLAlchemy's pool may hand the connection to another thread.
        return sqlite3.connect(_uri(path), uri=True, check_same_thread=False)

    return connect


def check_schema(conn: sa.Connection, where: str) -> None:
    """Refuse a database a reader cannot read as it is: no code_wake tables, or another layout."""
    inspector = sa.inspect(conn)
    if not inspector.has_table(schema_version.name):
        if not set(inspector.get_table_names()) & set(metadata.tables):
            raise StoreError(f"{where} is not a code_wake database (it has none of code_wake's tables)")
        raise StoreError(
            f"{where} has the layout of pycodewake 0.2; run `code-wake upgrade` to bring it to "
            f"code_wake's schema {SCHEMA_VERSION} (`code-wake upgrade --dry-run` shows what it would do)"
        )
    version = conn.execute(sa.select(sa.func.max(schema_version.c.version))).scalar()
    if version is None or int(version) < SCHEMA_VERSION:
        raise StoreError(
            f"{where} has code_wake schema version {version}, older than this code_wake's "
            f"({SCHEMA_VERSION}); run `code-wake upgrade` to upgrade it"
        )
    if int(version) > SCHEMA_VERSION:
        raise StoreError(
            f"The database at {where} has code_wake schema version {version}, newer than this "
            f"code_wake understands ({SCHEMA_VERSION}); upgrade code_wake to use it."
        )
