"""Fixtures for adapter test suites written the pycodewake way (``from code_wake.test.conftest import *``).

The adapter's own conftest provides ``store_cls`` (the adapter class),
``store_params`` (``(args, kwargs)`` for its constructor, or a function
returning them) and, if it needs one, ``store_cleanup`` (called with each
store after its test). These fixtures build on them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from code_wake.process import Process
from code_wake.testing.contract import raised_through_foo_bar_baz

__all__ = ["exc", "process", "store", "store_cleanup"]


@pytest.fixture
def store_cleanup() -> Callable[[Any], None]:
    """What to do with a store after its test: nothing, unless the adapter's conftest says otherwise."""
    return lambda store: None


@pytest.fixture
def store(store_cls: Any, store_params: Any, store_cleanup: Callable[[Any], None]) -> Iterator[Any]:
    """A new store of the adapter under test, as the adapter makes it; cleaned up and closed after."""
    args, kwargs = store_params() if callable(store_params) else store_params
    made = store_cls(*args, **kwargs)
    yield made
    store_cleanup(made)
    closer = getattr(made, "close", None)
    if callable(closer):
        closer()


@pytest.fixture
def process(store: Any) -> Iterator[Process]:
    """A fresh `code_wake.Process` writing to `store` (the singleton is reset around the test)."""
    Process.reset()
    yield Process(store=store)
    Process.reset()


@pytest.fixture
def exc() -> BaseException:
    """An exception raised through foo() -> bar() -> baz()."""
    return raised_through_foo_bar_baz()
