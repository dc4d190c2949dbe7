"""The fleet options of ``nfkit summarize``: ``--dask``, ``--fleet``, ``--partition-mb``.

Kept here so that ``nfkit/cli/summarize.py`` needs only a few lines to use them:
:func:`add_arguments` in ``register``, :func:`wanted` and :func:`summarize_fleet` in ``run``.
"""

from __future__ import annotations

import argparse
import itertools
from dataclasses import dataclass
from datetime import datetime

from nfkit.errors import ConfigError
from nfkit.fleet.dask import summarize_fleet_on_dask, summarize_on_dask
from nfkit.fleet.fleetfile import from_toml as load_fleet
from nfkit.fleet.render import render_fleet
from nfkit.fleet.summary import FleetSummary, summarize_by_host
from nfkit.logs.aggregate import Summary, SummaryConfig
from nfkit.logs.report import render
from nfkit.logs.state import read_whole

__all__ = [
    "MAX_PARTITION_MB",
    "FleetRun",
    "add_arguments",
    "partition_mb",
    "summarize_fleet",
    "wanted",
]

#: Largest ``--partition-mb`` (1 TiB): a larger partition is a whole file anyway.
MAX_PARTITION_MB = 1 << 20


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--dask``, ``--fleet`` and ``--partition-mb`` to ``nfkit summarize``."""
    group = parser.add_argument_group("fleet (see docs/fleet.md)")
    group.add_argument(
        "--dask",
        metavar="ADDRESS",
        help="summarise on the Dask cluster whose scheduler is ADDRESS (tcp://host:8786); the "
        "files must be readable under the same paths on every worker; needs nfkit[fleet]",
    )
    group.add_argument(
        "--fleet",
        metavar="TOML",
        help="fleet file mapping the host names in the logs to their segments and gateway "
        "MACs: each host is attributed with its own segment, hosts missing from it are "
        "reported; the report adds peers attacking several hosts and sources seen across "
        "segments",
    )
    group.add_argument(
        "--partition-mb",
        type=partition_mb,
        default=64,
        metavar="MB",
        help="with --dask, cut plain files into partitions of about MB MiB (default: 64)",
    )


def partition_mb(text: str) -> int:
    """Read ``--partition-mb``: a whole number of MiB, 1 to :data:`MAX_PARTITION_MB`."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number of MiB: {text!r}") from None
    if not 0 < value <= MAX_PARTITION_MB:
        raise argparse.ArgumentTypeError(
            f"must be between 1 and {MAX_PARTITION_MB} (MiB), not {value}"
        )
    return value


def wanted(args: argparse.Namespace) -> bool:
    """True when the run is a fleet run (``--dask`` or ``--fleet``)."""
    return bool(getattr(args, "dask", None) or getattr(args, "fleet", None))


@dataclass(slots=True)
class FleetRun:
    """What a fleet run produced: the merged summary, per-host summaries, the report text."""

    summary: Summary
    hosts: FleetSummary | None
    text: str


def summarize_fleet(
    args: argparse.Namespace, config: SummaryConfig, since: datetime | None, files: list[str]
) -> FleetRun:
    """Run ``nfkit summarize`` with ``--dask`` and/or ``--fleet``; raise ``ConfigError``."""
    if args.state:
        raise ConfigError("--state cannot be combined with --dask or --fleet (read whole files)")
    if "-" in files:
        raise ConfigError("standard input ('-') cannot be read with --dask or --fleet")
    if args.partition_mb <= 0:
        raise ConfigError("--partition-mb must be a positive number")
    fleet = load_fleet(args.fleet) if args.fleet else None
    partition_bytes = args.partition_mb << 20
    if fleet is not None:
        fleet.check_attribution()
        if args.dask:
            hosts = summarize_fleet_on_dask(
                files,
                args.dask,
                config,
                fleet,
                since=since,
                partition_bytes=args.partition_mb << 20,
            )
        else:
            lines = itertools.chain.from_iterable(read_whole(name) for name in files)
            hosts = summarize_by_host(lines, config, fleet, since)
        merged = hosts.merged()
        return FleetRun(merged, hosts, render_fleet(hosts, args.format, merged=merged))
    summary = summarize_on_dask(
        files, args.dask, config, since=since, partition_bytes=partition_bytes
    )
    return FleetRun(summary, None, render(summary, args.format))
