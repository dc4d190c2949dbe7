"""Per-segment and per-host trends over the runs of a history, for ``nfkit report``.

:func:`build` groups stored runs by host and by segment (the segment a fleet file gives the host,
else the one recorded with the run, see :func:`nfkit.logs.history.segment_label`), and answers the
morning questions per group: packets per day and how the last day compares with the others,
which segments have hostile neighbours (peers, with the hosts each one reached), what each
segment's upstream let through, which sources reached several segments (ranked by
:func:`nfkit.fleet.correlate.correlate`), and which hosts have window-tracking (``be_liberal``)
or PMTUD (``pmtud_blackhole``) trouble. Everything is derived from the runs' stored summaries:
no log is read again. Rendering is in :mod:`nfkit.logs.fleet_report`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from nfkit.logs import attribution as attr
from nfkit.logs.aggregate import SummaryConfig, iso
from nfkit.logs.history import Run, Trend, trend

#: Segment name of hosts whose runs carry no segment and that no fleet file places.
NO_SEGMENT = "(no segment)"


@dataclass(slots=True)
class Group:
    """One host or one segment over the period."""

    name: str
    #: The segment (for a segment: its own name).
    segment: str
    hosts: list[str]
    trend: Trend
    #: Packets per day, one value per day of :attr:`Report.dates` (0 on days without runs).
    series: list[int]
    last_run: float | None = None
    #: Recommendation code -> severity, from the merged summaries (``be_liberal``, ...).
    findings: dict[str, str] = field(default_factory=dict)
    #: Peers (hostile neighbours): address, mac, packets, hosts reached; most hosts first.
    peers: list[dict[str, Any]] = field(default_factory=list)
    #: What came through the gateway: "proto/port" -> verdict -> packets, most first.
    upstream: dict[str, dict[str, int]] = field(default_factory=dict)
    scans: int = 0

    @property
    def packets(self) -> int:
        """Packets logged in the period."""
        return sum(self.series)

    @property
    def by_origin(self) -> dict[str, int]:
        """Packets per origin in the period, in :data:`attribution.ORIGINS` order."""
        totals: dict[str, int] = {}
        for row in self.trend.per_day.values():
            for origin in attr.ORIGINS:
                if row.get(origin):
                    totals[origin] = totals.get(origin, 0) + row[origin]
        return {o: totals[o] for o in attr.ORIGINS if o in totals}

    @property
    def change(self) -> float | None:
        """The last day against the mean of the earlier days (+0.5 is 50 % more); None if new."""
        if len(self.series) < 2:
            return None
        earlier = sum(self.series[:-1]) / (len(self.series) - 1)
        if earlier == 0:
            return None if self.series[-1] else 0.0
        return (self.series[-1] - earlier) / earlier

    def to_dict(self, dates: list[str]) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "name": self.name,
            "segment": self.segment,
            "hosts": self.hosts,
            "runs": self.trend.runs,
            "last_run": iso(self.last_run) if self.last_run is not None else None,
            "packets": self.packets,
            "by_origin": self.by_origin,
            "per_day": dict(zip(dates, self.series, strict=True)),
            "change": None if self.change is None else round(self.change, 4),
            "findings": self.findings,
            "peers": self.peers,
            "upstream": self.upstream,
            "scans": self.scans,
            "unmerged": self.trend.unmerged,
        }


@dataclass(slots=True)
class Report:
    """The whole period: the fleet, each segment, each host."""

    days: int
    since: float
    until: float
    #: The period's days, oldest first (``YYYY-MM-DD``, UTC).
    dates: list[str]
    overall: Trend
    segments: list[Group]
    hosts: list[Group]
    #: Hosts with runs in the period that the fleet file does not list (when one was given).
    unlisted_hosts: list[str] = field(default_factory=list)
    #: Sources logged by hosts of several segments, most widespread first.
    across_segments: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (without the merged fleet summary; see ``fleet_report``)."""
        return {
            "days": self.days,
            "since": iso(self.since),
            "until": iso(self.until),
            "runs": self.overall.runs,
            "per_day": self.overall.per_day,
            "segments": [group.to_dict(self.dates) for group in self.segments],
            "hosts": [group.to_dict(self.dates) for group in self.hosts],
            "unlisted_hosts": self.unlisted_hosts,
            "sources_across_segments": self.across_segments,
        }


def period_dates(days: int, until: float) -> list[str]:
    """The ``days`` UTC dates ending with the one of ``until``, oldest first."""
    last = datetime.fromtimestamp(until, UTC)
    return [(last - timedelta(days=n)).strftime("%Y-%m-%d") for n in range(days - 1, -1, -1)]


def period_start(days: int, until: float) -> float:
    """Midnight UTC that starts the first of :func:`period_dates` (the ``since`` of a query)."""
    first = datetime.strptime(period_dates(days, until)[0], "%Y-%m-%d").replace(tzinfo=UTC)
    return first.timestamp()


def load_host_segments(path: str | Path) -> dict[str, str]:
    """Host name (lower case) -> segment name from a fleet file (:mod:`nfkit.fleet.fleetfile`)."""
    from nfkit.fleet.fleetfile import from_toml

    return {host.name.lower(): host.segment_name for host in from_toml(path)}


def build(
    runs: list[Run],
    days: int,
    until: float,
    host_segments: Mapping[str, str] | None = None,
) -> Report:
    """Group ``runs`` (those of the last ``days`` days before ``until``) by host and segment."""
    dates = period_dates(days, until)
    segment_of: dict[str, str] = {}
    unlisted: set[str] = set()
    listed = {k.lower(): v for k, v in (host_segments or {}).items()}
    for run in runs:
        if run.host.lower() in listed:  # host names match case-insensitively, like syslog's
            segment_of[run.host] = listed[run.host.lower()]
        else:
            if host_segments is not None:
                unlisted.add(run.host)
            # the latest run's label wins (runs are oldest first)
            segment_of[run.host] = run.segment or segment_of.get(run.host) or NO_SEGMENT

    by_host: dict[str, list[Run]] = {}
    for run in runs:
        by_host.setdefault(run.host, []).append(run)
    hosts = [
        _group(host, segment_of[host], [host], host_runs, days, dates)
        for host, host_runs in sorted(by_host.items())
    ]
    segments = []
    for name in sorted(set(segment_of.values())):
        members = [h for h in hosts if h.segment == name]
        seg_runs = [run for run in runs if segment_of[run.host] == name]
        group = _group(name, name, [h.name for h in members], seg_runs, days, dates)
        group.peers = _peers(members)
        segments.append(group)
    segments.sort(key=lambda g: (-len(g.peers), -g.packets, g.name))
    return Report(
        across_segments=_across_segments(hosts),
        days=days,
        since=period_start(days, until),
        until=until,
        dates=dates,
        overall=trend(runs, days),
        segments=segments,
        hosts=hosts,
        unlisted_hosts=sorted(unlisted),
    )


def _group(
    name: str, segment: str, hosts: list[str], runs: list[Run], days: int, dates: list[str]
) -> Group:
    folded = trend(runs, days)
    series = [folded.per_day.get(day, {}).get("records", 0) for day in dates]
    group = Group(
        name=name,
        segment=segment,
        hosts=hosts,
        trend=folded,
        series=series,
        last_run=max((run.finished for run in runs), default=None),
    )
    merged = folded.merged
    if merged is not None:
        scans = merged.scans()
        group.scans = len(scans)
        for rec in merged.recommendations(scans):
            group.findings[str(rec["code"])] = str(rec.get("severity", ""))
        upstream = merged.upstream()
        ranked = sorted(upstream.items(), key=lambda kv: (-sum(kv[1].values()), kv[0]))
        group.upstream = dict(ranked[:15])
        group.peers = [
            {"address": address, "mac": stats.mac, "packets": stats.packets, "hosts": [name]}
            for address, stats in merged.sorted_sources()
            if stats.origin == attr.PEER
        ]
    return group


def _across_segments(hosts: list[Group]) -> list[dict[str, Any]]:
    """Sources logged by hosts of two or more segments (:func:`nfkit.fleet.correlate.correlate`)."""
    from nfkit.fleet.correlate import correlate
    from nfkit.fleet.summary import FleetSummary

    merged = {h.name: h.trend.merged for h in hosts if h.trend.merged is not None}
    fleet = FleetSummary(
        SummaryConfig(),
        hosts=merged,
        segments={h.name: None if h.segment == NO_SEGMENT else h.segment for h in hosts},
    )
    return [source.to_dict() for source in correlate(fleet).sources]


def _peers(hosts: list[Group]) -> list[dict[str, Any]]:
    """The peers of a segment's hosts, with the hosts each reached; most hosts, packets first."""
    seen: dict[str, dict[str, Any]] = {}
    for host in hosts:
        for peer in host.peers:
            row = seen.setdefault(
                peer["address"],
                {"address": peer["address"], "mac": peer["mac"], "packets": 0, "hosts": []},
            )
            row["packets"] += peer["packets"]
            row["hosts"].append(host.name)
            row["mac"] = row["mac"] or peer["mac"]
    return sorted(seen.values(), key=lambda p: (-len(p["hosts"]), -p["packets"], p["address"]))


__all__ = [
    "NO_SEGMENT",
    "Group",
    "Report",
    "build",
    "load_host_segments",
    "period_dates",
    "period_start",
]
