"""Turning a URL into an engine fit for code_wake: its driver, timeouts, pool and SQLite settings."""

from __future__ import annotations

import importlib.util
import os
import re
import sqlite3
import time
from typing import Any

import sqlalchemy as sa
from sqlalchemy.pool import NullPool, StaticPool

from code_wake.config import mask_secret_url
from code_wake.errors import StoreError

from ._read_only import sqlite_file, sqlite_read_only_creator
from .schema import MYSQL_DIALECTS

__all__ = [
    "build_engine",
    "is_memory_sqlite",
    "masked",
    "parse_url",
    "spool_key",
]

SQLITE_BUSY_TIMEOUT_MS = 30_000
"""How long a SQLite writer waits for another process's write lock before failing."""

CONNECT_TIMEOUT_SECONDS = 10
"""Default connect timeout for server databases: a logging library must not hang on a dead host."""

POSTGRESQL_KEEPALIVE = {
    "keepalives": 1,
    "keepalives_idle": 10,
    "keepalives_interval": 5,
    "keepalives_count": 3,
    "tcp_user_timeout": 30_000,
}
"""libpq's TCP settings: a peer gone silent is noticed in about 25 s while idle (keepalive) and
30 s while data waits unacknowledged (tcp_user_timeout, ms), not after the system's two hours."""

MYSQL_IO_TIMEOUT_SECONDS = 60
"""PyMySQL's and mysqlclient's read and write timeouts: their reads otherwise wait forever,
the connection's handshake included (where `_stall.StallGuard` cannot reach yet)."""

_MYSQL_TIMEOUT_DRIVERS = ("", "pymysql", "mysqldb")
"""Drivers that take those timeouts ("": the default, mysqlclient); read from the URL's text,
since asking SQLAlchemy for the driver loads the dialect, which may not exist."""

_DEFAULT_DRIVERS = {
    "postgresql": ("psycopg2", "postgresql+psycopg"),
    "mysql": ("MySQLdb", "mysql+pymysql"),
    "mariadb": ("MySQLdb", "mariadb+pymysql"),
}
_DRIVER_EXTRAS = {
    "postgresql": "code-wake[postgresql]",
    "mysql": "code-wake[mysql]",
    "mariadb": "code-wake[mysql]",
}
# user:password@ where user follows the start, a space or a slash; the password runs to the last @.
_CREDENTIALS = re.compile(r"(?<![^\s/])([^\s:/@]*):\S*@")


def parse_url(dsn: str | sa.URL) -> sa.URL:
    """The URL of `dsn`, with MySQL defaulting to utf8mb4; `StoreError` if it is none."""
    try:
        url = sa.make_url(dsn)
    except (sa.exc.ArgumentError, ValueError, TypeError):
        url = None
    if url is None:
        # Raised outside the except block: SQLAlchemy's message quotes the whole
        # string, password included, and must not ride along as __context__.
        raise StoreError(f"Not a database URL: {_mask_text(str(dsn))!r}.")
    url = _with_installed_driver(url)
    if url.get_backend_name() in MYSQL_DIALECTS and "charset" not in url.query:
        # Without it PyMySQL talks utf8 (3 bytes), and emoji become errors.
        url = url.update_query_dict({"charset": "utf8mb4"})
    return url


def _with_installed_driver(url: sa.URL) -> sa.URL:
    """``postgresql://`` and ``mysql://`` with the driver code_wake's extras install.

    SQLAlchemy's defaults for driverless URLs are psycopg2 and MySQLdb; the
    extras install psycopg 3 and PyMySQL. The default is kept where installed.
    """
    default, ours = _DEFAULT_DRIVERS.get(url.drivername, (None, None))
    if default is None or ours is None or _installed(default) or not _installed(ours.split("+")[1]):
        return url
    return url.set(drivername=ours)


def _installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def _mask_text(text: str) -> str:
    return _CREDENTIALS.sub(r"\1:***@", text)


def masked(url: sa.URL) -> str:
    """The URL as shown in messages: never with its password, in the user info or in the query."""
    return mask_secret_url(url.render_as_string(hide_password=True))


def spool_key(url: sa.URL) -> str | None:
    """What names the database of `url` alike in every process (`Store.spool_key`); None for memory.

    The driver, the password and the query do not change which database it
    is; a SQLite path is made absolute, since processes differ in their
    working directory.
    """
    if is_memory_sqlite(url):
        return None
    backend = url.get_backend_name()
    if backend == "sqlite":
        path = (url.database or "").removeprefix("file:").split("?", 1)[0]
        return f"sqlite:{os.path.abspath(path)}"
    # URL.set ignores None: build the plain URL afresh, with no password to leave out.
    plain = sa.URL.create(backend, username=url.username, host=url.host, port=url.port, database=url.database)
    return plain.render_as_string(hide_password=False)


def is_memory_sqlite(url: sa.URL) -> bool:
    """True for SQLite databases that live in the connection (``sqlite://``, ``:memory:``)."""
    if url.get_backend_name() != "sqlite":
        return False
    database = url.database or ""
    return database in ("", ":memory:") or "mode=memory" in database or url.query.get("mode") == "memory"


def build_engine(url: sa.URL, engine_kwargs: dict[str, Any], read_only: bool = False) -> sa.Engine:
    """An engine with code_wake's defaults (the caller's `engine_kwargs` win); connects nothing.

    `read_only` opens a SQLite file in SQLite's read-only mode (`_read_only`).
    """
    options: dict[str, Any] = dict(engine_kwargs)
    connect_args: dict[str, Any] = dict(options.pop("connect_args", None) or {})
    backend = url.get_backend_name()
    if backend == "sqlite":
        if read_only and not is_memory_sqlite(url):
            options.setdefault("creator", sqlite_read_only_creator(sqlite_file(url.database or "")))
            # No pooled connection: each one decides afresh how to open the file (see `_read_only`).
            options.setdefault("poolclass", NullPool)
        elif is_memory_sqlite(url):
            # One shared connection: SQLAlchemy's default for memory databases is one
            # per thread (SingletonThreadPool), i.e. a different, empty database each.
            options.setdefault("poolclass", StaticPool)
            connect_args.setdefault("check_same_thread", False)
    else:
        options.setdefault("pool_pre_ping", True)
        _server_timeouts(url, connect_args)
    try:
        engine = sa.create_engine(url, connect_args=connect_args, **options)
    except ImportError as exc:
        extra = _DRIVER_EXTRAS.get(backend, "its database driver")
        raise StoreError(f"No driver for {masked(url)}: install {extra} ({exc}).") from exc
    except (sa.exc.SQLAlchemyError, TypeError) as exc:
        raise StoreError(f"Cannot use {masked(url)}: {exc}") from exc
    if backend == "sqlite":
        sa.event.listen(engine, "connect", _sqlite_on_read if read_only else _sqlite_on_connect)
    return engine


def _sqlite_on_read(dbapi_connection: Any, connection_record: Any) -> None:
    """A reader's settings: wait out a writer's lock, refuse any write; the journal mode is left alone."""
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA query_only = ON")
    finally:
        cursor.close()


def _server_timeouts(url: sa.URL, connect_args: dict[str, Any]) -> None:
    """Connect, read and keepalive settings for a server database, unless the URL or caller set them."""
    defaults: dict[str, Any] = {"connect_timeout": CONNECT_TIMEOUT_SECONDS}
    if url.get_backend_name() == "postgresql":
        defaults.update(POSTGRESQL_KEEPALIVE)
    elif (
        url.get_backend_name() in MYSQL_DIALECTS
        and url.drivername.partition("+")[2] in _MYSQL_TIMEOUT_DRIVERS
    ):
        defaults.update(read_timeout=MYSQL_IO_TIMEOUT_SECONDS, write_timeout=MYSQL_IO_TIMEOUT_SECONDS)
    for key, value in defaults.items():
        if key not in url.query:
            connect_args.setdefault(key, value)


def _sqlite_on_connect(dbapi_connection: Any, connection_record: Any) -> None:
    """Settings SQLite keeps per connection, so they are set on every new one."""
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys = ON")
        _use_wal(cursor)
        # Safe with WAL (a power cut may lose the last commits, never corrupt) and no fsync per commit.
        cursor.execute("PRAGMA synchronous = NORMAL")
    finally:
        cursor.close()


def _use_wal(cursor: Any) -> None:
    """Switch the database to WAL (lets readers and one writer work at once; it persists).

    Only the first connection to a new file switches. When several processes do
    that at once, SQLite answers "database is locked" at once instead of calling
    the busy handler (two lock upgrades would deadlock), so the switch is retried.
    """
    if cursor.execute("PRAGMA journal_mode").fetchone()[0].lower() in ("wal", "memory"):
        return
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_MS / 1000
    delay = 0.005
    while True:
        try:
            cursor.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() + delay > deadline:
                raise
        time.sleep(delay)
        delay = min(delay * 2, 0.25)
