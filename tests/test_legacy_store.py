"""pycodewake 0.2's adapter API: adapters written for it, configured and used as code_wake stores."""

from __future__ import annotations

import hashlib
import importlib
from pathlib import Path
from typing import Any

import pytest

import code_wake
from code_wake import Config, ConfigError, Process, StoreError
from code_wake._adapters import build_store
from code_wake._legacy_store import LegacyStore, is_legacy_adapter
from code_wake.abstract_store import AbstractStore
from code_wake.stack_trace import Stacktrace, bencode
from code_wake.testing import MemoryStore
from code_wake.testing.contract import process_info
from code_wake.utils import data_digest

ADAPTER_MODULE = "pycodewake_way.legacy_adapter.legacy_sql_store"
ADAPTER = f"{ADAPTER_MODULE},LegacySqlStore"


@pytest.fixture
def adapter_class(monkeypatch: pytest.MonkeyPatch) -> Any:
    """The test adapter's class, importable by its configured name as an installed package is."""
    monkeypatch.syspath_prepend(str(Path(__file__).parent))
    return importlib.import_module(ADAPTER_MODULE).LegacySqlStore


def legacy_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'legacy.sqlite'}"


class TestAdapterApi:
    def test_old_module_names(self) -> None:
        """The modules adapters imported from pycodewake 0.2 are there, naming today's objects."""
        assert AbstractStore is code_wake.Store
        assert data_digest([("a", "b")]) == code_wake.event.data_digest([("a", "b")])

    def test_config_mapping_access(self) -> None:
        """Config reads like pycodewake's: by the file's sections, read-only."""
        config = Config(app_name="shop", st_for_non_exceptions=True, store_args=("sqlite://",))
        assert config["stacktraces"]["include"] == {"from_exceptions": True, "for_non_exceptions": True}
        assert (config["app"]["name"], config["store"]["config"]) == ("shop", ["sqlite://"])
        with pytest.raises(KeyError):
            config["nope"]
        with pytest.raises(TypeError):
            config["app"]["name"] = "other"  # type: ignore[index]

    def test_singleton_detach_ref(self) -> None:
        """singleton_detach_ref forgets the Process, as pycodewake's singleton did."""
        first = Process(store=MemoryStore(), app_name="one")
        Process.singleton_detach_ref()
        assert Process(store=MemoryStore(), app_name="two") is not first


class TestStacktrace:
    def test_from_exc(self) -> None:
        """from_exc: the raising line last (outermost first), source lines resolved."""
        try:
            int("x")
        except ValueError as err:
            trace = Stacktrace.from_exc(err)
        assert trace.stackframes[-1].src == 'int("x")'
        assert trace.stackframes[-1].function == "test_from_exc"
        expected = hashlib.sha256(bencode([[f.filename, f.lineno, f.src] for f in trace.stackframes]))
        assert trace.digest() == expected.digest()

    def test_from_caller_leaves_out_the_adapter(self, adapter_class: Any, tmp_path: Path) -> None:
        """from_caller, called inside an adapter, ends at the line that called into the adapter."""
        adapter = adapter_class(legacy_url(tmp_path))
        proc = Process(store=adapter, app_name="caller")
        event = adapter.insert_event(proc, inc_st=True, sync=True)
        innermost = event.stacktrace.stackframes[0]
        assert innermost.src == "event = adapter.insert_event(proc, inc_st=True, sync=True)"
        one = adapter.insert_event(proc, inc_st=True, st_len=1, sync=True)
        assert len(one.stacktrace.stackframes) == 1
        adapter.close()

    def test_from_data_round_trip(self) -> None:
        """from_data(data()) is the same trace, with the same digest."""
        trace = Stacktrace.from_caller()
        again = Stacktrace.from_data(trace.data())
        assert [f[:3] for f in again.stackframes] == [f[:3] for f in trace.stackframes]
        assert again.digest() == trace.digest()
        assert len(Stacktrace.from_data(trace.data(), st_len=2)) == 2


class TestConfiguredAdapter:
    @pytest.mark.parametrize("queued", [False, True])
    def test_adapter_string_builds_a_wrapped_store(
        self, adapter_class: Any, tmp_path: Path, queued: bool
    ) -> None:
        """A pycodewake adapter named in the configuration is built with its arguments and wrapped."""
        url = legacy_url(tmp_path)
        store = build_store(ADAPTER, (url,), queued=queued, queue_settings=None, where="test")
        assert isinstance(store, LegacyStore)
        assert isinstance(store.adapter, adapter_class)
        assert isinstance(store, code_wake.QueueStore) is queued
        proc = Process(store=store, app_name="legacy_app", env_name="prod")
        try:
            raise ValueError("bad order")
        except ValueError as err:
            proc.log({"order": "7"}, exc=err)
        proc.log({"order": "8"}, sync=True)
        (event,) = store.get_events_by_data([("order", "7")])
        assert event.process.app.name == "legacy_app"
        assert event.stacktrace is not None
        assert event.stacktrace.stackframes[0].src == 'raise ValueError("bad order")'
        store.close()

    def test_a_class_that_is_neither_is_refused(self) -> None:
        """A class that is neither a Store nor a pycodewake adapter is a configuration error."""
        with pytest.raises(
            ConfigError, match=r"not a subclass of code_wake\.store\.Store .*pycodewake adapter"
        ):
            build_store("pathlib,Path", (), queued=False, queue_settings=None, where="test")
        with pytest.raises(ConfigError, match="is not a store"):
            Process(store=object())  # type: ignore[arg-type]

    def test_process_accepts_the_adapter_itself(self, adapter_class: Any, tmp_path: Path) -> None:
        """Process(store=adapter) wraps it; the same adapter again is the same configuration."""
        adapter = adapter_class(legacy_url(tmp_path))
        proc = Process(store=adapter, app_name="direct")
        assert isinstance(proc.store, LegacyStore)
        assert Process(store=adapter) is proc
        assert proc.environment is None
        assert adapter.get_process_by_id(proc.id).app.name == "direct"
        proc.store.close()


class _Broken:
    """An adapter whose methods fail, and which lacks most of the original's."""

    def insert_process(self, process: Any) -> Any:
        raise RuntimeError("disk on fire")

    def insert_event(self, process: Any, *args: Any, **kwargs: Any) -> Any:
        return None

    def get_process_by_id(self, id: int) -> Any:
        return None


class TestLegacyStoreBoundary:
    def test_is_legacy_adapter(self) -> None:
        """Classes and instances with the original's methods count; code_wake stores do not."""
        assert is_legacy_adapter(_Broken) and is_legacy_adapter(_Broken())
        assert not is_legacy_adapter(MemoryStore) and not is_legacy_adapter(MemoryStore())

    def test_failures_become_store_errors_naming_the_method(self) -> None:
        """An adapter's exception, or a method it lacks, is a StoreError that says which."""
        store = LegacyStore(_Broken())
        with pytest.raises(StoreError, match=r"insert_process\(\) failed: RuntimeError: disk on fire"):
            store.insert_process(process_info())
        with pytest.raises(StoreError, match=r"has no get_event_by_id\(\)"):
            store.get_event_by_id(1)
        assert store.get_process_by_id(1) is None
        assert "pycodewake adapter" in store.describe()
