"""Compiler speed, run by hand: ``python3 benchmarks/bench_compile.py [--repeat N]``.

* a generated 10,000-rule policy compiled for nftables and iptables (goal: <= 1.5 s);
* a named set of 100,000 addresses: compiles to O(1) rules, and compile + ``nft -f`` load in a
  throwaway network namespace (root only) takes <= 2 s.

Timings are the best of ``--repeat`` runs (the machine is shared; the best run is the least
disturbed). Prints one line per figure.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import subprocess
import time
from collections.abc import Callable

from nfkit.compiler import compile_policy


def policy_with_rules(count: int) -> str:
    """A policy with ``count`` rules of varied shapes across three chains."""
    lines = [
        "log tag bench",
        "define admins = { 192.0.2.0/24, 2001:db8:1::/48 }",
        "input policy drop log {",
    ]
    shapes = [
        "    tcp dport {port} saddr 10.{a}.{b}.0/24 accept",
        "    udp dport {port} accept",
        "    saddr $admins tcp dport {port} accept  # admin port {port}",
        "    iif eth{a} tcp dport {{ {port}, {port2} }} ct state new accept",
        "    saddr 2001:db8:{a:x}:{b:x}::/64 log prefix p{a} drop",
        "    tcp dport {port} limit rate 10/second per source accept",
    ]
    for index in range(count):
        a, b = index // 256 % 256, index % 256
        port = 1024 + index % 60000
        lines.append(shapes[index % len(shapes)].format(a=a, b=b, port=port, port2=port + 1))
    lines.append("}")
    return "\n".join(lines) + "\n"


def policy_with_set(count: int) -> str:
    """A policy whose one named set holds ``count`` IPv4 addresses."""
    addresses = ",\n".join(
        f"    10.{i // 65536 % 256}.{i // 256 % 256}.{i % 256}" for i in range(count)
    )
    return f"set big = {{\n{addresses}\n}}\ninput policy drop {{\n    saddr @big drop\n}}\n"


def best(repeat: int, work: Callable[[], object]) -> float:
    """Best wall-clock time of ``repeat`` runs of ``work``."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return min(times)


def load_in_namespace(ruleset: str) -> float:
    """Seconds ``nft -f`` takes to load ``ruleset`` in a throwaway namespace."""
    name = f"nfkbench{secrets.token_hex(3)}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        start = time.perf_counter()
        subprocess.run(
            ["ip", "netns", "exec", name, "nft", "-f", "-"], input=ruleset, text=True, check=True
        )
        return time.perf_counter() - start
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


def main() -> None:
    """Run the benchmarks and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=3, help="runs per figure (best is kept)")
    args = parser.parse_args()

    text = policy_with_rules(10_000)
    for backend in ("nftables", "iptables"):
        seconds = best(
            args.repeat, lambda b=backend: compile_policy(text, b, "script", path="bench.nfk")
        )  # type: ignore[misc]
        print(f"10,000 rules, {backend:8} script: {seconds:.3f} s (goal <= 1.5 s)")

    big = policy_with_set(100_000)
    results: dict[str, str] = {}

    def compile_big() -> None:
        results["nft"] = compile_policy(big, "nftables", "ruleset", path="big.nfk").text

    seconds = best(args.repeat, compile_big)
    chain = results["nft"].split("chain input {", 1)[1]
    rules = [
        line
        for line in chain.splitlines()[1:]
        if line.strip() and not line.strip().startswith(("#", "}"))
    ]
    print(f"100,000-address set, compile: {seconds:.3f} s; input chain has {len(rules)} rules")
    ipt_seconds = best(1, lambda: compile_policy(big, "iptables", "ruleset", path="big.nfk"))
    print(f"100,000-address set, iptables/ipset compile: {ipt_seconds:.3f} s")
    if os.geteuid() == 0 and shutil.which("nft") and shutil.which("ip"):
        load = min(load_in_namespace(results["nft"]) for _ in range(args.repeat))
        print(
            f"100,000-address set, nft -f load: {load:.3f} s; "
            f"compile + load: {seconds + load:.3f} s (goal <= 2 s)"
        )
    else:
        print("100,000-address set, nft -f load: skipped (needs root, nft and ip)")


if __name__ == "__main__":
    main()
