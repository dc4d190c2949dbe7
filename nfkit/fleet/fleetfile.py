"""The fleet file: which segment each host is on, and its gateway MAC(s).

Attribution needs a host's segment; on a fleet the host comes from the log wrapper (the syslog
host name), so a TOML file maps host names to segments::

    # Values shared by every host of a segment (same keys as a [segment] table).
    [segments.fra1-r12]
    networks = ["192.0.2.0/24"]
    gateway_macs = ["02:00:00:00:00:01"]
    gateway_ips = ["192.0.2.1"]

    [segments.ams2]
    gateway_macs = ["02:00:00:00:01:01", "02:00:00:00:01:02"]
    hosts = ["ams-web1", "ams-web2"]      # members may be listed here...

    [hosts]
    db1 = "fra1-r12"                      # ... or here, by segment name

    [hosts.web1]                          # or a table: the segment plus this host's own values
    segment = "fra1-r12"
    own_macs = ["02:00:00:00:00:10"]

A host's segment is its segment's values plus its own. Host names match case-insensitively,
but exactly otherwise: ``web1`` is not ``web1.example.net``. Hosts that are not in the file are
never guessed: their packets are attributed with an empty segment (MAC'd packets come out
``unknown``) and they are listed as unmapped.

The same file serves ``nfkit report --fleet`` (which needs only the host -> segment names, see
:func:`nfkit.logs.fleet_trends.load_host_segments`); a segment name without a
``[segments.NAME]`` table is allowed there and by :func:`from_toml`, but summarising logs with
such a fleet raises ``ConfigError`` (:meth:`Fleet.check_attribution`): nothing to attribute with.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nfkit.errors import ConfigError
from nfkit.logs.segment import Segment, load_toml

__all__ = ["Fleet", "FleetHost", "from_toml"]

_TOP_KEYS = frozenset({"segments", "hosts"})


@dataclass(frozen=True, slots=True)
class FleetHost:
    """One host of the fleet: its name as the fleet file spells it, segment name and values."""

    name: str
    segment_name: str
    segment: Segment


class Fleet:
    """Hosts and segments read from a fleet file (see the module docstring)."""

    def __init__(self, segments: Mapping[str, Segment], hosts: Mapping[str, FleetHost]) -> None:
        self.segments: dict[str, Segment] = dict(segments)
        self.hosts: dict[str, FleetHost] = {}
        for host in hosts.values():
            key = host.name.lower()
            if key in self.hosts:
                raise ConfigError(
                    f"hosts {self.hosts[key].name!r} and {host.name!r} differ only in case"
                )
            self.hosts[key] = host

    def host(self, name: str | None) -> FleetHost | None:
        """The host called ``name`` in a log (case-insensitive), or None if it is not listed."""
        if name is None:
            return None
        return self.hosts.get(name.lower())

    def check_attribution(self) -> None:
        """Raise ``ConfigError`` naming the hosts whose segment has no gateway MAC nor network."""
        empty = [h.name for h in self if not (h.segment.gateway_macs or h.segment.networks)]
        if empty:
            shown = ", ".join(empty[:10]) + (
                f" and {len(empty) - 10} more" if len(empty) > 10 else ""
            )
            raise ConfigError(
                f"fleet: no gateway_macs and no networks for host(s) {shown}: give their "
                "[segments.NAME] table these values, or the host's own table"
            )

    def __iter__(self) -> Iterator[FleetHost]:
        return iter(sorted(self.hosts.values(), key=lambda h: h.name))

    def __len__(self) -> int:
        return len(self.hosts)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Fleet):
            return NotImplemented
        return self.segments == other.segments and self.hosts == other.hosts

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Fleet({len(self.segments)} segments, {len(self.hosts)} hosts)"

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], where: str = "fleet") -> Fleet:
        """Build a fleet from parsed TOML; raise ``ConfigError`` naming the bad table."""
        unknown = set(data) - _TOP_KEYS
        if unknown:
            raise ConfigError(
                f"{where}: unknown table(s) {', '.join(sorted(unknown))} "
                "(expected [segments.NAME] and [hosts])"
            )
        raw_segments = data.get("segments", {})
        if not isinstance(raw_segments, dict):
            raise ConfigError(f"{where}: segments must be a table of [segments.NAME] tables")
        segments: dict[str, Segment] = {}
        members: dict[str, str] = {}
        for name, table in raw_segments.items():
            place = f"{where}: [segments.{name}]"
            if not isinstance(table, dict):
                raise ConfigError(f"{place} must be a table")
            values = dict(table)
            listed = values.pop("hosts", [])
            if not isinstance(listed, list) or not all(isinstance(h, str) for h in listed):
                raise ConfigError(f"{place}: hosts must be a list of host names")
            segments[name] = Segment.from_mapping(values, where=place)
            for host in listed:
                if members.setdefault(host, name) != name:
                    raise ConfigError(
                        f"{where}: host {host!r} is in two segments ({members[host]}, {name})"
                    )
        raw_hosts = data.get("hosts", {})
        if not isinstance(raw_hosts, dict):
            raise ConfigError(f"{where}: hosts must be a table")
        hosts: dict[str, FleetHost] = {}
        for name, value in raw_hosts.items():
            hosts[name] = _host(name, value, segments, where)
            listed_in = members.get(name)
            if listed_in is not None and listed_in != hosts[name].segment_name:
                raise ConfigError(
                    f"{where}: host {name!r} is in two segments "
                    f"({listed_in}, {hosts[name].segment_name})"
                )
        for name, segment_name in members.items():
            if name not in hosts:
                hosts[name] = _host(name, segment_name, segments, where)
        if not hosts:
            raise ConfigError(f"{where}: no hosts (add a [hosts] table)")
        try:
            return cls(segments, hosts)
        except ConfigError as exc:
            raise ConfigError(f"{where}: [hosts]: {exc}") from None


def _host(name: str, value: object, segments: Mapping[str, Segment], where: str) -> FleetHost:
    place = f"{where}: [hosts.{name}]"
    if not name.strip() or any(c.isspace() for c in name):
        raise ConfigError(f"{where}: [hosts]: invalid host name {name!r}")
    if isinstance(value, str):
        table: dict[str, Any] = {"segment": value}
    elif isinstance(value, dict):
        table = dict(value)
    else:
        raise ConfigError(f"{place}: must be a segment name or a table with segment = NAME")
    segment_name = table.pop("segment", None)
    if not isinstance(segment_name, str) or not segment_name:
        raise ConfigError(f"{place}: segment = NAME is required")
    own = Segment.from_mapping(table, where=place)
    segment = segments.get(segment_name, Segment()).union(own)
    return FleetHost(name=name, segment_name=segment_name, segment=segment)


def from_toml(path: str | Path) -> Fleet:
    """Read a fleet file; raise ``ConfigError`` (``FILE:LINE: error: ...`` for bad TOML)."""
    return Fleet.from_mapping(load_toml(path), where=str(path))
