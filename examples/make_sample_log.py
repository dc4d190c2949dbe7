#!/usr/bin/env python3
"""Capture examples/kern.log from the real kernel: ``sudo python3 examples/make_sample_log.py``.

Builds the namespace topology of ``tests/kernel/segment_lab.py`` (an "internet" host behind a
gateway; gateway, peer and server on one bridge), sends the attacks (a port scan through the
gateway, probes and a spoofed datagram from the peer, out-of-window ACKs dropped as INVALID,
ICMP frag-needed / ICMPv6 packet-too-big dropped by the INVALID rule), reads the server's LOG
lines from ``dmesg`` and writes them wrapped as classic syslog lines, with the lab's random tag
replaced by ``nfkit``. The kernel's other messages about the lab's links are kept too (a real
kern.log has them). Nothing outside the lab's own namespaces is touched, except
``net.netfilter.nf_log_all_netns=1``.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "tests" / "kernel")]

from netlab import Lab, enable_namespace_logging, kernel_unavailable_reason  # noqa: E402
from segment_lab import attack, build  # noqa: E402

_UPTIME = re.compile(r"^\[\s*(\d+\.\d+)\] (.*)$")


def capture(host: str = "srv") -> list[str]:
    """Run the topology and return the syslog-wrapped kernel lines."""
    enable_namespace_logging()
    lab = Lab()
    start = float(Path("/proc/uptime").read_text().split()[0])
    try:
        topo = build(lab)
        expected = attack(topo)
        lab.kernel_log(wait_for=expected, timeout=10)
        time.sleep(0.5)
        dmesg = subprocess.run(["dmesg"], capture_output=True, text=True, check=True).stdout
    finally:
        lab.close()
    boot = time.time() - float(Path("/proc/uptime").read_text().split()[0])
    names = ("br0:", "p-gw", "p-srv", "p-peer")
    out = []
    for line in dmesg.splitlines():
        match = _UPTIME.match(line)
        if not match or float(match.group(1)) < start:
            continue
        message = match.group(2)
        if lab.tag in message:
            message = message.replace(f"{lab.tag}:", "nfkit:")
        elif not any(name in message for name in names):
            continue
        uptime = float(match.group(1))
        stamp = datetime.fromtimestamp(boot + uptime).strftime("%b %e %H:%M:%S")
        out.append(f"{stamp} {host} kernel: [{uptime:12.6f}] {message}")
    return out


def main() -> int:
    """Write the capture to examples/kern.log (or -o FILE)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-o", "--output", default=str(ROOT / "examples" / "kern.log"))
    args = parser.parse_args()
    reason = kernel_unavailable_reason()
    if reason:
        print(f"make_sample_log: cannot run: {reason}", file=sys.stderr)
        return 2
    lines = capture()
    Path(args.output).write_text("\n".join(lines) + "\n")
    print(f"wrote {len(lines)} lines to {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
