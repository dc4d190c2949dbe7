"""A server on a LAN segment with a gateway and a peer, and an "internet" host behind the gateway.

::

    inet (198.51.100.7, 203.0.113.66, 2001:db8:ff::7)
      |  wan0
    gw (router; lan0 192.0.2.1, 2001:db8:1::1, MAC 52:54:00:00:00:01)
      |  lan0
    [bridge br0 in namespace "sw"] --- peer (192.0.2.20, MAC 52:54:00:00:00:20)
      |
    srv (192.0.2.10, 2001:db8:1::10, MAC 52:54:00:00:00:10): nft policy logging with nfkit
    prefixes; its conntrack INVALID drop sits before the ICMP accepts (a PMTUD black hole)

Used by the real-kernel attribution test and by ``examples/make_sample_log.py``. Every packet
stays between the lab's own namespaces.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path

from netlab import Lab

TRAFFIC = str(Path(__file__).with_name("traffic.py"))

GW_MAC = "52:54:00:00:00:01"
SRV_MAC = "52:54:00:00:00:10"
PEER_MAC = "52:54:00:00:00:20"
LAN4, LAN6 = "192.0.2.0/24", "2001:db8:1::/64"
SRV4, SRV6 = "192.0.2.10", "2001:db8:1::10"
PEER4, PEER6 = "192.0.2.20", "2001:db8:1::20"
GW4, GW6 = "192.0.2.1", "2001:db8:1::1"
INET4, INET4_B, INET6 = "198.51.100.7", "203.0.113.66", "2001:db8:ff::7"

SRV_RULESET = """
table inet {tag}_filter {{
    chain input {{
        type filter hook input priority 0; policy drop;
        iif lo accept
        icmpv6 type {{ nd-neighbor-solicit, nd-neighbor-advert, nd-router-advert }} accept
        ct state invalid log prefix "{tag}:input:drop:invalid " drop
        ct state established,related accept
        meta l4proto {{ icmp, icmpv6 }} accept
        tcp dport 22 log prefix "{tag}:input:accept:ssh " accept
        tcp dport 80 accept
        log prefix "{tag}:input:drop:policy " drop
    }}
    chain output {{
        type filter hook output priority 0; policy accept;
        udp dport 9 log prefix "{tag}:output:log:discard "
    }}
}}
"""


@dataclass
class Topology:
    """Namespace names of one lab run."""

    lab: Lab
    inet: str
    gw: str
    sw: str
    peer: str
    srv: str

    def traffic(self, ns: str, *args: str) -> None:
        """Run one action of traffic.py inside ``ns``."""
        self.lab.run(ns, sys.executable, TRAFFIC, *args)


def build(lab: Lab) -> Topology:
    """Create the namespaces, links, addresses, routes and the server's firewall."""
    inet, gw, sw = lab.netns("inet"), lab.netns("gw"), lab.netns("sw")
    peer, srv = lab.netns("peer"), lab.netns("srv")
    lab.veth(inet, "eth0", gw, "wan0")
    lab.veth(gw, "lan0", sw, "p-gw")
    lab.veth(peer, "eth0", sw, "p-peer")
    lab.veth(srv, "eth0", sw, "p-srv")
    lab.bridge(sw, "br0", ["p-gw", "p-peer", "p-srv"])
    for ns, dev, mac in ((gw, "lan0", GW_MAC), (peer, "eth0", PEER_MAC), (srv, "eth0", SRV_MAC)):
        lab.run(ns, "ip", "link", "set", dev, "address", mac)
    lab.addr(inet, "eth0", f"{INET4}/24")
    lab.addr(inet, "eth0", f"{INET4_B}/24")
    lab.addr(inet, "eth0", f"{INET6}/64")
    lab.addr(gw, "wan0", "198.51.100.1/24")
    lab.addr(gw, "wan0", "203.0.113.1/24")
    lab.addr(gw, "wan0", "2001:db8:ff::1/64")
    lab.addr(gw, "lan0", f"{GW4}/24")
    lab.addr(gw, "lan0", f"{GW6}/64")
    for ns, v4, v6 in ((peer, PEER4, PEER6), (srv, SRV4, SRV6)):
        lab.addr(ns, "eth0", f"{v4}/24")
        lab.addr(ns, "eth0", f"{v6}/64")
        lab.run(ns, "ip", "route", "add", "default", "via", GW4)
        lab.run(ns, "ip", "-6", "route", "add", "default", "via", GW6)
    lab.run(inet, "ip", "route", "add", "default", "via", "198.51.100.1")
    lab.run(inet, "ip", "-6", "route", "add", "default", "via", "2001:db8:ff::1")
    lab.run(gw, "sysctl", "-qw", "net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1")
    lab.run(srv, "sysctl", "-qw", "net.ipv4.conf.all.rp_filter=0", "net.ipv4.conf.eth0.rp_filter=0")
    lab.nft(srv, SRV_RULESET.format(tag=lab.tag))
    lab.spawn(srv, sys.executable, TRAFFIC, "serve", "22", "80")
    topo = Topology(lab, inet, gw, sw, peer, srv)
    # The server talks to its gateway (so its neighbour table holds the gateway's MAC) and the
    # internet host can reach the server.
    lab.run(srv, "ping", "-c1", "-W2", GW4)
    lab.run(srv, "ping", "-6", "-c1", "-W2", GW6, check=False)
    lab.run(inet, "ping", "-c1", "-W2", SRV4)
    _wait_listening(lab, srv, 80)
    return topo


def _wait_listening(lab: Lab, ns: str, port: int) -> None:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        out = lab.run(ns, "ss", "-ltn", check=False).stdout
        if f":{port} " in out:
            return
        time.sleep(0.05)


def attack(topo: Topology) -> int:
    """Send the sample's traffic; return how many LOG lines it should give (at least)."""
    t = topo.traffic
    # From the internet, through the gateway: a port scan, an SSH login, v6 probes.
    t(topo.inet, "scan", SRV4, "20-45")
    t(topo.inet, "scan", SRV6, "3300-3310")
    t(topo.inet, "connect", SRV4, "22", INET4_B)
    # A connection from the internet whose later ACKs fall outside conntrack's window.
    t(topo.inet, "invalid-acks", SRV4, "80", "12")
    # A router on the path reports a smaller MTU for a flow the server's conntrack never saw:
    # INVALID, dropped before the ICMP accept -> PMTUD black hole (v4 and v6).
    t(topo.inet, "frag-needed", SRV4, SRV4, INET4, "1400")
    t(topo.inet, "packet-too-big", SRV6, SRV6, INET6, "1280")
    # From a peer on the same segment: the upstream firewall never sees these.
    t(topo.peer, "scan", SRV4, "1000-1019")
    t(topo.peer, "udp", SRV4, "53", "123", "161", "1900")
    t(topo.peer, "scan", SRV6, "445-446")
    t(topo.peer, "spoof-udp", "198.18.0.99", SRV4, "5060")
    # Locally generated, logged by the output chain.
    t(topo.srv, "udp", INET4, "9")
    return 26 + 11 + 1 + 3 + 2 + 20 + 4 + 2 + 1 + 1
