"""The ``code-wake`` command, driven as a user drives it, against stores the real library wrote.

Most tests call the entry point, ``main(argv)``, and read what it printed;
a few run the installed command (and ``python -m code_wake``) in a
subprocess. The stores are real: a SQLite file, and PostgreSQL and
MySQL/MariaDB where their servers answer, written through
``code_wake.Process(store=Sql14Store(url)).log(...)``.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

import code_wake
from code_wake import EventRecord, ProcessInfo
from code_wake.cli import COMMANDS, main
from code_wake_sql14_store import Sql14Store

DOCS = Path(__file__).parent.parent / "docs" / "cli.md"
CONSOLE_SCRIPT = str(Path(sys.executable).with_name("code-wake"))
PASSWORD = "s3cr3t-Pw"
DAY = 86_400.0


class OutOfStock(Exception):
    """What the scenario's checkout raises."""


def reserve(item: str) -> None:
    raise OutOfStock(f"no {item} left")


def checkout(item: str) -> None:
    reserve(item)


def lookup(key: str) -> str:
    prices: dict[str, str] = {}
    return prices[key]


def archive() -> None:
    raise TimeoutError("archive did not answer")


STOCK = f"{OutOfStock.__module__}.OutOfStock"
"""How the scenario's OutOfStock is recorded (its module depends on how pytest imported this file)."""


def python_printout(exc: BaseException) -> str:
    """Python's own printout of `exc`, without the caret lines 3.11+ adds under some frames."""
    text = "".join(traceback.format_exception(exc))
    return re.sub(r"^ +[~^]+\n", "", text, flags=re.MULTILINE)


@dataclass
class Scenario:
    """What `record` wrote: every event as the library returned it, and the exceptions logged."""

    url: str
    events: list[EventRecord] = field(default_factory=list)
    exceptions: dict[int, BaseException] = field(default_factory=dict)
    now: float = 0.0

    def ids(self, keep: Callable[[EventRecord], bool] = lambda e: True) -> list[int]:
        """Ids of the events `keep` accepts, newest first."""
        chosen = [e for e in self.events if keep(e)]
        return [e.id for e in sorted(chosen, key=lambda e: (-e.when_ts, -e.id))]

    def by_exc(self, exc_type: str) -> list[EventRecord]:
        return [e for e in self.events if e.exc_type == exc_type]


def _log(
    scenario: Scenario,
    proc: code_wake.Process,
    data: dict[str, Any],
    exc: BaseException | None = None,
    **kw: Any,
) -> None:
    event = proc.log(data, exc, sync=True, **kw)
    assert event is not None
    scenario.events.append(event)
    if exc is not None:
        scenario.exceptions[event.id] = exc


def record(url: str) -> Scenario:
    """Record a small, known history through the library: three app runs and an old cron job."""
    scenario = Scenario(url, now=time.time())
    old = scenario.now - 3 * DAY
    store = Sql14Store(url)
    # A cron job that ran long ago: its process and all its events are older than 2 days.
    cron = store.insert_process(
        ProcessInfo(
            pid=7,
            username="cron",
            fqdn="batch.example.org",
            exe_path="/opt/cron.py",
            run_ts=old - 60,
            app_name="cron",
        )
    )
    try:
        archive()
    except TimeoutError as exc:
        event = store.insert_event(cron, {"event": "archive"}, exc, when_ts=old, sync=True)
        assert event is not None
        scenario.events.append(event)
        scenario.exceptions[event.id] = exc
    for app, vsn, env in [
        ("shop", "1.2.3", "production"),
        ("shop", "1.2.3", "staging"),
        ("billing", "2.0", "production"),
    ]:
        code_wake.Process.reset()
        proc = code_wake.Process(app_name=app, app_vsn=vsn, env_name=env, store=store)
        _log(scenario, proc, {"event": "order", "customer": "c1", "n": 1}, when_ts=old + 60)
        for customer in ("c1", "c2"):
            _log(scenario, proc, {"event": "order", "customer": customer})
        for _ in range(2 if app == "shop" else 1):
            try:
                checkout("cake")
            except OutOfStock as exc:
                _log(scenario, proc, {"event": "fault", "customer": "c3"}, exc)
        if app == "billing":
            try:
                lookup("tea")
            except KeyError as exc:
                _log(scenario, proc, {"event": "fault", "customer": "c1"}, exc)
            _log(scenario, proc, {"event": "audit"}, inc_st=True)
    code_wake.Process.reset()
    store.close()
    return scenario


@pytest.fixture
def scenario(sqlite_url: str) -> Scenario:
    """The known history in a SQLite file."""
    return record(sqlite_url)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """Run the command; its exit status, stdout and stderr."""
    try:
        status = main(list(argv))
    except SystemExit as exc:  # argparse's usage errors and --help
        status = int(exc.code or 0)
    out, err = capsys.readouterr()
    return status, out, err


def json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines()]


def table(text: str) -> list[list[str]]:
    """The rows of a printed table (header first), split on runs of two or more spaces."""
    return [re.split(r"\s{2,}", line.strip()) for line in text.splitlines()]


def _is(exc_type: str | None) -> Callable[[EventRecord], bool]:
    return lambda e: e.exc_type == exc_type


# -- events ----------------------------------------------------------------------------------------

FILTERS: dict[str, tuple[list[str], Callable[[EventRecord, Scenario], bool]]] = {
    "app": (["--app", "billing"], lambda e, s: e.process.app.name == "billing"),
    "version": (
        ["--vsn", "1.2.3"],
        lambda e, s: e.process.app_vsn is not None and e.process.app_vsn.vsn == "1.2.3",
    ),
    "environment": (
        ["--env", "staging"],
        lambda e, s: e.process.environment is not None and e.process.environment.name == "staging",
    ),
    "one data term": (["--where", "customer=c1"], lambda e, s: e.data_dict().get("customer") == "c1"),
    "two data terms": (
        ["--where", "customer=c1", "--where", "event=fault"],
        lambda e, s: e.data_dict().get("customer") == "c1" and e.data_dict().get("event") == "fault",
    ),
    "exception type": (["--exc-type", STOCK], lambda e, s: e.exc_type == STOCK),
    "errors": (["--errors"], lambda e, s: e.exc_type is not None),
    "since a duration": (["--since", "2d"], lambda e, s: e.when_ts >= s.now - 2 * DAY),
    "until a duration": (["--until", "2d"], lambda e, s: e.when_ts < s.now - 2 * DAY),
    "all at once": (
        ["--app", "shop", "--env", "production", "--where", "customer=c3", "--since", "1d"],
        lambda e, s: (
            e.process.app.name == "shop"
            and e.process.environment is not None
            and e.process.environment.name == "production"
            and e.data_dict().get("customer") == "c3"
        ),
    ),
}


class TestEvents:
    """``code-wake events``: newest first, every filter narrowing as it says."""

    def test_table_newest_first(self, capsys: pytest.CaptureFixture[str], scenario: Scenario) -> None:
        """The default output is an aligned table with a header, newest event first."""
        status, out, err = run(capsys, "events", "--store", scenario.url)
        assert (status, err) == (0, "")
        rows = table(out)
        assert rows[0][:3] == ["ID", "TIME (UTC)", "APP"]
        assert [int(row[0]) for row in rows[1:]] == scenario.ids()
        header, *lines = out.splitlines()
        apps = {e.id: e.process.app.name for e in scenario.events}
        for line, event_id in zip(lines, scenario.ids(), strict=True):
            assert line[header.index("APP") :].startswith(apps[event_id] + " ")  # columns aligned

    @pytest.mark.parametrize("name", sorted(FILTERS))
    def test_each_filter_narrows(
        self, capsys: pytest.CaptureFixture[str], scenario: Scenario, name: str
    ) -> None:
        """Each filter lists exactly the events it describes: some, not all."""
        options, keep = FILTERS[name]
        status, out, _ = run(capsys, "events", "--store", scenario.url, "--json", *options)
        assert status == 0
        expected = scenario.ids(lambda e: keep(e, scenario))
        assert 0 < len(expected) < len(scenario.events)
        assert [row["id"] for row in json_lines(out)] == expected

    def test_process_and_trace_filters(self, capsys: pytest.CaptureFixture[str], scenario: Scenario) -> None:
        """--process and --trace take the ids other commands print."""
        billing = next(e for e in scenario.events if e.process.app.name == "billing")
        status, out, _ = run(
            capsys, "events", "--store", scenario.url, "--json", "--process", str(billing.process.id)
        )
        assert [row["id"] for row in json_lines(out)] == scenario.ids(
            lambda e: e.process.id == billing.process.id
        )
        fault = scenario.by_exc(STOCK)[0]
        assert fault.stacktrace is not None
        status, out, _ = run(
            capsys, "events", "--store", scenario.url, "--json", "--trace", str(fault.stacktrace.id)
        )
        assert [row["id"] for row in json_lines(out)] == scenario.ids(
            lambda e: e.stacktrace is not None and e.stacktrace.id == fault.stacktrace.id  # type: ignore[union-attr]
        )
        assert status == 0

    def test_limit(self, capsys: pytest.CaptureFixture[str], scenario: Scenario) -> None:
        """--limit N prints the N newest; 0 prints all."""
        _, out, _ = run(capsys, "events", "--store", scenario.url, "--json", "--limit", "2")
        assert [row["id"] for row in json_lines(out)] == scenario.ids()[:2]
        _, out, _ = run(capsys, "events", "--store", scenario.url, "--json", "--limit", "0")
        assert len(json_lines(out)) == len(scenario.events)

    def test_json_lines_have_stable_keys(
        self, capsys: pytest.CaptureFixture[str], scenario: Scenario
    ) -> None:
        """--json prints one object per event, every one with the same keys, ids included."""
        _, out, _ = run(capsys, "--store", scenario.url, "--json", "events")
        rows = json_lines(out)
        assert len(rows) == len(scenario.events)
        assert {tuple(row) for row in rows} == {
            (
                "id",
                "time",
                "when_ts",
                "process_id",
                "pid",
                "app",
                "vsn",
                "env",
                "exc_type",
                "exc_message",
                "stacktrace_id",
                "data",
            )
        }
        first = next(e for e in scenario.events if e.id == rows[0]["id"])
        assert rows[0]["data"] == [[item.key, item.val] for item in first.data]
        assert rows[0]["when_ts"] == first.when_ts


# -- show ------------------------------------------------------------------------------------------


class TestShow:
    """``code-wake show``: one event whole."""

    def test_prints_the_trace_as_python_does(
        self, capsys: pytest.CaptureFixture[str], scenario: Scenario
    ) -> None:
        """The stack trace reads exactly as Python printed the live exception."""
        for event_id, exc in scenario.exceptions.items():
            status, out, err = run(capsys, "show", str(event_id), "--store", scenario.url)
            assert (status, err) == (0, "")
            assert out.endswith("\n" + python_printout(exc)), out

    def test_prints_the_event_whole(self, capsys: pytest.CaptureFixture[str], scenario: Scenario) -> None:
        """Id, time in UTC and local time, app, version, environment, process, exception and data."""
        event = next(e for e in scenario.events if e.exc_type == "KeyError")
        _, out, _ = run(capsys, "show", str(event.id), "--store", scenario.url)
        assert out.startswith(f"Event {event.id}\n")
        assert "UTC (" in out and " local)" in out
        assert "app          billing 2.0, environment production" in out
        assert f"process      {event.process.id}: pid {event.process.pid}," in out
        assert "exception    KeyError: 'tea'" in out
        assert re.search(r"^  event    = fault$", out, flags=re.MULTILINE)
        assert re.search(r"^  customer = c1$", out, flags=re.MULTILINE)

    def test_json(self, capsys: pytest.CaptureFixture[str], scenario: Scenario) -> None:
        """--json gives the event, its process, its frames (innermost first) and the printout."""
        event = scenario.by_exc(STOCK)[0]
        _, out, _ = run(capsys, "show", "--json", str(event.id), "--store", scenario.url)
        [shown] = json_lines(out)
        assert shown["id"] == event.id
        assert shown["process"]["id"] == shown["process_id"] == event.process.id
        assert [f["function"] for f in shown["stacktrace"]["frames"]] == ["reserve", "checkout", "record"]
        assert shown["stacktrace"]["frames"][0]["src"] == 'raise OutOfStock(f"no {item} left")'
        assert shown["traceback"] == python_printout(scenario.exceptions[event.id])

    def test_an_event_without_exception(self, capsys: pytest.CaptureFixture[str], scenario: Scenario) -> None:
        """A plain event shows its data and no traceback."""
        plain = next(e for e in scenario.events if not e.exc_type and e.stacktrace is None)
        _, out, _ = run(capsys, "show", str(plain.id), "--store", scenario.url)
        assert "Traceback" not in out
        assert "exception" not in out


# -- errors ----------------------------------------------------------------------------------------


class TestErrors:
    """``code-wake errors``: exceptions grouped by type and stack trace."""

    def test_groups_count_correctly(self, capsys: pytest.CaptureFixture[str], scenario: Scenario) -> None:
        """One group per exception type and trace, counted, most frequent first, with where it was seen."""
        status, out, _ = run(capsys, "errors", "--store", scenario.url, "--json")
        assert status == 0
        groups = json_lines(out)
        stock = scenario.by_exc(STOCK)
        assert [(g["exc_type"], g["count"]) for g in groups] == [
            (STOCK, 5),
            ("KeyError", 1),
            ("TimeoutError", 1),
        ]
        top = groups[0]
        assert (top["first_ts"], top["last_ts"]) == (stock[0].when_ts, stock[-1].when_ts)
        assert (top["apps"], top["envs"]) == (["billing", "shop"], ["production", "staging"])
        assert top["versions"] == [{"app": "billing", "vsn": "2.0"}, {"app": "shop", "vsn": "1.2.3"}]
        assert top["last_event_id"] == stock[-1].id
        assert top["message"] == "no cake left"
        assert top["where"].endswith(f"test_cli.py:{reserve.__code__.co_firstlineno + 1} in reserve")

    def test_filters_narrow_the_counts(self, capsys: pytest.CaptureFixture[str], scenario: Scenario) -> None:
        """--app, --env and --since count only the events they select."""
        _, out, _ = run(
            capsys, "errors", "--store", scenario.url, "--json", "--app", "shop", "--env", "production"
        )
        assert [g["count"] for g in json_lines(out)] == [2]
        _, out, _ = run(capsys, "errors", "--store", scenario.url, "--json", "--since", "1d")
        assert [g["exc_type"] for g in json_lines(out)][1:] == ["KeyError"]
        _, out, _ = run(capsys, "errors", "--store", scenario.url, "--json", "--limit", "1")
        assert len(json_lines(out)) == 1

    def test_all_traces_adds_caller_traces(
        self, capsys: pytest.CaptureFixture[str], scenario: Scenario
    ) -> None:
        """--all-traces also groups stack traces recorded without an exception."""
        _, out, _ = run(capsys, "errors", "--store", scenario.url, "--json", "--all-traces")
        assert [g["count"] for g in json_lines(out) if g["exc_type"] is None] == [1]

    def test_table(self, capsys: pytest.CaptureFixture[str], scenario: Scenario) -> None:
        """The table shows count, when, what, where and the latest event's id."""
        _, out, _ = run(capsys, "errors", "--store", scenario.url)
        rows = table(out)
        assert rows[0][:4] == ["COUNT", "FIRST SEEN (UTC)", "LAST SEEN (UTC)", "EXCEPTION"]
        assert rows[1][0] == "5"
        assert rows[1][-1] == "no cake left"


# -- stats and processes ---------------------------------------------------------------------------


class TestStatsAndProcesses:
    """``code-wake stats`` and ``code-wake processes``."""

    def test_stats(self, capsys: pytest.CaptureFixture[str], scenario: Scenario) -> None:
        """Events and errors per day, app, version and environment."""
        status, out, _ = run(capsys, "stats", "--store", scenario.url, "--json")
        assert status == 0
        rows = json_lines(out)
        assert sum(row["events"] for row in rows) == len(scenario.events)
        assert sum(row["errors"] for row in rows) == sum(1 for e in scenario.events if e.exc_type)
        assert [row["day"] for row in rows] == sorted((row["day"] for row in rows), reverse=True)
        today = time.strftime("%Y-%m-%d", time.gmtime(scenario.now))
        billing_today = [r for r in rows if r["app"] == "billing" and r["day"] == today]
        assert [(r["vsn"], r["env"], r["events"], r["errors"]) for r in billing_today] == [
            ("2.0", "production", 5, 2)
        ]

    def test_processes(self, capsys: pytest.CaptureFixture[str], scenario: Scenario) -> None:
        """Processes newest first, filtered by app, environment and start time."""
        _, out, _ = run(capsys, "processes", "--store", scenario.url, "--json")
        assert [row["app"] for row in json_lines(out)] == ["billing", "shop", "shop", "cron"]
        _, out, _ = run(
            capsys, "processes", "--store", scenario.url, "--json", "--app", "shop", "--env", "staging"
        )
        assert [(row["app"], row["env"]) for row in json_lines(out)] == [("shop", "staging")]
        _, out, _ = run(capsys, "processes", "--store", scenario.url, "--json", "--until", "1d")
        assert [row["app"] for row in json_lines(out)] == ["cron"]
        _, out, _ = run(capsys, "processes", "--store", scenario.url)
        assert table(out)[0][:3] == ["ID", "STARTED (UTC)", "APP"]


# -- prune -----------------------------------------------------------------------------------------


def _consistency(url: str) -> dict[str, int]:
    """Rows that nothing should be left pointing at, or counting, after a prune."""
    orphans = (
        "SELECT COUNT(*) FROM {} x LEFT JOIN {} y ON y.id = x.{} WHERE x.{} IS NOT NULL AND y.id IS NULL"
    )
    counted = (
        "SELECT (SELECT COUNT(*) FROM events) - (SELECT COALESCE(SUM(n), 0) FROM event_counts WHERE span={})"
    )
    checks = {
        "orphan data rows": orphans.format("events_data", "events", "event_id", "event_id"),
        "orphan frames": orphans.format("stackframes", "stacktraces", "stacktrace_id", "stacktrace_id"),
        "events without trace": orphans.format("events", "stacktraces", "stacktrace_id", "stacktrace_id"),
        "events without process": orphans.format("events", "processes", "process_id", "process_id"),
        "miscounted in all": counted.format(0),
        "miscounted by day": counted.format(86_400),
        "miscounted by hour": counted.format(3_600),
    }
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return {name: int(conn.exec_driver_sql(sql).scalar_one()) for name, sql in checks.items()}
    finally:
        engine.dispose()


def _count(url: str, table_name: str) -> int:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.exec_driver_sql(f"SELECT COUNT(*) FROM {table_name}").scalar_one())
    finally:
        engine.dispose()


def check_prune(capsys: pytest.CaptureFixture[str], scenario: Scenario) -> None:
    """A dry run reports and keeps everything; the prune removes exactly that, and the rest stays whole."""
    url = scenario.url
    old = {e.id for e in scenario.events if e.when_ts < scenario.now - 2 * DAY}
    kept = [e for e in scenario.events if e.id not in old]
    before = {name: _count(url, name) for name in ("events", "events_data", "stacktraces", "processes")}
    status, out, _ = run(capsys, "prune", "--older-than", "2d", "--dry-run", "--store", url, "--json")
    assert status == 0
    [dry] = json_lines(out)
    assert (dry["dry_run"], dry["events"], dry["data"]) == (
        True,
        len(old),
        sum(len(e.data) for e in scenario.events if e.id in old),
    )
    # The cron job's TimeoutError trace and the cron process itself were used only by old events.
    assert (dry["stacktraces"], dry["processes"]) == (1, 1)
    assert {name: _count(url, name) for name in before} == before
    status, out, _ = run(capsys, "prune", "--older-than", "2d", "--store", url)
    assert status == 0
    assert out.startswith(
        f"Deleted {len(old)} events ({dry['data']} data rows), 1 stack trace ({dry['stackframes']} frame"
    )
    assert out.rstrip().endswith(
        "and 1 process, recorded before " + out.rstrip().split("recorded before ")[1]
    )
    after = {name: _count(url, name) for name in before}
    assert after == {
        "events": before["events"] - len(old),
        "events_data": before["events_data"] - dry["data"],
        "stacktraces": before["stacktraces"] - 1,
        "processes": before["processes"] - 1,
    }
    assert _consistency(url) == dict.fromkeys(_consistency(url), 0)
    _, out, _ = run(capsys, "events", "--store", url, "--json", "--limit", "0")
    rows = json_lines(out)
    assert [row["id"] for row in rows] == [e.id for e in sorted(kept, key=lambda e: (-e.when_ts, -e.id))]
    for row, event in zip(rows, sorted(kept, key=lambda e: (-e.when_ts, -e.id)), strict=True):
        assert row["data"] == [[item.key, item.val] for item in event.data]
        assert row["stacktrace_id"] == (None if event.stacktrace is None else event.stacktrace.id)
    _, out, _ = run(capsys, "errors", "--store", url, "--json")
    assert [g["exc_type"] for g in json_lines(out)][1:] == ["KeyError"]


class TestPrune:
    """``code-wake prune``: retention that leaves a consistent store."""

    def test_prune(self, capsys: pytest.CaptureFixture[str], scenario: Scenario) -> None:
        """It removes only events older than the cutoff and what only they used."""
        check_prune(capsys, scenario)

    def test_an_absolute_date(self, capsys: pytest.CaptureFixture[str], scenario: Scenario) -> None:
        """--older-than takes a date as well as a duration; nothing older, nothing deleted."""
        status, out, _ = run(capsys, "prune", "--older-than", "2001-01-01", "--store", scenario.url)
        assert (status, out) == (
            0,
            "Deleted 0 events (0 data rows), 0 stack traces (0 frames), 0 call sites and 0 processes, "
            "recorded before 2001-01-01 00:00:00 UTC.\n",
        )


# -- errors a user can make ------------------------------------------------------------------------

BAD_INPUTS: dict[str, tuple[list[str], int, str]] = {
    "unknown event id": (["show", "987654"], 1, "no event with id 987654 in sqlite:///"),
    "bad --since": (["events", "--since", "yesterdayish"], 2, "events: argument --since: expected a time"),
    "bad --until": (["errors", "--until", "2026-13-45"], 2, "errors: argument --until: expected a time"),
    "--where without =": (["events", "--where", "customer"], 2, "argument --where: expected KEY=VALUE"),
    "non-integer --process": (["events", "--process", "ten"], 2, "argument --process: expected an id"),
    "negative --limit": (["events", "--limit", "-3"], 2, "argument --limit: expected a whole number"),
    "non-integer event id": (["show", "abc"], 2, "show: argument EVENT_ID: expected an id"),
    "missing --older-than": (["prune"], 2, "prune: the following arguments are required: --older-than"),
    "unknown command": (["frobnicate"], 2, "argument COMMAND: invalid choice: 'frobnicate'"),
    "unknown option": (["events", "--colour"], 2, "unrecognized arguments: --colour"),
}

BAD_STORES: dict[str, tuple[str, str]] = {
    "not a URL": (f"someone:{PASSWORD}@host/db", "Not a database URL"),
    "unknown dialect": (f"nosuchdb://someone:{PASSWORD}@host/db", "nosuchdb://someone:***@host/db"),
    "unreachable PostgreSQL": (
        f"postgresql+psycopg://someone:{PASSWORD}@127.0.0.1:1/db",
        "Cannot connect to postgresql+psycopg://someone:***@127.0.0.1:1/db",
    ),
    "unreachable MySQL": (
        f"mysql+pymysql://someone:{PASSWORD}@127.0.0.1:1/db",
        "Cannot connect to mysql+pymysql://someone:***@127.0.0.1:1/db",
    ),
    "missing SQLite file": (
        "sqlite:////nonexistent/dir/events.sqlite",
        "no database file at /nonexistent/dir/events.sqlite",
    ),
}


def _one_clean_line(err: str, expected: str) -> None:
    assert err.count("\n") == 1 and err.endswith("\n"), err
    assert err.startswith("code-wake: error: "), err
    assert expected in err, err
    assert "Traceback" not in err
    assert PASSWORD not in err


class TestBadInput:
    """Each bad input gets one clear line on stderr and a non-zero status; never a traceback or a password."""

    @pytest.mark.parametrize("name", sorted(BAD_INPUTS))
    def test_bad_input(self, capsys: pytest.CaptureFixture[str], scenario: Scenario, name: str) -> None:
        """Bad command lines exit 2 (as argparse does), failures at run time exit 1."""
        argv, expected_status, expected = BAD_INPUTS[name]
        status, out, err = run(capsys, *argv, "--store", scenario.url)
        assert (status, out) == (expected_status, "")
        _one_clean_line(err, expected)

    @pytest.mark.parametrize("name", sorted(BAD_STORES))
    def test_bad_store(self, capsys: pytest.CaptureFixture[str], name: str) -> None:
        """A bad URL, an unreachable server or a missing file is one line, without the password."""
        url, expected = BAD_STORES[name]
        status, out, err = run(capsys, "events", "--store", url)
        assert (status, out) == (1, "")
        _one_clean_line(err, expected)

    def test_bad_adapter(self, capsys: pytest.CaptureFixture[str]) -> None:
        """--adapter must name an importable store class."""
        status, _, err = run(capsys, "events", "--adapter", "no_such_module,Store", "--store", "x")
        assert status == 1
        _one_clean_line(err, "--adapter 'no_such_module,Store': module 'no_such_module' cannot be imported")
        status, _, err = run(capsys, "events", "--adapter", "json,JSONDecoder", "--store", "x")
        _one_clean_line(err, "is not a subclass of code_wake.store.Store")
        status, _, err = run(capsys, "events", "--adapter", "nocomma", "--store", "x")
        assert status == 2
        _one_clean_line(err, "argument --adapter: expected module,Class")

    def test_a_bad_configuration(
        self, capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Without --store the configuration decides; a bad one is one line naming the file."""
        config = tmp_path / "code_wake.conf"
        config.write_text("store:\n  adapter: [not, a, string]\n")
        monkeypatch.setenv("CODE_WAKE_CONFIG", str(config))
        status, _, err = run(capsys, "events")
        assert status == 1
        _one_clean_line(err, str(config))


# -- the store from the configuration --------------------------------------------------------------


class TestConfiguredStore:
    """Without --store: the library's own configuration, else its embedded default store."""

    def test_the_configuration_names_the_store(
        self,
        capsys: pytest.CaptureFixture[str],
        scenario: Scenario,
        tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        """CODE_WAKE_CONFIG's store is the one listed."""
        config = tmp_path / "code_wake.conf"
        config.write_text(
            f'store:\n  adapter: "code_wake_sql14_store,Sql14Store"\n  config: "{scenario.url}"\n'
        )
        monkeypatch.setenv("CODE_WAKE_CONFIG", str(config))
        _, out, _ = run(capsys, "events", "--json")
        assert [row["id"] for row in json_lines(out)] == scenario.ids()
        monkeypatch.delenv("CODE_WAKE_CONFIG")
        monkeypatch.setenv("CODE_WAKE_STORE_ADAPTER", "code_wake_sql14_store,Sql14Store")
        monkeypatch.setenv("CODE_WAKE_STORE_CONFIG", scenario.url)
        _, out, _ = run(capsys, "errors", "--json")
        assert json_lines(out)[0]["count"] == 5

    def test_the_embedded_default_store(self, capsys: pytest.CaptureFixture[str]) -> None:
        """Events a bare Process() recorded are found by a bare code-wake."""
        status, _, err = run(capsys, "events")
        assert status == 1
        _one_clean_line(err, "no database file at ")
        event = code_wake.Process(app_name="fresh").log({"hello": "world"}, sync=True)
        assert event is not None
        code_wake.Process.reset()
        status, out, _ = run(capsys, "events", "--json")
        assert status == 0
        assert [(row["id"], row["app"], row["data"]) for row in json_lines(out)] == [
            (event.id, "fresh", [["hello", "world"]])
        ]


# -- help and docs ---------------------------------------------------------------------------------


class TestHelp:
    """Every command is documented, and its help ends with an example."""

    @pytest.mark.parametrize("name", [command.name for command in COMMANDS])
    def test_help_ends_with_an_example(self, capsys: pytest.CaptureFixture[str], name: str) -> None:
        """``code-wake NAME --help`` ends with ``example:`` and a command line using NAME."""
        status, out, _ = run(capsys, name, "--help")
        assert status == 0
        lines = out.rstrip().splitlines()
        assert lines[-2] == "example:"
        assert lines[-1].strip().startswith(f"code-wake {name}")

    @pytest.mark.parametrize("name", [command.name for command in COMMANDS])
    def test_documented(self, name: str) -> None:
        """docs/cli.md has a section for the command, with its example."""
        docs = DOCS.read_text(encoding="utf-8")
        assert f"\n## `code-wake {name}`" in docs
        example = next(command.example for command in COMMANDS if command.name == name)
        assert example in docs

    def test_no_command_prints_help(self, capsys: pytest.CaptureFixture[str]) -> None:
        """The bare command prints its help (listing every command) and succeeds."""
        status, out, _ = run(capsys)
        assert status == 0
        assert all(command.name in out for command in COMMANDS)


# -- real processes --------------------------------------------------------------------------------


class TestSubprocess:
    """The installed command and ``python -m code_wake`` behave the same as main()."""

    def test_console_script_and_module(self, capsys: pytest.CaptureFixture[str], scenario: Scenario) -> None:
        """Both print what main() prints."""
        argv = ["errors", "--store", scenario.url, "--json"]
        _, expected, _ = run(capsys, *argv)
        for command in ([CONSOLE_SCRIPT], [sys.executable, "-m", "code_wake"]):
            done = subprocess.run([*command, *argv], capture_output=True, text=True, check=False, timeout=60)
            assert (done.returncode, done.stdout, done.stderr) == (0, expected, "")

    def test_errors_in_a_real_process(self) -> None:
        """A bad store and a bad option: the exit status and one line, no traceback."""
        url = f"postgresql+psycopg://someone:{PASSWORD}@127.0.0.1:1/db"
        done = subprocess.run(
            [CONSOLE_SCRIPT, "events", "--store", url],
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )
        assert done.returncode == 1
        _one_clean_line(done.stderr, "Cannot connect to")
        done = subprocess.run(
            [sys.executable, "-m", "code_wake", "events", "--since", "soon"],
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )
        assert done.returncode == 2
        _one_clean_line(done.stderr, "argument --since")

    def test_a_closed_pipe_ends_quietly(self, sqlite_url: str) -> None:
        """``code-wake events | head -1``: the reader leaves early, the command stops without a traceback."""
        store = Sql14Store(sqlite_url)
        process = store.insert_process(
            ProcessInfo(pid=1, username="u", fqdn="h", exe_path="x", run_ts=1.0, app_name="many")
        )
        policy = store.event_policy
        store.insert_events(
            [
                policy.build(process.id, {"n": str(n), "pad": "x" * 200}, when_ts=1000.0 + n)
                for n in range(3000)
            ]
        )
        store.close()
        argv = [CONSOLE_SCRIPT, "events", "--store", sqlite_url, "--limit", "0"]
        with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as reader:
            assert reader.stdout is not None and reader.stderr is not None
            assert b"TIME (UTC)" in reader.stdout.readline()
            reader.stdout.close()  # 3,000 rows of 250 bytes overflow the pipe: the writer meets a closed pipe
            assert reader.wait(timeout=60) == 1
            assert reader.stderr.read() == b""


# -- the same on the database servers --------------------------------------------------------------


@pytest.fixture(
    params=[
        pytest.param("postgresql_url", marks=pytest.mark.postgresql),
        pytest.param("mysql_url", marks=pytest.mark.mysql),
    ]
)
def server_scenario(request: pytest.FixtureRequest) -> Scenario:
    """The known history on PostgreSQL and on MySQL/MariaDB."""
    return record(str(request.getfixturevalue(request.param)))


class TestOnServers:
    """Filters, groups, show and prune on PostgreSQL and MySQL/MariaDB."""

    def test_filters_groups_and_show(
        self, capsys: pytest.CaptureFixture[str], server_scenario: Scenario
    ) -> None:
        """Every filter narrows as on SQLite, groups count the same, show prints the trace as Python."""
        s = server_scenario
        for name, (options, keep) in FILTERS.items():
            _, out, _ = run(capsys, "events", "--store", s.url, "--json", *options)
            expected = s.ids(lambda e, keep=keep: keep(e, s))  # type: ignore[misc]
            assert [row["id"] for row in json_lines(out)] == expected, name
        _, out, _ = run(capsys, "errors", "--store", s.url, "--json")
        assert [g["count"] for g in json_lines(out)] == [5, 1, 1]
        for event_id, exc in s.exceptions.items():
            _, out, _ = run(capsys, "show", str(event_id), "--store", s.url)
            assert out.endswith("\n" + python_printout(exc))
        status, _, err = run(capsys, "show", "987654", "--store", s.url)
        assert status == 1
        _one_clean_line(err, "no event with id 987654")

    def test_prune(self, capsys: pytest.CaptureFixture[str], server_scenario: Scenario) -> None:
        """Prune removes exactly what it reports and leaves a consistent database."""
        check_prune(capsys, server_scenario)
