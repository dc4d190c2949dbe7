"""Cross-host correlation: one attacker seen by many hosts.

Two lists, each ranked most widespread first:

* **peers across hosts** — a machine on one L2 segment that several hosts of that segment logged
  as a *peer* (its own MAC, not the gateway's). A peer is keyed by its MAC, since a peer may
  forge any source address; the addresses it used are listed. The upstream firewall never sees
  these packets, so they lead the report. Ranked by hosts reached, then highest scan level on
  any of them, then packets.
* **sources across segments** — a source address logged by hosts in two or more segments
  (a scanner sweeping the whole fleet, through every data centre's gateway). Ranked by segments,
  then hosts, then highest scan level, then packets.

Hosts without a segment (missing from the fleet file) take part in neither: their packets were
attributed without a segment, and nfkit does not guess where they stand.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from nfkit.fleet.summary import NO_HOST, FleetSummary
from nfkit.logs import attribution as attr
from nfkit.logs.findings import natural

__all__ = ["Correlation", "PeerAcrossHosts", "SourceAcrossSegments", "correlate"]


@dataclass(slots=True)
class PeerAcrossHosts:
    """A MAC on one segment that several of its hosts logged as a peer."""

    segment: str
    mac: str
    hosts: list[str] = field(default_factory=list)
    addresses: list[str] = field(default_factory=list)
    packets: int = 0
    #: Highest scan danger level (0-5) any of the hosts saw from it.
    level: int = 0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "segment": self.segment,
            "mac": self.mac,
            "hosts": self.hosts,
            "addresses": self.addresses,
            "packets": self.packets,
            "level": self.level,
        }


@dataclass(slots=True)
class SourceAcrossSegments:
    """A source address logged by hosts of several segments."""

    address: str
    segments: list[str] = field(default_factory=list)
    hosts: list[str] = field(default_factory=list)
    packets: int = 0
    level: int = 0
    #: origin -> packets over all those hosts.
    origins: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "address": self.address,
            "segments": self.segments,
            "hosts": self.hosts,
            "packets": self.packets,
            "level": self.level,
            "origins": self.origins,
        }


@dataclass(slots=True)
class Correlation:
    """Both ranked lists (see the module docstring)."""

    peers: list[PeerAcrossHosts] = field(default_factory=list)
    sources: list[SourceAcrossSegments] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "peers_across_hosts": [p.to_dict() for p in self.peers],
            "sources_across_segments": [s.to_dict() for s in self.sources],
        }


def correlate(
    fleet_summary: FleetSummary, min_hosts: int = 2, min_segments: int = 2
) -> Correlation:
    """Peers seen by at least ``min_hosts`` hosts of a segment, sources seen in at least
    ``min_segments`` segments, both ranked."""
    peers: dict[tuple[str, str], PeerAcrossHosts] = {}
    peer_addresses: dict[tuple[str, str], set[str]] = {}
    sources: dict[str, SourceAcrossSegments] = {}
    for host, summary in sorted(fleet_summary.hosts.items()):
        segment = fleet_summary.segments.get(host)
        if segment is None or host == NO_HOST or not summary.sources:
            continue
        levels: dict[str, int] = {}
        for scan in summary.scans():
            levels[scan["source"]] = max(levels.get(scan["source"], 0), scan["level"])
        not_peers = summary.config.segment.gateway_macs | summary.config.segment.own_macs
        for address, stats in summary.sources.items():
            origins = stats.counts("origins")
            peer_packets = origins.get(attr.PEER, 0)
            level = levels.get(address, 0)
            if peer_packets:
                for mac, count in stats.counts("macs").items():
                    if mac in not_peers:
                        continue
                    key = (segment, mac)
                    row = peers.get(key)
                    if row is None:
                        row = peers[key] = PeerAcrossHosts(segment, mac)
                        peer_addresses[key] = set()
                    if not row.hosts or row.hosts[-1] != host:
                        row.hosts.append(host)
                    peer_addresses[key].add(address)
                    row.packets += min(count, peer_packets)
                    row.level = max(row.level, level)
            outside = stats.packets - origins.get(attr.LOCAL, 0)
            if outside <= 0:
                continue
            found = sources.get(address)
            if found is None:
                found = sources[address] = SourceAcrossSegments(address)
            if segment not in found.segments:
                found.segments.append(segment)
            found.hosts.append(host)
            found.packets += outside
            found.level = max(found.level, level)
            for origin, count in origins.items():
                if origin != attr.LOCAL:
                    found.origins[origin] = found.origins.get(origin, 0) + count
    result = Correlation()
    for key, row in peers.items():
        if len(row.hosts) >= min_hosts:
            row.addresses = sorted(peer_addresses[key], key=natural)
            result.peers.append(row)
    result.peers.sort(key=lambda p: (-len(p.hosts), -p.level, -p.packets, p.segment, p.mac))
    for found in sources.values():
        if len(found.segments) >= min_segments:
            found.segments.sort()
            found.origins = dict(sorted(found.origins.items()))
            result.sources.append(found)
    result.sources.sort(
        key=lambda s: (-len(s.segments), -len(s.hosts), -s.level, -s.packets, natural(s.address))
    )
    return result
