"""The mergeable Summary: counts, scans, recommendations, JSON round trip, merge == one pass."""

from __future__ import annotations

import ipaddress
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nfkit.errors import ConfigError
from nfkit.logs import attribution as attr
from nfkit.logs.aggregate import Summary, SummaryConfig, summarize, summarize_records
from nfkit.logs.record import LogRecord
from nfkit.logs.segment import Segment

GW_MAC = "52:54:00:00:00:01"
PEER_MAC = "52:54:00:00:00:20"
OWN_MAC = "52:54:00:00:00:10"
CONFIG = SummaryConfig(
    segment=Segment.from_values(
        networks=["192.0.2.0/24", "2001:db8:1::/64"], own_macs=[OWN_MAC], gateway_macs=[GW_MAC]
    )
)
T0 = datetime(2026, 11, 24, 10, 0, 0, tzinfo=UTC)
ip = ipaddress.ip_address


def tcp(
    src: str = "198.51.100.7",
    dpt: int = 22,
    *,
    mac: str | None = GW_MAC,
    dst: str = "192.0.2.10",
    at: float = 0.0,
    prefix: str | None = "nfkit:input:drop:policy",
    flags: frozenset[str] = frozenset({"SYN"}),
    ttl: int = 63,
) -> LogRecord:
    """A TCP packet arriving on eth0, ``at`` seconds after T0."""
    return LogRecord(
        raw=f"line {src} {dpt} {at}",
        timestamp=T0 + timedelta(seconds=at),
        prefix=prefix,
        in_iface="eth0",
        mac_src=mac,
        mac_dst=OWN_MAC,
        src=ip(src),
        dst=ip(dst),
        ttl=ttl,
        proto="TCP",
        spt=40000,
        dpt=dpt,
        tcp_flags=flags,
    )


def icmp(
    proto: str, icmp_type: int, code: int, prefix: str | None = "nfkit:input:drop:invalid"
) -> LogRecord:
    """An ICMP or ICMPv6 error from the internet."""
    v6 = proto == "ICMPv6"
    return LogRecord(
        raw=f"{proto} {icmp_type}/{code} <{prefix}>",
        timestamp=T0,
        prefix=prefix,
        in_iface="eth0",
        mac_src=GW_MAC,
        src=ip("2001:db8:ff::7" if v6 else "198.51.100.7"),
        dst=ip("2001:db8:1::10" if v6 else "192.0.2.10"),
        ttl=63,
        proto=proto,
        icmp_type=icmp_type,
        icmp_code=code,
    )


# -- basics ----------------------------------------------------------------------------------
def test_counts_sources_and_contract() -> None:
    records = [tcp(dpt=22), tcp(dpt=22, at=60), tcp(dpt=80, at=120)]
    records.append(tcp("192.0.2.20", 445, mac=PEER_MAC, ttl=64, at=30))
    summary = summarize_records(records, CONFIG)
    data = summary.to_dict()
    for key in ("lines", "records", "unparsed", "by_origin", "sources", "scans", "recommendations"):
        assert key in data
    assert data["records"] == 4
    assert data["by_origin"] == {"peer": 1, "upstream": 3}
    first, second = data["sources"]
    assert first["address"] == "192.0.2.20"  # peers first
    assert first["origin"] == "peer" and first["mac"] == PEER_MAC
    assert second["address"] == "198.51.100.7"
    assert second["origin"] == "upstream" and second["mac"] is None
    assert second["packets"] == 3
    assert second["ports"] == {"tcp/22": 2, "tcp/80": 1}
    assert second["first_seen"] == "2026-11-24T10:00:00.000000+00:00"
    assert second["last_seen"] == "2026-11-24T10:02:00.000000+00:00"
    assert data["upstream"] == {"tcp/22": {"drop": 2}, "tcp/80": {"drop": 1}}
    assert data["ports"][0] == {"port": "tcp/22", "packets": 2, "sources": 1}
    json.dumps(data)


def test_merge_refuses_other_detection_settings() -> None:
    with pytest.raises(ValueError, match="different detection settings"):
        Summary(CONFIG).merge(Summary(SummaryConfig(segment=CONFIG.segment, slot_seconds=60)))


def test_merge_across_hosts_keeps_attribution_and_unions_segments() -> None:
    other_gw = "52:54:00:00:99:01"
    other = SummaryConfig(segment=Segment.from_values(gateway_macs=[other_gw]))
    here = summarize_records([tcp("192.0.2.20", 22, mac=PEER_MAC, ttl=64)], CONFIG)
    there = summarize_records([tcp("198.51.100.9", 22, mac=other_gw)], other)
    merged = here.merge(there)
    assert merged.by_origin == {"peer": 1, "upstream": 1}
    assert merged.config.segment.gateway_macs == {GW_MAC, other_gw}
    assert Summary.from_dict(merged.to_dict()) == merged


# -- scans -------------------------------------------------------------------------------------
def test_vertical_scan_levels() -> None:
    summary = summarize_records([tcp(dpt=port, at=port) for port in range(1, 16)], CONFIG)
    (scan,) = summary.scans()
    assert scan["kind"] == "vertical"
    assert scan["distinct"] == 15 and scan["level"] == 2
    assert scan["source"] == "198.51.100.7" and scan["target"] == "192.0.2.10"
    assert summarize_records([tcp(dpt=p) for p in range(1, 5)], CONFIG).scans() == []
    assert summarize_records([tcp(dpt=p) for p in range(1, 6)], CONFIG).scans()[0]["level"] == 1


def test_scan_window_slides() -> None:
    # 10 ports in one hour, 10 other ports three hours later: never 20 in one window.
    early = [tcp(dpt=p, at=p) for p in range(1, 11)]
    late = [tcp(dpt=p, at=3 * 3600 + p) for p in range(100, 110)]
    (scan,) = summarize_records(early + late, CONFIG).scans()
    assert scan["distinct"] == 10 and scan["level"] == 1
    # the same ports 40 minutes apart share a window
    late = [tcp(dpt=p, at=2400 + p) for p in range(100, 110)]
    (scan,) = summarize_records(early + late, CONFIG).scans()
    assert scan["distinct"] == 20 and scan["level"] == 2


def test_horizontal_sweep_and_peer_first() -> None:
    sweep = [tcp(dst=f"192.0.2.{h}", dpt=3389, at=h) for h in range(1, 25)]
    peer = [tcp("192.0.2.20", p, mac=PEER_MAC, ttl=64) for p in range(1, 6)]
    scans = summarize_records(sweep + peer, CONFIG).scans()
    assert [s["origin"] for s in scans] == ["peer", "upstream"]
    assert scans[0]["mac"] == PEER_MAC
    assert scans[1]["kind"] == "horizontal" and scans[1]["target"] == "tcp/3389"
    assert scans[1]["distinct"] == 24 and scans[1]["level"] == 2


def test_peer_attack_recommendation() -> None:
    peer = [tcp("192.0.2.20", p, mac=PEER_MAC, ttl=64) for p in range(1, 6)]
    codes = [r["code"] for r in summarize_records(peer, CONFIG).recommendations()]
    assert "peer_attack" in codes


# -- PMTUD and INVALID ---------------------------------------------------------------------------
@pytest.mark.parametrize(("proto", "icmp_type", "code"), [("ICMP", 3, 4), ("ICMPv6", 2, 0)])
def test_pmtud_drop_is_a_hazard_not_an_attack(proto: str, icmp_type: int, code: int) -> None:
    summary = summarize_records([icmp(proto, icmp_type, code)] * 20, CONFIG)
    assert summary.sources == {}
    assert summary.scans() == []
    (rec,) = summary.recommendations()
    assert rec["code"] == "pmtud_blackhole"
    assert "nfkit:input:drop:invalid" in rec["message"]
    assert rec["prefixes"] == {"nfkit:input:drop:invalid": 20}


def test_pmtud_accepted_is_fine_and_other_icmp_counts() -> None:
    accepted = summarize_records([icmp("ICMP", 3, 4, "nfkit:input:accept:icmp")], CONFIG)
    assert accepted.recommendations() == []
    assert accepted.pmtud_allowed == 1
    unreachable = summarize_records([icmp("ICMP", 3, 3)], CONFIG)
    assert unreachable.recommendations() == []
    assert "198.51.100.7" in unreachable.sources


def test_be_liberal_on_invalid_acks() -> None:
    ack = frozenset({"ACK"})
    acks = [tcp(dpt=443, flags=ack, prefix="nfkit:input:drop:invalid", at=i) for i in range(3)]
    summary = summarize_records(acks, CONFIG)
    (rec,) = summary.recommendations()
    assert rec["code"] == "be_liberal"
    assert "net.netfilter.nf_conntrack_tcp_be_liberal=1" in rec["message"]
    assert rec["packets"] == 3 and rec["flows"] == 1
    assert len(rec["evidence"]) == 3
    # two are not enough; SYNs are not ACKs of established flows
    assert summarize_records(acks[:2], CONFIG).recommendations() == []
    syn = [tcp(flags=frozenset({"SYN", "ACK"}), prefix="nfkit:input:drop:invalid")] * 5
    assert summarize_records(syn, CONFIG).recommendations() == []


def test_other_tools_invalid_prefix_is_configurable() -> None:
    ack = frozenset({"ACK", "PSH"})
    acks = [tcp(flags=ack, prefix="[UFW BLOCK] CT-INVALID", at=i) for i in range(4)]
    assert summarize_records(acks, CONFIG).recommendations()[0]["code"] == "be_liberal"
    other = SummaryConfig.from_mapping({"invalid_prefixes": ["BADSTATE"]}, CONFIG.segment)
    assert summarize_records(acks, other).recommendations() == []
    bad = [tcp(flags=ack, prefix="fw BADSTATE ", at=i) for i in range(4)]
    assert summarize_records(bad, other).recommendations()[0]["code"] == "be_liberal"


def test_invalid_label_requires_nfkit_tag() -> None:
    ack = frozenset({"ACK"})
    acks = [tcp(flags=ack, prefix="other:input:drop:invalid", at=i) for i in range(3)]
    # not an nfkit tag, but the "invalid" substring still marks it
    assert summarize_records(acks, CONFIG).invalid_acks.packets == 3
    tagged = SummaryConfig.from_mapping({"tags": ["k1"], "invalid_prefixes": ["xx"]})
    acks = [tcp(flags=ack, prefix="k1:input:drop:invalid", at=i) for i in range(3)]
    assert summarize_records(acks, tagged).invalid_acks.packets == 3


# -- config ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"port_levels": [1, 2, 3]}, "five increasing"),
        ({"port_levels": [5, 4, 3, 2, 1]}, "five increasing"),
        ({"window_seconds": 1000}, "multiple of slot_seconds"),
        ({"slot_seconds": 0}, "positive integer"),
        ({"tags": "nfkit"}, "list of non-empty strings"),
        ({"colour": "red"}, "unknown key"),
    ],
)
def test_config_errors(table: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        SummaryConfig.from_mapping(table)


def test_config_from_toml(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text(
        '[segment]\ngateway_macs = ["52:54:00:00:00:01"]\n[summary]\nbe_liberal_min_acks = 9\n'
    )
    config = SummaryConfig.from_toml(path)
    assert config.be_liberal_min_acks == 9
    assert config.segment.gateway_macs == {GW_MAC}
    path.write_text("[summary]\nbe_liberal_min_acks = 'x'\n")
    with pytest.raises(ConfigError, match="positive integer"):
        SummaryConfig.from_toml(path)


def test_from_dict_rejects_garbage() -> None:
    with pytest.raises(ValueError, match="not a summary"):
        Summary.from_dict({"lines": 1})


def test_lines_are_parsed() -> None:
    line = (
        "Nov 24 10:00:00 srv kernel: [  1.000000] nfkit:input:drop:policy IN=eth0 OUT= "
        "MAC=52:54:00:00:00:10:52:54:00:00:00:20:08:00 SRC=192.0.2.20 DST=192.0.2.10 LEN=60 "
        "TOS=0x00 PREC=0x00 TTL=64 ID=1 DF PROTO=TCP SPT=1 DPT=22 WINDOW=1 RES=0x00 SYN URGP=0 "
    )
    summary = summarize([line, "Nov 24 10:00:00 srv kernel: [ 1.0] eth0: link up", line], CONFIG)
    assert (summary.lines, summary.records, summary.unparsed) == (3, 2, 1)
    assert summary.by_origin == {attr.PEER: 2}


# -- merge property --------------------------------------------------------------------------
ADDRESSES = ["198.51.100.7", "192.0.2.20", "203.0.113.5", "2001:db8:ff::7", "2001:db8:1::20"]
PREFIXES = [
    "nfkit:input:drop:policy",
    "nfkit:input:drop:invalid",
    "nfkit:input:accept:ssh",
    "[UFW BLOCK] INVALID",
    None,
]


@st.composite
def records(draw: st.DrawFn) -> LogRecord:
    """Any mix of origins, protocols, prefixes, PMTUD errors, INVALID ACKs and timestamps."""
    src = draw(st.sampled_from(ADDRESSES))
    v6 = ":" in src
    proto = draw(st.sampled_from(["TCP", "UDP", "ICMPv6" if v6 else "ICMP", "47"]))
    stamp = draw(
        st.none() | st.integers(0, 4 * 3600 * 10**6).map(lambda us: T0 + timedelta(microseconds=us))
    )
    in_iface = draw(st.sampled_from(["eth0", "eth0", "eth0", None, "tun0"]))
    record = LogRecord(
        raw=draw(st.text(max_size=8)),
        timestamp=stamp,
        prefix=draw(st.sampled_from(PREFIXES)),
        in_iface=in_iface,
        out_iface=draw(st.sampled_from([None, None, None, "eth1"])),
        mac_src=None if in_iface != "eth0" else draw(st.sampled_from([GW_MAC, PEER_MAC])),
        src=ip(src),
        dst=ip(
            draw(
                st.sampled_from(["2001:db8:1::10", "2001:db8:1::11"])
                if v6
                else st.sampled_from(["192.0.2.10", "192.0.2.11"])
            )
        ),
        ttl=draw(st.sampled_from([64, 63, 128, 50, None])),
        proto=proto,
    )
    if proto in ("TCP", "UDP"):
        record.spt = draw(st.integers(1024, 1030))
        record.dpt = draw(st.integers(1, 12))
    if proto == "TCP":
        record.tcp_flags = draw(
            st.sampled_from([frozenset({"SYN"}), frozenset({"ACK"}), frozenset({"ACK", "PSH"})])
        )
    if proto.startswith("ICMP"):
        record.icmp_type, record.icmp_code = draw(
            st.sampled_from([(2, 0), (128, 0)] if v6 else [(3, 4), (3, 3), (8, 0)])
        )
    return record


@settings(max_examples=200, deadline=None)
@given(st.lists(records(), max_size=40), st.data())
def test_merge_equals_one_pass(stream: list[LogRecord], data: st.DataObject) -> None:
    config = SummaryConfig(
        segment=CONFIG.segment, port_levels=(2, 3, 4, 5, 6), host_levels=(2, 3, 4, 5, 6)
    )
    cut = data.draw(st.integers(0, len(stream)))
    whole = summarize_records(stream, config)
    left = summarize_records(stream[:cut], config)
    right = summarize_records(stream[cut:], config)
    merged = left.merge(right)
    assert merged.to_dict() == whole.to_dict()
    # JSON round trip, and merging round-tripped halves
    again = Summary.from_dict(json.loads(json.dumps(whole.to_dict())))
    assert again.to_dict() == whole.to_dict()
    halves = Summary.from_dict(
        json.loads(json.dumps(summarize_records(stream[:cut], config).to_dict()))
    )
    halves.merge(Summary.from_dict(summarize_records(stream[cut:], config).to_dict()))
    assert halves == whole


@settings(max_examples=50, deadline=None)
@given(st.lists(records(), max_size=30), st.randoms())
def test_order_does_not_matter(stream: list[LogRecord], rnd: object) -> None:
    shuffled = list(stream)
    rnd.shuffle(shuffled)  # type: ignore[attr-defined]
    assert summarize_records(stream, CONFIG) == summarize_records(shuffled, CONFIG)
