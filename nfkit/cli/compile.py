"""``nfkit compile``: turn a policy into a loader script or a ruleset."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from nfkit.backends import BACKENDS
from nfkit.compiler import compile_policy
from nfkit.errors import ConfigError

_DESCRIPTION = """\
Compile a policy (see docs/language.md) for nftables or iptables.

--emit script (default) writes a POSIX sh script that checks the ruleset first (nft -c /
iptables-restore --test), loads it atomically replacing only nfkit's own table or chains, then
sets net.netfilter.nf_conntrack_tcp_be_liberal (waiting for it to appear) and the policy's other
sysctls. Its exit codes: 0 done, 1 rejected by the check (nothing changed), 2 load failed
(nothing changed), 3 loaded but a sysctl could not be set.

--emit ruleset writes the pure text: an `nft -f` file, or for iptables the IPv4 and IPv6
`iptables-restore --noflush` files (and `ipset restore` input) as sections on stdout, or as
FILE.ipv4, FILE.ipv6, FILE.ipset and FILE.ipset-commit with -o FILE.
"""

_EPILOG = """\
examples:
  nfkit compile rules/web-server.nfk -o /usr/local/sbin/firewall.sh
  nfkit compile rules/router-nat.nfk --backend iptables --emit ruleset -o /etc/nfkit/rules
  nfkit compile policy.nfk --emit ruleset | nft -c -f -

Bad input is reported as path:line:col: error: message, with the line and a caret (exit 2).
"""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``compile`` command."""
    parser = subparsers.add_parser(
        "compile",
        help="compile a policy to an nftables or iptables script or ruleset",
        description=_DESCRIPTION,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("policy", metavar="POLICY", help="policy file (.nfk), or - for stdin")
    parser.add_argument(
        "--backend", "-b", choices=BACKENDS, default="nftables",
        help="netfilter front end to compile for (default: nftables)",
    )
    parser.add_argument(
        "--emit", "-e", choices=("script", "ruleset"), default="script",
        help="a loader script (default) or the pure ruleset text",
    )
    parser.add_argument(
        "-o", "--output", metavar="FILE",
        help="write to FILE instead of stdout (a script is made executable)",
    )
    parser.add_argument(
        "--templates", metavar="DIR",
        help="look for templates in DIR first (a copy of nfkit's templates/ to customise)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Compile, print warnings to stderr, write the output."""
    if args.policy == "-":
        source: str | Path = _read_stdin()
        path = "<stdin>"
    else:
        source = _read_policy(args.policy)
        path = args.policy
    result = compile_policy(source, args.backend, args.emit, path=path,
                            template_dir=args.templates)
    for warning in result.warnings:
        print(warning, file=sys.stderr)
    if args.output is None:
        sys.stdout.write(result.text)
        return 0
    output = Path(args.output)
    try:
        if args.backend == "iptables" and args.emit == "ruleset":
            for part, text in result.rulesets.items():
                output.with_name(f"{output.name}.{part}").write_text(text, encoding="utf-8")
        else:
            output.write_text(result.text, encoding="utf-8")
            if args.emit == "script":
                output.chmod(0o755)
    except OSError as exc:
        raise ConfigError(f"cannot write {args.output}: {exc.strerror or exc}") from None
    return 0


def _read_stdin() -> str:
    """The policy on standard input, decoded as strictly as a policy file (UTF-8).

    Raise :class:`~nfkit.errors.ConfigError` when standard input is closed or is not UTF-8 text.
    Line endings are translated as for a file (``\\r\\n`` and ``\\r`` become ``\\n``).
    """
    stdin = sys.stdin
    if stdin is None:  # started with standard input closed (``<&-``)
        raise ConfigError("<stdin>: cannot read policy: standard input is closed")
    try:
        buffer = getattr(stdin, "buffer", None)
        if buffer is None:  # a text stream put in place by a caller: already decoded
            data: str = stdin.read()
        else:
            data = buffer.read().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"<stdin>: not a policy: not UTF-8 text ({exc.reason})") from None
    except (OSError, ValueError) as exc:  # ValueError: the stream was closed
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        raise ConfigError(f"<stdin>: cannot read policy: {reason}") from None
    return data.replace("\r\n", "\n").replace("\r", "\n")


def _read_policy(name: str) -> str:
    policy_path = Path(name)
    if policy_path.is_dir():
        raise ConfigError(f"{name}: is a directory, not a policy file")
    if not policy_path.exists():
        raise ConfigError(f"no such policy file: {name}")
    try:
        return policy_path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"cannot read {name}: {exc}") from None
    except OSError as exc:
        raise ConfigError(f"cannot read {name}: {exc.strerror or exc}") from None
