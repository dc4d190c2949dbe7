"""``nfkit parse``: print the packet records read from netfilter LOG lines."""

from __future__ import annotations

import argparse
import json
import re
import sys
from typing import TextIO

from nfkit.errors import ConfigError, LogReadError
from nfkit.logs.parser import RecordStream, iter_records
from nfkit.logs.record import IPAddress, LogRecord

_DESCRIPTION = """\
Read netfilter LOG lines (kern.log, syslog, dmesg, dmesg -T, journalctl -k or -o json, ulogd
LOGEMU; plain or .gz) and print one line per packet. Lines that are not packet logs are
counted, and the count is reported on stderr; with --strict the first one is an error.
"""

_EPILOG = """\
examples:
  nfkit parse /var/log/kern.log
  journalctl -k -o json | nfkit parse --json -
  nfkit parse --strict /var/log/iptables.log.2.gz

exit codes: 0 success, 2 unreadable file or (with --strict) a line that is not a packet log.
"""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``parse`` command."""
    parser = subparsers.add_parser(
        "parse",
        help="print the packets in netfilter LOG lines",
        description=_DESCRIPTION,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "files",
        nargs="+",
        metavar="FILE",
        help="log file to read (plain or .gz); '-' reads standard input",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help="print one JSON object per record (the LogRecord fields; addresses as strings, "
        "the packet quoted by an ICMP error nested under 'inner') instead of a summary line",
    )
    parser.add_argument(
        "--strict",
        action="store_true",
        help="stop with an error (FILE:LINE: error: ...) at the first line that is not a "
        "readable packet log, instead of counting it",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Parse every file named in ``args`` and print its records to stdout."""
    out = sys.stdout
    for name in args.files:
        if name == "-":
            if sys.stdin is None:  # started with standard input closed (``<&-``)
                raise LogReadError("<stdin>: cannot read log: standard input is closed")
            # bytes, so that invalid UTF-8 is replaced instead of raising
            stdin = getattr(sys.stdin, "buffer", sys.stdin)
            stream = iter_records(stdin, strict=args.strict, name="<stdin>")
        else:
            stream = iter_records(name, strict=args.strict)
        try:
            _print_records(stream, out, as_json=args.json)
        except (OSError, EOFError) as exc:  # missing file, corrupt .gz (stdout errors too)
            if isinstance(exc, BrokenPipeError):
                raise
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
            raise ConfigError(f"cannot read {name}: {reason}") from None
        if stream.unparsed:
            print(
                f"nfkit parse: {stream.name or name}: {stream.unparsed} of {stream.lines} lines "
                f"gave no record ({stream.skipped} not packet logs, "
                f"{stream.malformed} unreadable)",
                file=sys.stderr,
            )
    return 0


def _print_records(stream: RecordStream, out: TextIO, *, as_json: bool) -> None:
    write = out.write
    if as_json:
        dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
        for record in stream:
            write(dumps(record.to_dict()) + "\n")
    else:
        for record in stream:
            write(summarize(record) + "\n")


def _endpoint(address: IPAddress | None, port: int | None) -> str:
    if address is None:
        return "?"
    text = str(address)
    if port is None:
        return text
    return f"[{text}]:{port}" if address.version == 6 else f"{text}:{port}"


def _packet(record: LogRecord) -> str:
    """The network and transport part of a summary: ``TCP 1.2.3.4:5 -> 6.7.8.9:22 SYN``."""
    proto = record.proto or ("IPv6" if record.family == 6 else "IP" if record.family else "?")
    parts = [proto, _endpoint(record.src, record.spt), "->", _endpoint(record.dst, record.dpt)]
    if record.tcp_flags:
        parts.append(",".join(sorted(record.tcp_flags)))
    if record.icmp_type is not None:
        parts.append(f"type={record.icmp_type}/{record.icmp_code}")
    if record.mtu is not None:
        parts.append(f"mtu={record.mtu}")
    if record.length is not None:
        parts.append(f"len={record.length}")
    if (record.ip_flags and "MF" in record.ip_flags) or record.frag_offset:
        parts.append(f"frag@{record.frag_offset or 0}")
    if record.inner is not None:
        parts.append(f"[{_packet(record.inner)}]")
    if record.truncated:
        parts.append("(truncated)")
    return " ".join(parts)


#: Control characters (C0 including newline and tab, DEL, C1): a log line's prefix, host or
#: interface name can carry ESC sequences, BEL or CR, chosen by whoever can write to the log.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def _printable(text: str) -> str:
    """Return ``text`` with control characters shown as ``\\x1b`` (safe on a terminal)."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def summarize(record: LogRecord) -> str:
    """Return a readable one-line summary of ``record``; control characters are escaped."""
    parts: list[str] = []
    if record.timestamp is not None:
        parts.append(record.timestamp.isoformat(sep=" "))
    elif record.uptime is not None:
        parts.append(f"[{record.uptime:.6f}]")
    if record.host:
        parts.append(record.host)
    if record.prefix:
        parts.append(json.dumps(record.prefix) if " " in record.prefix else record.prefix)
    parts.append(f"{record.in_iface or '-'}>{record.out_iface or '-'}")
    parts.append(_packet(record))
    return _printable(" ".join(parts))
