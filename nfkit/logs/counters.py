"""The per-source and per-finding counters a :class:`~nfkit.logs.aggregate.Summary` is made of.

Both merge by adding up: :class:`SourceStats` (what one source address did) and
:class:`Finding` (INVALID drops, their ACKs, PMTUD errors: packets, prefixes, distinct flows up
to :data:`FLOWS`, and the :data:`EVIDENCE` earliest raw lines).
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from nfkit.logs import attribution as attr

__all__ = ["EVIDENCE", "FLOWS", "Finding", "SourceStats", "add_counts"]

#: Evidence lines kept per finding (the earliest ones, so merging keeps the same).
EVIDENCE = 5
#: Distinct flows kept per finding (the smallest ones in text order).
FLOWS = 10_000


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
    #: How many packets the counts may miss: packets sent before the source (re)joined a
    #: summary that had to drop sources (see :attr:`Summary.floor`); 0 means exact.
    error: int = 0

    @property
    def origin(self) -> str:
        """The origin most of its packets had (ties broken by :data:`attribution.ORIGINS`)."""
        origins = self.origins
        if len(origins) == 1:
            return next(iter(origins))
        if not origins:
            return attr.UNKNOWN
        best, most = attr.UNKNOWN, -1
        for origin in attr.ORIGINS:  # the first of the most frequent
            count = origins.get(origin, 0)
            if count > most:
                best, most = origin, count
        return best

    @property
    def mac(self) -> str | None:
        """The source MAC it used most, or None."""
        if not self.macs:
            return None
        return min(self.macs, key=lambda m: (-self.macs[m], m))


@dataclass(slots=True)
class Finding:
    """Counters plus the earliest evidence lines for one diagnosis (INVALID drops, PMTUD).

    Distinct flows are kept up to :data:`FLOWS`: beyond that only the :data:`FLOWS` smallest
    (in text order, so that merging keeps the same ones) and the fact that there were more.
    """

    packets: int = 0
    by_prefix: dict[str, int] = field(default_factory=dict)
    flows: set[str] = field(default_factory=set)
    #: ``(time, raw line)``, the :data:`EVIDENCE` smallest, sorted.
    evidence: list[tuple[float, str]] = field(default_factory=list)
    #: True when there were more than :data:`FLOWS` distinct flows.
    flows_capped: bool = False

    def add(self, prefix: str, time: float | None, raw: str, flow: str | None) -> None:
        """Count one packet."""
        self.packets += 1
        self.by_prefix[prefix] = self.by_prefix.get(prefix, 0) + 1
        if flow is not None:
            self.flows.add(flow)
            if len(self.flows) > 2 * FLOWS:
                self.cap_flows()
        item = (time if time is not None else 0.0, raw)
        if len(self.evidence) < EVIDENCE or item < self.evidence[-1]:
            bisect.insort(self.evidence, item)
            del self.evidence[EVIDENCE:]

    def cap_flows(self) -> None:
        """Keep the :data:`FLOWS` smallest flows, noting that there were more."""
        if len(self.flows) > FLOWS:
            self.flows = set(sorted(self.flows)[:FLOWS])
            self.flows_capped = True

    @property
    def flow_count(self) -> str:
        """How many distinct flows: ``"12"``, or ``"more than 10000"`` past :data:`FLOWS`."""
        self.cap_flows()
        return f"more than {FLOWS}" if self.flows_capped else str(len(self.flows))

    def merge(self, other: Finding) -> None:
        """Add ``other`` into this finding."""
        self.packets += other.packets
        add_counts(self.by_prefix, other.by_prefix)
        self.flows |= other.flows
        self.flows_capped = self.flows_capped or other.flows_capped
        self.cap_flows()
        self.evidence = sorted(self.evidence + other.evidence)[:EVIDENCE]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        self.cap_flows()
        return {
            "packets": self.packets,
            "by_prefix": dict(sorted(self.by_prefix.items())),
            "flows": sorted(self.flows),
            "flows_capped": self.flows_capped,
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
            flows_capped=bool(data.get("flows_capped", False)),
        )


def add_counts(into: dict[str, int], other: Mapping[str, int]) -> None:
    """Add the counts of ``other`` into ``into``."""
    for key, value in other.items():
        into[key] = into.get(key, 0) + value
