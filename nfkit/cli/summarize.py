"""``nfkit summarize``: who attacked, from where, what the upstream let through — for cron."""

from __future__ import annotations

import argparse
import os
import re
import signal
import sys
import time
from collections.abc import Iterable
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

from nfkit.errors import ConfigError, LogReadError, NfkitError
from nfkit.fleet import cli as fleet_cli
from nfkit.logs.aggregate import Summary, SummaryConfig
from nfkit.logs.history import History, content_key, parse_url
from nfkit.logs.parallel import summarize_paths
from nfkit.logs.progress import progress_for
from nfkit.logs.report import FORMATS, render_chunks
from nfkit.logs.segment import Segment, discover
from nfkit.logs.state import IncrementalReader, LogState, atomic_write, locked

DEFAULT_LOG = "/var/log/kern.log"
#: Test hook: set to ``kill-before-state`` to SIGKILL the run between report and state.
TEST_HOOK_ENV = "_NFKIT_TEST_HOOK"

_DESCRIPTION = """\
Summarise netfilter LOG lines: packets by origin (peer on the local segment, upstream through
the gateway, forwarded, local, unknown), the sources (peers first, with MAC), port scans and
sweeps with danger levels, what came through the gateway, and recommendations
(pmtud_blackhole: ICMP frag-needed / packet-too-big dropped; be_liberal: TCP ACKs of
established flows dropped as INVALID).

The segment (own networks, gateway MACs) comes from --config and --segment/--gateway-mac; with
neither, it is discovered from this host (or from --netns NAME) with netlink.

With --state, only lines not read by the previous run are read, across rotation by rename
(kern.log -> kern.log.1 -> kern.log.2.gz) or copytruncate. The state is saved after the report
is written: a run killed earlier is simply repeated by the next one.
"""

_EPILOG = f"""\
examples:
  nfkit summarize /var/log/kern.log --state /var/lib/nfkit/state.json --db \\
      /var/lib/nfkit/history.sqlite3 --quiet-if-empty
  nfkit summarize --state /var/lib/nfkit/state.json --db postgresql://nfkit@db.example/nfkit
  nfkit summarize kern.log.2.gz --segment 192.0.2.0/24 --gateway-mac 02:00:00:00:00:01
  nfkit summarize --format html -o /var/www/fw.html --since 24h

exit codes: 0 success (findings are in the report), 2 error (unreadable log, bad config or
state file, bad option; the state is then left unchanged), 130 interrupted.
With no FILE, {DEFAULT_LOG} is read; '-' reads standard input (not with --state).
"""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``summarize`` command."""
    parser = subparsers.add_parser(
        "summarize",
        help="summarise firewall logs: attackers, scans, upstream leaks, PMTUD and INVALID drops",
        description=_DESCRIPTION,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "files", nargs="*", metavar="FILE", help=f"log file, plain or .gz (default {DEFAULT_LOG})"
    )
    parser.add_argument(
        "--state",
        metavar="PATH",
        help="read incrementally, remembering offsets in this JSON file (created if missing)",
    )
    parser.add_argument(
        "--format", choices=FORMATS, default="text", help="output format (default: text)"
    )
    parser.add_argument(
        "--since",
        metavar="WHEN",
        help="ignore packets logged before WHEN: a duration back from now (30m, 24h, 7d, 2w) "
        "or an ISO date/time (2026-11-24, 2026-11-24T06:00)",
    )
    parser.add_argument(
        "-o", "--output", metavar="FILE", help="write the report to FILE (atomically)"
    )
    parser.add_argument(
        "--quiet-if-empty",
        action="store_true",
        help="print nothing when no packet was logged since the last run (quiet cron mail)",
    )
    parser.add_argument(
        "--config",
        metavar="TOML",
        help="TOML file with [segment] (networks, own_macs, gateway_macs, gateway_ips) and "
        "[summary] (tags, invalid_prefixes, scan thresholds)",
    )
    parser.add_argument(
        "--segment",
        action="append",
        default=[],
        metavar="CIDR",
        help="own network on the local segment (repeatable)",
    )
    parser.add_argument(
        "--gateway-mac",
        action="append",
        default=[],
        metavar="MAC",
        help="MAC address of the upstream gateway (repeatable); any other MAC is a peer",
    )
    parser.add_argument(
        "--netns",
        metavar="NAME",
        help="discover the segment inside network namespace NAME instead of this host",
    )
    parser.add_argument(
        "--no-discover",
        action="store_true",
        help="never inspect the running system (offline analysis of another host's logs)",
    )
    parser.add_argument(
        "--db",
        metavar="URL",
        help="record this run's summary in the history database (for nfkit report): a path, "
        "sqlite:///PATH or postgresql://... shared by a fleet",
    )
    parser.add_argument(
        "--history", metavar="PATH", dest="db", help="SQLite history file (same as --db PATH)"
    )
    parser.add_argument(
        "--host",
        metavar="NAME",
        help="host name the run is recorded under in the history (default: this machine's)",
    )
    parser.add_argument(
        "--jobs",
        type=_positive_int,
        default=None,
        metavar="N",
        help=(
            "cores for whole-file runs: threads with the native scanner, worker processes "
            "without it (default: one per CPU; 1 = one thread)"
        ),
    )
    parser.add_argument(
        "--max-sources",
        type=_source_limit,
        default=None,
        metavar="N",
        help="keep the details of about N sources, the busiest (up to 1.5 N between drops); "
        "the report says where counts are approximate (default: [summary] max_sources, or "
        "100000; 0 = no limit)",
    )
    fleet_cli.add_arguments(parser)
    parser.set_defaults(func=run)


def parse_since(text: str | None, now: datetime | None = None) -> datetime | None:
    """``24h`` / ``7d`` / ``30m`` / ``2w`` before now, or an ISO date/time (local if naive)."""
    if text is None:
        return None
    now = now or datetime.now().astimezone()
    match = re.fullmatch(r"\s*(\d+)\s*([smhdw])\s*", text)
    if match:
        unit = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
        try:
            return now - timedelta(**{unit[match.group(2)]: int(match.group(1))})
        except OverflowError:
            raise ConfigError(f"--since: {text.strip()!r} reaches before year 1") from None
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ConfigError(
            f"--since: cannot read {text!r} (use 24h, 7d, 30m or 2026-11-24[T06:00])"
        ) from None
    return when if when.tzinfo else when.astimezone()


def build_config(args: argparse.Namespace) -> SummaryConfig:
    """Config file, command-line flags and (when asked or nothing else is given) discovery."""
    config = SummaryConfig.from_toml(args.config) if args.config else SummaryConfig()
    flags = Segment.from_values(networks=args.segment, gateway_macs=args.gateway_mac)
    segment = config.segment.union(flags)
    given = args.config or args.segment or args.gateway_mac
    if args.netns is not None and not args.netns.strip():
        raise ConfigError("--netns: namespace '' is not a name (leave --netns out for this host)")
    if args.netns:
        segment = segment.union(discover(args.netns))
    elif not given and not args.no_discover and not fleet_cli.wanted(args):
        # with --dask / --fleet the logs are other hosts': this host's segment would be a guess
        try:
            segment = segment.union(discover())
        except NfkitError as exc:
            print(
                f"nfkit summarize: warning: {exc}; attributing without a segment", file=sys.stderr
            )
    if args.max_sources is not None:
        config = replace(config, max_sources=args.max_sources or None)
    return config.with_segment(segment)


def emit(text: str | Iterable[str], output: str | None) -> None:
    """Write the report (text, or pieces of it) to ``output`` atomically, or to stdout."""
    pieces = [text] if isinstance(text, str) else text
    if output:
        atomic_write(Path(output), (piece.encode() for piece in pieces))
    else:
        sys.stdout.writelines(pieces)
        sys.stdout.flush()


#: More worker processes than this only thrash: each holds a partial summary in memory.
MAX_JOBS = 256


def _source_limit(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if not 0 <= value <= 1 << 40:
        raise argparse.ArgumentTypeError(f"must be from 0 (no limit) up, not {value}")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if not 1 <= value <= MAX_JOBS:
        raise argparse.ArgumentTypeError(f"must be from 1 to {MAX_JOBS}, not {value}")
    return value


def run(args: argparse.Namespace) -> int:
    """Summarise, write the report, record history, then save the state."""
    files = args.files or [DEFAULT_LOG]
    if "-" in files and sys.stdin is None:  # started with standard input closed (``<&-``)
        raise LogReadError("<stdin>: cannot read log: standard input is closed")
    if args.db:
        parse_url(args.db)  # a bad URL stops the run before any log is read
    config = build_config(args)
    since = parse_since(args.since)
    started = time.time()
    if fleet_cli.wanted(args):
        fleet_run = fleet_cli.summarize_fleet(args, config, since, files)
        if not (args.quiet_if_empty and fleet_run.summary.records == 0):
            emit(fleet_run.text, args.output)
        if args.db:
            with History(args.db) as history:
                if fleet_run.hosts is None:
                    summary = fleet_run.summary
                    history.record(content_key(summary), summary, started, host=args.host)
                else:  # one row per host, as if each host's cron had run
                    for host, part in fleet_run.hosts.hosts.items():
                        if part.records:
                            segment = fleet_run.hosts.segments.get(host)
                            history.record(
                                content_key(part), part, started, host=host, segment=segment
                            )
        return 0
    summary = Summary(config)
    if args.state:
        if "-" in files:
            raise ConfigError("standard input ('-') cannot be read incrementally with --state")
        with locked(args.state):
            reader = IncrementalReader(LogState.load(args.state), files)
            summary.add_lines(reader.lines(), since=since)
            _report(summary, args, reader.run_key, started)
            if os.environ.get(TEST_HOOK_ENV) == "kill-before-state":
                os.kill(os.getpid(), signal.SIGKILL)
            reader.new_state().save(args.state)
    else:
        progress = progress_for(sys.stderr)
        try:
            summary = summarize_paths(files, config, since, jobs=args.jobs, progress=progress)
        finally:
            if progress is not None:
                progress.close()
        # Whole files read again: the same input gives the same summary, hence the same row.
        _report(summary, args, None, started)
    return 0


def _report(
    summary: Summary, args: argparse.Namespace, run_key: str | None, started: float
) -> None:
    if not (args.quiet_if_empty and summary.records == 0):
        emit(render_chunks(summary, args.format), args.output)
    if args.db:
        with History(args.db) as history:
            history.record(run_key or content_key(summary), summary, started, host=args.host)
