"""Random policies built from valid fragments, for robustness tests (seeded, reproducible)."""

from __future__ import annotations

import random

MATCHES = [
    "saddr 10.0.0.1", "saddr $v", "daddr != $v", "saddr @s", "daddr != @s", "saddr @m",
    "iif eth0", "oif != lan", 'iif { eth1, "veth*" }', "proto tcp", "proto { tcp, udp }",
    "proto icmp", "proto icmpv6", "proto gre", "tcp dport 22", "udp sport 1000-2000",
    "dport { 53, 80 }", "service ssh", "service { dns, http }", "icmp type echo-request",
    "icmpv6 type { echo-request, 129 }", "icmp type 3 code 1", "ct state new",
    "ct state established,related", "ct status dnat", "family ipv6", "family ipv4",
    "saddr 2001:db8::1", "daddr 192.0.2.0/24", "sctp dport 9", "service app",
    "tcp sport 1024-65535 tcp dport { 1, 2-3 }",
]
EXTRAS = [
    "", "log", "log prefix x", "log rate 1/second burst 2", "limit rate 5/second",
    "limit rate 5/minute per source", "limit connections 3 per source",
    "log limit rate 1/hour per source", "limit connections 2 per source log prefix y",
]
VERDICTS = ["accept", "drop", "reject"]
PRELUDE = (
    "define v = { 10.0.0.1, 2001:db8::1 }\nset s = { 10.0.0.0/8, fd00::/8 }\n"
    "set m = { 192.0.2.1 }\nzone lan = { eth1 }\nservice app = tcp 8000, udp { 9000-9001 }\n"
)


def random_policy(rng: random.Random) -> str:
    """One policy: a chain of 1-6 random rules, sometimes a NAT block."""
    rules = []
    for _ in range(rng.randint(1, 6)):
        matches = rng.sample(MATCHES, rng.randint(0, 3))
        rules.append("    " + " ".join([*matches, rng.choice(EXTRAS), rng.choice(VERDICTS)]))
    chain = rng.choice(["input", "forward", "output"])
    text = PRELUDE + f"{chain} policy {rng.choice(VERDICTS)} log {{\n" + "\n".join(rules) + "\n}\n"
    if rng.random() < 0.3:
        source = rng.choice(["masquerade", "saddr 10.0.0.0/8 snat to 192.0.2.4",
                             "saddr $v masquerade"])
        dest = rng.choice(["tcp dport 80 dnat to 10.0.0.2:8080", "dnat to [fd00::1]",
                           "udp dport 1-5 dnat to 10.0.0.3"])
        text += f"nat {{\n    oif eth0 {source}\n    iif eth0 {dest}\n}}\n"
    return text
