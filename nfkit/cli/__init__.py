"""The ``nfkit`` command line: one sub-module per command, errors turned into exit codes here.

Exit codes shared by every command:

* ``0`` success (for ``doctor``: healthy);
* ``1`` findings to act on (``doctor``), otherwise unused;
* ``2`` an error: bad input, usage error, a failed check or apply (nothing was changed);
* ``130`` interrupted.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from typing import Protocol

from nfkit import __version__
from nfkit.errors import NfkitError

EXIT_OK = 0
EXIT_FINDINGS = 1
EXIT_ERROR = 2
EXIT_INTERRUPTED = 130

#: Command modules under ``nfkit.cli``; each defines ``register(subparsers)``.
_COMMANDS: tuple[str, ...] = (
    "compile",
    "parse",
    "summarize",
    "report",
    "merge",
    "apply",
    "doctor",
    "install-service",
)


class _CommandModule(Protocol):
    def register(self, subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
        """Add the command's parser; set ``func`` to a callable taking the namespace."""


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """Return the top-level argument parser with every command registered.

    With ``command`` (one of the command names), only that command is registered: the other
    commands' modules, and what they import, are not loaded. ``main`` does this when the first
    argument names a command, so that ``nfkit summarize`` does not pay for the policy compiler.
    """
    parser = argparse.ArgumentParser(
        prog="nfkit",
        description=(
            "Netfilter toolkit: summarise firewall logs, compile policies to nftables and "
            "iptables scripts that keep Path MTU discovery working, apply and check them."
        ),
        epilog="Exit codes: 0 success, 1 findings (doctor), 2 error, 130 interrupted.",
    )
    parser.add_argument("--version", action="version", version=f"nfkit {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    for name in _COMMANDS if command is None else (command,):
        module: _CommandModule = importlib.import_module(f"nfkit.cli.{name.replace('-', '_')}")
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run nfkit with ``argv`` (default: ``sys.argv[1:]``) and return the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    # `nfkit CMD ...`: every argument after CMD belongs to CMD's parser, so the other commands
    # need not be registered. Anything else (`nfkit --help`, a typo) gets the whole parser.
    parser = build_parser(argv[0] if argv and argv[0] in _COMMANDS else None)
    args = parser.parse_args(argv)
    try:
        code: int = args.func(args)
    except NfkitError as exc:
        message = str(exc)
        if ": error: " not in message.split("\n", 1)[0]:
            message = f"nfkit {args.command}: error: {message}"
        print(message, file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("nfkit: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader (``| head``) went away: not an error worth a traceback.
        sys.stderr.close()
        return EXIT_OK
    return code
