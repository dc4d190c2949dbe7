"""Memory as distinct sources grow: millions of one-packet sources around a few heavy hitters.

    python3 benchmarks/bench_sources.py [--sources 5000000] [--heavy 20] [--each 20000]
                                        [--max-sources 100000] [--jobs 1]

Writes a kern.log in which ``--sources`` addresses send one packet each and ``--heavy``
addresses send ``--each`` packets each (spread evenly through the file), runs::

    nfkit summarize --no-discover LOG --format json -o OUT --jobs N --max-sources M

samples the resident memory of the process tree every 50 ms, and checks the JSON: every heavy
hitter listed with its exact count (no ``error``), and the ``approximate`` section saying how
many sources were dropped and the ``floor`` no dropped source exceeded. ``--max-sources 0``
keeps every source, for comparison (memory then grows with the sources).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_summarize import run  # noqa: E402

LINE = (
    "Nov 20 {h:02d}:{m:02d}:{s:02d} fw kernel: [86400.000000] nfkit:input:drop IN=eth0 OUT= "
    "MAC=52:54:00:00:00:10:52:54:00:00:00:01:08:00 SRC={src} DST=192.168.1.10 LEN=60 "
    "TOS=0x00 PREC=0x00 TTL=49 ID=1 DF PROTO=TCP SPT=40000 DPT={dpt} WINDOW=1024 RES=0x00 "
    "SYN URGP=0 \n"
)


def address(number: int) -> str:
    """The ``number``-th light source: 11.0.0.0 upwards, skipping .0 and .255."""
    host = number % 254 + 1
    rest = number // 254
    return f"{11 + rest // 65536}.{rest // 256 % 256}.{rest % 256}.{host}"


def write(path: Path, sources: int, heavy: int, each: int) -> int:
    """Write the log; return its number of lines."""
    total = sources + heavy * each
    step = max(1, total // max(1, heavy * each))
    light = 0
    heavy_sent = 0
    with path.open("w") as out:
        for i in range(total):
            second = i * 86_000 // total
            h, m, s = second // 3600, second // 60 % 60, second % 60
            if heavy_sent < heavy * each and (i % step == 0 or light >= sources):
                src = f"198.51.100.{heavy_sent % heavy + 1}"
                heavy_sent += 1
            else:
                src = address(light)
                light += 1
            out.write(LINE.format(h=h, m=m, s=s, src=src, dpt=22 + i % 7))
    return total


def main(argv: list[str] | None = None) -> int:
    """Generate the log, run nfkit summarize, print memory and check the heavy hitters."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sources", type=int, default=5_000_000, help="one-packet sources")
    parser.add_argument("--heavy", type=int, default=20, help="heavy hitters (20)")
    parser.add_argument("--each", type=int, default=20_000, help="packets per heavy hitter")
    parser.add_argument("--max-sources", type=int, default=100_000, help="0: no limit")
    parser.add_argument("--jobs", type=int, default=1, help="worker processes (1)")
    parser.add_argument("--log", type=Path, help="use (or create) this log")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        path = args.log or Path(tmp) / "kern.log"
        if not path.exists():
            began = time.perf_counter()
            lines = write(path, args.sources, args.heavy, args.each)
            print(f"generated {lines:,} lines in {time.perf_counter() - began:.0f} s")
        else:
            lines = sum(1 for _ in path.open("rb"))
        report = Path(tmp) / "summary.json"
        command = [
            sys.executable, "-m", "nfkit", "summarize", "--no-discover", str(path),
            "--format", "json", "-o", str(report), "--jobs", str(args.jobs),
            "--max-sources", str(args.max_sources),
        ]  # fmt: skip
        seconds, peak, cpu = run(command)
        data = json.loads(report.read_text())
        listed = {s["address"]: s for s in data["sources"]}
        exact = [
            f"198.51.100.{i + 1}"
            for i in range(args.heavy)
            if listed.get(f"198.51.100.{i + 1}", {}).get("packets") == args.each
            and "error" not in listed[f"198.51.100.{i + 1}"]
        ]
        approximate = data["approximate"]
        print(
            f"{lines:,} lines, {args.sources + args.heavy:,} distinct sources, max_sources "
            f"{args.max_sources}: {seconds:.1f} s, peak PSS (process tree) {peak / 2**20:,.0f} "
            f"MiB, CPU {cpu:.1f} s; {len(listed):,} sources listed, {len(exact)} of "
            f"{args.heavy} heavy hitters exact; dropped {approximate['dropped_sources']:,}, "
            f"floor {approximate['floor']}; load {os.getloadavg()[0]:.2f}"
        )
        return 0 if len(exact) == args.heavy else 1


if __name__ == "__main__":
    raise SystemExit(main())
