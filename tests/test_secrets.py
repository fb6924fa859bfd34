"""Secrets never reach the database, through any door, at any depth, in any text (issue 13).

Each test logs a secret the way a real program leaks one, then reads every
byte of the SQLite file and its WAL: the secret is not there, and the
``[FILTERED]`` marker is.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog

from code_wake import CodeWakeHandler, EventPolicy, PendingEvent, Process
from code_wake.structlog import CodeWakeProcessor
from code_wake_sql14_store import Sql14Store

SECRET = "hunter2-SECRET"
"""Every test's secret: it must appear nowhere in the database files."""


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "events.sqlite"


@pytest.fixture
def store(db: Path) -> Iterator[Sql14Store]:
    store = Sql14Store(f"sqlite:///{db}")
    Process(store=store, app_name="secrets")
    yield store
    store.close()


@pytest.fixture(autouse=True)
def _logging_restored() -> Iterator[None]:
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    yield
    root.handlers[:], root.level = saved
    structlog.reset_defaults()
    structlog.contextvars.clear_contextvars()


def stored_bytes(db: Path) -> bytes:
    """The database file and its WAL, as they lie on disk."""
    return b"".join(p.read_bytes() for p in db.parent.glob(db.name + "*"))


def assert_filtered(db: Path, store: Sql14Store, count: int = 1) -> None:
    """The secret is nowhere on disk; the marker is in what was recorded."""
    events = store.get_events_by_data([])
    assert len(events) == count
    assert SECRET.encode() not in stored_bytes(db)
    assert SECRET.encode("utf-16-le") not in stored_bytes(db)
    text = repr([(e.data_dict(), e.exc_message) for e in events])
    assert "[FILTERED]" in text


class TestByKey:
    """Values under secret-looking keys are filtered at every depth."""

    def test_nested_headers(self, db: Path, store: Sql14Store) -> None:
        """Headers nested in a mapping, cookies in a list: filtered where they sit."""
        Process().log(
            {
                "headers": {"Authorization": f"Bearer {SECRET}", "Cookie": f"s={SECRET}", "Accept": "*/*"},
                "attempts": [{"db_pass": SECRET}, {"pw": SECRET}, {"passphrase": SECRET}],
                "author": "kept",
            },
            sync=True,
        )
        assert_filtered(db, store)
        data = store.get_events_by_data([])[0].data_dict()
        assert data["author"] == "kept"
        assert '"Accept":"*/*"' in data["headers"]

    def test_logging_extra(self, db: Path, store: Sql14Store) -> None:
        """A logging record's ``extra`` values, nested too."""
        logging.getLogger().addHandler(CodeWakeHandler())
        logging.getLogger("t.secrets").error("login", extra={"auth": SECRET, "ctx": {"api_key": SECRET}})
        assert_filtered(db, store)

    def test_structlog_bound_values(self, db: Path, store: Sql14Store) -> None:
        """Bound structlog variables, nested too."""
        log = structlog.wrap_logger(
            structlog.ReturnLogger(), processors=[structlog.processors.add_log_level, CodeWakeProcessor()]
        )
        log.bind(bearer=SECRET, request={"session_id": SECRET}).error("denied")
        assert_filtered(db, store)


class TestByShape:
    """Secrets of a known shape are filtered in any text."""

    def test_message_and_its_arguments(self, db: Path, store: Sql14Store) -> None:
        """``logger.error("... password=%s", pw)``: the formatted message is filtered."""
        logging.getLogger().addHandler(CodeWakeHandler())
        logging.getLogger("t.secrets").error("login failed password=%s", SECRET)
        assert_filtered(db, store)

    def test_exception_message_with_token_url(self, db: Path, store: Sql14Store) -> None:
        """An exception whose message holds a URL with a token and a password."""
        try:
            raise ConnectionError(
                f"GET https://api.example/v1?token={SECRET} via redis://u:{SECRET}@cache failed"
            )
        except ConnectionError as exc:
            Process().log({"where": "payment"}, exc, sync=True)
        assert_filtered(db, store)
        assert "token=[FILTERED]" in (store.get_events_by_data([])[0].exc_message or "")

    def test_values_of_every_shape(self, db: Path, store: Sql14Store) -> None:
        """URL passwords, secret query parameters, Bearer/Basic credentials and dict reprs in values."""
        Process().log(
            {
                "dsn": f"postgresql://app:{SECRET}@db/prod",
                "url": f"https://shop.example/cb?amount=3&client_secret={SECRET}",
                "header": f"Authorization: Basic {SECRET}",
                "bearer_text": f"sent Bearer {SECRET}",
                "repr": repr({"password": SECRET}),
                "obj": _Repr(f"<Thing url=https://x/?api_key={SECRET}>"),
            },
            sync=True,
        )
        assert_filtered(db, store)


class _Repr:
    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text


class TestDjangoRequest:
    """Django's ``django.request`` logger passes the request in ``extra``: its repr is filtered."""

    def test_real_wsgi_request(self, db: Path, store: Sql14Store) -> None:
        """A real WSGIRequest for ``/boom/?amount=3&access_token=...``, logged as Django logs a 500."""
        django = pytest.importorskip("django")
        from django.conf import settings

        if not settings.configured:
            settings.configure(ALLOWED_HOSTS=["testserver"], DEBUG=False)
            django.setup()
        from django.test import RequestFactory
        from django.utils.log import log_response

        logging.getLogger().addHandler(CodeWakeHandler())
        request = RequestFactory().get(f"/boom/?amount=3&access_token={SECRET}")
        assert SECRET in repr(request)
        probe = RequestFactory().get(f"/wp-login.php?password={SECRET}")
        for req in (request, probe):
            response: Any = type("Response", (), {"status_code": 500, "_has_been_logged": False})()
            log_response("Internal Server Error: %s", req.get_full_path(), response=response, request=req)
        assert_filtered(db, store, count=2)


class TestBeforeRecord:
    """A user hook can change or drop an event before it is recorded."""

    def test_hook_changes_and_drops(self, db: Path, store: Sql14Store) -> None:
        """A hook that redacts one field and drops health checks."""

        def hook(event: PendingEvent) -> PendingEvent | None:
            data = dict(event.data)
            if data.get("path") == "/health":
                return None
            return event._replace(data=tuple((k, "[FILTERED]" if k == "card" else v) for k, v in event.data))

        Process().set_before_record(hook)
        Process().log({"path": "/health"})
        Process().log({"path": "/pay", "card": SECRET}, sync=True)
        assert_filtered(db, store, count=1)

    def test_failing_hook_drops_the_event(self, db: Path, store: Sql14Store) -> None:
        """A hook that raises lets nothing through unredacted."""

        def hook(event: PendingEvent) -> PendingEvent | None:
            raise RuntimeError("hook broke")

        Process().set_before_record(hook)
        Process().log({"card": SECRET})
        assert store.get_events_by_data([]) == []


class TestConfigurable:
    """The filters are configurable: more keys, patterns of one's own, value shapes off."""

    def test_patterns_and_keys(self) -> None:
        """An extra key fragment and an extra pattern."""
        policy = EventPolicy(secret_keys=("ssn",), secret_patterns=(r"\b\d{4}-\d{4}-\d{4}-\d{4}\b",))
        pairs = dict(
            policy.normalise({"user_ssn": "1", "note": "card 1234-5678-9012-3456 used", "password": "x"})
        )
        assert pairs == {"user_ssn": "[FILTERED]", "note": "card [FILTERED] used", "password": "x"}

    def test_value_shapes_off(self) -> None:
        """``scrub_values=False`` keeps text as given (keys are still filtered)."""
        policy = EventPolicy(scrub_values=False)
        pairs = dict(policy.normalise({"q": "password=x", "password": "y"}))
        assert pairs == {"q": "password=x", "password": "[FILTERED]"}

    def test_not_overeager(self) -> None:
        """Ordinary keys and prose stay as they are."""
        pairs = dict(
            EventPolicy().normalise(
                {"author": "a", "passenger": "p", "compass": "c", "note": "basic idea, a=b", "t": "12:30"}
            )
        )
        assert pairs == {
            "author": "a",
            "passenger": "p",
            "compass": "c",
            "note": "basic idea, a=b",
            "t": "12:30",
        }
