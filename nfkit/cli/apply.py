"""``nfkit apply``: compile, check, back up, load atomically, set sysctls, verify."""

from __future__ import annotations

import argparse
import select
import sys
import time
from pathlib import Path

from nfkit.apply import BACKENDS, ApplyResult, apply_policy
from nfkit.errors import ApplyError, ConfigError
from nfkit.netns import Netns
from nfkit.rollback import confirm, rollback, run_watchdog


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not 1 <= value <= 86400:
        raise argparse.ArgumentTypeError("--try takes 1 to 86400 seconds")
    return value


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``apply`` command."""
    parser = subparsers.add_parser(
        "apply",
        help="load a policy into the kernel safely (check, backup, atomic load, sysctls)",
        description=(
            "Compile POLICY, check it with the kernel's own tools, back up nfkit's current "
            "table, load the new one atomically, then set the sysctls (be_liberal) in the same "
            "network namespace and read everything back. Other tools' tables are left alone. "
            "On any failure the previous ruleset stays and the error says what failed."
        ),
        epilog=(
            "With --try SECONDS the previous ruleset and sysctls come back by themselves unless "
            "you confirm in time: type yes at the prompt, or run `nfkit apply --confirm` "
            "(with the same --netns) from another session. Exit codes: 0 applied (or "
            "confirmed), 2 error or not confirmed (the previous ruleset is in place)."
        ),
    )
    parser.add_argument("policy", nargs="?", metavar="POLICY",
                        help="policy file to compile and load")
    parser.add_argument("--backend", choices=BACKENDS, default="nftables",
                        help="rule backend (default: %(default)s)")
    parser.add_argument("--netns", metavar="NAME", help="apply inside network namespace NAME")
    parser.add_argument(
        "--try", dest="try_seconds", type=_seconds, metavar="SECONDS",
        help="roll back by itself unless confirmed within SECONDS (1 to 86400)",
    )
    parser.add_argument(
        "--no-prompt", action="store_true",
        help="with --try: do not ask on the terminal; confirm later with --confirm",
    )
    parser.add_argument("--dry-run", action="store_true",
                        help="compile and check against the kernel, change nothing")
    parser.add_argument("--confirm", action="store_true", help="keep a pending --try ruleset")
    parser.add_argument("--rollback", action="store_true", help="undo a pending --try now")
    parser.add_argument("--state-dir", type=Path, metavar="DIR",
                        help="backups and --try state (default $NFKIT_STATE_DIR or "
                        "/var/lib/nfkit)")
    parser.add_argument("--watchdog", metavar="PENDING", help=argparse.SUPPRESS)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Carry out ``nfkit apply``."""
    if args.watchdog:
        return _watchdog(Path(args.watchdog))
    netns = Netns(args.netns)
    actions = sum(bool(x) for x in (args.policy, args.confirm, args.rollback))
    if actions != 1:
        raise ConfigError("give exactly one of POLICY, --confirm or --rollback")
    if args.confirm:
        backup = confirm(netns, args.state_dir)
        print(f"confirmed: the new ruleset stays in {netns} (previous one kept in {backup})")
        return 0
    if args.rollback:
        backup = rollback(netns, args.state_dir)
        print(f"rolled back: {backup} restored in {netns}")
        return 0
    result = apply_policy(
        args.policy, backend=args.backend, netns=netns, state_dir=args.state_dir,
        try_seconds=args.try_seconds, dry_run=args.dry_run,
    )
    _report(result)
    if result.pending is None:
        return 0
    if args.no_prompt or not sys.stdin.isatty():
        netns_flag = f" --netns {args.netns}" if args.netns else ""
        print(f"confirm within {args.try_seconds:g} s with: nfkit apply --confirm{netns_flag}")
        return 0
    return _ask(result, netns, args.state_dir)


def _watchdog(pending: Path) -> int:
    """The detached watchdog's main: its output goes to the watchdog log."""
    outcome = run_watchdog(pending)
    if outcome is None:
        return 0
    backup, problems = outcome
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S")
    done = "could not restore" if problems else "restored"
    print(f"{stamp} not confirmed in time: {done} {backup}", flush=True)
    for problem in problems:
        print(f"{stamp} problem: {problem}", flush=True)
    return 1 if problems else 0


def _report(result: ApplyResult) -> None:
    for warning in result.warnings:
        print(warning, file=sys.stderr)
    if result.dry_run:
        print(result.transaction, end="" if result.transaction.endswith("\n") else "\n")
    for step in result.steps:
        print(step)


def _ask(result: ApplyResult, netns: Netns, state_dir: Path | None) -> int:
    deadline = result.deadline or time.time()
    print("Keep the new ruleset? Type yes and Enter: ", end="", flush=True)
    remaining = deadline - time.time()
    ready, _, _ = select.select([sys.stdin], [], [], max(0.0, remaining))
    answer = sys.stdin.readline().strip().lower() if ready else ""
    if answer == "yes":
        confirm(netns, state_dir)
        print("confirmed: the new ruleset stays")
        return 0
    print()
    try:
        backup = rollback(netns, state_dir)
    except ApplyError:
        # The watchdog got there first; the result is the same.
        raise ApplyError("not confirmed: the previous ruleset and sysctls were restored") from None
    raise ApplyError(f"not confirmed: the previous ruleset and sysctls were restored ({backup})")
