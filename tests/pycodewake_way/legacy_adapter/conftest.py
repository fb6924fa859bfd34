"""The adapter's test configuration, written as pycodewake 0.2 told adapter authors to."""

import pytest

from code_wake.test.conftest import *  # noqa: F403 - the pycodewake way: its fixtures, by star import

from .legacy_sql_store import LegacySqlStore


@pytest.fixture
def store_params(tmp_path):
    return ([f"sqlite:///{tmp_path / 'legacy.sqlite'}"], {})


@pytest.fixture
def store_cls():
    return LegacySqlStore


@pytest.fixture
def store_cleanup():
    return lambda store: None
