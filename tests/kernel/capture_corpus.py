"""Capture a corpus of netfilter LOG lines written by the real kernel.

Builds throwaway network namespaces (``tests/netlab.py``), loads LOG rules with nft and
iptables, sends one of each kind of packet and keeps the matching ``dmesg`` lines::

    cli (c0) ---- (r0) rtr (r1, MTU 1280) ---- (s0, MTU 1280) srv
    h1 (e0) ---- (b1) bri: bridge br0 (b2) ---- (e0) h2

Run as root: ``python3 tests/kernel/capture_corpus.py [--out tests/data/kernel-corpus.log]``.
The lab's random tag in every prefix is replaced by :data:`STABLE_TAG` (same length, so lines
cut at the kernel's limit stay cut at the same place) and MAC addresses are fixed, so a new
capture differs from the committed one only in uptimes, ports, IDs, sequence numbers, flow
labels and checksums.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from netlab import Lab, enable_namespace_logging, kernel_unavailable_reason

#: Replaces the lab's per-run tag (``k`` + 6 hex digits) in captured lines.
STABLE_TAG = "corpus0"
DEFAULT_OUT = Path(__file__).resolve().parent.parent / "data" / "kernel-corpus.log"

# Fixed MACs: the corpus keeps the same link headers run after run.
_MACS = {
    "c0": "02:00:00:00:01:02",
    "r0": "02:00:00:00:01:01",
    "r1": "02:00:00:00:02:01",
    "s0": "02:00:00:00:02:02",
    "h1e0": "02:00:00:00:03:01",
    "h2e0": "02:00:00:00:03:02",
}

_CLI_NFT = """
table inet {tag}cli {{
    chain output {{
        type filter hook output priority 0;
        tcp dport 7000 tcp flags syn log prefix "{tag}:cli-out-uid: " flags skuid
    }}
    chain input {{
        type filter hook input priority 0;
        icmp type {{ destination-unreachable, time-exceeded }} log prefix "{tag}:icmp-err: "
        icmpv6 type {{ destination-unreachable, packet-too-big, time-exceeded }} \\
            log prefix "{tag}:icmp6-err: "
        tcp sport {{ 7000, 7001 }} log prefix "{tag}:cli-in-tcp: " flags tcp sequence,options
    }}
}}
"""

_RTR_IPTABLES = """
*mangle
:PREROUTING ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
-A FORWARD -p tcp --syn -j LOG --log-prefix "{tag}:fwd-syn " --log-macdecode \
--log-tcp-sequence --log-tcp-options --log-ip-options
COMMIT
*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
-A FORWARD -p icmp --icmp-type echo-request -j LOG --log-prefix "{tag}:fwd-icmp:"
-A FORWARD -f -j LOG --log-prefix "{tag}:fwd-frag "
-A FORWARD -p udp --dport 9 -j LOG --log-prefix "{tag}:fwd-udp "
COMMIT
"""

_RTR_IP6TABLES = """
*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
-A FORWARD -p ipv6-icmp --icmpv6-type echo-request -j LOG --log-prefix "{tag}:fwd6-icmp "
-A FORWARD -p udp --dport 9 -j LOG --log-prefix "{tag}:fwd6-udp "
-A FORWARD -p tcp --syn -j LOG --log-prefix "{tag}:fwd6-syn " --log-tcp-sequence \
--log-tcp-options
COMMIT
"""

_RTR_NFT = """
table ip6 {tag}rtr6 {{
    chain pre {{
        type filter hook prerouting priority -300;
        exthdr frag exists log prefix "{tag}:v6-frag: "
    }}
}}
"""

_SRV_NFT = """
table ip {tag}srv {{
    chain pre {{
        type filter hook prerouting priority -300;
        udp dport 9 meta mark set 0x2a log prefix "{tag}:udp-mark: "
        udp dport 9 log prefix "{tag}:ether: " flags ether
        udp dport 9 log prefix "{tag} spaced prefix: "
        udp dport 9 log prefix "{tag}"
        icmp type echo-request log prefix "{tag}:srv-echo: " flags ip options
        ip protocol {{ 47, 50, 51 }} log prefix "{tag}:srv-raw: "
        ip protocol tcp tcp dport != 7000 tcp dport != 7001 log prefix "{tag}:srv-tcp-odd: "
        ip protocol icmp icmp type != echo-request log prefix "{tag}:srv-icmp-odd: "
    }}
}}
table ip6 {tag}srv6 {{
    chain pre {{
        type filter hook prerouting priority -300;
        icmpv6 type echo-request log prefix "{tag}:srv6-echo: " flags all
        meta l4proto 47 log prefix "{tag}:srv6-raw: "
        ip6 nexthdr 60 log prefix "{tag}:srv6-exthdr: " flags ip options
    }}
}}
table arp {tag}srvarp {{
    chain arp_in {{
        type filter hook input priority 0;
        log prefix "{tag}:arp: "
    }}
}}
"""

_SRV_IPTABLES = """
*raw
:PREROUTING ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
-A PREROUTING -p udp --dport 9 -j LOG --log-prefix "\\"{tag}:quoted\\" "
COMMIT
"""

_BRI_IPTABLES = """
*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
-A FORWARD -p icmp -j LOG --log-prefix "{tag}:bridged "
COMMIT
"""

_BRI_NFT = """
table bridge {tag}bri {{
    chain bridged {{
        type filter hook forward priority 0;
        icmp type echo-request log prefix "{tag}:br-nft: "
    }}
}}
"""

# Small programs run inside a namespace with ``python3 -c``.
_TCP_SERVER = """
import socket, sys
srv = socket.socket(socket.AF_INET6 if ':' in sys.argv[1] else socket.AF_INET)
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind((sys.argv[1], 7000)); srv.listen(4)
while True:
    conn, _ = srv.accept(); conn.recv(100); conn.close()
"""
_TCP_CLIENT = """
import socket, sys
for port in (7000, 7001):
    s = socket.socket(socket.AF_INET6 if ':' in sys.argv[1] else socket.AF_INET)
    s.settimeout(2)
    try:
        s.connect((sys.argv[1], port)); s.sendall(b'hello'); s.close()
    except OSError:
        pass
"""
_UDP_SEND = """
import socket, sys
s = socket.socket(socket.AF_INET6 if ':' in sys.argv[1] else socket.AF_INET, socket.SOCK_DGRAM)
s.sendto(b'corpus', (sys.argv[1], 9))
"""
_RAW_SEND = """
import socket, struct, sys, time
dst = sys.argv[1]
def raw(proto, payload, family=socket.AF_INET):
    s = socket.socket(family, socket.SOCK_RAW, proto)
    s.sendto(payload, (dst, 0) if family == socket.AF_INET else (dst, 0, 0, 0))
    s.close(); time.sleep(0.05)
if ':' not in dst:
    raw(47, b'\\x00\\x00\\x08\\x00' + bytes(20))                       # GRE
    raw(50, struct.pack('!II', 0x1001, 1) + bytes(16))                 # ESP
    raw(51, struct.pack('!BBHII', 59, 1, 0, 0x2002, 1) + bytes(8))     # AH
    raw(socket.IPPROTO_TCP, b'abcd')                                   # TCP header cut short
else:
    raw(47, b'\\x00\\x00\\x86\\xdd' + bytes(20), socket.AF_INET6)
    # 120 destination-options headers: with "flags ip options" the line outgrows 1 KiB.
    count = 120
    headers = b''.join(
        bytes([60 if i < count - 1 else 59, 0, 1, 4, 0, 0, 0, 0]) for i in range(count)
    )
    src = socket.inet_pton(socket.AF_INET6, sys.argv[2])
    ip6 = struct.pack('!IHBB', 6 << 28, len(headers), 60, 64)
    ip6 += src + socket.inet_pton(socket.AF_INET6, dst)
    s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_RAW)
    s.sendto(ip6 + headers, (dst, 0, 0, 0))
"""


def _build(lab: Lab) -> dict[str, str]:
    """Create the namespaces and links; return role -> namespace name."""
    ns = {role: lab.netns(role) for role in ("cli", "rtr", "srv", "bri", "h1", "h2")}
    lab.veth(ns["cli"], "c0", ns["rtr"], "r0")
    lab.veth(ns["rtr"], "r1", ns["srv"], "s0", mtu=1280)
    lab.veth(ns["h1"], "e0", ns["bri"], "b1")
    lab.veth(ns["h2"], "e0", ns["bri"], "b2")
    for role, dev, key in (
        ("cli", "c0", "c0"),
        ("rtr", "r0", "r0"),
        ("rtr", "r1", "r1"),
        ("srv", "s0", "s0"),
        ("h1", "e0", "h1e0"),
        ("h2", "e0", "h2e0"),
    ):
        lab.run(ns[role], "ip", "link", "set", dev, "address", _MACS[key])
    lab.bridge(ns["bri"], "br0", ["b1", "b2"])
    for role, dev, cidrs in (
        ("cli", "c0", ("10.77.1.2/24", "fd77:1::2/64")),
        ("rtr", "r0", ("10.77.1.1/24", "fd77:1::1/64")),
        ("rtr", "r1", ("10.77.2.1/24", "fd77:2::1/64")),
        ("srv", "s0", ("10.77.2.2/24", "fd77:2::2/64")),
        ("h1", "e0", ("10.77.3.1/24",)),
        ("h2", "e0", ("10.77.3.2/24",)),
    ):
        for cidr in cidrs:
            lab.addr(ns[role], dev, cidr)
    for role, gw4, gw6 in (("cli", "10.77.1.1", "fd77:1::1"), ("srv", "10.77.2.1", "fd77:2::1")):
        lab.run(ns[role], "ip", "route", "add", "default", "via", gw4)
        lab.run(ns[role], "ip", "-6", "route", "add", "default", "via", gw6)
    lab.run(ns["rtr"], "sysctl", "-qw", "net.ipv4.ip_forward=1")
    lab.run(ns["rtr"], "sysctl", "-qw", "net.ipv6.conf.all.forwarding=1")
    # Bridged IPv4 through iptables, which then logs PHYSIN=/PHYSOUT= (per-namespace setting).
    lab.run(ns["bri"], "sysctl", "-qw", "net.bridge.bridge-nf-call-iptables=1", check=False)
    return ns


def _load_rules(lab: Lab, ns: dict[str, str]) -> None:
    tag = lab.tag
    lab.nft(ns["cli"], _CLI_NFT.format(tag=tag))
    lab.run(ns["rtr"], "iptables-restore", input=_RTR_IPTABLES.format(tag=tag))
    lab.run(ns["rtr"], "ip6tables-restore", input=_RTR_IP6TABLES.format(tag=tag))
    lab.nft(ns["rtr"], _RTR_NFT.format(tag=tag))
    lab.nft(ns["srv"], _SRV_NFT.format(tag=tag))
    lab.run(ns["srv"], "iptables-restore", input=_SRV_IPTABLES.format(tag=tag))
    lab.run(ns["bri"], "iptables-restore", input=_BRI_IPTABLES.format(tag=tag))
    lab.nft(ns["bri"], _BRI_NFT.format(tag=tag))


def _ping(lab: Lab, ns: str, *args: str) -> None:
    lab.run(ns, "ping", "-n", "-q", "-c", "1", "-W", "1", *args, check=False)
    time.sleep(0.15)  # ICMP errors are rate limited per destination


def _send_traffic(lab: Lab, ns: dict[str, str]) -> None:
    cli, srv = ns["cli"], ns["srv"]
    for dst in ("10.77.2.2", "fd77:2::2"):
        _ping(lab, cli, dst)  # forwarded echo (IN= and OUT=), ARP and neighbour discovery
        _ping(lab, cli, "-t", "1", dst)  # time exceeded from the router
        _ping(lab, cli, "-s", "3000", dst)  # fragments
    _ping(lab, cli, "-M", "do", "-s", "1400", "10.77.2.2")  # frag needed, MTU=1280
    _ping(lab, cli, "-s", "1400", "fd77:2::2")  # packet too big, MTU=1280
    _ping(lab, cli, "-R", "10.77.2.2")  # IPv4 options (record route)
    for dst in ("10.77.2.2", "fd77:2::2"):
        lab.run(cli, "python3", "-c", _UDP_SEND, dst)  # port unreachable
        time.sleep(0.15)
        server = lab.spawn(srv, "python3", "-c", _TCP_SERVER, dst)
        time.sleep(0.5)
        lab.run(cli, "python3", "-c", _TCP_CLIENT, dst, check=False)  # SYN..., RST
        server.kill()
        server.wait()
    lab.run(cli, "python3", "-c", _RAW_SEND, "10.77.2.2", check=False)
    lab.run(cli, "python3", "-c", _RAW_SEND, "fd77:2::2", "fd77:1::2", check=False)
    _ping(lab, ns["h1"], "10.77.3.2")  # bridged


def normalize(lines: list[str], tag: str) -> list[str]:
    """Replace the run's tag with :data:`STABLE_TAG` (same length) in each line."""
    assert len(tag) == len(STABLE_TAG)
    return [line.replace(tag, STABLE_TAG) for line in lines]


def capture(lab: Lab, settle: float = 1.0) -> list[str]:
    """Build the lab, send the packets and return the normalised kernel log lines."""
    ns = _build(lab)
    _load_rules(lab, ns)
    _send_traffic(lab, ns)
    time.sleep(settle)
    lines = lab.kernel_log(wait_for=1)
    return normalize([line.rstrip("\n") for line in lines], lab.tag)


def _uptime_pattern() -> re.Pattern[str]:
    return re.compile(r"^\[ *\d+\.\d+\] ")


def main(argv: list[str] | None = None) -> int:
    """Capture the corpus and write it (default ``tests/data/kernel-corpus.log``)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="file to write")
    args = parser.parse_args(argv)
    reason = kernel_unavailable_reason()
    if reason is not None:
        print(f"capture_corpus: cannot capture: {reason}", file=sys.stderr)
        return 2
    enable_namespace_logging()
    lab = Lab()
    try:
        lines = capture(lab)
    finally:
        lab.close()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("".join(line + "\n" for line in lines))
    print(f"capture_corpus: {len(lines)} lines -> {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
