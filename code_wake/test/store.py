"""pycodewake 0.2's store suite entry point: ``from code_wake.test.store import *`` in a test module.

It brings `TestStore`, code_wake's store contract (`code_wake.testing.StoreContract`)
on the adapter the suite's conftest names through ``store_cls``, ``store_params``
and ``store_cleanup`` (see `code_wake.test`). A code_wake store runs the whole
contract. An adapter written for pycodewake (a plain class with the original's
methods) runs the tests of what pycodewake's own suite checked
(`code_wake.testing.contract.PYCODEWAKE_CONTRACT`), through code_wake's
wrapper for such adapters; the rest of the contract, code_wake's additions,
is skipped with the reason. Two more tests check what the original's suite
did through `code_wake.Process` itself.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from code_wake._legacy_store import LegacyStore, is_legacy_adapter
from code_wake.process import Process
from code_wake.store import Store
from code_wake.testing.contract import PYCODEWAKE_CONTRACT, StoreContract

__all__ = ["TestStore", "test_process_logs_through_the_adapter", "test_process_registers_through_the_adapter"]


class TestStore(StoreContract):
    """The store contract on the adapter named by the ``store_cls`` and ``store_params`` fixtures."""

    @pytest.fixture
    def store(
        self,
        request: pytest.FixtureRequest,
        store_cls: Any,
        store_params: Any,
        store_cleanup: Callable[[Any], None],
    ) -> Iterator[Store]:
        """The adapter's store, through code_wake's wrapper when it is a pycodewake adapter."""
        original = request.function.__name__ in PYCODEWAKE_CONTRACT
        if is_legacy_adapter(store_cls) and not original:
            pytest.skip(
                "a code_wake addition to the store contract; pycodewake 0.2 adapters need not have it"
            )
        args, kwargs = store_params() if callable(store_params) else store_params
        made = store_cls(*args, **kwargs)
        store = LegacyStore(made) if is_legacy_adapter(made) else made
        yield store
        store_cleanup(made)
        store.close()


@pytest.mark.parametrize("env_name", [None, "foo"])
def test_process_registers_through_the_adapter(store: Any, env_name: str | None) -> None:
    """A Process given the adapter registers with it: app, version and environment as configured."""
    Process.reset()
    try:
        proc = Process(store=store, app_name="bar", app_vsn="1.2.3", env_name=env_name)
        loaded = store.get_process_by_id(proc.id)
        assert isinstance(loaded, store.Process)
        assert (loaded.app.name, loaded.app_vsn.vsn) == ("bar", "1.2.3")
        assert (loaded.environment and loaded.environment.name) == env_name
    finally:
        Process.reset()


def test_process_logs_through_the_adapter(store: Any, process: Process) -> None:
    """Process.log writes through the adapter; the event is found by its data."""
    process.log({"foo": "foo1"}, sync=True)
    (found,) = store.get_events_by_data((("foo", "foo1"),))
    assert isinstance(found, store.Event)
