"""The native scanner (``_scan.c``), loaded with :mod:`ctypes`; None when it is not built.

The C file is compiled when the package is installed (``hatch_build.py``; ``make setup`` does
it). Without a C compiler nfkit still works: :mod:`nfkit.logs.fastpath` then uses its
pure-Python engine, which gives the same summaries more slowly. ``NFKIT_PURE=1`` in the
environment forces the pure-Python engine (the tests compare the two).

ctypes gives up the GIL for every call into the library, so threads scanning different byte
ranges run on different cores (:mod:`nfkit.logs.parallel`).
"""

from __future__ import annotations

import ctypes
import math
import os
from array import array
from pathlib import Path
from typing import Any

from nfkit.errors import SummaryError

__all__ = [
    "ABI",
    "F_ACKS",
    "F_DROPS",
    "F_PMTUD",
    "LIBRARY_NAME",
    "M_ACTIVITY",
    "M_CLASSES",
    "M_INVALID",
    "M_PMTUD",
    "M_PORTS",
    "M_TIMELINE",
    "M_TTL",
    "T_DST",
    "T_HEAD",
    "T_HEADER",
    "T_PORT",
    "T_SRC",
    "Scanner",
    "Store",
    "Windows",
    "available",
    "library_path",
    "release_memory",
    "renumber",
    "sort_unique",
]

#: File name of the compiled library, next to this module.
LIBRARY_NAME = "_scan.so"
# Value tables and counter tables, numbered as in _scan.c.
T_HEADER, T_HEAD, T_SRC, T_DST, T_PORT = range(5)
M_TTL, M_TIMELINE, M_CLASSES, M_PORTS, M_INVALID, M_PMTUD, M_ACTIVITY = range(7)  # activity: rows
#: Findings whose flows the scanner writes: INVALID drops, the ACKs among them, PMTUD hazards.
F_DROPS, F_ACKS, F_PMTUD = range(3)
#: Where the number of sources with times is in :meth:`Scanner.sizes`.
_TOUCHED = 5 + M_ACTIVITY + 1

_P = ctypes.c_void_p
_I64 = ctypes.c_int64
#: The interface version this module speaks (``nfs_abi`` in ``_scan.c``).
ABI = 6
_SIGNATURES: dict[str, tuple[Any, list[Any]]] = {
    "nfs_abi": (_I64, []),
    "nfs_new": (_P, [_I64, ctypes.c_double]),
    "nfs_derive": (None, [_P, _I64]),
    "nfs_minutes": (ctypes.c_int, [_P, ctypes.c_char_p, _I64, _I64, _P]),
    "nfs_slots": (ctypes.c_int, [_P, _P, _P, _I64]),
    "nfs_get": (None, [_P, ctypes.c_int, _I64, _I64, _P, _P, _P]),
    "nfs_free": (None, [_P]),
    "nfs_scan": (_I64, [_P, ctypes.c_char_p, _I64]),
    "nfs_count_values": (_I64, [_P, ctypes.c_int]),
    "nfs_values": (_I64, [_P, ctypes.c_int, _I64, _P, _I64]),
    "nfs_set": (ctypes.c_int, [_P, ctypes.c_int, _I64, _I64, _P, _P, _P, _P, _P]),
    "nfs_count": (ctypes.c_int, [_P, _P]),
    "nfs_fallback": (None, [_P, _P]),
    "nfs_invalid": (None, [_P, ctypes.c_int, _P, _P]),
    "nfs_sizes": (None, [_P, _P]),
    "nfs_take": (_I64, [_P, ctypes.c_int, _P]),
    "nfs_clear": (None, [_P]),
    "nfs_clear_headers": (None, [_P]),
    "nfs_evidence_limits": (None, [_P, ctypes.c_double, ctypes.c_double, ctypes.c_double]),
    "nfs_take_flows": (_I64, [_P, ctypes.c_int, _P, _I64, _P]),
    "nfs_ipv4": (None, [_P, ctypes.c_int, _I64, _P, _P]),
    "nfs_sort_unique": (_I64, [_P, _I64]),
    "nfs_renumber": (None, [_P, _I64, _P, _P, _P, _P]),
    "nfs_windows_many": (_I64, [_P, _P, _I64, _P, _P, _I64, _I64, _I64, _P, _I64]),
    "nfs_window_items": (_I64, [_P, _I64, _P, _P, _I64, _I64, _I64, ctypes.c_int, _P]),
    "nfs_norms": (ctypes.c_int, [_P, _I64, _I64, ctypes.c_char_p, _P]),
    "nfs_combos": (_I64, [_P, _P, _P, _I64]),
    "nfs_norm": (_I64, [_P, _I64, _P, _I64]),
    "nfs_store_new": (_P, []),
    "nfs_store_free": (None, [_P]),
    "nfs_store_add": (ctypes.c_int, [_P, _P, _P, _P, _P, _P, _P, _P, _I64, _P, _P, ctypes.c_int]),
    "nfs_store_bound": (_I64, [_P, _I64]),
    "nfs_store_sizes": (None, [_P, _P]),
    "nfs_store_need": (None, [_P, _I64, _I64, _P]),
    "nfs_store_take": (None, [_P, _I64, _I64, _P, _P, _P, _P, _P, _P, _P, _P, _P, _P]),
    "nfs_store_reset": (None, [_P]),
}


def library_path() -> Path:
    """Where the compiled scanner is looked for."""
    return Path(__file__).with_name(LIBRARY_NAME)


def _load() -> ctypes.CDLL | None:
    if os.environ.get("NFKIT_PURE"):
        return None
    path = library_path()
    if not path.is_file():
        return None
    try:
        lib = ctypes.CDLL(str(path))
        for name, (restype, argtypes) in _SIGNATURES.items():
            function = getattr(lib, name)
            function.restype = restype
            function.argtypes = argtypes
    except (OSError, AttributeError):
        return None
    if lib.nfs_abi() != ABI:  # built from another version of _scan.c: rebuild (make setup)
        return None
    return lib


_LIB = _load()


def available() -> bool:
    """True when the native scanner is built and loaded (and ``NFKIT_PURE`` is not set)."""
    return _LIB is not None


def _address(buffer: array[Any]) -> int:
    return buffer.buffer_info()[0]


def _trim_function() -> Any:
    try:
        trim = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    return trim


_TRIM = _trim_function()


def release_memory() -> None:
    """Hand memory freed by the scanners back to the system (glibc keeps freed blocks of
    threads' heaps otherwise); nothing where that call does not exist."""
    if _TRIM is not None:
        _TRIM(0)


def renumber(
    keys: array[int], slots: array[int], destinations: array[int], ports: array[int]
) -> array[int]:
    """Activity keys with their slot, destination and port numbers mapped through the three
    tables (to the bits of the new numbers), sorted; in C when available."""
    if _LIB is None:
        return array(
            "Q",
            sorted(
                slots[key >> 44] | destinations[(key >> 18) & 0x3FFFFFF] | ports[key & 0x3FFFF]
                for key in keys
            ),
        )
    out = array("Q", bytes(8 * len(keys)))
    if keys:
        _LIB.nfs_renumber(
            _address(keys), len(keys), _address(slots), _address(destinations),
            _address(ports), _address(out),
        )  # fmt: skip
    return out


def sort_unique(keys: array[int]) -> None:
    """Sort an ``array("Q")`` in place and drop repeated values (C speed when available)."""
    if _LIB is None:
        keys[:] = array("Q", sorted(set(keys)))
        return
    del keys[int(_LIB.nfs_sort_unique(_address(keys), len(keys))) :]


class Scanner:
    """One native scanner: its value tables and counters (not shared between threads).

    ``slot_seconds`` and ``cutoff`` (epoch seconds; lines before it are skipped, None for no
    cutoff) let it date classic syslog headers of a minute Python has read (:meth:`derive`).
    """

    __slots__ = ("_handle", "_lib")

    def __init__(self, slot_seconds: int = 60, cutoff: float | None = None) -> None:
        if _LIB is None:
            raise RuntimeError("the native scanner is not available")
        self._lib = _LIB
        handle = self._lib.nfs_new(slot_seconds, math.nan if cutoff is None else cutoff)
        if not handle:
            raise MemoryError("native scanner")
        self._handle: int | None = handle

    def close(self) -> None:
        """Free the scanner's memory (also done when it is garbage collected)."""
        handle, self._handle = self._handle, None
        if handle:
            self._lib.nfs_free(handle)

    def __del__(self) -> None:
        self.close()

    def scan(self, block: bytes) -> int:
        """Cut and number the lines of ``block`` (whole lines); returns the number of lines."""
        rows = int(self._lib.nfs_scan(self._handle, block, len(block)))
        if rows < 0:
            raise MemoryError("native scanner")
        return rows

    def count_values(self, table: int) -> int:
        """How many distinct values ``table`` holds."""
        return int(self._lib.nfs_count_values(self._handle, table))

    def values(self, table: int, start: int) -> list[bytes]:
        """The values of ``table`` numbered ``start`` on."""
        need = -int(self._lib.nfs_values(self._handle, table, start, None, 0))
        if need <= 0:
            return []
        out = ctypes.create_string_buffer(need)
        self._lib.nfs_values(self._handle, table, start, out, need)
        return out.raw.split(b"\n")[:-1]

    def ipv4(self, table: int, start: int) -> tuple[array[int], array[int]]:
        """For the values ``start`` on of ``table``: the IPv4 address as a number, and 1 where
        the value is one written as :mod:`ipaddress` writes it (else 0)."""
        size = max(0, self.count_values(table) - start)
        numbers, good = array("I", bytes(4 * size)), array("b", bytes(size))
        if size:
            self._lib.nfs_ipv4(self._handle, table, start, _address(numbers), _address(good))
        return numbers, good

    def minutes(self, keys: list[bytes], bases: array[float]) -> None:
        """Minute keys of classic syslog headers (seconds as ``??``) and the time of their
        second 00, for :meth:`derive`."""
        text = b"\n".join(keys) + b"\n"
        if keys and self._lib.nfs_minutes(
            self._handle, text, len(text), len(keys), _address(bases)
        ):
            raise MemoryError("native scanner")

    def slots(self, slots: array[int], bits: array[int]) -> None:
        """The activity bits of slots (``array("q")``, ``array("Q")``), for :meth:`derive`."""
        if len(slots) and self._lib.nfs_slots(
            self._handle, _address(slots), _address(bits), len(slots)
        ):
            raise MemoryError("native scanner")

    def derive(self, start: int) -> None:
        """Date the headers ``start`` on that are of a known minute and slot."""
        self._lib.nfs_derive(self._handle, start)

    def get(self, table: int, start: int) -> tuple[array[int], array[int], array[float]]:
        """Status, bits and time of the values ``start`` on of ``table``."""
        size = max(0, self.count_values(table) - start)
        status, bits, times = array("b", bytes(size)), array("Q", bytes(8 * size)), array("d")
        times.frombytes(bytes(8 * size))
        if size:
            self._lib.nfs_get(
                self._handle, table, start, size, _address(status), _address(bits),
                _address(times),
            )  # fmt: skip
        return status, bits, times

    def set(
        self,
        table: int,
        start: int,
        status: array[int],
        x: array[int] | None = None,
        y: array[int] | None = None,
        bits: array[int] | None = None,
        times: array[float] | None = None,
    ) -> None:
        """What the values ``start`` on of ``table`` mean (arrays ``b``, ``b``, ``b``, ``Q``,
        ``d``, one item per value)."""
        pointers = [None if a is None else _address(a) for a in (status, x, y, bits, times)]
        if self._lib.nfs_set(self._handle, table, start, len(status), *pointers):
            raise ValueError("native scanner: values out of range")

    def count(self) -> tuple[int, int, int, int, int]:
        """Count the rows of the last :meth:`scan`: (counted, skipped, fallback, INVALID drops,
        PMTUD errors)."""
        out = array("q", bytes(40))
        if self._lib.nfs_count(self._handle, _address(out)):
            raise MemoryError("native scanner")
        return out[0], out[1], out[2], out[3], out[4]

    def fallback(self, rows: int) -> array[int]:
        """(offset, length) pairs of the lines left to the full parser by :meth:`count`."""
        out = array("I", bytes(8 * rows))
        if rows:
            self._lib.nfs_fallback(self._handle, _address(out))
        return out

    def invalid(self, rows: int, pmtud: bool = False) -> tuple[array[int], array[float]]:
        """The INVALID drops (or PMTUD errors) counted by :meth:`count`: 8 numbers each (head,
        source, destination, TCP ports, flags, line offset and length), and their times."""
        ints = array("I", bytes(32 * rows))
        times = array("d", bytes(8 * rows))
        if rows:
            self._lib.nfs_invalid(self._handle, int(pmtud), _address(ints), _address(times))
        return ints, times

    def sizes(self) -> array[int]:
        """The five value tables' sizes, the six counter tables', the activity rows, then the
        sources with times."""
        out = array("q", bytes(8 * (_TOUCHED + 1)))
        self._lib.nfs_sizes(self._handle, _address(out))
        return out

    def take(self, table: int) -> array[int]:
        """Empty counter ``table``: its (key, n) pairs, flattened (the key layouts are
        ``_scan.c``'s)."""
        size = self.sizes()[5 + table]
        out = array("Q", bytes(16 * size))
        if size and self._lib.nfs_take(self._handle, table, _address(out)) < 0:
            raise MemoryError("native scanner")
        return out

    def evidence_limits(self, drops: float, acks: float, pmtud: float) -> None:
        """INVALID drops, the ACKs among them and PMTUD hazards later than these times are no
        evidence: the scanner hands back only rows at or before them (and those whose flow
        Python must write)."""
        self._lib.nfs_evidence_limits(self._handle, drops, acks, pmtud)

    def take_flows(self, which: int) -> tuple[list[str], bool]:
        """Empty the distinct flows the scanner wrote for finding ``which`` (``F_*``), and
        whether it saw more than it kept (it keeps the smallest past twice ``FLOWS``)."""
        capped = ctypes.c_int(0)
        take = self._lib.nfs_take_flows
        result = int(take(self._handle, which, None, 0, ctypes.byref(capped)))
        if result >= 0:  # none
            return [], bool(capped.value)
        out = ctypes.create_string_buffer(-result)
        take(self._handle, which, out, -result, ctypes.byref(capped))
        return out.raw.decode("ascii").split("\n")[:-1], bool(capped.value)

    def clear(self) -> None:
        """Forget every numbered value and counter (take the counters first)."""
        self._lib.nfs_clear(self._handle)

    def clear_headers(self) -> None:
        """Forget the wrapper headers (between blocks: only a block's rows use them)."""
        self._lib.nfs_clear_headers(self._handle)

    def norms(self, start: int, texts: list[str]) -> None:
        """The text, as the summary writes it, of each source value ``start`` on ("" for one
        that is no address): what a :class:`Store` knows the source by."""
        data = [text.encode() for text in texts]
        lengths = array("q", [len(text) for text in data])
        if data and self._lib.nfs_norms(
            self._handle, start, len(data), b"".join(data), _address(lengths)
        ):
            raise MemoryError("native scanner")

    def norm(self, number: int) -> str:
        """The text :meth:`norms` gave source ``number``."""
        out = ctypes.create_string_buffer(256)
        size = int(self._lib.nfs_norm(self._handle, number, out, 256))
        if size < 0:
            raise IndexError(f"no source number {number}")
        return out.raw[:size].decode()

    def combos(self, kinds: array[int]) -> array[int]:
        """The distinct (ttl key without its source << 2 | kind of source, one such source)
        pairs of the ttl table, flattened; ``kinds`` (``array("b")``) per source number."""
        cap = 4096
        while True:
            out = array("Q", bytes(16 * cap))
            found = int(self._lib.nfs_combos(self._handle, _address(kinds), _address(out), cap))
            if found < 0:
                raise MemoryError("native scanner")
            if found <= cap:
                del out[2 * found :]
                return out
            cap = found


class Store:
    """The per-source counters of a summary, in C, filled by several scanners' lanes (hold one
    lock around the calls): packets, error, first and last time, counters by key number, and
    activity keys (see ``_store.c``)."""

    __slots__ = ("_handle", "_lib")

    def __init__(self) -> None:
        if _LIB is None:
            raise RuntimeError("the native scanner is not available")
        self._lib = _LIB
        handle = self._lib.nfs_store_new()
        if not handle:
            raise MemoryError("native store")
        self._handle: int | None = handle

    def close(self) -> None:
        """Free the store's memory (also done when it is garbage collected)."""
        handle, self._handle = self._handle, None
        if handle:
            self._lib.nfs_store_free(handle)

    def __del__(self) -> None:
        self.close()

    def add(
        self,
        scanner: Scanner,
        kinds: array[int],
        numbers: dict[str, array[int]],
        counters: bool = True,
        activity: bool = True,
    ) -> None:
        """Move ``scanner``'s per-source tables in: the ``counters`` (ttl, ports, times),
        the ``activity`` keys. ``numbers`` holds the key numbers (arrays ``I``):
        ``head_mac``, ``head_prefix``, ``origins``, ``port_proto``, ``port_key``,
        ``combo_ids`` for ``combos`` (``Q``, as :meth:`Scanner.combos` gives them)."""
        arrays = [
            numbers[name] for name in ("head_mac", "head_prefix", "origins", "combos", "combo_ids")
        ]
        result = self._lib.nfs_store_add(
            self._handle, scanner._handle, _address(kinds), *map(_address, arrays[:4]),
            _address(arrays[4]), len(arrays[4]), _address(numbers["port_proto"]),
            _address(numbers["port_key"]), int(counters) | int(activity) << 1,
        )  # fmt: skip
        if result == -2:
            raise SummaryError("a per-source count passed 2**40 - 1 packets")
        if result:
            raise MemoryError("native store")

    def bound(self, limit: int) -> int:
        """Past ``limit`` and a half sources keep the ``limit`` busiest (as
        :meth:`Summary.bound`); returns how many were dropped."""
        dropped = int(self._lib.nfs_store_bound(self._handle, limit))
        if dropped < 0:
            raise MemoryError("native store")
        return dropped

    def sizes(self) -> tuple[int, int, int, int, int]:
        """Sources, counter entries, activity keys, floor, sources dropped."""
        out = array("q", bytes(40))
        self._lib.nfs_store_sizes(self._handle, _address(out))
        return out[0], out[1], out[2], out[3], out[4]

    def take(self, start: int, number: int) -> tuple[Any, ...]:
        """Copy sources ``start`` to ``start + number`` out and free their memory: texts,
        packets, errors, firsts, lasts (one item per source), counter entries and their
        numbers per source, activity keys and their numbers per source."""
        need = array("q", bytes(24))
        self._lib.nfs_store_need(self._handle, start, number, _address(need))
        text = ctypes.create_string_buffer(max(1, need[0]))
        lengths, packets, errors, counts_n, act_n = (
            array("q", bytes(8 * number)) for _ in range(5)
        )
        firsts, lasts = array("d", bytes(8 * number)), array("d", bytes(8 * number))
        counts, act = array("Q", bytes(8 * need[1])), array("Q", bytes(8 * need[2]))
        buffers: tuple[array[Any], ...] = (
            lengths, packets, errors, firsts, lasts, counts, counts_n, act, act_n
        )  # fmt: skip
        self._lib.nfs_store_take(self._handle, start, number, text, *map(_address, buffers))
        raw = text.raw
        texts, at = [], 0
        for length in lengths:
            texts.append(raw[at : at + length].decode())
            at += length
        return texts, packets, errors, firsts, lasts, counts, counts_n, act, act_n

    def reset(self) -> None:
        """Forget every source, the floor and the count of dropped sources."""
        self._lib.nfs_store_reset(self._handle)


class Windows:
    """The densest windows of sources' activity keys (what :func:`findings.scans` looks for).

    ``slots`` gives the slot of each slot number, ``is_port`` whether each port number is of a
    port protocol; both are the activity store's numbering.
    """

    __slots__ = ("_is_port", "_lib", "_slots", "span")

    def __init__(self, slots: array[int], is_port: array[int], span: int) -> None:
        if _LIB is None:
            raise RuntimeError("the native scanner is not available")
        self._lib = _LIB
        self._slots = slots
        self._is_port = is_port
        self.span = span

    def best_many(
        self, arrays: list[array[int]], vmin: int, hmin: int
    ) -> list[tuple[int, int, int, int, int]]:
        """Per source of ``arrays`` (its activity keys), the densest windows whose count
        reaches ``vmin`` (vertical: ports on one destination) or ``hmin`` (horizontal:
        destinations of one port), in one call into C without the GIL: (index in ``arrays``,
        kind 0 vertical / 1 horizontal, destination or port number, count, window start)."""
        pointers = array("Q", [_address(keys) for keys in arrays])
        lengths = array("q", [len(keys) for keys in arrays])
        cap = 5 * 4096
        while True:
            out = array("q", bytes(8 * cap))
            found = int(
                self._lib.nfs_windows_many(
                    _address(pointers), _address(lengths), len(arrays), _address(self._slots),
                    _address(self._is_port), self.span, vmin, hmin, _address(out), cap,
                )
            )  # fmt: skip
            if found == -1:
                raise MemoryError("native scanner")
            if found >= 0:
                return [tuple(out[i : i + 5]) for i in range(0, 5 * found, 5)]  # type: ignore[misc]
            cap = -found

    def items(self, keys: array[int], start: int, number: int, vertical: bool) -> list[int]:
        """The ports (``vertical``) on destination ``number``, or the destinations of port
        ``number``, touched in the window from slot ``start``."""
        out = array("q", bytes(8 * len(keys)))
        found = int(
            self._lib.nfs_window_items(
                _address(keys), len(keys), _address(self._slots), _address(self._is_port),
                start, self.span, number, int(vertical), _address(out),
            )
        )  # fmt: skip
        if found < 0:
            raise MemoryError("native scanner")
        return list(out[:found])
