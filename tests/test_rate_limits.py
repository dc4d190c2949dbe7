"""Rates, bursts and connection counts are bounded by what the kernel's tools take (QA-11).

The language takes what nftables holds: a rate of 1 to ``MAX_RATE`` (2**64 - 1 - 1000000) per
unit, a burst of 1 to 1000000, and a token bucket (burst times nanoseconds per packet) that
fits in 64 bits. The iptables backend refuses what its ``limit`` / ``hashlimit`` matches cannot
hold with ``UnsupportedFeatureError``. The kernel tests load the largest accepted values into
throwaway namespaces, and show that nft refuses the values just past its bounds.
"""

from __future__ import annotations

import re
import shutil

import pytest
from hostile import assert_clean_error, hostile_dir, in_hostile, run_cli
from netlab import Lab

from nfkit.backends import iptables as ipt
from nfkit.compiler import compile_policy
from nfkit.dsl.values import MAX_BURST, MAX_RATE
from nfkit.errors import RuleSemanticError, UnsupportedFeatureError

__all__ = ["hostile_dir", "in_hostile"]  # fixtures, re-exported for pytest

U64_MAX = 2**64 - 1


def policy(rule: str, header: str = "") -> str:
    """A policy with one input rule (``rule`` is on line 2, or later with a header)."""
    return f"{header}input policy drop {{\n    {rule}\n}}\n"


def semantic_error(text: str, backend: str = "nftables") -> RuleSemanticError:
    with pytest.raises(RuleSemanticError) as caught:
        compile_policy(text, backend, "ruleset", path="r.nfk")  # type: ignore[arg-type]
    return caught.value


# -- the language (both backends) --------------------------------------------------------------
def test_max_rate_is_what_nft_holds() -> None:
    assert MAX_RATE == U64_MAX - MAX_BURST == 18446744073708551615


@pytest.mark.usefixtures("in_hostile")
def test_compile_rate_out_of_range(capsys: pytest.CaptureFixture[str]) -> None:
    outcome = run_cli(capsys, ["compile", "huge-rate.nfk"])
    assert_clean_error(
        outcome,
        2,
        r"^huge-rate.nfk:2:16: error: rate 9{23}/second is out of "
        r"range: at most 18446744073708551615/second",
    )


@pytest.mark.parametrize("backend", ["nftables", "iptables"])
@pytest.mark.parametrize(
    ("rate", "message"),
    [
        (f"{MAX_RATE + 1}/second", "is out of range: at most"),
        (f"{U64_MAX}/minute", "is out of range: at most"),
        (f"{U64_MAX + 1}/day", "is out of range: at most"),
        ("9" * 5000 + "/second", r"rate 9{20}\.\.\. \(5000 characters\)/second is out of range"),
        ("0/second", "a rate must be at least 1"),
        ("0" * 5000 + "/second", "a rate must be at least 1"),
    ],
    ids=["max+1", "u64-max", "u64-max+1", "5000-digits", "zero", "many-zeros"],
)
def test_rate_out_of_range(backend: str, rate: str, message: str) -> None:
    for text in (
        policy(f"limit rate {rate} accept"),
        policy(f"tcp dport 22 limit rate {rate} per source accept"),
        policy(f"tcp dport 22 log rate {rate} accept"),
        policy("tcp dport 22 accept", header=f"log rate {rate}\n"),
        f"input policy drop log rate {rate} {{\n}}\n",
    ):
        error = semantic_error(text, backend)
        assert re.search(message, error.message), error.message
        line = next(n for n, line in enumerate(text.splitlines(), 1) if rate in line)
        column = text.splitlines()[line - 1].index(rate) + 1
        assert (error.span.path, error.span.line, error.span.column) == ("r.nfk", line, column)


def test_global_log_rate_error_place() -> None:
    error = semantic_error(policy("tcp dport 22 accept", header=f"log rate {U64_MAX}/second\n"))
    assert (error.span.line, error.span.column) == (1, 10)
    error = semantic_error(f"input policy drop log rate {U64_MAX}/hour {{\n}}\n")
    assert (error.span.line, error.span.column) == (1, 28)


@pytest.mark.parametrize(
    ("rate", "column"),
    [("1/second burst 1000001", 31), ("1/second burst 0", 31),
     ("1/second burst " + "9" * 5000, 31), ("1/day burst 213504", 28),
     ("2/day burst 427008", 28), ("1/hour burst 5124096", 29)],
    ids=["over-max", "zero", "5000-digits", "day", "2-per-day", "hour"],
)  # fmt: skip
def test_burst_out_of_range(rate: str, column: int) -> None:
    """1/hour with a burst of 5124096 is past MAX_BURST before it is past nft's bucket."""
    error = semantic_error(policy(f"limit rate {rate} accept"))
    assert (error.span.line, error.span.column) == (2, column)
    assert "burst" in error.message


def test_slow_rate_burst_bound_names_the_largest() -> None:
    error = semantic_error(policy("limit rate 1/day burst 213504 accept"))
    assert error.message == (
        "burst 213504 is too large for the rate 1/day: nftables' token bucket holds at most "
        "213503 packets at this rate"
    )


@pytest.mark.parametrize("count", ["0", "1000001", "9" * 5000])
def test_connection_count_out_of_range(count: str) -> None:
    error = semantic_error(policy(f"tcp dport 443 limit connections {count} per source accept"))
    assert "connection count" in error.message and "out of range 1-1000000" in error.message


@pytest.mark.parametrize(
    "rule",
    ["tcp dport " + "9" * 5000 + " accept", "tcp dport 1-" + "9" * 5000 + " accept",
     "icmp type " + "9" * 5000 + " accept", "proto " + "0" * 5000 + "6 accept",
     "proto " + "9" * 5000 + " accept"],
    ids=["port", "port-range", "icmp-type", "proto-zeros", "proto"],
)  # fmt: skip
def test_numbers_with_thousands_of_digits(rule: str) -> None:
    """``int()`` refuses more than 4300 digits: a clean error (or the number), not ValueError."""
    try:
        result = compile_policy(policy(rule), "nftables", "ruleset", path="r.nfk")
    except RuleSemanticError as exc:
        assert (exc.span.line == 2 and "characters)" in exc.message) or "proto" in rule
    else:
        assert "meta l4proto tcp" in result.text  # 000...06 is protocol 6


# -- the iptables backend ------------------------------------------------------------------------
def unsupported(text: str) -> UnsupportedFeatureError:
    with pytest.raises(UnsupportedFeatureError) as caught:
        compile_policy(text, "iptables", "ruleset", path="r.nfk")
    assert caught.value.backend == "iptables"
    return caught.value


@pytest.mark.parametrize(
    ("extras", "message"),
    [
        ("limit rate 10001/second", "the limit match takes at most 10000/second"),
        ("limit rate 600001/minute", "the limit match takes at most 10000/second"),
        ("limit rate 864000001/day", "the limit match takes at most 10000/second"),
        ("limit rate 1/second burst 10001", "the limit match takes a burst of at most 10000"),
        ("limit rate 1/day", "lower the burst to at most 1 or raise the rate"),
        ("limit rate 1/hour burst 32", "lower the burst to at most 31 "),
        ("limit rate 1000001/second per source", "the hashlimit match takes at most 1000000"),
        ("limit rate 1/day per source", "cannot count a burst of 5 packets 86400 s apart"),
        ("limit rate 1/second burst 111849 per source", "lower the burst to at most 111848 "),
        ("log rate 20000/second", "log rate 20000/second burst 5: the limit match"),
        ("log rate 1/day burst 2", "log rate 1/day burst 2: the kernel's limit match"),
    ],
)
def test_iptables_refuses_what_its_matches_cannot_hold(extras: str, message: str) -> None:
    error = unsupported(policy(f"tcp dport 22 {extras} accept"))
    assert message in error.message, error.message
    assert (error.span.line, error.span.column) == (2, 18)
    # nftables takes all of them
    compile_policy(policy(f"tcp dport 22 {extras} accept"), "nftables", "ruleset")


def test_iptables_policy_log_rates() -> None:
    error = unsupported("log rate 1/day\ninput policy drop {\n}\n")
    assert (error.span.line, error.span.column) == (1, 1) and "log rate 1/day" in error.message
    error = unsupported("input policy drop log rate 1/day {\n}\n")
    assert (error.span.line, error.span.column) == (1, 19)
    # the policy's log rate is only used by chains that drop INVALID packets
    compile_policy("log rate 1/day\noutput policy accept {\n}\n", "iptables", "ruleset")


# -- the largest accepted values, in the real kernel ---------------------------------------------
NFT_LARGEST = f"""\
log rate {MAX_RATE}/second burst {MAX_BURST}
input policy drop log rate 1/day burst 213503 {{
    tcp dport 22 limit rate {MAX_RATE}/second burst {MAX_BURST} accept
    tcp dport 23 limit rate {MAX_RATE}/day burst {MAX_BURST} per source accept
    tcp dport 24 log rate 1/day burst 213503 limit rate 1/day burst 213503 per source accept
    tcp dport 25 log rate 1/hour burst {MAX_BURST} accept
    tcp dport 443 limit connections 1000000 per source accept
}}
"""

IPT_LARGEST = f"""\
log rate 10000/second burst {ipt.LIMIT_MAX_BURST}
input policy drop log rate 1/day burst 1 {{
    tcp dport 22 limit rate 864000000/day burst {ipt.LIMIT_MAX_BURST} accept
    tcp dport 23 limit rate 1000000/second burst {ipt.HASHLIMIT_MAX_BURST} per source accept
    tcp dport 24 limit rate 1/second burst 111848 per source accept
    tcp dport 25 log rate 1/hour burst 31 limit rate 1/day burst 1 per source accept
    tcp dport 26 limit rate 1/hour burst 31 accept
    tcp dport 443 limit connections 1000000 per source accept
}}
"""


def _ok(proc: object, what: str) -> None:
    assert getattr(proc, "returncode", 1) == 0, f"{what}: {getattr(proc, 'stderr', '')}"


@pytest.mark.kernel
def test_nft_takes_the_largest_values(lab: Lab) -> None:
    text = compile_policy(NFT_LARGEST, "nftables", "ruleset", path="largest.nfk").text
    assert f"limit rate over {MAX_RATE}/second burst {MAX_BURST} packets" in text
    ns = lab.netns("rate")
    _ok(lab.run(ns, "nft", "-c", "-f", "-", input=text, check=False), "nft -c")
    _ok(lab.run(ns, "nft", "-f", "-", input=text, check=False), "nft -f")


@pytest.mark.kernel
@pytest.mark.parametrize(
    "statement",
    [f"limit rate over {MAX_RATE + 1}/second burst {MAX_BURST} packets drop",
     f"limit rate over {U64_MAX}/second drop",
     "limit rate over 1/day burst 213504 packets drop",
     f"limit rate over {U64_MAX + 1}/second drop"],
    ids=["rate+burst", "u64-max", "bucket", "u64-max+1"],
)  # fmt: skip
def test_nft_refuses_just_past_the_bounds(lab: Lab, statement: str) -> None:
    """The bounds are nft's own, not smaller: one more and ``nft -c`` says no."""
    ns = lab.netns("past")
    chain = f"chain c {{\n  type filter hook input priority 0;\n  {statement}\n }}"
    text = f"table inet t {{\n {chain}\n}}\n"
    assert lab.run(ns, "nft", "-c", "-f", "-", input=text, check=False).returncode != 0


@pytest.mark.kernel
@pytest.mark.parametrize("tool", ["iptables-restore", "iptables-legacy-restore"])
def test_iptables_loads_the_largest_values(lab: Lab, tool: str) -> None:
    """Loaded for real (``--test`` does not ask the kernel, which checks the buckets)."""
    if shutil.which(tool) is None:
        pytest.skip(f"{tool} is not installed")
    result = compile_policy(IPT_LARGEST, "iptables", "ruleset", path="largest.nfk")
    ipv4 = result.rulesets["ipv4"]
    assert "--hashlimit-above 1/second --hashlimit-burst 111848" in ipv4
    ns = lab.netns("ipt")
    _ok(lab.run(ns, tool, "--noflush", input=ipv4, check=False), tool)
    six = tool.replace("iptables", "ip6tables")
    if shutil.which(six) is not None:
        _ok(lab.run(ns, six, "--noflush", input=result.rulesets["ipv6"], check=False), six)
