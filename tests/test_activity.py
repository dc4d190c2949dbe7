"""The compact activity store (:mod:`nfkit.logs.activity`) and the scan search over it.

The store is checked against plain Python sets; :func:`nfkit.logs.findings.scans` is checked
against a deliberately naive reference written here (every window rebuilt from scratch), fed
by hypothesis with random activity put straight into ``summary.activity``.
"""

from __future__ import annotations

import base64
import bisect
import ipaddress
import json
import random
from array import array
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nfkit.errors import SummaryError
from nfkit.logs import findings, native
from nfkit.logs.activity import MAX_DESTINATIONS, MAX_PORTS, MAX_SLOTS, Activity
from nfkit.logs.aggregate import Summary
from nfkit.logs.findings import SummaryConfig, iso

Triple = tuple[str, int, str, str]  # (source, slot, destination, port key)

SOURCES = ("198.51.100.7", "198.51.100.20", "2001:db8::66")
# 10.0.0.2 vs 10.0.0.10 and tcp/9 vs tcp/22 sort differently as text and naturally.
DESTINATIONS = ("10.0.0.1", "10.0.0.2", "10.0.0.10", "10.0.0.33", "192.0.2.1", "2001:db8::5")
PORT_KEYS = (
    "tcp/22",
    "tcp/80",
    "tcp/443",
    "tcp/9",
    "tcp/8080",
    "udp/53",
    "udp/123",
    "icmp/8",
    "icmpv6/128",
    "sctp/7",
    "udplite/5",
    "dccp/9",
)
#: Protocols whose port keys count as ports of a vertical scan (written out independently).
PORT_PROTOCOLS = frozenset({"tcp", "udp", "udplite", "sctp", "dccp"})
LEVELS = (2, 3, 4, 5, 6)
SLOT = 300

sources = st.sampled_from(SOURCES)
slots = st.integers(min_value=0, max_value=12)
destinations = st.sampled_from(DESTINATIONS)
port_keys = st.sampled_from(PORT_KEYS) | st.builds("tcp/{}".format, st.integers(1, 30))
triples = st.tuples(sources, slots, destinations, port_keys)
triple_lists = st.lists(triples, max_size=120)

FAST = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# -- helpers ----------------------------------------------------------------------------------
def fill(activity: Activity, items: Iterable[Triple]) -> Activity:
    for source, slot, dst, portkey in items:
        activity.add(source, slot, dst, portkey)
    return activity


def expected_by_slot(items: Iterable[Triple]) -> dict[str, dict[int, set[tuple[str, str]]]]:
    out: dict[str, dict[int, set[tuple[str, str]]]] = {}
    for source, slot, dst, portkey in items:
        out.setdefault(source, {}).setdefault(slot, set()).add((dst, portkey))
    return out


def contents(activity: Activity) -> dict[str, dict[int, set[tuple[str, str]]]]:
    return {source: activity.by_slot(source) for source in activity}


def config(window_seconds: int = 900) -> SummaryConfig:
    return SummaryConfig(
        port_levels=LEVELS,
        host_levels=LEVELS,
        slot_seconds=SLOT,
        window_seconds=window_seconds,
    )


def summary_of(items: Iterable[Triple], window_seconds: int = 900) -> Summary:
    summary = Summary(config(window_seconds))
    fill(summary.activity, items)
    return summary


def sort_key(text: str) -> tuple[Any, ...]:
    """Port keys by protocol then number; addresses by version then value."""
    if "/" in text:
        proto, _, number = text.partition("/")
        return (0, proto, int(number))
    address = ipaddress.ip_address(text)
    return (1, address.version, int(address))


Scan = tuple[str, str, str, int, int, str | None, tuple[str, ...]]


def reference_scans(items: Iterable[Triple], conf: SummaryConfig) -> list[Scan]:
    """Straightforward scan search: every window rebuilt from its slots.

    ``(source, kind, target, distinct, level, window start, sample)``, level >= 1 only, in the
    order :func:`findings.scans` promises for sources of unknown origin.
    """
    span = conf.window_seconds // conf.slot_seconds
    found: list[Scan] = []
    for source, per_slot in expected_by_slot(items).items():
        best: dict[tuple[str, str], tuple[int, int, frozenset[str]]] = {}
        for start in sorted(per_slot):
            window: set[tuple[str, str]] = set()
            for slot, pairs in per_slot.items():
                if start <= slot < start + span:
                    window |= pairs
            groups: dict[tuple[str, str], set[str]] = {}
            for dst, portkey in window:
                groups.setdefault(("horizontal", portkey), set()).add(dst)
                if portkey.split("/", 1)[0] in PORT_PROTOCOLS:
                    groups.setdefault(("vertical", dst), set()).add(portkey)
            for key, members in groups.items():
                if key not in best or len(members) > best[key][0]:
                    best[key] = (len(members), start, frozenset(members))
        for (kind, target), (count, start, chosen) in best.items():
            levels = conf.port_levels if kind == "vertical" else conf.host_levels
            level = bisect.bisect_right(levels, count)
            if level == 0:
                continue
            when = iso(start * conf.slot_seconds) if start else None
            sample = tuple(sorted(chosen, key=sort_key)[:20])
            found.append((source, kind, target, count, level, when, sample))
    found.sort(key=lambda s: (-s[4], -s[3], s[0], s[1], sort_key(s[2])))
    return found


def as_tuples(scans: list[dict[str, Any]]) -> list[Scan]:
    return [
        (
            s["source"],
            s["kind"],
            s["target"],
            s["distinct"],
            s["level"],
            s["window_start"],
            tuple(s["sample"]),
        )
        for s in scans
    ]


# -- the store --------------------------------------------------------------------------------
@FAST
@given(triple_lists)
def test_add_then_by_slot_round_trip(items: list[Triple]) -> None:
    activity = fill(Activity(), items)
    expected = expected_by_slot(items)
    assert contents(activity) == expected
    assert set(activity) == set(expected) == activity.keys()
    assert len(activity) == len(expected)
    for source in SOURCES:
        assert (source in activity) == (source in expected)
    distinct = set(items)
    assert activity.entry_count() == len(distinct)
    for source in activity:
        raw = list(activity.raw(source))
        assert raw == sorted(set(raw)), "raw() must be sorted and distinct"
        decoded = set()
        for key in raw:
            slot, dst, port = activity.decode_key(key)
            decoded.add((source, slot, activity.destination(dst), activity.portkey(port)))
        assert decoded == {t for t in distinct if t[0] == source}


def test_duplicates_collapse() -> None:
    activity = Activity()
    for _ in range(50):
        activity.add("198.51.100.7", 3, "10.0.0.1", "tcp/22")
    activity.add("198.51.100.7", 3, "10.0.0.1", "udp/22")
    activity.add("198.51.100.7", 4, "10.0.0.1", "tcp/22")
    activity.add("198.51.100.8", 3, "10.0.0.1", "tcp/22")
    assert activity.entry_count() == 4
    assert len(activity.raw("198.51.100.7")) == 3
    assert activity.by_slot("198.51.100.7") == {
        3: {("10.0.0.1", "tcp/22"), ("10.0.0.1", "udp/22")},
        4: {("10.0.0.1", "tcp/22")},
    }
    # The same key computed twice is the same integer.
    assert activity.key(3, "10.0.0.1", "tcp/22") == activity.key(3, "10.0.0.1", "tcp/22")
    assert activity.key(3, "10.0.0.1", "tcp/22") != activity.key(4, "10.0.0.1", "tcp/22")


def test_compaction_keeps_the_set_exact() -> None:
    import random

    rng = random.Random(20240611)
    activity = Activity()
    seen: set[Triple] = set()
    source = "198.51.100.7"
    for step in range(5000):
        triple = (
            source,
            rng.randrange(40),
            f"10.0.{rng.randrange(3)}.{rng.randrange(8)}",
            f"tcp/{rng.randrange(12)}",
        )
        seen.add(triple)
        activity.add(*triple)
        # Sorted and de-duplicated whenever it has doubled: never more than 2x (plus slack).
        assert len(activity._arrays[source]) <= 2 * len(seen) + 16
        if step % 997 == 0:
            assert contents(activity) == expected_by_slot(seen)
    assert contents(activity) == expected_by_slot(seen)
    # Nothing but repeats: the array must still stay within twice the distinct triples.
    old = sorted(seen)
    for _ in range(3 * len(old)):
        activity.add(*rng.choice(old))
        assert len(activity._arrays[source]) <= 2 * len(seen) + 16
    assert contents(activity) == expected_by_slot(seen)
    assert activity.entry_count() == len(seen)
    # Batches through extend() too, each batch full of repeats of earlier keys.
    for _ in range(30):
        batch = [
            (source, rng.randrange(50), f"10.0.0.{rng.randrange(9)}", f"udp/{rng.randrange(9)}")
            for _ in range(200)
        ]
        seen.update(batch)
        activity.extend(source, [activity.key(s, d, p) for _, s, d, p in batch])
        assert contents(activity) == expected_by_slot(seen)
    assert activity.entry_count() == len(seen)
    assert len(activity.raw(source)) == len(seen)


@FAST
@given(triple_lists, triple_lists, st.lists(destinations, max_size=4))
def test_merge_of_differently_numbered_stores(
    first: list[Triple], second: list[Triple], seed: list[str]
) -> None:
    mine = fill(Activity(), first)
    theirs = Activity()
    # Number the other store's tables in a different order (and with entries it never uses).
    for dst in seed:
        theirs.dst_bits(dst)
    theirs.port_bits("udp/9999")
    theirs.slot_bits(999)
    fill(theirs, reversed(second))
    before = contents(theirs)
    mine.merge(theirs)
    whole = fill(Activity(), first + second)
    assert mine == whole
    assert contents(mine) == expected_by_slot(first + second)
    assert mine.entry_count() == len(set(first + second))
    assert mine.to_json(SLOT) == whole.to_json(SLOT)
    assert contents(theirs) == before, "merge must not change its argument"


@FAST
@given(triple_lists)
def test_merge_into_empty_and_with_itself(items: list[Triple]) -> None:
    activity = fill(Activity(), items)
    empty = Activity()
    empty.merge(activity)
    assert empty == activity
    activity.merge(activity)
    assert contents(activity) == expected_by_slot(items)
    assert activity.entry_count() == len(set(items))


@FAST
@given(triple_lists, st.sampled_from([1, 60, 300, 3600]))
def test_json_round_trip(items: list[Triple], slot_seconds: int) -> None:
    activity = fill(Activity(), items)
    data = activity.to_json(slot_seconds)
    again = Activity.from_json(json.loads(json.dumps(data)), slot_seconds)
    assert again == activity
    assert activity == again
    assert contents(again) == expected_by_slot(items)
    assert again.to_json(slot_seconds) == data
    assert data["format"] == 2
    assert list(data["sources"]) == sorted(data["sources"])
    for name in ("slots", "destinations", "ports"):
        assert data[name] == sorted(set(data[name]))
    assert all(start % slot_seconds == 0 for start in data["slots"])
    # the first form (lists per slot) is still read, for summaries stored before
    old = json_lists(activity, slot_seconds)
    assert Activity.from_json(json.loads(json.dumps(old)), slot_seconds) == activity


def json_lists(activity: Activity, slot_seconds: int) -> dict[str, list[list[Any]]]:
    """The first JSON form of activity, which nfkit wrote before the compact one and still
    reads: ``{source: [[slot start, [[destination, port], ...]], ...]}``."""
    return {
        source: [
            [slot * slot_seconds, sorted([d, p] for d, p in touched)]
            for slot, touched in sorted(activity.by_slot(source).items())
        ]
        for source in sorted(activity)
    }


def test_json_shape() -> None:
    activity = Activity()
    activity.add("b", 2, "10.0.0.2", "tcp/22")
    activity.add("b", 1, "10.0.0.9", "udp/53")
    activity.add("b", 1, "10.0.0.1", "udp/53")
    activity.add("a", 7, "10.0.0.1", "icmp/8")
    assert json_lists(activity, 300) == {
        "a": [[2100, [["10.0.0.1", "icmp/8"]]]],
        "b": [
            [300, [["10.0.0.1", "udp/53"], ["10.0.0.9", "udp/53"]]],
            [600, [["10.0.0.2", "tcp/22"]]],
        ],
    }
    data = activity.to_json(300)
    assert {k: v for k, v in data.items() if k != "sources"} == {
        "format": 2,
        "slots": [300, 600, 2100],
        "destinations": ["10.0.0.1", "10.0.0.2", "10.0.0.9"],
        "ports": ["icmp/8", "tcp/22", "udp/53"],
    }
    # "a": slot 2 (2100), destination 0, port 0 -> one key, little-endian
    assert base64.b64decode(data["sources"]["a"]) == (2 << 44).to_bytes(8, "little")
    assert len(base64.b64decode(data["sources"]["b"])) == 3 * 8


def test_equality() -> None:
    one = fill(Activity(), [("a", 1, "10.0.0.1", "tcp/22"), ("a", 2, "10.0.0.2", "tcp/23")])
    two = fill(Activity(), [("a", 2, "10.0.0.2", "tcp/23"), ("a", 1, "10.0.0.1", "tcp/22")])
    assert one == two
    assert one != fill(Activity(), [("a", 1, "10.0.0.1", "tcp/22")])
    assert one != fill(Activity(), [("b", 1, "10.0.0.1", "tcp/22"), ("b", 2, "10.0.0.2", "tcp/23")])
    assert one != fill(Activity(), [("a", 1, "10.0.0.1", "tcp/22"), ("a", 3, "10.0.0.2", "tcp/23")])
    assert one.__eq__("not an activity") is NotImplemented
    assert Activity() == Activity()


def test_equality_with_an_empty_source() -> None:
    hollow = Activity.from_json({"198.51.100.7": []}, SLOT)
    assert hollow.keys() == set()
    assert Activity() == hollow  # passes: keys() agree and Activity() has no sources to compare
    assert hollow == Activity()  # once raised KeyError: empty sources are no longer kept
    assert hollow.to_json(SLOT)["sources"] == {}
    assert "198.51.100.7" not in hollow and len(hollow) == 0


def test_discard() -> None:
    items = [
        ("198.51.100.7", 1, "10.0.0.1", "tcp/22"),
        ("198.51.100.7", 2, "10.0.0.2", "tcp/22"),
        ("198.51.100.20", 1, "10.0.0.1", "tcp/22"),
    ]
    activity = fill(Activity(), items)
    activity.discard("198.51.100.7")
    activity.discard("192.0.2.200")  # unknown: no error
    assert "198.51.100.7" not in activity
    assert list(activity) == ["198.51.100.20"]
    assert len(activity) == 1
    assert activity.entry_count() == 1
    assert activity == fill(Activity(), items[2:])
    assert "198.51.100.7" not in activity.to_json(SLOT)
    # Re-adding after a discard starts from nothing (no stale compaction state).
    for _ in range(40):
        activity.add("198.51.100.7", 5, "10.0.0.5", "udp/53")
    assert activity.by_slot("198.51.100.7") == {5: {("10.0.0.5", "udp/53")}}
    assert activity.entry_count() == 2


@FAST
@given(triple_lists)
def test_spread(items: list[Triple]) -> None:
    activity = fill(Activity(), items)
    for source in activity:
        mine = [t for t in items if t[0] == source]
        assert activity.spread(source) == (len({t[3] for t in mine}), len({t[2] for t in mine}))


@FAST
@given(triple_lists)
def test_numbered_slots_agree_with_by_slot(items: list[Triple]) -> None:
    activity = fill(Activity(), items)
    for source in activity:
        numbered = activity.numbered_slots(source)
        by_slot = activity.by_slot(source)
        assert set(numbered) == set(by_slot)
        for slot, pairs in numbered.items():
            assert len(pairs) == len(set(pairs)), "pairs must be distinct"
            named = {(activity.destination(d), activity.portkey(p)) for d, p in pairs}
            assert named == by_slot[slot]


def test_limits_are_enforced() -> None:
    activity = Activity()
    activity._dsts.limit = 3
    for n in range(3):
        activity.add("s", 1, f"10.0.0.{n}", "tcp/22")
    activity.add("s", 2, "10.0.0.0", "tcp/23")  # a known destination is fine
    before = contents(activity)
    with pytest.raises(SummaryError, match="destinations"):
        activity.add("s", 1, "10.0.0.3", "tcp/22")
    assert contents(activity) == before

    ports = Activity()
    ports._ports.limit = 2
    ports.add("s", 1, "10.0.0.1", "tcp/1")
    ports.add("s", 1, "10.0.0.1", "tcp/2")
    with pytest.raises(SummaryError, match="port keys"):
        ports.add("s", 1, "10.0.0.1", "tcp/3")

    times = Activity()
    times._slots.limit = 2
    times.add("s", 1, "10.0.0.1", "tcp/1")
    times.add("s", 2, "10.0.0.1", "tcp/1")
    with pytest.raises(SummaryError, match="time slots"):
        times.add("s", 3, "10.0.0.1", "tcp/1")

    # Merging numbers the other store's values through the same tables.
    small = Activity()
    small._dsts.limit = 3
    with pytest.raises(SummaryError):
        small.merge(fill(Activity(), [("s", 1, f"10.0.0.{n}", "tcp/22") for n in range(4)]))
    assert issubclass(SummaryError, ValueError)


def test_key_layout_fills_64_bits() -> None:
    assert MAX_SLOTS * MAX_DESTINATIONS * MAX_PORTS == 1 << 64
    assert MAX_SLOTS >= 105_120  # a year of 5-minute slots


# -- the scan search --------------------------------------------------------------------------
#: The search runs in C when the native scanner is built, else in Python: both are checked.
ENGINES = ("native", "pure")


@contextmanager
def engine(name: str) -> Iterator[None]:
    """Run the block with the native library (skipped when it is not built) or without it."""
    saved = native._LIB
    if name == "native" and saved is None:
        pytest.skip("the native scanner is not built")
    if name == "pure":
        native._LIB = None
    try:
        yield
    finally:
        native._LIB = saved


def check_scans(
    items: list[Triple], window_seconds: int = 900, engine_name: str = "native"
) -> list[dict[str, Any]]:
    with engine(engine_name):
        summary = summary_of(items, window_seconds)
        found = findings.scans(summary)
    assert as_tuples(found) == reference_scans(items, summary.config)
    for scan in found:
        assert scan["origin"] == "unknown"
        assert scan["mac"] is None
        assert scan["window_seconds"] == window_seconds
        assert len(scan["sample"]) == min(20, scan["distinct"])
    return found


@pytest.mark.parametrize("engine_name", ENGINES)
@FAST
@given(items=triple_lists)
def test_scans_match_the_reference(items: list[Triple], engine_name: str) -> None:
    check_scans(items, 900, engine_name)


@pytest.mark.parametrize("engine_name", ENGINES)
@FAST
@given(items=triple_lists, window_seconds=st.sampled_from([300, 600, 1200, 3600]))
def test_scans_match_the_reference_for_other_windows(
    items: list[Triple], window_seconds: int, engine_name: str
) -> None:
    check_scans(items, window_seconds, engine_name)


def test_native_and_pure_scans_agree_on_a_big_store() -> None:
    """Many sources, several hundred slots, scans of every level: C and Python agree."""
    rng = random.Random(7)
    items: list[Triple] = []
    for number in range(400):
        source = f"203.0.113.{number % 250}" if number < 250 else f"2001:db8::{number:x}"
        for _ in range(rng.choice((1, 5, 40, 300))):
            items.append(
                (
                    source,
                    rng.randrange(600),
                    rng.choice(DESTINATIONS),
                    f"{rng.choice(('tcp', 'udp', 'icmp'))}/{rng.randrange(1, 400)}",
                )
            )
    found = {name: check_scans(items, 3600, name) for name in ENGINES}
    assert found["native"] == found["pure"]
    assert {scan["level"] for scan in found["native"]} >= {1, 2}


@FAST
@given(
    st.lists(
        st.tuples(
            st.just("198.51.100.7"),
            st.integers(1, 8),
            st.sampled_from(("10.0.0.1", "10.0.0.2")),
            st.builds("tcp/{}".format, st.integers(1, 60)),
        ),
        min_size=15,
        max_size=150,
    )
)
def test_scans_match_the_reference_for_wide_scans(items: list[Triple]) -> None:
    # Many ports on few hosts: distinct counts past 20 (sample truncation) and past the levels.
    check_scans(items, 900)


def test_scans_known_answer() -> None:
    source = "203.0.113.5"
    items: list[Triple] = []
    # Slot 10: two ports; slot 11: three more; slot 13: four more (window of 3 slots).
    items += [(source, 10, "10.0.0.1", f"tcp/{p}") for p in (1, 2)]
    items += [(source, 11, "10.0.0.1", f"tcp/{p}") for p in (3, 4, 5)]
    items += [(source, 13, "10.0.0.1", f"tcp/{p}") for p in (6, 7, 8, 9)]
    # icmp never makes a vertical scan, but it does make a horizontal sweep.
    items += [(source, 20, f"10.0.0.{h}", "icmp/8") for h in (2, 10, 3)]
    items += [(source, 20, "10.0.0.1", "icmp/8")]
    found = check_scans(items, 900)
    by_target = {(s["kind"], s["target"]): s for s in found}
    vertical = by_target["vertical", "10.0.0.1"]
    # Windows [10,13) -> 5 ports, [11,14) -> 7 ports, [13,16) -> 4 ports.
    assert vertical["distinct"] == 7
    assert vertical["window_start"] == iso(11 * SLOT)
    assert vertical["sample"] == ["tcp/3", "tcp/4", "tcp/5", "tcp/6", "tcp/7", "tcp/8", "tcp/9"]
    assert vertical["level"] == 5
    sweep = by_target["horizontal", "icmp/8"]
    assert sweep["distinct"] == 4
    assert sweep["sample"] == ["10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.10"]
    assert sweep["level"] == 3
    assert sweep["window_start"] == iso(20 * SLOT)
    assert ("vertical", "10.0.0.2") not in by_target


def test_scans_first_window_wins_and_slot_zero_has_no_start() -> None:
    source = "203.0.113.5"
    items: list[Triple] = [(source, 0, "10.0.0.1", f"udp/{p}") for p in range(1, 4)]
    items += [(source, 7, "10.0.0.1", f"udp/{p}") for p in range(4, 7)]
    found = check_scans(items, 900)
    (vertical,) = [s for s in found if s["kind"] == "vertical"]
    assert vertical["distinct"] == 3
    assert vertical["window_start"] is None  # slot 0 (records without a timestamp)
    assert vertical["sample"] == ["udp/1", "udp/2", "udp/3"]


def test_scans_sample_is_first_twenty_in_natural_order() -> None:
    source = "203.0.113.5"
    items: list[Triple] = [(source, 4, "10.0.0.1", f"tcp/{p}") for p in range(30, 0, -1)]
    found = check_scans(items, 900)
    (vertical,) = [s for s in found if s["kind"] == "vertical"]
    assert vertical["distinct"] == 30
    assert vertical["sample"] == [f"tcp/{p}" for p in range(1, 21)]


def test_scans_below_levels_are_not_reported() -> None:
    source = "203.0.113.5"
    items: list[Triple] = [(source, 1, "10.0.0.1", "tcp/22"), (source, 9, "10.0.0.1", "tcp/23")]
    assert check_scans(items, 900) == []


def split(items: list[Triple], where: list[int]) -> tuple[list[Triple], list[Triple]]:
    """Each triple to the first part (0), the second (1) or both (2)."""
    first = [t for t, w in zip(items, where, strict=False) if w != 1]
    second = [t for t, w in zip(items, where, strict=False) if w != 0]
    return first, second


@FAST
@given(triple_lists, st.lists(st.integers(0, 2), min_size=120, max_size=120))
def test_merged_summaries_find_the_same_scans(items: list[Triple], where: list[int]) -> None:
    first, second = split(items, where)
    whole = summary_of(items)
    part = summary_of(first)
    other = summary_of(reversed(second))  # numbered in another order
    part.merge(other)
    assert part.activity == whole.activity
    assert findings.scans(part) == findings.scans(whole)
    assert as_tuples(findings.scans(part)) == reference_scans(items, whole.config)
    # Through JSON and back (what `nfkit logs merge` does with saved summaries).
    again = Summary.from_dict(json.loads(json.dumps(part.to_dict())))
    assert again.activity == whole.activity
    assert findings.scans(again) == findings.scans(whole)


def test_densest_window() -> None:
    activity = Activity()
    for slot, port in ((1, 22), (2, 22), (2, 23), (5, 22), (20, 1), (21, 2), (22, 3), (23, 4)):
        activity.add("a", slot, "10.0.0.1", f"tcp/{port}")
    activity.add("a", 2, "10.0.0.1", "tcp/23")  # a repeat counts once
    assert activity.densest("a", 1) == 2  # slot 2: two ports
    assert activity.densest("a", 4) == 4  # slots 20..23 (slots 1..4 hold 3)
    assert activity.densest("a", 5) == 4  # slots 1..5 hold 4 too; the first of equals is fine
    assert activity.densest("a", 6) == 4
    assert activity.densest("a", 100) == 8
    assert activity.densest("a", 19) == 5  # slots 2..20: 2, 2, 5, 20 -> 4; 5..23: 5


@FAST
@given(triple_lists, triple_lists)
def test_extend_runs_equals_extend(first: list[Triple], second: list[Triple]) -> None:
    """Runs of sorted, distinct keys per source (as the native scanner gives them) add up to
    what :meth:`Activity.extend` adds, into new and existing sources alike."""
    expected = fill(fill(Activity(), first), second)
    activity = fill(Activity(), first)
    names = sorted({t[0] for t in second})
    keys: list[int] = []
    runs: list[int] = []
    for number, source in enumerate(names):
        mine = sorted({activity.key(s, d, p) for src, s, d, p in second if src == source})
        runs += [number, len(keys), len(keys) + len(mine)]
        keys += mine
    activity.extend_runs(names, array("Q", keys), array("Q", runs))
    assert activity == expected
    assert activity.to_json(SLOT) == expected.to_json(SLOT)


@FAST
@given(triple_lists)
def test_json_is_the_same_in_c_and_in_python(items: list[Triple]) -> None:
    """The renumbering and sorting behind ``to_json`` (C when built) equals the Python one."""
    forms = {}
    for name in ENGINES:
        with engine(name):
            forms[name] = fill(Activity(), items).to_json(SLOT)
    assert forms["native"] == forms["pure"]
    assert Activity.from_json(forms["pure"], SLOT) == fill(Activity(), items)
