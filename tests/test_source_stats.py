"""SourceStats with packed counters reads, compares, unpacks and pickles as the dict form does."""

from __future__ import annotations

import pickle
from array import array

import pytest

from nfkit.logs.counters import COUNTERS, SourceStats, sources_per_key

TEXTS = [
    ["upstream", "peer", "local"],  # origins
    ["02:00:00:00:00:01", "02:00:00:00:00:02"],  # macs
    ["tcp/22", "tcp/80", "udp/53"],  # ports
    ["tcp", "udp"],  # protos
    ["nfkit:input:drop", "nfkit:input:accept"],  # prefixes
    ["peer_routed"],  # contradictions
]


def entry(counter: str, number: int, count: int) -> int:
    return (COUNTERS.index(counter) << 21 | number) << 40 | count


def packed(counts: dict[str, dict[int, int]], **scalars: float | int | None) -> SourceStats:
    entries = array(
        "Q",
        sorted(
            entry(counter, number, count)
            for counter, numbers in counts.items()
            for number, count in numbers.items()
        ),
    )
    return SourceStats.packed(
        int(scalars.get("packets", 0) or 0),
        scalars.get("first"),  # type: ignore[arg-type]
        scalars.get("last"),  # type: ignore[arg-type]
        int(scalars.get("error", 0) or 0),
        entries,
        TEXTS,
    )


SAMPLE = {
    "origins": {0: 3, 1: 4},
    "macs": {1: 4},
    "ports": {0: 5, 2: 2},
    "protos": {0: 5, 1: 2},
    "prefixes": {0: 7},
    "contradictions": {0: 4},
}


def as_dicts() -> SourceStats:
    return SourceStats(
        packets=7,
        first=1.5,
        last=9.0,
        origins={"upstream": 3, "peer": 4},
        macs={"02:00:00:00:00:02": 4},
        ports={"tcp/22": 5, "udp/53": 2},
        protos={"tcp": 5, "udp": 2},
        prefixes={"nfkit:input:drop": 7},
        contradictions={"peer_routed": 4},
        error=1,
    )


def test_packed_reads_like_dicts() -> None:
    stats = packed(SAMPLE, packets=7, first=1.5, last=9.0, error=1)
    reference = as_dicts()
    for name in COUNTERS:
        assert stats.counts(name) == reference.counts(name), name
    assert stats.all_counts() == reference.all_counts()
    assert [dict(c) for c in stats.all_counts()] == [stats.counts(n) for n in COUNTERS]
    assert stats == reference and reference == stats
    assert stats.origin == reference.origin == "peer"
    assert stats.mac == reference.mac == "02:00:00:00:00:02"
    assert repr(stats) == repr(reference)


def test_a_counter_missing_from_the_packed_form_is_empty() -> None:
    stats = packed({"ports": {1: 3}}, packets=3)
    assert stats.counts("origins") == {} and stats.counts("contradictions") == {}
    assert stats.counts("ports") == {"tcp/80": 3}
    assert stats.origin == "unknown" and stats.mac is None


@pytest.mark.parametrize(
    ("origins", "expected"),
    [
        ({0: 2, 1: 2}, "peer"),  # a tie goes to the first of attribution.ORIGINS
        ({0: 3, 1: 2}, "upstream"),
        ({2: 5}, "local"),
        ({0: 1, 2: 1}, "upstream"),
    ],
)
def test_origin_of_packed_counters_breaks_ties_as_dicts_do(
    origins: dict[int, int], expected: str
) -> None:
    stats = packed({"origins": origins})
    as_dict = SourceStats(origins={TEXTS[0][n]: c for n, c in origins.items()})
    assert stats.origin == as_dict.origin == expected
    assert stats.origin == expected  # asked again (kept once known)


def test_reading_a_counter_unpacks_and_changes_stick() -> None:
    stats = packed(SAMPLE, packets=7)
    ports = stats.ports
    ports["tcp/443"] = 1
    stats.origins["local"] = 2
    assert stats.counts("ports") == {"tcp/22": 5, "udp/53": 2, "tcp/443": 1}
    assert stats.origin == "peer"  # 4 peer, 3 upstream, 2 local: not the packed answer
    stats.origins["local"] = 9
    assert stats.origin == "local"
    stats.macs = {"02:00:00:00:00:09": 1}
    assert stats.mac == "02:00:00:00:00:09"
    assert stats.counts("contradictions") == {"peer_routed": 4}


def test_assigning_a_counter_of_a_packed_source_keeps_the_others() -> None:
    stats = packed(SAMPLE)
    stats.ports = {"tcp/1": 1}
    assert stats.counts("ports") == {"tcp/1": 1}
    assert stats.counts("protos") == {"tcp": 5, "udp": 2}


def test_packed_sources_pickle() -> None:
    stats = packed(SAMPLE, packets=7, first=1.5, last=9.0, error=1)
    copy = pickle.loads(pickle.dumps(stats))
    assert copy == stats == as_dicts()
    assert copy.origin == "peer"


def test_sources_per_key_counts_each_source_once() -> None:
    sources = [
        packed({"ports": {0: 50, 1: 1}}),
        packed({"ports": {0: 2}}),
        SourceStats(ports={"tcp/22": 7, "udp/53": 1}),
        SourceStats(),
    ]
    assert sources_per_key(sources, "ports") == {"tcp/22": 3, "tcp/80": 1, "udp/53": 1}
    assert sources_per_key(sources, "macs") == {}


def test_a_packed_source_is_not_equal_to_a_different_one() -> None:
    stats = packed(SAMPLE, packets=7, first=1.5, last=9.0, error=1)
    other = as_dicts()
    other.ports["tcp/22"] = 6
    assert stats != other
    assert stats != as_dicts().__class__(packets=8)
    assert stats.__eq__(object()) is NotImplemented
