"""Netfilter LOG lines to :class:`~nfkit.logs.record.LogRecord`.

The kernel's formatter (``net/netfilter/nf_log_syslog.c``) writes ``PREFIXIN=.. OUT=.. `` and
then one field after another, each followed by a space. Three readers share the work, tried in
this order:

* a line-level regular expression for the common shapes (classic syslog, RFC 3339 or dmesg
  wrapper around an IPv4/IPv6 TCP, UDP or ICMP-without-quoted-packet message, or an IPv4
  fragment after the first): one match per line; the parts that repeat between lines are
  converted once and cached, and the record's slots are filled directly;
* the same for a message whose wrapper :class:`~nfkit.logs.wrappers.Unwrapper` removed (ulogd,
  journal JSON, OpenWrt, caller ids, ...);
* a token reader for everything else: ICMP errors with the offending packet in ``[...]`` (read
  into ``inner`` without touching the outer fields), IPv6 fragments, ``INCOMPLETE [N bytes]``, IPv6
  extension headers in ``OPT ( ... )``, bridge ``PHYSIN``, ``MACSRC``/``MACDST``, ARP, AH/ESP,
  lines cut at the kernel's ~1 KiB limit, ulogd's variations.

All give equal records for the lines the quicker ones accept (tests check that); a quicker
reader returns None rather than guess, and the next one decides.
"""

from __future__ import annotations

import gzip
import io
import ipaddress
import os
import re
import zlib
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from itertools import chain, repeat
from pathlib import Path
from typing import IO, Any

from nfkit.errors import LogFormatError, LogReadError
from nfkit.logs.record import IPAddress, LogRecord
from nfkit.logs.wrappers import _FACILITY_NAME, Unwrapper

__all__ = [
    "KERNEL_LINE_MAX",
    "TRUNCATION_LENGTH",
    "RecordStream",
    "iter_records",
    "parse_line",
    "parse_message",
]

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


# -- the fast path -------------------------------------------------------------------------------
# One pattern for the common lines, matched from the first "IN="; anything it does not match in
# full goes to the token reader. "[^ ]" and "[0-9]" are much quicker in CPython's re than "\S",
# "\d" or small hex classes; values it lets through are checked when converted (int(), the
# address parser), and a failed check sends the line to the token reader too.
_FAST = re.compile(
    r"IN=([^ ]*) OUT=([^ ]*) (?:MAC=([^ ]*) )?SRC=([^ ]+) DST=([^ ]+) LEN=([0-9]+) "
    r"(?:TOS=0x([^ ]+) PREC=0x([^ ]+) TTL=([0-9]+) ID=([0-9]+) ((?:CE |DF |MF )*)"
    r"|TC=([0-9]+) HOPLIMIT=([0-9]+) FLOWLBL=([0-9]+) )"
    r"PROTO=(?:(TCP) SPT=([0-9]+) DPT=([0-9]+) "
    r"(?:SEQ=([0-9]+) ACK=([0-9]+) )?WINDOW=([0-9]+) RES=0x[0-9a-f][0-9a-f] "
    r"((?:(?:CWR|ECE|URG|ACK|PSH|RST|SYN|FIN|AE) )*)URGP=[0-9]+ (?:OPT \([0-9A-F]*\) )?"
    r"|(UDP|UDPLITE) SPT=([0-9]+) DPT=([0-9]+) LEN=[0-9]+ "
    r"|(ICMP|ICMPv6) TYPE=([0-9]+) CODE=([0-9]+) (?:ID=([0-9]+) SEQ=([0-9]+) )?)"
    r"(?:UID=([0-9]+) GID=([0-9]+) )?(?:MARK=0x([0-9a-f]+) )?"
)
_HEX2 = {f"{value:02X}": value for value in range(256)}
_EMPTY: frozenset[str] = frozenset()
_NO_MAC: tuple[None, None, None] = (None, None, None)


def _fast_parse(
    raw: str,
    message: str,
    timestamp: datetime | None,
    host: str | None,
    uptime: float | None,
) -> LogRecord | None:
    """Read a common line with one regex match; None when the line needs the token reader."""
    start = message.find("IN=")
    if start < 0 or len(message) >= TRUNCATION_LENGTH:
        return None
    if message[-1] != " ":
        message += " "
    match = _FAST.fullmatch(message, start)
    if match is None:
        return None
    (
        iin, out, mac, src, dst, length, tos, prec, ttl, ip_id, ipflags, tc, hop, flow,
        tcp, tspt, tdpt, seq, ack, win, tflags, udp, uspt, udpt, icmp, itype, icode, iid, iseq,
        uid, gid, mark,
    ) = match.groups()  # fmt: skip
    prefix = message[:start]
    prefix_value = _PREFIXES[prefix] if prefix in _PREFIXES else _clean_prefix(prefix)
    if mac is None:
        mac_dst, mac_src, ethertype = _NO_MAC
    elif mac in _MACS:
        mac_dst, mac_src, ethertype = _MACS[mac]
    else:
        mac_dst, mac_src, ethertype = _mac_header(mac)
    try:
        src_addr = _ADDRESSES[src]
    except KeyError:
        src_addr = _address(src)
    try:
        dst_addr = _ADDRESSES[dst]
    except KeyError:
        dst_addr = _address(dst)
    if tos is not None:
        if tos not in _HEX2 or prec not in _HEX2 or ":" in src or ":" in dst:
            return None
        family = 4
        tos_value = _HEX2[tos] | _HEX2[prec]
        ttl_value = int(ttl)
        id_value: int | None = int(ip_id)
        flow_value = None
        flags = _FLAG_SETS[ipflags] if ipflags in _FLAG_SETS else _flag_set(ipflags)
        if "MF" in flags:
            return None  # fragments go through the token reader
    else:
        if ":" not in src or ":" not in dst:
            return None
        family = 6
        tos_value = int(tc)
        ttl_value = int(hop)
        id_value = None
        flow_value = int(flow)
        flags = _EMPTY
    mark_value = None if mark is None else int(mark, 16)
    if tcp is not None:
        return LogRecord(
            raw, timestamp, host, uptime, prefix_value,
            iin or None, out or None, None, None, mac_dst, mac_src, ethertype,
            family, src_addr, dst_addr, int(length), ttl_value, tos_value, id_value, flow_value,
            flags, None, "TCP", int(tspt), int(tdpt),
            _FLAG_SETS[tflags] if tflags in _FLAG_SETS else _flag_set(tflags), int(win),
            None if seq is None else int(seq), None if ack is None else int(ack),
            None, None, None, None, None, None, None,
            None if uid is None else int(uid), None if gid is None else int(gid),
            mark_value, False,
        )  # fmt: skip
    if udp is not None:
        return LogRecord(
            raw, timestamp, host, uptime, prefix_value,
            iin or None, out or None, None, None, mac_dst, mac_src, ethertype,
            family, src_addr, dst_addr, int(length), ttl_value, tos_value, id_value, flow_value,
            flags, None, udp, int(uspt), int(udpt),
            None, None, None, None, None, None, None, None, None, None, None,
            None if uid is None else int(uid), None if gid is None else int(gid),
            mark_value, False,
        )  # fmt: skip
    if (icmp == "ICMP") != (family == 4):
        return None
    icmp_type = int(itype)
    if iid is None and icmp_type in _ICMP_QUOTING[family]:
        return None  # an error without its quoted packet: let the token reader judge it
    return LogRecord(
        raw, timestamp, host, uptime, prefix_value,
        iin or None, out or None, None, None, mac_dst, mac_src, ethertype,
        family, src_addr, dst_addr, int(length), ttl_value, tos_value, id_value, flow_value,
        flags, None, icmp, None, None, None, None, None, None,
        icmp_type, int(icode),
        None if iid is None else int(iid), None if iseq is None else int(iseq),
        None, None, None,
        None if uid is None else int(uid), None if gid is None else int(gid),
        mark_value, False,
    )  # fmt: skip


# -- the line-level fast path: wrapper and message in one match ----------------------------------
# For classic syslog, RFC 3339 and dmesg lines. Parts that repeat from line to line are captured
# as one string each and looked up in caches: prefix + interfaces + MAC + addresses ("net"),
# length + TOS + TTL ("ip"), ICMP type + code, and everything after the ports, the ICMP echo id
# or a fragment's protocol ("tail": window, TCP flags, options, UID/GID/MARK). The cached "net"
# value is the run of LogRecord fields it decides. Far fewer objects are made per line than with
# one capture per field, and object creation is what costs most in CPython.
#
# The line pattern only has to cut a line into the same parts as a strict one would: a cached
# part is read by its own strict pattern the first time it is seen, and a part that does not
# read makes the line go to the general path. So "ip" and "tail" are matched loosely here (a
# quicker match), and the optional parts are possessive (no backtracking state to keep).
_NO_CALLER = r"(?!\[ *[0-9]+\.[0-9]+\]|\[ *[CT][0-9]+\])"
_LINE = re.compile(
    # the month and time are checked when the header is converted (Unwrapper.syslog_header)
    r"(?:([A-Z][a-z][a-z] [ 0-9][0-9] [0-9][0-9]:[0-9][0-9]:[0-9][0-9] [^\s\[]\S*) kernel: "
    r"|([0-9]{4}-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9](?:\.[0-9]+)?+"
    r"(?:Z|[+-][0-9][0-9]:?[0-9][0-9])?+) ([^\s\[]\S*) kernel: "
    r"|(?=\[ *[0-9]+\.[0-9]+\] " + _NO_CALLER + r"(?![^\s\[]\S* (?:[a-z0-9]+\.[a-z]+ )?kernel:)))"
    r"(?:\[ *([0-9]+\.[0-9]+)\] )?+" + _NO_CALLER
    # the prefix runs to the first "IN=" (unrolled: quicker than a lazy ".*?")
    + r"([^I]*(?:I(?!N=)[^I]*)*+IN=[^ ]* OUT=[^ ]* (?:MAC=[^ ]* )?+SRC=[^ ]+ DST=[^ ]+) "
    r"(LEN=[^ ]* T(?:OS=[^ ]* [^ ]*|C=[^ ]*) [^ ]*) "
    r"(?:ID=([0-9]+) ((?:CE |DF |MF )*+)|FLOWLBL=([0-9]+) )"
    # a fragment other than the first: no transport header
    r"(?:FRAG:([0-9]+) PROTO=([0-9A-Za-z]+) (.*)|"
    r"PROTO=(?:TCP SPT=([0-9]+) DPT=([0-9]+) (?:SEQ=([0-9]+) ACK=([0-9]+) )?+(WINDOW=.*)"
    r"|(UDP|UDPLITE) SPT=([0-9]+) DPT=([0-9]+) (LEN=.*)"
    r"|(ICMP(?:v6)?+ TYPE=[0-9]+ CODE=[0-9]+) (?:ID=([0-9]+) SEQ=([0-9]+) )?+(.*)))"
)
# Interface names as the token reader's _HEADER reads them (a tab in one is not a name).
_NET_PART = re.compile(
    r"(.*?)IN=(\S{0,64}) OUT=(\S{0,64}) (?:MAC=([^ ]*) )?SRC=([^ ]+) DST=([^ ]+)", re.DOTALL
)
_IP_PART = re.compile(
    r"LEN=([0-9]+) (?:TOS=0x(..) PREC=0x(..) TTL=([0-9]+)|TC=([0-9]+) HOPLIMIT=([0-9]+))"
)
_TRAILER = r"(?:UID=([0-9]+) GID=([0-9]+) )?(?:MARK=0x([0-9a-f]+) )?"
_TCP_TAIL = re.compile(
    r"WINDOW=([0-9]+) RES=0x[0-9a-f][0-9a-f] ((?:(?:CWR|ECE|URG|ACK|PSH|RST|SYN|FIN|AE) )*)"
    r"URGP=[0-9]+ (?:OPT \([0-9A-F]*\) )?" + _TRAILER
)
_UDP_TAIL = re.compile(r"LEN=[0-9]+ " + _TRAILER)
_ICMP_TAIL = re.compile(_TRAILER)
#: LogRecord fields prefix .. dst decided by the "net" part, or None if unreadable.
_NetArgs = tuple[Any, ...]
_NET_CACHE: dict[str, _NetArgs | None] = {}
#: (family, (length, ttl, tos)) from the "ip" part, or None if unreadable.
_IP_CACHE: dict[str, tuple[int, tuple[int, int, int]] | None] = {}
_ICMP_CACHE: dict[str, tuple[str, int, int, int] | None] = {}
_Trailer = tuple[int | None, int | None, int | None]
#: (tcp_flags, window, uid, gid, mark) from a TCP tail, or None if unreadable.
_TCP_TAILS: dict[str, tuple[frozenset[str], int, int | None, int | None, int | None] | None] = {}
#: (uid, gid, mark) from a UDP or ICMP tail, or None if unreadable.
_UDP_TAILS: dict[str, _Trailer | None] = {}
_ICMP_TAILS: dict[str, _Trailer | None] = {"": (None, None, None)}


def _net_part(text: str) -> _NetArgs | None:
    """The LogRecord fields from prefix to DST for a line's "net" part (cached)."""
    if len(_NET_CACHE) >= _CACHE_LIMIT:
        _NET_CACHE.clear()
    value: _NetArgs | None = None
    match = _NET_PART.fullmatch(text)
    if match is not None:
        prefix, iin, out, mac, src, dst = match.groups()
        try:
            src_addr, dst_addr = _address(src), _address(dst)
        except ValueError:
            src_addr = None
        if src_addr is not None and src_addr.version == dst_addr.version:
            mac_dst, mac_src, ethertype = _NO_MAC if mac is None else _mac_header(mac)
            value = (
                _clean_prefix(prefix), iin or None, out or None, None, None,
                mac_dst, mac_src, ethertype, src_addr.version, src_addr, dst_addr,
            )  # fmt: skip
    _NET_CACHE[text] = value
    return value


def _ip_part(text: str) -> tuple[int, tuple[int, int, int]] | None:
    """(family, (length, TTL or hop limit, TOS or traffic class)) from the "ip" part (cached)."""
    if len(_IP_CACHE) >= _CACHE_LIMIT:
        _IP_CACHE.clear()
    value: tuple[int, tuple[int, int, int]] | None = None
    match = _IP_PART.fullmatch(text)
    if match is not None:
        length, tos, prec, ttl, tc, hop = match.groups()
        if tos is None:
            value = (6, (int(length), int(hop), int(tc)))
        elif tos in _HEX2 and prec in _HEX2:
            value = (4, (int(length), int(ttl), _HEX2[tos] | _HEX2[prec]))
    _IP_CACHE[text] = value
    return value


def _trailer(uid: str | None, gid: str | None, mark: str | None) -> _Trailer:
    return (
        None if uid is None else int(uid),
        None if gid is None else int(gid),
        None if mark is None else int(mark, 16),
    )


def _tcp_tail(text: str) -> tuple[frozenset[str], int, int | None, int | None, int | None] | None:
    """(flags, window, uid, gid, mark) from ``WINDOW=.. RES=.. FLAGS URGP=.. ...`` (cached)."""
    if len(_TCP_TAILS) >= _CACHE_LIMIT:
        _TCP_TAILS.clear()
    match = _TCP_TAIL.fullmatch(text)
    value = None
    if match is not None:
        window, flags, uid, gid, mark = match.groups()
        value = (frozenset(flags.split()), int(window), *_trailer(uid, gid, mark))
    _TCP_TAILS[text] = value
    return value


def _udp_tail(text: str) -> _Trailer | None:
    """(uid, gid, mark) from ``LEN=.. [UID=.. GID=..] [MARK=..]`` (cached)."""
    if len(_UDP_TAILS) >= _CACHE_LIMIT:
        _UDP_TAILS.clear()
    match = _UDP_TAIL.fullmatch(text)
    value = None if match is None else _trailer(*match.groups())
    _UDP_TAILS[text] = value
    return value


def _icmp_tail(text: str) -> _Trailer | None:
    """(uid, gid, mark) from ``[UID=.. GID=..] [MARK=..]`` after an ICMP header (cached)."""
    if len(_ICMP_TAILS) >= _CACHE_LIMIT:
        _ICMP_TAILS.clear()
        _ICMP_TAILS[""] = (None, None, None)
    match = _ICMP_TAIL.fullmatch(text)
    value = None if match is None else _trailer(*match.groups())
    _ICMP_TAILS[text] = value
    return value


def _icmp_part(text: str) -> tuple[str, int, int, int] | None:
    """(protocol, type, code, family) from ``ICMP TYPE=.. CODE=..``; None for quoting types."""
    if len(_ICMP_CACHE) >= _CACHE_LIMIT:
        _ICMP_CACHE.clear()
    proto, icmp_type, icmp_code = text.split()
    family = 4 if proto == "ICMP" else 6
    type_value = int(icmp_type[5:])
    value = None
    if type_value not in _ICMP_QUOTING[family]:  # an error must quote a packet: token reader
        value = (proto, type_value, int(icmp_code[5:]), family)
    _ICMP_CACHE[text] = value
    return value


def _make_fast_line() -> Callable[[str, Unwrapper], LogRecord | None]:
    """Build :func:`_fast_line` with everything it uses bound as closure variables."""
    match_line = _LINE.fullmatch
    nets = _NET_CACHE
    ips = _IP_CACHE
    icmps = _ICMP_CACHE
    tcp_tails = _TCP_TAILS
    udp_tails = _UDP_TAILS
    icmp_tails = _ICMP_TAILS
    flag_sets = _FLAG_SETS
    record = LogRecord
    new = object.__new__
    empty = _EMPTY
    limit = TRUNCATION_LENGTH
    facility_name = _FACILITY_NAME.fullmatch

    def fast_line(raw: str, unwrapper: Unwrapper) -> LogRecord | None:
        """Read a common wrapped line with one match; None when the general path decides."""
        match = match_line(raw if raw[-1:] == " " else raw + " ")
        if match is None:
            return None
        (
            header, iso, iso_host, up, net, ip, ip_id, ipflags, flow, frag, fproto, ftail,
            tspt, tdpt, seq, ack, ttail, udp, uspt, udpt, utail, icmp, iid, iseq, itail,
        ) = match.groups()  # fmt: skip
        host: str | None
        # Caches are read with try/except, not "in" then "[]": one lookup, and a cache cleared
        # by another thread in between only costs a recomputation.
        if header is not None:
            try:
                head = unwrapper.header_cache[header]
            except KeyError:
                head = unwrapper.syslog_header(header)
            if head is None:
                return None
            timestamp, host = head
        elif iso is not None:
            if iso_host == "kernel:" or ("." in iso_host and facility_name(iso_host)):
                return None
            timestamp, host = unwrapper.iso_time(iso), iso_host
        else:
            timestamp = host = None
        try:
            net_args = nets[net]
        except KeyError:
            net_args = _net_part(net)
        try:
            ip_part = ips[ip]
        except KeyError:
            ip_part = _ip_part(ip)
        if net_args is None or ip_part is None or ip_part[0] != net_args[8]:
            return None
        if len(raw) >= limit and len(raw) - match.start(5) >= limit:
            return None  # maybe cut by the kernel: the token reader judges
        if ttail is not None:
            try:
                tail: tuple[Any, ...] | None = tcp_tails[ttail]
            except KeyError:
                tail = _tcp_tail(ttail)
        elif utail is not None:
            try:
                tail = udp_tails[utail]
            except KeyError:
                tail = _udp_tail(utail)
        elif ftail is not None:
            if net_args[8] != 4:
                return None  # IPv6 logs fragments otherwise: the token reader reads them
            try:
                tail = icmp_tails[ftail]
            except KeyError:
                tail = _icmp_tail(ftail)
        else:
            try:
                icmp_part = icmps[icmp]
            except KeyError:
                icmp_part = _icmp_part(icmp)
            if icmp_part is None or icmp_part[3] != net_args[8]:
                return None
            try:
                tail = icmp_tails[itail]
            except KeyError:
                tail = _icmp_tail(itail)
        if tail is None:
            return None
        # Every slot is stored here rather than through LogRecord(...): the generated __init__
        # (40 arguments, copied three times on the way in) costs about twice as much.
        rec = new(record)
        rec.raw = raw
        rec.timestamp = timestamp
        rec.host = host
        rec.uptime = None if up is None else float(up)
        (
            rec.prefix, rec.in_iface, rec.out_iface, rec.physin, rec.physout, rec.mac_dst,
            rec.mac_src, rec.ethertype, rec.family, rec.src, rec.dst,
        ) = net_args  # fmt: skip
        rec.length, rec.ttl, rec.tos = ip_part[1]
        if ip_id is not None:
            rec.ip_id = int(ip_id)
            rec.flowlabel = None
            try:
                rec.ip_flags = flag_sets[ipflags]
            except KeyError:
                rec.ip_flags = _flag_set(ipflags)
        else:
            rec.ip_id = None
            rec.flowlabel = int(flow)
            rec.ip_flags = empty
        if ftail is not None:
            rec.frag_offset = int(frag) * 8  # logged in 8-byte units
            rec.proto = fproto
            rec.spt = rec.dpt = rec.tcp_flags = rec.window = rec.seq = rec.ack = None
            rec.icmp_type = rec.icmp_code = rec.icmp_id = rec.icmp_seq = None
            rec.uid, rec.gid, rec.mark = tail
        elif ttail is not None:
            rec.frag_offset = None
            rec.proto = "TCP"
            rec.spt = int(tspt)
            rec.dpt = int(tdpt)
            rec.tcp_flags, rec.window, rec.uid, rec.gid, rec.mark = tail
            rec.seq = None if seq is None else int(seq)
            rec.ack = None if ack is None else int(ack)
            rec.icmp_type = rec.icmp_code = rec.icmp_id = rec.icmp_seq = None
        else:
            rec.frag_offset = rec.tcp_flags = rec.window = rec.seq = rec.ack = None
            rec.uid, rec.gid, rec.mark = tail
            if utail is not None:
                rec.proto = udp
                rec.spt = int(uspt)
                rec.dpt = int(udpt)
                rec.icmp_type = rec.icmp_code = rec.icmp_id = rec.icmp_seq = None
            else:
                # icmp_part is not None here: the ICMP branch above returned otherwise
                rec.proto, rec.icmp_type, rec.icmp_code, _family = icmp_part  # type: ignore[misc]
                rec.spt = rec.dpt = None
                if iid is None:
                    rec.icmp_id = rec.icmp_seq = None
                else:
                    rec.icmp_id = int(iid)
                    rec.icmp_seq = int(iseq)
        rec.gateway = rec.mtu = rec.inner = None
        rec.truncated = False
        return rec

    return fast_line


_fast_line = _make_fast_line()


#: ICMP types whose log line quotes the offending packet (and may add MTU=), per family.
_ICMP_QUOTING: dict[int, frozenset[int]] = {
    4: frozenset({3, 4, 5, 11, 12}),
    6: frozenset({1, 2, 3, 4}),
}


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
    record = _fast_parse(raw, message, timestamp, host, uptime)
    if record is not None:
        return record
    return _slow_parse(raw, message, timestamp, host, uptime)


_UNWRAPPER = Unwrapper()


def _parse(line: str, unwrapper: Unwrapper) -> LogRecord | None:
    """Parse one raw line; ``_MalformedError`` for a packet line with unreadable fields."""
    raw = line.rstrip("\r\n")
    if "IN=" not in raw and raw[:1] != "{":  # journal JSON may carry MESSAGE as byte values
        return None
    record = _fast_line(raw, unwrapper)
    if record is not None:
        return record
    timestamp, host, uptime, message = unwrapper.split(raw)
    if "IN=" not in message:
        return None
    record = _fast_parse(raw, message, timestamp, host, uptime)
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

    __slots__ = (
        "_iterator", "_lines", "_unwrapper", "lines", "malformed", "name", "records", "skipped",
        "strict",
    )  # fmt: skip

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
        split = unwrapper.split
        fast_line = _fast_line
        fast = _fast_parse
        slow = _slow_parse
        lineno = self.lines
        records = self.records
        source = self._lines
        # A file comes as lists of lines already stripped: a plain loop over a list is quicker
        # than resuming a line generator and calling rstrip for every line.
        batches: Iterable[Iterable[str]] = (
            source.batches
            if isinstance(source, _FileLines)
            else (map(str.rstrip, source, repeat("\r\n")),)
        )
        try:
            for batch in batches:
                for raw in batch:
                    lineno += 1
                    try:
                        record = fast_line(raw, unwrapper)
                        if record is None and ("IN=" in raw or raw[:1] == "{"):
                            timestamp, host, uptime, message = split(raw)
                            record = fast(raw, message, timestamp, host, uptime)
                            if record is None:
                                record = slow(raw, message, timestamp, host, uptime)
                    except (ValueError, IndexError, KeyError) as exc:
                        self.malformed += 1
                        if self.strict:
                            raise LogFormatError(
                                f"unreadable packet log line ({exc}): {_excerpt(raw)}",
                                lineno,
                                self.name,
                            ) from None
                        continue
                    if record is None:
                        if raw.strip():
                            self.skipped += 1
                            if self.strict:
                                raise LogFormatError(
                                    f"not a netfilter packet log line: {_excerpt(raw)}",
                                    lineno,
                                    self.name,
                                )
                        continue
                    records += 1
                    self.records = records
                    self.lines = lineno
                    yield record
        finally:
            self.lines = lineno


_CHUNK = 1 << 20


def _excerpt(line: str, width: int = 60) -> str:
    """The start of ``line`` for an error message, quoted."""
    return repr(line if len(line) <= width else line[:width] + "...")


class _FileLines:
    """The lines of a plain or gzip file without their line endings, read in 1 MiB chunks.

    Opening or reading it raises OSError (a corrupt ``.gz`` OSError or EOFError) when iteration
    starts or where it breaks.
    """

    __slots__ = ("path",)

    def __init__(self, source: str | os.PathLike[str]) -> None:
        self.path = Path(source)

    @property
    def batches(self) -> Iterator[list[str]]:
        """The lines in lists, one per chunk read: quicker to loop over than a line iterator."""
        return _read_batches(self.path)

    def __iter__(self) -> Iterator[str]:
        return chain.from_iterable(self.batches)


def _read_batches(path: Path) -> Iterator[list[str]]:
    """Yield the lines of ``path`` chunk by chunk; raise LogReadError if it cannot be read."""
    try:
        yield from _read_batches_raw(path)
    except (OSError, EOFError, zlib.error) as exc:
        reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        raise LogReadError(f"cannot read {path}: {reason}") from None


def _read_batches_raw(path: Path) -> Iterator[list[str]]:
    """Yield the lines of ``path`` chunk by chunk; split on "\\n", quicker than line iteration."""
    handle: IO[str]
    if path.suffix == ".gz":
        handle = gzip.open(path, "rt", encoding="utf-8", errors="replace", newline="")  # noqa: SIM115
    else:
        handle = path.open(encoding="utf-8", errors="replace", newline="")
    with handle:
        read = handle.read
        rest = ""
        while True:
            chunk = read(_CHUNK)
            if not chunk:
                break
            text = rest + chunk
            lines = text.split("\n")
            rest = lines.pop()
            if "\r" in text:
                lines = [line.rstrip("\r") for line in lines]
            yield lines
        if rest:
            yield [rest.rstrip("\r")]


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
        lines = _FileLines(source)
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
