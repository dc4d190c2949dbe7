"""The message-level quick reader, and the reader of the packet an ICMP error quotes.

:func:`_fast_parse` reads a common kernel message (IPv4/IPv6 TCP, UDP, ICMP, an ICMP error
with the packet it quotes, AH/ESP) with one match, once :class:`~nfkit.logs.wrappers.Unwrapper`
has removed a wrapper the line-level reader (:mod:`nfkit.logs.fastparse`) does not know (ulogd,
journal JSON, OpenWrt, caller ids, ...). :func:`_quoted` reads ``[SRC=.. ] MTU=..`` for both.
They return None rather than guess: the token reader (:mod:`nfkit.logs.tokenreader`) then
decides, and for every message they accept they must give its record (tests compare them).
"""

from __future__ import annotations

import re
from datetime import datetime

from nfkit.logs.record import LogRecord
from nfkit.logs.tokenreader import (
    _ADDRESSES,
    _EMPTY,
    _FLAG_SETS,
    _ICMP_QUOTING,
    _MACS,
    _PREFIXES,
    TRUNCATION_LENGTH,
    _address,
    _clean_prefix,
    _flag_set,
    _mac_header,
)

_HEX2 = {f"{value:02X}": value for value in range(256)}
_NO_MAC: tuple[None, None, None] = (None, None, None)
_TRAILER = r"(?:UID=([0-9]+) GID=([0-9]+) )?(?:MARK=0x([0-9a-f]+) )?"
_Trailer = tuple[int | None, int | None, int | None]


def _trailer(uid: str | None, gid: str | None, mark: str | None) -> _Trailer:
    return (
        None if uid is None else int(uid),
        None if gid is None else int(gid),
        None if mark is None else int(mark, 16),
    )


# -- an ICMP error's quoted packet ---------------------------------------------------------------
# What follows "PROTO=ICMP TYPE=3 CODE=4 " (or ICMPv6) in an error: the offending packet as the
# kernel logs it without prefix and interfaces, in "[...]"; then MTU= for "fragmentation needed"
# and "packet too big"; then the outer packet's UID/GID/MARK. Only the common inner shapes are
# read here (no fragments, IP options, extension headers or cut headers).
_QUOTED = re.compile(
    r"\[(SRC=([^ ]+) DST=([^ ]+) LEN=([0-9]+) "
    r"(?:TOS=0x([0-9A-F][0-9A-F]) PREC=0x([0-9A-F][0-9A-F]) TTL=([0-9]+) ID=([0-9]+) "
    r"((?:CE |DF |MF )*)|TC=([0-9]+) HOPLIMIT=([0-9]+) FLOWLBL=([0-9]+) )"
    r"PROTO=(?:TCP SPT=([0-9]+) DPT=([0-9]+) (?:SEQ=([0-9]+) ACK=([0-9]+) )?WINDOW=([0-9]+) "
    r"RES=0x[0-9a-f][0-9a-f] ((?:(?:CWR|ECE|URG|ACK|PSH|RST|SYN|FIN|AE) )*)URGP=[0-9]+ "
    r"(?:OPT \([0-9A-F]*\) )?"
    r"|(UDP|UDPLITE) SPT=([0-9]+) DPT=([0-9]+) LEN=[0-9]+ "
    r"|(ICMP|ICMPv6) TYPE=([0-9]+) CODE=([0-9]+) (?:ID=([0-9]+) SEQ=([0-9]+) )?"
    r"|(ESP|AH) SPI=0x([0-9a-f]+) "
    r"|([0-9]+) ))\] (?:MTU=([0-9]+) )?" + _TRAILER
)


def _int_or_none(text: str | None) -> int | None:
    return None if text is None else int(text)


def _quoted(text: str) -> tuple[LogRecord, int | None, int | None, int | None, int | None] | None:
    """(inner packet, mtu, uid, gid, mark) from ``[SRC=.. ] MTU=.. UID=..``; None if unusual."""
    match = _QUOTED.fullmatch(text)
    if match is None:
        return None
    (
        raw, src, dst, length, tos, prec, ttl, ip_id, ipflags, tc, hop, flow,
        tspt, tdpt, seq, ack, window, tflags, udp, uspt, udpt, icmp, itype, icode, iid, iseq,
        ipsec, spi, number, mtu, uid, gid, mark,
    ) = match.groups()  # fmt: skip
    try:
        src_addr = _ADDRESSES[src] if src in _ADDRESSES else _address(src)
        dst_addr = _ADDRESSES[dst] if dst in _ADDRESSES else _address(dst)
    except ValueError:
        return None
    family = 4 if tos is not None else 6
    if src_addr.version != family or dst_addr.version != family:
        return None  # the token reader takes the family from SRC: let it decide
    inner = LogRecord(
        raw=raw.rstrip(),
        family=family,
        src=src_addr,
        dst=dst_addr,
        length=int(length),
        ttl=int(ttl if tos is not None else hop),
        tos=int(tos, 16) | int(prec, 16) if tos is not None else int(tc),
        ip_id=_int_or_none(ip_id),
        flowlabel=_int_or_none(flow),
        ip_flags=_EMPTY if ipflags is None else _flag_set(ipflags),
    )
    if window is not None:
        inner.proto = "TCP"
        inner.spt = int(tspt)
        inner.dpt = int(tdpt)
        inner.seq = _int_or_none(seq)
        inner.ack = _int_or_none(ack)
        inner.window = int(window)
        inner.tcp_flags = _flag_set(tflags)
    elif udp is not None:
        inner.proto = udp
        inner.spt = int(uspt)
        inner.dpt = int(udpt)
    elif icmp is not None:
        inner.proto = icmp
        inner.icmp_type = int(itype)
        inner.icmp_code = int(icode)
        inner.icmp_id = _int_or_none(iid)
        inner.icmp_seq = _int_or_none(iseq)
    elif ipsec is not None:
        inner.proto = ipsec
        inner.spi = int(spi, 16)
    else:
        inner.proto = number
    return (inner, _int_or_none(mtu), *_trailer(uid, gid, mark))


# -- the message-level fast path -----------------------------------------------------------------
# One pattern for the common messages, matched from the first "IN="; anything it does not match
# in full goes to the token reader. "[^ ]" and "[0-9]" are much quicker in CPython's re than
# "\S", "\d" or small hex classes; values it lets through are checked when converted (int(),
# the address parser), and a failed check sends the line to the token reader too.
_FAST = re.compile(
    r"IN=([^ ]*) OUT=([^ ]*) (?:MAC=([^ ]*) )?SRC=([^ ]+) DST=([^ ]+) LEN=([0-9]+) "
    r"(?:TOS=0x([^ ]+) PREC=0x([^ ]+) TTL=([0-9]+) ID=([0-9]+) ((?:CE |DF |MF )*)"
    r"|TC=([0-9]+) HOPLIMIT=([0-9]+) FLOWLBL=([0-9]+) )"
    r"PROTO=(?:(TCP) SPT=([0-9]+) DPT=([0-9]+) "
    r"(?:SEQ=([0-9]+) ACK=([0-9]+) )?WINDOW=([0-9]+) RES=0x[0-9a-f][0-9a-f] "
    r"((?:(?:CWR|ECE|URG|ACK|PSH|RST|SYN|FIN|AE) )*)URGP=[0-9]+ (?:OPT \([0-9A-F]*\) )?"
    r"|(UDP|UDPLITE) SPT=([0-9]+) DPT=([0-9]+) LEN=[0-9]+ "
    r"|(ICMP|ICMPv6) TYPE=([0-9]+) CODE=([0-9]+) (?:ID=([0-9]+) SEQ=([0-9]+) )?(\[.*)?+"
    r"|(ESP|AH) SPI=0x([0-9a-f]+) )"
    r"(?:UID=([0-9]+) GID=([0-9]+) )?(?:MARK=0x([0-9a-f]+) )?"
)


def _fast_parse(
    raw: str,
    message: str,
    timestamp: datetime | None,
    host: str | None,
    uptime: float | None,
) -> LogRecord | None:
    """Read a common message with one regex match; None when it needs the token reader."""
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
        quoted, ipsec, spi, uid, gid, mark,
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
    uid_value = None if uid is None else int(uid)
    gid_value = None if gid is None else int(gid)
    mark_value = None if mark is None else int(mark, 16)
    # Positional arguments in field order: quicker than keywords or setting fields afterwards.
    if tcp is not None:
        return LogRecord(
            raw, timestamp, host, uptime, prefix_value,
            iin or None, out or None, None, None, mac_dst, mac_src, ethertype,
            family, src_addr, dst_addr, int(length), ttl_value, tos_value, id_value, flow_value,
            flags, None, "TCP", int(tspt), int(tdpt),
            _FLAG_SETS[tflags] if tflags in _FLAG_SETS else _flag_set(tflags), int(win),
            None if seq is None else int(seq), None if ack is None else int(ack), None,
            None, None, None, None, None, None, None,
            uid_value, gid_value, mark_value, False,
        )  # fmt: skip
    if udp is not None:
        return LogRecord(
            raw, timestamp, host, uptime, prefix_value,
            iin or None, out or None, None, None, mac_dst, mac_src, ethertype,
            family, src_addr, dst_addr, int(length), ttl_value, tos_value, id_value, flow_value,
            flags, None, udp, int(uspt), int(udpt),
            None, None, None, None, None, None, None, None, None, None, None, None,
            uid_value, gid_value, mark_value, False,
        )  # fmt: skip
    if ipsec is not None:
        return LogRecord(
            raw, timestamp, host, uptime, prefix_value,
            iin or None, out or None, None, None, mac_dst, mac_src, ethertype,
            family, src_addr, dst_addr, int(length), ttl_value, tos_value, id_value, flow_value,
            flags, None, ipsec, None, None, None, None, None, None, int(spi, 16),
            None, None, None, None, None, None, None,
            uid_value, gid_value, mark_value, False,
        )  # fmt: skip
    if (icmp == "ICMP") != (family == 4):
        return None
    icmp_type = int(itype)
    inner = mtu = None
    if icmp_type in _ICMP_QUOTING[family] and iid is None:
        # an error quotes the offending packet; without it (ulogd) the token reader judges
        parts = None if quoted is None else _quoted(quoted)
        if parts is None:
            return None
        inner, mtu, uid_value, gid_value, mark_value = parts
    elif quoted is not None:
        return None
    return LogRecord(
        raw, timestamp, host, uptime, prefix_value,
        iin or None, out or None, None, None, mac_dst, mac_src, ethertype,
        family, src_addr, dst_addr, int(length), ttl_value, tos_value, id_value, flow_value,
        flags, None, icmp, None, None, None, None, None, None, None,
        icmp_type, int(icode),
        None if iid is None else int(iid), None if iseq is None else int(iseq),
        None, mtu, inner,
        uid_value, gid_value, mark_value, False,
    )  # fmt: skip
