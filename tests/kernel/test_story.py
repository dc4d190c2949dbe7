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
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from netlab import Lab

pytestmark = pytest.mark.kernel

REPO = Path(__file__).resolve().parents[2]
BE_LIBERAL = "/proc/sys/net/netfilter/nf_conntrack_tcp_be_liberal"
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
        icmpv6 type { packet-too-big, time-exceeded, echo-request } drop
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
    inet_ip6 = "2001:db8:100::2"
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
    lab.addr(inet, "up0", "2001:db8:100::2/64")
    lab.addr(gw, "out0", "2001:db8:100::1/64")
    lab.addr(gw, "in0", "2001:db8:1::1/64")
    lab.addr(srv, "eth0", "2001:db8:1::10/64")
    lab.addr(peer, "eth0", "2001:db8:1::20/64")
    lab.run(gw, "sysctl", "-qw", "net.ipv4.ip_forward=1")
    lab.run(gw, "sysctl", "-qw", "net.ipv6.conf.all.forwarding=1")
    # A far side that asks for full-size segments: only PMTUD can make them fit.
    lab.run(inet, "ip", "route", "add", "192.0.2.0/24", "via", "198.51.100.1", "advmss", "1460")
    lab.run(inet, "ip", "-6", "route", "add", "2001:db8:1::/64", "via", "2001:db8:100::1")
    for ns in (srv, peer):
        lab.run(ns, "ip", "route", "add", "default", "via", "192.0.2.1")
        lab.run(ns, "ip", "-6", "route", "add", "default", "via", "2001:db8:1::1")
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


def ping_df(story: Story, v6: bool = False) -> str:
    """``ping -M do -s 1472`` from srv to inet: 1500-byte packets that may not be fragmented.

    IPv6 is never fragmented by routers: 1452 bytes of payload make a 1500-byte packet.
    """
    family = ["-6"] if v6 else []
    story.lab.run(story.srv, "ip", *family, "route", "flush", "cache")
    size, target = ("1452", story.inet_ip6) if v6 else ("1472", story.inet_ip)
    done = story.lab.run(
        story.srv, "ping", *family, "-M", "do", "-s", size, "-c", "2", "-i", "0.3", "-W", "1",
        target, check=False,
    )
    return done.stdout + done.stderr


def test_without_firewall_pmtud_works(story: Story) -> None:
    """The topology itself: frag-needed comes back and a big transfer completes."""
    assert "mtu = 1400" in ping_df(story)
    done = transfer(story)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip() == str(TRANSFER_BYTES)


def test_naive_icmp_dropping_ruleset_stalls(story: Story) -> None:
    """The test can fail: a ruleset that drops ICMP turns the path into a PMTUD blackhole."""
    story.lab.nft(story.srv, NAIVE_RULESET)
    out = ping_df(story)
    assert "mtu" not in out.lower(), out
    out6 = ping_df(story, v6=True)
    assert "mtu" not in out6.lower(), out6
    done = transfer(story)
    assert done.returncode != 0, done.stdout
    assert "stalled" in done.stdout
    # And doctor says why.
    report = run_nfkit("doctor", "--json", "--netns", story.srv, "--table", "inet naive")
    assert report.returncode == 1
    found = {f["code"] for f in json.loads(report.stdout)["findings"]}
    assert "pmtud_blackhole" in found


SERVER_POLICY = """\
# The server: default drop, SSH and web open, every dropped packet logged with this run's tag.
log tag {tag}
log rate 100/second burst 50
conntrack {{
    be_liberal on
}}
input policy drop log {{
    tcp dport 22 accept
    tcp dport 80 accept
}}
"""


def apply_server_policy(
    story: Story, tmp_path: Path, *extra: str
) -> subprocess.CompletedProcess[str]:
    """Write the server policy and ``nfkit apply`` it into the server's namespace."""
    policy = tmp_path / "server.nfk"
    policy.write_text(SERVER_POLICY.format(tag=story.lab.tag))
    return run_nfkit("apply", str(policy), "--netns", story.srv, "--state-dir",
                     str(tmp_path / "state"), *extra)


def test_nfkit_policy_keeps_pmtud_and_sets_be_liberal(story: Story, tmp_path: Path) -> None:
    """Steps 1, 2 and 5: PMTUD works through nfkit's default-drop ruleset; be_liberal is 1."""
    lab = story.lab
    assert lab.run(story.srv, "cat", BE_LIBERAL).stdout.strip() == "0"  # a fresh namespace
    done = apply_server_policy(story, tmp_path)
    assert done.returncode == 0, done.stderr
    assert lab.run(story.srv, "cat", BE_LIBERAL).stdout.strip() == "1"
    loaded = lab.run(story.srv, "nft", "list", "ruleset").stdout
    assert "policy drop;" in loaded
    out = ping_df(story)
    assert "Frag needed" in out and "mtu = 1400" in out, out
    out6 = ping_df(story, v6=True)
    assert "Packet too big" in out6 and "mtu=1400" in out6, out6
    sent = transfer(story)
    assert sent.returncode == 0, sent.stdout + sent.stderr
    assert sent.stdout.strip() == str(TRANSFER_BYTES)
    report = run_nfkit("doctor", "--json", "--netns", story.srv, "--log-tag", lab.tag)
    findings = json.loads(report.stdout)["findings"]
    assert report.returncode == 0, [f for f in findings if f["severity"] != "info"]


def attack(story: Story, source_ns: str, ports: tuple[int, ...]) -> None:
    """TCP connection attempts to closed ports of the server (they are dropped and logged)."""
    script = textwrap.dedent(
        """
        import socket, sys
        for port in sys.argv[2:]:
            try:
                socket.create_connection((sys.argv[1], int(port)), timeout=0.3).close()
            except OSError:
                pass
        """
    )
    story.lab.run(source_ns, sys.executable, "-c", script, story.srv_ip,
                  *(str(p) for p in ports))


def test_attacks_are_logged_and_attributed(story: Story, tmp_path: Path) -> None:
    """Step 3: the kernel logs both attacks; summarize says upstream and peer, with the MAC."""
    assert apply_server_policy(story, tmp_path).returncode == 0
    attack(story, story.inet, (23, 25, 3389))
    attack(story, story.peer, (23, 445))
    lines = story.lab.kernel_log(wait_for=5)
    assert any(f"SRC={story.inet_ip} " in line for line in lines), lines
    assert any(f"SRC={story.peer_ip} " in line for line in lines), lines
    assert all(f"{story.lab.tag}:input:drop:policy " in line for line in lines)
    log = tmp_path / "kern.log"
    log.write_text("\n".join(lines) + "\n")
    done = run_nfkit("summarize", str(log), "--format", "json", "--netns", story.srv)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    sources = {s["address"]: s for s in summary["sources"]}
    assert sources[story.inet_ip]["origin"] == "upstream"
    assert sources[story.peer_ip]["origin"] == "peer"
    assert sources[story.peer_ip]["mac"] == story.peer_mac
    assert summary["by_origin"].get("peer", 0) > 0 and summary["by_origin"].get("upstream", 0) > 0


def test_try_restores_and_broken_policy_leaves_old(story: Story, tmp_path: Path) -> None:
    """Step 4 on the story's server: an unconfirmed --try comes back; a broken policy fails."""
    lab = story.lab
    assert apply_server_policy(story, tmp_path).returncode == 0
    before = lab.run(story.srv, "nft", "list", "ruleset").stdout
    wider = tmp_path / "wider.nfk"
    wider.write_text(SERVER_POLICY.format(tag=lab.tag).replace("dport 80", "dport 8080"))
    state = ["--netns", story.srv, "--state-dir", str(tmp_path / "state")]
    tried = run_nfkit("apply", str(wider), "--try", "2", *state)
    assert tried.returncode == 0, tried.stderr
    assert "dport 8080" in lab.run(story.srv, "nft", "list", "ruleset").stdout
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if lab.run(story.srv, "nft", "list", "ruleset").stdout == before:
            break
        time.sleep(0.2)
    assert lab.run(story.srv, "nft", "list", "ruleset").stdout == before
    broken = tmp_path / "broken.nfk"
    broken.write_text("input policy drop {\n    tcp dport 22 accept\n    icmp type 3 drop\n}\n")
    failed = run_nfkit("apply", str(broken), *state)
    assert failed.returncode == 2 and "Traceback" not in failed.stderr
    assert f"{broken}:" in failed.stderr
    assert lab.run(story.srv, "nft", "list", "ruleset").stdout == before
    # PMTUD still works through the ruleset that stayed.
    assert transfer(story).returncode == 0


def run_nfkit(*args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run the nfkit CLI as a user would (a separate process)."""
    return subprocess.run(
        [sys.executable, "-m", "nfkit", *args], capture_output=True, text=True, input=input,
        cwd=REPO, timeout=120, check=False,
    )
