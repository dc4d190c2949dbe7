"""Mergeable streaming aggregates of log records: the :class:`Summary`.

Everything a report shows is derived from a handful of counters that add up: summarising a
stream in two parts and merging gives exactly the summary of the whole stream (tested with
hypothesis). So runs can be split across processes, hosts or days and merged afterwards, and a
``Summary`` round-trips through JSON (:meth:`Summary.to_dict` / :meth:`Summary.from_dict`).

Per-record work happens in :meth:`Summary.add` only.

Scan detection keeps, per source and per time slot (5 minutes by default), the set of
``(destination, port)`` pairs it touched. A window (1 hour by default) slides over the slots one
slot at a time; the largest number of distinct ports on one destination inside a window is a
*vertical* scan, the largest number of distinct destinations for one port a *horizontal* sweep.
Danger levels 1-5 start at :data:`PORT_LEVELS` distinct ports and :data:`HOST_LEVELS` distinct
hosts. Sets union, so the detection stays mergeable.

ICMP fragmentation-needed (type 3 code 4) and ICMPv6 packet-too-big (type 2) never count as
attacks: they are Path MTU discovery; a dropped one is reported as ``pmtud_blackhole``.
"""

from __future__ import annotations

import bisect
import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from nfkit.errors import ConfigError
from nfkit.logprefix import DEFAULT_TAG, parse_prefix
from nfkit.logs import attribution as attr
from nfkit.logs.record import LogRecord
from nfkit.logs.segment import Segment, load_toml

#: Distinct destination ports from one source to one host inside a window, for levels 1-5.
#: psad counts packets (5/15/150/1,500/10,000); distinct ports are the sharper signal, and five
#: different closed ports within an hour is already more than a misconfigured client does.
PORT_LEVELS: tuple[int, ...] = (5, 15, 50, 250, 1000)
#: Distinct destination hosts for one port from one source inside a window (psad's values).
HOST_LEVELS: tuple[int, ...] = (10, 20, 50, 100, 500)
SLOT_SECONDS = 300
WINDOW_SECONDS = 3600
#: Evidence lines kept per finding (the earliest ones, so merging keeps the same).
EVIDENCE = 5

DROP = "drop"
ACCEPT = "accept"
LOGONLY = "log"
UNKNOWN_VERDICT = "unknown"

_PORT_PROTOS = frozenset({"tcp", "udp", "udplite", "sctp", "dccp"})
_DROP_WORDS = ("drop", "reject", "deny", "block", "invalid", "refuse")
_ACCEPT_WORDS = ("accept", "allow", "pass")
_SUMMARY_KEYS = frozenset(
    {
        "tags",
        "invalid_prefixes",
        "slot_seconds",
        "window_seconds",
        "port_levels",
        "host_levels",
        "be_liberal_min_acks",
    }
)


@dataclass(frozen=True, slots=True)
class SummaryConfig:
    """What a :class:`Summary` needs to know besides the records; equal configs merge."""

    segment: Segment = field(default_factory=Segment)
    #: nfkit log-prefix tags to recognise (``TAG:CHAIN:VERDICT[:LABEL]``).
    tags: frozenset[str] = frozenset({DEFAULT_TAG})
    #: Prefix substrings (case-insensitive) marking other tools' INVALID-state drop rules.
    invalid_prefixes: tuple[str, ...] = ("invalid",)
    slot_seconds: int = SLOT_SECONDS
    window_seconds: int = WINDOW_SECONDS
    port_levels: tuple[int, ...] = PORT_LEVELS
    host_levels: tuple[int, ...] = HOST_LEVELS
    #: INVALID-dropped TCP ACKs needed before ``be_liberal`` is recommended.
    be_liberal_min_acks: int = 3

    @classmethod
    def from_toml(cls, path: str | Path) -> SummaryConfig:
        """Read ``[segment]`` and ``[summary]`` from a TOML file; raise ``ConfigError``."""
        from nfkit.logs.segment import from_toml

        segment = from_toml(path)
        table = load_toml(path).get("summary", {})
        if not isinstance(table, dict):
            raise ConfigError(f"{path}: [summary] must be a table")
        return cls.from_mapping(table, segment=segment, where=f"{path}: [summary]")

    @classmethod
    def from_mapping(
        cls, table: Mapping[str, Any], segment: Segment | None = None, where: str = "[summary]"
    ) -> SummaryConfig:
        """Build a config from a ``[summary]`` table; raise ``ConfigError`` on bad values."""
        unknown = set(table) - _SUMMARY_KEYS
        if unknown:
            raise ConfigError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")

        def strings(key: str, default: Iterable[str]) -> tuple[str, ...]:
            value = table.get(key, list(default))
            if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
                raise ConfigError(f"{where}: {key} must be a list of non-empty strings")
            return tuple(value)

        def positive(key: str, default: int) -> int:
            value = table.get(key, default)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ConfigError(f"{where}: {key} must be a positive integer")
            return value

        def levels(key: str, default: tuple[int, ...]) -> tuple[int, ...]:
            value = table.get(key, list(default))
            if (
                not isinstance(value, list)
                or len(value) != 5
                or not all(isinstance(v, int) and not isinstance(v, bool) for v in value)
                or any(v <= 0 for v in value)
                or value != sorted(set(value))
            ):
                raise ConfigError(f"{where}: {key} must be five increasing positive integers")
            return tuple(value)

        slot = positive("slot_seconds", SLOT_SECONDS)
        window = positive("window_seconds", WINDOW_SECONDS)
        if window % slot:
            raise ConfigError(f"{where}: window_seconds must be a multiple of slot_seconds")
        return cls(
            segment=segment or Segment(),
            tags=frozenset(strings("tags", [DEFAULT_TAG])),
            invalid_prefixes=tuple(p.lower() for p in strings("invalid_prefixes", ["invalid"])),
            slot_seconds=slot,
            window_seconds=window,
            port_levels=levels("port_levels", PORT_LEVELS),
            host_levels=levels("host_levels", HOST_LEVELS),
            be_liberal_min_acks=positive("be_liberal_min_acks", 3),
        )

    def with_segment(self, segment: Segment) -> SummaryConfig:
        """Return a copy using ``segment``."""
        return replace(self, segment=segment)


@dataclass(slots=True)
class SourceStats:
    """What one source address did (mergeable counters)."""

    packets: int = 0
    first: float | None = None
    last: float | None = None
    origins: dict[str, int] = field(default_factory=dict)
    macs: dict[str, int] = field(default_factory=dict)
    ports: dict[str, int] = field(default_factory=dict)
    protos: dict[str, int] = field(default_factory=dict)
    prefixes: dict[str, int] = field(default_factory=dict)
    contradictions: dict[str, int] = field(default_factory=dict)

    @property
    def origin(self) -> str:
        """The origin most of its packets had (ties broken by :data:`attribution.ORIGINS`)."""
        if not self.origins:
            return attr.UNKNOWN
        return max(attr.ORIGINS, key=lambda o: (self.origins.get(o, 0), -attr.ORIGINS.index(o)))

    @property
    def mac(self) -> str | None:
        """The source MAC it used most, or None."""
        if not self.macs:
            return None
        return min(self.macs, key=lambda m: (-self.macs[m], m))


@dataclass(slots=True)
class Finding:
    """Counters plus the earliest evidence lines for one diagnosis (INVALID drops, PMTUD)."""

    packets: int = 0
    by_prefix: dict[str, int] = field(default_factory=dict)
    flows: set[str] = field(default_factory=set)
    #: ``(time, raw line)``, the :data:`EVIDENCE` smallest, sorted.
    evidence: list[tuple[float, str]] = field(default_factory=list)

    def add(self, prefix: str, time: float | None, raw: str, flow: str | None) -> None:
        """Count one packet."""
        self.packets += 1
        self.by_prefix[prefix] = self.by_prefix.get(prefix, 0) + 1
        if flow is not None:
            self.flows.add(flow)
        item = (time if time is not None else 0.0, raw)
        if len(self.evidence) < EVIDENCE or item < self.evidence[-1]:
            bisect.insort(self.evidence, item)
            del self.evidence[EVIDENCE:]

    def merge(self, other: Finding) -> None:
        """Add ``other`` into this finding."""
        self.packets += other.packets
        _add_counts(self.by_prefix, other.by_prefix)
        self.flows |= other.flows
        self.evidence = sorted(self.evidence + other.evidence)[:EVIDENCE]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "packets": self.packets,
            "by_prefix": dict(sorted(self.by_prefix.items())),
            "flows": sorted(self.flows),
            "evidence": [[t, raw] for t, raw in self.evidence],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Finding:
        """Inverse of :meth:`to_dict`."""
        return cls(
            packets=int(data["packets"]),
            by_prefix={str(k): int(v) for k, v in data["by_prefix"].items()},
            flows={str(f) for f in data["flows"]},
            evidence=sorted((float(t), str(raw)) for t, raw in data["evidence"]),
        )


def _add_counts(into: dict[str, int], other: Mapping[str, int]) -> None:
    for key, value in other.items():
        into[key] = into.get(key, 0) + value


def _min(a: float | None, b: float | None) -> float | None:
    return b if a is None else a if b is None else min(a, b)


def _max(a: float | None, b: float | None) -> float | None:
    return b if a is None else a if b is None else max(a, b)


def iso(time: float | None) -> str | None:
    """Epoch seconds as an ISO 8601 UTC string with microseconds, or None."""
    if time is None:
        return None
    return datetime.fromtimestamp(time, UTC).isoformat(timespec="microseconds")


def from_iso(text: str | None) -> float | None:
    """Inverse of :func:`iso`."""
    if text is None:
        return None
    return round(datetime.fromisoformat(text).timestamp(), 6)


def _level(count: int, thresholds: tuple[int, ...]) -> int:
    return bisect.bisect_right(thresholds, count)


class Summary:
    """Mergeable aggregate of log records; see the module docstring."""

    def __init__(self, config: SummaryConfig | None = None) -> None:
        self.config = config or SummaryConfig()
        self.lines = 0
        self.records = 0
        self.unparsed = 0
        self.skipped = 0
        self.by_origin: dict[str, int] = {}
        self.sources: dict[str, SourceStats] = {}
        self.ports: dict[str, int] = {}
        self.prefixes: dict[str, int] = {}
        #: origin -> "proto/port" -> verdict -> packets (upstream effectiveness).
        self.origin_ports: dict[str, dict[str, dict[str, int]]] = {}
        #: slot -> origin -> packets (the chart).
        self.timeline: dict[int, dict[str, int]] = {}
        #: source -> slot -> {(destination, "proto/port")} (scan detection).
        self.activity: dict[str, dict[int, set[tuple[str, str]]]] = {}
        self.invalid = Finding()
        self.invalid_acks = Finding()
        self.pmtud = Finding()
        self.pmtud_allowed = 0
        self._attributor = attr.Attributor(self.config.segment)
        self._prefix_cache: dict[str, tuple[str, bool]] = {}

    # -- feeding --------------------------------------------------------------------------
    def classify_prefix(self, prefix: str) -> tuple[str, bool]:
        """Return ``(verdict, is_invalid_rule)`` for a log prefix (cached)."""
        cached = self._prefix_cache.get(prefix)
        if cached is not None:
            return cached
        info = parse_prefix(prefix, self.config.tags)
        if info is not None:
            verdict = DROP if info.is_drop else info.verdict
            invalid = info.is_invalid_drop
        else:
            low = prefix.lower()
            invalid = any(marker in low for marker in self.config.invalid_prefixes)
            if any(word in low for word in _ACCEPT_WORDS):
                verdict = ACCEPT
            elif invalid or any(word in low for word in _DROP_WORDS):
                verdict = DROP
            else:
                verdict = UNKNOWN_VERDICT
        result = (verdict, invalid)
        self._prefix_cache[prefix] = result
        return result

    def add(self, record: LogRecord) -> None:
        """Count one record (the only per-record work; keep it tight)."""
        self.records += 1
        origin, contradiction = self._attributor.attribute(record)
        self.by_origin[origin] = self.by_origin.get(origin, 0) + 1
        prefix = (record.prefix or "").strip()
        self.prefixes[prefix] = self.prefixes.get(prefix, 0) + 1
        verdict, invalid = self.classify_prefix(prefix)
        stamp = record.timestamp
        time = round(stamp.timestamp(), 6) if stamp is not None else None
        slot = int(time // self.config.slot_seconds) if time is not None else 0
        per_slot = self.timeline.get(slot)
        if per_slot is None:
            per_slot = self.timeline[slot] = {}
        per_slot[origin] = per_slot.get(origin, 0) + 1

        proto = (record.proto or "").lower() or "?"
        icmp_type = record.icmp_type
        src = str(record.src) if record.src is not None else None
        dst = str(record.dst) if record.dst is not None else None
        if icmp_type is not None and (
            (icmp_type == 3 and record.icmp_code == 4 and proto == "icmp")
            or (icmp_type == 2 and proto == "icmpv6")
        ):
            # Path MTU discovery: never an attack; dropping it is a hazard.
            if verdict in (DROP, UNKNOWN_VERDICT):
                self.pmtud.add(prefix, time, record.raw, f"{src}>{dst}")
            else:
                self.pmtud_allowed += 1
            return

        dpt = record.dpt
        portkey: str | None
        if dpt is not None:
            portkey = dpt_key = f"{proto}/{dpt}"
            self.ports[dpt_key] = self.ports.get(dpt_key, 0) + 1
        elif icmp_type is not None:
            portkey = f"{proto}/{icmp_type}"
        else:
            portkey = None

        if invalid:
            flow = f"{src}:{record.spt}>{dst}:{dpt}" if proto == "tcp" else None
            self.invalid.add(prefix, time, record.raw, flow)
            flags = record.tcp_flags
            if proto == "tcp" and flags and "ACK" in flags and "SYN" not in flags:
                self.invalid_acks.add(prefix, time, record.raw, flow)

        if portkey is not None:
            by_port = self.origin_ports.get(origin)
            if by_port is None:
                by_port = self.origin_ports[origin] = {}
            verdicts = by_port.get(portkey)
            if verdicts is None:
                verdicts = by_port[portkey] = {}
            verdicts[verdict] = verdicts.get(verdict, 0) + 1

        if src is None:
            return
        stats = self.sources.get(src)
        if stats is None:
            stats = self.sources[src] = SourceStats()
        stats.packets += 1
        if time is not None:
            if stats.first is None or time < stats.first:
                stats.first = time
            if stats.last is None or time > stats.last:
                stats.last = time
        stats.origins[origin] = stats.origins.get(origin, 0) + 1
        mac = record.mac_src
        if mac:
            stats.macs[mac] = stats.macs.get(mac, 0) + 1
        stats.protos[proto] = stats.protos.get(proto, 0) + 1
        stats.prefixes[prefix] = stats.prefixes.get(prefix, 0) + 1
        if contradiction is not None:
            stats.contradictions[contradiction] = stats.contradictions.get(contradiction, 0) + 1
        if dpt is not None and portkey is not None:
            stats.ports[portkey] = stats.ports.get(portkey, 0) + 1
        if portkey is not None and dst is not None and origin != attr.LOCAL:
            slots = self.activity.get(src)
            if slots is None:
                slots = self.activity[src] = {}
            touched = slots.get(slot)
            if touched is None:
                touched = slots[slot] = set()
            touched.add((dst, portkey))

    def add_lines(self, lines: Iterable[str], since: datetime | None = None) -> None:
        """Parse and count ``lines``; records older than ``since`` are counted as skipped."""
        from nfkit.logs.parser import parse_line

        add = self.add
        cutoff = since.timestamp() if since is not None else None
        for line in lines:
            self.lines += 1
            record = parse_line(line)
            if record is None:
                self.unparsed += 1
                continue
            if (
                cutoff is not None
                and record.timestamp is not None
                and (record.timestamp.timestamp() < cutoff)
            ):
                self.skipped += 1
                continue
            add(record)

    # -- merging --------------------------------------------------------------------------
    def merge(self, other: Summary) -> Summary:
        """Add ``other`` into this summary and return it; the configs must be equal."""
        if other.config != self.config:
            raise ValueError("cannot merge summaries made with different configurations")
        self.lines += other.lines
        self.records += other.records
        self.unparsed += other.unparsed
        self.skipped += other.skipped
        _add_counts(self.by_origin, other.by_origin)
        _add_counts(self.ports, other.ports)
        _add_counts(self.prefixes, other.prefixes)
        for address, theirs in other.sources.items():
            mine = self.sources.get(address)
            if mine is None:
                mine = self.sources[address] = SourceStats()
            mine.packets += theirs.packets
            mine.first = _min(mine.first, theirs.first)
            mine.last = _max(mine.last, theirs.last)
            for name in ("origins", "macs", "ports", "protos", "prefixes", "contradictions"):
                _add_counts(getattr(mine, name), getattr(theirs, name))
        for origin, by_port in other.origin_ports.items():
            mine_ports = self.origin_ports.setdefault(origin, {})
            for portkey, verdicts in by_port.items():
                _add_counts(mine_ports.setdefault(portkey, {}), verdicts)
        for slot, origins in other.timeline.items():
            _add_counts(self.timeline.setdefault(slot, {}), origins)
        for address, slots in other.activity.items():
            mine_slots = self.activity.setdefault(address, {})
            for slot, touched in slots.items():
                mine_slots.setdefault(slot, set()).update(touched)
        self.invalid.merge(other.invalid)
        self.invalid_acks.merge(other.invalid_acks)
        self.pmtud.merge(other.pmtud)
        self.pmtud_allowed += other.pmtud_allowed
        return self

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Summary):
            return NotImplemented
        return self.config == other.config and self.to_dict() == other.to_dict()

    __hash__ = None  # type: ignore[assignment]

    # -- derived views ----------------------------------------------------------------------
    def sorted_sources(self) -> list[tuple[str, SourceStats]]:
        """Sources, peers first (the upstream cannot stop them), then by packets."""
        order = {origin: i for i, origin in enumerate(attr.ORIGINS)}
        return sorted(
            self.sources.items(),
            key=lambda item: (order.get(item[1].origin, 99), -item[1].packets, item[0]),
        )

    def scans(self) -> list[dict[str, Any]]:
        """Vertical scans and horizontal sweeps with level >= 1, most dangerous first."""
        span = self.config.window_seconds // self.config.slot_seconds
        found: list[dict[str, Any]] = []
        for source, slots in self.activity.items():
            stats = self.sources.get(source, SourceStats())
            # Cheap bound first: a source that never touched enough ports or hosts is no scan.
            everything = set().union(*slots.values())
            if (
                len({p for _, p in everything}) < self.config.port_levels[0]
                and len({d for d, _ in everything}) < self.config.host_levels[0]
            ):
                continue
            best: dict[tuple[str, str], tuple[int, int, set[str]]] = {}
            ordered = sorted(slots)
            for i, start in enumerate(ordered):
                window: set[tuple[str, str]] = set()
                for slot in ordered[i:]:
                    if slot >= start + span:
                        break
                    window |= slots[slot]
                ports_by_host: dict[str, set[str]] = {}
                hosts_by_port: dict[str, set[str]] = {}
                for dst, portkey in window:
                    if portkey.split("/", 1)[0] in _PORT_PROTOS:
                        ports_by_host.setdefault(dst, set()).add(portkey)
                    hosts_by_port.setdefault(portkey, set()).add(dst)
                for dst, ports in ports_by_host.items():
                    key = ("vertical", dst)
                    if len(ports) > best.get(key, (0, 0, set()))[0]:
                        best[key] = (len(ports), start, ports)
                for portkey, hosts in hosts_by_port.items():
                    key = ("horizontal", portkey)
                    if len(hosts) > best.get(key, (0, 0, set()))[0]:
                        best[key] = (len(hosts), start, hosts)
            for (kind, target), (count, start, items) in best.items():
                levels = self.config.port_levels if kind == "vertical" else self.config.host_levels
                level = _level(count, levels)
                if level == 0:
                    continue
                origin = stats.origin
                sample = sorted(items, key=_natural)[:20]
                found.append(
                    {
                        "source": source,
                        "origin": origin,
                        "mac": stats.mac if origin == attr.PEER else None,
                        "kind": kind,
                        "target": target,
                        "distinct": count,
                        "level": level,
                        "window_start": iso(start * self.config.slot_seconds) if start else None,
                        "window_seconds": self.config.window_seconds,
                        "sample": sample,
                    }
                )
        order = {origin: i for i, origin in enumerate(attr.ORIGINS)}
        found.sort(
            key=lambda s: (order.get(s["origin"], 99), -s["level"], -s["distinct"], s["source"])
        )
        return found

    def upstream(self) -> dict[str, dict[str, int]]:
        """What came through the gateway, by "proto/port" then verdict."""
        by_port = self.origin_ports.get(attr.UPSTREAM, {})
        return {port: dict(sorted(verdicts.items())) for port, verdicts in by_port.items()}

    def recommendations(self) -> list[dict[str, Any]]:
        """Actionable findings: ``pmtud_blackhole`` first, then ``be_liberal``, then others."""
        out: list[dict[str, Any]] = []
        if self.pmtud.packets:
            rules = _rules(self.pmtud.by_prefix)
            out.append(
                {
                    "code": "pmtud_blackhole",
                    "severity": "critical",
                    "message": (
                        f"PATH MTU DISCOVERY IS BROKEN: {self.pmtud.packets} ICMP "
                        "fragmentation-needed / ICMPv6 packet-too-big packet(s) were logged by "
                        f"drop rule(s) {rules}. Connections that send full-size packets will "
                        "hang. Accept ICMP type 3 code 4 and ICMPv6 type 2 before any drop "
                        "rule, including the conntrack INVALID drop."
                    ),
                    "prefixes": dict(sorted(self.pmtud.by_prefix.items())),
                    "packets": self.pmtud.packets,
                    "evidence": [raw for _, raw in self.pmtud.evidence],
                }
            )
        acks = self.invalid_acks
        if acks.packets >= self.config.be_liberal_min_acks:
            rules = _rules(acks.by_prefix)
            out.append(
                {
                    "code": "be_liberal",
                    "severity": "warning",
                    "message": (
                        f"{acks.packets} TCP ACK packet(s) in {len(acks.flows)} established "
                        f"flow(s) were dropped as INVALID by {rules}: conntrack's TCP window "
                        "tracking rejects them (window scaling, offloading, asymmetric routes). "
                        "Set net.netfilter.nf_conntrack_tcp_be_liberal=1 after the rules load."
                    ),
                    "sysctl": "net.netfilter.nf_conntrack_tcp_be_liberal=1",
                    "packets": acks.packets,
                    "flows": len(acks.flows),
                    "prefixes": dict(sorted(acks.by_prefix.items())),
                    "evidence": [raw for _, raw in acks.evidence],
                }
            )
        peers = [s for s in self.scans() if s["origin"] == attr.PEER]
        if peers:
            who = ", ".join(sorted({f"{s['source']} ({s['mac']})" for s in peers}))
            out.append(
                {
                    "code": "peer_attack",
                    "severity": "warning",
                    "message": (
                        f"Hosts on the local segment scanned this host: {who}. The upstream "
                        "firewall cannot stop them; filter by MAC or isolate the segment."
                    ),
                }
            )
        contradictions: dict[str, int] = {}
        for stats in self.sources.values():
            _add_counts(contradictions, stats.contradictions)
        if contradictions:
            what = "; ".join(
                f"{attr.CONTRADICTIONS.get(code, code)}: {n}"
                for code, n in sorted(contradictions.items())
            )
            out.append(
                {
                    "code": "segment_mismatch",
                    "severity": "info",
                    "message": (
                        f"Attribution and TTL disagree ({what}). Check the gateway MACs in the "
                        "segment configuration."
                    ),
                    "contradictions": dict(sorted(contradictions.items())),
                }
            )
        return out

    def port_table(self) -> list[dict[str, Any]]:
        """Per destination port: packets and distinct sources, busiest first."""
        sources: dict[str, int] = {}
        for stats in self.sources.values():
            for portkey in stats.ports:
                sources[portkey] = sources.get(portkey, 0) + 1
        return [
            {"port": portkey, "packets": packets, "sources": sources.get(portkey, 0)}
            for portkey, packets in sorted(self.ports.items(), key=lambda kv: (-kv[1], kv[0]))
        ]

    @property
    def is_empty(self) -> bool:
        """True when no record was counted."""
        return self.records == 0 and self.unparsed == 0

    # -- JSON ---------------------------------------------------------------------------------
    def to_dict(self, top: int = 10) -> dict[str, Any]:
        """The JSON contract (see docs/summaries.md); :meth:`from_dict` reads it back."""
        sources = []
        for address, stats in self.sorted_sources():
            origin = stats.origin
            sources.append(
                {
                    "address": address,
                    "origin": origin,
                    "mac": stats.mac if origin == attr.PEER else None,
                    "packets": stats.packets,
                    "first_seen": iso(stats.first),
                    "last_seen": iso(stats.last),
                    "ports": dict(_top(stats.ports, top)),
                    "protocols": dict(sorted(stats.protos.items())),
                    "prefixes": dict(sorted(stats.prefixes.items())),
                    "origins": dict(sorted(stats.origins.items())),
                    "macs": dict(sorted(stats.macs.items())),
                    "all_ports": dict(sorted(stats.ports.items(), key=_natural_item)),
                    "contradictions": dict(sorted(stats.contradictions.items())),
                }
            )
        slot_seconds = self.config.slot_seconds
        return {
            "lines": self.lines,
            "records": self.records,
            "unparsed": self.unparsed,
            "skipped": self.skipped,
            "by_origin": {o: self.by_origin[o] for o in attr.ORIGINS if o in self.by_origin},
            "sources": sources,
            "scans": self.scans(),
            "recommendations": self.recommendations(),
            "ports": self.port_table(),
            "prefixes": dict(sorted(self.prefixes.items(), key=lambda kv: (-kv[1], kv[0]))),
            "upstream": dict(sorted(self.upstream().items(), key=_natural_item)),
            "origin_ports": {
                origin: {
                    port: dict(sorted(v.items()))
                    for port, v in sorted(by_port.items(), key=_natural_item)
                }
                for origin, by_port in sorted(self.origin_ports.items())
            },
            "invalid": self.invalid.to_dict(),
            "invalid_acks": self.invalid_acks.to_dict(),
            "pmtud": {**self.pmtud.to_dict(), "allowed": self.pmtud_allowed},
            "timeline": {
                "slot_seconds": slot_seconds,
                "slots": [
                    [slot * slot_seconds, dict(sorted(origins.items()))]
                    for slot, origins in sorted(self.timeline.items())
                ],
            },
            "activity": {
                address: [
                    [slot * slot_seconds, sorted([d, p] for d, p in touched)]
                    for slot, touched in sorted(slots.items())
                ]
                for address, slots in sorted(self.activity.items())
            },
            "config": {
                "segment": self.config.segment.to_dict(),
                "tags": sorted(self.config.tags),
                "invalid_prefixes": list(self.config.invalid_prefixes),
                "slot_seconds": slot_seconds,
                "window_seconds": self.config.window_seconds,
                "port_levels": list(self.config.port_levels),
                "host_levels": list(self.config.host_levels),
                "be_liberal_min_acks": self.config.be_liberal_min_acks,
            },
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Summary:
        """Rebuild a summary from :meth:`to_dict` output; raise ``ValueError`` if malformed."""
        try:
            return cls._from_dict(data)
        except (KeyError, TypeError, AttributeError, ValueError) as exc:
            raise ValueError(f"not a summary: {type(exc).__name__}: {exc}") from None

    @classmethod
    def _from_dict(cls, data: Mapping[str, Any]) -> Summary:
        conf = data["config"]
        segment = Segment.from_mapping(conf["segment"])
        config = SummaryConfig.from_mapping(
            {k: v for k, v in conf.items() if k != "segment"}, segment=segment
        )
        summary = cls(config)
        summary.lines = int(data["lines"])
        summary.records = int(data["records"])
        summary.unparsed = int(data["unparsed"])
        summary.skipped = int(data.get("skipped", 0))
        summary.by_origin = {str(k): int(v) for k, v in data["by_origin"].items()}
        for item in data["sources"]:
            summary.sources[str(item["address"])] = SourceStats(
                packets=int(item["packets"]),
                first=from_iso(item["first_seen"]),
                last=from_iso(item["last_seen"]),
                origins=_ints(item["origins"]),
                macs=_ints(item["macs"]),
                ports=_ints(item["all_ports"]),
                protos=_ints(item["protocols"]),
                prefixes=_ints(item["prefixes"]),
                contradictions=_ints(item["contradictions"]),
            )
        summary.ports = {str(p["port"]): int(p["packets"]) for p in data["ports"]}
        summary.prefixes = _ints(data["prefixes"])
        summary.origin_ports = {
            str(origin): {str(port): _ints(v) for port, v in by_port.items()}
            for origin, by_port in data["origin_ports"].items()
        }
        slot_seconds = config.slot_seconds
        summary.timeline = {
            int(start) // slot_seconds: _ints(origins)
            for start, origins in data["timeline"]["slots"]
        }
        summary.activity = {
            str(address): {
                int(start) // slot_seconds: {(str(d), str(p)) for d, p in touched}
                for start, touched in slots
            }
            for address, slots in data["activity"].items()
        }
        summary.invalid = Finding.from_dict(data["invalid"])
        summary.invalid_acks = Finding.from_dict(data["invalid_acks"])
        summary.pmtud = Finding.from_dict(data["pmtud"])
        summary.pmtud_allowed = int(data["pmtud"].get("allowed", 0))
        return summary


def _ints(mapping: Mapping[str, Any]) -> dict[str, int]:
    return {str(k): int(v) for k, v in mapping.items()}


def _rules(by_prefix: Mapping[str, int]) -> str:
    return ", ".join(f"'{p or '(no prefix)'}' ({n})" for p, n in _top(by_prefix))


def _natural(text: str) -> tuple[Any, ...]:
    """Sort "tcp/22" before "tcp/443" and 10.0.0.2 before 10.0.0.10."""
    head, _, tail = text.partition("/")
    if tail.isdigit():
        return (0, head, int(tail), "")
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return (2, text, 0, "")
    return (1, str(address.version), int(address), "")


def _natural_item(item: tuple[str, Any]) -> tuple[Any, ...]:
    return _natural(item[0])


def _top(counts: Mapping[str, int], limit: int | None = None) -> list[tuple[str, int]]:
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], _natural(kv[0])))
    return ranked if limit is None else ranked[:limit]


def summarize(
    lines: Iterable[str],
    config: SummaryConfig | None = None,
    since: datetime | None = None,
) -> Summary:
    """Parse ``lines`` (kernel LOG lines in any wrapper) into a new :class:`Summary`."""
    summary = Summary(config)
    summary.add_lines(lines, since=since)
    return summary


def summarize_records(records: Iterable[LogRecord], config: SummaryConfig | None = None) -> Summary:
    """Count already-parsed records into a new :class:`Summary`."""
    summary = Summary(config)
    add = summary.add
    for record in records:
        add(record)
    return summary
