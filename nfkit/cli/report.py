"""``nfkit report``: per-segment and per-host trends over the runs in a history database."""

from __future__ import annotations

import argparse
import time

from nfkit.errors import ConfigError
from nfkit.logs.fleet_report import render_report
from nfkit.logs.fleet_trends import build, load_host_segments, period_start
from nfkit.logs.history import DEFAULT_HISTORY, History, parse_url
from nfkit.logs.report import FORMATS

_DESCRIPTION = """\
Show the last days of the history database that `nfkit summarize --db URL` fills on every run
(one host, or a whole fleet writing to one PostgreSQL server): per segment the hostile
neighbours (peers reaching its hosts) and what its upstream let through; per host the packets
by origin, packets per day against the days before, and findings (be_liberal: window tracking;
pmtud_blackhole: PMTUD broken); then every host's summaries merged (sources, scans,
recommendations) — without reading old logs again.

A host's segment is the one given by --fleet (a TOML file mapping host names to segments),
else the segment its runs were attributed with (its networks or gateway MACs).
"""

_EPILOG = f"""\
examples:
  nfkit report --days 7
  nfkit report --db postgresql://nfkit@db.example/nfkit --days 7 --format html -o fleet.html
  nfkit report --db sqlite:////srv/fw/history.sqlite3 --fleet /etc/nfkit/fleet.toml

database URLs: a file path or sqlite:///relative/path or sqlite:////absolute/path (SQLite);
postgresql://[user@]host[:port]/dbname (keep the password in ~/.pgpass or PGPASSWORD).
exit codes: 0 success, 2 error (bad URL, unreachable or corrupt database, bad option).
The default database is {DEFAULT_HISTORY}.
"""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``report`` command."""
    parser = subparsers.add_parser(
        "report",
        help="per-segment and per-host trends from the history database (summarize --db)",
        description=_DESCRIPTION,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--days", type=int, default=7, metavar="N", help="how many days back (default: 7)"
    )
    where = parser.add_mutually_exclusive_group()
    where.add_argument(
        "--db",
        metavar="URL",
        help=f"history database: path, sqlite:///PATH or postgresql://... "
        f"(default: {DEFAULT_HISTORY})",
    )
    where.add_argument(
        "--history", metavar="PATH", dest="db", help="SQLite history file (same as --db PATH)"
    )
    parser.add_argument(
        "--fleet",
        metavar="TOML",
        help="fleet file naming each host's segment ([hosts] NAME = SEGMENT, or "
        "[hosts.NAME] segment = ..., or [segments.NAME] hosts = [...])",
    )
    parser.add_argument(
        "--host",
        action="append",
        default=[],
        metavar="NAME",
        help="only these hosts (repeatable)",
    )
    parser.add_argument(
        "--format", choices=FORMATS, default="text", help="output format (default: text)"
    )
    parser.add_argument("-o", "--output", metavar="FILE", help="write the report to FILE")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Load the runs of the last ``--days`` days and render them per segment and host."""
    from nfkit.cli.summarize import emit

    if not 0 < args.days <= 36500:
        raise ConfigError("--days must be a positive number, at most 36500")
    url = parse_url(args.db or DEFAULT_HISTORY)
    if not url.exists():
        raise ConfigError(f"{url}: no history database (run nfkit summarize --db)")
    host_segments = load_host_segments(args.fleet) if args.fleet else None
    until = time.time()
    with History(url) as history:
        runs = history.runs(since=period_start(args.days, until), hosts=args.host)
    report = build(runs, args.days, until, host_segments)
    emit(render_report(report, args.format), args.output)
    return 0
