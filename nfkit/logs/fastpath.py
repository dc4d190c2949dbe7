"""A fast engine for :class:`~nfkit.logs.aggregate.Summary`: only what a summary needs.

The full parser builds a :class:`~nfkit.logs.record.LogRecord` per line (all 40 fields); a summary
reads a dozen of them. This engine works on blocks of bytes (4 MiB, cut on line boundaries):

1. one ``re.findall`` over the block matches every line against a *strict* pattern of the common
   shape (classic syslog, RFC 3339 or dmesg wrapper; IPv4/IPv6 TCP, UDP, ICMP echo and other
   non-error ICMP; every field checked down to its digits) and returns, per line, only the parts
   a summary uses: the wrapper header, the ``PREFIX IN= OUT= MAC= SRC= DST=`` part, the TTL, the
   ports or ICMP type, the TCP flags. A catch-all alternative returns every other line whole;
   those lines go through the full parser (:meth:`Summary.add_lines`), so nothing is lost;
2. the per-line work is left to C: ``zip``/``Counter``/``dict`` over the columns, so Python code
   runs once per *distinct* value (header, address part, port), not once per line;
3. each distinct value is interpreted by the full parser itself — a representative line built
   from it goes through :func:`~nfkit.logs.parser.parse_line` — and any value the parser reads
   differently than expected sends its lines to the full path. The results therefore equal the
   full parser's (``tests/test_fastpath.py`` checks it on the corpus and on generated logs);
4. :func:`summarize_paths` splits plain files into byte ranges on line boundaries and runs one
   worker process per core; each builds a partial :class:`Summary` and the parent merges them
   (merging is exact: see :mod:`nfkit.logs.aggregate`). ``.gz`` files and standard input are
   read in one stream.

What the engine adds to a summary is what :meth:`Summary.add` would add, record by record; the
counters are written through the summary's public attributes (see ``benchmarks/INTEGRATION.md``
for a weighted-add hook that would make that contract explicit).
"""

from __future__ import annotations

import gc
import gzip
import ipaddress
import multiprocessing
import os
import re
import sys
import zlib
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from itertools import compress, islice
from operator import itemgetter, le, not_
from pathlib import Path
from typing import IO, Any

from nfkit.errors import ConfigError
from nfkit.logs import attribution as attr
from nfkit.logs.aggregate import EVIDENCE, SourceStats, Summary, SummaryConfig
from nfkit.logs.parser import iter_records, parse_line
from nfkit.logs.record import IPAddress, LogRecord

__all__ = [
    "BLOCK_SIZE",
    "BlockSummarizer",
    "split_ranges",
    "summarize_bytes",
    "summarize_paths",
]

#: Bytes read per block (the last partial line is carried over to the next block).
BLOCK_SIZE = 4 << 20
#: Caches of interpreted values are cleared when they grow past this many entries.
_CACHE_LIMIT = 1 << 18
#: A log smaller than this is not worth starting worker processes for.
_PARALLEL_MIN = 8 << 20

_D = rb"[0-9]+"


def _pattern(strict: bool) -> re.Pattern[bytes]:
    """The line pattern; ``strict`` forbids string fields from running over a newline.

    The quick form uses ``[^ ]`` (one opcode per character in CPython's ``re``) where the strict
    one needs ``[^ \\n]``; a quick match that ran over a line end is detected by counting the
    rows (one per line) and the block is then matched again with the strict form.
    """
    word = rb"[^ \n]" if strict else rb"[^ ]"
    free = rb"[^=\n]" if strict else rb"[^=]"
    host = rb"[^ \n\[]" + word + rb"*"
    good = (
        # wrapper: syslog "Nov 25 04:17:23 host", RFC 3339 "2026-11-24T10:00:05.1+01:00 host",
        # or none (dmesg "[  686.000667] "). The header is checked by the full parser.
        rb"(?:([A-Z][a-z][a-z] [ 0-9][0-9] [0-9][0-9]:[0-9][0-9]:[0-9][0-9] " + host
        + rb"|[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9]"
        rb"(?:\.[0-9]+)?(?:Z|[+-][0-9][0-9]:?[0-9][0-9])? " + host + rb") kernel: "
        rb"|(?=\[ *[0-9]+\.[0-9]+\] (?!" + host + rb" (?:[a-z0-9]+\.[a-z]+ )?kernel:)))"
        rb"(?:\[ *" + _D + rb"\." + _D + rb"\] )?(?!\[ *[0-9]+\.[0-9]+\]|\[ *[CT][0-9]+\])"
        # prefix (no "=": the first IN= is the header) and the addresses, as one value
        rb"(" + free + rb"*IN=" + word + rb"* OUT=" + word + rb"* (?:MAC=" + word + rb"* )?"
        rb"SRC=" + word + rb"+ DST=" + word + rb"+)"
        rb" LEN=" + _D + rb" (?:TOS=0x[0-9A-F][0-9A-F] PREC=0x[0-9A-F][0-9A-F] TTL=(" + _D
        + rb") ID=" + _D + rb" (?:CE )?(?:DF )?|TC=" + _D + rb" HOPLIMIT=(" + _D + rb") FLOWLBL="
        + _D + rb" )PROTO=(?:TCP SPT=(" + _D + rb") DPT=(" + _D + rb") (?:SEQ=" + _D + rb" ACK="
        + _D + rb" )?WINDOW=" + _D + rb" RES=0x[0-9a-f][0-9a-f] "
        rb"((?:CWR |ECE |URG |ACK |PSH |RST |SYN |FIN |AE )*)URGP=" + _D
        + rb" (?:OPT \([0-9A-F]*\) )?"
        rb"|(UDP|UDPLITE) SPT=" + _D + rb" DPT=(" + _D + rb") LEN=" + _D + rb" "
        # ICMP types that quote a packet (errors) are left to the full parser
        rb"|(ICMP TYPE=(?!0*(?:3|4|5|11|12) )" + _D + rb" CODE=" + _D
        + rb"|ICMPv6 TYPE=(?!0*[1-4] )" + _D + rb" CODE=" + _D + rb") (?:ID=" + _D + rb" SEQ="
        + _D + rb" )?)(?:UID=" + _D + rb" GID=" + _D + rb" )?(?:MARK=0x[0-9a-f]+ )?(?=\n)"
    )  # fmt: skip
    return re.compile(rb"\n(?:" + good + rb"|([^\n]*))")


_QUICK = _pattern(strict=False)
_STRICT = _pattern(strict=True)
# Column indices of a row.
_HEADER, _NET, _TTL4, _TTL6, _TSPT, _TDPT, _TFLAGS, _UPROTO, _UDPT, _ICMP, _OTHER = range(11)

#: The wrapper lines are rebuilt with, to ask the full parser what a value means.
_CANARY_HEADER = "Jan  1 00:00:00 nfkitcanary kernel: "
_CANARY_NET = "IN=eth0 OUT= SRC=192.0.2.1 DST=192.0.2.2"
_V4_TAIL = " LEN=60 TOS=0x00 PREC=0x00 TTL={} ID=1 PROTO=UDP SPT=1 DPT=1 LEN=40 "
_V6_TAIL = " LEN=60 TC=0 HOPLIMIT={} FLOWLBL=0 PROTO=UDP SPT=1 DPT=1 LEN=40 "
_REJECT: Any = object()


@dataclass(slots=True)
class _Net:
    """What the ``PREFIX IN= OUT= MAC= SRC= DST=`` part of a line means to a summary."""

    prefix: str
    verdict: str
    invalid: bool
    origin: str
    src: str
    dst: str
    mac: str | None
    family: int
    record: LogRecord


@dataclass(slots=True)
class _Port:
    """What the protocol part means: protocol name, port key, whether it counts as a port."""

    proto: str
    portkey: str
    has_port: bool
    #: 4 or 6 for ICMP / ICMPv6 (checked against the addresses), None otherwise.
    family: int | None


class BlockSummarizer:
    """Feed blocks of log bytes (whole lines), get a :class:`Summary` equal to the full parser's.

    ``reference`` is "now" for the year of syslog dates (default: what :func:`parse_line`
    uses). Lines the engine does not fully understand go through :meth:`Summary.add_lines`.
    """

    def __init__(
        self,
        config: SummaryConfig | None = None,
        since: datetime | None = None,
        reference: datetime | None = None,
    ) -> None:
        self.summary = Summary(config)
        self.config = self.summary.config
        self.since = since
        self.reference = reference
        self._cutoff = since.timestamp() if since is not None else None
        self._attributor = attr.Attributor(self.config.segment)
        self._headers: dict[bytes, Any] = {b"": (None, 0, False)}
        self._heads: dict[bytes, Any] = {}
        self._nets: dict[bytes, Any] = {}
        self._addresses: dict[bytes, tuple[IPAddress, str] | None] = {}
        self._ttl_nets: dict[tuple[bytes, bytes, bytes], Any] = {}
        self._ports: dict[tuple[bytes, bytes, bytes, bytes], Any] = {}
        self._rest = b""

    # -- interpreting distinct values with the full parser -------------------------------------
    def _parse(self, line: str) -> LogRecord | None:
        if self.reference is None:
            return parse_line(line)
        return next(iter(iter_records([line], reference=self.reference)), None)

    def _header(self, header: bytes) -> Any:
        """(time, slot, skipped) for a wrapper header, or ``_REJECT``."""
        text = header.decode("utf-8", "replace")
        record = self._parse(f"{text} kernel: {_CANARY_NET}{_V4_TAIL.format(64)}")
        if record is None or record.prefix is not None or record.timestamp is None:
            return _REJECT
        stamp = record.timestamp
        time = round(stamp.timestamp(), 6)
        skipped = self._cutoff is not None and stamp.timestamp() < self._cutoff
        return (time, int(time // self.config.slot_seconds), skipped)

    def _net(self, net: bytes) -> Any:
        """Interpret ``PREFIX IN= OUT= MAC= SRC= DST=``: the head (prefix, interfaces, MAC) is
        read by the full parser once per distinct head, the addresses once per address."""
        head, sep, addresses = net.rpartition(b" SRC=")
        src_text, sep2, dst_text = addresses.partition(b" DST=")
        if not sep or not sep2:
            return _REJECT
        info = self._heads.get(head)
        if info is None:
            info = self._head(head)
            if len(self._heads) >= _CACHE_LIMIT:
                self._heads.clear()
            self._heads[head] = info
        src = self._address(src_text)
        dst = self._address(dst_text)
        if info is _REJECT or src is None or dst is None or src[0].version != dst[0].version:
            return _REJECT
        record, prefix, verdict, invalid = info
        record = LogRecord(
            in_iface=record.in_iface, out_iface=record.out_iface, mac_src=record.mac_src,
            src=src[0], dst=dst[0], family=src[0].version,
        )  # fmt: skip
        return _Net(
            prefix, verdict, invalid, self._attributor.origin(record), src[1], dst[1],
            record.mac_src, src[0].version, record,
        )  # fmt: skip

    def _head(self, head: bytes) -> Any:
        """(record, prefix, verdict, invalid) for ``PREFIX IN= OUT= MAC=``, or ``_REJECT``."""
        text = head.decode("utf-8", "replace")
        if len(text) > 400:  # long lines may be cut by the kernel: the full parser judges
            return _REJECT
        record = self._parse(f"{_CANARY_HEADER}{text} {_CANARY_NET[13:]}{_V4_TAIL.format(64)}")
        if record is None or record.host != "nfkitcanary" or str(record.src) != "192.0.2.1":
            return _REJECT
        prefix = (record.prefix or "").strip()
        verdict, invalid = self.summary.classify_prefix(prefix)
        return (record, prefix, verdict, invalid)

    def _address(self, text: bytes) -> tuple[IPAddress, str] | None:
        """The address and its text as the summary writes it; None if it is not one."""
        cache = self._addresses
        value = cache.get(text, _REJECT)
        if value is _REJECT:
            try:
                address = ipaddress.ip_address(text.decode("ascii"))
            except ValueError:
                value = None
            else:
                value = (address, str(address))
            if len(cache) >= _CACHE_LIMIT:
                cache.clear()
            cache[text] = value
        return value  # type: ignore[no-any-return]

    def _ttl_net(self, key: tuple[bytes, bytes, bytes]) -> Any:
        """(net info, contradiction) for a ``(net, TTL, hop limit)`` triple, or ``_REJECT``."""
        net_bytes, ttl4, ttl6 = key
        net = self._nets.get(net_bytes)
        if net is None:
            net = self._net(net_bytes)
            if len(self._nets) >= _CACHE_LIMIT:
                self._nets.clear()
            self._nets[net_bytes] = net
        if net is _REJECT or (net.family == 4) != bool(ttl4):
            return _REJECT
        record = net.record
        record.ttl = int(ttl4 or ttl6)
        origin, contradiction = self._attributor.attribute(record)
        if origin != net.origin:
            return _REJECT
        return (net, contradiction)

    def _port(self, key: tuple[bytes, bytes, bytes, bytes]) -> _Port:
        """Interpret ``(TCP DPT, UDP proto, UDP DPT, ICMP part)``."""
        tdpt, uproto, udpt, icmp = key
        if tdpt:
            return _Port("tcp", f"tcp/{int(tdpt)}", True, None)
        if uproto:
            proto = uproto.decode().lower()
            return _Port(proto, f"{proto}/{int(udpt)}", True, None)
        name, type_text, _code = icmp.decode().split()
        proto = name.lower()
        return _Port(proto, f"{proto}/{int(type_text[5:])}", False, 4 if name == "ICMP" else 6)

    # -- feeding -------------------------------------------------------------------------------
    def feed(self, data: bytes) -> None:
        """Add bytes of a log; a last partial line waits for the next call or :meth:`finish`."""
        if self._rest:
            data = self._rest + data
        cut = data.rfind(b"\n") + 1
        self._rest = data[cut:]
        if cut:
            self.feed_lines(data[:cut])

    def finish(self) -> Summary:
        """Count a last line without newline, and return the summary."""
        if self._rest:
            rest, self._rest = self._rest, b""
            self.feed_lines(rest + b"\n")
        return self.summary

    def _fallback(self, lines: Iterable[bytes]) -> None:
        self.summary.add_lines(
            (line.decode("utf-8", "replace") for line in lines), since=self.since
        )

    def feed_lines(self, block: bytes) -> None:
        """Add whole lines (``block`` ends with a newline)."""
        # Millions of short-lived tuples would set off the cyclic collector again and again,
        # each time walking the whole (large) summary: nothing here makes cycles.
        enabled = gc.isenabled()
        gc.disable()
        try:
            self._feed_lines(block)
        finally:
            if enabled:
                gc.enable()

    def _feed_lines(self, block: bytes) -> None:
        data = b"\n" + block
        rows = _QUICK.findall(data)
        rows.pop()  # the empty match at the last newline
        if len(rows) != block.count(b"\n"):  # a quick match ran over a line end
            rows = _STRICT.findall(data)
            rows.pop()
        if not rows:
            return
        columns: list[Any] = list(zip(*rows, strict=True))
        del rows
        nets = columns[_NET]
        good = len(nets) - nets.count(b"")
        if good < len(nets):
            self._fallback(compress(columns[_OTHER], map(not_, nets)))
            if not good:
                return
            line_numbers = list(compress(range(len(nets)), nets))
            columns = [list(compress(column, nets)) for column in columns[:_OTHER]]
            columns.append(line_numbers)
        else:
            columns[_OTHER] = range(len(nets))
        self._add_rows(columns, block)

    def _add_rows(self, columns: list[Any], block: bytes) -> None:
        headers, nets, ttl4s, ttl6s = (
            columns[_HEADER], columns[_NET], columns[_TTL4], columns[_TTL6]
        )  # fmt: skip
        header_info = self._headers
        distinct_headers = set(headers)
        for header in distinct_headers - header_info.keys():
            if len(header_info) >= _CACHE_LIMIT:
                header_info.clear()
                header_info[b""] = (None, 0, False)
            header_info[header] = self._header(header)
        ttl_info = self._ttl_nets
        ttl_counts = Counter(zip(nets, ttl4s, ttl6s))
        for key in ttl_counts.keys() - ttl_info.keys():
            if len(ttl_info) >= _CACHE_LIMIT:
                ttl_info.clear()
            ttl_info[key] = self._ttl_net(key)
        port_info = self._ports
        port_keys = list(zip(columns[_TDPT], columns[_UPROTO], columns[_UDPT], columns[_ICMP]))
        distinct_ports = set(port_keys)
        for key in distinct_ports - port_info.keys():
            if len(port_info) >= _CACHE_LIMIT:
                port_info.clear()
            port_info[key] = self._port(key)

        # Rows the full parser must see (a header or net it reads otherwise, ICMP of the other
        # family) and rows before --since.
        rejected = {h for h in distinct_headers if header_info[h] is _REJECT}
        skipped = {h for h in distinct_headers - rejected if header_info[h][2]}
        bad_keys = {k for k in ttl_counts if ttl_info[k] is _REJECT}
        bad_pairs: set[tuple[bytes, tuple[bytes, bytes, bytes, bytes]]] = set()
        if any(port_info[k].family is not None for k in distinct_ports):
            for net_bytes, port_key in set(zip(nets, port_keys)):
                family = port_info[port_key].family
                net = self._nets.get(net_bytes)
                if family is not None and (net is None or net is _REJECT or net.family != family):
                    bad_pairs.add((net_bytes, port_key))
        if rejected or skipped or bad_keys or bad_pairs:
            kept = self._split_rows(columns, port_keys, block, rejected, skipped, bad_keys, bad_pairs)
            if kept is None:
                return
            columns, port_keys = kept
            headers, nets, ttl4s, ttl6s = (
                columns[_HEADER], columns[_NET], columns[_TTL4], columns[_TTL6]
            )  # fmt: skip
            ttl_counts = Counter(zip(nets, ttl4s, ttl6s))
        self._count(headers, nets, ttl_counts, port_keys)
        invalid = {k[0] for k in ttl_counts if ttl_info[k][0].invalid}
        if invalid:
            self._findings(columns, port_keys, block, invalid)

    def _split_rows(
        self,
        columns: list[Any],
        port_keys: list[tuple[bytes, bytes, bytes, bytes]],
        block: bytes,
        rejected: set[bytes],
        skipped: set[bytes],
        bad_keys: set[tuple[bytes, bytes, bytes]],
        bad_pairs: set[tuple[bytes, tuple[bytes, bytes, bytes, bytes]]],
    ) -> tuple[list[Any], list[tuple[bytes, bytes, bytes, bytes]]] | None:
        """Send the rows the full parser must see to it; count skipped ones; keep the rest."""
        keep: list[bool] = []
        full: list[int] = []
        for header, net, ttl4, ttl6, port_key, line_number in zip(
            columns[_HEADER], columns[_NET], columns[_TTL4], columns[_TTL6], port_keys,
            columns[_OTHER], strict=True,
        ):  # fmt: skip
            if (
                header in rejected
                or (net, ttl4, ttl6) in bad_keys
                or (net, port_key) in bad_pairs
            ):
                full.append(line_number)
                keep.append(False)
            elif header in skipped:
                keep.append(False)
                self.summary.lines += 1
                self.summary.skipped += 1
            else:
                keep.append(True)
        if full:
            lines = block.split(b"\n")
            self._fallback(lines[i] for i in full)
        if not any(keep):
            return None
        return [list(compress(column, keep)) for column in columns], list(compress(port_keys, keep))

    def _findings(
        self,
        columns: list[Any],
        port_keys: list[tuple[bytes, bytes, bytes, bytes]],
        block: bytes,
        invalid: set[bytes],
    ) -> None:
        """INVALID-drop rows: flows, ACKs in established flows, the earliest raw lines."""
        summary = self.summary
        nets_info, header_info = self._nets, self._headers
        selected = list(map(invalid.__contains__, columns[_NET]))
        lines: list[bytes] | None = None
        for header, net_bytes, spt, flag_text, tdpt, line_number in zip(
            compress(columns[_HEADER], selected), compress(columns[_NET], selected),
            compress(columns[_TSPT], selected), compress(columns[_TFLAGS], selected),
            compress(columns[_TDPT], selected), compress(columns[_OTHER], selected),
            strict=True,
        ):  # fmt: skip
            net = nets_info[net_bytes]
            time = header_info[header][0]
            flow = f"{net.src}:{int(spt)}>{net.dst}:{int(tdpt)}" if tdpt else None
            is_ack = False
            if tdpt:
                flags = flag_text.split()
                is_ack = b"ACK" in flags and b"SYN" not in flags
            for finding, wanted in ((summary.invalid, True), (summary.invalid_acks, is_ack)):
                if not wanted:
                    continue
                evidence = finding.evidence
                if len(evidence) < EVIDENCE or (time or 0.0) <= evidence[-1][0]:
                    if lines is None:
                        lines = block.split(b"\n")
                    raw = lines[line_number].decode("utf-8", "replace")
                    finding.add(net.prefix, time, raw, flow)
                else:  # cannot be among the earliest: count it without its line
                    finding.packets += 1
                    finding.by_prefix[net.prefix] = finding.by_prefix.get(net.prefix, 0) + 1
                    if flow is not None:
                        finding.flows.add(flow)

    # -- counting ------------------------------------------------------------------------------
    def _count(
        self,
        headers: list[bytes],
        nets: list[bytes],
        ttl_counts: Counter[tuple[bytes, bytes, bytes]],
        port_keys: list[tuple[bytes, bytes, bytes, bytes]],
    ) -> None:
        """Add accepted rows: what :meth:`Summary.add` does, once per distinct value."""
        summary = self.summary
        rows = len(nets)
        summary.lines += rows
        summary.records += rows
        sources = summary.sources
        by_origin = summary.by_origin
        prefixes = summary.prefixes
        ttl_info = self._ttl_nets
        for key, count in ttl_counts.items():
            net, contradiction = ttl_info[key]
            origin = net.origin
            by_origin[origin] = by_origin.get(origin, 0) + count
            prefixes[net.prefix] = prefixes.get(net.prefix, 0) + count
            stats = sources.get(net.src)
            if stats is None:
                stats = sources[net.src] = SourceStats()
            stats.packets += count
            stats.origins[origin] = stats.origins.get(origin, 0) + count
            if net.mac:
                stats.macs[net.mac] = stats.macs.get(net.mac, 0) + count
            stats.prefixes[net.prefix] = stats.prefixes.get(net.prefix, 0) + count
            if contradiction is not None:
                stats.contradictions[contradiction] = (
                    stats.contradictions.get(contradiction, 0) + count
                )

        # Time: per distinct header; rows are put in time order when they are not already
        # (untimed dmesg rows first), so first/last and the slot runs come from C-level passes.
        header_info = self._headers
        times = list(map(header_info.__getitem__, headers))
        stamps = list(map(itemgetter(0), times))
        untimed = stamps.count(None)
        order: list[int] | None = None
        if 0 < untimed < rows:
            order = sorted(range(rows), key=lambda i: (stamps[i] is not None, stamps[i] or 0.0))
        elif not untimed and not all(map(le, stamps, islice(stamps, 1, None))):
            order = sorted(range(rows), key=stamps.__getitem__)
        if order is not None:
            nets = [nets[i] for i in order]
            port_keys = [port_keys[i] for i in order]
            times = [times[i] for i in order]
            stamps = [stamps[i] for i in order]
        if untimed < rows:
            self._first_last(nets[untimed:], stamps[untimed:])
        self._slots(nets, list(map(itemgetter(1), times)), port_keys)

    def _first_last(self, nets: list[bytes], stamps: list[float]) -> None:
        """First and last time per source (``stamps`` in time order)."""
        last = dict(zip(nets, stamps, strict=True))
        first = dict(zip(reversed(nets), reversed(stamps), strict=True))
        nets_info = self._nets
        sources = self.summary.sources
        for net_bytes, early in first.items():
            stats = sources[nets_info[net_bytes].src]
            late = last[net_bytes]
            if stats.first is None or early < stats.first:
                stats.first = early
            if stats.last is None or late > stats.last:
                stats.last = late

    def _slots(
        self, nets: list[bytes], slots: list[int], port_keys: list[tuple[bytes, bytes, bytes, bytes]]
    ) -> None:
        """Timeline, activity (per slot run) and the port counters."""
        summary = self.summary
        nets_info, port_info = self._nets, self._ports
        totals: Counter[tuple[bytes, tuple[bytes, bytes, bytes, bytes]]] = Counter()
        start = 0
        rows = len(slots)
        timeline = summary.timeline
        activity = summary.activity
        while start < rows:
            slot = slots[start]
            end = start + 1
            if slots[-1] == slot:
                end = rows
            else:
                while end < rows and slots[end] == slot:  # runs are long: step, then scan
                    step = min(rows, end + 256)
                    if slots[step - 1] == slot:
                        end = step
                    else:
                        end += 1
            run = Counter(zip(nets[start:end], port_keys[start:end]))
            totals.update(run)
            per_slot = timeline.get(slot)
            if per_slot is None:
                per_slot = timeline[slot] = {}
            for (net_bytes, port_key), count in run.items():
                net = nets_info[net_bytes]
                origin = net.origin
                per_slot[origin] = per_slot.get(origin, 0) + count
                if origin != attr.LOCAL:
                    by_slot = activity.get(net.src)
                    if by_slot is None:
                        by_slot = activity[net.src] = {}
                    touched = by_slot.get(slot)
                    if touched is None:
                        touched = by_slot[slot] = set()
                    touched.add((net.dst, port_info[port_key].portkey))
            start = end
        ports, origin_ports, sources = summary.ports, summary.origin_ports, summary.sources
        for (net_bytes, port_key), count in totals.items():
            net = nets_info[net_bytes]
            port = port_info[port_key]
            portkey = port.portkey
            proto = port.proto
            stats = sources[net.src]
            stats.protos[proto] = stats.protos.get(proto, 0) + count
            if port.has_port:
                ports[portkey] = ports.get(portkey, 0) + count
                stats.ports[portkey] = stats.ports.get(portkey, 0) + count
            by_port = origin_ports.get(net.origin)
            if by_port is None:
                by_port = origin_ports[net.origin] = {}
            verdicts = by_port.get(portkey)
            if verdicts is None:
                verdicts = by_port[portkey] = {}
            verdicts[net.verdict] = verdicts.get(net.verdict, 0) + count


def summarize_bytes(
    data: bytes,
    config: SummaryConfig | None = None,
    since: datetime | None = None,
    reference: datetime | None = None,
) -> Summary:
    """Summarise log bytes in this process (equal to ``summarize(data.decode().split("\\n"))``)."""
    engine = BlockSummarizer(config, since, reference)
    for start in range(0, len(data), BLOCK_SIZE):
        engine.feed(data[start : start + BLOCK_SIZE])
    return engine.finish()


def split_ranges(path: str | os.PathLike[str], parts: int) -> list[tuple[int, int]]:
    """Cut a file into about ``parts`` byte ranges, each starting at the start of a line."""
    size = os.path.getsize(path)
    if size == 0:
        return []
    cuts = [0]
    with Path(path).open("rb") as handle:
        for part in range(1, parts):
            handle.seek(max(cuts[-1], size * part // parts))
            handle.readline()
            position = handle.tell()
            if position >= size:
                break
            if position > cuts[-1]:
                cuts.append(position)
    cuts.append(size)
    return list(zip(cuts, cuts[1:], strict=False))


def _read_range(
    path: str, start: int, end: int, feed: Callable[[bytes], None], done: Callable[[int], None]
) -> None:
    """Feed ``path[start:end]`` block by block; ``done(n)`` after each ``n`` bytes."""
    with Path(path).open("rb") as handle:
        handle.seek(start)
        left = end - start
        while left > 0:
            chunk = handle.read(min(BLOCK_SIZE, left))
            if not chunk:
                break
            left -= len(chunk)
            feed(chunk)
            done(len(chunk))


def _read_stream(handle: IO[bytes], feed: Callable[[bytes], None], done: Callable[[int], None]) -> None:
    while True:
        chunk = handle.read(BLOCK_SIZE)
        if not chunk:
            break
        feed(chunk)
        done(len(chunk))


# Set in each worker process by _init_worker (fork or spawn alike).
_WORKER: dict[str, Any] = {}


def _init_worker(
    config: SummaryConfig, since: datetime | None, reference: datetime | None, counter: Any
) -> None:
    _WORKER.update(config=config, since=since, reference=reference, counter=counter)


def _work(task: tuple[str, int, int]) -> Summary:
    path, start, end = task
    engine = BlockSummarizer(_WORKER["config"], _WORKER["since"], _WORKER["reference"])
    counter = _WORKER["counter"]

    def done(size: int) -> None:
        with counter.get_lock():
            counter.value += size

    _read_range(path, start, end, engine.feed, done)
    return engine.finish()


def summarize_paths(
    paths: Iterable[str | os.PathLike[str]],
    config: SummaryConfig | None = None,
    since: datetime | None = None,
    *,
    jobs: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    reference: datetime | None = None,
) -> Summary:
    """Summarise log files (plain, ``.gz``, or ``-`` for standard input) on ``jobs`` cores.

    Equal to ``Summary.add_lines(read_whole(path), since)`` for each path. ``jobs`` defaults
    to the number of CPUs; plain files are split into byte ranges on line boundaries, one
    worker process per range at a time. ``progress(done, total)`` is called with bytes read
    (for :class:`~nfkit.logs.progress.Progress`). ``reference`` is "now" for syslog years
    (default: the current time, the same in every worker).
    """
    summary = Summary(config)
    config = summary.config
    reference = reference or datetime.now()
    jobs = max(1, jobs or os.cpu_count() or 1)
    names = [os.fspath(p) for p in paths]
    total = 0
    for name in names:
        if name != "-":
            try:
                total += Path(name).stat().st_size
            except OSError as exc:
                raise ConfigError(f"{name}: cannot read log: {exc.strerror or exc}") from None
    finished = 0

    def done(size: int) -> None:
        nonlocal finished
        finished += size
        if progress is not None:
            progress(finished, total)

    tasks: list[tuple[str, int, int]] = []
    for name in names:
        try:
            if name == "-":
                engine = BlockSummarizer(config, since, reference)
                _read_stream(sys.stdin.buffer, engine.feed, done)
                summary.merge(engine.finish())
            elif name.endswith(".gz"):
                engine = BlockSummarizer(config, since, reference)
                with gzip.open(name, "rb") as handle:
                    _read_stream(handle, engine.feed, lambda _size: None)  # type: ignore[arg-type]
                done(Path(name).stat().st_size)
                summary.merge(engine.finish())
            elif jobs == 1 or Path(name).stat().st_size < _PARALLEL_MIN:
                engine = BlockSummarizer(config, since, reference)
                _read_range(name, 0, Path(name).stat().st_size, engine.feed, done)
                summary.merge(engine.finish())
            else:
                tasks.extend((name, a, b) for a, b in split_ranges(name, jobs))
        except (OSError, EOFError, zlib.error) as exc:
            raise ConfigError(f"{name}: cannot read log: {exc}") from None
    if tasks:
        _run_parallel(summary, tasks, jobs, since, reference, done)
    return summary


def _run_parallel(
    summary: Summary,
    tasks: list[tuple[str, int, int]],
    jobs: int,
    since: datetime | None,
    reference: datetime,
    done: Callable[[int], None],
) -> None:
    context = multiprocessing.get_context("fork" if sys.platform == "linux" else "spawn")
    counter = context.Value("q", 0)
    with context.Pool(
        min(jobs, len(tasks)),
        initializer=_init_worker,
        initargs=(summary.config, since, reference, counter),
    ) as pool:
        pending = pool.imap_unordered(_work, tasks)
        reported = 0
        results: list[Summary] = []
        iterator = iter(pending)
        while True:
            try:
                part = iterator.next(timeout=0.2)  # type: ignore[attr-defined]
            except multiprocessing.TimeoutError:
                pass
            except StopIteration:
                break
            else:
                results.append(part)
            value = counter.value
            if value > reported:
                done(value - reported)
                reported = value
        for part in results:
            summary.merge(part)
