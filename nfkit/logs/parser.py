"""Netfilter LOG lines to :class:`~nfkit.logs.record.LogRecord`.

The kernel's formatter (``net/netfilter/nf_log_syslog.c``) writes ``PREFIXIN=.. OUT=.. `` and
then one field after another, each followed by a space. Two readers share the work:

* a compiled regular expression for the common shapes (IPv4/IPv6 TCP, UDP, ICMP without a
  quoted packet), which does one match per line and converts the groups in place;
* a token reader for everything else: ICMP errors with the offending packet in ``[...]`` (read
  into ``inner`` without touching the outer fields), fragments, ``INCOMPLETE [N bytes]``, IPv6
  extension headers in ``OPT ( ... )``, bridge ``PHYSIN``, ``MACSRC``/``MACDST``, ARP, AH/ESP,
  lines cut at the kernel's ~1 KiB limit, ulogd's variations.

Both give equal records for the lines the fast one accepts (tests check that).
"""

from __future__ import annotations

import gzip
import io
import ipaddress
import os
import re
from collections.abc import Iterable, Iterator
from datetime import datetime
from pathlib import Path
from typing import IO

from nfkit.errors import LogFormatError
from nfkit.logs.record import IPAddress, LogRecord
from nfkit.logs.wrappers import Unwrapper

__all__ = [
    "KERNEL_LINE_MAX",
    "TRUNCATION_LENGTH", "RecordStream", "iter_records", "parse_line", "parse_message"]

#: A kernel message (prefix included) at least this long may have been cut by the kernel: it is
#: marked truncated when it does not end in a space, or ends inside ``OPT (``/``[...]``, or
#: lacks the protocol. nf_log's buffer is 1 KiB (1016 visible characters measured on 6.18);
#: older kernels' printk cut lines near 992.
TRUNCATION_LENGTH = 980
#: nf_log's buffer holds at most this many visible characters: a message this long was cut.
KERNEL_LINE_MAX = 1016

_CACHE_LIMIT = 1 << 16


class _MalformedError(ValueError):
    """A line with the netfilter header whose fields cannot be read."""


# -- small caches: sources, MAC headers, flag sets and prefixes repeat a lot --------------------
_ADDRESSES: dict[str, IPAddress] = {}


def _address(text: str) -> IPAddress:
    try:
        return _ADDRESSES[text]
    except KeyError:
        pass
    if len(_ADDRESSES) >= _CACHE_LIMIT:
        _ADDRESSES.clear()
    try:
        value = ipaddress.ip_address(text)
    except ValueError:
        raise _MalformedError(f"bad address {text!r}") from None
    _ADDRESSES[text] = value
    return value


_MACS: dict[str, tuple[str | None, str | None, int | None]] = {"": (None, None, None)}


def _mac_header(text: str) -> tuple[str | None, str | None, int | None]:
    """Split a raw ``MAC=`` link header into destination, source and ethertype."""
    try:
        return _MACS[text]
    except KeyError:
        pass
    if len(_MACS) >= _CACHE_LIMIT:
        _MACS.clear()
        _MACS[""] = (None, None, None)
    octets = text.split(":")
    value: tuple[str | None, str | None, int | None]
    if len(octets) >= 14 and all(len(o) == 2 for o in octets):
        ethertype = int(octets[12] + octets[13], 16)
        if ethertype in (0x8100, 0x88A8) and len(octets) >= 18:  # 802.1Q / 802.1ad tag
            ethertype = int(octets[16] + octets[17], 16)
        value = (":".join(octets[0:6]), ":".join(octets[6:12]), ethertype)
    else:  # tun/ppp (empty), or a device whose link header is not Ethernet
        value = (None, None, None)
    _MACS[text] = value
    return value


_FLAG_SETS: dict[str, frozenset[str]] = {}


def _flag_set(text: str) -> frozenset[str]:
    """Return the frozenset of space-separated flags in ``text`` (cached)."""
    try:
        return _FLAG_SETS[text]
    except KeyError:
        value = frozenset(text.split())
        if len(_FLAG_SETS) < _CACHE_LIMIT:
            _FLAG_SETS[text] = value
        return value


_PREFIXES: dict[str, str | None] = {}


def _clean_prefix(text: str) -> str | None:
    """The prefix as logged, trailing blanks removed; literal enclosing quotes dropped."""
    try:
        return _PREFIXES[text]
    except KeyError:
        pass
    value = text.rstrip()
    if len(value) >= 2 and value[0] == '"' and value[-1] == '"':
        value = value[1:-1].rstrip()  # firewalld and some nft front-ends log the quotes
    if len(_PREFIXES) >= _CACHE_LIMIT:
        _PREFIXES.clear()
    result = value or None
    _PREFIXES[text] = result
    return result


def _mark(text: str) -> int:
    return int(text, 16) if text[:2] in ("0x", "0X") else int(text)


# -- the fast path -------------------------------------------------------------------------------
# One pattern for the common lines; anything it does not match in full goes to the token reader.
_FAST = re.compile(
    r"(?P<prefix>.*?)IN=(?P<iin>\S*) OUT=(?P<out>\S*) (?:MAC=(?P<mac>[0-9a-f:]*) )?"
    r"SRC=(?P<src>[0-9a-fA-F.:]+) DST=(?P<dst>[0-9a-fA-F.:]+) LEN=(?P<len>\d+) "
    r"(?:TOS=0x(?P<tos>[0-9A-F]{2}) PREC=0x(?P<prec>[0-9A-F]{2}) TTL=(?P<ttl>\d+) "
    r"ID=(?P<id>\d+) (?P<ipflags>(?:CE |DF |MF )*)"
    r"|TC=(?P<tc>\d+) HOPLIMIT=(?P<hop>\d+) FLOWLBL=(?P<flow>\d+) )"
    r"PROTO=(?:(?P<tcp>TCP) SPT=(?P<tspt>\d+) DPT=(?P<tdpt>\d+) "
    r"(?:SEQ=(?P<seq>\d+) ACK=(?P<ack>\d+) )?WINDOW=(?P<win>\d+) RES=0x[0-9a-f]{2} "
    r"(?P<tflags>(?:(?:CWR|ECE|URG|ACK|PSH|RST|SYN|FIN|AE) )*)URGP=\d+ (?:OPT \([0-9A-F]*\) )?"
    r"|(?P<udp>UDP|UDPLITE) SPT=(?P<uspt>\d+) DPT=(?P<udpt>\d+) LEN=\d+ "
    r"|(?P<icmp>ICMP|ICMPv6) TYPE=(?P<type>\d+) CODE=(?P<code>\d+) "
    r"(?:ID=(?P<iid>\d+) SEQ=(?P<iseq>\d+) )?)"
    r"(?:UID=(?P<uid>\d+) GID=(?P<gid>\d+) )?(?:MARK=0x(?P<mark>[0-9a-f]+) )?",
    re.DOTALL,
)
_EMPTY: frozenset[str] = frozenset()


def _fast_parse(
    raw: str,
    message: str,
    timestamp: datetime | None,
    host: str | None,
    uptime: float | None,
) -> LogRecord | None:
    """Read a common line with one regex match; None when the line needs the token reader."""
    if len(message) >= TRUNCATION_LENGTH:
        return None
    match = _FAST.fullmatch(message)
    if match is None:
        return None
    (
        prefix, iin, out, mac, src, dst, length, tos, prec, ttl, ip_id, ipflags, tc, hop, flow,
        tcp, tspt, tdpt, seq, ack, win, tflags, udp, uspt, udpt, icmp, itype, icode, iid, iseq,
        uid, gid, mark,
    ) = match.groups()  # fmt: skip
    if mac is not None:
        try:
            mac_dst, mac_src, ethertype = _MACS[mac]
        except KeyError:
            mac_dst, mac_src, ethertype = _mac_header(mac)
    else:
        mac_dst = mac_src = ethertype = None
    try:
        src_addr = _ADDRESSES[src]
    except KeyError:
        src_addr = _address(src)
    try:
        dst_addr = _ADDRESSES[dst]
    except KeyError:
        dst_addr = _address(dst)
    if tos is not None:
        if src_addr.version != 4:
            return None
        family = 4
        tos_value = int(tos, 16) | int(prec, 16)
        ttl_value = int(ttl)
        id_value: int | None = int(ip_id)
        flow_value = None
        flags = _FLAG_SETS.get(ipflags) or _flag_set(ipflags)
        if "MF" in flags:
            return None  # fragments go through the token reader
    else:
        if src_addr.version != 6:
            return None
        family = 6
        tos_value = int(tc)
        ttl_value = int(hop)
        id_value = None
        flow_value = int(flow)
        flags = _EMPTY
    if tcp is not None:
        return LogRecord(
            raw, timestamp, host, uptime,
            _PREFIXES[prefix] if prefix in _PREFIXES else _clean_prefix(prefix),
            iin or None, out or None, None, None, mac_dst, mac_src, ethertype,
            family, src_addr, dst_addr, int(length), ttl_value, tos_value, id_value, flow_value,
            flags, None, "TCP", int(tspt), int(tdpt),
            _FLAG_SETS.get(tflags) or _flag_set(tflags), int(win),
            int(seq) if seq is not None else None, int(ack) if ack is not None else None,
            None, None, None, None, None, None, None,
            int(uid) if uid is not None else None, int(gid) if gid is not None else None,
            int(mark, 16) if mark is not None else None, False,
        )  # fmt: skip
    if udp is not None:
        return LogRecord(
            raw, timestamp, host, uptime,
            _PREFIXES[prefix] if prefix in _PREFIXES else _clean_prefix(prefix),
            iin or None, out or None, None, None, mac_dst, mac_src, ethertype,
            family, src_addr, dst_addr, int(length), ttl_value, tos_value, id_value, flow_value,
            flags, None, udp, int(uspt), int(udpt),
            None, None, None, None, None, None, None, None, None, None, None,
            int(uid) if uid is not None else None, int(gid) if gid is not None else None,
            int(mark, 16) if mark is not None else None, False,
        )  # fmt: skip
    if (icmp == "ICMP") != (family == 4):
        return None
    icmp_type = int(itype)
    if iid is None and icmp_type in _ICMP_QUOTING[family]:
        return None  # an error without its quoted packet: let the token reader judge it
    return LogRecord(
        raw, timestamp, host, uptime,
        _PREFIXES[prefix] if prefix in _PREFIXES else _clean_prefix(prefix),
        iin or None, out or None, None, None, mac_dst, mac_src, ethertype,
        family, src_addr, dst_addr, int(length), ttl_value, tos_value, id_value, flow_value,
        flags, None, icmp, None, None, None, None, None, None,
        icmp_type, int(icode),
        int(iid) if iid is not None else None, int(iseq) if iseq is not None else None,
        None, None, None,
        int(uid) if uid is not None else None, int(gid) if gid is not None else None,
        int(mark, 16) if mark is not None else None, False,
    )  # fmt: skip


#: ICMP types whose log line quotes the offending packet (and may add MTU=), per family.
_ICMP_QUOTING: dict[int, frozenset[int]] = {
    4: frozenset({3, 4, 5, 11, 12}),
    6: frozenset({1, 2, 3, 4}),
}


# -- the token reader ----------------------------------------------------------------------------
_HEADER = re.compile(r"(?P<prefix>.*?)IN=(?P<iin>\S*) OUT=(?P<out>\S*)(?: |\Z)", re.DOTALL)
_TCP_FLAGS = frozenset({"CWR", "ECE", "URG", "ACK", "PSH", "RST", "SYN", "FIN", "AE"})
_IP_FLAGS = frozenset({"CE", "DF", "MF"})
_ARP_ETHERTYPE = 0x0806


class _Level:
    """What the token reader knows about one packet (outer, or the one quoted in ``[...]``)."""

    __slots__ = ("ip_flags", "paren_open", "proto_seen", "record", "tcp_flags")

    def __init__(self, record: LogRecord) -> None:
        self.record = record
        self.proto_seen = False
        self.paren_open = False
        self.ip_flags: set[str] | None = None
        self.tcp_flags: set[str] | None = None

    def finish(self) -> None:
        record = self.record
        if self.ip_flags is not None:
            record.ip_flags = frozenset(self.ip_flags)
        elif record.family is not None:
            record.ip_flags = _EMPTY
        if self.tcp_flags is not None:
            record.tcp_flags = frozenset(self.tcp_flags)


def _int(text: str) -> int:
    if not text.isdigit():
        raise _MalformedError(f"not a number: {text!r}")
    return int(text)


def _hex(text: str) -> int:
    try:
        return int(text, 16)
    except ValueError:
        raise _MalformedError(f"not a hex number: {text!r}") from None


def _blank_record(raw: str) -> LogRecord:
    return LogRecord(raw, *_NONES, False)


_NONES = (None,) * 38


def _read_tokens(tokens: list[str], pos: int, level: _Level, nested: bool) -> int:
    """Read tokens into ``level`` from ``pos``; return the position after the packet.

    A nested packet (``nested``) ends at ``]``; -1 means the line ended before it did.
    """
    record = level.record
    count = len(tokens)
    while pos < count:
        token = tokens[pos]
        pos += 1
        if not token:
            continue
        if token == "INCOMPLETE":
            following = tokens[pos] if pos < count else ""
            if following.startswith("[") and following[1:].isdigit():
                record.truncated = True  # "INCOMPLETE [N bytes]": the header was too short
                pos += 2 if pos + 1 < count and tokens[pos + 1].startswith("bytes]") else 1
            else:  # IPv6 fragment header: more fragments follow
                if level.ip_flags is None:
                    level.ip_flags = set()
                level.ip_flags.add("MF")
            continue
        first = token[0]
        if first == "[":
            if nested:  # the kernel quotes one packet only; a second "[" is not its output
                raise _MalformedError("nested packet inside a nested packet")
            inner_level = _Level(_blank_record(""))
            start = pos - 1
            tokens[start] = token[1:]
            pos = _read_tokens(tokens, start, inner_level, True)
            inner_level.finish()
            quoted = " ".join(tokens[start : pos if pos >= 0 else count]).rstrip()
            inner_level.record.raw = quoted[:-1].rstrip() if quoted.endswith("]") else quoted
            record.inner = inner_level.record
            if pos < 0:  # the closing bracket never came: the line was cut inside it
                record.truncated = True
                break
            continue
        if nested and token[-1] == "]":
            token = token[:-1]
            if token:
                _read_token(token, level)
            return pos
        if first == "(" or first == ")" or token == "OPT":
            # option bytes "(0102..)", or the brackets of IPv6 extension headers "( ... )"
            if first == "(":
                level.paren_open = token[-1] != ")"
            elif first == ")":
                level.paren_open = False
            continue
        _read_token(token, level)
    if nested:
        record.truncated = True  # the closing bracket never came: the line was cut
        return -1
    return pos


def _read_token(token: str, level: _Level) -> None:
    record = level.record
    key, sep, value = token.partition("=")
    if not sep:
        if token in _TCP_FLAGS and level.proto_seen:
            if level.tcp_flags is not None:
                level.tcp_flags.add(token)
        elif token in _IP_FLAGS:
            if level.ip_flags is None:
                level.ip_flags = set()
            level.ip_flags.add(token)
        elif token.startswith("FRAG:"):
            offset = _int(token[5:])
            # IPv4 logs the offset in 8-byte units, IPv6 in bytes: store bytes for both.
            record.frag_offset = offset * 8 if record.family == 4 else offset
        elif token.startswith("ID:"):
            record.ip_id = _hex(token[3:])
        elif token == "ARP":
            record.proto = "ARP"
            record.ethertype = _ARP_ETHERTYPE
            level.proto_seen = True
        elif token == "ESP" and record.proto is None:  # IPv6: ESP ends the header chain
            record.proto = "ESP"
            level.proto_seen = True
        elif token == "TRUNCATED":
            record.truncated = True
        return
    if key == "SRC":
        record.src = _address(value)
        record.family = 6 if ":" in value else 4
    elif key == "DST":
        record.dst = _address(value)
    elif key == "LEN":
        if not level.proto_seen:  # the second LEN= is UDP's
            record.length = _int(value)
    elif key == "PROTO":
        if value.isdigit() or value.isalnum():
            record.proto = value
        else:
            raise _MalformedError(f"bad protocol {value!r}")
        level.proto_seen = True
    elif key == "SPT":
        record.spt = _int(value)
    elif key == "DPT":
        record.dpt = _int(value)
    elif key == "ID":
        if level.proto_seen:
            record.icmp_id = _int(value)
        else:
            record.ip_id = _int(value)
    elif key == "SEQ":
        if record.proto == "TCP":
            record.seq = _int(value)
        else:
            record.icmp_seq = _int(value)
    elif key == "ACK":
        record.ack = _int(value)
    elif key == "TTL" or key == "HOPLIMIT":
        record.ttl = _int(value)
    elif key == "TOS" or key == "PREC":  # the kernel splits the TOS byte in two
        record.tos = (record.tos or 0) | _hex(value)
    elif key == "TC":
        record.tos = _int(value)
    elif key == "FLOWLBL":
        record.flowlabel = _int(value)
    elif key == "WINDOW":
        record.window = _int(value)
        if record.proto == "TCP":  # flags follow; a non-first fragment logs no TCP header
            level.tcp_flags = set()
    elif key == "TYPE":
        record.icmp_type = _int(value)
    elif key == "CODE":
        record.icmp_code = _int(value)
    elif key == "MTU":
        record.mtu = _int(value)
    elif key == "GATEWAY":
        record.gateway = _address(value)
    elif key == "MAC":
        record.mac_dst, record.mac_src, record.ethertype = _mac_header(value)
    elif key == "MACSRC":
        record.mac_src = value or None
    elif key == "MACDST":
        record.mac_dst = value or None
    elif key == "MACPROTO":
        record.ethertype = _hex(value)
    elif key == "PHYSIN":
        record.physin = value or None
    elif key == "PHYSOUT":
        record.physout = value or None
    elif key == "IPSRC":
        record.src = _address(value)
    elif key == "IPDST":
        record.dst = _address(value)
    elif key == "UID":
        record.uid = _int(value)
    elif key == "GID":
        record.gid = _int(value)
    elif key == "MARK":
        try:
            record.mark = _mark(value)
        except ValueError:
            raise _MalformedError(f"bad mark {value!r}") from None
    # Other keys (RES, URGP, PREC, SPI, PARAMETER, POINTER, VPROTO, VID, TUNNEL, HTYPE, PTYPE,
    # OPCODE) have no field in LogRecord.


def _slow_parse(
    raw: str,
    message: str,
    timestamp: datetime | None,
    host: str | None,
    uptime: float | None,
) -> LogRecord | None:
    header = _HEADER.match(message)
    if header is None:
        return None
    record = LogRecord(raw, timestamp, host, uptime, *_NONES[:35], False)
    record.prefix = _clean_prefix(header["prefix"])
    record.in_iface = header["iin"] or None
    record.out_iface = header["out"] or None
    body = message[header.end() :]
    tokens = body.split(" ")
    long_line = len(message) >= TRUNCATION_LENGTH
    if long_line and not message.endswith(" "):
        tokens.pop()  # the last field may be partial: keep only what is certainly whole
        record.truncated = True
    level = _Level(record)
    _read_tokens(tokens, 0, level, False)
    level.finish()
    if long_line and (
        len(message) >= KERNEL_LINE_MAX or level.paren_open or record.proto is None
    ):
        record.truncated = True
    if record.src is not None and record.family is None:
        record.family = 6 if record.src.version == 6 else 4
    if record.proto == "ARP":
        record.family = None
        record.ip_flags = None
    return record


def parse_message(
    message: str,
    raw: str | None = None,
    timestamp: datetime | None = None,
    host: str | None = None,
    uptime: float | None = None,
) -> LogRecord | None:
    """Parse a kernel message without wrapper; None when it is not a packet log.

    Raises ``ValueError`` when the line carries the netfilter header but a field is unreadable.
    """
    if raw is None:
        raw = message
    if "IN=" not in message:
        return None
    record = _fast_parse(raw, message if message.endswith(" ") else message + " ", timestamp,
                         host, uptime)  # fmt: skip
    if record is not None:
        return record
    return _slow_parse(raw, message, timestamp, host, uptime)


_UNWRAPPER = Unwrapper()


def _parse(line: str, unwrapper: Unwrapper) -> LogRecord | None:
    """Parse one raw line; ``_MalformedError`` for a packet line with unreadable fields."""
    raw = line.rstrip("\r\n")
    if "IN=" not in raw and raw[:1] != "{":  # journal JSON may carry MESSAGE as byte values
        return None
    timestamp, host, uptime, message = unwrapper.unwrap(raw)
    if "IN=" not in message:
        return None
    if message[-1:] == " ":
        record = _fast_parse(raw, message, timestamp, host, uptime)
    else:
        record = _fast_parse(raw, message + " ", timestamp, host, uptime)
    if record is not None:
        return record
    return _slow_parse(raw, message, timestamp, host, uptime)


def parse_line(line: str) -> LogRecord | None:
    """Parse one log line (any supported wrapper); None if it is not a readable packet log."""
    try:
        return _parse(line, _UNWRAPPER)
    except (ValueError, IndexError, KeyError):
        return None


Source = str | os.PathLike[str] | IO[str] | IO[bytes] | Iterable[str] | Iterable[bytes]


class RecordStream:
    """An iterator of :class:`LogRecord` that counts what it read.

    Attributes, updated as it goes: ``lines`` (lines read), ``records`` (records yielded),
    ``skipped`` (lines that are not packet logs: other kernel or syslog messages; blank lines
    are not counted), ``malformed`` (lines with the netfilter ``IN= OUT=`` header whose fields
    could not be read), and ``unparsed`` = ``skipped + malformed``: every non-blank line that gave
    no record. With ``strict=True`` the first such line raises :class:`LogFormatError` instead.
    """

    def __init__(
        self,
        lines: Iterable[str],
        *,
        strict: bool = False,
        name: str | None = None,
        reference: datetime | None = None,
    ) -> None:
        self._lines = lines
        self.strict = strict
        self.name = name
        self.lines = 0
        self.records = 0
        self.skipped = 0
        self.malformed = 0
        self._unwrapper = Unwrapper(reference) if reference is not None else _UNWRAPPER
        self._iterator = self._run()

    @property
    def unparsed(self) -> int:
        """Non-blank lines that gave no record (``skipped + malformed``)."""
        return self.skipped + self.malformed

    def __iter__(self) -> Iterator[LogRecord]:
        return self._iterator

    def __next__(self) -> LogRecord:
        return next(self._iterator)

    def _run(self) -> Iterator[LogRecord]:
        unwrapper = self._unwrapper
        fast = _fast_parse
        unwrap = unwrapper.unwrap
        lineno = self.lines
        try:
            for line in self._lines:
                lineno += 1
                record: LogRecord | None = None
                if "IN=" in line or line[:1] == "{":
                    raw = line.rstrip("\r\n")
                    try:
                        timestamp, host, uptime, message = unwrap(raw)
                        if message[-1:] == " ":
                            record = fast(raw, message, timestamp, host, uptime)
                        elif "IN=" in message:
                            record = fast(raw, message + " ", timestamp, host, uptime)
                        if record is None:
                            record = _slow_parse(raw, message, timestamp, host, uptime)
                    except (ValueError, IndexError, KeyError) as exc:
                        self.malformed += 1
                        if self.strict:
                            self.lines = lineno
                            raise LogFormatError(
                                f"unreadable packet log line: {exc}", lineno, self.name
                            ) from None
                        continue
                if record is None:
                    if line.strip():
                        self.skipped += 1
                        if self.strict:
                            self.lines = lineno
                            raise LogFormatError(
                                "not a netfilter packet log line", lineno, self.name
                            )
                    continue
                self.records += 1
                self.lines = lineno
                yield record
        finally:
            self.lines = lineno


def _open_lines(source: str | os.PathLike[str]) -> Iterator[str]:
    """Yield the lines of a plain or gzip file (OSError / EOFError when it cannot be read)."""
    path = Path(source)
    if path.suffix == ".gz":
        with gzip.open(path, "rt", encoding="utf-8", errors="replace", newline="") as handle:
            yield from handle
    else:
        with path.open(encoding="utf-8", errors="replace", newline="") as text:
            yield from text


def _text_lines(source: Iterable[str] | Iterable[bytes]) -> Iterator[str]:
    for line in source:
        if isinstance(line, bytes | bytearray):
            yield bytes(line).decode("utf-8", "replace")
        else:
            yield line


def iter_records(
    source: Source,
    *,
    strict: bool = False,
    reference: datetime | None = None,
    name: str | None = None,
) -> RecordStream:
    """Stream records from a path (plain or ``.gz``), a text or binary file, or lines.

    A path that cannot be opened raises ``OSError`` when iteration starts (a corrupt ``.gz``
    raises ``OSError`` or ``EOFError`` where it breaks); a binary file object is decoded as UTF-8
    (bad bytes replaced) but not decompressed.

    Returns a :class:`RecordStream`: iterate it for records; its ``lines``, ``records``,
    ``skipped``, ``malformed`` and ``unparsed`` counters say what was read. Lines that give no
    record are counted, not raised, unless ``strict`` is true (then :class:`LogFormatError` with
    the line number). ``reference`` is "now" for the year of syslog dates (default: now).
    """
    lines: Iterable[str]
    label: object = name
    if isinstance(source, str | os.PathLike):
        label = name or os.fspath(source)
        lines = _open_lines(source)
    elif isinstance(source, io.TextIOBase):
        label = name or getattr(source, "name", None)
        lines = source
    else:
        if hasattr(source, "read"):
            label = name or getattr(source, "name", None)
        lines = _text_lines(source)
    return RecordStream(
        lines, strict=strict, name=label if isinstance(label, str) else None, reference=reference
    )
