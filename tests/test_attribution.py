"""Attribution of records to upstream / peer / local / forwarded / unknown, and TTL checks."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from nfkit.errors import ConfigError, DiscoveryError
from nfkit.logs import attribution as attr
from nfkit.logs.record import LogRecord
from nfkit.logs.segment import Segment, discover, from_toml

GW_MAC = "52:54:00:00:00:01"
PEER_MAC = "52:54:00:00:00:20"
OWN_MAC = "52:54:00:00:00:10"
SEGMENT = Segment.from_values(
    networks=["192.0.2.0/24", "2001:db8:1::/64"],
    own_macs=[OWN_MAC],
    gateway_macs=[GW_MAC],
    gateway_ips=["192.0.2.1"],
)


def record(**fields: object) -> LogRecord:
    """An inbound IPv4 TCP record from the gateway unless ``fields`` say otherwise."""
    values: dict[str, object] = {
        "in_iface": "eth0",
        "out_iface": None,
        "mac_src": GW_MAC,
        "mac_dst": OWN_MAC,
        "src": ipaddress.ip_address("198.51.100.7"),
        "dst": ipaddress.ip_address("192.0.2.10"),
        "ttl": 63,
        "proto": "TCP",
        "dpt": 22,
    }
    values.update(fields)
    return LogRecord(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("fields", "origin"),
    [
        ({}, attr.UPSTREAM),
        ({"mac_src": PEER_MAC, "src": ipaddress.ip_address("192.0.2.20"), "ttl": 64}, attr.PEER),
        # a peer claiming an internet address is still a peer: the MAC decides
        ({"mac_src": PEER_MAC, "ttl": 64}, attr.PEER),
        ({"in_iface": None, "mac_src": None, "out_iface": "eth0"}, attr.LOCAL),
        ({"in_iface": "", "mac_src": None}, attr.LOCAL),
        ({"out_iface": "eth1"}, attr.FORWARDED),
        ({"in_iface": "tun0", "mac_src": None}, attr.UNKNOWN),
        ({"in_iface": "lo", "mac_src": "00:00:00:00:00:00"}, attr.LOCAL),
        ({"mac_src": OWN_MAC}, attr.LOCAL),
    ],
)
def test_origin(fields: dict[str, object], origin: str) -> None:
    assert attr.Attributor(SEGMENT).origin(record(**fields)) == origin
    assert attr.attribute(record(**fields), SEGMENT) == origin


def test_without_gateway_mac_falls_back_to_own_networks() -> None:
    segment = Segment.from_values(networks=["192.0.2.0/24"])
    attributor = attr.Attributor(segment)
    assert attributor.origin(record(mac_src=PEER_MAC)) == attr.UPSTREAM
    inside = record(mac_src=PEER_MAC, src=ipaddress.ip_address("192.0.2.20"))
    assert attributor.origin(inside) == attr.PEER
    assert attr.Attributor(Segment()).origin(record()) == attr.UNKNOWN


@pytest.mark.parametrize(
    ("ttl", "hops"),
    [(64, 0), (63, 1), (1, 63), (128, 0), (120, 8), (255, 0), (250, 5), (None, None)],
)
def test_hops(ttl: int | None, hops: int | None) -> None:
    assert attr.hops(ttl) == hops


def test_contradictions() -> None:
    attributor = attr.Attributor(SEGMENT)
    routed_peer = record(mac_src=PEER_MAC, src=ipaddress.ip_address("192.0.2.20"), ttl=62)
    assert attributor.attribute(routed_peer) == (attr.PEER, attr.PEER_ROUTED)
    spoofing_peer = record(mac_src=PEER_MAC, ttl=64)
    assert attributor.attribute(spoofing_peer) == (attr.PEER, attr.PEER_OFFSEGMENT)
    honest_peer = record(mac_src=PEER_MAC, src=ipaddress.ip_address("192.0.2.20"), ttl=64)
    assert attributor.attribute(honest_peer) == (attr.PEER, None)
    direct_upstream = record(ttl=64)
    assert attributor.attribute(direct_upstream) == (attr.UPSTREAM, attr.UPSTREAM_DIRECT)
    gateway_itself = record(ttl=64, src=ipaddress.ip_address("192.0.2.1"))
    assert attributor.attribute(gateway_itself) == (attr.UPSTREAM, None)
    assert attributor.attribute(record()) == (attr.UPSTREAM, None)


def test_ipv6_hop_limit_peer() -> None:
    rec = record(
        mac_src=PEER_MAC,
        src=ipaddress.ip_address("2001:db8:1::20"),
        dst=ipaddress.ip_address("2001:db8:1::10"),
        ttl=64,
    )
    assert attr.Attributor(SEGMENT).attribute(rec) == (attr.PEER, None)


def test_segment_from_values_rejects_bad_input() -> None:
    with pytest.raises(ConfigError, match="invalid network"):
        Segment.from_values(networks=["192.0.2.0/33"])
    with pytest.raises(ConfigError, match="invalid MAC"):
        Segment.from_values(gateway_macs=["52:54:00:00:01"])
    with pytest.raises(ConfigError, match="invalid IP"):
        Segment.from_values(gateway_ips=["192.0.2.300"])
    assert Segment.from_values(gateway_macs=["52-54-00-AA-00-01"]).gateway_macs == {
        "52:54:00:aa:00:01"
    }


def test_segment_from_toml(tmp_path: Path) -> None:
    path = tmp_path / "segment.toml"
    path.write_text(
        '[segment]\nnetworks = ["192.0.2.7/24"]\ngateway_macs = ["52:54:00:00:00:01"]\n'
    )
    segment = from_toml(path)
    assert segment.networks == (ipaddress.ip_network("192.0.2.0/24"),)
    assert segment.gateway_macs == {GW_MAC}
    assert segment.contains(ipaddress.ip_address("192.0.2.99"))
    assert not segment.contains(ipaddress.ip_address("2001:db8::1"))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[segment\n", r"segment\.toml:1: error: invalid TOML"),
        ('[segment]\nnetworks = ["x"]\n', "invalid network 'x'"),
        ('[segment]\nnetwork = ["192.0.2.0/24"]\n', "unknown key"),
        ("[segment]\nnetworks = 3\n", "must be a list of strings"),
    ],
)
def test_segment_toml_errors(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "segment.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        from_toml(path)


def test_segment_toml_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        from_toml(tmp_path / "absent.toml")


def test_union_and_dict() -> None:
    a = Segment.from_values(networks=["192.0.2.0/24"], gateway_macs=[GW_MAC])
    b = Segment.from_values(networks=["192.0.2.0/24", "10.0.0.0/8"], own_macs=[OWN_MAC])
    both = a.union(b)
    assert both.to_dict() == {
        "networks": ["192.0.2.0/24", "10.0.0.0/8"],
        "own_macs": [OWN_MAC],
        "gateway_macs": [GW_MAC],
        "gateway_ips": [],
    }
    assert Segment.from_mapping(both.to_dict()) == both


def test_discover_refuses_missing_namespace() -> None:
    # pyroute2 would create it; nfkit must not create namespaces as a side effect
    with pytest.raises(DiscoveryError, match="does not exist"):
        discover("nfkit-test-absent-namespace")
    assert not Path("/run/netns/nfkit-test-absent-namespace").exists()
