"""``nfkit doctor``: check a live system and explain each finding with its fix."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from nfkit.doctor import DEFAULT_TABLE, run_doctor
from nfkit.errors import ConfigError, DiscoveryError
from nfkit.logprefix import DEFAULT_TAG
from nfkit.netns import Netns

EXIT_HEALTHY = 0
EXIT_FINDINGS = 1
EXIT_CANNOT_CHECK = 2


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``doctor`` command."""
    parser = subparsers.add_parser(
        "doctor",
        help="check sysctls, the loaded ruleset and the segment; explain each finding",
        description=(
            "Read-only checks of a live system or network namespace: be_liberal and "
            "tcp_window_scaling (and whether be_liberal survives a reboot); whether the loaded "
            "ruleset drops ICMP fragmentation-needed or ICMPv6 packet-too-big (Path MTU "
            "discovery), or drops INVALID before accepting them; LOG rules and their prefixes; "
            "other tables hooking where nfkit does; the segment used for attribution."
        ),
        epilog="Exit codes: 0 healthy, 1 findings, 2 could not check.",
    )
    parser.add_argument("--netns", metavar="NAME", help="check inside network namespace NAME")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument(
        "--table", default=" ".join(DEFAULT_TABLE), metavar="'FAMILY NAME'",
        help="the table nfkit owns (default: %(default)s)",
    )
    parser.add_argument(
        "--log-tag", action="append", default=[], metavar="TAG",
        help=f"log-prefix tag nfkit rules use (default: {DEFAULT_TAG}; repeatable)",
    )
    parser.add_argument("--root", type=Path, default=Path("/"), metavar="DIR",
                        help="where to look for sysctl.conf and the boot unit (default: /)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Carry out ``nfkit doctor``."""
    family, _, name = args.table.partition(" ")
    if not name:
        raise ConfigError(f"--table wants 'FAMILY NAME', e.g. 'inet nfkit', not {args.table!r}")
    tags = frozenset(args.log_tag or [DEFAULT_TAG])
    try:
        report = run_doctor(
            Netns(args.netns), nfkit_table=(family, name), log_tags=tags, root=args.root
        )
    except DiscoveryError as exc:
        message = f"nfkit doctor: could not check: {exc}"
        if args.json:
            print(json.dumps({"netns": args.netns, "error": str(exc)}, indent=2))
        else:
            print(message, file=sys.stderr)
        return EXIT_CANNOT_CHECK
    if args.json:
        print(json.dumps(report.to_json(), indent=2))
    else:
        print(report.to_text())
    return EXIT_HEALTHY if report.healthy else EXIT_FINDINGS
