"""End-to-end speed and memory of summarising a generated kern.log.

    python3 benchmarks/bench_summarize.py [-n 10000000] [--sources 100000] [--log PATH]
                                          [--jobs 2] [--repeat 3] [--full-lines 1000000]

The log is written once by ``genlog`` (syslog wrapper; TCP/UDP/ICMP/IPv6, ICMP errors and
fragments; ``--sources`` distinct sources, skewed) unless ``--log`` names an existing one. Each
round runs, as a separate process, what a user runs::

    nfkit summarize --no-discover LOG --format FORMAT -o /dev/null --jobs N [--max-sources M]

— reading, summarising on N cores (threads of the native scanner, or worker processes without
it), and rendering the report (text, as cron mails it, unless ``--format`` says otherwise) — and
measures its wall time and peak memory: the peak of the *sum* of the proportional set sizes
(PSS) of the whole process tree (sampled from /proc every 50 ms; pages shared after fork count
once) and the largest single process (``resource.getrusage(RUSAGE_CHILDREN).ru_maxrss``), and
the CPU seconds of the tree (lines per CPU second is the figure least skewed by other load).
With ``--full-lines N`` the first N lines also go through ``nfkit summarize --state`` (the full
parser, one core) for comparison.
The best round is reported with the load average seen: other processes skew the figures.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from genlog import write_log  # noqa: E402


def tree_rss(root: int) -> int:
    """Memory of ``root`` and all its descendants (0 when gone): the sum of their proportional
    set sizes (PSS), so that pages a forked worker still shares with its parent count once."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(entry.name))
    total, stack = 0, [root]
    while stack:
        pid = stack.pop()
        total += _pss(pid)
        stack.extend(children.get(pid, []))
    return total


def _pss(pid: int) -> int:
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return 0
    for line in text.splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1]) * 1024
    return 0


def cpu_of_children() -> float:
    """User + system CPU seconds of the waited-for descendants so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run(command: list[str]) -> tuple[float, int, float]:
    """Wall seconds, peak process-tree RSS (bytes) and CPU seconds of ``command``."""
    cpu_before = cpu_of_children()
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
    peak = 0
    stop = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not stop.is_set():
            peak = max(peak, tree_rss(process.pid))
            stop.wait(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    code = process.wait()
    elapsed = time.perf_counter() - start
    stop.set()
    sampler.join()
    if code != 0:
        raise SystemExit(f"{command} failed with exit code {code}")
    return elapsed, peak, cpu_of_children() - cpu_before


def main(argv: list[str] | None = None) -> int:
    """Generate (or reuse) the log, run the rounds, print lines/s and memory."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", "--count", type=int, default=10_000_000, help="lines (10000000)")
    parser.add_argument("--sources", type=int, default=100_000, help="distinct sources (100000)")
    parser.add_argument("--seed", type=int, default=1, help="generator seed (1)")
    parser.add_argument("--log", type=Path, help="use (or create) this log instead of a temp file")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="worker processes")
    parser.add_argument("--repeat", type=int, default=3, help="rounds; the best is kept (3)")
    parser.add_argument("--full-lines", type=int, default=0, help="also time the full parser")
    parser.add_argument(
        "--format", choices=("text", "json", "html"), default="text", help="report (text)"
    )
    parser.add_argument("--max-sources", type=int, help="passed to nfkit summarize")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        path = args.log or Path(tmp) / "kern.log"
        if not path.exists():
            began = time.perf_counter()
            write_log(path, args.count, seed=args.seed, sources=args.sources)
            print(f"generated {args.count:,} lines in {time.perf_counter() - began:.0f} s")
        with path.open("rb") as handle:
            lines = sum(block.count(b"\n") for block in iter(lambda: handle.read(1 << 24), b""))
        print(f"log: {path} ({path.stat().st_size / 1e9:.2f} GB, {lines:,} lines)")
        command = [
            sys.executable, "-m", "nfkit", "summarize", "--no-discover", str(path),
            "--format", args.format, "-o", os.devnull, "--jobs", str(args.jobs),
        ]  # fmt: skip
        if args.max_sources is not None:
            command += ["--max-sources", str(args.max_sources)]
        best = (float("inf"), 0, 0.0)
        for round_no in range(1, args.repeat + 1):
            seconds, peak, cpu = run(command)
            best = min(best, (seconds, peak, cpu))
            load = os.getloadavg()[0]
            print(
                f"  round {round_no}: {seconds:.1f} s, {lines / seconds:,.0f} lines/s, "
                f"peak PSS (process tree) {peak / 2**20:,.0f} MiB, CPU {cpu:.1f} s "
                f"({lines / cpu:,.0f} lines per CPU second), load {load:.2f}"
            )
        largest = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        load1, load5, _ = os.getloadavg()
        print(
            f"nfkit summarize --format {args.format}, {args.jobs} jobs: "
            f"{lines / best[0]:,.0f} lines/s end to end "
            f"(best of {args.repeat}; {lines / best[2]:,.0f} lines per CPU second), peak memory "
            f"{best[1] / 2**20:,.0f} MiB (PSS) for the process tree, {largest:,.0f} MiB largest "
            f"process (RSS); load average {load1:.2f} {load5:.2f} "
            f"on {os.cpu_count()} CPUs"
        )
        if args.full_lines:
            part = Path(tmp) / "part.log"
            with path.open("rb") as source, part.open("wb") as target:
                for _ in range(args.full_lines):
                    line = source.readline()
                    if not line:
                        break
                    target.write(line)
            full = [sys.executable, "-m", "nfkit", "summarize", "--no-discover", "--format",
                    args.format, "-o", os.devnull, "--state", str(Path(tmp) / "state.json"),
                    str(part)]  # fmt: skip
            seconds, peak, cpu = run(full)
            print(
                f"full parser (nfkit summarize --state), {args.full_lines:,} lines: "
                f"{args.full_lines / seconds:,.0f} lines/s, {args.full_lines / cpu:,.0f} lines per "
                f"CPU second, peak PSS {peak / 2**20:,.0f} MiB"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
