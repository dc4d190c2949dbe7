"""Time full parsing of a generated kern.log to LogRecords, in lines per second.

    python3 benchmarks/bench_parse.py [-n 1000000] [--seed 1] [--repeat 3]

The log (classic syslog wrapper unless ``--wrapper`` says otherwise; mixed TCP/UDP/ICMP/IPv6;
5,000 sources) is written by ``genlog`` to a temporary file once; each round then reads it with
``nfkit.iter_records(path)``: file reading, decoding, unwrapping and building every LogRecord.
For scale, the same file is also read with a plain ``re.findall`` key=value loop (dicts, not
records). The best round is reported, with the load average, because other processes on the
machine skew the figure; each round also shows the rate in CPU time (``time.process_time``),
which other processes skew less (they still share the caches). For figures independent of load,
count instructions: ``valgrind --tool=callgrind`` on a run of ``-n 20000 --repeat 1``.
"""

from __future__ import annotations

import argparse
import gc
import os
import re
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from genlog import WRAPPERS, write_log

from nfkit import iter_records

_KEY_VALUE = re.compile(r"([A-Z]+)=(\S*)")


def time_nfkit(path: Path) -> tuple[float, float, int]:
    """Wall and CPU seconds to parse ``path`` completely, and the number of records."""
    gc.collect()
    start = time.perf_counter()
    cpu = time.process_time()
    stream = iter_records(path)
    count = 0
    for _record in stream:
        count += 1
    return time.perf_counter() - start, time.process_time() - cpu, count


def time_findall(path: Path) -> float:
    """Seconds for the naive baseline: a dict of ``KEY=value`` pairs per line."""
    gc.collect()
    findall = _KEY_VALUE.findall
    start = time.perf_counter()
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            dict(findall(line))
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    """Generate the log, time the rounds, print lines/s."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", "--count", type=int, default=1_000_000, help="lines (1000000)")
    parser.add_argument("--seed", type=int, default=1, help="generator seed (1)")
    parser.add_argument("--repeat", type=int, default=3, help="rounds; the best is kept (3)")
    parser.add_argument("--no-baseline", action="store_true", help="skip the re.findall loop")
    parser.add_argument(
        "--wrapper", choices=WRAPPERS, default="syslog", help="line wrapper (default syslog)"
    )
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "kern.log"
        began = time.perf_counter()
        write_log(path, args.count, seed=args.seed, wrapper=args.wrapper)
        print(f"generated {args.count:,} lines in {time.perf_counter() - began:.1f} s ({path})")
        best = best_cpu = float("inf")
        for round_no in range(1, args.repeat + 1):
            seconds, cpu, records = time_nfkit(path)
            assert records == args.count, f"only {records} of {args.count} lines parsed"
            best = min(best, seconds)
            best_cpu = min(best_cpu, cpu)
            print(
                f"  round {round_no}: {seconds:.2f} s, {args.count / seconds:,.0f} lines/s "
                f"({args.count / cpu:,.0f} lines/s of CPU time)"
            )
        load = os.getloadavg()
        print(
            f"nfkit iter_records: {args.count / best:,.0f} lines/s (best of {args.repeat}; "
            f"load average {load[0]:.2f} {load[1]:.2f} on {os.cpu_count()} CPUs; "
            f"{args.count / best_cpu:,.0f} lines/s of CPU time)"
        )
        if not args.no_baseline:
            baseline = min(time_findall(path) for _ in range(args.repeat))
            print(
                f"re.findall key=value loop: {args.count / baseline:,.0f} lines/s "
                f"(nfkit is {baseline / best:.2f}x that)"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
