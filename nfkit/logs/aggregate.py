"""Mergeable streaming aggregates of log records: the :class:`Summary`.

Everything a report shows is derived from a handful of counters that add up: summarising a
stream in two parts and merging gives exactly the summary of the whole stream (tested with
hypothesis). So runs can be split across processes, hosts or days and merged afterwards, and a
``Summary`` round-trips through JSON (:meth:`Summary.to_dict` / :meth:`Summary.from_dict`).

Per-record work happens in :meth:`Summary.add` only.

Scan detection keeps, per source and per 5-minute slot, the set of ``(destination, port)``
pairs it touched (compactly, in :mod:`nfkit.logs.activity`); sets union, so it stays mergeable.
Thresholds, scans and recommendations are in :mod:`nfkit.logs.findings`; the per-source and
per-finding counters in :mod:`nfkit.logs.counters`. Past ``max_sources`` sources the summary
drops the least busy ones and says how far its counts may be off (:meth:`Summary.bound`).

ICMP fragmentation-needed (type 3 code 4) and ICMPv6 packet-too-big (type 2) never count as
attacks: they are Path MTU discovery; a dropped one is reported as ``pmtud_blackhole``.
"""

from __future__ import annotations

import json
import os
import zlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any

from nfkit.errors import ConfigError, LogReadError, SummaryError
from nfkit.logprefix import parse_prefix
from nfkit.logs import attribution as attr
from nfkit.logs import findings
from nfkit.logs.activity import Activity
from nfkit.logs.counters import Finding, SourceStats, add_counts, sources_per_key
from nfkit.logs.findings import (
    HOST_LEVELS,
    PORT_LEVELS,
    SLOT_SECONDS,
    WINDOW_SECONDS,
    SummaryConfig,
    from_iso,
    iso,
)
from nfkit.logs.findings import natural_item as _natural_item
from nfkit.logs.findings import top as _top
from nfkit.logs.record import LogRecord
from nfkit.logs.segment import Segment

__all__ = [
    "HOST_LEVELS",
    "PORT_LEVELS",
    "SLOT_SECONDS",
    "WINDOW_SECONDS",
    "Finding",
    "SourceStats",
    "Summary",
    "SummaryConfig",
    "from_iso",
    "iso",
    "summarize",
    "summarize_records",
]

DROP = "drop"
ACCEPT = "accept"
LOGONLY = "log"
UNKNOWN_VERDICT = "unknown"

_PROTO_NAMES: dict[str | None, str] = {None: "?"}
#: Stands for the sources in the dict :meth:`Summary.json_chunks` writes around them.
_LATER: Any = object()
_DROP_WORDS = ("drop", "reject", "deny", "block", "invalid", "refuse")
_ACCEPT_WORDS = ("accept", "allow", "pass")


def _min(a: float | None, b: float | None) -> float | None:
    return b if a is None else a if b is None else min(a, b)


def _max(a: float | None, b: float | None) -> float | None:
    return b if a is None else a if b is None else max(a, b)


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
        #: source -> slot -> {(destination, "proto/port")} (scan detection), compactly.
        self.activity = Activity()
        self.invalid = Finding()
        self.invalid_acks = Finding()
        self.pmtud = Finding()
        self.pmtud_allowed = 0
        #: No source left out of :attr:`sources` sent more packets than this (0: none left out).
        self.floor = 0
        #: How many times a source was dropped to stay within ``config.max_sources``.
        self.dropped = 0
        self._attributor = attr.Attributor(self.config.segment)
        self._prefix_cache: dict[str | None, tuple[str, str, bool]] = {}
        self._names: dict[object, str] = {}
        self._last_stamp: datetime | None = None
        self._last_time: tuple[float, int] = (0.0, 0)

    # -- feeding --------------------------------------------------------------------------
    def _classify_raw(self, raw: str | None) -> tuple[str, str, bool]:
        prefix = (raw or "").strip()
        verdict, invalid = self.classify_prefix(prefix)
        if len(self._prefix_cache) < 65536:
            self._prefix_cache[raw] = (prefix, verdict, invalid)
        return prefix, verdict, invalid

    def classify_prefix(self, prefix: str) -> tuple[str, bool]:
        """Return ``(verdict, is_invalid_rule)`` for a log prefix."""
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
        return verdict, invalid

    def add(self, record: LogRecord) -> None:
        """Count one record (the only per-record work; keep it tight)."""
        self.records += 1
        origin, contradiction = self._attributor.attribute(record)
        self.by_origin[origin] = self.by_origin.get(origin, 0) + 1
        prefix_info = self._prefix_cache.get(record.prefix)
        if prefix_info is None:
            prefix_info = self._classify_raw(record.prefix)
        prefix, verdict, invalid = prefix_info
        self.prefixes[prefix] = self.prefixes.get(prefix, 0) + 1
        stamp = record.timestamp
        if stamp is None:
            time = None
            slot = 0
        elif stamp == self._last_stamp:  # syslog lines share their second: convert once
            time, slot = self._last_time
        else:
            time = round(stamp.timestamp(), 6)
            slot = int(time // self.config.slot_seconds)
            self._last_stamp = stamp
            self._last_time = (time, slot)
        per_slot = self.timeline.get(slot)
        if per_slot is None:
            per_slot = self.timeline[slot] = {}
        per_slot[origin] = per_slot.get(origin, 0) + 1

        proto = _PROTO_NAMES.get(record.proto)
        if proto is None:
            proto = _PROTO_NAMES[record.proto] = (record.proto or "").lower() or "?"
        icmp_type = record.icmp_type
        names = self._names
        address = record.src
        src = names.get(address)
        if src is None and address is not None:
            src = names[address] = str(address)
        address = record.dst
        dst = names.get(address)
        if dst is None and address is not None:
            dst = names[address] = str(address)
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
            self.bound(1)
            stats = self.sources[src] = SourceStats(error=self.floor)
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
            self.activity.add(src, slot, dst, portkey)

    def add_lines(self, lines: Iterable[str], since: datetime | None = None) -> None:
        """Parse and count ``lines``; records older than ``since`` are counted as skipped."""
        from nfkit.logs.parser import parse_line

        add = self.add
        cutoff = since.timestamp() if since is not None else None
        for line in lines:
            self.lines += 1
            try:
                record = parse_line(line)
            except (ValueError, OverflowError, RecursionError):
                # One absurd line (a journal timestamp past year 9999, JSON nested 10,000
                # deep) must not cost the whole report: it counts as a line that gave no record.
                record = None
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
        """Add ``other`` into this summary and return it.

        The detection settings (tags, INVALID prefixes, slots, window, levels) must be equal.
        The segments may differ — summaries of different hosts merge — because attribution
        already happened when each record was added; the merged summary keeps the union of
        the segments (so do not add more records to it afterwards). ``max_sources`` may differ
        too: the merged summary keeps this one's.
        """
        if _detection(other.config) != _detection(self.config):
            raise SummaryError("cannot merge summaries made with different detection settings")
        if other.config.segment != self.config.segment:
            self.config = self.config.with_segment(self.config.segment.union(other.config.segment))
            self._attributor = attr.Attributor(self.config.segment)
        self.lines += other.lines
        self.records += other.records
        self.unparsed += other.unparsed
        self.skipped += other.skipped
        add_counts(self.by_origin, other.by_origin)
        add_counts(self.ports, other.ports)
        add_counts(self.prefixes, other.prefixes)
        if other.floor:  # sources they do not list may have sent up to their floor
            for address, kept in self.sources.items():
                if address not in other.sources:
                    kept.error += other.floor
        for address, theirs in other.sources.items():
            mine = self.sources.get(address)
            if mine is None:
                mine = self.sources[address] = SourceStats(error=self.floor)
            mine.packets += theirs.packets
            mine.error += theirs.error
            mine.first = _min(mine.first, theirs.first)
            mine.last = _max(mine.last, theirs.last)
            for name in ("origins", "macs", "ports", "protos", "prefixes", "contradictions"):
                add_counts(getattr(mine, name), getattr(theirs, name))
        for origin, by_port in other.origin_ports.items():
            mine_ports = self.origin_ports.setdefault(origin, {})
            for portkey, verdicts in by_port.items():
                add_counts(mine_ports.setdefault(portkey, {}), verdicts)
        for slot, origins in other.timeline.items():
            add_counts(self.timeline.setdefault(slot, {}), origins)
        self.activity.merge(other.activity)
        self.invalid.merge(other.invalid)
        self.invalid_acks.merge(other.invalid_acks)
        self.pmtud.merge(other.pmtud)
        self.pmtud_allowed += other.pmtud_allowed
        self.floor += other.floor
        self.dropped += other.dropped
        self.bound()
        return self

    # -- bounded memory -------------------------------------------------------------------------
    def bound(self, coming: int = 0) -> None:
        """Drop the least busy sources when :attr:`sources` (with ``coming`` more) would exceed
        half again ``config.max_sources``, keeping ``max_sources`` of them.

        The kept ones are those with the highest possible count (``packets + error``); the
        highest such count among the dropped ones raises :attr:`floor`. So no source that is not
        listed sent more than ``floor`` packets, and a source listed with ``error == 0`` has
        exact counts (Space-Saving, Metwally et al. 2005, evicting in batches). A dropped
        source's scan activity goes with it; if it comes back it starts again with
        ``error = floor``.
        """
        limit = self.config.max_sources
        if limit is None or len(self.sources) + coming <= limit + limit // 2:
            return
        ranked = sorted(
            self.sources.items(), key=lambda item: (-(item[1].packets + item[1].error), item[0])
        )
        for address, stats in ranked[limit:]:
            self.floor = max(self.floor, stats.packets + stats.error)
            del self.sources[address]
            self.activity.discard(address)
            self.dropped += 1

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Summary):
            return NotImplemented
        return self.config == other.config and self.to_dict() == other.to_dict()

    __hash__ = None  # type: ignore[assignment]

    # -- counts the fast engines add once per distinct key ------------------------------------
    def count_slot(self, slot: int, origin: str, prefix: str, count: int) -> None:
        """Add ``count`` packets of ``origin`` under ``prefix`` in time ``slot`` (by origin,
        by prefix and in the timeline, as :meth:`add` counts one record)."""
        self.by_origin[origin] = self.by_origin.get(origin, 0) + count
        self.prefixes[prefix] = self.prefixes.get(prefix, 0) + count
        per_slot = self.timeline.get(slot)
        if per_slot is None:
            per_slot = self.timeline[slot] = {}
        per_slot[origin] = per_slot.get(origin, 0) + count

    def count_port(
        self, origin: str, portkey: str, verdict: str, count: int, is_port: bool
    ) -> None:
        """Add ``count`` packets of ``origin`` to ``portkey`` under ``verdict`` (and to the
        port table when it is a port, not an ICMP type), as :meth:`add` counts one record."""
        if is_port:
            self.ports[portkey] = self.ports.get(portkey, 0) + count
        by_port = self.origin_ports.get(origin)
        if by_port is None:
            by_port = self.origin_ports[origin] = {}
        verdicts = by_port.get(portkey)
        if verdicts is None:
            verdicts = by_port[portkey] = {}
        verdicts[verdict] = verdicts.get(verdict, 0) + count

    # -- derived views ----------------------------------------------------------------------
    def sorted_sources(self) -> list[tuple[str, SourceStats]]:
        """Sources, peers first (the upstream cannot stop them), then by packets."""
        order = {origin: i for i, origin in enumerate(attr.ORIGINS)}
        return sorted(
            self.sources.items(),
            key=lambda item: (order.get(item[1].origin, 99), -item[1].packets, item[0]),
        )

    def scans(self) -> list[dict[str, Any]]:
        """Vertical scans and horizontal sweeps with level >= 1 (see :mod:`findings`)."""
        return findings.scans(self)

    def upstream(self) -> dict[str, dict[str, int]]:
        """What came through the gateway, by "proto/port" then verdict."""
        by_port = self.origin_ports.get(attr.UPSTREAM, {})
        return {port: dict(sorted(verdicts.items())) for port, verdicts in by_port.items()}

    def recommendations(self, scans: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
        """Actionable findings, most urgent first (see :mod:`findings`)."""
        return findings.recommendations(self, scans)

    def port_table(self) -> list[dict[str, Any]]:
        """Per destination port: packets and distinct sources, busiest first."""
        # each source's ports, counted at C speed
        sources = sources_per_key(self.sources.values(), "ports")
        return [
            {"port": portkey, "packets": packets, "sources": sources.get(portkey, 0)}
            for portkey, packets in sorted(self.ports.items(), key=lambda kv: (-kv[1], kv[0]))
        ]

    @property
    def is_empty(self) -> bool:
        """True when no record was counted."""
        return self.records == 0 and self.unparsed == 0

    # -- JSON ---------------------------------------------------------------------------------
    def source_entry(
        self, address: str, stats: SourceStats, top: int = 10, complete: bool = True
    ) -> dict[str, Any]:
        """The JSON form of one source (an item of ``to_dict()["sources"]``)."""
        origin = stats.origin
        origins, macs, ports, protos, prefixes, contradictions = stats.all_counts()
        source: dict[str, Any] = {
            "address": address,
            "origin": origin,
            "mac": stats.mac if origin == attr.PEER else None,
            "packets": stats.packets,
            "first_seen": iso(stats.first),
            "last_seen": iso(stats.last),
            "ports": dict(_top(ports, top)),
            "protocols": dict(sorted(protos.items())),
            "prefixes": dict(sorted(prefixes.items())),
            "origins": dict(sorted(origins.items())),
            "macs": dict(sorted(macs.items())),
            "contradictions": dict(sorted(contradictions.items())),
        }
        if stats.error:
            source["error"] = stats.error
        if complete:
            source["all_ports"] = dict(sorted(ports.items(), key=_natural_item))
        return source

    def period(self) -> tuple[float | None, float | None]:
        """The first and the last time any source was seen (epoch seconds), or None."""
        firsts = [s.first for s in self.sources.values() if s.first is not None]
        lasts = [s.last for s in self.sources.values() if s.last is not None]
        return (min(firsts) if firsts else None, max(lasts) if lasts else None)

    def to_dict(
        self,
        top: int = 10,
        complete: bool = True,
        ranked: list[tuple[str, SourceStats]] | None = None,
    ) -> dict[str, Any]:
        """The JSON contract (see docs/summaries.md); :meth:`from_dict` reads it back.

        ``complete=False`` leaves out what only merging needs (``activity``, per-source
        ``all_ports``): a lighter view for the text and HTML reports. ``ranked`` lists only
        these sources, as :meth:`sorted_sources` gives them (default: all of them).
        """
        if ranked is None:
            ranked = self.sorted_sources()
        data = self._dict_around_sources(top, complete)
        data["sources"] = [
            self.source_entry(address, stats, top, complete) for address, stats in ranked
        ]
        if complete:
            data["activity"] = self.activity.to_json(self.config.slot_seconds)
        return data

    def json_chunks(self, first: Mapping[str, Any] | None = None) -> Iterator[str]:
        """The text of ``json.dumps({**first, **self.to_dict()}, separators=(",", ":"))``, in
        pieces made one source at a time: a summary of many sources is written without its
        whole dict form or JSON text in memory."""
        dumps = json.JSONEncoder(separators=(",", ":")).encode
        data = self._dict_around_sources(10, True)
        items = [*(first or {}).items(), *data.items()]
        for number, (key, value) in enumerate(items):
            yield ("{" if number == 0 else ",") + dumps(key) + ":"
            if key != "sources" or value is not _LATER:
                yield dumps(value)
                continue
            separator = "["
            for address, stats in self.sorted_sources():
                yield separator + dumps(self.source_entry(address, stats))
                separator = ","
            yield "[]" if separator == "[" else "]"
        head, sources = self.activity.json_parts(self.config.slot_seconds)
        yield ("{" if not items else ",") + '"activity":' + dumps(head)[:-1] + ',"sources":'
        separator = "{"
        for source, text in sources:
            yield separator + dumps(source) + ":" + dumps(text)
            separator = ","
        yield "{}}}" if separator == "{" else "}}}"

    def _dict_around_sources(self, top: int, complete: bool) -> dict[str, Any]:
        """:meth:`to_dict` but for ``sources`` (a placeholder in its place) and ``activity``."""
        slot_seconds = self.config.slot_seconds
        scans = self.scans()
        data: dict[str, Any] = {
            "lines": self.lines,
            "records": self.records,
            "unparsed": self.unparsed,
            "skipped": self.skipped,
            "by_origin": {o: self.by_origin[o] for o in attr.ORIGINS if o in self.by_origin},
            "sources": _LATER,
            "scans": scans,
            "recommendations": self.recommendations(scans),
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
            "config": {
                "segment": self.config.segment.to_dict(),
                "tags": sorted(self.config.tags),
                "invalid_prefixes": list(self.config.invalid_prefixes),
                "slot_seconds": slot_seconds,
                "window_seconds": self.config.window_seconds,
                "port_levels": list(self.config.port_levels),
                "host_levels": list(self.config.host_levels),
                "be_liberal_min_acks": self.config.be_liberal_min_acks,
                "max_sources": self.config.max_sources,
            },
            "approximate": {
                "max_sources": self.config.max_sources,
                "floor": self.floor,
                "dropped_sources": self.dropped,
                "sources_inexact": sum(1 for stats in self.sources.values() if stats.error),
            },
        }
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Summary:
        """Rebuild a summary from :meth:`to_dict` output; raise ``SummaryError`` if malformed.

        ``SummaryError`` is also a ``ValueError``; a bad ``config`` raises ``ConfigError``.
        """
        try:
            return cls._from_dict(data)
        except ConfigError:
            raise
        except (KeyError, IndexError, TypeError, AttributeError, ValueError, OverflowError) as exc:
            raise SummaryError(f"not a summary: {type(exc).__name__}: {exc}") from None

    @classmethod
    def _from_dict(cls, data: Mapping[str, Any]) -> Summary:
        conf = data["config"]
        segment = Segment.from_mapping(conf["segment"])
        config = SummaryConfig.from_mapping(
            {k: v for k, v in conf.items() if k != "segment" and v is not None}, segment=segment
        )
        if "max_sources" in conf and conf["max_sources"] is None:
            config = replace(config, max_sources=None)
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
                error=int(item.get("error", 0)),
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
        summary.activity = Activity.from_json(data["activity"], slot_seconds)
        summary.invalid = Finding.from_dict(data["invalid"])
        summary.invalid_acks = Finding.from_dict(data["invalid_acks"])
        summary.pmtud = Finding.from_dict(data["pmtud"])
        summary.pmtud_allowed = int(data["pmtud"].get("allowed", 0))
        approximate = data.get("approximate", {})
        summary.floor = int(approximate.get("floor", 0))
        summary.dropped = int(approximate.get("dropped_sources", 0))
        if min(summary.floor, summary.dropped, *(s.error for s in summary.sources.values())) < 0:
            raise ValueError("negative floor, dropped_sources or error")
        return summary


def _detection(config: SummaryConfig) -> SummaryConfig:
    """``config`` without what may differ between summaries that merge."""
    return replace(config, segment=Segment(), max_sources=None)


def _ints(mapping: Mapping[str, Any]) -> dict[str, int]:
    return {str(k): int(v) for k, v in mapping.items()}


def summarize(
    lines: Iterable[str] | os.PathLike[str],
    config: SummaryConfig | None = None,
    since: datetime | None = None,
) -> Summary:
    """Parse ``lines`` (kernel LOG lines in any wrapper, or a ``Path``) into a new Summary.

    A ``Path`` is read whole (``.gz`` decompressed; ``LogReadError`` if it cannot be). A plain
    ``str`` or ``bytes`` is refused with ``ConfigError``: iterating it would give characters,
    not lines, and silently summarise nothing.
    """
    if isinstance(lines, os.PathLike):
        from nfkit.logs.state import read_whole

        lines = read_whole(os.fspath(lines))
    elif isinstance(lines, str | bytes):
        raise ConfigError(
            "summarize() wants lines (an open file, a list of str) or a pathlib.Path, "
            f"not a {type(lines).__name__}: {str(lines)[:60]!r}"
        )
    summary = Summary(config)
    try:
        summary.add_lines(lines, since=since)
    except (OSError, EOFError, zlib.error, UnicodeDecodeError) as exc:
        # An open file that fails while being read: truncated .gz, I/O error, bad encoding.
        name = getattr(lines, "name", "<lines>")
        raise LogReadError(f"{name}: cannot read log: {exc}") from None
    except ValueError as exc:  # "I/O operation on closed file"
        if "closed file" not in str(exc):
            raise
        raise LogReadError(f"{getattr(lines, 'name', '<lines>')}: {exc}") from None
    return summary


def summarize_records(records: Iterable[LogRecord], config: SummaryConfig | None = None) -> Summary:
    """Count already-parsed records into a new :class:`Summary`."""
    summary = Summary(config)
    add = summary.add
    for record in records:
        add(record)
    return summary
