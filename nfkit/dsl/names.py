"""Built-in vocabulary: services, ICMP types, protocols, conntrack states.

The service table is nfkit's own (not ``/etc/services``) so a policy compiles the same on every
machine. A policy adds to it with ``service NAME = tcp PORTS[, udp PORTS]``.
"""

from __future__ import annotations

from types import MappingProxyType

#: name -> ((protocol, port), ...)
SERVICES: MappingProxyType[str, tuple[tuple[str, str], ...]] = MappingProxyType(
    {
        "bgp": (("tcp", "179"),),
        "dhcp": (("udp", "67-68"),),
        "dhcpv6": (("udp", "546-547"),),
        "dns": (("udp", "53"), ("tcp", "53")),
        "domain": (("udp", "53"), ("tcp", "53")),
        "ftp": (("tcp", "21"),),
        "http": (("tcp", "80"),),
        "http-alt": (("tcp", "8080"),),
        "https": (("tcp", "443"),),
        "http3": (("udp", "443"),),
        "imap": (("tcp", "143"),),
        "imaps": (("tcp", "993"),),
        "ipp": (("tcp", "631"),),
        "kerberos": (("udp", "88"), ("tcp", "88")),
        "ldap": (("tcp", "389"),),
        "ldaps": (("tcp", "636"),),
        "mdns": (("udp", "5353"),),
        "mqtt": (("tcp", "1883"),),
        "mysql": (("tcp", "3306"),),
        "nfs": (("tcp", "2049"), ("udp", "2049")),
        "ntp": (("udp", "123"),),
        "openvpn": (("udp", "1194"),),
        "pop3": (("tcp", "110"),),
        "pop3s": (("tcp", "995"),),
        "postgresql": (("tcp", "5432"),),
        "prometheus": (("tcp", "9090"),),
        "rdp": (("tcp", "3389"),),
        "redis": (("tcp", "6379"),),
        "rsync": (("tcp", "873"),),
        "sip": (("udp", "5060"), ("tcp", "5060")),
        "smb": (("tcp", "445"),),
        "smtp": (("tcp", "25"),),
        "smtps": (("tcp", "465"),),
        "snmp": (("udp", "161"),),
        "ssh": (("tcp", "22"),),
        "submission": (("tcp", "587"),),
        "syslog": (("udp", "514"),),
        "telnet": (("tcp", "23"),),
        "tftp": (("udp", "69"),),
        "vnc": (("tcp", "5900"),),
        "wireguard": (("udp", "51820"),),
    }
)

#: Protocols that carry ports.
PORT_PROTOCOLS = frozenset({"tcp", "udp", "sctp", "udplite"})
#: Protocols a policy may name (others by number).
PROTOCOLS: MappingProxyType[str, int] = MappingProxyType(
    {
        "tcp": 6,
        "udp": 17,
        "icmp": 1,
        "icmpv6": 58,
        "sctp": 132,
        "udplite": 136,
        "gre": 47,
        "esp": 50,
        "ah": 51,
    }
)

#: ICMP (IPv4) type names as nft spells them.
ICMP_TYPES: MappingProxyType[str, int] = MappingProxyType(
    {
        "echo-reply": 0,
        "destination-unreachable": 3,
        "source-quench": 4,
        "redirect": 5,
        "echo-request": 8,
        "router-advertisement": 9,
        "router-solicitation": 10,
        "time-exceeded": 11,
        "parameter-problem": 12,
        "timestamp-request": 13,
        "timestamp-reply": 14,
        "info-request": 15,
        "info-reply": 16,
        "address-mask-request": 17,
        "address-mask-reply": 18,
    }
)
#: ICMP destination-unreachable code names (nft ``icmp code``).
ICMP_CODES: MappingProxyType[str, int] = MappingProxyType(
    {
        "net-unreachable": 0,
        "host-unreachable": 1,
        "prot-unreachable": 2,
        "port-unreachable": 3,
        "frag-needed": 4,
        "net-prohibited": 9,
        "host-prohibited": 10,
        "admin-prohibited": 13,
    }
)
#: ICMPv6 type names as nft spells them.
ICMPV6_TYPES: MappingProxyType[str, int] = MappingProxyType(
    {
        "destination-unreachable": 1,
        "packet-too-big": 2,
        "time-exceeded": 3,
        "parameter-problem": 4,
        "echo-request": 128,
        "echo-reply": 129,
        "mld-listener-query": 130,
        "mld-listener-report": 131,
        "mld-listener-done": 132,
        "nd-router-solicit": 133,
        "nd-router-advert": 134,
        "nd-neighbor-solicit": 135,
        "nd-neighbor-advert": 136,
        "nd-redirect": 137,
        "router-renumbering": 138,
        "ind-neighbor-solicit": 141,
        "ind-neighbor-advert": 142,
        "mld2-listener-report": 143,
    }
)

#: ICMP type 3 code 4: fragmentation needed (IPv4 Path MTU discovery).
FRAG_NEEDED = (3, 4)
#: ICMPv6 packet too big (IPv6 Path MTU discovery).
PACKET_TOO_BIG = 2
#: ICMPv6 neighbour discovery types IPv6 cannot live without (RFC 4890 4.4.1).
NDP_TYPES = (133, 134, 135, 136)

CT_STATES = frozenset({"new", "established", "related", "invalid", "untracked"})
CT_STATUSES = frozenset({"dnat", "snat"})

RATE_UNITS: MappingProxyType[str, str] = MappingProxyType(
    {
        "s": "second",
        "sec": "second",
        "second": "second",
        "m": "minute",
        "min": "minute",
        "minute": "minute",
        "h": "hour",
        "hour": "hour",
        "d": "day",
        "day": "day",
    }
)


def icmp_type_name(version: int, number: int) -> str | None:
    """Return nft's name for an ICMP/ICMPv6 type number, or None."""
    table = ICMP_TYPES if version == 4 else ICMPV6_TYPES
    return next((name for name, value in table.items() if value == number), None)


def icmp_code_name(number: int) -> str | None:
    """Return nft's name for an ICMP destination-unreachable code, or None."""
    return next((name for name, value in ICMP_CODES.items() if value == number), None)
