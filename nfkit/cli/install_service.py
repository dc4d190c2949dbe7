"""``nfkit install-service``: a systemd unit that loads the rules at boot, then sets be_liberal.

The unit runs before ``network-pre.target`` (no packet passes unfiltered), after
``systemd-sysctl.service`` (so a sysctl.conf line cannot undo it), and runs ``nfkit apply``,
which sets ``nf_conntrack_tcp_be_liberal`` only *after* the rules are loaded: on a kernel with
conntrack as a module the sysctl does not exist until a rule using conntrack is loaded, which is
why a plain sysctl.conf line for it fails at boot.
"""

from __future__ import annotations

import argparse
import shlex
import shutil
import sys
from pathlib import Path

from nfkit.apply import BACKENDS
from nfkit.doctor import UNIT_NAME
from nfkit.errors import ConfigError

DEFAULT_POLICY = "/etc/nfkit/policy.nfk"
DEFAULT_NFKIT = "/usr/local/bin/nfkit"
WANTED_BY = "sysinit.target"

_UNIT = """\
# {unit}: load the nfkit firewall policy before the network comes up, then set
# net.netfilter.nf_conntrack_tcp_be_liberal. `nfkit apply` sets the sysctl only after the rules
# are loaded: with conntrack as a module the sysctl exists only once a rule uses conntrack, so a
# plain sysctl.conf line for it fails at boot. Written by `nfkit install-service`.
[Unit]
Description=nfkit firewall: load the rules, then set conntrack sysctls
Documentation=file:///usr/share/doc/nfkit/operations.md
DefaultDependencies=no
Wants=network-pre.target
Before=network-pre.target shutdown.target
After=local-fs.target systemd-modules-load.service systemd-sysctl.service
Conflicts=shutdown.target

[Service]
Type=oneshot
RemainAfterExit=yes
StandardInput=null
Environment=NFKIT_STATE_DIR=/var/lib/nfkit
ExecStart={command}
ExecReload={command}

[Install]
WantedBy={wanted_by}
"""


def render_unit(
    policy: str = DEFAULT_POLICY, backend: str = "nftables", nfkit: str = DEFAULT_NFKIT
) -> str:
    """Return the text of the systemd unit; raise ``ConfigError`` for a path it cannot hold."""
    for option, value in (("--nfkit", nfkit), ("--policy", policy)):
        _check_unit_path(option, value)
    command = shlex.join([nfkit, "apply", "--backend", backend, policy])
    return _UNIT.format(unit=UNIT_NAME, command=command, wanted_by=WANTED_BY)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``install-service`` command."""
    parser = subparsers.add_parser(
        "install-service",
        help="write the systemd unit that loads the rules at boot, then sets be_liberal",
        description=(
            f"Write {UNIT_NAME} into DIR/etc/systemd/system and enable it (a symlink in "
            f"{WANTED_BY}.wants). The unit loads POLICY with `nfkit apply` before "
            "network-pre.target; be_liberal is set after the load."
        ),
        epilog=(
            "POLICY and PATH must be absolute and free of what systemd would expand or split "
            "(newlines, %, $, quotes, backslashes). Exit codes: 0 written (or printed), 2 error."
        ),
    )
    parser.add_argument("--policy", default=DEFAULT_POLICY,
                        help="policy file the unit loads (default: %(default)s)")
    parser.add_argument("--backend", choices=BACKENDS, default="nftables",
                        help="rule backend (default: %(default)s)")
    parser.add_argument("--nfkit", metavar="PATH",
                        help="nfkit executable for the unit (default: the one on PATH)")
    parser.add_argument("--root", type=Path, default=Path("/"), metavar="DIR",
                        help="install below DIR instead of / (for images and tests)")
    parser.add_argument("--print", dest="print_only", action="store_true",
                        help="print the unit instead of installing it")
    parser.add_argument("--no-enable", action="store_true", help="write but do not enable")
    parser.set_defaults(func=run)


def _check_unit_path(option: str, value: str) -> None:
    """Refuse what systemd would read differently from the shell quoting ``shlex`` produces.

    A newline would end ``ExecStart=`` and start a directive of the path's choosing; systemd
    expands ``%`` specifiers and ``$`` variables and un-escapes ``\\`` even inside quotes.
    """
    if not Path(value).is_absolute():
        raise ConfigError(f"{option} must be an absolute path (the unit runs from /): {value!r}")
    bad = sorted({c for c in value if ord(c) < 32 or ord(c) == 127 or c in "%$\\'\""})
    if bad:
        shown = ", ".join(repr(c) for c in bad)
        raise ConfigError(f"{option} {value!r}: a systemd unit cannot hold {shown} in a path")


def run(args: argparse.Namespace) -> int:
    """Carry out ``nfkit install-service``."""
    nfkit = args.nfkit or shutil.which("nfkit") or DEFAULT_NFKIT
    text = render_unit(args.policy, args.backend, nfkit)
    if args.print_only:
        sys.stdout.write(text)
        return 0
    unit_dir = args.root / "etc/systemd/system"
    unit_path = unit_dir / UNIT_NAME
    try:
        unit_dir.mkdir(parents=True, exist_ok=True)
        tmp = unit_path.with_name(f".{UNIT_NAME}.tmp")
        tmp.write_text(text)
        tmp.replace(unit_path)
        print(f"wrote {unit_path}")
        if not args.no_enable:
            wants = unit_dir / f"{WANTED_BY}.wants"
            wants.mkdir(exist_ok=True)
            link = wants / UNIT_NAME
            if link.is_symlink() or link.exists():
                link.unlink()
            link.symlink_to(f"../{UNIT_NAME}")
            print(f"enabled: {link} -> ../{UNIT_NAME}")
    except OSError as exc:
        raise ConfigError(f"cannot install the unit under {args.root}: {exc}") from exc
    if not (args.root / args.policy.lstrip("/")).exists():
        print(f"note: {args.policy} does not exist yet; the unit fails at boot until it does")
    if args.root == Path("/"):
        print("run `systemctl daemon-reload` to make systemd see it")
    return 0
