"""The line-level quick reader: a whole common log line with one regular-expression match.

:func:`_fast_line` reads a classic syslog, RFC 3339 or dmesg line (wrapper and kernel message)
around an IPv4/IPv6 TCP, UDP, ICMP or AH/ESP message, an ICMP error with the packet it quotes in
``[...]``, or an IPv4 fragment after the first. It is tried first; the message-level reader
(:mod:`nfkit.logs.fastmessage`) and the token reader (:mod:`nfkit.logs.tokenreader`) read what it
leaves. It returns None rather than guess, and for every line it accepts it must give the record
the token reader gives (the tests compare them field by field).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from nfkit.logs.fastmessage import _HEX2, _NO_MAC, _TRAILER, _quoted, _Trailer, _trailer
from nfkit.logs.record import LogRecord
from nfkit.logs.tokenreader import (
    _CACHE_LIMIT,
    _EMPTY,
    _FLAG_SETS,
    _ICMP_QUOTING,
    TRUNCATION_LENGTH,
    _address,
    _clean_prefix,
    _flag_set,
    _mac_header,
)
from nfkit.logs.wrappers import _FACILITY_NAME, Unwrapper

# -- the line-level fast path: wrapper and message in one match ----------------------------------
# For classic syslog, RFC 3339 and dmesg lines. Parts that repeat from line to line are captured
# as one string each and looked up in caches: prefix + interfaces + MAC + addresses ("net"),
# length + TOS + TTL ("ip"), ICMP type + code, AH/ESP + SPI, and everything after the ports, the
# ICMP echo id or a fragment's protocol ("tail": window, TCP flags, options, UID/GID/MARK; an
# ICMP error's quoted packet is read by fastmessage._quoted, not cached). The cached "net"
# value is the run of LogRecord fields it decides. Far fewer objects are made per line than with
# one capture per field, and object creation is what costs most in CPython.
#
# The line pattern only has to cut a line into the same parts as a strict one would: a cached
# part is read by its own strict pattern the first time it is seen, and a part that does not
# read makes the line go to the general path. So "net" is everything up to the first "LEN=" (one
# quick scan: the strict pattern checks the prefix, interfaces, MAC and addresses), "ip" and
# "tail" are matched loosely too, and the optional parts are possessive (no backtracking state).
_NO_CALLER = r"(?!\[ *[0-9]+\.[0-9]+\]|\[ *[CT][0-9]+\])"
_LINE = re.compile(
    # the month and time are checked when the header is converted (Unwrapper.syslog_header)
    r"(?:([A-Z][a-z][a-z] [ 0-9][0-9] [0-9][0-9]:[0-9][0-9]:[0-9][0-9] [^\s\[]\S*) kernel: "
    r"|([0-9]{4}-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9](?:\.[0-9]+)?+"
    r"(?:Z|[+-][0-9][0-9]:?[0-9][0-9])?+) ([^\s\[]\S*) kernel: "
    r"|(?=\[ *[0-9]+\.[0-9]+\] " + _NO_CALLER + r"(?![^\s\[]\S* (?:[a-z0-9]+\.[a-z]+ )?kernel:)))"
    r"(?:\[ *([0-9]+\.[0-9]+)\] )?+" + _NO_CALLER
    # "net": the prefix, interfaces, MAC and addresses, up to the first "LEN=" (unrolled: one
    # quick scan, much quicker than matching each field)
    + r"([^L]*+(?:L(?!EN=)[^L]*+)*+)"
    r"(LEN=[^ ]* T(?:OS=[^ ]* [^ ]*|C=[^ ]*) [^ ]*) "
    r"(?:ID=([0-9]+) ((?:CE |DF |MF )*+)|FLOWLBL=([0-9]+) )"
    # a fragment other than the first: no transport header. (Fewer groups, shared between the
    # protocols with one "tail" after them all, measured slower: sre keeps backtracking state.)
    r"(?:FRAG:([0-9]+) PROTO=([0-9A-Za-z]+) (.*)|"
    r"PROTO=(?:TCP SPT=([0-9]+) DPT=([0-9]+) (?:SEQ=([0-9]+) ACK=([0-9]+) )?+(WINDOW=.*)"
    r"|(UDP|UDPLITE) SPT=([0-9]+) DPT=([0-9]+) (LEN=.*)"
    r"|(ICMP(?:v6)?+ TYPE=[0-9]+ CODE=[0-9]+) (?:ID=([0-9]+) SEQ=([0-9]+) )?+(.*)"
    r"|((?:ESP|AH) SPI=0x[0-9a-f]+) (.*)))"
)
# The "net" part as the token reader's _HEADER reads it: the prefix runs to the first "IN="
# (a tab in an interface name is not a name), and the part ends with the space before "LEN=".
_NET_PART = re.compile(
    r"([^I]*+(?:I(?!N=)[^I]*+)*+)IN=(\S{0,64}) OUT=(\S{0,64}) (?:MAC=([^ ]*) )?+"
    r"SRC=([^ ]+) DST=([^ ]+) "
)
_IP_PART = re.compile(
    r"LEN=([0-9]+) (?:TOS=0x(..) PREC=0x(..) TTL=([0-9]+)|TC=([0-9]+) HOPLIMIT=([0-9]+))"
)
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
#: (protocol, type, code, family, quotes a packet) from ``ICMP TYPE=.. CODE=..``.
_ICMP_CACHE: dict[str, tuple[str, int, int, int, bool]] = {}
#: (tcp_flags, window, uid, gid, mark) from a TCP tail, or None if unreadable.
_TCP_TAILS: dict[str, tuple[frozenset[str], int, int | None, int | None, int | None] | None] = {}
#: (uid, gid, mark) from a UDP or ICMP tail, or None if unreadable.
_UDP_TAILS: dict[str, _Trailer | None] = {}
_ICMP_TAILS: dict[str, _Trailer | None] = {"": (None, None, None)}
#: (proto, spi) from ``ESP SPI=0x..``.
_IPSEC_CACHE: dict[str, tuple[str, int]] = {}


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


def _icmp_part(text: str) -> tuple[str, int, int, int, bool]:
    """(protocol, type, code, family, quotes a packet) from ``ICMP TYPE=.. CODE=..`` (cached)."""
    if len(_ICMP_CACHE) >= _CACHE_LIMIT:
        _ICMP_CACHE.clear()
    proto, icmp_type, icmp_code = text.split()
    family = 4 if proto == "ICMP" else 6
    type_value = int(icmp_type[5:])
    value = (proto, type_value, int(icmp_code[5:]), family, type_value in _ICMP_QUOTING[family])
    _ICMP_CACHE[text] = value
    return value


def _ipsec_part(text: str) -> tuple[str, int]:
    """(protocol, SPI) from ``ESP SPI=0x1001`` or ``AH SPI=0x..`` (cached)."""
    if len(_IPSEC_CACHE) >= _CACHE_LIMIT:
        _IPSEC_CACHE.clear()
    proto, _, spi = text.partition(" SPI=0x")
    value = (proto, int(spi, 16))
    _IPSEC_CACHE[text] = value
    return value


#: Destination ports as text -> int: a few services take most packets, and a small dict lookup
#: is quicker than int(). Bounded (a port scan would fill it): a miss converts without storing.
_PORTS: dict[str, int] = {}
_PORTS_LIMIT = 1024


def _port(text: str) -> int:
    """int(text), remembered while the port cache is small (0 is converted, not cached)."""
    value = int(text)
    if len(_PORTS) < _PORTS_LIMIT and value:
        _PORTS[text] = value
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
    ports_get = _PORTS.get

    def fast_line(raw: str, unwrapper: Unwrapper) -> LogRecord | None:
        """Read a common wrapped line with one match; None when the general path decides."""
        match = match_line(raw if raw[-1:] == " " else raw + " ")
        if match is None:
            return None
        (
            header, iso, iso_host, up, net, ip, ip_id, ipflags, flow, frag, fproto, ftail,
            tspt, tdpt, seq, ack, ttail, udp, uspt, udpt, utail, icmp, iid, iseq, itail,
            ipsec, stail,
        ) = match.groups()  # fmt: skip
        if len(raw) >= limit and len(raw) - match.start(5) >= limit:
            return None  # maybe cut by the kernel: the token reader judges (nothing cached)
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
        inner = mtu = None
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
        elif itail is not None:
            try:
                icmp_part = icmps[icmp]
            except KeyError:
                icmp_part = _icmp_part(icmp)
            if icmp_part[3] != net_args[8]:
                return None
            if icmp_part[4]:  # an error: the offending packet in "[...]", maybe MTU=
                if iid is not None or itail[:1] != "[":
                    return None
                quoted = _quoted(itail)
                if quoted is None:
                    return None
                inner, mtu, quoted_uid, quoted_gid, quoted_mark = quoted
                tail = (quoted_uid, quoted_gid, quoted_mark)
            else:
                try:
                    tail = icmp_tails[itail]
                except KeyError:
                    tail = _icmp_tail(itail)
        elif ftail is not None:
            if net_args[8] != 4:
                return None  # IPv6 logs fragments otherwise: the token reader reads them
            try:
                tail = icmp_tails[ftail]
            except KeyError:
                tail = _icmp_tail(ftail)
        else:
            try:
                tail = icmp_tails[stail]
            except KeyError:
                tail = _icmp_tail(stail)
        if tail is None:
            return None
        # Every slot is stored here rather than through LogRecord(...): the generated __init__
        # (41 arguments, copied three times on the way in) costs about twice as much.
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
        rec.frag_offset = rec.spi = rec.gateway = None
        rec.mtu = mtu
        rec.inner = inner
        if ttail is not None:
            rec.proto = "TCP"
            rec.spt = int(tspt)
            rec.dpt = ports_get(tdpt) or _port(tdpt)
            rec.tcp_flags, rec.window, rec.uid, rec.gid, rec.mark = tail
            rec.seq = None if seq is None else int(seq)
            rec.ack = None if ack is None else int(ack)
            rec.icmp_type = rec.icmp_code = rec.icmp_id = rec.icmp_seq = None
        else:
            rec.tcp_flags = rec.window = rec.seq = rec.ack = None
            rec.uid, rec.gid, rec.mark = tail
            if utail is not None:
                rec.proto = udp
                rec.spt = int(uspt)
                rec.dpt = ports_get(udpt) or _port(udpt)
                rec.icmp_type = rec.icmp_code = rec.icmp_id = rec.icmp_seq = None
            elif itail is not None:
                rec.proto, rec.icmp_type, rec.icmp_code, _family, _quotes = icmp_part
                rec.spt = rec.dpt = None
                if iid is None:
                    rec.icmp_id = rec.icmp_seq = None
                else:
                    rec.icmp_id = int(iid)
                    rec.icmp_seq = int(iseq)
            else:
                rec.spt = rec.dpt = rec.icmp_type = rec.icmp_code = rec.icmp_id = None
                rec.icmp_seq = None
                if ftail is not None:
                    rec.frag_offset = int(frag) * 8  # logged in 8-byte units
                    rec.proto = fproto
                else:
                    try:
                        rec.proto, rec.spi = _IPSEC_CACHE[ipsec]
                    except KeyError:
                        rec.proto, rec.spi = _ipsec_part(ipsec)
        rec.truncated = False
        return rec

    return fast_line


_fast_line = _make_fast_line()
