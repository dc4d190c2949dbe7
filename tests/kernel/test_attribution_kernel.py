"""Attribution on lines the real kernel wrote: upstream through the gateway, peer on the bridge.

Topology (tests/kernel/segment_lab.py): an "internet" host behind a gateway namespace; gateway,
peer and server share one bridge. The server's nft policy logs with nfkit prefixes (the lab's
tag), and the segment is discovered with pyroute2 inside the server's namespace.
"""

from __future__ import annotations

import ipaddress
import json
from pathlib import Path

import pytest
import segment_lab as topo_mod
from netlab import Lab

from nfkit.cli import main
from nfkit.logs import attribution as attr
from nfkit.logs.aggregate import SummaryConfig, summarize
from nfkit.logs.parser import parse_line
from nfkit.logs.segment import discover

pytestmark = pytest.mark.kernel


def test_upstream_and_peer_from_real_kernel_lines(
    lab: Lab, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    topo = topo_mod.build(lab)
    expected = topo_mod.attack(topo)
    lines = lab.kernel_log(wait_for=expected, timeout=10)
    assert len(lines) >= expected - 6  # a few out-of-window ACKs may be accepted by conntrack

    segment = discover(topo.srv)
    assert segment.gateway_macs == {topo_mod.GW_MAC}
    assert segment.own_macs == {topo_mod.SRV_MAC}
    assert ipaddress.ip_network(topo_mod.LAN4) in segment.networks
    assert ipaddress.ip_address(topo_mod.GW4) in segment.gateway_ips

    attributor = attr.Attributor(segment)
    origins: dict[str, set[str]] = {}
    contradictions: dict[str, set[str | None]] = {}
    for line in lines:
        record = parse_line(line)
        assert record is not None, line
        origin, contradiction = attributor.attribute(record)
        origins.setdefault(str(record.src), set()).add(origin)
        contradictions.setdefault(str(record.src), set()).add(contradiction)

    internet = {topo_mod.INET4, topo_mod.INET4_B, str(ipaddress.ip_address(topo_mod.INET6))}
    for address in internet:
        assert origins[address] == {attr.UPSTREAM}, address
        assert contradictions[address] == {None}  # TTL 63: one router, as it should be
    for address in (topo_mod.PEER4, str(ipaddress.ip_address(topo_mod.PEER6))):
        assert origins[address] == {attr.PEER}, address
        assert contradictions[address] == {None}  # TTL 64: on the segment
    # the peer forging an internet source is still a peer, and the forgery is reported
    assert origins["198.18.0.99"] == {attr.PEER}
    assert contradictions["198.18.0.99"] == {attr.PEER_OFFSEGMENT}
    assert origins[topo_mod.SRV4] == {attr.LOCAL}

    config = SummaryConfig(segment=segment, tags=frozenset({lab.tag}))
    summary = summarize(lines, config)
    assert summary.unparsed == 0
    codes = [r["code"] for r in summary.recommendations()]
    assert codes[0] == "pmtud_blackhole"
    assert "be_liberal" in codes
    assert summary.pmtud.by_prefix == {f"{lab.tag}:input:drop:invalid": 2}
    scans = summary.scans()
    assert scans[0]["origin"] == attr.PEER and scans[0]["mac"] == topo_mod.PEER_MAC
    assert {s["source"] for s in scans} >= {topo_mod.PEER4, topo_mod.INET4}

    # the command line discovers the same segment inside the server's namespace
    log = tmp_path / "kern.log"
    log.write_text("\n".join(lines) + "\n")
    assert main(["summarize", str(log), "--netns", topo.srv, "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["config"]["segment"]["gateway_macs"] == [topo_mod.GW_MAC]
    by_address = {s["address"]: s for s in data["sources"]}
    assert by_address[topo_mod.PEER4]["origin"] == "peer"
    assert by_address[topo_mod.PEER4]["mac"] == topo_mod.PEER_MAC
    assert by_address[topo_mod.INET4]["origin"] == "upstream"
    assert data["sources"][0]["origin"] == "peer"
    assert main(["summarize", str(log), "--netns", "nfkit-no-such-ns"]) == 2
