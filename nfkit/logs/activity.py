"""What each source touched, per time slot: the compact, mergeable store behind scan detection.

A scan is found by sliding a window over the ``(destination, port)`` pairs a source touched in
each time slot (:func:`nfkit.logs.findings.scans`). A busy log has millions of such triples, so
they are not kept as Python tuples in sets (about 270 bytes each) but as one 64-bit integer per
``(slot, destination, port)`` in an :class:`array.array` per source (8 bytes each): the slot,
destination and port are numbered through small intern tables, and an array is sorted and
de-duplicated whenever it has doubled since the last time, so its size stays within twice the
number of distinct triples.

Limits (far beyond any log that fits in memory otherwise): :data:`MAX_SLOTS` distinct time
slots, :data:`MAX_DESTINATIONS` destinations and :data:`MAX_PORTS` port keys per store; past them
:meth:`Activity.key` raises :class:`~nfkit.errors.SummaryError` rather than mixing entries up.
"""

from __future__ import annotations

import base64
import sys
from array import array
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from nfkit.errors import SummaryError
from nfkit.logs import native

__all__ = ["MAX_DESTINATIONS", "MAX_PORTS", "MAX_SLOTS", "Activity"]

_PORT_BITS = 18
_DST_BITS = 26
_SLOT_BITS = 64 - _PORT_BITS - _DST_BITS
#: Distinct time slots one store can number (a year of 5-minute slots is 105,120).
MAX_SLOTS = 1 << _SLOT_BITS
#: Distinct destination addresses one store can number.
MAX_DESTINATIONS = 1 << _DST_BITS
#: Distinct port keys ("tcp/22", "icmp/8") one store can number.
MAX_PORTS = 1 << _PORT_BITS
_PORT_MASK = MAX_PORTS - 1
_DST_MASK = MAX_DESTINATIONS - 1
_DST_SHIFT = _PORT_BITS
_SLOT_SHIFT = _PORT_BITS + _DST_BITS


class _Table:
    """Numbers distinct values 0, 1, 2, … in order of arrival."""

    __slots__ = ("ids", "limit", "names", "what")

    def __init__(self, limit: int, what: str) -> None:
        self.ids: dict[Any, int] = {}
        self.names: list[Any] = []
        self.limit = limit
        self.what = what

    def number(self, value: Any) -> int:
        number = self.ids.get(value)
        if number is None:
            number = len(self.names)
            if number >= self.limit:
                raise SummaryError(f"more than {self.limit} distinct {self.what} in one summary")
            self.ids[value] = number
            self.names.append(value)
        return number


class Activity:
    """Per source, the set of ``(slot, destination, port key)`` triples it touched."""

    __slots__ = ("_arrays", "_clean", "_dsts", "_ports", "_slots")

    def __init__(self) -> None:
        self._slots = _Table(MAX_SLOTS, "time slots")
        self._dsts = _Table(MAX_DESTINATIONS, "destinations")
        self._ports = _Table(MAX_PORTS, "port keys")
        self._arrays: dict[str, array[int]] = {}
        #: Per source, the length of its array when it was last sorted and de-duplicated.
        self._clean: dict[str, int] = {}

    # -- adding ---------------------------------------------------------------------------------
    def slot_bits(self, slot: int) -> int:
        """The part of a key that stands for ``slot`` (see :meth:`key`)."""
        return self._slots.number(slot) << _SLOT_SHIFT

    def dst_bits(self, dst: str) -> int:
        """The part of a key that stands for destination ``dst``."""
        return self._dsts.number(dst) << _DST_SHIFT

    def port_bits(self, portkey: str) -> int:
        """The part of a key that stands for ``portkey``."""
        return self._ports.number(portkey)

    def slot_numbers(self) -> list[int]:
        """Every slot, in the order of the numbers in keys (see :meth:`decode_key`)."""
        return list(self._slots.names)

    def port_numbers(self) -> list[str]:
        """Every port key, in the order of the numbers in keys."""
        return [str(name) for name in self._ports.names]

    def slot_of(self, bits: int) -> int:
        """The slot whose :meth:`slot_bits` are ``bits`` (the inverse)."""
        return self._slots.names[bits >> _SLOT_SHIFT]  # type: ignore[no-any-return]

    def key(self, slot: int, dst: str, portkey: str) -> int:
        """The integer standing for one triple: the three parts OR-ed together."""
        return self.slot_bits(slot) | self.dst_bits(dst) | self.port_bits(portkey)

    def add(self, source: str, slot: int, dst: str, portkey: str) -> None:
        """Record that ``source`` touched ``portkey`` on ``dst`` during ``slot``."""
        self.extend(source, (self.key(slot, dst, portkey),))

    def extend(self, source: str, keys: Iterable[int]) -> None:
        """Record several triples of ``source`` given as :meth:`key` integers."""
        values = self._arrays.get(source)
        if values is None:
            values = array("Q", keys)
            if not values:
                return  # a source without triples is not kept
            self._arrays[source] = values
            self._clean[source] = 0
        else:
            values.extend(keys)
        if len(values) > 2 * self._clean[source] + 16:
            self._compact(source)

    def extend_runs(self, names: Sequence[str], keys: array[int], runs: array[int]) -> None:
        """Add many sources' keys at once: ``runs`` holds (index in ``names``, start, end)
        triples into ``keys``, each run sorted and distinct (as the native scanner hands them
        over, so a new source's array needs no compaction)."""
        arrays, clean = self._arrays, self._clean
        for number, start, end in zip(runs[0::3], runs[1::3], runs[2::3], strict=True):
            source = names[number]
            values = arrays.get(source)
            if values is None:
                if end > start:
                    arrays[source] = keys[start:end]
                    clean[source] = end - start
                continue
            values.extend(keys[start:end])
            if len(values) > 2 * clean[source] + 16:
                self._compact(source)

    def _compact(self, source: str) -> array[int]:
        values = self._arrays[source]
        if len(values) != self._clean[source]:
            native.sort_unique(values)
            self._clean[source] = len(values)
        return values

    def discard(self, source: str) -> None:
        """Forget ``source`` (it was evicted from a bounded summary)."""
        self._arrays.pop(source, None)
        self._clean.pop(source, None)

    # -- reading --------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._arrays)

    def __contains__(self, source: object) -> bool:
        return source in self._arrays

    def __iter__(self) -> Iterator[str]:
        return iter(self._arrays)

    def entry_count(self) -> int:
        """Distinct triples kept, over all sources."""
        return sum(len(self._compact(source)) for source in list(self._arrays))

    def raw(self, source: str) -> array[int]:
        """The sorted, distinct keys of ``source`` (see :meth:`decode_key`)."""
        return self._compact(source)

    def spread(self, source: str) -> tuple[int, int]:
        """How many distinct port keys and destinations ``source`` touched over all slots."""
        keys = self.raw(source)
        return (
            len({key & _PORT_MASK for key in keys}),
            len({(key >> _DST_SHIFT) & _DST_MASK for key in keys}),
        )

    def densest(self, source: str, span: int) -> int:
        """The most triples ``source`` has inside one window of ``span`` slots starting at a
        slot with activity: an upper bound on the ports or hosts a scan in it can count."""
        names = self._slots.names
        slots = sorted([names[key >> _SLOT_SHIFT] for key in self.raw(source)])
        best = low = 0
        for high, slot in enumerate(slots):
            while slot >= slots[low] + span:
                low += 1
            if high - low >= best:
                best = high - low + 1
        return best

    def decode_key(self, key: int) -> tuple[int, int, int]:
        """``(slot, destination number, port number)`` of a key."""
        return (
            self._slots.names[key >> _SLOT_SHIFT],
            (key >> _DST_SHIFT) & _DST_MASK,
            key & _PORT_MASK,
        )

    def destination(self, number: int) -> str:
        """The destination a number stands for."""
        return str(self._dsts.names[number])

    def portkey(self, number: int) -> str:
        """The port key a number stands for."""
        return str(self._ports.names[number])

    def numbered_slots(self, source: str) -> dict[int, list[tuple[int, int]]]:
        """Slot -> the distinct ``(destination number, port number)`` pairs of ``source``."""
        out: dict[int, list[tuple[int, int]]] = {}
        names = self._slots.names
        for key in self.raw(source):
            slot = names[key >> _SLOT_SHIFT]
            pair = ((key >> _DST_SHIFT) & _DST_MASK, key & _PORT_MASK)
            pairs = out.get(slot)
            if pairs is None:
                out[slot] = [pair]
            else:
                pairs.append(pair)
        return out

    def by_slot(self, source: str) -> dict[int, set[tuple[str, str]]]:
        """Slot -> the ``(destination, port key)`` pairs ``source`` touched in it."""
        out: dict[int, set[tuple[str, str]]] = {}
        dsts, ports = self._dsts.names, self._ports.names
        for key in self.raw(source):
            slot, dst, port = self.decode_key(key)
            touched = out.get(slot)
            if touched is None:
                touched = out[slot] = set()
            touched.add((dsts[dst], ports[port]))
        return out

    # -- merging and JSON ----------------------------------------------------------------------
    def merge(self, other: Activity) -> None:
        """Add every triple of ``other`` (numbered by its own tables) into this store."""
        slot_map = [self.slot_bits(slot) for slot in other._slots.names]
        dst_map = [self.dst_bits(dst) for dst in other._dsts.names]
        port_map = [self.port_bits(port) for port in other._ports.names]
        for source, values in other._arrays.items():
            self.extend(
                source,
                [
                    slot_map[key >> _SLOT_SHIFT]
                    | dst_map[(key >> _DST_SHIFT) & _DST_MASK]
                    | port_map[key & _PORT_MASK]
                    for key in values
                ],
            )

    def to_json(self, slot_seconds: int) -> dict[str, Any]:
        """The compact JSON form (``"format": 2``), canonical: equal stores give equal JSON.

        ``slots`` (slot start times), ``destinations`` and ``ports`` are sorted lists; each
        source maps to the base64 of its sorted keys (little-endian unsigned 64-bit), numbered
        by those lists in the layout of :meth:`key`.
        """
        head, sources = self.json_parts(slot_seconds)
        return {**head, "sources": dict(sources)}

    def json_parts(
        self, slot_seconds: int
    ) -> tuple[dict[str, Any], Iterator[tuple[str, str]]]:
        """:meth:`to_json` in two parts: everything but ``sources``, and the ``sources``
        items made one at a time (for writing a large store without holding its JSON)."""
        # only the values some kept source uses (the tables also hold dropped sources' ones)
        used_slots: set[int] = set()
        used_dsts: set[int] = set()
        used_ports: set[int] = set()
        for source in self._arrays:
            keys = self.raw(source)
            used_slots.update({key >> _SLOT_SHIFT for key in keys})
            used_dsts.update({(key >> _DST_SHIFT) & _DST_MASK for key in keys})
            used_ports.update({key & _PORT_MASK for key in keys})
        slot_names = sorted(self._slots.names[n] for n in used_slots)
        dst_names = sorted(self._dsts.names[n] for n in used_dsts)
        port_names = sorted(self._ports.names[n] for n in used_ports)
        slot_map = array("Q", bytes(8 * len(self._slots.names)))
        for number, name in enumerate(slot_names):
            slot_map[self._slots.ids[name]] = number << _SLOT_SHIFT
        dst_map = array("Q", bytes(8 * len(self._dsts.names)))
        for number, name in enumerate(dst_names):
            dst_map[self._dsts.ids[name]] = number << _DST_SHIFT
        port_map = array("Q", bytes(8 * len(self._ports.names)))
        for number, name in enumerate(port_names):
            port_map[self._ports.ids[name]] = number

        def sources() -> Iterator[tuple[str, str]]:
            for source in sorted(self._arrays):
                renumbered = native.renumber(self.raw(source), slot_map, dst_map, port_map)
                if sys.byteorder != "little":
                    renumbered.byteswap()
                yield source, base64.b64encode(renumbered.tobytes()).decode("ascii")

        head = {
            "format": 2,
            "slots": [slot * slot_seconds for slot in slot_names],
            "destinations": dst_names,
            "ports": port_names,
        }
        return head, sources()

    @classmethod
    def from_json(cls, data: Mapping[str, Any], slot_seconds: int) -> Activity:
        """Inverse of :meth:`to_json`; also reads the first form, ``{source: [[slot start,
        [[destination, port], …]], …]}``, written by nfkit before the compact one."""
        activity = cls()
        if data.get("format") == 2:
            slots = [activity.slot_bits(int(start) // slot_seconds) for start in data["slots"]]
            dsts = [activity.dst_bits(str(dst)) for dst in data["destinations"]]
            ports = [activity.port_bits(str(port)) for port in data["ports"]]
            for source, text in data["sources"].items():
                packed = array("Q", base64.b64decode(str(text), validate=True))
                if sys.byteorder != "little":
                    packed.byteswap()
                activity.extend(
                    str(source),
                    [
                        slots[key >> _SLOT_SHIFT]
                        | dsts[(key >> _DST_SHIFT) & _DST_MASK]
                        | ports[key & _PORT_MASK]
                        for key in packed
                    ],
                )
            return activity
        for source, slot_list in data.items():
            keys = []
            for start, touched in slot_list:
                slot_bits = activity.slot_bits(int(start) // slot_seconds)
                for dst, port in touched:
                    where = activity.dst_bits(str(dst)) | activity.port_bits(str(port))
                    keys.append(slot_bits | where)
            activity.extend(str(source), keys)
        return activity

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Activity):
            return NotImplemented
        return self.keys() == other.keys() and all(
            self.by_slot(source) == other.by_slot(source) for source in self.keys()
        )

    __hash__ = None  # type: ignore[assignment]

    def keys(self) -> set[str]:
        """The sources with at least one triple."""
        return {source for source, values in self._arrays.items() if values}
