"""The heavy-hitter table keeps its documented guarantees, alone and merged."""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nfkit.logs.topk import HeavyHitters

# Skewed streams over a small alphabet, so that tables overflow and keys repeat.
keys = st.integers(0, 40).map(lambda n: f"198.51.100.{n * n % 41}")
streams = st.lists(st.tuples(keys, st.integers(1, 5)), max_size=300)
PROPERTY = settings(max_examples=200, deadline=None, derandomize=True)


def feed(pairs: list[tuple[str, int]], capacity: int) -> HeavyHitters[str]:
    table: HeavyHitters[str] = HeavyHitters(capacity)
    for key, count in pairs:
        table.add(key, count)
    return table


def check(table: HeavyHitters[str], truth: Counter[str], bound: float) -> None:
    """The guarantees of the module docstring, against the true counts."""
    assert table.total == sum(truth.values())
    assert len(table) <= table.capacity
    assert table.floor <= bound
    for key, true in truth.items():
        if key in table:
            assert table.count(key) - table.error(key) <= true <= table.count(key)
            if table.error(key) == 0:
                assert table.count(key) == true and table.is_exact(key)
        else:
            assert true <= table.floor
    for key in table.guaranteed():
        assert truth[key] >= table.count(key) - table.error(key) > table.floor


@PROPERTY
@given(streams, st.integers(1, 12))
def test_space_saving_bounds(pairs: list[tuple[str, int]], capacity: int) -> None:
    truth: Counter[str] = Counter()
    for key, count in pairs:
        truth[key] += count
    table = feed(pairs, capacity)
    check(table, truth, table.total / capacity)


@PROPERTY
@given(streams, streams, st.integers(1, 12))
def test_merge_keeps_the_bounds(left: list[tuple[str, int]], right: list[tuple[str, int]],
                                capacity: int) -> None:  # fmt: skip
    truth: Counter[str] = Counter()
    for key, count in left + right:
        truth[key] += count
    merged = feed(left, capacity).merge(feed(right, capacity))
    check(merged, truth, 2 * merged.total / capacity)


def test_exact_while_it_fits() -> None:
    pairs = [("a", 3), ("b", 1), ("a", 2), ("c", 7)]
    table = feed(pairs, 3)
    assert [(k, c, e) for k, c, e in table.items()] == [("c", 7, 0), ("a", 5, 0), ("b", 1, 0)]
    assert all(table.is_exact(k) for k in "abc") and table.floor == 0
    assert table.merge(feed([("a", 1)], 3)).count("a") == 6


def test_eviction_returns_the_lightest_key() -> None:
    table: HeavyHitters[str] = HeavyHitters(2)
    assert table.add("heavy", 10) is None
    assert table.add("light") is None
    assert table.add("new") == "light"
    assert table.floor == 1 and table.count("new") == 2 and table.error("new") == 1
    assert not table.is_exact("new") and table.is_exact("heavy")
    assert table.guaranteed() == ["heavy"]


def test_heavy_hitters_survive_a_long_tail() -> None:
    """5,000 one-packet sources and three scanners: the scanners stay, exactly counted."""
    table: HeavyHitters[str] = HeavyHitters(100)
    for n in range(5000):
        table.add(f"tail-{n}")
        if n % 10 == 0:
            for scanner in ("s1", "s2", "s3"):
                table.add(scanner, 2)
    assert set(table.guaranteed()) == {"s1", "s2", "s3"}
    assert all(table.count(s) - table.error(s) <= 1000 <= table.count(s) for s in ("s1", "s2"))
    assert table.floor <= table.total / 100


def test_round_trip_and_errors() -> None:
    table = feed([("x", 4), ("y", 1), ("z", 2), ("w", 9)], 3)
    again = HeavyHitters.from_dict(table.to_dict())
    assert again.to_dict() == table.to_dict()
    assert again.add("v") == table.add("v")
    with pytest.raises(ValueError):
        HeavyHitters(0)
    with pytest.raises(ValueError):
        table.add("x", 0)
