"""What counts as a finding, and the findings derived from a :class:`~aggregate.Summary`.

:class:`SummaryConfig` holds the thresholds; :func:`scans` and :func:`recommendations` read a
summary's mergeable counters and never change them.

Scan detection: per source and per time slot (5 minutes by default) the summary keeps the set of
``(destination, port)`` pairs it touched. A window (1 hour by default) slides over the slots one
slot at a time; the largest number of distinct ports on one destination inside a window is a
*vertical* scan, the largest number of distinct destinations for one port (or ICMP type) a
*horizontal* sweep. Danger levels 1-5 start at :data:`PORT_LEVELS` distinct ports and
:data:`HOST_LEVELS` distinct hosts (see docs/summaries.md for why).

Recommendations: ``pmtud_blackhole`` (ICMP frag-needed / ICMPv6 packet-too-big logged by a drop
rule), ``be_liberal`` (TCP ACKs of established flows dropped as INVALID), ``peer_attack`` (a
peer on the segment scanned this host), ``segment_mismatch`` (attribution and TTL disagree).
"""

from __future__ import annotations

import bisect
import functools
import ipaddress
import os
from array import array
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nfkit.errors import ConfigError
from nfkit.logprefix import DEFAULT_TAG
from nfkit.logs import attribution as attr
from nfkit.logs import native
from nfkit.logs.segment import Segment, load_toml

if TYPE_CHECKING:
    from nfkit.logs.aggregate import Summary

#: Distinct destination ports from one source to one host inside a window, for levels 1-5.
#: psad counts packets (5/15/150/1,500/10,000); distinct ports are the sharper signal, and five
#: different closed ports within an hour is already more than a misconfigured client does.
PORT_LEVELS: tuple[int, ...] = (5, 15, 50, 250, 1000)
#: Distinct destination hosts for one port from one source inside a window (psad's values).
HOST_LEVELS: tuple[int, ...] = (10, 20, 50, 100, 500)
SLOT_SECONDS = 300
WINDOW_SECONDS = 3600
_PORT_PROTOS = frozenset({"tcp", "udp", "udplite", "sctp", "dccp"})
_SUMMARY_KEYS = frozenset(
    {
        "tags",
        "invalid_prefixes",
        "slot_seconds",
        "window_seconds",
        "port_levels",
        "host_levels",
        "be_liberal_min_acks",
        "max_sources",
    }
)
#: Sources a summary keeps by default (see :attr:`SummaryConfig.max_sources`).
MAX_SOURCES = 100_000


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
    #: Sources kept with their details; beyond it the busiest are kept and the summary says
    #: how far the counts may be off (``None``: keep every source, memory grows with them).
    max_sources: int | None = MAX_SOURCES

    @classmethod
    def from_toml(cls, path: str | Path) -> SummaryConfig:
        """Read ``[segment]`` and ``[summary]`` from a TOML file; raise ``ConfigError``."""
        from nfkit.logs.segment import from_toml

        segment = from_toml(path)
        data = load_toml(path)
        unknown = set(data) - {"segment", "summary"}
        if unknown:
            # A misspelt [segmnet] would otherwise leave attribution without a segment.
            raise ConfigError(
                f"{path}: unknown table(s) or key(s) {', '.join(sorted(unknown))} "
                "(expected [segment] and [summary])"
            )
        table = data.get("summary", {})
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
            max_sources=positive("max_sources", MAX_SOURCES),
        )

    def with_segment(self, segment: Segment) -> SummaryConfig:
        """Return a copy using ``segment``."""
        return replace(self, segment=segment)


def iso(time: float | None) -> str | None:
    """Epoch seconds as an ISO 8601 UTC string with microseconds, or None."""
    if time is None:
        return None
    try:
        when = datetime.fromtimestamp(time, UTC)
    except (ValueError, OverflowError, OSError):
        # A log line dated at the edge of what datetime holds (9999-12-31T23:59:59.999999
        # rounds past it as a float): clamp rather than fail the whole report.
        when = datetime.max.replace(tzinfo=UTC) if time > 0 else datetime.min.replace(tzinfo=UTC)
    return when.isoformat(timespec="microseconds")


def from_iso(text: str | None) -> float | None:
    """Inverse of :func:`iso`."""
    if text is None:
        return None
    return round(datetime.fromisoformat(text).timestamp(), 6)


def _level(count: int, thresholds: tuple[int, ...]) -> int:
    return bisect.bisect_right(thresholds, count)


def scans(summary: Summary) -> list[dict[str, Any]]:
    """Vertical scans and horizontal sweeps with level >= 1, most dangerous first."""
    config = summary.config
    span = config.window_seconds // config.slot_seconds
    activity = summary.activity
    found: list[dict[str, Any]] = []
    if native.available():  # the same search in C
        found = _native_scans(summary, span)
        _sort_scans(found)
        return found
    is_port: dict[int, bool] = {}
    for source in activity:
        # Cheap bounds first: a source that never touched enough ports or hosts is no scan,
        # nor one that never touched that many (host, port) pairs within one window.
        ports, hosts = activity.spread(source)
        if ports < config.port_levels[0] and hosts < config.host_levels[0]:
            continue
        if activity.densest(source, span) < min(config.port_levels[0], config.host_levels[0]):
            continue
        slots = activity.numbered_slots(source)
        for pairs in slots.values():
            for _dst, port in pairs:
                if port not in is_port:
                    is_port[port] = activity.portkey(port).split("/", 1)[0] in _PORT_PROTOS
        best = _best_windows(slots, span, is_port)
        for (kind, number), (count, start) in best.items():
            vertical = kind == "vertical"
            level = _level(count, config.port_levels if vertical else config.host_levels)
            if level == 0:
                continue
            items = _window_items(slots, start, span, number, vertical, is_port)
            found.append(_scan_entry(summary, source, kind, number, count, level, start, items))
    _sort_scans(found)
    return found


def _scan_entry(
    summary: Summary,
    source: str,
    kind: str,
    number: int,
    count: int,
    level: int,
    start: int,
    items: Iterable[int],
) -> dict[str, Any]:
    """One scan as :func:`scans` lists it."""
    config, activity = summary.config, summary.activity
    vertical = kind == "vertical"
    name = activity.portkey if vertical else activity.destination
    stats = summary.sources.get(source)
    origin = stats.origin if stats is not None else attr.UNKNOWN
    return {
        "source": source,
        "origin": origin,
        "mac": stats.mac if stats is not None and origin == attr.PEER else None,
        "kind": kind,
        "target": (activity.destination if vertical else activity.portkey)(number),
        "distinct": count,
        "level": level,
        "window_start": iso(start * config.slot_seconds) if start else None,
        "window_seconds": config.window_seconds,
        "sample": sorted(map(name, items), key=natural)[:20],
    }


def _native_scans(summary: Summary, span: int) -> list[dict[str, Any]]:
    """The scans the loop in :func:`scans` finds, searched in C for all sources at once."""
    config, activity = summary.config, summary.activity
    is_port = array("B", [key.split("/", 1)[0] in _PORT_PROTOS for key in activity.port_numbers()])
    windows = native.Windows(array("q", activity.slot_numbers()), is_port, span)
    sources = list(activity)
    arrays = [activity.raw(source) for source in sources]
    found = []
    levels = (config.port_levels[0], config.host_levels[0])
    # the search gives up the GIL: halves on two cores
    half = len(arrays) // 2
    if half >= 10_000 and (os.cpu_count() or 1) > 1:
        with ThreadPoolExecutor(2) as pool:
            low, high = pool.map(
                lambda part: windows.best_many(part, *levels), (arrays[:half], arrays[half:])
            )
        best = low + [
            (i + half, kind, number, count, start) for i, kind, number, count, start in high
        ]
    else:
        best = windows.best_many(arrays, *levels)
    for index, kind_number, number, count, start in best:
        vertical = kind_number == 0
        level = _level(count, config.port_levels if vertical else config.host_levels)
        items = windows.items(arrays[index], start, number, vertical)
        kind = "vertical" if vertical else "horizontal"
        found.append(
            _scan_entry(summary, sources[index], kind, number, count, level, start, items)
        )
    return found


def _sort_scans(found: list[dict[str, Any]]) -> None:
    """Most dangerous first: by origin, level, distinct count, then names."""
    order = {origin: i for i, origin in enumerate(attr.ORIGINS)}
    found.sort(
        key=lambda s: (
            order.get(s["origin"], 99),
            -s["level"],
            -s["distinct"],
            s["source"],
            s["kind"],
            natural(s["target"]),
        )
    )


def _best_windows(
    slots: dict[int, list[tuple[int, int]]], span: int, is_port: dict[int, bool]
) -> dict[tuple[str, int], tuple[int, int]]:
    """Per ``("vertical", destination)`` and ``("horizontal", port)``: the largest number of
    distinct ports (hosts) inside one window, and the first window start that has it.

    Windows start at every slot that has activity and span ``span`` slots. The window slides:
    each slot enters and leaves once, and only a count that just grew can beat its best.
    """
    ordered = sorted(slots)
    pairs: dict[tuple[int, int], int] = {}  # (dst, port) -> slots of the window holding it
    per_host: dict[int, int] = {}  # dst -> distinct port-protocol ports in the window
    per_port: dict[int, int] = {}  # port -> distinct destinations in the window
    best: dict[tuple[str, int], tuple[int, int]] = {}
    head = 0  # the next slot to enter
    for i, start in enumerate(ordered):
        if i:  # the previous start leaves
            for pair in slots[ordered[i - 1]]:
                left = pairs[pair] - 1
                if left:
                    pairs[pair] = left
                    continue
                del pairs[pair]
                dst, port = pair
                per_port[port] -= 1
                if is_port[port]:
                    per_host[dst] -= 1
        grown_hosts: set[int] = set()
        grown_ports: set[int] = set()
        while head < len(ordered) and ordered[head] < start + span:
            for pair in slots[ordered[head]]:
                held = pairs.get(pair, 0)
                pairs[pair] = held + 1
                if held:
                    continue
                dst, port = pair
                per_port[port] = per_port.get(port, 0) + 1
                grown_ports.add(port)
                if is_port[port]:
                    per_host[dst] = per_host.get(dst, 0) + 1
                    grown_hosts.add(dst)
            head += 1
        for dst in grown_hosts:
            key = ("vertical", dst)
            if per_host[dst] > best.get(key, (0, 0))[0]:
                best[key] = (per_host[dst], start)
        for port in grown_ports:
            key = ("horizontal", port)
            if per_port[port] > best.get(key, (0, 0))[0]:
                best[key] = (per_port[port], start)
    return best


def _window_items(
    slots: dict[int, list[tuple[int, int]]],
    start: int,
    span: int,
    number: int,
    vertical: bool,
    is_port: dict[int, bool],
) -> set[int]:
    """The ports on destination ``number`` (vertical) or the destinations of port ``number``
    touched in the window starting at slot ``start``."""
    items: set[int] = set()
    for slot, pairs in slots.items():
        if start <= slot < start + span:
            for dst, port in pairs:
                if vertical and dst == number and is_port[port]:
                    items.add(port)
                elif not vertical and port == number:
                    items.add(dst)
    return items


def recommendations(
    summary: Summary, scans: list[dict[str, Any]] | None = None
) -> list[dict[str, Any]]:
    """Actionable findings: ``pmtud_blackhole`` first, then ``be_liberal``, then others.

    ``scans`` saves computing :meth:`scans` again when the caller has them.
    """
    out: list[dict[str, Any]] = []
    if summary.pmtud.packets:
        rules = _rules(summary.pmtud.by_prefix)
        out.append(
            {
                "code": "pmtud_blackhole",
                "severity": "critical",
                "message": (
                    f"PATH MTU DISCOVERY IS BROKEN: {summary.pmtud.packets} ICMP "
                    "fragmentation-needed / ICMPv6 packet-too-big packet(s) were logged by "
                    f"drop rule(s) {rules}. Connections that send full-size packets will "
                    "hang. Accept ICMP type 3 code 4 and ICMPv6 type 2 before any drop "
                    "rule, including the conntrack INVALID drop."
                ),
                "prefixes": dict(sorted(summary.pmtud.by_prefix.items())),
                "packets": summary.pmtud.packets,
                "evidence": [raw for _, raw in summary.pmtud.evidence],
            }
        )
    acks = summary.invalid_acks
    if acks.packets >= summary.config.be_liberal_min_acks:
        rules = _rules(acks.by_prefix)
        out.append(
            {
                "code": "be_liberal",
                "severity": "warning",
                "message": (
                    f"{acks.packets} TCP ACK packet(s) in {acks.flow_count} established "
                    f"flow(s) were dropped as INVALID by {rules}: conntrack's TCP window "
                    "tracking rejects them (window scaling, offloading, asymmetric routes). "
                    "Set net.netfilter.nf_conntrack_tcp_be_liberal=1 after the rules load."
                ),
                "sysctl": "net.netfilter.nf_conntrack_tcp_be_liberal=1",
                "packets": acks.packets,
                "flows": len(acks.flows),
                "flows_capped": acks.flows_capped,
                "prefixes": dict(sorted(acks.by_prefix.items())),
                "evidence": [raw for _, raw in acks.evidence],
            }
        )
    if scans is None:
        scans = summary.scans()
    peers = [s for s in scans if s["origin"] == attr.PEER]
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
    for stats in summary.sources.values():
        for code, count in stats.counts("contradictions").items():
            contradictions[code] = contradictions.get(code, 0) + count
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


def _rules(by_prefix: Mapping[str, int]) -> str:
    return ", ".join(f"'{p or '(no prefix)'}' ({n})" for p, n in top(by_prefix))


@functools.lru_cache(maxsize=1 << 16)  # port keys and addresses repeat in every source's lists
def natural(text: str) -> tuple[Any, ...]:
    """Sort "tcp/22" before "tcp/443" and 10.0.0.2 before 10.0.0.10."""
    head, _, tail = text.partition("/")
    if tail.isdigit():
        return (0, head, int(tail), "")
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return (2, text, 0, "")
    return (1, str(address.version), int(address), "")


def natural_item(item: tuple[str, Any]) -> tuple[Any, ...]:
    return natural(item[0])


def top(counts: Mapping[str, int], limit: int | None = None) -> list[tuple[str, int]]:
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], natural(kv[0])))
    return ranked if limit is None else ranked[:limit]
