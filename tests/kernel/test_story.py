"""The story of nfkit, end to end, with real packets in throwaway network namespaces.

Topology (every name carries the lab's random tag; the lab removes it all)::

    inet (198.51.100.2) --MTU 1400-- gw (198.51.100.1 | 192.0.2.1) --+
                                                                      |  bridge in "sw"
                                     srv (192.0.2.10) ---------------+
                                     peer (192.0.2.20) --------------+

``inet`` advertises an MSS for a 1500-byte MTU (``advmss``), as a host behind a tunnel would, so
the server sends full-size segments with DF and only ICMP fragmentation-needed from ``gw`` can
tell it to send smaller ones: Path MTU discovery either works or the transfer stalls.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from netlab import Lab

pytestmark = pytest.mark.kernel

REPO = Path(__file__).resolve().parents[2]
TRANSFER_BYTES = 4 * 1024 * 1024
#: Long enough for 4 MB over veth many times over; a PMTUD blackhole never finishes.
TRANSFER_TIMEOUT = 6.0

RECEIVER = textwrap.dedent(
    """
    import socket, sys
    port, timeout = int(sys.argv[1]), float(sys.argv[2])
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("0.0.0.0", port))
    srv.listen(1)
    print("listening", flush=True)
    srv.settimeout(timeout)
    conn, _ = srv.accept()
    conn.settimeout(timeout)
    total = 0
    while True:
        data = conn.recv(65536)
        if not data:
            break
        total += len(data)
    conn.sendall(str(total).encode())
    conn.close()
    """
)

SENDER = textwrap.dedent(
    """
    import socket, sys
    host, port, size, timeout = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
    sock = socket.create_connection((host, port), timeout=timeout)
    try:
        sock.sendall(b"x" * size)  # the timeout bounds the whole sendall
        sock.shutdown(socket.SHUT_WR)
        print(sock.recv(64).decode())
    except OSError as exc:
        print(f"stalled: {exc!r}")
        sys.exit(1)
    """
)

NAIVE_RULESET = """\
table inet naive {
    chain input {
        type filter hook input priority 0; policy drop;
        meta l4proto icmp drop
        ct state established,related accept
        iif "lo" accept
        tcp dport 22 accept
    }
}
"""


@dataclass
class Story:
    """The namespaces of the story topology and the facts tests need about them."""

    lab: Lab
    inet: str
    gw: str
    sw: str
    srv: str
    peer: str
    gw_mac: str
    peer_mac: str
    srv_mac: str

    inet_ip = "198.51.100.2"
    gw_inside_ip = "192.0.2.1"
    srv_ip = "192.0.2.10"
    peer_ip = "192.0.2.20"


def build_story(lab: Lab) -> Story:
    """Create the topology described in the module docstring."""
    inet, gw, sw, srv, peer = (lab.netns(r) for r in ("inet", "gw", "sw", "srv", "peer"))
    lab.veth(inet, "up0", gw, "out0", mtu=1400)
    lab.veth(gw, "in0", sw, "pgw")
    lab.veth(srv, "eth0", sw, "psrv")
    lab.veth(peer, "eth0", sw, "ppeer")
    lab.bridge(sw, "br0", ["pgw", "psrv", "ppeer"])
    lab.addr(inet, "up0", "198.51.100.2/24")
    lab.addr(gw, "out0", "198.51.100.1/24")
    lab.addr(gw, "in0", "192.0.2.1/24")
    lab.addr(srv, "eth0", "192.0.2.10/24")
    lab.addr(peer, "eth0", "192.0.2.20/24")
    lab.run(gw, "sysctl", "-qw", "net.ipv4.ip_forward=1")
    # A far side that asks for full-size segments: only PMTUD can make them fit.
    lab.run(inet, "ip", "route", "add", "192.0.2.0/24", "via", "198.51.100.1", "advmss", "1460")
    for ns in (srv, peer):
        lab.run(ns, "ip", "route", "add", "default", "via", "192.0.2.1")
    story = Story(lab, inet, gw, sw, srv, peer, lab.mac(gw, "in0"), lab.mac(peer, "eth0"),
                  lab.mac(srv, "eth0"))
    # Fill the neighbour tables (the gateway's MAC is what attribution keys on).
    lab.run(srv, "ping", "-c", "1", "-W", "2", story.gw_inside_ip)
    lab.run(srv, "ping", "-c", "1", "-W", "2", story.peer_ip)
    return story


@pytest.fixture
def story(lab: Lab) -> Iterator[Story]:
    """The story topology, removed with the lab."""
    yield build_story(lab)


def transfer(story: Story, port: int = 5001) -> subprocess.CompletedProcess[str]:
    """Send TRANSFER_BYTES from srv to inet over TCP (DF set, as Linux does by default)."""
    lab = story.lab
    lab.run(story.srv, "ip", "route", "flush", "cache")
    receiver = subprocess.Popen(
        ["ip", "netns", "exec", story.inet, sys.executable, "-c", RECEIVER, str(port),
         str(TRANSFER_TIMEOUT + 2)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert receiver.stdout is not None
        assert receiver.stdout.readline().strip() == "listening"
        return lab.run(
            story.srv, sys.executable, "-c", SENDER, story.inet_ip, str(port),
            str(TRANSFER_BYTES), str(TRANSFER_TIMEOUT), check=False,
            timeout=TRANSFER_TIMEOUT + 10,
        )
    finally:
        receiver.kill()
        receiver.wait()


def ping_df(story: Story) -> str:
    """``ping -M do -s 1472`` from srv to inet: 1500-byte packets with DF, output text."""
    story.lab.run(story.srv, "ip", "route", "flush", "cache")
    done = story.lab.run(
        story.srv, "ping", "-M", "do", "-s", "1472", "-c", "2", "-i", "0.3", "-W", "1",
        story.inet_ip, check=False,
    )
    return done.stdout + done.stderr


def test_without_firewall_pmtud_works(story: Story) -> None:
    """The topology itself: frag-needed comes back and a big transfer completes."""
    assert "mtu = 1400" in ping_df(story) or "mtu=1400" in ping_df(story)
    done = transfer(story)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip() == str(TRANSFER_BYTES)


def test_naive_icmp_dropping_ruleset_stalls(story: Story) -> None:
    """The test can fail: a ruleset that drops ICMP turns the path into a PMTUD blackhole."""
    story.lab.nft(story.srv, NAIVE_RULESET)
    out = ping_df(story)
    assert "mtu" not in out.lower(), out
    done = transfer(story)
    assert done.returncode != 0, done.stdout
    assert "stalled" in done.stdout
    # And doctor says why.
    report = run_nfkit("doctor", "--json", "--netns", story.srv, "--table", "inet naive")
    assert report.returncode == 1
    found = {f["code"] for f in json.loads(report.stdout)["findings"]}
    assert "pmtud_blackhole" in found


def run_nfkit(*args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run the nfkit CLI as a user would (a separate process)."""
    return subprocess.run(
        [sys.executable, "-m", "nfkit", *args], capture_output=True, text=True, input=input,
        cwd=REPO, timeout=120, check=False,
    )
