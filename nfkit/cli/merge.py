"""``nfkit merge``: one report from the JSON summaries that each host's cron job wrote."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from nfkit.errors import ConfigError
from nfkit.fleet.fleetfile import Fleet
from nfkit.fleet.fleetfile import from_toml as load_fleet
from nfkit.fleet.render import render_fleet
from nfkit.fleet.summary import FleetSummary, segment_label
from nfkit.logs.aggregate import Summary
from nfkit.logs.report import FORMATS
from nfkit.logs.segment import Segment

_DESCRIPTION = """\
Merge per-host JSON summaries (`nfkit summarize --format json -o HOST.json`, run by cron on
every host) into one report, for fleets that ship summaries instead of logs. The merged
summary is exactly the summary of all the hosts' lines read together: packets by origin,
sources, scans and sweeps across hosts, what the upstreams let through, recommendations.

Before it, the fleet view: every host with its segment, packets and findings (be_liberal,
pmtud_blackhole, ...); peers attacking several hosts of one segment (by MAC: the upstream
firewall cannot stop them); sources seen across segments; ranked, most widespread first.

Each file is one host, named after the file (web1.json -> web1). A host's segment is its name
in the --fleet file; without one, hosts attributed with the same networks (or gateway MACs)
form a segment. Hosts missing from the fleet file are listed, never guessed.
"""

_EPILOG = """\
examples:
  nfkit merge /srv/summaries/*.json
  nfkit merge --fleet fleet.toml --format html -o /var/www/fleet.html /srv/summaries/*.json
  nfkit merge --format json -o dc1.json dc1/*.json

JSON output: the merged summary (the same contract as `nfkit summarize --format json`) plus a
"fleet" object: hosts, unmapped_hosts, peers_across_hosts, sources_across_segments. It can be
merged again, as one host.

exit codes: 0 success, 2 error (unreadable file, invalid JSON, not an nfkit summary, summaries
made with different detection settings, bad fleet file).
"""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``merge`` command."""
    parser = subparsers.add_parser(
        "merge",
        help="merge per-host JSON summaries into one fleet report (cross-host correlation)",
        description=_DESCRIPTION,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "summaries",
        nargs="+",
        metavar="SUMMARY.json",
        help="JSON summary of one host (nfkit summarize --format json)",
    )
    parser.add_argument(
        "-o", "--output", metavar="FILE", help="write the report to FILE (atomically)"
    )
    parser.add_argument(
        "--format", choices=FORMATS, default="text", help="output format (default: text)"
    )
    parser.add_argument(
        "--fleet",
        metavar="TOML",
        help='fleet file naming each host\'s segment ([hosts] NAME = "SEGMENT"; see docs/fleet.md)',
    )
    parser.add_argument("--title", help="report title (default: nfkit fleet summary, N hosts)")
    parser.set_defaults(func=run)


def read_summary(path: str) -> Summary:
    """Read one JSON summary; raise ``ConfigError`` as ``PATH: error: ...``."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        raise ConfigError(f"{path}: error: cannot read: {reason}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"{path}: error: invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}"
        ) from None
    except RecursionError:
        raise ConfigError(f"{path}: error: invalid JSON: nested too deeply") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: error: not an nfkit summary (expected a JSON object)")
    try:
        return Summary.from_dict(data)
    except (ValueError, ConfigError, RecursionError) as exc:
        why = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
        raise ConfigError(f"{path}: error: not an nfkit summary: {why}") from None


def host_names(paths: list[str]) -> list[str]:
    """Host names from file names (``web1.json`` -> ``web1``); the path when names clash."""
    names = [Path(p).name.removesuffix(".json") or p for p in paths]
    return [p if names.count(name) > 1 else name for name, p in zip(names, paths, strict=True)]


def build_fleet_summary(paths: list[str], fleet: Fleet | None = None) -> FleetSummary:
    """Read the summaries into a :class:`FleetSummary` (one host per file)."""
    if len(set(paths)) != len(paths):
        raise ConfigError("a summary file is named twice: it would be counted twice")
    summaries = [read_summary(p) for p in paths]
    first = summaries[0]
    settings = first.config.with_segment(Segment())
    for path, summary in zip(paths[1:], summaries[1:], strict=True):
        if summary.config.with_segment(Segment()) != settings:
            raise ConfigError(
                f"{path}: error: made with other detection settings (tags, INVALID prefixes, "
                f"scan slots or levels) than {paths[0]}: cannot merge"
            )
    result = FleetSummary(settings)
    for name, summary in zip(host_names(paths), summaries, strict=True):
        result.hosts[name] = summary
        if fleet is None:
            result.segments[name] = segment_label(summary.config.segment)
        else:
            known = fleet.host(name)
            result.segments[name] = None if known is None else known.segment_name
    return result


def run(args: argparse.Namespace) -> int:
    """Merge the summaries and write the report."""
    from nfkit.cli.summarize import emit

    fleet = load_fleet(args.fleet) if args.fleet else None
    fleet_summary = build_fleet_summary(list(args.summaries), fleet)
    emit(render_fleet(fleet_summary, args.format, title=args.title), args.output)
    return 0
