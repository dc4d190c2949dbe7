"""The fleet file, per-host attribution and cross-host correlation."""

from __future__ import annotations

from pathlib import Path

import pytest

from nfkit.errors import ConfigError
from nfkit.fleet.correlate import correlate
from nfkit.fleet.fleetfile import Fleet, from_toml
from nfkit.fleet.render import render_fleet
from nfkit.fleet.summary import NO_HOST, combine, summarize_by_host
from nfkit.logs.aggregate import SummaryConfig

FLEET_TOML = """\
[segments.dc1]
networks = ["192.0.2.0/24"]
gateway_macs = ["02:00:00:00:01:01"]
hosts = ["web3"]

[segments.dc2]
gateway_macs = ["02:00:00:00:02:01"]

[hosts]
web1 = "dc1"
db1 = "dc2"

[hosts.WEB2]
segment = "dc1"
own_macs = ["02:00:00:00:01:12"]
"""

GW1 = "02:00:00:00:01:01"
GW2 = "02:00:00:00:02:01"
EVIL = "02:00:00:00:01:66"  # a compromised machine on dc1


def line(host: str, mac: str, src: str, dpt: int, second: int = 0, ttl: int = 64) -> str:
    """A syslog line of a dropped TCP SYN from ``src`` (MAC ``mac``) to ``host``."""
    return (
        f"Nov 20 10:00:{second:02d} {host} kernel: [  100.000000] nfkit:input:drop IN=eth0 OUT= "
        f"MAC=02:00:00:00:00:ff:{mac}:08:00 SRC={src} DST=192.0.2.10 LEN=60 TOS=0x00 "
        f"PREC=0x00 TTL={ttl} ID=1 DF PROTO=TCP SPT=40000 DPT={dpt} WINDOW=1024 RES=0x00 SYN "
        "URGP=0 "
    )


@pytest.fixture
def fleet(tmp_path: Path) -> Fleet:
    path = tmp_path / "fleet.toml"
    path.write_text(FLEET_TOML)
    return from_toml(path)


def scenario() -> list[str]:
    lines = []
    # EVIL scans web1, web2 and web3 (spoofing a second address on web3)
    for port in range(20, 40):
        lines.append(line("web1", EVIL, "192.0.2.66", port, second=port))
        lines.append(line("web2", EVIL, "192.0.2.66", port, second=port))
    lines.append(line("web3", EVIL, "198.18.0.1", 22))
    # another peer seen by web1 only
    lines.append(line("web1", "02:00:00:00:01:77", "192.0.2.77", 22))
    # an internet scanner through both data centres' gateways
    for host, gateway in (("web1", GW1), ("db1", GW2), ("db1", GW2)):
        lines.append(line(host, gateway, "203.0.113.5", 23, ttl=50))
    # through dc1 only
    lines.append(line("web2", GW1, "203.0.113.9", 23, ttl=50))
    # a host nobody listed, and a line that is not a packet
    lines.append(line("stray", GW1, "203.0.113.5", 23, ttl=50))
    lines.append("Nov 20 10:00:00 web1 sshd[1]: hello")
    return lines


def test_fleet_file_shapes(fleet: Fleet) -> None:
    assert [h.name for h in fleet] == ["WEB2", "db1", "web1", "web3"]
    web2 = fleet.host("web2")
    assert web2 is not None and fleet.host("Web2") is web2
    assert web2.segment_name == "dc1" and "02:00:00:00:01:12" in web2.segment.own_macs
    assert GW1 in web2.segment.gateway_macs
    web3 = fleet.host("web3")
    assert web3 is not None and web3.segment_name == "dc1"
    assert fleet.host("web1.example.net") is None and fleet.host(None) is None
    fleet.check_attribution()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[hostz]\n", "unknown table"),
        ("[hosts]\nweb1 = 3\n", r"\[hosts.web1\]: must be a segment name"),
        ("[hosts.web1]\nown_macs = []\n", "segment = NAME is required"),
        ('[hosts.web1]\nsegment = "a"\ngateway_macs = ["zz"]\n', "invalid MAC"),
        ('[segments.a]\nnetworks = ["300.0.0.0/8"]\n[hosts]\nw = "a"\n', "invalid network"),
        ('[segments.a]\ncolour = "red"\n[hosts]\nw = "a"\n', "unknown key"),
        ('[segments.a]\nhosts = ["w"]\n[segments.b]\nhosts = ["w"]\n', "in two segments"),
        ('[segments.a]\nhosts = ["w"]\n[hosts]\nw = "b"\n', "in two segments"),
        ('[hosts]\nweb1 = "a"\nWEB1 = "a"\n', "differ only in case"),
        ("[segments.a]\n", "no hosts"),
        ("[hosts\n", r"fleet\.toml:1: error: invalid TOML"),
    ],
)
def test_bad_fleet_files(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "fleet.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        from_toml(path)


def test_missing_fleet_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        from_toml(tmp_path / "none.toml")


def test_hosts_are_attributed_with_their_own_segment(fleet: Fleet) -> None:
    result = summarize_by_host(scenario(), SummaryConfig(), fleet)
    assert result.segments == {
        NO_HOST: None,
        "WEB2": "dc1",
        "db1": "dc2",
        "stray": None,
        "web1": "dc1",
        "web3": "dc1",
    }
    assert result.hosts["web1"].sources["192.0.2.66"].origin == "peer"
    assert result.hosts["db1"].sources["203.0.113.5"].origin == "upstream"
    # not guessed: the unlisted host has no segment, so its MAC'd packet is unknown
    assert result.hosts["stray"].by_origin == {"unknown": 1}
    assert result.unmapped == {"stray": 1}
    assert result.hosts[NO_HOST].unparsed == 1
    merged = result.merged()
    assert merged.lines == len(scenario()) and merged.records == len(scenario()) - 1


def test_per_host_summaries_merge_like_one_pass(fleet: Fleet) -> None:
    lines = scenario()
    whole = summarize_by_host(lines, SummaryConfig(), fleet)
    parts = [summarize_by_host(lines[i : i + 7], SummaryConfig(), fleet) for i in range(0, 60, 7)]
    assert combine(parts) == whole
    assert combine(parts).merged() == whole.merged()


def test_correlation_ranks_peers_and_sources(fleet: Fleet) -> None:
    result = correlate(summarize_by_host(scenario(), SummaryConfig(), fleet))
    assert len(result.peers) == 1  # the one-host peer is not listed
    evil = result.peers[0]
    assert (evil.segment, evil.mac) == ("dc1", EVIL)
    assert evil.hosts == ["WEB2", "web1", "web3"]
    assert evil.addresses == ["192.0.2.66", "198.18.0.1"]
    assert evil.packets == 41 and evil.level == 2  # 20 ports in one window: level 2
    assert [s.address for s in result.sources] == ["203.0.113.5"]
    scanner = result.sources[0]
    assert scanner.segments == ["dc1", "dc2"] and scanner.hosts == ["db1", "web1"]
    assert scanner.packets == 3 and scanner.origins == {"upstream": 3}


def test_correlation_thresholds(fleet: Fleet) -> None:
    result = correlate(summarize_by_host(scenario(), SummaryConfig(), fleet), min_hosts=1)
    assert [p.mac for p in result.peers] == [EVIL, "02:00:00:00:01:77"]
    assert correlate(summarize_by_host(scenario(), SummaryConfig(), fleet), min_hosts=4).peers == []


def test_fleet_text_lists_unmapped_hosts_and_correlation(fleet: Fleet) -> None:
    text = render_fleet(summarize_by_host(scenario(), SummaryConfig(), fleet), "text")
    assert "HOSTS MISSING FROM THE FLEET FILE" in text and "stray" in text
    peers = text.index("PEERS ATTACKING SEVERAL HOSTS")
    assert text.index(EVIL) > peers
    assert "SOURCES SEEN ACROSS SEGMENTS" in text and "203.0.113.5" in text
    assert "ALL HOSTS MERGED" in text


def test_fleet_html_escapes_host_names(fleet: Fleet) -> None:
    lines = [*scenario(), line("<b>x</b>", GW1, "203.0.113.5", 23)]
    page = render_fleet(summarize_by_host(lines, SummaryConfig(), fleet), "html")
    assert "<b>x</b>" not in page and "&lt;b&gt;x&lt;/b&gt;" in page
    assert "Peers attacking several hosts" in page
