"""Per-source counts in C while native lanes run, moved into the :class:`Summary` at the end.

A :class:`SourceStore` is what a :class:`~nfkit.logs.fastpath.BlockSummarizer` keeps its
sources in while :class:`~nfkit.logs.nativepath.NativeLane` objects feed it: each lane moves
its per-source tables (packets, origins, MACs, prefixes, contradictions, protocols, ports,
first and last time, activity keys) into one :class:`nfkit.logs.native.Store` without a
Python loop over them, so the lanes can empty their tables often and stay small. Python
numbers the texts the counters are kept under (:meth:`SourceStore.key`).

:meth:`SourceStore.drain` moves everything into the summary, as :meth:`Summary.merge` would
merge the summary of the same lines: the store drops sources past ``max_sources`` as
:meth:`Summary.bound` does and keeps its own floor until then.
"""

from __future__ import annotations

import gc
import math
from array import array

from nfkit.errors import SummaryError
from nfkit.logs import native
from nfkit.logs.aggregate import Summary
from nfkit.logs.counters import COUNTERS, INDEX_BITS, SourceStats, add_counts

__all__ = ["NO_KEY", "SourceStore"]

#: "No key" for the store (a head without MAC, a port number that is no port).
NO_KEY = 0xFFFFFFFF
#: Key numbers: counter << INDEX_BITS | index, as packed SourceStats read them (``_store.c``
#: takes at most 2**24 in all).
_INDEX_LIMIT = 1 << INDEX_BITS
#: Sources copied out of C at a time when draining.
_BATCH = 8192


class SourceStore:
    """The C store of per-source counts and the numbering of the texts they are kept under."""

    def __init__(self) -> None:
        self.store = native.Store()
        self._ids: list[dict[str, int]] = [{} for _ in COUNTERS]
        self._texts: list[list[str]] = [[] for _ in COUNTERS]

    def key(self, field: int, text: str) -> int:
        """The number of ``text`` in counter ``field`` (an index of :data:`COUNTERS`)."""
        ids = self._ids[field]
        number = ids.get(text)
        if number is None:
            texts = self._texts[field]
            if len(texts) >= _INDEX_LIMIT:
                raise SummaryError(f"more than {_INDEX_LIMIT} distinct {COUNTERS[field]}")
            number = ids[text] = field << INDEX_BITS | len(texts)
            texts.append(text)
        return number

    def bound(self, limit: int | None) -> None:
        """Drop the least busy sources past ``limit`` and a half (None: no limit)."""
        if limit is not None:
            self.store.bound(limit)

    def drain(self, summary: Summary) -> None:
        """Move every source into ``summary`` (as merging a summary of the same lines) and
        empty the store."""
        number, _entries, _keys, floor, dropped = self.store.sizes()
        if not (number or floor or dropped):
            return
        enabled = gc.isenabled()
        gc.disable()  # nothing here makes cycles; a collection would walk every source
        try:
            self._drain(summary, number, floor, dropped)
        finally:
            if enabled:
                gc.enable()

    def _drain(self, summary: Summary, number: int, floor: int, dropped: int) -> None:
        store = self.store
        sources = summary.sources
        before = set(sources) if floor else set()
        texts_of = self._texts
        activity = summary.activity
        base = summary.floor
        for start in range(0, number, _BATCH):
            size = min(_BATCH, number - start)
            names, packets, errors, firsts, lasts, counts, counts_n, act, act_n = store.take(
                start, size
            )
            at = 0
            runs = array("Q")
            act_at = 0
            for i, address in enumerate(names):
                end = at + counts_n[i]
                first = None if math.isnan(firsts[i]) else firsts[i]
                last = None if math.isnan(lasts[i]) else lasts[i]
                stats = sources.get(address)
                if stats is None:  # kept packed (SourceStats.counts reads them)
                    sources[address] = SourceStats.packed(
                        packets[i], first, last, base + errors[i], counts[at:end], texts_of
                    )
                else:  # also counted by the full parser (a line the scanner left to it)
                    before.discard(address)
                    theirs = SourceStats.packed(0, None, None, 0, counts[at:end], texts_of)
                    for name in COUNTERS:
                        add_counts(getattr(stats, name), theirs.counts(name))
                    stats.packets += packets[i]
                    stats.error += errors[i]
                    if first is not None and (stats.first is None or first < stats.first):
                        stats.first = first
                    if last is not None and (stats.last is None or last > stats.last):
                        stats.last = last
                at = end
                if act_n[i]:
                    runs.extend((i, act_at, act_at + act_n[i]))
                    act_at += act_n[i]
            activity.extend_runs(names, act, runs)
            del names, counts, act
            native.release_memory()  # what this batch held in C, for the summary to use
        for address in before:  # listed here, not in the store: they may have sent up to floor
            sources[address].error += floor
        summary.floor += floor
        summary.dropped += dropped
        store.reset()
        summary.bound()

    def close(self) -> None:
        """Free the C memory."""
        self.store.close()
