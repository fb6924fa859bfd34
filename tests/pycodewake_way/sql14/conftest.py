"""Sql14Store through pycodewake's fixtures: a SQLite memory database, a file, and a queued file."""

import pytest

from code_wake.test.conftest import *  # noqa: F403 - the pycodewake way: its fixtures, by star import
from code_wake_sql14_store import Sql14QueueStore, Sql14Store

KINDS = {"memory": Sql14Store, "file": Sql14Store, "queued file": Sql14QueueStore}


@pytest.fixture(params=list(KINDS))
def store_kind(request):
    return request.param


@pytest.fixture
def store_cls(store_kind):
    return KINDS[store_kind]


@pytest.fixture
def store_params(store_kind, tmp_path):
    url = "sqlite:///:memory:" if store_kind == "memory" else f"sqlite:///{tmp_path / 'events.sqlite'}"
    return ([url], {})
