"""Summarise N lines spread over many host files: one process vs a Dask LocalCluster.

    python3 benchmarks/bench_fleet.py                 # 1 million lines, 50 hosts, 2 workers
    python3 benchmarks/bench_fleet.py --issue         # the issue's 20 million lines
    python3 benchmarks/bench_fleet.py -n 4000000 --workers 2 --engine lines --fleet

Host files are generated once by ``genlog`` (each with its own seed and host name) into
``--dir`` and reused by later runs of the same size. Then, for the chosen engine:

* **one process** — the partitions summarised one after another in this process by one engine
  (``summarize_partitions``): exactly what one worker does with its group, without Dask;
* **Dask** — a ``distributed.LocalCluster`` of ``--workers`` single-threaded worker processes on
  loopback (started before the clock runs; start-up is reported apart), via
  :func:`nfkit.fleet.summarize_on_dask` (or ``summarize_fleet_on_dask`` with ``--fleet``).

The two summaries are checked to be equal. Reported: seconds, lines per second, the speed-up
(one process / Dask) and the efficiency (speed-up / workers), with the load average — other
processes on the machine skew the figures, so compare runs made side by side.
"""

from __future__ import annotations

import argparse
import gc
import logging
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from genlog import generate_lines

from nfkit.fleet import (
    Fleet,
    FleetSummary,
    combine,
    plan_partitions,
    summarize_fleet_on_dask,
    summarize_on_dask,
)
from nfkit.fleet.dask import summarize_partition_by_host, summarize_partitions
from nfkit.logs.aggregate import Summary, SummaryConfig
from nfkit.logs.segment import Segment

ISSUE_LINES = 20_000_000
CONFIG = SummaryConfig(
    segment=Segment.from_values(
        networks=["192.168.1.0/24"],
        own_macs=["52:54:00:00:00:10"],
        gateway_macs=["52:54:00:00:00:01"],
    )
)


def host_files(directory: Path, lines: int, hosts: int) -> list[Path]:
    """``hosts`` files of ``lines / hosts`` lines each, generated unless already there."""
    directory.mkdir(parents=True, exist_ok=True)
    per_host = lines // hosts
    paths = []
    for index in range(hosts):
        host = f"host{index:03d}"
        path = directory / f"{host}-{per_host}.log"
        paths.append(path)
        if path.exists():
            continue
        partial = path.with_suffix(".part")
        with partial.open("w", encoding="utf-8") as out:
            for line in generate_lines(per_host, seed=index, sources=2000):
                out.write(line.replace(" fw kernel: ", f" {host} kernel: ", 1) + "\n")
        partial.replace(path)
    return paths


def fleet_of(hosts: int) -> Fleet:
    """Every host on genlog's segment but the last (reported as unmapped)."""
    return Fleet.from_mapping(
        {
            "segments": {"lan": CONFIG.segment.to_dict()},
            "hosts": {f"host{i:03d}": "lan" for i in range(hosts - 1)},
        }
    )


def one_process(
    paths: list[Path], engine: str, fleet: Fleet | None, partition_bytes: int
) -> Summary | FleetSummary:
    """The same partitions and code as the workers, in this process."""
    parts = plan_partitions(paths, partition_bytes)
    if fleet is not None:
        return combine([summarize_partition_by_host(p, CONFIG, fleet) for p in parts])
    return summarize_partitions(parts, CONFIG, engine=engine)


def main(argv: list[str] | None = None) -> int:
    """Command line; prints the figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", "--lines", type=int, default=1_000_000, help="total lines")
    parser.add_argument("--issue", action="store_true", help=f"use {ISSUE_LINES:,} lines")
    parser.add_argument("--hosts", type=int, default=50, help="host files (default 50)")
    parser.add_argument("--workers", type=int, default=2, help="worker processes (default 2)")
    parser.add_argument(
        "--engine", choices=("fast", "lines"), default="fast", help="summary engine"
    )
    parser.add_argument("--fleet", action="store_true", help="per-host summaries (fleet file)")
    parser.add_argument(
        "--partition-mb", type=int, default=64, help="partition size in MiB (default 64)"
    )
    parser.add_argument(
        "--dir",
        type=Path,
        default=Path("/tmp/nfkit-bench-fleet"),
        help="where host files are generated and kept (default /tmp/nfkit-bench-fleet)",
    )
    args = parser.parse_args(argv)
    lines = ISSUE_LINES if args.issue else args.lines
    partition_bytes = args.partition_mb << 20

    from distributed import Client, LocalCluster

    started = time.perf_counter()
    paths = host_files(args.dir, lines, args.hosts)
    size = sum(p.stat().st_size for p in paths)
    total = (lines // args.hosts) * args.hosts
    print(
        f"{total:,} lines in {args.hosts} host files, {size / 2**20:.0f} MiB "
        f"({time.perf_counter() - started:.1f} s to generate or find), engine {args.engine}"
        + (", per-host (fleet file)" if args.fleet else "")
    )
    print(f"partitions: {len(plan_partitions(paths, partition_bytes))}, cores: {os.cpu_count()}")
    fleet = fleet_of(args.hosts) if args.fleet else None

    gc.collect()
    start, cpu_start = time.perf_counter(), time.process_time()
    single = one_process(paths, args.engine, fleet, partition_bytes)
    one, one_cpu = time.perf_counter() - start, time.process_time() - cpu_start
    print(f"one process:        {one:7.1f} s  {total / one:10,.0f} lines/s  ({one_cpu:.1f} s CPU)")

    start = time.perf_counter()
    with (
        LocalCluster(
            n_workers=args.workers,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address="127.0.0.1:0",
            silence_logs=logging.CRITICAL,
        ) as cluster,
        Client(cluster) as client,
    ):
        up = time.perf_counter() - start
        gc.collect()
        cpu_before = client.run(time.process_time)
        start, client_cpu = time.perf_counter(), time.process_time()
        result: Summary | FleetSummary
        if fleet is not None:
            result = summarize_fleet_on_dask(
                paths, client, CONFIG, fleet, partition_bytes=partition_bytes
            )
        else:
            result = summarize_on_dask(
                paths, client, CONFIG, partition_bytes=partition_bytes, engine=args.engine
            )
        spread = time.perf_counter() - start
        client_cpu = time.process_time() - client_cpu
        cpu_after = client.run(time.process_time)
    workers_cpu = sum(cpu_after[w] - cpu_before[w] for w in cpu_after)
    print(
        f"Dask, {args.workers} workers:   {spread:7.1f} s  {total / spread:10,.0f} lines/s  "
        f"({workers_cpu:.1f} s CPU in workers, {client_cpu:.1f} s in the client; "
        f"cluster start {up:.1f} s, not counted)"
    )
    speedup = one / spread
    overhead = workers_cpu / one_cpu
    print(f"speed-up {speedup:.2f}x, efficiency {speedup / args.workers:.0%} per worker")
    print(
        f"work done by the workers: {overhead:.2f}x the one-process CPU time, so on "
        f"{args.workers} free cores the speed-up would be about {args.workers / overhead:.2f}x"
    )
    print("load average:", " ".join(f"{v:.2f}" for v in os.getloadavg()))
    equal = result == single
    print(f"equal to the one-process summary: {equal}")
    if not equal:
        mine = result.merged() if isinstance(result, FleetSummary) else result
        theirs = single.merged() if isinstance(single, FleetSummary) else single
        left, right = mine.to_dict(), theirs.to_dict()
        print("differing keys:", sorted(k for k in left if left[k] != right.get(k)))
    if isinstance(result, FleetSummary):
        print(f"hosts: {len(result.hosts)}, unmapped: {result.unmapped}")
    return 0 if equal else 1


if __name__ == "__main__":
    raise SystemExit(main())
