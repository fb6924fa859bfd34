"""RecordSites: a call site's fields normalised once give the same event data as the general way."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from code_wake import Process
from code_wake._bounded import MAX_ITEMS
from code_wake._doors import RecordSites, merged, record_fields
from code_wake.event import EventPolicy, NormalisedData
from code_wake.logging import CodeWakeHandler
from code_wake.testing import MemoryStore


def record(msg: object = "order %s", args: tuple[Any, ...] = (1,), **attributes: Any) -> logging.LogRecord:
    """A record as logger.warning makes it, with `attributes` set on it afterwards (extras too)."""
    made = logging.getLogger("shop.orders").makeRecord(
        "shop.orders", logging.WARNING, "/app/shop/orders.py", 42, msg, args, None, func="checkout"
    )
    made.__dict__.update(attributes)
    return made


def general(policy: EventPolicy, made: logging.LogRecord, extra: list[tuple[str, Any]]) -> tuple[Any, ...]:
    """What the handler stored before call sites were remembered."""
    fields = record_fields(made, made.getMessage(), made.msg)
    return policy.normalise(merged(fields, extra) if extra else fields)


def remembered(sites: RecordSites, policy: EventPolicy, made: logging.LogRecord, extra: list[Any]) -> Any:
    return sites.data(policy, made, made.getMessage(), extra)


class TestRecordSites:
    """Each call site's fields are normalised once per policy, and the result is what normalise gives."""

    @pytest.mark.parametrize(
        "extra",
        [
            [],
            [("customer", "c1")],
            [("db_password", "hunter2"), ("items", ["tea", 2]), ("note", None), ("total", 9.5)],
            [("logger", "mine"), ("level", 3)],
            [("url", "https://u:secret@host/"), ("x" * 300, "long key")],
        ],
    )
    def test_same_data_as_the_general_way(self, extra: list[tuple[str, Any]]) -> None:
        """First and later records of a site give exactly the general way's pairs."""
        policy, sites = EventPolicy(), RecordSites()
        for n in range(3):
            made = record(args=(n,), **dict(extra))
            data = remembered(sites, policy, made, extra)
            assert type(data) is NormalisedData
            assert tuple(data) == general(policy, made, extra)

    def test_long_and_secret_site_fields(self) -> None:
        """A template over the limit is cut once, and secrets in it are filtered, as the general way does."""
        policy, sites = EventPolicy(max_value_length=20), RecordSites()
        made = record("password=hunter2 " + "x" * 50 + " %s")
        for _ in range(2):
            assert tuple(remembered(sites, policy, made, [])) == general(policy, made, [])

    def test_a_new_policy_is_not_served_the_old_ones_pairs(self) -> None:
        """Another policy (other limits) normalises the site afresh."""
        sites, made = RecordSites(), record("a long template %s")
        remembered(sites, EventPolicy(), made, [])
        short = EventPolicy(max_value_length=5)
        assert tuple(remembered(sites, short, made, [])) == general(short, made, [])

    @pytest.mark.parametrize(
        "attributes",
        [
            {"name": None},
            {"msg": 42},
            {"levelname": type("Level", (str,), {})("WARNING")},
            {"lineno": True},
            {"funcName": type("Name", (str,), {})("checkout")},
        ],
    )
    def test_unusual_records_take_the_general_way(self, attributes: dict[str, Any]) -> None:
        """A value whose equal could normalise differently (a str subclass, True for 1) is not remembered."""
        policy, sites = EventPolicy(), RecordSites()
        remembered(sites, policy, record(), [])  # the plain site is known
        made = record(**attributes)
        made.args = () if "msg" in attributes else made.args
        assert sites.data(policy, made, "m", []) is None

    def test_too_many_items_take_the_general_way(self) -> None:
        """Data over MAX_ITEMS is cut by the general way, with its marker item."""
        extra = [(f"k{n}", "v") for n in range(MAX_ITEMS)]
        assert remembered(RecordSites(), EventPolicy(), record(), extra) is None

    def test_sites_are_bounded(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Past the bound, records of new sites take the general way; known ones stay remembered."""
        monkeypatch.setattr("code_wake._doors._SITES_MAX", 2)
        policy, sites = EventPolicy(), RecordSites()
        results = [remembered(sites, policy, record(f"template {n} %s"), []) for n in range(3)]
        assert [r is None for r in results] == [False, False, True]
        assert remembered(sites, policy, record("template 0 %s"), []) is not None

    def test_stored_event_data_is_a_plain_tuple(self) -> None:
        """The handler's events carry plain tuples: the marker never leaves the policy."""
        store = MemoryStore()
        Process(store=store)
        logger = logging.getLogger("sites")
        logger.addHandler(CodeWakeHandler())
        logger.propagate = False
        try:
            logger.warning("order %s", 1, extra={"customer": "c1"})
            logger.warning("order %s", 2, extra={"customer": "c1"})
        finally:
            logger.handlers.clear()
        assert [type(e.data) for e in store.events] == [tuple, tuple]
        assert [e.data_dict()["message"] for e in store.events] == ["order 1", "order 2"]
