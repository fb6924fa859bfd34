"""What the web view's tests look at: a known history recorded through the library.

`record` writes it with ``code_wake.Process(...).log(..., sync=True)`` into a
real store (a SQLite file, or PostgreSQL where its server answers), at times
counted back from a fixed "now" that the app under test is given as its
clock. Recorded text includes markup an attacker could have logged.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from werkzeug.test import Client, TestResponse

import code_wake
from code_wake import EventRecord
from code_wake.web import create_app
from code_wake.web._app import WebApp
from code_wake_sql14_store import Sql14Store

HOUR = 3600.0
DAY = 86_400.0

SCRIPT_PAYLOAD = "<script>window.__cw_xss = 1</script>"
ONERROR_PAYLOAD = '<img src="x" onerror="window.__cw_xss = 2">'
MESSAGE_PAYLOAD = "bad <b>input</b> <script>window.__cw_xss = 3</script>"


class OutOfStock(Exception):
    """What the scenario's checkout raises first."""


def reserve(item: str) -> None:
    raise OutOfStock(f"no {item} left")


def checkout(item: str) -> None:
    try:
        reserve(item)
    except OutOfStock as exc:
        raise RuntimeError(f"checkout of {item} failed") from exc


def lookup(key: str) -> str:
    prices: dict[str, str] = {}
    return prices[key]


def parse(text: str) -> None:
    raise ValueError(MESSAGE_PAYLOAD + text)


@dataclass
class Recorded:
    """What `record` wrote: every event as the library returned it, and the app's "now"."""

    url: str
    now: float
    events: list[EventRecord] = field(default_factory=list)

    def of(self, exc_type: str | None, trace_id: int | None = -1) -> list[EventRecord]:
        """Events of one exception type (and trace, unless -1), newest first."""
        chosen = [
            e
            for e in self.events
            if e.exc_type == exc_type and trace_id in (-1, e.stacktrace.id if e.stacktrace else None)
        ]
        return sorted(chosen, key=lambda e: (-e.when_ts, -e.id))

    def newest_first(self, keep: Callable[[EventRecord], bool] = lambda e: True) -> list[EventRecord]:
        return sorted((e for e in self.events if keep(e)), key=lambda e: (-e.when_ts, -e.id))


def _log(
    recorded: Recorded, proc: code_wake.Process, data: dict[str, Any], exc: Any = None, **kw: Any
) -> None:
    event = proc.log(data, exc, sync=True, **kw)
    assert event is not None
    recorded.events.append(event)


def record(url: str) -> Recorded:
    """Record the history: three app versions, five kinds of trouble, markup in the data."""
    recorded = Recorded(url, now=float(int(time.time())))
    now = recorded.now
    store = Sql14Store(url)
    runs = [("shop", "1.2.3", "production"), ("shop", "1.2.4", "staging"), ("billing", "2.0", "production")]
    for number, (app, vsn, env) in enumerate(runs):
        code_wake.Process.reset()
        proc = code_wake.Process(app_name=app, app_vsn=vsn, env_name=env, store=store)
        for n in range(6):
            _log(
                recorded,
                proc,
                {"event": "order", "customer": f"c{n % 3}", "ua": SCRIPT_PAYLOAD, "img": ONERROR_PAYLOAD},
                when_ts=now - n * 7 * HOUR - number * 60,
            )
        if app == "shop":
            # The chained RuntimeError: seen long ago too, so it is not new in a week's window.
            for when in (
                now - 10 * DAY - number,
                *(now - (h * 5 + 1) * HOUR - 60 - number for h in range(8)),
            ):
                try:
                    checkout("cake")
                except RuntimeError as exc:
                    _log(
                        recorded,
                        proc,
                        {"event": "fault", "customer": "c3", "ua": SCRIPT_PAYLOAD},
                        exc,
                        when_ts=when,
                    )
        else:
            # The KeyError: billing only, all within the last two hours (new).
            for minutes in (5, 30, 70, 110):
                try:
                    lookup("tea")
                except KeyError as exc:
                    _log(
                        recorded, proc, {"event": "fault", "customer": "c1"}, exc, when_ts=now - minutes * 60
                    )
            # An exception recorded without its stack trace, whose message carries markup.
            try:
                parse("!")
            except ValueError as exc:
                _log(recorded, proc, {"event": "parse"}, exc, inc_st=False, when_ts=now - 3 * HOUR)
            # A caller's stack without an exception (not an error).
            _log(recorded, proc, {"event": "audit"}, inc_st=True, when_ts=now - 4 * HOUR)
    code_wake.Process.reset()
    store.close()
    return recorded


@pytest.fixture
def recorded(sqlite_url: str) -> Recorded:
    """The history in a SQLite file."""
    return record(sqlite_url)


@pytest.fixture
def app(recorded: Recorded) -> Iterator[WebApp]:
    """The web view of the recorded store, its clock at the history's "now"."""
    web = create_app(recorded.url, clock=lambda: recorded.now)
    yield web
    web.close()


class Browserless:
    """Requests to a WSGI app as a client on this machine would send them."""

    def __init__(self, wsgi: Any, remote_addr: str = "127.0.0.1") -> None:
        self.client = Client(wsgi)
        self.remote_addr = remote_addr

    def get(self, path: str, **kw: Any) -> TestResponse:
        environ = {"REMOTE_ADDR": self.remote_addr, **kw.pop("environ_base", {})}
        return self.client.get(path, environ_base=environ, **kw)

    def open(self, path: str, method: str, **kw: Any) -> TestResponse:
        return self.client.open(path, method=method, environ_base={"REMOTE_ADDR": self.remote_addr}, **kw)

    def page(self, path: str) -> str:
        response = self.get(path)
        assert response.status_code == 200, (
            path,
            response.status_code,
            response.get_data(as_text=True)[:2000],
        )
        return response.get_data(as_text=True)


@pytest.fixture
def web(app: WebApp) -> Browserless:
    """A client of the app from 127.0.0.1."""
    return Browserless(app)
