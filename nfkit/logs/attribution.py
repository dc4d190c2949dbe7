"""Where a logged packet came from: the upstream gateway, a peer on the segment, or this host.

The link layer decides, not the source IP (which any peer can forge):

* ``local``      no ``IN=``: the host generated the packet itself (also a loopback or own MAC);
* ``forwarded``  both ``IN=`` and ``OUT=``: the host routed it;
* ``unknown``    no source MAC (tun, ppp, wireguard...), or no segment knowledge to compare with;
* ``upstream``   the source MAC is a gateway MAC: the packet came through the upstream router;
* ``peer``       any other source MAC: another host on the same L2 segment sent it, whatever
  source IP it claims. The upstream firewall never saw it.

When the segment lists no gateway MAC, a MAC'd packet from one of the own networks counts as
``peer`` and any other as ``upstream`` (an IP-based guess, corroborated by the TTL).

The TTL (IPv4) or hop limit (IPv6) corroborates the answer: senders start at 64, 128 or 255, so
``start - ttl`` is the number of routers passed. A peer is 0 hops away; traffic through the
gateway has passed at least the gateway. Disagreements are reported as *contradictions*:

* ``peer_routed``      a peer MAC but the TTL shows routers on the way (an unlisted router on the
  segment, or a gateway MAC missing from the segment);
* ``upstream_direct``  a gateway MAC, 0 hops, and a source that is not a gateway IP (the segment
  may list a peer's MAC as a gateway, or someone spoofs);
* ``peer_offsegment``  a peer MAC claiming a source outside the own networks (spoofing, or a
  second router on the segment).
"""

from __future__ import annotations

from typing import Final

from nfkit.logs.record import LogRecord
from nfkit.logs.segment import Segment

UPSTREAM: Final = "upstream"
PEER: Final = "peer"
LOCAL: Final = "local"
FORWARDED: Final = "forwarded"
UNKNOWN: Final = "unknown"
#: Every origin, in the order reports list them (peers first: the upstream cannot stop them).
ORIGINS: Final = (PEER, UPSTREAM, FORWARDED, UNKNOWN, LOCAL)

PEER_ROUTED: Final = "peer_routed"
UPSTREAM_DIRECT: Final = "upstream_direct"
PEER_OFFSEGMENT: Final = "peer_offsegment"
#: Contradiction codes and what each means.
CONTRADICTIONS: Final = {
    PEER_ROUTED: "peer MAC but the TTL shows routers on the way",
    UPSTREAM_DIRECT: "gateway MAC but 0 hops from a source that is not the gateway",
    PEER_OFFSEGMENT: "peer MAC claiming a source address outside the own networks",
}

_NULL_MAC: Final = "00:00:00:00:00:00"
_INITIAL_TTLS: Final = (64, 128, 255)


_HOPS: Final = {
    ttl: next(initial - ttl for initial in _INITIAL_TTLS if ttl <= initial) for ttl in range(256)
}


def hops(ttl: int | None) -> int | None:
    """Routers passed, assuming the sender started at the nearest of 64, 128 or 255."""
    if ttl is None or ttl < 0 or ttl > 255:
        return None
    for initial in _INITIAL_TTLS:
        if ttl <= initial:
            return initial - ttl
    return None  # pragma: no cover - ttl <= 255 always matches


class Attributor:
    """Attribute records against one :class:`Segment` (the sets are bound once, for speed)."""

    __slots__ = ("_gateway_ips", "_gateway_macs", "_own_macs", "segment")

    def __init__(self, segment: Segment) -> None:
        self.segment = segment
        self._gateway_macs = segment.gateway_macs
        self._own_macs = segment.own_macs | {_NULL_MAC}
        self._gateway_ips = segment.gateway_ips

    def origin(self, record: LogRecord) -> str:
        """Return the origin of ``record``: one of :data:`ORIGINS`."""
        origin = self.link_origin(record)
        if origin is not None:
            return origin
        return PEER if self.segment.contains(record.src) else UPSTREAM

    def link_origin(self, record: LogRecord) -> str | None:
        """The origin as the link layer alone gives it (interfaces, source MAC); None when
        the source address decides (a MAC'd packet, no gateway MAC known, own networks known:
        :meth:`origin` then says ``peer`` inside the own networks, ``upstream`` outside)."""
        if not record.in_iface:
            return LOCAL
        if record.out_iface:
            return FORWARDED
        mac = record.mac_src
        if not mac:
            return UNKNOWN
        if mac in self._gateway_macs:
            return UPSTREAM
        if mac in self._own_macs or record.in_iface == "lo":
            return LOCAL
        if self._gateway_macs:
            return PEER
        if not self.segment.networks:
            return UNKNOWN
        return None

    def contradiction(self, record: LogRecord, origin: str) -> str | None:
        """Return the contradiction code for ``record`` attributed to ``origin``, or None."""
        if origin == PEER:
            distance = hops(record.ttl)
            if distance is not None and distance > 0:
                return PEER_ROUTED
            if (
                self.segment.networks
                and record.src is not None
                and not self.segment.contains(record.src)
            ):
                return PEER_OFFSEGMENT
        elif origin == UPSTREAM and hops(record.ttl) == 0 and record.src not in self._gateway_ips:
            return UPSTREAM_DIRECT
        return None

    def attribute(self, record: LogRecord) -> tuple[str, str | None]:
        """Return ``(origin, contradiction or None)`` for ``record`` (the per-record fast path)."""
        if not record.in_iface:
            return LOCAL, None
        if record.out_iface:
            return FORWARDED, None
        mac = record.mac_src
        if not mac:
            return UNKNOWN, None
        ttl = record.ttl
        if mac in self._gateway_macs:
            if ttl is not None and _HOPS.get(ttl) == 0 and record.src not in self._gateway_ips:
                return UPSTREAM, UPSTREAM_DIRECT
            return UPSTREAM, None
        origin = self.origin(record)
        return origin, self.contradiction(record, origin)


def attribute(record: LogRecord, segment: Segment) -> str:
    """Return the origin of one record (convenience; use :class:`Attributor` in loops)."""
    return Attributor(segment).origin(record)
