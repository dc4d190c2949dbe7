"""The compiler's output against the real kernel, always inside throwaway namespaces.

* every golden case and every ``rules/`` example passes ``nft -c -f`` and
  ``iptables-restore --test`` / ``ip6tables-restore --test``;
* loaded, nft's own JSON listing shows ICMP frag-needed accepted before the INVALID drop;
* the generated script leaves ``be_liberal = 1`` in a fresh namespace, and a broken ruleset
  leaves the previously loaded one in place;
* real packets: the policy's tag shows up in the kernel log with the prefix scheme.
"""

from __future__ import annotations

import json
import random
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
from netlab import Lab

from nfkit.compiler import compile_policy
from nfkit.errors import SourceError

pytestmark = pytest.mark.kernel

REPO = Path(__file__).resolve().parents[2]
POLICIES = sorted((REPO / "tests" / "golden").glob("*/policy.nfk")) + sorted(
    (REPO / "rules").glob("*.nfk")
)
IDS = [f"{p.parent.name}/{p.name}" for p in POLICIES]
BE_LIBERAL = "/proc/sys/net/netfilter/nf_conntrack_tcp_be_liberal"


def _check(proc: subprocess.CompletedProcess[str], what: str) -> None:
    assert proc.returncode == 0, f"{what} failed:\n{proc.stderr}{proc.stdout}"


@pytest.mark.parametrize("policy", POLICIES, ids=IDS)
def test_nft_accepts_every_output(lab: Lab, policy: Path) -> None:
    ns = lab.netns("nft")
    if policy.parent.name.startswith(tuple(f"{i:02d}-" for i in range(100))):
        text = (policy.parent / "expected.nft").read_text()
        assert text == compile_policy(policy, "nftables", "ruleset").text
    else:
        text = compile_policy(policy, "nftables", "ruleset").text
    _check(lab.run(ns, "nft", "-c", "-f", "-", input=text, check=False), "nft -c")


@pytest.mark.parametrize("policy", POLICIES, ids=IDS)
def test_iptables_accepts_every_output(lab: Lab, policy: Path) -> None:
    ns = lab.netns("ipt")
    result = compile_policy(policy, "iptables", "ruleset")
    if "ipset" in result.rulesets:  # the rules reference the sets, which must exist
        _check(lab.run(ns, "ipset", "restore", input=result.rulesets["ipset"], check=False),
               "ipset restore")
    for family, tool in (("ipv4", "iptables-restore"), ("ipv6", "ip6tables-restore")):
        proc = lab.run(ns, tool, "--test", "--noflush", input=result.rulesets[family],
                       check=False)
        _check(proc, f"{tool} --test")


def _rules(listing: dict[str, Any], chain: str) -> list[list[dict[str, Any]]]:
    return [
        item["rule"]["expr"]
        for item in listing["nftables"]
        if "rule" in item and item["rule"]["table"] == "nfkit" and item["rule"]["chain"] == chain
    ]


def _matches(expr: list[dict[str, Any]]) -> list[tuple[str, str, Any]]:
    """(protocol or key, field, right) of every match in a rule."""
    out = []
    for item in expr:
        match = item.get("match")
        if match is None:
            continue
        left = match["left"]
        if "payload" in left:
            out.append((left["payload"]["protocol"], left["payload"]["field"], match["right"]))
        elif "ct" in left:
            out.append(("ct", left["ct"]["key"], match["right"]))
        elif "meta" in left:
            out.append(("meta", left["meta"]["key"], match["right"]))
    return out


def _verdict(expr: list[dict[str, Any]]) -> str | None:
    return next((k for item in expr for k in item if k in ("accept", "drop", "reject", "goto")),
                None)


def _is_frag_needed_accept(expr: list[dict[str, Any]]) -> bool:
    found = _matches(expr)
    return (_verdict(expr) == "accept" and ("icmp", "type", "destination-unreachable") in found
            and ("icmp", "code", "frag-needed") in found)


def _is_invalid_drop(expr: list[dict[str, Any]]) -> bool:
    return _verdict(expr) == "drop" and ("ct", "state", "invalid") in _matches(expr)


def _is_ptb_accept(expr: list[dict[str, Any]]) -> bool:
    return _verdict(expr) == "accept" and any(
        proto == "icmpv6" and field == "type" and "packet-too-big" in json.dumps(right)
        for proto, field, right in _matches(expr))


@pytest.mark.parametrize(
    ("example", "chains"),
    [("web-server", ("input",)), ("router-nat", ("input", "forward")), ("bastion", ("output",))],
)
def test_loaded_ruleset_accepts_frag_needed_before_the_invalid_drop(
    lab: Lab, example: str, chains: tuple[str, ...]
) -> None:
    ns = lab.netns("order")
    text = compile_policy(REPO / "rules" / f"{example}.nfk", "nftables", "ruleset").text
    lab.nft(ns, text)
    listing = json.loads(lab.run(ns, "nft", "-j", "list", "ruleset").stdout)
    for chain in chains:
        rules = _rules(listing, chain)
        frag = next(i for i, e in enumerate(rules) if _is_frag_needed_accept(e))
        ptb = next(i for i, e in enumerate(rules) if _is_ptb_accept(e))
        invalid = next(i for i, e in enumerate(rules) if _is_invalid_drop(e))
        first_drop = next(i for i, e in enumerate(rules) if _verdict(e) in ("drop", "reject"))
        assert frag < invalid and ptb < invalid, chain
        assert frag < first_drop and ptb < first_drop, chain


@pytest.mark.parametrize("backend", ["nftables", "iptables"])
def test_script_loads_and_sets_be_liberal(lab: Lab, backend: str, tmp_path: Path) -> None:
    ns = lab.netns("script")
    assert lab.run(ns, "cat", BE_LIBERAL).stdout.strip() == "0"  # a fresh namespace
    script = tmp_path / "load.sh"
    script.write_text(compile_policy(REPO / "rules" / "web-server.nfk", backend).text)
    proc = lab.run(ns, "sh", str(script), check=False)
    _check(proc, "the script")
    assert lab.run(ns, "cat", BE_LIBERAL).stdout.strip() == "1"
    assert "nf_conntrack_tcp_be_liberal = 1" in proc.stdout
    if backend == "nftables":
        assert "table inet nfkit" in lab.run(ns, "nft", "list", "tables").stdout
    else:
        saved = lab.run(ns, "iptables-save").stdout
        assert "-A INPUT -j NFKIT-INPUT" in saved
        # Running it again keeps exactly one jump.
        _check(lab.run(ns, "sh", str(script), check=False), "second run")
        assert lab.run(ns, "iptables-save").stdout.count("-A INPUT -j NFKIT-INPUT") == 1


def test_be_liberal_off_is_written_as_zero(lab: Lab, tmp_path: Path) -> None:
    ns = lab.netns("off")
    lab.run(ns, "sh", "-c", f"echo 1 > {BE_LIBERAL}")
    script = tmp_path / "off.sh"
    script.write_text(compile_policy("conntrack {\n  be_liberal off\n}\ninput {\n}\n",
                                     path="off.nfk").text)
    _check(lab.run(ns, "sh", str(script), check=False), "the script")
    assert lab.run(ns, "cat", BE_LIBERAL).stdout.strip() == "0"


def test_nft_script_leaves_other_tables_alone(lab: Lab, tmp_path: Path) -> None:
    ns = lab.netns("docker")
    lab.nft(ns, "table ip docker {\n  chain forward {\n    type filter hook forward priority 0;"
                "\n  }\n}\n")
    script = tmp_path / "load.sh"
    script.write_text(compile_policy(REPO / "rules" / "router-nat.nfk").text)
    _check(lab.run(ns, "sh", str(script), check=False), "the script")
    _check(lab.run(ns, "sh", str(script), check=False), "the script, again")
    tables = lab.run(ns, "nft", "list", "tables").stdout
    assert "table ip docker" in tables and "table inet nfkit" in tables


def _break(script: str, good: str, bad: str) -> str:
    assert good in script
    return script.replace(good, bad, 1)


def test_broken_nft_ruleset_leaves_the_running_one(lab: Lab, tmp_path: Path) -> None:
    ns = lab.netns("broken")
    good = tmp_path / "good.sh"
    good.write_text(compile_policy(REPO / "rules" / "web-server.nfk").text)
    _check(lab.run(ns, "sh", str(good), check=False), "the good script")
    before = lab.run(ns, "nft", "list", "ruleset").stdout
    broken = tmp_path / "broken.sh"
    script = compile_policy(REPO / "rules" / "bastion.nfk").text
    broken.write_text(_break(script, "ct state established,related accept",
                             "ct state established,related acceptx"))
    proc = lab.run(ns, "sh", str(broken), check=False)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "untouched" in proc.stderr
    assert lab.run(ns, "nft", "list", "ruleset").stdout == before


def test_broken_iptables_rules_leave_the_running_ones(lab: Lab, tmp_path: Path) -> None:
    ns = lab.netns("broken4")
    good = tmp_path / "good.sh"
    good.write_text(compile_policy(REPO / "rules" / "web-server.nfk", "iptables").text)
    _check(lab.run(ns, "sh", str(good), check=False), "the good script")

    def saved() -> str:
        text = lab.run(ns, "iptables-save").stdout + lab.run(ns, "ip6tables-save").stdout
        return "\n".join(line for line in text.splitlines() if not line.startswith("#"))

    before = saved()
    broken = tmp_path / "broken.sh"
    script = compile_policy(REPO / "rules" / "bastion.nfk", "iptables").text
    # Break only the IPv6 file: the IPv4 half must not be loaded either.
    marker = "-A NFKIT-INPUT -p ipv6-icmp -m icmp6 --icmpv6-type 2 -j ACCEPT"
    broken.write_text(_break(script, marker, marker + " --bogus"))
    proc = lab.run(ns, "sh", str(broken), check=False)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert saved() == before


def test_log_prefix_carries_the_policy_tag(lab: Lab) -> None:
    server = lab.netns("srv")
    client = lab.netns("cli")
    lab.veth(server, "eth0", client, "eth0")
    lab.addr(server, "eth0", "10.99.0.1/24")
    lab.addr(client, "eth0", "10.99.0.2/24")
    policy = f"log tag {lab.tag}\ninput policy drop log rate 100/second {{\n" \
             "    icmp type echo-request accept\n" \
             "    tcp dport 7 log prefix echo drop\n}\n"
    lab.nft(server, compile_policy(policy, "nftables", "ruleset", path="tag.nfk").text)
    assert lab.run(client, "ping", "-c", "1", "-W", "2", "10.99.0.1", check=False).returncode == 0
    lab.run(client, "python3", "-c",
            "import socket; s=socket.socket(); s.settimeout(1)\n"
            "for p in (7, 9):\n"
            "    try: s.connect(('10.99.0.1', p))\n"
            "    except OSError: pass\n"
            "    s=socket.socket(); s.settimeout(1)", check=False, timeout=10)
    lines = lab.kernel_log(wait_for=2)
    text = "\n".join(lines)
    assert re.search(rf"{lab.tag}:input:drop:echo IN=eth0 .*DPT=7 ", text), text
    assert re.search(rf"{lab.tag}:input:drop:policy IN=eth0 .*DPT=9 ", text), text


# An ICMP "fragmentation needed" (type 3 code 4) about a TCP flow the receiver's conntrack has
# never seen: conntrack classifies it INVALID, exactly the case ufw/FireHOL drop.
_FRAG_NEEDED = """
import socket, struct, sys

def checksum(data):
    if len(data) % 2:
        data += b"\\0"
    total = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    total = (total >> 16) + (total & 0xFFFF)
    total += total >> 16
    return ~total & 0xFFFF

src, dst = socket.inet_aton(sys.argv[1]), socket.inet_aton(sys.argv[2])
inner = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 1500, 1, 0x4000, 64, 6, 0, src, dst)
inner += struct.pack("!HHI", 443, 55555, 12345)
head = struct.pack("!BBHHH", 3, 4, 0, 0, 1280)
packet = head[:2] + struct.pack("!H", checksum(head + inner)) + head[4:] + inner
sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
for _ in range(3):
    sock.sendto(packet, (sys.argv[1], 0))
"""


def test_frag_needed_for_an_unknown_flow_gets_through(lab: Lab) -> None:
    server = lab.netns("pmtu")
    peer = lab.netns("peer")
    lab.veth(server, "eth0", peer, "eth0")
    lab.addr(server, "eth0", "10.98.0.1/24")
    lab.addr(peer, "eth0", "10.98.0.2/24")
    guarded_tag, control_tag = lab.tag + "g", lab.tag + "c"
    body = "input policy drop {\n    tcp dport 22 accept\n}\n"

    def send_and_log(tag: str) -> list[str]:
        lab.run(peer, "python3", "-c", _FRAG_NEEDED, "10.98.0.1", "10.98.0.2")
        return [line for line in lab.kernel_log(wait_for=10**6, timeout=1.5)
                if f"{tag}:input:drop:invalid" in line]

    # nfkit's ordering: the ICMP error is accepted before the INVALID drop sees it.
    lab.nft(server, compile_policy(f"log tag {guarded_tag}\n{body}", "nftables", "ruleset",
                                   path="g.nfk").text)
    assert send_and_log(guarded_tag) == []
    # Control: without the automatic accepts the same packets are INVALID and dropped.
    lab.nft(server, compile_policy(f'log tag {control_tag}\npmtud override "test"\n{body}',
                                   "nftables", "ruleset", path="c.nfk").text)
    logged = send_and_log(control_tag)
    assert logged and "PROTO=ICMP TYPE=3 CODE=4" in logged[0]


def test_random_policies_pass_the_kernels_checks(lab: Lab) -> None:
    from policy_fuzz import random_policy

    ns = lab.netns("fuzz")
    rng = random.Random(4)
    checked = 0
    while checked < 40:
        text = random_policy(rng)
        try:
            nft = compile_policy(text, "nftables", "ruleset", path="fuzz.nfk")
            ipt = compile_policy(text, "iptables", "ruleset", path="fuzz.nfk")
        except SourceError:
            continue
        checked += 1
        _check(lab.run(ns, "nft", "-c", "-f", "-", input=nft.text, check=False), "nft -c\n" + text)
        lab.run(ns, "ipset", "restore", input=ipt.rulesets["ipset"])
        for family, tool in (("ipv4", "iptables-restore"), ("ipv6", "ip6tables-restore")):
            proc = lab.run(ns, tool, "--test", "--noflush", input=ipt.rulesets[family],
                           check=False)
            _check(proc, f"{tool} --test\n{text}")


@pytest.mark.parametrize("backend", ["nftables", "iptables"])
def test_per_source_rate_limit_drops_the_excess(lab: Lab, backend: str, tmp_path: Path) -> None:
    server = lab.netns("lim")
    client = lab.netns("flood")
    lab.veth(server, "eth0", client, "eth0")
    lab.addr(server, "eth0", "10.97.0.1/24")
    lab.addr(client, "eth0", "10.97.0.2/24")
    policy = (f"log tag {lab.tag}\ninput policy drop {{\n"
              "    icmp type echo-request limit rate 1/minute burst 3 per source log accept\n}\n")
    script = tmp_path / "load.sh"
    script.write_text(compile_policy(policy, backend, path="lim.nfk").text)  # type: ignore[arg-type]
    _check(lab.run(server, "sh", str(script), check=False), "the script")
    # Each ping is its own conntrack flow (a new ICMP id): established flows are accepted
    # before any rule, so a limit counts new flows.
    pings = lab.run(client, "sh", "-c", "for i in 1 2 3 4 5 6 7 8; do "
                    "ping -c 1 -W 1 10.97.0.1 >/dev/null && echo ok; done", check=False)
    assert pings.stdout.count("ok") == 3, pings.stdout  # the burst, then nothing this minute
    logged = [line for line in lab.kernel_log(wait_for=5) if f"{lab.tag}:input:drop:limit" in line]
    assert len(logged) == 5


_ROUTER = """\
log tag {tag}
interface wan = wan0
zone lan = {{ lan0 }}
sysctl net.ipv4.ip_forward = 1

input policy drop {{
}}
forward policy drop log {{
    iif lan oif wan accept
    iif wan ct status dnat tcp dport 80 accept
}}
nat {{
    oif wan saddr 10.96.1.0/24 masquerade
    iif wan tcp dport 8080 dnat to 10.96.1.2:80
}}
"""

_FETCH = """
import socket, sys
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=3)
s.sendall(b"GET / HTTP/1.0\\r\\n\\r\\n")
print(s.recv(64).decode(errors="replace").splitlines()[0])
"""


@pytest.mark.parametrize("backend", ["nftables", "iptables"])
def test_port_forwarding_through_a_compiled_router(
    lab: Lab, backend: str, tmp_path: Path
) -> None:
    client, router, server = lab.netns("cli"), lab.netns("gw"), lab.netns("web")
    lab.veth(client, "eth0", router, "wan0")
    lab.veth(router, "lan0", server, "eth0")
    lab.addr(client, "eth0", "198.51.100.2/24")
    lab.addr(router, "wan0", "198.51.100.1/24")
    lab.addr(router, "lan0", "10.96.1.1/24")
    lab.addr(server, "eth0", "10.96.1.2/24")
    lab.run(server, "ip", "route", "add", "default", "via", "10.96.1.1")
    lab.spawn(server, "python3", "-m", "http.server", "80", "--bind", "10.96.1.2")
    script = tmp_path / "router.sh"
    script.write_text(compile_policy(_ROUTER.format(tag=lab.tag), backend,  # type: ignore[arg-type]
                                     path="router.nfk").text)
    run = lab.run(router, "sh", str(script), check=False)
    _check(run, "the router script")
    assert "net.ipv4.ip_forward = 1" in run.stdout
    for _ in range(50):  # the web server needs a moment to listen (asked from the router)
        if lab.run(router, "python3", "-c", _FETCH, "10.96.1.2", "80", check=False).returncode == 0:
            break
        lab.run(router, "sleep", "0.1")
    fetched = lab.run(client, "python3", "-c", _FETCH, "198.51.100.1", "8080", check=False)
    assert fetched.stdout.startswith("HTTP/1.0 200"), fetched.stderr
    # Port 80 itself is not forwarded: the router's input policy drops it.
    direct = lab.run(client, "python3", "-c", _FETCH, "198.51.100.1", "80", check=False)
    assert direct.returncode != 0
