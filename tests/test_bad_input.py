"""Bad input costs little and loses nothing it need not (issue 13).

How fast the bounds are is measured in bench/ (``python -m bench --only bounds``);
these tests show what is kept and the markers of what was cut.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from code_wake import EventPolicy, Process, StoreError
from code_wake._bounded import MAX_DEPTH, MAX_ITEMS
from code_wake.cli import main
from code_wake.testing.memory import MemoryStore
from code_wake_sql14_store import Sql14Store

QUERY_PASSWORD = "hunter2"


@pytest.fixture
def store() -> MemoryStore:
    store = MemoryStore()
    Process(store=store, app_name="bad-input")
    return store


class TestData:
    """Data that is not a mapping or pairs, or is huge, is kept bounded and whole where it matters."""

    def test_string_is_one_value(self, store: MemoryStore) -> None:
        """``log("order placed")`` stores one value, not twelve characters."""
        event = Process().log("order placed", sync=True)  # type: ignore[arg-type]
        assert event is not None
        assert [(d.key, d.val) for d in event.data] == [("message", "order placed")]

    def test_huge_list_is_cut_with_a_marker(self) -> None:
        """A list of five million numbers: its first items, then how many were left out."""
        ((_, text),) = EventPolicy().normalise({"v": list(range(5_000_000))})
        assert text is not None
        assert text.startswith("[0,1,2,") and text.endswith(f',"...[+{5_000_000 - MAX_ITEMS} items]"]')

    def test_huge_mapping_as_data(self) -> None:
        """100,000 keys as the data: the first ones, then a pair saying how many were left out."""
        pairs = EventPolicy().normalise({f"k{i}": i for i in range(100_000)})
        assert len(pairs) == MAX_ITEMS + 1
        assert pairs[-1] == ("_truncated", f"...[+{100_000 - MAX_ITEMS} items]")

    def test_deep_nesting_is_marked(self) -> None:
        """Nesting deeper than the bound is marked, and a list holding itself ends."""
        loop: list[object] = []
        loop.append(loop)
        ((_, text),) = EventPolicy().normalise({"v": loop})
        assert text == "[" * MAX_DEPTH + '"[...too deep]"' + "]" * MAX_DEPTH

    def test_long_text_is_cut_at_the_limit(self) -> None:
        """A long mapping is cut at the size limit, with a marker."""
        ((_, text),) = EventPolicy(max_value_length=100).normalise({"v": {"a": "x" * 1000}})
        assert text is not None and len(text) <= 100 and text.endswith("...[cut at 100 chars]")


class TestBadExc:
    """A bad ``exc`` is reported and the data still stored."""

    @pytest.mark.parametrize("exc", [ValueError, "x"])
    def test_data_kept(self, store: MemoryStore, exc: object, caplog: pytest.LogCaptureFixture) -> None:
        """The class or the string is kept as the value ``exc``; the report says what was wrong."""
        with caplog.at_level(logging.WARNING, logger="code_wake"):
            event = Process().log({"order": "o1"}, exc=exc, sync=True)  # type: ignore[arg-type]
        assert event is not None
        assert event.data_dict()["order"] == "o1"
        assert "exc" in event.data_dict()
        assert "exc must be an exception instance" in caplog.text


class TestCliUsage:
    """Every usage error exits 2 with one line."""

    @pytest.mark.parametrize(
        "argv",
        [
            ["show", "99999999999999999999"],
            ["events", "--process", "99999999999999999999"],
            ["events", "--limit", "99999999999999999999"],
        ],
    )
    def test_overflowing_numbers(self, argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
        """A number no database column holds is a usage error, not an OverflowError."""
        with pytest.raises(SystemExit) as exit_info:
            main(argv)
        assert exit_info.value.code == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "code-wake: error:" in err


class TestQueryPasswords:
    """A password in a URL's query string is masked wherever code_wake prints the URL."""

    URL = f"postgresql+psycopg://app@127.0.0.1:1/x?password={QUERY_PASSWORD}&application_name=t"

    def test_repr_and_errors(self) -> None:
        """repr(store), describe() and a StoreError."""
        store = Sql14Store(self.URL, connect_args={"connect_timeout": 1})
        assert QUERY_PASSWORD not in repr(store) + store.describe()
        with pytest.raises(StoreError) as error:
            store.insert_app("a")
        assert QUERY_PASSWORD not in str(error.value)
        assert "password=***" in str(error.value)
        store.close()

    def test_cli_error(self, capsys: pytest.CaptureFixture[str]) -> None:
        """The CLI's error line."""
        assert main(["events", "--store", self.URL]) == 1
        err = capsys.readouterr().err
        assert QUERY_PASSWORD not in err and "password=***" in err

    def test_sqlite_uri_query(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """Any URL form: a SQLite URL with a password parameter."""
        assert main(["events", "--store", f"sqlite:///{tmp_path}/x.db?password={QUERY_PASSWORD}"]) == 1
        assert QUERY_PASSWORD not in capsys.readouterr().err
