"""Fixtures shared by the whole suite.

Every test runs with code_wake's global state reset and its environment
isolated: no CODE_WAKE_* variable of the developer's leaks in, the global
config file is looked for in a harmless place, and the embedded default
store lives under the test's temporary directory.

Database servers: `postgresql_url` and `mysql_url` give a scratch database
created for this test session on the server named by CODE_WAKE_TEST_POSTGRESQL
/ CODE_WAKE_TEST_MYSQL (default: the local servers on 127.0.0.1). Where no
server answers, the test skips with the reason, unless
CODE_WAKE_TEST_REQUIRE_SERVERS is set (as .ci/run does): then it fails.

Fault tests (marker `fault`) stop and start this machine's database servers
(tests/integration/servers.py). They run only with CODE_WAKE_TEST_FAULTS=1
(as .ci/run sets): on a developer's machine stopping the servers would be a
surprise, and needs the right to.
"""

from __future__ import annotations

import os
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeAlias

import pytest
import sqlalchemy as sa

import code_wake
from code_wake import _report
from code_wake_sql14_store import Sql14Store

DEFAULT_POSTGRESQL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
DEFAULT_MYSQL = "mysql+pymysql://root@127.0.0.1:3306/test?charset=utf8mb4"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if os.environ.get("CODE_WAKE_TEST_FAULTS"):
        return
    skip = pytest.mark.skip(
        reason="stops and starts this machine's database servers: set CODE_WAKE_TEST_FAULTS=1 to run it"
    )
    for item in items:
        if item.get_closest_marker("fault") is not None:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Reset the Process singleton and isolate configuration for every test."""
    for name in list(os.environ):
        if name.startswith("CODE_WAKE_") and not name.startswith("CODE_WAKE_TEST_"):
            monkeypatch.delenv(name)
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("CODE_WAKE_GLOBAL_CONFIG", str(home / "no-global-code_wake.conf"))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / "data"))
    # Problem reports are rate-limited per process; each test starts with none seen.
    monkeypatch.setattr(_report, "_counts", Counter())
    monkeypatch.setattr(_report, "_unreported", Counter())
    monkeypatch.setattr(_report, "_last_report", {})
    monkeypatch.setattr(_report, "_held_back", {})
    code_wake.Process.reset()
    yield
    code_wake.Process.reset()


StoreOpener: TypeAlias = Callable[[str], Sql14Store]
"""Opens a Sql14Store for a URL; the fixture closes every store it opened."""


@pytest.fixture
def open_store() -> Iterator[StoreOpener]:
    """Open Sql14Stores by URL within a test; all are closed at its end."""
    stores: list[Sql14Store] = []

    def opener(url: str) -> Sql14Store:
        store = Sql14Store(url)
        stores.append(store)
        return store

    yield opener
    for store in stores:
        store.close()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A SQLite file database in the test's temporary directory."""
    return f"sqlite:///{tmp_path / 'events.sqlite'}"


def _require_servers() -> bool:
    return bool(os.environ.get("CODE_WAKE_TEST_REQUIRE_SERVERS"))


def _scratch_database(env_var: str, default: str, name: str) -> Iterator[str]:
    """Create a database for this test session on the server, yield its URL, drop it."""
    admin_url = sa.make_url(os.environ.get(env_var) or default)
    try:
        # pool_pre_ping: the outage tests (marker `fault`) restart the servers mid-session.
        engine = sa.create_engine(
            admin_url, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 5}, pool_pre_ping=True
        )
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except sa.exc.SQLAlchemyError as exc:
        reason = f"no {name} server at {admin_url.render_as_string(hide_password=True)} ({env_var}): {exc}"
        if _require_servers():
            pytest.fail(reason)
        pytest.skip(reason)
    database = f"cw_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    with engine.connect() as conn:
        conn.execute(sa.text(f"CREATE DATABASE {database}"))
    try:
        yield admin_url.set(database=database).render_as_string(hide_password=False)
    finally:
        with engine.connect() as conn:
            suffix = " WITH (FORCE)" if admin_url.get_backend_name() == "postgresql" else ""
            conn.execute(sa.text(f"DROP DATABASE IF EXISTS {database}{suffix}"))
        engine.dispose()


def _emptied(url: str) -> str:
    """Drop every table in the scratch database, so each test starts empty."""
    engine = sa.create_engine(url)
    try:
        meta = sa.MetaData()
        meta.reflect(engine)
        meta.drop_all(engine)
    finally:
        engine.dispose()
    return url


@pytest.fixture(scope="session")
def _postgresql_database() -> Iterator[str]:
    yield from _scratch_database("CODE_WAKE_TEST_POSTGRESQL", DEFAULT_POSTGRESQL, "PostgreSQL")


@pytest.fixture(scope="session")
def _mysql_database() -> Iterator[str]:
    yield from _scratch_database("CODE_WAKE_TEST_MYSQL", DEFAULT_MYSQL, "MySQL/MariaDB")


@pytest.fixture
def postgresql_url(_postgresql_database: str) -> str:
    """An empty scratch database on the PostgreSQL server (skips where there is none)."""
    return _emptied(_postgresql_database)


@pytest.fixture
def mysql_url(_mysql_database: str) -> str:
    """An empty scratch database on the MySQL/MariaDB server (skips where there is none)."""
    return _emptied(_mysql_database)


@pytest.fixture(
    params=[
        pytest.param("sqlite"),
        pytest.param("postgresql", marks=pytest.mark.postgresql),
        pytest.param("mysql", marks=pytest.mark.mysql),
    ]
)
def db_url(request: pytest.FixtureRequest) -> str:
    """An empty database on each backend: a SQLite file, and the servers where they answer."""
    return str(request.getfixturevalue(f"{request.param}_url"))
