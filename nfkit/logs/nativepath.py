"""The summary engine's native lane: the C scanner cuts and counts, Python says what values mean.

A :class:`NativeLane` feeds blocks of one byte stream to a :class:`~nfkit.logs.native.Scanner`
for a :class:`~nfkit.logs.fastpath.BlockSummarizer` (its *engine*), in four steps per block:

1. the scanner cuts every line of the strict common shape (the same shape the pure-Python
   engine's pattern accepts, or less) into wrapper header, ``PREFIX IN= OUT= MAC=`` head,
   source, destination and port key, and numbers each distinct value (no GIL held);
2. each value new to the lane is read once in Python, by the engine's own interpreters — the
   full parser on a representative line for headers and heads, :func:`ipaddress.ip_address` for
   addresses — and what it means goes back to the scanner (status, origin, activity bits...);
   classic syslog headers of a minute already read are dated by the scanner itself;
3. the scanner counts the rows into integer-keyed tables (no GIL held), INVALID drops and their
   flows included, and hands back the lines the full parser must read (any value it rejected),
   the PMTUD errors, and the INVALID drops that may be evidence or whose flow Python writes;
4. when a table grows, the per-source tables move into the engine's
   :class:`~nfkit.logs.sourcestore.SourceStore` in C (``_flush_sources``: Python only numbers
   what heads and ports stand for), and :meth:`NativeLane.flush` moves the others into the
   engine's summary once per distinct key, as :meth:`BlockSummarizer.flush` does for its own
   counters; the engine drains the store into the summary at the end.

Several lanes may share one engine (and so one summary), one per thread: the Python steps hold
the engine's lock, the C steps run in parallel.
"""

from __future__ import annotations

import math
from array import array
from ipaddress import IPv4Address
from typing import TYPE_CHECKING, Any

from nfkit.logs import attribution as attr
from nfkit.logs import native
from nfkit.logs.aggregate import DROP, UNKNOWN_VERDICT
from nfkit.logs.counters import COUNTERS, EVIDENCE, FLOWS, Finding
from nfkit.logs.record import IPAddress, LogRecord
from nfkit.logs.sourcestore import NO_KEY

if TYPE_CHECKING:
    from nfkit.logs.fastpath import BlockSummarizer

__all__ = ["ORIGIN_CODES", "LineFeeder", "NativeLane", "whole_lines"]

#: Origins by their code in the scanner (its ``O_*`` numbers); code 5 is "by the source".
ORIGIN_CODES = (attr.UPSTREAM, attr.PEER, attr.LOCAL, attr.FORWARDED, attr.UNKNOWN)
_DEPENDS = 5
_CODE = {origin: code for code, origin in enumerate(ORIGIN_CODES)}
_OK, _REJECT, _SKIP = 1, 2, 3
#: Blocks are cut to this size: the value tables are checked after each (see _VALUE_LIMIT).
_BLOCK = 4 << 20
#: Value numbers in the scanner's counter keys take 20 bits.
_ID_MASK = (1 << 20) - 1
#: The part of a TTL counter key below the source: head, hop class, origin.
_HEAD_HOPS_ORIGIN = (1 << 25) - 1
#: Where the slot number sits in an activity key (nfkit.logs.activity).
_SLOT_SHIFT = 44
_NO_PORT = 0xFFFFFFFF
#: What a contradiction looks at of a source, by its code: (in the own networks, a gateway IP).
_KIND_LIST = tuple((bool(code & 2), bool(code & 1)) for code in range(4))
_ORIGINS, _MACS, _PORTS, _PROTOS, _PREFIXES, _CONTRADICTIONS = range(len(COUNTERS))
#: Verdicts under which a dropped PMTUD error is a hazard (else it was let through).
_HAZARD = (DROP, UNKNOWN_VERDICT)
#: A TTL standing for each hop class the scanner counts by: 0 hops, some, unknown.
_HOP_TTLS = (64, 63, 256)
#: The counter tables are moved into the summary when one holds this many keys (each key
#: costs Python work once per flush: the fewer flushes, the faster; 16-32 bytes of C each).
_TABLE_LIMIT = 1 << 21
#: The per-source tables move into the engine's store (in C, no Python work per key) when the
#: activity rows (12 bytes each) or a per-source counter table (16-32 bytes a key) hold this
#: many: small tables, and the store keeps each key once for all lanes. (The activity limit
#: leaves room for a block's rows below 2**19, where the row buffer would double.)
_ACTIVITY_LIMIT = (1 << 19) - (1 << 15)
_SOURCE_LIMIT = 1 << 18
#: Key numbers for a store flush of activity keys only (none are needed).
_NO_NUMBERS = {
    name: array("I")
    for name in (
        "head_mac",
        "head_prefix",
        "origins",
        "combos",
        "combo_ids",
        "port_proto",
        "port_key",
    )
}
#: The value tables are emptied (after a flush) when one holds this many values.
_VALUE_LIMIT = 1 << 17
#: The wrapper headers (a syslog header per second), which no counter refers to, are
#: forgotten when there are this many.
_HEADER_LIMIT = 1 << 13


class _Head:
    """What a ``PREFIX IN= OUT= MAC=`` head means (one per distinct head of a lane)."""

    __slots__ = ("in_iface", "invalid", "mac", "out_iface", "prefix", "verdict")

    def __init__(self, record: LogRecord, prefix: str, verdict: str, invalid: bool) -> None:
        self.in_iface = record.in_iface
        self.out_iface = record.out_iface
        self.mac = record.mac_src
        self.prefix = prefix
        self.verdict = verdict
        self.invalid = invalid


class LineFeeder:
    """Bytes in, whole lines out to :meth:`feed_lines`; a last partial line waits."""

    _rest = b""

    def feed(self, data: bytes) -> None:
        """Add bytes; a last partial line waits for the next call or the end."""
        lines, self._rest = whole_lines(self._rest, data)
        if lines:
            self.feed_lines(lines)

    def feed_rest(self) -> None:
        """Count a last line without newline (at the end)."""
        if self._rest:
            rest, self._rest = self._rest, b""
            self.feed_lines(rest + b"\n")

    def feed_lines(self, block: bytes) -> None:
        """Add whole lines (``block`` ends with a newline)."""
        raise NotImplementedError


class NativeLane(LineFeeder):
    """One byte stream (a file, a range of one) scanned natively into ``engine``'s summary."""

    def __init__(self, engine: BlockSummarizer) -> None:
        self.engine = engine
        config = engine.config
        self.scanner = native.Scanner(config.slot_seconds, engine.cutoff)
        #: Headers read so far; minutes told to the scanner.
        self._header_count = 0
        self._minutes: set[bytes] = set()
        # per value number, what Python made of it
        self._heads: list[_Head | None] = []
        #: Source numbers read so far (the scanner keeps the text the summary writes of each,
        #: Scanner.norm); per source number its address object when the segment needs one to
        #: decide (else None).
        self._source_count = 0
        self._addresses: list[IPAddress | None] = []
        #: Per source number, what a contradiction depends on: in own networks << 1 | gateway IP.
        self._kind_codes = array("b")
        self._destinations: list[str | None] = []
        self._ports: list[Any] = []
        self._contradictions: dict[tuple[int, tuple[bool, bool]], str | None] = {}
        #: INVALID drops, their ACKs and PMTUD hazards since the last flush: the flows Python
        #: writes (capped as they go), and each one's earliest (time, line) evidence.
        self._invalid, self._acks, self._pmtud_hazards = Finding(), Finding(), Finding()
        self._evidence: tuple[list[tuple[float, str]], ...] = ([], [], [])
        self._scratch = LogRecord()

    # -- feeding -------------------------------------------------------------------------------
    def finish(self) -> None:
        """Count a last line without newline, and flush."""
        self.feed_rest()
        with self.engine.lock:
            self.flush()

    def feed_lines(self, block: bytes) -> None:
        """Add whole lines (``block`` ends with a newline)."""
        if len(block) > _BLOCK:  # the scanner numbers at most 2**20 values between checks
            start = 0
            while start < len(block):
                end = block.rfind(b"\n", start, start + _BLOCK) + 1 or block.find(b"\n", start) + 1
                self._feed_block(block[start:end])
                start = end
            return
        self._feed_block(block)

    def _feed_block(self, block: bytes) -> None:
        scanner = self.scanner
        scanner.scan(block)
        engine = self.engine
        with engine.lock:
            self._learn()
        counted, skipped, fallback, invalid, pmtud = scanner.count()
        with engine.lock:
            summary = engine.summary
            summary.lines += counted + skipped
            summary.records += counted
            summary.skipped += skipped
            if fallback:
                spans = scanner.fallback(fallback)
                engine.fallback(
                    block[spans[i] : spans[i] + spans[i + 1]] for i in range(0, len(spans), 2)
                )
            if invalid:
                self._findings(block, *scanner.invalid(invalid))
            if pmtud:
                self._pmtud(block, *scanner.invalid(pmtud, pmtud=True))
            sizes = scanner.sizes()
            if max(sizes[5 : 5 + native.M_ACTIVITY]) > _TABLE_LIMIT:
                self.flush()
            else:
                counters = max(sizes[5 + native.M_TTL], sizes[5 + native.M_PORTS]) > _SOURCE_LIMIT
                activity = sizes[5 + native.M_ACTIVITY] > _ACTIVITY_LIMIT
                if counters or activity:
                    self._flush_sources(counters, activity)
            if max(sizes[:5]) > _VALUE_LIMIT:
                self.flush()
                self.forget()
            elif sizes[native.T_HEADER] > _HEADER_LIMIT:  # each second has its own
                scanner.clear_headers()
                self._header_count = 0

    def forget(self) -> None:
        """Empty the value tables (counted rows refer to their numbers: flush first)."""
        self.scanner.clear()
        lists = (self._heads, self._addresses, self._destinations, self._ports)
        for values in lists:
            values.clear()
        self._source_count = 0
        del self._kind_codes[:]
        self._header_count = 0
        self._minutes.clear()
        self._contradictions.clear()

    # -- what values mean ------------------------------------------------------------------------
    def _learn(self) -> None:
        """Read the values new since the last block and tell the scanner what they mean."""
        scanner, engine = self.scanner, self.engine
        activity = engine.summary.activity
        self._learn_headers()
        start = len(self._heads)
        if scanner.count_values(native.T_HEAD) > start:
            status, origins, invalid = array("b"), array("b"), array("b")
            hazard = array("Q")  # a PMTUD error logged by this head's rule is a hazard
            attributor = engine.attributor
            for text in scanner.values(native.T_HEAD, start):
                head_info = engine.head_info(text)
                if head_info is None:
                    self._heads.append(None)
                    status.append(_REJECT)
                    origins.append(0)
                    invalid.append(0)
                    hazard.append(0)
                    continue
                record, prefix, verdict, is_invalid = head_info
                self._heads.append(_Head(record, prefix, verdict, is_invalid))
                origin = attributor.link_origin(record)
                status.append(_OK)
                origins.append(_DEPENDS if origin is None else _CODE[origin])
                invalid.append(is_invalid)
                hazard.append(verdict in _HAZARD)
            scanner.set(native.T_HEAD, start, status, x=origins, y=invalid, bits=hazard)
        segment = engine.config.segment
        start = self._source_count
        if scanner.count_values(native.T_SRC) > start:
            names: list[str] = []
            status, family, inside = array("b"), array("b"), array("b")
            gateways = segment.gateway_ips
            # with no networks and no gateway IPs, no decision looks at the source address
            keep = bool(segment.networks or gateways)
            numbers, plain = scanner.ipv4(native.T_SRC, start)
            for text, number, is_plain in zip(
                scanner.values(native.T_SRC, start), numbers, plain, strict=True
            ):
                # (address or None when no decision needs it, text as the summary writes it)
                value: tuple[IPAddress | None, str] | None
                if is_plain:  # the text is the address as the summary writes it
                    value = (IPv4Address(number) if keep else None, text.decode("ascii"))
                else:
                    value = engine.address(text)
                address = None if value is None else value[0]
                is_inside = address is not None and segment.contains(address)
                names.append("" if value is None else value[1])
                self._addresses.append(address if keep else None)
                is_gateway = address is not None and address in gateways
                self._kind_codes.append(is_inside << 1 | is_gateway)
                status.append(_REJECT if value is None else _OK)
                family.append(0 if value is None else 4 if address is None else address.version)
                inside.append(is_inside)
            scanner.set(native.T_SRC, start, status, x=family, y=inside)
            scanner.norms(start, names)  # kept in C: a lane sees many sources
            self._source_count += len(names)
        start = len(self._destinations)
        if scanner.count_values(native.T_DST) > start:
            status, family, bits = array("b"), array("b"), array("Q")
            for text in scanner.values(native.T_DST, start):
                value = engine.address(text)
                if value is None:
                    self._destinations.append(None)
                    status.append(_REJECT)
                    family.append(-1)
                    bits.append(0)
                    continue
                self._destinations.append(value[1])
                status.append(_OK)
                family.append(value[0].version)
                bits.append(activity.dst_bits(value[1]))
            scanner.set(native.T_DST, start, status, x=family, bits=bits)
        start = len(self._ports)
        if scanner.count_values(native.T_PORT) > start:
            status, skip, bits = array("b"), array("b"), array("Q")
            for key in scanner.values(native.T_PORT, start):
                port = engine.port_info(_port_key(key))
                self._ports.append(port)
                status.append(_OK)
                skip.append(port.portkey is None)
                bits.append(0 if port.portkey is None else activity.port_bits(port.portkey))
            scanner.set(native.T_PORT, start, status, x=skip, bits=bits)

    def _learn_headers(self) -> None:
        """Date the new wrapper headers: the scanner does it for classic syslog headers of a
        minute and slot it has been told (one header per minute is read here, by the full
        parser); the others are read here."""
        scanner, engine = self.scanner, self.engine
        activity = engine.summary.activity
        start, total = self._header_count, scanner.count_values(native.T_HEADER)
        if total <= start:
            return
        headers = scanner.values(native.T_HEADER, start)
        keys: list[bytes] = []
        bases, slots, slot_bits = array("d"), array("q"), array("Q")
        minutes = self._minutes
        for header in headers:
            if not _is_syslog(header):
                continue
            key = header[:13] + b"??" + header[15:]
            if key in minutes:
                continue
            minutes.add(key)
            second = int(header[13:15])
            info = engine.header_info(header)
            if second > 59 or info is None or info[0] is None:
                continue
            keys.append(key)
            bases.append(info[0] - second)
            if not info[2]:
                slots.append(info[1])
                slot_bits.append(activity.slot_bits(info[1]))
        scanner.minutes(keys, bases)
        scanner.slots(slots, slot_bits)
        scanner.derive(start)
        status, bits, times = scanner.get(native.T_HEADER, start)
        del slots[:], slot_bits[:]
        for i, header in enumerate(headers):
            if status[i]:
                continue  # dated by the scanner
            info = engine.header_info(header)
            if info is None:
                status[i] = _REJECT
                continue
            time, slot, skipped = info
            status[i] = _SKIP if skipped else _OK
            if not skipped:
                bits[i] = activity.slot_bits(slot)
                slots.append(slot)
                slot_bits.append(bits[i])
            times[i] = math.nan if time is None else time
        scanner.set(native.T_HEADER, start, status, bits=bits, times=times)
        scanner.slots(slots, slot_bits)
        self._header_count = total

    # -- INVALID drops -----------------------------------------------------------------------------
    def _findings(self, block: bytes, ints: array[int], times: array[float]) -> None:
        """INVALID drops the scanner hands back: flows it could not write (an address Python
        writes differently, flag 4), and rows that may be among the earliest (flag 8)."""
        source, destinations = self.scanner.norm, self._destinations
        invalid, acks = self._invalid, self._acks
        evidence = self._evidence
        for row, time in enumerate(times):
            _head, src, dst, spt, dpt, flags, offset, length = ints[8 * row : 8 * row + 8]
            is_ack = dpt != _NO_PORT and flags & 1 and not flags & 2
            if flags & 4:
                flow = f"{source(src)}:{spt}>{destinations[dst]}:{dpt}"
                invalid.flows.add(flow)
                if is_ack:
                    acks.flows.add(flow)
            if not flags & 8:
                continue
            stamp = 0.0 if math.isnan(time) else time
            for kept, wanted in ((evidence[0], True), (evidence[1], is_ack)):
                if wanted and (len(kept) < EVIDENCE or stamp <= kept[-1][0]):
                    line = block[offset : offset + length].decode("utf-8", "replace")
                    kept.append((stamp, line))
                    kept.sort()
                    del kept[EVIDENCE:]
        for finding in (invalid, acks):
            if len(finding.flows) > 2 * FLOWS:
                finding.cap_flows()
        self._tell_evidence_limits()

    def _tell_evidence_limits(self) -> None:
        """Rows later than the latest evidence line kept (when EVIDENCE are kept) are none."""
        limits = [kept[-1][0] if len(kept) >= EVIDENCE else math.inf for kept in self._evidence]
        self.scanner.evidence_limits(*limits)

    def _pmtud(self, block: bytes, ints: array[int], times: array[float]) -> None:
        """PMTUD hazards the scanner hands back (it counts every PMTUD error per head): flows it
        could not write (flag 4), rows that may be among the earliest (flag 8)."""
        source, destinations = self.scanner.norm, self._destinations
        hazards, kept = self._pmtud_hazards, self._evidence[2]
        for row, time in enumerate(times):
            _head, src, dst, _spt, _dpt, flags, offset, length = ints[8 * row : 8 * row + 8]
            if flags & 4:
                hazards.flows.add(f"{source(src)}>{destinations[dst]}")
            stamp = 0.0 if math.isnan(time) else time
            if flags & 8 and (len(kept) < EVIDENCE or stamp <= kept[-1][0]):
                kept.append((stamp, block[offset : offset + length].decode("utf-8", "replace")))
                kept.sort()
                del kept[EVIDENCE:]
        if len(hazards.flows) > 2 * FLOWS:
            hazards.cap_flows()
        self._tell_evidence_limits()

    # -- moving the counts into the summary ----------------------------------------------------
    def flush(self) -> None:
        """Move the scanner's counters into the engine's summary and store (hold the engine's
        lock)."""
        self._flush_sources()
        self._flush_classes()
        self._flush_findings()
        self.engine.summary.bound()

    def _flush_sources(self, counters: bool = True, activity: bool = True) -> None:
        """Move the per-source tables into the engine's store, in C: the ``counters`` (ttl,
        ports, times), the ``activity`` keys. Python only numbers what the lane's heads and
        ports stand for, and says which contradiction each distinct (head, hops, origin, kind
        of source) is."""
        store = self.engine.store
        assert store is not None
        if not counters:
            store.store.add(self.scanner, self._kind_codes, _NO_NUMBERS, False, activity)
            native.release_memory()
            return
        key = store.key
        heads, ports = self._heads, self._ports
        none = NO_KEY
        head_mac = array("I", [
            key(_MACS, head.mac) if head is not None and head.mac else none for head in heads
        ])  # fmt: skip
        head_prefix = array("I", [key(_PREFIXES, "" if head is None else head.prefix)
                                  for head in heads])  # fmt: skip
        origins = array("I", [key(_ORIGINS, origin) for origin in ORIGIN_CODES])
        origins.extend([0, 0, 0])
        port_proto = array("I", [key(_PROTOS, port.proto) for port in ports])
        port_key = array("I", [
            key(_PORTS, port.portkey) if port.has_port else none for port in ports
        ])  # fmt: skip
        kinds = self._kind_codes
        combos = self.scanner.combos(kinds)
        combo_ids = array("I")
        contradictions, addresses = self._contradictions, self._addresses
        for combo, number in zip(combos[0::2], combos[1::2], strict=True):
            decides = (combo >> 2, _KIND_LIST[combo & 3])
            if decides in contradictions:
                contradiction = contradictions[decides]
            else:
                contradiction = contradictions[decides] = self._contradiction(
                    heads[(combo >> 7) & _ID_MASK],  # type: ignore[arg-type]
                    addresses[number],
                    _HOP_TTLS[(combo >> 5) & 3],
                )
            combo_ids.append(none if contradiction is None else key(_CONTRADICTIONS, contradiction))
        store.store.add(self.scanner, kinds, {
            "head_mac": head_mac, "head_prefix": head_prefix, "origins": origins,
            "combos": combos, "combo_ids": combo_ids, "port_proto": port_proto,
            "port_key": port_key,
        }, True, activity)  # fmt: skip
        store.bound(self.engine.config.max_sources)
        native.release_memory()  # the tables just emptied, for the store and the next rows

    def _contradiction(self, head: _Head, address: IPAddress | None, ttl: int) -> str | None:
        scratch = self._scratch
        scratch.in_iface = head.in_iface
        scratch.out_iface = head.out_iface
        scratch.mac_src = head.mac
        scratch.src = address
        scratch.ttl = ttl
        return self.engine.attributor.attribute(scratch)[1]

    def _flush_classes(self) -> None:
        scanner, summary = self.scanner, self.engine.summary
        heads, ports = self._heads, self._ports
        table = scanner.take(native.M_TIMELINE)
        slot_of = summary.activity.slot_of
        # key: slot number << 23 | head << 3 | origin
        for key, count in zip(table[0::2], table[1::2], strict=True):
            summary.count_slot(
                slot_of((key >> 23) << _SLOT_SHIFT),
                ORIGIN_CODES[key & 7],
                heads[(key >> 3) & _ID_MASK].prefix,  # type: ignore[union-attr]
                count,
            )
        table = scanner.take(native.M_CLASSES)
        # key: head << 23 | origin << 20 | port
        for key, count in zip(table[0::2], table[1::2], strict=True):
            port = ports[key & _ID_MASK]
            if port.portkey is not None:
                summary.count_port(
                    ORIGIN_CODES[(key >> 20) & 7],
                    port.portkey,
                    heads[key >> 23].verdict,  # type: ignore[union-attr]
                    count,
                    port.has_port,
                )

    def _flush_findings(self) -> None:
        invalid, acks, hazards = self._invalid, self._acks, self._pmtud_hazards
        heads, summary = self._heads, self.engine.summary
        table = self.scanner.take(native.M_INVALID)
        # key: head << 1 | 1 for an ACK inside an established flow
        for key, count in zip(table[0::2], table[1::2], strict=True):
            finding = acks if key & 1 else invalid
            prefix = heads[key >> 1].prefix  # type: ignore[union-attr]
            finding.packets += count
            finding.by_prefix[prefix] = finding.by_prefix.get(prefix, 0) + count
        table = self.scanner.take(native.M_PMTUD)
        for number, count in zip(table[0::2], table[1::2], strict=True):
            head = heads[number]
            if head.verdict in _HAZARD:  # type: ignore[union-attr]
                prefix = head.prefix  # type: ignore[union-attr]
                hazards.packets += count
                hazards.by_prefix[prefix] = hazards.by_prefix.get(prefix, 0) + count
            else:
                summary.pmtud_allowed += count
        findings = (invalid, acks, hazards)
        kinds = (native.F_DROPS, native.F_ACKS, native.F_PMTUD)
        for which, finding in zip(kinds, findings, strict=True):
            flows, capped = self.scanner.take_flows(which)
            finding.flows.update(flows)
            finding.flows_capped = finding.flows_capped or capped
            if len(finding.flows) > 2 * FLOWS:
                finding.cap_flows()
            finding.evidence = self._evidence[which]
        self._evidence = ([], [], [])
        self._tell_evidence_limits()
        self._invalid, self._acks, self._pmtud_hazards = Finding(), Finding(), Finding()
        summary.invalid.merge(invalid)
        summary.invalid_acks.merge(acks)
        summary.pmtud.merge(hazards)


def whole_lines(rest: bytes, data: bytes) -> tuple[bytes, bytes]:
    """``rest + data`` cut after its last newline: (whole lines, the partial last line)."""
    if rest:
        data = rest + data
    cut = data.rfind(b"\n") + 1
    return data[:cut], data[cut:]


def _is_syslog(header: bytes) -> bool:
    """A classic syslog header ("Nov 25 04:17:23 host") the scanner can date by its minute."""
    return (
        17 <= len(header) <= 512
        and header[15:16] == b" "
        and header[:1].isupper()
        and header[13:15].isdigit()
    )


def _port_key(key: bytes) -> tuple[bytes, bytes, bytes, bytes]:
    """The scanner's port key as the pure engine's (TCP DPT, ICMP part, protocol, its DPT)."""
    kind, rest = key[:1], key[1:]
    if kind == b"t":
        return (rest, b"", b"", b"")
    if kind == b"i":
        return (b"", rest, b"", b"")
    proto, _sep, dpt = rest.partition(b" ")
    return (b"", b"", proto, dpt)
