"""Generate realistic kern.log lines with netfilter LOG messages, for benchmarks and demos.

The firewall ``fw`` (192.168.1.10 / 2001:db8:1::10 on ``eth0``, gateway 192.168.1.1 with MAC
:data:`GATEWAY_MAC`) drops a mix of packets: TCP SYN scans and stray segments, UDP probes, ICMP
echo, IPv6, a few ICMP errors quoting a packet and some fragments. Sources follow a skewed
distribution over ``sources`` addresses (a few noisy scanners, a long tail); about 5% come from
the local segment (their own MAC), the rest through the gateway (the gateway's MAC).

Library use::

    from genlog import generate_lines
    for line in generate_lines(1000, seed=7): ...

Command line::

    python3 benchmarks/genlog.py -n 1000000 --seed 1 -o /tmp/kern.log
"""

from __future__ import annotations

import argparse
import gzip
import random
import sys
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import TextIO

HOST = "fw"
LOCAL_V4 = "192.168.1.10"
LOCAL_V6 = "2001:0db8:0001:0000:0000:0000:0000:0010"
FW_MAC = "52:54:00:00:00:10"
GATEWAY_MAC = "52:54:00:00:00:01"
PREFIXES = (
    ("nfkit:input:drop ", 70),
    ("nfkit:input:drop:invalid ", 8),
    ("nfkit:forward:drop ", 10),
    ("nfkit:input:drop:policy ", 10),
    ("nfkit:input:reject ", 2),
)
WRAPPERS = ("syslog", "rfc3339", "dmesg")
TCP_PORTS = (22, 23, 80, 443, 445, 3389, 8080, 5900, 25, 3306, 6379, 1433)
UDP_PORTS = (53, 123, 161, 1900, 5060, 11211, 137, 500)


def _full_v6(rng: random.Random) -> str:
    groups = [0x2001, 0x0DB8, rng.randrange(1 << 16), rng.randrange(16), 0, 0, 0]
    groups.append(rng.randrange(1, 1 << 16))
    return ":".join(f"{g:04x}" for g in groups)


def _sources(rng: random.Random, count: int) -> list[tuple[str, str, bool]]:
    """Distinct sources: (address, source MAC, is IPv6); ~5% on the local segment."""
    out: list[tuple[str, str, bool]] = []
    seen: set[str] = set()
    while len(out) < count:
        kind = rng.random()
        if kind < 0.05:
            host = rng.randrange(20, 250)
            addr = f"192.168.1.{host}"
            mac = f"52:54:00:aa:{host // 256:02x}:{host % 256:02x}"
            v6 = False
        elif kind < 0.15:
            addr = _full_v6(rng)
            mac = GATEWAY_MAC
            v6 = True
        else:
            first = rng.randrange(1, 224)  # unicast
            addr = f"{first}." + ".".join(str(rng.randrange(1, 255)) for _ in range(3))
            mac = GATEWAY_MAC
            v6 = False
        if addr not in seen:
            seen.add(addr)
            out.append((addr, mac, v6))
    return out


def _wrap(wrapper: str, when: datetime, uptime: float, message: str) -> str:
    if wrapper == "syslog":
        return f"{when:%b} {when.day:2d} {when:%H:%M:%S} {HOST} kernel: [{uptime:12.6f}] {message}"
    if wrapper == "rfc3339":
        return f"{when.isoformat(timespec='microseconds')}+00:00 {HOST} kernel: {message}"
    if wrapper == "dmesg":
        return f"[{uptime:12.6f}] {message}"
    raise ValueError(f"unknown wrapper {wrapper!r} (choose from {', '.join(WRAPPERS)})")


def _ttl(src: str) -> int:
    """A source keeps its TTL (same OS, same path), as in real logs."""
    return (49, 52, 57, 113, 241)[sum(map(ord, src)) % 5]


def _v4_header(rng: random.Random, src: str, dst: str, length: int, df: bool = True) -> str:
    flags = "DF " if df else ""
    return (
        f"SRC={src} DST={dst} LEN={length} TOS=0x00 PREC=0x00 "
        f"TTL={_ttl(src)} ID={rng.randrange(65536)} {flags}"
    )


def _v6_header(rng: random.Random, src: str, dst: str, length: int) -> str:
    return (
        f"SRC={src} DST={dst} LEN={length} TC=0 HOPLIMIT={_ttl(src)} "
        f"FLOWLBL={rng.randrange(1 << 20)} "
    )


def _tcp(rng: random.Random, dport: int) -> str:
    if rng.random() < 0.85:
        flags, window = "SYN ", rng.choice((1024, 64240, 65535, 29200))
    else:
        flags, window = rng.choice(("ACK ", "ACK FIN ", "ACK RST ", "ACK PSH ", "RST ")), 501
    return (
        f"PROTO=TCP SPT={rng.randrange(1024, 65536)} DPT={dport} WINDOW={window} RES=0x00 "
        f"{flags}URGP=0 "
    )


def _message(rng: random.Random, source: tuple[str, str, bool], prefix: str) -> str:
    src, mac_src, v6 = source
    ethertype = "86:dd" if v6 else "08:00"
    out = "eth1" if prefix.startswith("nfkit:forward:") else ""  # routed on to the LAN behind
    head = f"{prefix}IN=eth0 OUT={out} MAC={FW_MAC}:{mac_src}:{ethertype} "
    roll = rng.random()
    if v6:
        if roll < 0.6:
            return head + _v6_header(rng, src, LOCAL_V6, 80) + _tcp(rng, rng.choice(TCP_PORTS))
        if roll < 0.85:
            return (
                head
                + _v6_header(rng, src, LOCAL_V6, 72)
                + f"PROTO=UDP SPT={rng.randrange(1024, 65536)} DPT={rng.choice(UDP_PORTS)} "
                + "LEN=32 "
            )
        return (
            head
            + _v6_header(rng, src, LOCAL_V6, 104)
            + f"PROTO=ICMPv6 TYPE=128 CODE=0 ID={rng.randrange(65536)} SEQ={rng.randrange(1, 9)} "
        )
    if roll < 0.58:
        return head + _v4_header(rng, src, LOCAL_V4, 60) + _tcp(rng, rng.choice(TCP_PORTS))
    if roll < 0.83:
        return (
            head
            + _v4_header(rng, src, LOCAL_V4, 76, df=False)
            + f"PROTO=UDP SPT={rng.randrange(1024, 65536)} DPT={rng.choice(UDP_PORTS)} LEN=56 "
        )
    if roll < 0.97:
        return (
            head
            + _v4_header(rng, src, LOCAL_V4, 84)
            + f"PROTO=ICMP TYPE=8 CODE=0 ID={rng.randrange(65536)} SEQ={rng.randrange(1, 9)} "
        )
    if roll < 0.985:  # an ICMP error quoting one of our packets
        sport = rng.choice(TCP_PORTS)
        return (
            head
            + _v4_header(rng, src, LOCAL_V4, 576, df=False)
            + "PROTO=ICMP TYPE=3 CODE=4 ["
            + _v4_header(rng, LOCAL_V4, src, 1500)
            + f"PROTO=TCP SPT={sport} DPT={rng.randrange(1024, 65536)} WINDOW=502 RES=0x00 "
            + "ACK PSH URGP=0 ] MTU=1400 "
        )
    frag = rng.choice(("MF ", "MF FRAG:185 ", "FRAG:370 "))
    # Only the first fragment carries the UDP header.
    udp = "PROTO=UDP SPT=53 DPT=4444 LEN=4000 " if frag == "MF " else "PROTO=UDP "
    return head + _v4_header(rng, src, LOCAL_V4, 1500, df=False) + frag + udp


def generate_lines(
    count: int,
    *,
    seed: int = 0,
    sources: int = 5000,
    start: datetime | None = None,
    rate: float = 50.0,
    wrapper: str = "syslog",
) -> Iterator[str]:
    """Yield ``count`` log lines (no newline) from ``sources`` distinct addresses.

    ``rate`` is the mean number of lines per second (timestamps advance accordingly from
    ``start``, default 2026-11-20 00:00); ``wrapper`` is one of :data:`WRAPPERS`.
    """
    if wrapper not in WRAPPERS:
        raise ValueError(f"unknown wrapper {wrapper!r} (choose from {', '.join(WRAPPERS)})")
    rng = random.Random(seed)
    pool = _sources(rng, max(1, sources))
    # Skewed: weight 1/rank^0.9 — a few scanners send most packets, a long tail sends a few.
    weights = [1.0 / (rank + 1) ** 0.9 for rank in range(len(pool))]
    names = [p for p, _ in PREFIXES]
    prefix_weights = [w for _, w in PREFIXES]
    when = start or datetime(2026, 11, 20)
    uptime = 86_400.0
    batch = 4096
    produced = 0
    while produced < count:
        size = min(batch, count - produced)
        picked = rng.choices(pool, weights=weights, k=size)
        prefixes = rng.choices(names, weights=prefix_weights, k=size)
        for source, prefix in zip(picked, prefixes, strict=True):
            step = rng.expovariate(rate)
            when += timedelta(seconds=step)
            uptime += step
            yield _wrap(wrapper, when, uptime, _message(rng, source, prefix))
        produced += size


def write_log(path: Path | str, count: int, **options: object) -> Path:
    """Write ``count`` lines to ``path`` (gzip when it ends in ``.gz``) and return the path."""
    target = Path(path)
    opener = gzip.open if target.suffix == ".gz" else open
    with opener(target, "wt", encoding="utf-8") as out:
        _write(out, count, options)
    return target


def _write(out: TextIO, count: int, options: dict[str, object]) -> None:
    lines = generate_lines(count, **options)  # type: ignore[arg-type]
    for line in lines:
        out.write(line + "\n")


def main(argv: list[str] | None = None) -> int:
    """Command line: write generated lines to a file or stdout."""
    parser = argparse.ArgumentParser(description="Generate netfilter LOG lines (kern.log style).")
    parser.add_argument("-n", "--count", type=int, default=100_000, help="lines (default 100000)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument(
        "--sources", type=int, default=5000, help="distinct source addresses (default 5000)"
    )
    parser.add_argument("--rate", type=float, default=50.0, help="mean lines per second")
    parser.add_argument("--wrapper", choices=WRAPPERS, default="syslog", help="line wrapper")
    parser.add_argument(
        "-o", "--out", type=Path, help="output file (.gz compresses); default stdout"
    )
    args = parser.parse_args(argv)
    options: dict[str, object] = {
        "seed": args.seed,
        "sources": args.sources,
        "rate": args.rate,
        "wrapper": args.wrapper,
    }
    if args.out is None:
        _write(sys.stdout, args.count, options)
    else:
        write_log(args.out, args.count, **options)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
