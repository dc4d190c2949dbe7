"""A summary with more sources than ``max_sources``: bounded, heavy hitters exact, errors told."""

from __future__ import annotations

import ipaddress
import random
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nfkit.logs.aggregate import Summary, SummaryConfig
from nfkit.logs.counters import FLOWS, Finding
from nfkit.logs.record import LogRecord

T0 = datetime(2026, 11, 24, 10, 0, 0, tzinfo=UTC)


def packet(src: str, at: float = 0.0, dpt: int = 22) -> LogRecord:
    """A dropped TCP SYN from ``src``."""
    return LogRecord(
        raw=f"{src} {at}",
        timestamp=T0 + timedelta(seconds=at),
        prefix="nfkit:input:drop",
        in_iface="eth0",
        src=ipaddress.ip_address(src),
        dst=ipaddress.ip_address("192.0.2.10"),
        ttl=60,
        proto="TCP",
        spt=40000,
        dpt=dpt,
        tcp_flags=frozenset({"SYN"}),
    )


def stream(seed: int, heavy: int, light: int) -> list[str]:
    """Source addresses: ``heavy`` sources sending 50 packets each among ``light`` sending one."""
    rng = random.Random(seed)
    addresses = [f"10.0.{i // 250}.{i % 250 + 1}" for i in range(heavy)] * 50
    addresses += [f"172.16.{i // 250}.{i % 250 + 1}" for i in range(light)]
    rng.shuffle(addresses)
    return addresses


def summarise(addresses: list[str], limit: int | None) -> Summary:
    summary = Summary(SummaryConfig(max_sources=limit))
    for i, src in enumerate(addresses):
        summary.add(packet(src, at=float(i)))
    return summary


def test_memory_is_bounded_and_heavy_hitters_are_kept() -> None:
    addresses = stream(1, heavy=5, light=2000)
    truth = Counter(addresses)
    summary = summarise(addresses, limit=40)
    assert len(summary.sources) <= 60  # max_sources and a half, between compactions
    assert summary.dropped > 0 and summary.floor >= 1
    for i in range(5):
        assert f"10.0.0.{i + 1}" in summary.sources  # 50 packets each, far above the floor
    for address, stats in summary.sources.items():
        # the count is a lower bound, off by at most its error
        assert stats.packets <= truth[address] <= stats.packets + stats.error
    for address, count in truth.items():
        if address not in summary.sources:
            assert count <= summary.floor
    data = summary.to_dict()
    assert data["approximate"]["dropped_sources"] == summary.dropped
    assert data["approximate"]["floor"] == summary.floor
    assert Summary.from_dict(data) == summary


def test_unbounded_is_exact() -> None:
    addresses = stream(2, heavy=3, light=300)
    summary = summarise(addresses, limit=None)
    assert {a: s.packets for a, s in summary.sources.items()} == Counter(addresses)
    assert summary.floor == 0 and summary.dropped == 0
    assert all("error" not in s for s in summary.to_dict()["sources"])


def test_within_the_limit_nothing_changes() -> None:
    addresses = stream(3, heavy=3, light=40)
    assert summarise(addresses, limit=1000) == _with_limit(summarise(addresses, None), 1000)


def _with_limit(summary: Summary, limit: int) -> Summary:
    data = summary.to_dict()
    data["config"]["max_sources"] = limit
    data["approximate"]["max_sources"] = limit
    return Summary.from_dict(data)


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 10_000), st.integers(1, 30))
def test_merged_parts_keep_the_guarantees(seed: int, cut: int) -> None:
    addresses = stream(seed, heavy=4, light=600)
    truth = Counter(addresses)
    middle = len(addresses) * cut // 31
    merged = summarise(addresses[:middle], 30).merge(summarise(addresses[middle:], 30))
    assert len(merged.sources) <= 45
    for address, stats in merged.sources.items():
        assert stats.packets <= truth[address] <= stats.packets + stats.error
    for address, count in truth.items():
        if address not in merged.sources:
            assert count <= merged.floor
    for i in range(4):
        assert f"10.0.0.{i + 1}" in merged.sources


def test_bad_approximate_section_is_refused() -> None:
    data = summarise(stream(4, 1, 5), 10).to_dict()
    data["approximate"]["floor"] = -1
    with pytest.raises(ValueError, match="negative"):
        Summary.from_dict(data)


def test_flows_are_capped_and_merge_the_same() -> None:
    flows = [f"198.51.100.{i % 250}:{i}>192.0.2.10:443" for i in range(FLOWS + 500)]
    one = Finding()
    for flow in flows:
        one.add("p", 0.0, "raw", flow)
    left, right = Finding(), Finding()
    for i, flow in enumerate(flows):
        (left if i % 2 else right).add("p", 0.0, "raw", flow)
    left.merge(right)
    assert one.to_dict() == left.to_dict()
    assert one.flows_capped and one.flow_count == f"more than {FLOWS}"
    assert len(one.to_dict()["flows"]) == FLOWS
    few = Finding()
    few.add("p", 0.0, "raw", "a")
    assert few.flow_count == "1" and not few.flows_capped


def test_text_report_says_it_approximated() -> None:
    from nfkit.logs.report import render

    text = render(summarise(stream(5, heavy=2, light=500), 20), "text")
    assert "APPROXIMATE: more sources than max_sources (20)" in text
    exact = render(summarise(stream(5, heavy=2, light=5), 20), "text")
    assert "APPROXIMATE" not in exact and "~" not in exact


def test_summaries_with_other_limits_still_merge() -> None:
    small = summarise(stream(6, heavy=2, light=30), 10)
    large = summarise(stream(7, heavy=2, light=30), None)
    expected = small.records + large.records
    merged = large.merge(small)
    assert merged.config.max_sources is None
    assert merged.records == expected
    other_levels = Summary(SummaryConfig(port_levels=(1, 2, 3, 4, 5)))
    with pytest.raises(ValueError, match="different detection settings"):
        merged.merge(other_levels)
