"""Shared pieces of the LOG line readers: value conversions, their caches, and the token reader.

The token reader (:func:`_slow_parse`) reads every variant of the kernel's format
(``net/netfilter/nf_log_syslog.c``) and ulogd's: it splits the message at spaces and reads one
``KEY=value`` or flag at a time. ICMP errors quote the offending packet in ``[...]``: it is read
into ``inner`` without touching the outer fields. Also IPv6 fragments, ``INCOMPLETE [N bytes]``,
IPv6 extension headers in ``OPT ( ... )``, bridge ``PHYSIN``, ``MACSRC``/``MACDST``, ARP,
AH/ESP, lines cut at the kernel's ~1 KiB limit. The quicker readers
(:mod:`nfkit.logs.fastparse`, :mod:`nfkit.logs.fastmessage`) must give the records it gives.
"""

from __future__ import annotations

import ipaddress
import re
from datetime import datetime

from nfkit.logs.record import IPAddress, LogRecord

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
    value: tuple[str | None, str | None, int | None] = (None, None, None)
    # Not Ethernet-like (tun/ppp give an empty MAC=; other devices other lengths): no fields.
    if len(octets) >= 14 and all(len(o) == 2 and o.isalnum() for o in octets):
        try:
            ethertype = int(octets[12] + octets[13], 16)
            if ethertype in (0x8100, 0x88A8) and len(octets) >= 18:  # 802.1Q / 802.1ad tag
                ethertype = int(octets[16] + octets[17], 16)
            value = (":".join(octets[0:6]), ":".join(octets[6:12]), ethertype)
        except ValueError:
            pass
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


#: ICMP types whose log line quotes the offending packet (and may add MTU=), per family.
_ICMP_QUOTING: dict[int, frozenset[int]] = {
    4: frozenset({3, 4, 5, 11, 12}),
    6: frozenset({1, 2, 3, 4}),
}


_EMPTY: frozenset[str] = frozenset()


# -- the token reader ----------------------------------------------------------------------------
# Interface names are at most 15 characters on Linux; the bound keeps a line made of many "IN="
# linear (each candidate is tried over a bounded stretch, not to the end of the line).
_HEADER = re.compile(
    r"(?P<prefix>.*?)IN=(?P<iin>\S{0,64}) OUT=(?P<out>\S{0,64})(?: |\Z)", re.DOTALL
)
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


#: None for every field between ``raw`` and ``truncated`` (a literal count: mypy checks it).
_NONES = (None,) * 39


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
    elif key == "SPI":  # AH/ESP: "SPI=0x%x" (IPv6: inside "OPT ( ... )")
        record.spi = _hex(value)
    elif key == "MARK":
        try:
            record.mark = _mark(value)
        except ValueError:
            raise _MalformedError(f"bad mark {value!r}") from None
    # Other keys (RES, URGP, PREC, PARAMETER, POINTER, VPROTO, VID, TUNNEL, HTYPE, PTYPE,
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
    record = LogRecord(raw, timestamp, host, uptime, *_NONES[3:], False)
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

