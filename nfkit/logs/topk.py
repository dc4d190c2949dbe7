"""A bounded, mergeable table of heavy hitters (Space-Saving), for sources beyond memory.

A summary of a log with millions of distinct sources cannot keep every source. The
:class:`HeavyHitters` table keeps at most ``capacity`` keys with a count and an error bound
(Metwally, Agrawal, El Abbadi, *Efficient computation of frequent and top-k elements in data
streams*, 2005; merging as in Agarwal et al., *Mergeable summaries*, 2012):

* every key it keeps has ``count - error <= true count <= count``: when ``error`` is 0 the count
  is **exact** (the key was in the table from its first packet on);
* every key it does not keep has a true count of at most :attr:`HeavyHitters.floor`;
* ``floor`` (and so every error) is at most ``total / capacity`` for a table fed by :meth:`add`,
  and at most ``2 * total / capacity`` after merges (``total`` is the weight of everything added);
  hence any key with more than that many packets is certainly in the table;
* :meth:`merge` is exact in the same sense: merging the tables of two parts of a stream gives a
  table with the guarantees above for the whole stream.

So with ``capacity = 100_000`` and 10 million packets, every source that sent more than 100
(200 after merges) packets is kept, with its count off by at most that much, and the report can
say exactly which counts are approximate (``error > 0``).

Keys are evicted lowest count first; :meth:`add` returns the evicted key so that a caller keeping
more per key (a :class:`~nfkit.logs.aggregate.SourceStats`) can drop it too.
"""

from __future__ import annotations

import heapq
from collections.abc import Hashable, Iterator, Mapping
from typing import Any, Generic, TypeVar

__all__ = ["HeavyHitters"]

K = TypeVar("K", bound=Hashable)


class HeavyHitters(Generic[K]):
    """Space-Saving table of at most ``capacity`` keys with counts and error bounds."""

    __slots__ = ("_counts", "_errors", "_heap", "_seq", "capacity", "floor", "total")

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self.capacity = capacity
        #: Weight of everything added (or merged in).
        self.total = 0
        #: Upper bound on the true count of any key not in the table.
        self.floor = 0
        self._counts: dict[K, int] = {}
        self._errors: dict[K, int] = {}
        # (count, key) entries, some stale: a key's entry is current iff its count matches.
        self._heap: list[tuple[int, int, K]] = []
        self._seq = 0  # ties on count are broken by push order: deterministic

    def __len__(self) -> int:
        return len(self._counts)

    def __contains__(self, key: object) -> bool:
        return key in self._counts

    def __iter__(self) -> Iterator[K]:
        return iter(self._counts)

    def add(self, key: K, count: int = 1) -> K | None:
        """Count ``count`` packets of ``key``; return the key evicted to make room, if any."""
        if count < 1:
            raise ValueError("count must be positive")
        self.total += count
        counts = self._counts
        known = counts.get(key)
        if known is not None:
            counts[key] = known + count
            self._push(key, known + count)
            return None
        evicted: K | None = None
        if len(counts) >= self.capacity:
            evicted = self._pop_min()
        counts[key] = self.floor + count
        self._errors[key] = self.floor
        self._push(key, self.floor + count)
        return evicted

    def count(self, key: K) -> int:
        """Estimated count (an upper bound); :attr:`floor` for a key not in the table."""
        return self._counts.get(key, self.floor)

    def error(self, key: K) -> int:
        """How much :meth:`count` may exceed the true count (0: exact)."""
        return self._errors.get(key, self.floor)

    def is_exact(self, key: K) -> bool:
        """True when the key is kept and its count is exact."""
        return key in self._counts and self._errors[key] == 0

    def items(self) -> list[tuple[K, int, int]]:
        """``(key, count, error)`` for every kept key, highest count first."""
        return sorted(
            ((k, c, self._errors[k]) for k, c in self._counts.items()),
            key=lambda item: (-item[1], repr(item[0])),
        )

    def guaranteed(self) -> list[K]:
        """Keys certainly among the heavy hitters: their lower bound exceeds :attr:`floor`."""
        return [k for k, c, e in self.items() if c - e > self.floor]

    def merge(self, other: HeavyHitters[K]) -> HeavyHitters[K]:
        """Add ``other`` (the table of another part of the stream) into this table."""
        mine_floor, their_floor = self.floor, other.floor
        counts: dict[K, int] = {}
        errors: dict[K, int] = {}
        for key in self._counts.keys() | other._counts.keys():
            counts[key] = self._counts.get(key, mine_floor) + other._counts.get(key, their_floor)
            errors[key] = self._errors.get(key, mine_floor) + other._errors.get(key, their_floor)
        floor = mine_floor + their_floor
        capacity = max(self.capacity, other.capacity)
        if len(counts) > capacity:
            ranked = sorted(counts, key=lambda k: (-counts[k], repr(k)))
            for key in ranked[capacity:]:
                floor = max(floor, counts.pop(key))
                del errors[key]
        self.capacity = capacity
        self.total += other.total
        self.floor = floor
        self._counts = counts
        self._errors = errors
        self._rebuild()
        return self

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (string keys)."""
        return {
            "capacity": self.capacity,
            "total": self.total,
            "floor": self.floor,
            "items": [[str(k), c, e] for k, c, e in self.items()],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> HeavyHitters[str]:
        """Inverse of :meth:`to_dict` (keys come back as strings)."""
        table: HeavyHitters[str] = HeavyHitters(int(data["capacity"]))
        table.total = int(data["total"])
        table.floor = int(data["floor"])
        for key, count, error in data["items"]:
            table._counts[str(key)] = int(count)
            table._errors[str(key)] = int(error)
            table._push(str(key), int(count))
        return table

    # -- the lazy min-heap ----------------------------------------------------------------------
    def _push(self, key: K, count: int) -> None:
        self._seq += 1
        heapq.heappush(self._heap, (count, self._seq, key))
        if len(self._heap) > 4 * self.capacity + 64:  # drop stale entries now and then
            self._rebuild()

    def _rebuild(self) -> None:
        self._heap = []
        for key, count in self._counts.items():
            self._seq += 1
            self._heap.append((count, self._seq, key))
        heapq.heapify(self._heap)

    def _pop_min(self) -> K:
        heap, counts = self._heap, self._counts
        while True:
            count, _, key = heapq.heappop(heap)
            if counts.get(key) == count:
                del counts[key]
                del self._errors[key]
                self.floor = max(self.floor, count)
                return key
