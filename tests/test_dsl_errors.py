"""Broken policies: each gives one error at an exact line:col, never a traceback."""

from __future__ import annotations

import contextlib
import random
import subprocess
import sys
from pathlib import Path

import pytest

from nfkit.compiler import compile_policy
from nfkit.errors import (
    PmtudViolationError,
    RuleSemanticError,
    RuleSyntaxError,
    SourceError,
    UnsupportedFeatureError,
)

# (policy text, error class, "line:col", words the message must contain)
CASES: list[tuple[str, type[SourceError], str, str]] = [
    ("input {\n  tcp dport 22 acept\n}\n", RuleSyntaxError, "2:16", "did you mean 'accept'"),
    ("defin x = 1\n", RuleSyntaxError, "1:1", "did you mean 'define'"),
    ("input {\n  tcp dport 22\n}\n", RuleSyntaxError, "2:15", "no verdict"),
    ("input policy drop {\n  tcp dport 22 accept\n", RuleSyntaxError, "2:22", "'}' is missing"),
    ("input {\n  saddr % accept\n}\n", RuleSyntaxError, "2:9", "unexpected character '%'"),
    ("input policy {\n}\n", RuleSyntaxError, "1:14", "verdict"),
    ("input { accept }\n", RuleSyntaxError, "1:9", "end of line"),
    ("input {\n  saddr { 10.0.0.1, @x } accept\n}\n", RuleSemanticError, "2:21",
     "cannot be mixed"),
    ("input {\n  tcp dport { 22,\n     htps } accept\n}\n", RuleSemanticError, "3:6",
     "unknown service 'htps'"),
    ("set s = { 10.0.0.1  # one\n  # two\n\t10.0.0.x }\n", RuleSemanticError, "3:2",
     "'10.0.0.x'"),
    ("input {\n  dport 22 accept\n}\n", RuleSemanticError, "2:3", "needs a protocol"),
    ("input {\n  proto icmp dport 5 accept\n}\n", RuleSemanticError, "2:14", "icmp has no ports"),
    ("input {\n  tcp dport htps accept\n}\n", RuleSemanticError, "2:13", "did you mean 'https'"),
    ("input {\n  service foo accept\n}\n", RuleSemanticError, "2:11", "service foo = tcp PORT"),
    ("input {\n  udp dport ssh accept\n}\n", RuleSemanticError, "2:13", "'ssh' is tcp, not udp"),
    ("input {\n  saddr $nope accept\n}\n", RuleSemanticError, "2:9", "undefined variable $nope"),
    ("input {\n  saddr @nope accept\n}\n", RuleSemanticError, "2:9", "undefined set @nope"),
    (
        "input {\n  icmpv6 type echo-request saddr 192.0.2.1 accept\n}\n",
        RuleSemanticError,
        "2:28",
        "is IPv4 but the rule is IPv6-only",
    ),
    (
        "input {\n  saddr 192.0.2.1 daddr 2001:db8::1 accept\n}\n",
        RuleSemanticError,
        "2:19",
        "is IPv6 but the rule is IPv4-only",
    ),
    (
        "input {\n  family ipv6 saddr 10.0.0.0/8 accept\n}\n",
        RuleSemanticError,
        "2:15",
        "IPv6-only",
    ),
    ("input {\n  saddr 300.1.2.3 accept\n}\n", RuleSemanticError, "2:9", "not an IPv4 or IPv6"),
    ("input {\n  saddr 192.0.2.1/24 accept\n}\n", RuleSemanticError, "2:9", "192.0.2.0/24"),
    ("input {\n  tcp dport 70000 accept\n}\n", RuleSemanticError, "2:13", "out of range"),
    ("input {\n  tcp dport 22 limit rate 5/minute drop\n}\n", RuleSemanticError, "2:16",
     "with 'accept'"),
    ("input {\n  tcp dport 22 limit rate 5/fortnight accept\n}\n", RuleSemanticError, "2:27",
     "expected a rate"),
    ("input {\n  tcp dport 22 limit connections 5 accept\n}\n", RuleSemanticError, "2:16",
     "per source"),
    ('input {\n  tcp dport 22 log prefix "a:b" drop\n}\n', RuleSemanticError, "2:27",
     "only letters"),
    ("input {\n  tcp dport 22 log prefix averylonglabelthatwontfit drop\n}\n",
     RuleSemanticError, "2:16", "at most 29"),
    ("log tag waytoolongtagname\n", RuleSemanticError, "1:9", "log tag"),
    ("input {\n  ct state bogus accept\n}\n", RuleSemanticError, "2:12", "unknown conntrack state"),
    ("input {\n  accept\n}\ninput {\n}\n", RuleSemanticError, "4:1", "declared twice"),
    ('include "nonexistent.nfk"\n', RuleSemanticError, "1:9", "cannot include"),
    ("nat {\n  iif eth0 masquerade\n}\n", RuleSemanticError, "2:3", "match 'oif'"),
    ("nat {\n  oif eth0 dnat to 10.0.0.1\n}\n", RuleSemanticError, "2:3", "match 'iif'"),
    ("nat {\n  oif eth0 snat to 10.0.0.0/24\n}\n", RuleSemanticError, "2:20", "one address"),
    ("nat {\n  iif eth0 dnat to 10.0.0.1:80\n}\n", RuleSemanticError, "2:3", "NAT port"),
    ("sysctl net.netfilter.nf_conntrack_tcp_be_liberal = 1\n", RuleSemanticError, "1:8",
     "conntrack { be_liberal"),
    ("conntrack {\n  be_liberal maybe\n}\n", RuleSemanticError, "2:14", "on or off"),
    ("conntrack {\n  tcp_loose on\n}\n", RuleSemanticError, "2:3", "unknown conntrack option"),
    ("input {\n  iif averyveryverylongname accept\n}\n", RuleSemanticError, "2:7",
     "not an interface name"),
    ("input {\n  service ssh tcp dport 22 accept\n}\n", RuleSemanticError, "2:15",
     "already names its protocol"),
    ("input {\n  saddr 1.2.3.4 saddr 5.6.7.8 accept\n}\n", RuleSemanticError, "2:17",
     "given twice"),
    ("define x = 1\ndefine x = 2\n", RuleSemanticError, "2:8", "already defined"),
    ("set nfk_x = { 10.0.0.1 }\n", RuleSemanticError, "1:5", "reserved"),
    ("input {\n  oif eth0 accept\n}\n", RuleSemanticError, "2:3", "no output interface"),
    ("output {\n  tcp dport 25 iif eth0 drop\n}\n", RuleSemanticError, "2:16", "never matches"),
    ('pmtud override ""\n', RuleSemanticError, "1:16", "needs a reason"),
    ("input {\n  icmp type echo-request icmpv6 type echo-request accept\n}\n",
     RuleSemanticError, "2:26", "IPv4-only"),
    ("input {\n  icmp type destination-unreachable drop\n}\n", PmtudViolationError, "2:3",
     "Path MTU discovery"),
    ("input {\n  icmp type 3 code 4 reject\n}\n", PmtudViolationError, "2:3", "pmtud override"),
    ("input {\n  icmpv6 type packet-too-big reject\n}\n", PmtudViolationError, "2:3",
     "packet-too-big"),
    ("input {\n  iif eth0 icmpv6 type nd-neighbor-solicit drop\n}\n",
     PmtudViolationError, "2:12", "Path MTU"),
    ("forward {\n  proto icmp drop\n}\n", PmtudViolationError, "2:3", "Path MTU"),
    ("input {\n  service ssh icmp type echo-request accept\n}\n", RuleSemanticError, "2:15",
     "cannot match an ICMP type"),
    ("output {\n  proto icmpv6 log reject\n}\n", PmtudViolationError, "2:3", "Path MTU"),
]


@pytest.mark.parametrize(("text", "kind", "place", "words"), CASES,
                         ids=[f"{i:02d}" for i in range(len(CASES))])
def test_error_place_and_message(
    text: str, kind: type[SourceError], place: str, words: str
) -> None:
    with pytest.raises(SourceError) as caught:
        compile_policy(text, path="bad.nfk")
    error = caught.value
    assert type(error) is kind, error.render()
    assert f"{error.span.line}:{error.span.column}" == place, error.render()
    assert words in error.message, error.render()
    rendered = error.render()
    first, source, caret = rendered.split("\n")[:3]
    assert first.startswith(f"bad.nfk:{place}: error: ")
    # The caret sits under the reported column of the quoted source line.
    assert caret.index("^") - 4 == error.span.column - 1
    assert source.strip() != ""


def test_pmtud_rule_compiles_with_override() -> None:
    text = 'pmtud override "tested"\ninput {\n  icmp type destination-unreachable drop\n}\n'
    result = compile_policy(text, path="ok.nfk", emit="ruleset")
    assert "destination-unreachable drop" in result.text
    assert any("pmtud override" in warning for warning in result.warnings)


def test_error_in_included_file_names_that_file(tmp_path: Path) -> None:
    (tmp_path / "inc.nfk").write_text("define a = 1\nset b = { 10.0.0.1, 10.0.0.999 }\n")
    main = tmp_path / "main.nfk"
    main.write_text('include "inc.nfk"\ninput {\n  accept\n}\n')
    with pytest.raises(RuleSemanticError) as caught:
        compile_policy(main)
    assert caught.value.span.path.endswith("inc.nfk")
    assert (caught.value.span.line, caught.value.span.column) == (2, 21)
    assert "set b = { 10.0.0.1, 10.0.0.999 }" in caught.value.render()


def test_include_cycle_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "a.nfk").write_text('include "b.nfk"\n')
    (tmp_path / "b.nfk").write_text('include "a.nfk"\n')
    with pytest.raises(RuleSemanticError, match="include cycle"):
        compile_policy(tmp_path / "a.nfk")


def test_iptables_cannot_negate_an_address_list() -> None:
    text = "input {\n  saddr != { 10.0.0.0/8, 192.168.0.0/16 } drop\n}\n"
    compile_policy(text, "nftables", path="neg.nfk")  # nft can
    with pytest.raises(UnsupportedFeatureError) as caught:
        compile_policy(text, "iptables", path="neg.nfk")
    assert caught.value.backend == "iptables"
    assert (caught.value.span.line, caught.value.span.column) == (2, 3)
    assert "named set" in caught.value.message


def test_cli_prints_place_and_caret_and_exits_2(tmp_path: Path) -> None:
    policy = tmp_path / "web.nfk"
    policy.write_text("input policy drop {\n    tcp dport htps accept\n}\n")
    run = subprocess.run(
        [sys.executable, "-m", "nfkit", "compile", str(policy)], capture_output=True, text=True
    )
    assert run.returncode == 2
    assert "Traceback" not in run.stderr
    lines = run.stderr.splitlines()
    assert lines[0] == f"{policy}:2:15: error: unknown service 'htps' (did you mean 'https'?)"
    assert lines[1] == "        tcp dport htps accept"
    assert lines[2] == "                  ^^^^"
    assert run.stdout == ""


def test_cli_missing_file_is_an_error_not_a_traceback(tmp_path: Path) -> None:
    run = subprocess.run(
        [sys.executable, "-m", "nfkit", "compile", str(tmp_path / "none.nfk")],
        capture_output=True, text=True,
    )
    assert run.returncode == 2
    assert "Traceback" not in run.stderr
    assert "no such policy file" in run.stderr


def test_random_policies_compile_or_fail_with_a_place() -> None:
    from policy_fuzz import random_policy

    rng = random.Random(20261125)
    compiled = 0
    for _ in range(300):
        text = random_policy(rng)
        for backend in ("nftables", "iptables"):
            try:
                compile_policy(text, backend, "ruleset", path="fuzz.nfk")  # type: ignore[arg-type]
                compiled += 1
            except SourceError as exc:  # anything else is a bug
                assert exc.span.path == "fuzz.nfk" and exc.span.line >= 1
    assert compiled > 50  # the generator mostly makes valid policies


def test_garbage_never_raises_anything_but_a_source_error() -> None:
    rng = random.Random(7)
    alphabet = "input{}policy drop accept saddr 10.0.0.1 tcp dport 22 $@!=,#\n\"\\/:-*"
    for _ in range(500):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 60)))
        with contextlib.suppress(SourceError):  # anything else is a bug
            compile_policy(text, path="junk.nfk")
