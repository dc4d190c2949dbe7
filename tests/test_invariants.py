"""The compiler's promises, checked on every golden case and every rules/ example."""

from __future__ import annotations

import dataclasses
import re
import subprocess
from pathlib import Path

import pytest

from nfkit.backends.base import BE_LIBERAL, BE_LIBERAL_LEGACY
from nfkit.compiler import compile_policy
from nfkit.dsl import parse_policy
from nfkit.errors import PmtudViolationError
from nfkit.logprefix import MAX_PREFIX_LENGTH, parse_prefix

REPO = Path(__file__).resolve().parent.parent
POLICIES = sorted((REPO / "tests" / "golden").glob("*/policy.nfk")) + sorted(
    (REPO / "rules").glob("*.nfk")
)
IDS = [f"{p.parent.name}/{p.name}" for p in POLICIES]
GUARDED = [p for p in POLICIES if "pmtud override" not in p.read_text()]
GUARDED_IDS = [f"{p.parent.name}/{p.name}" for p in GUARDED]


def nft_chains(text: str) -> dict[str, list[str]]:
    """Chain name -> its lines (stripped), from an nft -f file."""
    chains: dict[str, list[str]] = {}
    current: list[str] | None = None
    for raw in text.splitlines():
        line = raw.strip()
        match = re.match(r"chain (\S+) \{$", line)
        if match:
            current = chains.setdefault(match.group(1), [])
        elif line == "}":
            current = None
        elif current is not None and line:
            current.append(line)
    return chains


def ipt_chains(text: str) -> dict[str, list[str]]:
    """Chain name -> its -A lines, from an iptables-restore file."""
    chains: dict[str, list[str]] = {}
    for line in text.splitlines():
        if line.startswith("-A "):
            chains.setdefault(line.split()[1], []).append(line)
    return chains


def first(lines: list[str], predicate: object) -> int:
    """Index of the first line matching ``predicate`` (a callable), or len(lines)."""
    assert callable(predicate)
    return next((i for i, line in enumerate(lines) if predicate(line)), len(lines))


def test_there_are_policies() -> None:
    assert len(POLICIES) >= 24


@pytest.mark.parametrize("policy", GUARDED, ids=GUARDED_IDS)
def test_nft_pmtud_accepts_come_before_invalid_drop_and_every_drop(policy: Path) -> None:
    text = compile_policy(policy, "nftables", "ruleset").text
    base_chains = {"input", "forward", "output"}
    chains = nft_chains(text)
    assert base_chains & set(chains), "no filter chain to check"
    for name in base_chains & set(chains):
        lines = chains[name]
        frag = first(lines, lambda s: "icmp code frag-needed accept" in s)
        ptb = first(lines, lambda s: s.startswith("icmpv6 type { packet-too-big") and
                    "nd-neighbor-solicit" in s and s.endswith("accept"))
        invalid = first(lines, lambda s: s == "ct state invalid drop")
        drop = first(lines, lambda s: s.endswith(("drop", "reject", "tcp reset"))
                     or " goto " in s)
        assert frag < len(lines) and ptb < len(lines), lines
        assert frag < invalid and ptb < invalid
        assert frag < drop and ptb < drop


@pytest.mark.parametrize("policy", GUARDED, ids=GUARDED_IDS)
def test_iptables_pmtud_accepts_come_before_invalid_drop_and_every_drop(policy: Path) -> None:
    result = compile_policy(policy, "iptables", "ruleset")
    for family, needle in (("ipv4", "--icmp-type 3/4 -j ACCEPT"),
                           ("ipv6", "--icmpv6-type 2 -j ACCEPT")):
        for name, lines in ipt_chains(result.rulesets[family]).items():
            if "-LIMIT" in name or name.endswith("ROUTING"):
                continue  # overflow helpers and NAT chains hold no filter rules
            accept = first(lines, lambda s, n=needle: s.endswith(n))
            invalid = first(lines, lambda s: s.endswith("--ctstate INVALID -j DROP"))
            drop = first(lines, lambda s: " -j DROP" in s or " -j REJECT" in s)
            assert accept < invalid and accept < drop, (family, name)
            if family == "ipv6":
                for ndp in (133, 134, 135, 136):
                    wanted = f"--icmpv6-type {ndp} -j ACCEPT"
                    index = first(lines, lambda s, w=wanted: s.endswith(w))
                    assert index < invalid and index < drop


@pytest.mark.parametrize(
    "rule",
    [
        "icmp type destination-unreachable drop",
        "icmp type 3 drop",
        "icmp type 3 code 4 reject",
        "icmp type { echo-request, destination-unreachable } drop",
        "icmpv6 type packet-too-big drop",
        "icmpv6 type { nd-neighbor-solicit } reject",
        "icmpv6 type nd-router-advert drop",
        "proto icmp drop",
        "proto icmpv6 drop",
        "proto { icmp, tcp } log drop",
    ],
)
def test_rules_that_drop_pmtud_icmp_are_refused_unless_overridden(rule: str) -> None:
    text = f"input policy drop {{\n    {rule}\n}}\n"
    with pytest.raises(PmtudViolationError) as caught:
        compile_policy(text, path="p.nfk")
    assert caught.value.span.line == 2
    assert "pmtud override" in caught.value.message
    overridden = compile_policy('pmtud override "lab"\n' + text, path="p.nfk", emit="ruleset")
    assert "frag-needed accept" not in overridden.text


@pytest.mark.parametrize(
    "rule",
    ["icmp type echo-request drop", "icmp type 3 code 3 drop", "icmpv6 type nd-redirect drop",
     "proto icmp accept", "tcp dport 22 drop"],
)
def test_rules_that_leave_pmtud_alone_are_accepted(rule: str) -> None:
    compile_policy(f"input policy drop {{\n    {rule}\n}}\n", path="p.nfk")


@pytest.mark.parametrize("backend", ["nftables", "iptables"])
@pytest.mark.parametrize("policy", POLICIES, ids=IDS)
def test_every_log_prefix_follows_the_shared_scheme(policy: Path, backend: str) -> None:
    result = compile_policy(policy, backend, "ruleset")  # type: ignore[arg-type]
    assert result.policy is not None
    tag = result.policy.tag
    prefixes = re.findall(r'(?:--log-prefix|log prefix) "([^"]*)"', result.text)
    assert prefixes, "every policy logs at least its INVALID drops"
    for prefix in prefixes:
        assert len(prefix) <= MAX_PREFIX_LENGTH and prefix.endswith(" ")
        info = parse_prefix(prefix, tags=frozenset({tag}))
        assert info is not None, prefix
    invalid = [p for p in prefixes if p.endswith(":invalid ")]
    assert invalid and all(parse_prefix(p, frozenset({tag})).is_invalid_drop  # type: ignore[union-attr]
                           for p in invalid)


def test_policy_log_and_limit_labels() -> None:
    text = compile_policy(REPO / "tests/golden/15-rate-limits/policy.nfk", "nftables",
                          "ruleset").text
    assert '"nfkit:input:drop:limit "' in text
    text = compile_policy(REPO / "tests/golden/08-chains-policies/policy.nfk", "iptables",
                          "ruleset").text
    assert '"nfkit:input:reject:policy "' in text


@pytest.mark.parametrize("backend", ["nftables", "iptables"])
def test_script_checks_then_loads_then_sets_be_liberal(backend: str) -> None:
    policy = REPO / "tests/golden/01-minimal/policy.nfk"
    script = compile_policy(policy, backend, "script").text  # type: ignore[arg-type]
    assert script.startswith("#!/bin/sh\n")
    if backend == "nftables":
        check, load = script.index("nft -c -f"), script.index('if ! nft -f "$nfkit_ruleset"')
    else:
        check = script.index("iptables-restore -w --test --noflush")
        load = script.index('if ! iptables-restore -w --noflush "$nfkit_dir/ipv4"')
    liberal = script.index(f"nfkit_set {BE_LIBERAL} ")
    assert check < load < liberal
    line = script[liberal:].splitlines()[0]
    assert line.endswith(" 1"), line
    assert "/proc/sys/" + BE_LIBERAL_LEGACY.replace(".", "/") in line
    assert "flush ruleset" not in script


def test_be_liberal_off_writes_zero() -> None:
    result = compile_policy(REPO / "tests/golden/19-conntrack-sysctls/policy.nfk")
    assert result.sysctls[0].key == BE_LIBERAL and result.sysctls[0].value == "0"
    assert [s.key for s in result.sysctls[1:]] == [
        "net.ipv4.ip_forward", "net.ipv6.conf.all.forwarding", "net.ipv4.tcp_window_scaling"]


def test_be_liberal_defaults_on() -> None:
    result = compile_policy("input {\n}\n", path="p.nfk")
    assert (result.sysctls[0].key, result.sysctls[0].value, result.sysctls[0].wait) == (
        BE_LIBERAL, "1", True)


def test_disabling_window_scaling_warns_in_compiler_and_script() -> None:
    text = "sysctl net.ipv4.tcp_window_scaling = 0\ninput {\n}\n"
    result = compile_policy(text, path="ws.nfk")
    assert any("ws.nfk:1:1: warning:" in w and "costs throughput" in w and "64 KiB" in w
               for w in result.warnings)
    assert "warning: TCP window scaling is off" in result.text


def test_nft_ruleset_touches_only_its_own_table() -> None:
    for policy in POLICIES:
        text = compile_policy(policy, "nftables", "ruleset").text
        statements = [line for line in text.splitlines() if line.startswith(("table", "delete",
                                                                               "flush"))]
        assert statements == ["table inet nfkit", "delete table inet nfkit",
                              "table inet nfkit {"], policy


def test_iptables_ruleset_declares_only_nfkit_chains() -> None:
    for policy in POLICIES:
        result = compile_policy(policy, "iptables", "ruleset")
        for family in ("ipv4", "ipv6"):
            for line in result.rulesets[family].splitlines():
                if line.startswith(":"):
                    assert line.startswith(":NFKIT-"), line
                if line.startswith("-A "):
                    assert line.split()[1].startswith("NFKIT-"), line
                assert not line.startswith(("-F", "-X", "-P", "-D")), line
                if line.startswith("-I "):
                    assert re.fullmatch(r"-I [A-Z]+ 1 -j NFKIT-[A-Z]+", line), line


def test_every_policy_rule_reaches_the_output() -> None:
    """Nothing is dropped silently: each rule's source line is named in the nft output."""
    for policy in POLICIES:
        ir_policy = parse_policy(policy.read_text(), str(policy))
        text = compile_policy(policy, "nftables", "ruleset").text
        for chain in ir_policy.chains:
            for rule in chain.rules:
                marker = f"# {Path(rule.span.path).name}:{rule.span.line}\n"
                assert marker in text, (policy, rule.span)


def test_a_huge_named_set_is_one_rule() -> None:
    def rules_for(count: int) -> tuple[int, int]:
        addresses = ",\n".join(f"10.{i // 65536}.{i // 256 % 256}.{i % 256}"
                               for i in range(count))
        text = f"set big = {{\n{addresses}\n}}\ninput {{\n  saddr @big drop\n}}\n"
        nft = compile_policy(text, "nftables", "ruleset", path="big.nfk").text
        ipt = compile_policy(text, "iptables", "ruleset", path="big.nfk").rulesets["ipv4"]
        chain = nft_chains(nft)["input"]
        return (sum(1 for line in chain if not line.startswith("#")),
                sum(1 for line in ipt.splitlines() if line.startswith("-A")))

    assert rules_for(10) == rules_for(5000)


def test_mixed_set_is_split_per_family() -> None:
    text = "set s = { 192.0.2.1, 2001:db8::1 }\ninput {\n  saddr @s accept\n}\n"
    nft = compile_policy(text, "nftables", "ruleset", path="s.nfk").text
    assert "set s_v4 {" in nft and "set s_v6 {" in nft
    assert "ip saddr @s_v4 accept" in nft and "ip6 saddr @s_v6 accept" in nft
    ipt = compile_policy(text, "iptables", "ruleset", path="s.nfk")
    assert "--match-set nfk-s-4 src" in ipt.rulesets["ipv4"]
    assert "--match-set nfk-s-6 src" in ipt.rulesets["ipv6"]
    assert "add nfk-s-6-n 2001:db8::1" in ipt.rulesets["ipset"]


def test_family_free_rule_goes_to_both_iptables_files() -> None:
    result = compile_policy("input {\n  service ssh accept\n}\n", "iptables", "ruleset",
                            path="x.nfk")
    for family in ("ipv4", "ipv6"):
        assert "-A NFKIT-INPUT -p tcp -m tcp --dport 22 -j ACCEPT" in result.rulesets[family]


def test_ir_is_frozen() -> None:
    policy = parse_policy("input {\n  service ssh accept\n}\n")
    with pytest.raises(dataclasses.FrozenInstanceError):
        policy.chains[0].rules[0].verdict = "drop"  # type: ignore[misc]
    assert isinstance(policy.chains, tuple) and isinstance(policy.chains[0].rules, tuple)


def test_spans_do_not_take_part_in_equality() -> None:
    a = parse_policy("input {\n  service ssh accept\n}\n", "a.nfk")
    b = parse_policy("\n\ninput {\n\n  service   ssh accept\n}\n", "b.nfk")
    assert a.chains == b.chains


def test_trailing_comment_travels_into_both_backends() -> None:
    text = 'input {\n  service ssh accept  # from the "office"\n}\n'
    nft = compile_policy(text, "nftables", "ruleset", path="c.nfk").text
    ipt = compile_policy(text, "iptables", "ruleset", path="c.nfk").text
    assert "tcp dport 22 accept comment \"from the 'office'\"" in nft
    assert "-m comment --comment \"from the 'office'\" -j ACCEPT" in ipt


def test_user_templates_take_precedence(tmp_path: Path) -> None:
    (tmp_path / "nftables").mkdir()
    (tmp_path / "nftables" / "ruleset.nft.j2").write_text("custom {{ table }}\n")
    result = compile_policy("input {\n}\n", "nftables", "ruleset", path="t.nfk",
                            template_dir=tmp_path)
    assert result.text == "custom nfkit\n"


def _sysctl_function() -> str:
    script = compile_policy("input {\n}\n", path="s.nfk").text
    start = script.index("nfkit_status=0")
    end = script.index("\n}\n", start) + 3
    return script[start:end]


def test_script_waits_for_a_sysctl_that_appears_late(tmp_path: Path) -> None:
    knob = tmp_path / "knob"
    shell = _sysctl_function() + (
        f"( sleep 0.6; echo 0 > {knob} ) &\n"
        f"nfkit_set test.knob {knob} '' 25 1\n"
        'wait\nexit "$nfkit_status"\n'
    )
    run = subprocess.run(["sh", "-c", shell], capture_output=True, text=True, timeout=30)
    assert run.returncode == 0, run.stderr
    assert knob.read_text() == "1\n"
    assert f"nfkit: set test.knob = 1 ({knob})" in run.stdout


def test_script_falls_back_to_the_old_name(tmp_path: Path) -> None:
    old = tmp_path / "old"
    old.write_text("0\n")
    shell = _sysctl_function() + (
        f"nfkit_set test.knob {tmp_path / 'new'} {old} 5 1\n" 'exit "$nfkit_status"\n'
    )
    run = subprocess.run(["sh", "-c", shell], capture_output=True, text=True, timeout=30)
    assert run.returncode == 0 and old.read_text() == "1\n"


def test_script_gives_up_after_a_bounded_wait(tmp_path: Path) -> None:
    shell = _sysctl_function() + (
        f"nfkit_set test.knob {tmp_path / 'never'} '' 2 1\n" 'exit "$nfkit_status"\n'
    )
    run = subprocess.run(["sh", "-c", shell], capture_output=True, text=True, timeout=30)
    assert run.returncode == 3
    assert "test.knob does not exist; not set" in run.stderr


def test_output_drops_invalid_only_when_its_policy_drops() -> None:
    lenient = nft_chains(compile_policy(REPO / "rules" / "web-server.nfk", "nftables",
                                        "ruleset").text)
    strict = nft_chains(compile_policy(REPO / "rules" / "bastion.nfk", "nftables",
                                       "ruleset").text)
    assert "ct state invalid drop" in lenient["input"]
    assert "ct state invalid drop" not in lenient["output"]
    assert "ct state invalid drop" in strict["output"]
    # The PMTUD accepts are there either way.
    assert "icmp type destination-unreachable icmp code frag-needed accept" in lenient["output"]


def test_compiling_leaves_the_garbage_collector_as_it_was() -> None:
    import gc

    assert gc.isenabled()
    compile_policy("input {\n}\n", path="gc.nfk")
    assert gc.isenabled()
    with pytest.raises(PmtudViolationError):
        compile_policy("input {\n  proto icmp drop\n}\n", path="gc.nfk")
    assert gc.isenabled()
    gc.disable()
    try:
        compile_policy("input {\n}\n", path="gc.nfk")
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_random_policies_keep_the_pmtud_order() -> None:
    import random

    from policy_fuzz import random_policy

    from nfkit.errors import SourceError

    rng = random.Random(99)
    checked = 0
    while checked < 150:
        try:
            result = compile_policy(random_policy(rng), "nftables", "ruleset", path="r.nfk")
        except SourceError:
            continue
        checked += 1
        for name, lines in nft_chains(result.text).items():
            if name not in ("input", "forward", "output"):
                continue
            frag = first(lines, lambda s: "icmp code frag-needed accept" in s)
            stop = first(lines, lambda s: s.endswith(("drop", "reject", "tcp reset"))
                         or " goto " in s)
            assert frag < stop, (name, lines)
