"""The per-source and per-finding counters a :class:`~nfkit.logs.aggregate.Summary` is made of.

Both merge by adding up: :class:`SourceStats` (what one source address did) and
:class:`Finding` (INVALID drops, their ACKs, PMTUD errors: packets, prefixes, distinct flows up
to :data:`FLOWS`, and the :data:`EVIDENCE` earliest raw lines).
"""

from __future__ import annotations

import bisect
from array import array
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from nfkit.logs import attribution as attr

__all__ = [
    "COUNTERS",
    "EVIDENCE",
    "FLOWS",
    "INDEX_BITS",
    "Finding",
    "SourceStats",
    "add_counts",
    "sources_per_key",
]

#: Evidence lines kept per finding (the earliest ones, so merging keeps the same).
EVIDENCE = 5
#: Distinct flows kept per finding (the smallest ones in text order).
FLOWS = 10_000


#: The counters of a :class:`SourceStats`, in the order of its constructor's arguments.
COUNTERS = ("origins", "macs", "ports", "protos", "prefixes", "contradictions")
#: Packed counters (:meth:`SourceStats.packed`): entry = key << _COUNT_BITS | count, where
#: key = counter index << INDEX_BITS | text number (the native store's layout too).
INDEX_BITS = 21
_COUNT_BITS = 40
_COUNT_MASK = (1 << _COUNT_BITS) - 1
_INDEX_MASK = (1 << INDEX_BITS) - 1
_FIELD_SHIFT = _COUNT_BITS + INDEX_BITS
#: Ties between origins go to the first of attribution.ORIGINS.
_RANK = {origin: rank for rank, origin in enumerate(attr.ORIGINS)}


def _counter_property(index: int, name: str) -> property:
    slot = "_" + name

    def get(self: SourceStats) -> dict[str, int]:
        if self._packed is not None:
            self._unpack()
        return getattr(self, slot)  # type: ignore[no-any-return]

    def set_(self: SourceStats, value: dict[str, int]) -> None:
        if self._packed is not None:
            self._unpack()
        setattr(self, slot, value)

    return property(get, set_, doc=f"Packets per {name[:-1]} (a dict to read and update).")


class SourceStats:
    """What one source address did (mergeable counters).

    The six counters are dicts of packets per text: ``origins``, ``macs``, ``ports``,
    ``protos``, ``prefixes``, ``contradictions``. A summary of many sources may keep them
    packed (:meth:`packed`, 8 bytes a count instead of a dict); reading or assigning one of
    them turns them into dicts, while :meth:`counts` reads one without doing so.
    """

    __slots__ = (
        "_contradictions", "_macs", "_origin", "_origins", "_packed", "_ports", "_prefixes",
        "_protos", "_texts", "error", "first", "last", "packets",
    )  # fmt: skip

    def __init__(
        self,
        packets: int = 0,
        first: float | None = None,
        last: float | None = None,
        origins: dict[str, int] | None = None,
        macs: dict[str, int] | None = None,
        ports: dict[str, int] | None = None,
        protos: dict[str, int] | None = None,
        prefixes: dict[str, int] | None = None,
        contradictions: dict[str, int] | None = None,
        error: int = 0,
    ) -> None:
        self.packets = packets
        self.first = first
        self.last = last
        self._origins = {} if origins is None else origins
        self._macs = {} if macs is None else macs
        self._ports = {} if ports is None else ports
        self._protos = {} if protos is None else protos
        self._prefixes = {} if prefixes is None else prefixes
        self._contradictions = {} if contradictions is None else contradictions
        #: How many packets the counts may miss: packets sent before the source (re)joined a
        #: summary that had to drop sources (see :attr:`Summary.floor`); 0 means exact.
        self.error = error
        self._packed: array[int] | None = None
        self._texts: Sequence[Sequence[str]] = ()
        self._origin: str | None = None  # of packed counters, once known

    @classmethod
    def packed(
        cls,
        packets: int,
        first: float | None,
        last: float | None,
        error: int,
        entries: array[int],
        texts: Sequence[Sequence[str]],
    ) -> SourceStats:
        """A source whose counters are ``entries`` (``array("Q")``, sorted): each is
        ``(counter << 21 | number) << 40 | count``, ``counter`` an index of :data:`COUNTERS`
        and ``texts[counter][number]`` the text counted."""
        stats = cls.__new__(cls)
        stats.packets, stats.first, stats.last, stats.error = packets, first, last, error
        stats._packed, stats._texts, stats._origin = entries, texts, None
        # the dicts are made when first asked for (_unpack)
        stats._origins = stats._macs = stats._ports = None  # type: ignore[assignment]
        stats._protos = stats._prefixes = stats._contradictions = None  # type: ignore[assignment]
        return stats

    origins = _counter_property(0, "origins")
    macs = _counter_property(1, "macs")
    ports = _counter_property(2, "ports")
    protos = _counter_property(3, "protos")
    prefixes = _counter_property(4, "prefixes")
    contradictions = _counter_property(5, "contradictions")

    def counts(self, name: str) -> Mapping[str, int]:
        """Counter ``name`` (one of :data:`COUNTERS`) to read, without unpacking the others:
        do not change it."""
        entries = self._packed
        if entries is None:
            return getattr(self, "_" + name)  # type: ignore[no-any-return]
        index = COUNTERS.index(name)
        texts = self._texts[index]
        start = bisect.bisect_left(entries, index << _FIELD_SHIFT)
        end = bisect.bisect_left(entries, (index + 1) << _FIELD_SHIFT, start)
        return {
            texts[(entry >> _COUNT_BITS) & _INDEX_MASK]: entry & _COUNT_MASK
            for entry in entries[start:end]
        }

    def all_counts(self) -> tuple[Mapping[str, int], ...]:
        """The six counters in :data:`COUNTERS` order, to read, without unpacking (one pass
        over packed ones): do not change them."""
        entries = self._packed
        if entries is None:
            return (self._origins, self._macs, self._ports, self._protos, self._prefixes,
                    self._contradictions)  # fmt: skip
        out: tuple[dict[str, int], ...] = ({}, {}, {}, {}, {}, {})
        texts = self._texts
        for entry in entries:
            field = entry >> _FIELD_SHIFT
            out[field][texts[field][(entry >> _COUNT_BITS) & _INDEX_MASK]] = entry & _COUNT_MASK
        return out

    def _unpack(self) -> None:
        packed = self._packed
        if packed is None:
            return
        counters = [self.counts(name) for name in COUNTERS]
        self._packed = None
        self._texts = ()
        (self._origins, self._macs, self._ports, self._protos, self._prefixes,
         self._contradictions) = counters  # type: ignore[assignment]  # fmt: skip

    @property
    def origin(self) -> str:
        """The origin most of its packets had (ties broken by :data:`attribution.ORIGINS`)."""
        entries = self._packed
        if entries is not None:  # the origins come first (counter 0); packed, they stay
            if self._origin is not None:
                return self._origin
            texts = self._texts[0]
            best, most = attr.UNKNOWN, -1
            for entry in entries:
                if entry >> _FIELD_SHIFT:
                    break
                count = entry & _COUNT_MASK
                origin = texts[(entry >> _COUNT_BITS) & _INDEX_MASK]
                if count > most or (count == most and _RANK.get(origin, 99) < _RANK.get(best, 99)):
                    best, most = origin, count
            self._origin = best
            return best
        origins = self.counts("origins")
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
        macs = self.counts("macs")
        if not macs:
            return None
        return min(macs, key=lambda m: (-macs[m], m))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SourceStats):
            return NotImplemented
        return (self.packets, self.first, self.last, self.error) == (
            other.packets, other.first, other.last, other.error,
        ) and all(self.counts(name) == other.counts(name) for name in COUNTERS)  # fmt: skip

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        counters = ", ".join(f"{name}={dict(self.counts(name))!r}" for name in COUNTERS)
        return (
            f"SourceStats(packets={self.packets!r}, first={self.first!r}, last={self.last!r}, "
            f"{counters}, error={self.error!r})"
        )


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


def sources_per_key(sources: Iterable[SourceStats], name: str) -> Counter[str]:
    """For counter ``name``, how many of ``sources`` count each text (packed ones are read
    without unpacking)."""
    index = COUNTERS.index(name)
    low, high = index << _FIELD_SHIFT, (index + 1) << _FIELD_SHIFT
    found: Counter[str] = Counter()
    by_table: dict[int, tuple[Sequence[str], Counter[int]]] = {}
    key_of = _COUNT_BITS.__rrshift__  # entry >> _COUNT_BITS, without a Python frame
    for stats in sources:
        entries = stats._packed
        if entries is None:
            found.update(stats.counts(name).keys())  # one per source
            continue
        table = by_table.get(id(stats._texts))
        if table is None:
            table = by_table[id(stats._texts)] = (stats._texts[index], Counter())
        start = bisect.bisect_left(entries, low)
        # counted as they come: a list of every key number would be ~40 bytes each
        table[1].update(map(key_of, entries[start : bisect.bisect_left(entries, high, start)]))
    for texts, numbers in by_table.values():
        for key, count in numbers.items():
            found[texts[key & _INDEX_MASK]] += count
    return found


def add_counts(into: dict[str, int], other: Mapping[str, int]) -> None:
    """Add the counts of ``other`` into ``into``."""
    for key, value in other.items():
        into[key] = into.get(key, 0) + value
