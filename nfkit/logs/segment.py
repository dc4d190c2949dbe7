"""The host's place on its network: own networks and MACs, and the upstream gateway's MACs.

A :class:`Segment` is what attribution needs to tell a packet that came *through the gateway*
(its source MAC is a gateway MAC) from one sent *by another host on the same L2 segment* (any
other MAC). It is built in one of three ways:

* :func:`discover` reads the running system with pyroute2 ``IPRoute`` (addresses, links, default
  routes and the neighbour table, optionally inside a network namespace);
* :func:`from_toml` reads a ``[segment]`` table, for logs of another host analysed offline::

      [segment]
      networks = ["192.0.2.0/24", "2001:db8:1::/64"]
      own_macs = ["02:00:00:00:00:10"]
      gateway_macs = ["02:00:00:00:00:01"]
      gateway_ips = ["192.0.2.1"]

* :meth:`Segment.from_values` takes the same values from command-line flags.
"""

from __future__ import annotations

import fcntl
import ipaddress
import os
import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nfkit.errors import ConfigError, DiscoveryError

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_MAC = re.compile(r"[0-9a-f]{2}(:[0-9a-f]{2}){5}\Z")
_SEGMENT_KEYS = frozenset({"networks", "own_macs", "gateway_macs", "gateway_ips"})


def normalize_mac(value: str) -> str:
    """Return ``value`` as a lower-case colon-separated MAC; raise ``ConfigError`` if not one."""
    mac = value.strip().lower().replace("-", ":")
    if not _MAC.match(mac):
        raise ConfigError(f"invalid MAC address {value!r} (expected aa:bb:cc:dd:ee:ff)")
    return mac


def parse_network(value: str) -> IPNetwork:
    """Return the network ``value`` (host bits allowed); raise ``ConfigError`` if it is not one."""
    try:
        return ipaddress.ip_network(value.strip(), strict=False)
    except ValueError as exc:
        raise ConfigError(f"invalid network {value!r}: {exc}") from None


def parse_address(value: str) -> IPAddress:
    """Return the IP address ``value``; raise ``ConfigError`` if it is not one."""
    try:
        return ipaddress.ip_address(value.strip())
    except ValueError as exc:
        raise ConfigError(f"invalid IP address {value!r}: {exc}") from None


@dataclass(frozen=True, slots=True)
class Segment:
    """Own networks, own MACs, gateway MACs and gateway IPs of one host."""

    networks: tuple[IPNetwork, ...] = ()
    own_macs: frozenset[str] = field(default_factory=frozenset)
    gateway_macs: frozenset[str] = field(default_factory=frozenset)
    gateway_ips: frozenset[IPAddress] = field(default_factory=frozenset)

    @classmethod
    def from_values(
        cls,
        networks: Iterable[str] = (),
        own_macs: Iterable[str] = (),
        gateway_macs: Iterable[str] = (),
        gateway_ips: Iterable[str] = (),
    ) -> Segment:
        """Build a segment from strings (CLI flags, TOML); raise ``ConfigError`` on a bad value."""
        return cls(
            networks=tuple(dict.fromkeys(parse_network(n) for n in networks)),
            own_macs=frozenset(normalize_mac(m) for m in own_macs),
            gateway_macs=frozenset(normalize_mac(m) for m in gateway_macs),
            gateway_ips=frozenset(parse_address(a) for a in gateway_ips),
        )

    @classmethod
    def from_mapping(cls, table: Mapping[str, Any], where: str = "[segment]") -> Segment:
        """Build a segment from a ``[segment]`` TOML table; raise ``ConfigError`` on bad content."""
        unknown = set(table) - _SEGMENT_KEYS
        if unknown:
            raise ConfigError(
                f"{where}: unknown key(s) {', '.join(sorted(unknown))} "
                f"(expected {', '.join(sorted(_SEGMENT_KEYS))})"
            )
        values: dict[str, list[str]] = {}
        for key in _SEGMENT_KEYS:
            raw = table.get(key, [])
            if isinstance(raw, str):
                raw = [raw]
            if not isinstance(raw, list) or not all(isinstance(item, str) for item in raw):
                raise ConfigError(f"{where}: {key} must be a list of strings")
            values[key] = raw
        try:
            return cls.from_values(**values)
        except ConfigError as exc:
            raise ConfigError(f"{where}: {exc}") from None

    def union(self, other: Segment) -> Segment:
        """Return a segment holding the values of both (config file plus command-line flags)."""
        return Segment(
            networks=tuple(dict.fromkeys(self.networks + other.networks)),
            own_macs=self.own_macs | other.own_macs,
            gateway_macs=self.gateway_macs | other.gateway_macs,
            gateway_ips=self.gateway_ips | other.gateway_ips,
        )

    def contains(self, address: IPAddress | None) -> bool:
        """True when ``address`` lies in one of the own networks."""
        if address is None:
            return False
        return any(address in net for net in self.networks if net.version == address.version)

    @property
    def is_empty(self) -> bool:
        """True when nothing is known (every MAC'd packet would be unattributable)."""
        return not (self.networks or self.own_macs or self.gateway_macs or self.gateway_ips)

    def to_dict(self) -> dict[str, list[str]]:
        """Return the segment as a JSON/TOML-ready mapping (sorted lists of strings)."""
        return {
            "networks": [str(n) for n in self.networks],
            "own_macs": sorted(self.own_macs),
            "gateway_macs": sorted(self.gateway_macs),
            "gateway_ips": sorted(str(a) for a in self.gateway_ips),
        }


def load_toml(path: str | Path) -> dict[str, Any]:
    """Read a TOML file; raise ``ConfigError`` with ``file:LINE`` when it cannot be used."""
    path = Path(path)
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: error: not UTF-8 text (byte {exc.start})") from None
    except RecursionError:
        raise ConfigError(f"{path}: error: invalid TOML: nested too deeply") from None
    except tomllib.TOMLDecodeError as exc:
        # tomllib says "... (at line 3, column 7)"; turn it into the usual file:LINE: prefix.
        match = re.search(r"\(at line (\d+), column (\d+)\)", str(exc))
        where = f"{path}:{match.group(1)}" if match else str(path)
        message = re.sub(r"\s*\(at line \d+, column \d+\)", "", str(exc))
        raise ConfigError(f"{where}: error: invalid TOML: {message}") from None


def from_toml(path: str | Path) -> Segment:
    """Read the ``[segment]`` table of a TOML file (an absent table gives an empty segment)."""
    data = load_toml(path)
    table = data.get("segment", {})
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: [segment] must be a table")
    return Segment.from_mapping(table, where=f"{path}: [segment]")


def discover(netns: str | None = None) -> Segment:
    """Read the segment of the running system (or of namespace ``netns``) with pyroute2.

    Own networks come from the global-scope addresses, own MACs from the links, gateway IPs from
    the default routes, and gateway MACs from the neighbour table (an entry exists only once the
    host has talked to its gateway). Raises ``DiscoveryError`` when netlink cannot be used.
    """
    try:
        from pyroute2 import IPRoute
    except ImportError as exc:  # pragma: no cover - dependency declared in pyproject
        raise DiscoveryError(f"pyroute2 is not available: {exc}") from None
    if netns is not None and not _netns_exists(netns):
        # pyroute2 would silently create a missing namespace: refuse instead.
        raise DiscoveryError(f"network namespace {netns!r} does not exist (see `ip netns list`)")
    try:
        # flags=0: open an existing namespace only (pyroute2's default O_CREAT makes one).
        ipr = IPRoute(netns=netns, flags=0) if netns is not None else IPRoute()
    except Exception as exc:  # pyroute2 raises OSError, NetlinkError, FileNotFoundError...
        where = f"namespace {netns!r}" if netns else "this host"
        raise DiscoveryError(f"cannot open netlink in {where}: {exc}") from None
    try:
        return _discover_with(ipr)
    except DiscoveryError:
        raise
    except Exception as exc:
        raise DiscoveryError(f"netlink query failed: {exc}") from None
    finally:
        ipr.close()


def _netns_exists(netns: str) -> bool:
    """True when ``netns`` names a namespace ``ip netns`` knows (or is a path to one).

    A namespace handle is a file (``/run/netns/NAME``, ``/proc/PID/ns/net``), never a
    directory: so ``""``, ``.`` and ``..`` name nothing.
    """
    if not netns or any(ord(char) < 32 for char in netns):
        return False
    if "/" in netns:
        return Path(netns).is_absolute() and _is_netns_handle(Path(netns))
    return any(_is_netns_handle(Path(base, netns)) for base in ("/run/netns", "/var/run/netns"))


#: ``ioctl(fd, NS_GET_NSTYPE)`` (linux/nsfs.h) and the answer for a network namespace.
_NS_GET_NSTYPE = 0xB703
_CLONE_NEWNET = 0x40000000


def _is_netns_handle(path: Path) -> bool:
    """True when ``path`` opens a network namespace (not any file: pyroute2, handed a plain
    file, fails and leaves an event loop that prints a traceback when collected)."""
    if not path.is_file():
        return False
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        return bool(fcntl.ioctl(fd, _NS_GET_NSTYPE) == _CLONE_NEWNET)
    except OSError:
        return False
    finally:
        os.close(fd)


def _discover_with(ipr: Any) -> Segment:
    """Query an open ``IPRoute``: addresses, links, default routes, neighbours."""
    loopback: set[int] = set()
    own_macs: set[str] = set()
    for link in ipr.get_links():
        name = link.get_attr("IFLA_IFNAME") or ""
        mac = link.get_attr("IFLA_ADDRESS")
        if name == "lo":
            loopback.add(link["index"])
            continue
        if mac and _MAC.match(mac.lower()) and mac != "00:00:00:00:00:00":
            own_macs.add(mac.lower())
    networks: list[IPNetwork] = []
    for msg in ipr.get_addr():
        if msg["index"] in loopback or msg.get("scope", 0) != 0:  # global scope only
            continue
        address = msg.get_attr("IFA_ADDRESS")
        if address:
            networks.append(ipaddress.ip_network(f"{address}/{msg['prefixlen']}", strict=False))
    gateway_ips: set[IPAddress] = set()
    gateway_macs: set[str] = set()
    for family in (2, 10):  # AF_INET, AF_INET6
        for route in ipr.get_routes(family=family):
            if route.get("dst_len", 0) != 0 or route.get_attr("RTA_DST"):
                continue
            gateway = route.get_attr("RTA_GATEWAY")
            if not gateway:
                multipath = route.get_attr("RTA_MULTIPATH") or []
                gateways = [hop.get_attr("RTA_GATEWAY") for hop in multipath]
            else:
                gateways = [gateway]
            for gw in gateways:
                if not gw:
                    continue
                gateway_ips.add(ipaddress.ip_address(gw.split("%")[0]))
                for neigh in ipr.get_neighbours(family=family):
                    if neigh.get_attr("NDA_DST") == gw:
                        lladdr = neigh.get_attr("NDA_LLADDR")
                        if lladdr and _MAC.match(lladdr.lower()):
                            gateway_macs.add(lladdr.lower())
    return Segment(
        networks=tuple(dict.fromkeys(networks)),
        own_macs=frozenset(own_macs),
        gateway_macs=frozenset(gateway_macs),
        gateway_ips=frozenset(gateway_ips),
    )
