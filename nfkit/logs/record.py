"""The typed record of one netfilter LOG line.

A ``LogRecord`` is built for every line read, so it is a plain slotted dataclass (not frozen):
measured on Python 3.11, frozen construction costs about four times as much. The parser's line
fast path (``nfkit.logs.fastparse._make_fast_line``) goes further: it makes the object with
``object.__new__`` and stores every slot itself, which costs half as much as the generated
``__init__``. A field added here must be stored there too (the corpus tests, which compare whole
records, fail with AttributeError otherwise).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from datetime import datetime
from typing import Any

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(slots=True, eq=True)
class LogRecord:
    """One packet as the kernel logged it. Fields the line does not carry are ``None``.

    ``spi`` is the Security Parameters Index of an AH or ESP header (``PROTO=ESP SPI=0x1001``;
    for IPv6, ``AH SPI=``/``ESP SPI=`` inside ``OPT ( ... )``), as an int.
    """

    raw: str = ""
    # wrapper (syslog / journal / dmesg)
    timestamp: datetime | None = None
    host: str | None = None
    uptime: float | None = None
    # kernel header
    prefix: str | None = None
    in_iface: str | None = None
    out_iface: str | None = None
    physin: str | None = None
    physout: str | None = None
    # link layer
    mac_dst: str | None = None
    mac_src: str | None = None
    ethertype: int | None = None
    # network layer
    family: int | None = None
    src: IPAddress | None = None
    dst: IPAddress | None = None
    length: int | None = None
    ttl: int | None = None
    tos: int | None = None
    ip_id: int | None = None
    flowlabel: int | None = None
    ip_flags: frozenset[str] | None = None
    frag_offset: int | None = None
    # transport layer
    proto: str | None = None
    spt: int | None = None
    dpt: int | None = None
    tcp_flags: frozenset[str] | None = None
    window: int | None = None
    seq: int | None = None
    ack: int | None = None
    spi: int | None = None
    icmp_type: int | None = None
    icmp_code: int | None = None
    icmp_id: int | None = None
    icmp_seq: int | None = None
    gateway: IPAddress | None = None
    mtu: int | None = None
    inner: LogRecord | None = None
    # trailer
    uid: int | None = None
    gid: int | None = None
    mark: int | None = None
    # the line was cut short (kernel 1 KiB limit, or ``INCOMPLETE [N bytes]``)
    truncated: bool = False

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict: addresses and times as strings, flag sets as sorted lists."""
        out: dict[str, Any] = {}
        for name in _FIELD_NAMES:
            value = getattr(self, name)
            if isinstance(value, LogRecord):
                value = value.to_dict()
            elif isinstance(value, frozenset):
                value = sorted(value)
            elif isinstance(value, datetime):
                value = value.isoformat()
            elif isinstance(value, ipaddress.IPv4Address | ipaddress.IPv6Address):
                value = str(value)
            out[name] = value
        return out


_FIELD_NAMES: tuple[str, ...] = tuple(LogRecord.__dataclass_fields__)

#: The attribute names of :class:`LogRecord`, in declaration order.
FIELD_NAMES = _FIELD_NAMES
