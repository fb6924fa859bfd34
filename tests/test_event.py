"""The pending event: data normalisation, truncation, secret filtering, digests."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from code_wake.event import FILTERED, EventPolicy, PendingEvent, data_digest
from code_wake.stack_trace import bencode


class Unrepresentable:
    """An object whose repr and str both raise."""

    def __repr__(self) -> str:
        raise RuntimeError("no repr for you")

    __str__ = __repr__


class TestNormalise:
    policy = EventPolicy()

    def test_dict_becomes_pairs_in_order(self) -> None:
        """A mapping's items become (key, value) pairs in insertion order."""
        assert self.policy.normalise({"b": "1", "a": "2"}) == (("b", "1"), ("a", "2"))

    def test_pairs_keep_repeated_keys(self) -> None:
        """Pairs may repeat a key, and every pair is kept."""
        assert self.policy.normalise([("k", "1"), ("k", "2")]) == (("k", "1"), ("k", "2"))

    def test_two_character_keys_are_not_split(self) -> None:
        """A dict with two-character keys stays a dict (the original stored pairs of characters)."""
        assert self.policy.normalise({"ab": "x", "cd": "y"}) == (("ab", "x"), ("cd", "y"))

    def test_none_stays_null(self) -> None:
        """None is stored as a null value, not as the text 'None'."""
        assert self.policy.normalise({"k": None}) == (("k", None),)

    def test_no_data(self) -> None:
        """No data gives no pairs."""
        assert self.policy.normalise(None) == ()
        assert self.policy.normalise({}) == ()

    @pytest.mark.parametrize(
        ("value", "stored"),
        [
            ("text", "text"),
            (42, "42"),
            (1.5, "1.5"),
            (True, "true"),
            (False, "false"),
            ({"a": [1, None]}, '{"a":[1,null]}'),
            ([1, "two"], '[1,"two"]'),
            ((1, 2), "[1,2]"),
            (b"\x00\xff", "b'\\x00\\xff'"),
            ({1, 2}, "{1, 2}"),
            ({"nested": {1, 2}}, '{"nested":"{1, 2}"}'),
            (float("nan"), "NaN"),
        ],
    )
    def test_values_become_text(self, value: Any, stored: str) -> None:
        """Strings stay as they are; the rest become compact JSON, else their repr."""
        assert self.policy.normalise({"k": value}) == (("k", stored),)

    def test_repr_that_raises(self) -> None:
        """An object whose repr raises is stored as a placeholder naming its type."""
        assert self.policy.normalise({"k": Unrepresentable()}) == (
            ("k", "<unrepresentable Unrepresentable object>"),
        )

    def test_non_string_keys(self) -> None:
        """Keys become strings, even when their str raises."""
        pairs = self.policy.normalise({1: "a", None: "b", Unrepresentable(): "c"})
        assert [k for k, _ in pairs] == ["1", "None", "<unrepresentable Unrepresentable object>"]

    def test_items_that_are_not_pairs_are_kept(self) -> None:
        """An iterable item that is not a pair is kept whole under '_item', not lost."""
        assert self.policy.normalise(["solo", ("k", "v"), ("a", "b", "c")]) == (
            ("_item", "solo"),
            ("k", "v"),
            ("_item", '["a","b","c"]'),
        )

    def test_nul_is_escaped(self) -> None:
        """NUL characters (refused by PostgreSQL) become a visible escape on every backend."""
        assert self.policy.normalise({"k": "a\x00b"}) == (("k", "a\\x00b"),)

    def test_lone_surrogate_is_escaped(self) -> None:
        """A lone surrogate (unencodable in UTF-8) becomes a visible escape."""
        ((_, value),) = self.policy.normalise({"k": "x\udc80y"})
        assert value == "x\\udc80y"
        value.encode("utf-8")

    def test_other_unicode_is_untouched(self) -> None:
        """Valid non-ASCII text, emoji included, is stored as it is."""
        assert self.policy.normalise({"k": "naïve 🐍"}) == (("k", "naïve 🐍"),)


class TestTruncation:
    def test_long_value_is_truncated_with_marker(self) -> None:
        """A value past the limit keeps the limit's worth and says how much was cut."""
        policy = EventPolicy(max_value_length=10)
        ((_, value),) = policy.normalise({"k": "x" * 25})
        assert value == "x" * 10 + "...[truncated 15 chars]"

    def test_one_megabyte_value(self) -> None:
        """A 1 MB string is truncated at the default limit, not refused."""
        ((_, value),) = EventPolicy().normalise({"k": "y" * 1_000_000})
        assert value is not None
        assert value.startswith("y" * 8192)
        assert value.endswith(f"...[truncated {1_000_000 - 8192} chars]")

    def test_value_at_the_limit_is_kept_whole(self) -> None:
        """A value exactly at the limit is not marked."""
        assert EventPolicy(max_value_length=5).normalise({"k": "12345"}) == (("k", "12345"),)

    def test_long_key_is_truncated(self) -> None:
        """Keys have their own, shorter limit."""
        ((key, _),) = EventPolicy().normalise({"k" * 300: "v"})
        assert key.startswith("k" * 200)
        assert key.endswith("...[truncated 100 chars]")

    def test_exception_message_is_truncated(self) -> None:
        """An exception's message obeys the value limit too."""
        event = EventPolicy(max_value_length=4).build(1, exc=ValueError("abcdefgh"))
        assert event.exc_message == "abcd...[truncated 4 chars]"


class TestSecrets:
    policy = EventPolicy()

    @pytest.mark.parametrize(
        "key",
        [
            "password",
            "db_password",
            "DB_PASSWORD",
            "X-Api-Key",
            "apiKey",
            "auth_token",
            "Authorization",
            "SessionID",
            "client_secret",
            "set-cookie",
            "aws_access_key_id",
            "privateKey",
        ],
    )
    def test_secret_looking_keys_are_filtered(self, key: str) -> None:
        """Keys containing a secret fragment, whatever their case and separators, are filtered."""
        assert self.policy.normalise({key: "hunter2"}) == ((key, FILTERED),)

    @pytest.mark.parametrize("key", ["user", "customer", "path", "author", "keyboard"])
    def test_ordinary_keys_pass(self, key: str) -> None:
        """Ordinary keys keep their values."""
        assert self.policy.normalise({key: "v"}) == ((key, "v"),)

    def test_secret_list_is_configurable(self) -> None:
        """A configured list replaces the default one."""
        policy = EventPolicy(secret_keys=("customer",))
        assert policy.normalise({"customer_id": "c1", "password": "p"}) == (
            ("customer_id", FILTERED),
            ("password", "p"),
        )

    def test_none_under_a_secret_key_is_filtered_too(self) -> None:
        """Even a null secret is replaced, so a filtered key never looks unset."""
        assert self.policy.normalise({"token": None}) == (("token", FILTERED),)


class TestBuild:
    def test_builds_an_immutable_pending_event(self) -> None:
        """build gives a frozen value with the normalised data and the time given."""
        event = EventPolicy().build(7, {"k": 1}, when_ts=123.5)
        assert event == PendingEvent(process=7, when_ts=123.5, data=(("k", "1"),))
        with pytest.raises(AttributeError):
            event.when_ts = 1.0  # type: ignore[misc]

    def test_exception_type_and_message(self) -> None:
        """An exception's type and message are recorded."""
        event = EventPolicy().build(1, exc=KeyError("missing"))
        assert (event.exc_type, event.exc_message) == ("KeyError", "'missing'")

    def test_exception_without_stack_trace(self) -> None:
        """inc_st=False records the exception's type but no frames."""
        assert EventPolicy().build(1, exc=ValueError("x"), inc_st=False).frames is None

    def test_caller_trace_holds_no_live_objects(self) -> None:
        """Captured frames are plain tuples of strings and ints, never frame objects."""
        event = EventPolicy().build(1, inc_st=True)
        assert event.frames
        for frame in event.frames:
            assert {type(v) for v in frame} <= {str, int, type(None)}


class TestDataDigest:
    def test_matches_the_original_formula(self) -> None:
        """The digest is sha256 over the bencoded [[key, val], ...] list, as pycodewake computed it."""
        data = (("event", "order"), ("customer", "c0"))
        assert (
            data_digest(data)
            == hashlib.sha256(b"l" + b"l5:event5:ordere" + b"l8:customer2:c0e" + b"e").digest()
        )
        assert data_digest(data) == hashlib.sha256(bencode([list(p) for p in data])).digest()

    def test_none_differs_from_empty_string(self) -> None:
        """A null value and an empty string digest differently."""
        assert data_digest((("k", None),)) != data_digest((("k", ""),))

    def test_no_data_has_no_digest(self) -> None:
        """An event without data has a null digest, as in the original."""
        assert data_digest(()) is None
