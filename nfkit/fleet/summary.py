"""Per-host summaries of a fleet's logs, and the one summary they merge into.

:func:`summarize_by_host` parses lines like :meth:`Summary.add_lines` does, but gives each host
(the log wrapper's host name) its own :class:`~nfkit.logs.aggregate.Summary`, attributed with
that host's segment from the fleet file. Lines that are no packet log, and records without a
host name (``dmesg`` output), are counted under :data:`NO_HOST`. Hosts missing from the fleet
file get an empty segment — nothing is guessed — and are listed in
:attr:`FleetSummary.unmapped`.

Everything here is mergeable: partitions of the input summarised apart and combined with
:func:`combine` give the same :class:`FleetSummary` as one pass.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from nfkit.fleet.fleetfile import Fleet
from nfkit.logs.aggregate import Summary, SummaryConfig
from nfkit.logs.parser import parse_line
from nfkit.logs.segment import Segment

__all__ = [
    "NO_HOST",
    "NO_SEGMENT",
    "FleetSummary",
    "combine",
    "merge_summaries",
    "segment_label",
    "summarize_by_host",
]

#: The host key of lines without a host name, and of lines that are no packet log.
NO_HOST = "-"
#: The segment name of hosts attributed without any segment knowledge.
NO_SEGMENT = "(no segment)"


class FleetSummary:
    """Summaries by host name, with each host's segment name (None when not in the fleet)."""

    def __init__(
        self,
        config: SummaryConfig,
        hosts: dict[str, Summary] | None = None,
        segments: dict[str, str | None] | None = None,
    ) -> None:
        self.config = config
        #: host -> its summary.
        self.hosts: dict[str, Summary] = hosts or {}
        #: host -> segment name, None for a host the fleet file does not list.
        self.segments: dict[str, str | None] = segments or {}

    @property
    def unmapped(self) -> dict[str, int]:
        """Hosts with packets that the fleet file does not list -> their packets."""
        return {
            host: summary.records
            for host, summary in sorted(self.hosts.items())
            if self.segments.get(host) is None and summary.records
        }

    def update(self, other: FleetSummary) -> FleetSummary:
        """Merge ``other`` into this fleet summary, host by host (``other``'s summaries may be
        taken over, not copied: do not use ``other`` afterwards); return self."""
        for host, summary in other.hosts.items():
            mine = self.hosts.get(host)
            if mine is None:
                self.hosts[host] = summary
            else:
                mine.merge(summary)
        self.segments.update(other.segments)
        self.hosts = dict(sorted(self.hosts.items()))
        self.segments = dict(sorted(self.segments.items()))
        return self

    def merged(self) -> Summary:
        """All hosts in one summary (hosts merged in name order, so the result is stable)."""
        return merge_summaries([self.hosts[h] for h in sorted(self.hosts)], self.config)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, FleetSummary):
            return NotImplemented
        return (
            self.config == other.config
            and self.segments == other.segments
            and self.hosts == other.hosts
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"FleetSummary({len(self.hosts)} hosts)"


def segment_label(segment: Segment) -> str:
    """A name for a segment that has none: its networks, else its gateway MACs.

    The same labels as :func:`nfkit.logs.history.segment_label`, so ``nfkit merge`` and
    ``nfkit report`` group hosts alike.
    """
    values = segment.to_dict()
    if values["networks"]:
        return " ".join(values["networks"])
    if values["gateway_macs"]:
        return "gw " + " ".join(values["gateway_macs"])
    return NO_SEGMENT


def merge_summaries(parts: Sequence[Summary], config: SummaryConfig | None = None) -> Summary:
    """A new summary holding ``parts`` merged in order; the parts are left unchanged."""
    if not parts:
        return Summary(config)
    result = Summary(parts[0].config)
    for part in parts:
        result.merge(part)
    return result


def combine(parts: Sequence[FleetSummary]) -> FleetSummary:
    """A new fleet summary holding ``parts`` merged host by host; the parts are unchanged."""
    if not parts:
        raise ValueError("nothing to combine")
    hosts: dict[str, list[Summary]] = {}
    segments: dict[str, str | None] = {}
    for part in parts:
        for host, summary in part.hosts.items():
            hosts.setdefault(host, []).append(summary)
        segments.update(part.segments)
    return FleetSummary(
        parts[0].config,
        {host: merge_summaries(found) for host, found in sorted(hosts.items())},
        dict(sorted(segments.items())),
    )


def summarize_by_host(
    lines: Iterable[str],
    config: SummaryConfig | None = None,
    fleet: Fleet | None = None,
    since: datetime | None = None,
) -> FleetSummary:
    """Summarise ``lines`` per host (see the module docstring).

    Without ``fleet`` every host is attributed with ``config.segment`` (and its segment name is
    :func:`segment_label` of it); with one, the fleet file gives each host its segment and
    ``config.segment`` is not used.
    """
    config = config or SummaryConfig()
    bare = config.with_segment(Segment())
    default_label = segment_label(config.segment)
    result = FleetSummary(config)
    hosts = result.hosts
    segments = result.segments

    def open_host(name: str | None) -> Summary:
        key = NO_HOST if name is None else name
        if fleet is None:
            host_config, segment_name = config, (None if name is None else default_label)
        else:
            known = fleet.host(name)
            if known is None:
                host_config, segment_name = bare, None
            else:
                key = known.name
                host_config = config.with_segment(known.segment)
                segment_name = known.segment_name
        summary = hosts.get(key)
        if summary is None:
            summary = hosts[key] = Summary(host_config)
            segments[key] = segment_name
        return summary

    by_name: dict[str | None, Summary] = {}
    cutoff = since.timestamp() if since is not None else None
    for line in lines:
        record = parse_line(line)
        if record is None:
            summary = by_name.get(None)
            if summary is None:
                summary = by_name[None] = open_host(None)
            summary.lines += 1
            summary.unparsed += 1
            continue
        summary = by_name.get(record.host)
        if summary is None:
            summary = by_name[record.host] = open_host(record.host)
        summary.lines += 1
        stamp = record.timestamp
        if cutoff is not None and stamp is not None and stamp.timestamp() < cutoff:
            summary.skipped += 1
            continue
        summary.add(record)
    return result
