"""``nfkit report``: trends over the runs stored by ``nfkit summarize --history``."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from nfkit.errors import ConfigError
from nfkit.logs.aggregate import Summary
from nfkit.logs.history import DEFAULT_HISTORY, History, trend
from nfkit.logs.report import FORMATS, render

_DESCRIPTION = """\
Show the last days from the history database that `nfkit summarize --history DB` fills on
every run: packets per day by origin, and the runs' summaries merged (sources, scans,
recommendations) — without reading old logs again.
"""

_EPILOG = f"""\
examples:
  nfkit report --days 7
  nfkit report --days 30 --history /srv/fw/history.sqlite3 --format html -o trend.html

exit codes: 0 success, 2 error (unreadable or corrupt history database, bad option).
The default database is {DEFAULT_HISTORY}.
"""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``report`` command."""
    parser = subparsers.add_parser(
        "report",
        help="trends across stored summarize runs (history database)",
        description=_DESCRIPTION,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--days", type=int, default=7, metavar="N", help="how many days back (default: 7)"
    )
    parser.add_argument(
        "--history",
        metavar="DB",
        default=DEFAULT_HISTORY,
        help=f"SQLite history database (default: {DEFAULT_HISTORY})",
    )
    parser.add_argument(
        "--format", choices=FORMATS, default="text", help="output format (default: text)"
    )
    parser.add_argument("-o", "--output", metavar="FILE", help="write the report to FILE")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Load the runs of the last ``--days`` days and render their trend."""
    from nfkit.cli.summarize import emit

    if args.days <= 0:
        raise ConfigError("--days must be a positive number")
    if not Path(args.history).is_file():
        raise ConfigError(f"{args.history}: no history database (run nfkit summarize --history)")
    with History(args.history) as history:
        runs = history.runs(since=time.time() - args.days * 86400)
    result = trend(runs, args.days)
    summary = result.merged or Summary()
    title = f"nfkit firewall report, last {args.days} days"
    emit(render(summary, args.format, trend=result, title=title), args.output)
    return 0
