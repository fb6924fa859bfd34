"""pycodewake 0.2's entry points for store adapter test suites, backed by `code_wake.testing`.

An adapter package's tests written the pycodewake way keep working::

    # conftest.py
    from code_wake.test.conftest import *
    import pytest
    from my_adapter import MyStore

    @pytest.fixture
    def store_cls():
        return MyStore

    @pytest.fixture
    def store_params():
        return (["sqlite:///:memory:"], {})

    @pytest.fixture
    def store_cleanup():
        return lambda store: None

    # test_my_store.py
    from code_wake.test.store import *

New suites subclass `code_wake.testing.StoreContract` directly.
"""
