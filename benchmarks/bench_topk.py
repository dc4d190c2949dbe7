"""Bounded memory with millions of sources: the heavy-hitter table on 5 million distinct sources.

    python3 benchmarks/bench_topk.py [--sources 5000000] [--capacity 100000] [--scanners 50]

A stream of ``--sources`` distinct one-to-three-packet sources (the long tail of a big log) with
``--scanners`` heavy sources mixed in (1,000+ packets each, spread over the whole stream) is fed
to two ``HeavyHitters(capacity)`` tables, one per half, which are then merged — as two worker
processes would. It prints the time, the peak RSS of this process, the table's error bound
(``floor``) and checks the guarantees: every scanner kept with a count within the bound, every
scanner whose count is exact said so. A plain ``dict`` of every source is timed for comparison.
"""

from __future__ import annotations

import argparse
import random
import resource
import time

from nfkit.logs.topk import HeavyHitters


def stream(sources: int, scanners: int, seed: int) -> list[tuple[str, int]]:
    """``(source, packets)`` events: the tail once each, the scanners every ``sources/1000``."""
    rng = random.Random(seed)
    events: list[tuple[str, int]] = []
    every = max(1, sources // 1000)
    for n in range(sources):
        events.append((f"10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}/{n >> 24}", rng.randint(1, 3)))
        if n % every == 0:
            events.extend((f"198.51.100.{s}", 1 + rng.randint(0, 1)) for s in range(scanners))
    return events


def main(argv: list[str] | None = None) -> int:
    """Feed, merge, check, print."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sources", type=int, default=5_000_000, help="tail sources (5000000)")
    parser.add_argument("--capacity", type=int, default=100_000, help="table size (100000)")
    parser.add_argument("--scanners", type=int, default=50, help="heavy sources (50)")
    args = parser.parse_args(argv)
    events = stream(args.sources, args.scanners, seed=1)
    truth: dict[str, int] = {}
    began = time.perf_counter()
    for key, count in events:
        truth[key] = truth.get(key, 0) + count
    exact_seconds = time.perf_counter() - began
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    half = len(events) // 2
    began = time.perf_counter()
    tables = []
    for part in (events[:half], events[half:]):
        table: HeavyHitters[str] = HeavyHitters(args.capacity)
        add = table.add
        for key, count in part:
            add(key, count)
        tables.append(table)
    merged = tables[0].merge(tables[1])
    seconds = time.perf_counter() - began
    total = merged.total
    scanners = [f"198.51.100.{s}" for s in range(args.scanners)]
    kept = [s for s in scanners if s in merged]
    within = all(merged.count(s) - merged.error(s) <= truth[s] <= merged.count(s) for s in kept)
    exact = [s for s in kept if merged.is_exact(s)]
    assert all(merged.count(s) == truth[s] for s in exact)
    print(f"{len(truth):,} distinct sources, {total:,} packets, {len(events):,} events")
    print(f"dict of every source: {exact_seconds:.1f} s, {len(truth):,} entries")
    print(
        f"HeavyHitters({args.capacity:,}) x2 + merge: {seconds:.1f} s "
        f"({len(events) / seconds:,.0f} events/s), {len(merged):,} kept; error bound (floor) "
        f"{merged.floor} packets = {merged.floor / total * args.capacity:.2f} x total/capacity"
    )
    print(
        f"scanners kept: {len(kept)}/{args.scanners}, counts within their error bounds: "
        f"{within}, exact: {len(exact)}; guaranteed heavy hitters: {len(merged.guaranteed())}"
    )
    print(
        f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MiB "
        f"(of which the events list and the exact dict {rss_before / 1024:,.0f} MiB)"
    )
    return 0 if len(kept) == args.scanners and within else 1


if __name__ == "__main__":
    raise SystemExit(main())
