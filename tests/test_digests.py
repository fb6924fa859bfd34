"""The writer's event digests: pycodewake's formula (`data_digest`), the same bytes with items remembered."""

from __future__ import annotations

import pytest

from code_wake.event import data_digest
from code_wake_sql14_store._digests import DataDigests

CASES = [
    (),
    (("a", "1"),),
    (("a", None), ("a", "")),
    (("clé", "värde ✓"), ("k", "\udcff lone surrogate")),
    (("logger", "shop"), ("message", "order 1"), ("message", "order 2")),
]


@pytest.mark.parametrize("data", CASES)
def test_same_digest_as_the_formula(data: tuple[tuple[str, str | None], ...]) -> None:
    digests = DataDigests()
    assert digests.digest(data) == data_digest(data)
    assert digests.digest(data) == data_digest(data)  # from the remembered items


def test_remembering_is_bounded_and_stays_right() -> None:
    digests = DataDigests(remembered=3)
    for n in range(20):
        data = (("logger", "shop"), ("message", f"order {n}"), ("n", str(n % 2)))
        assert digests.digest(data) == data_digest(data)
        assert len(digests._codes) <= 3
