"""A fast engine for :class:`~nfkit.logs.aggregate.Summary`: only what a summary needs.

The full parser builds a :class:`~nfkit.logs.record.LogRecord` per line (all 40 fields); a summary
reads a dozen of them. This engine works on blocks of bytes (4 MiB, cut on line boundaries):

1. one ``re.findall`` over the block matches every line against a *strict* pattern of the common
   shape (classic syslog, RFC 3339 or dmesg wrapper; IPv4/IPv6 TCP, UDP and other protocols,
   fragments, ICMP other than errors; every field checked down to its digits) and returns, per
   line, only the parts a summary uses: the wrapper header, the ``PREFIX IN= OUT= MAC= SRC=
   DST=`` part, the TTL, the ports or ICMP type, the TCP flags. A catch-all alternative returns
   every other line whole (ICMP errors quoting a packet, ARP, cut lines, other wrappers...);
   those go through the full parser (:meth:`Summary.add_lines`), so nothing is lost;
2. the per-line work is left to C: ``zip``/``Counter``/``dict`` over the columns into pending
   counters, so Python code runs once per *distinct* value (header, address part, port), and the
   pending counters are moved into the summary when they grow (:meth:`BlockSummarizer.flush`);
3. each distinct header and prefix/interface/MAC part is interpreted by the full parser itself —
   a representative line built from it goes through :func:`~nfkit.logs.parser.parse_line` — and
   addresses by :func:`ipaddress.ip_address` as the parser does; any value the parser reads
   differently than expected sends its lines to the full path. The results therefore equal the
   full parser's (``tests/test_fastpath.py`` checks it on the corpus, generated and mutated logs);
4. :mod:`nfkit.logs.parallel` runs it over files, one worker process per core on byte ranges,
   and merges the partial summaries.

What the engine adds to a summary is what :meth:`Summary.add` would add, record by record; the
counters are written through the summary's public attributes, and :meth:`Summary.bound` keeps
the sources within ``max_sources`` after each flush.
"""

from __future__ import annotations

import gc
import ipaddress
import re
import socket
import threading
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from itertools import compress, islice
from operator import le, not_, or_
from typing import Any

from nfkit.logs import attribution as attr
from nfkit.logs import native
from nfkit.logs.aggregate import Summary, SummaryConfig
from nfkit.logs.counters import EVIDENCE, Finding, SourceStats
from nfkit.logs.nativepath import LineFeeder, NativeLane
from nfkit.logs.parser import RecordStream, iter_records, parse_line
from nfkit.logs.record import IPAddress, LogRecord
from nfkit.logs.sourcestore import SourceStore

__all__ = [
    "BLOCK_SIZE",
    "BlockSummarizer",
    "summarize_bytes",
]

#: Bytes read per block (the last partial line is carried over to the next block).
BLOCK_SIZE = 2 << 20
#: Caches of interpreted values are cleared when they grow past this many entries.
_CACHE_LIMIT = 1 << 17
#: Pending counters are moved into the summary when one holds this many distinct keys.
_PENDING_LIMIT = 1 << 17

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
        + rb") ID=" + _D + rb" (?:CE )?(?:DF )?(?:MF )?(?:FRAG:" + _D + rb" )?"
        rb"|TC=" + _D + rb" HOPLIMIT=(" + _D + rb") FLOWLBL=" + _D + rb" )"
        rb"PROTO=(?:TCP SPT=(" + _D + rb") DPT=(" + _D + rb") (?:SEQ=" + _D + rb" ACK="
        + _D + rb" )?WINDOW=" + _D + rb" RES=0x[0-9a-f][0-9a-f] "
        rb"((?:CWR |ECE |URG |ACK |PSH |RST |SYN |FIN |AE )*)URGP=" + _D
        + rb" (?:OPT \([0-9A-F]*\) )?"
        # ICMP types that quote a packet (errors) are left to the full parser
        rb"|(ICMP TYPE=(?!0*(?:3|4|5|11|12) )" + _D + rb" CODE=" + _D
        + rb"|ICMPv6 TYPE=(?!0*[1-4] )" + _D + rb" CODE=" + _D + rb") (?:ID=" + _D + rb" SEQ="
        + _D + rb" )?"
        # UDP, UDPLITE, SCTP...; a fragment without its transport header ("PROTO=UDP "), an
        # unknown protocol ("PROTO=47 "). A TCP fragment (its flow key) is left to the parser.
        rb"|((?!TCP )[A-Za-z0-9]+) (?:SPT=" + _D + rb" DPT=(" + _D + rb") LEN=" + _D + rb" )?"
        rb")(?:UID=" + _D + rb" GID=" + _D + rb" )?(?:MARK=0x[0-9a-f]+ )?(?=\n)"
    )  # fmt: skip
    return re.compile(rb"\n(?:" + good + rb"|([^\n]*))")


_QUICK = _pattern(strict=False)
_STRICT = _pattern(strict=True)
# Column indices of a row.
_HEADER, _NET, _TTL4, _TTL6, _TSPT, _TDPT, _TFLAGS, _ICMP, _PROTO, _PDPT, _OTHER = range(11)

#: The wrapper lines are rebuilt with, to ask the full parser what a value means.
_CANARY_HEADER = "Jan  1 00:00:00 nfkitcanary kernel: "
_CANARY_NET = "IN=eth0 OUT= SRC=192.0.2.1 DST=192.0.2.2"
_V4_TAIL = " LEN=60 TOS=0x00 PREC=0x00 TTL={} ID=1 PROTO=UDP SPT=1 DPT=1 LEN=40 "
_V6_TAIL = " LEN=60 TC=0 HOPLIMIT={} FLOWLBL=0 PROTO=UDP SPT=1 DPT=1 LEN=40 "
_REJECT: Any = object()
#: A bit above the 64 of an activity key: set on the rows that are no activity (local
#: traffic, packets without port or ICMP type).
_SKIP = 1 << 64


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
    #: The head's record (interfaces, MAC), shared by the nets with that head.
    head: LogRecord
    address: IPAddress


@dataclass(slots=True)
class _Port:
    """What the protocol part means: protocol name, port key, whether it counts as a port."""

    proto: str
    #: "tcp/22", "icmp/8"; None for a packet without port or ICMP type (a fragment).
    portkey: str | None
    has_port: bool


class BlockSummarizer(LineFeeder):
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
        #: Lines dated before this (epoch seconds) are skipped; None: no cutoff.
        self.cutoff = self._cutoff
        self.attributor = attr.Attributor(self.config.segment)
        #: Held by native lanes (:meth:`lane`) while they work on the summary.
        self.lock = threading.RLock()
        self._headers: dict[bytes, Any] = {b"": (None, 0, False)}
        #: Per classic syslog header without its seconds: the time of second 00 of the minute.
        self._minutes: dict[bytes, float] = {}
        self._heads: dict[bytes, Any] = {}
        self._nets: dict[bytes, Any] = {}
        self._addresses: dict[bytes, tuple[IPAddress, str] | None] = {}
        self._ttl_nets: dict[tuple[bytes, bytes, bytes], Any] = {}
        self._stamp: dict[bytes, float | None] = {b"": None}
        self._slot: dict[bytes, int] = {b"": 0}
        self._invalid_nets: set[bytes] = set()
        #: Headers and nets the full parser must read; headers before ``since``.
        self._rejected_headers: set[bytes] = set()
        self._skipped: set[bytes] = set()
        self._rejected_nets: set[bytes] = set()
        self._who: dict[bytes, int] = {}
        self._triples: dict[tuple[str, str, str], int] = {}
        self._triple_list: list[tuple[str, str, str]] = []
        #: Per triple number: its activity destination bits (or _SKIP for local traffic).
        self._who_bits: list[int] = []
        #: Per net: the number of its (origin, verdict) pair.
        self._net_class: dict[bytes, int] = {}
        #: (origin, verdict, prefix) numbered: what the global counters need of a net.
        self._classes: dict[tuple[str, str, str], int] = {}
        self._class_list: list[tuple[str, str, str]] = []
        #: Per port number: its activity port bits (or _SKIP when it is no port).
        self._port_bits: list[int] = []
        self._port_ids: dict[tuple[bytes, ...], int] = {}
        self._port_list: list[_Port] = []
        # Pending counters, filled at C speed per block and moved into the summary by flush().
        self._pending_ttl: Counter[tuple[bytes, bytes, bytes]] = Counter()
        self._pending_timeline: Counter[tuple[int, int]] = Counter()
        #: (triple number, activity key) pairs seen; keys with _SKIP set are not activity.
        self._pending_activity: set[tuple[int, int]] = set()
        #: Per (triple number, port number), and per ((origin, verdict) number, port number).
        self._pending_ports: Counter[tuple[int, int]] = Counter()
        self._pending_classes: Counter[tuple[int, int]] = Counter()
        self._pending_first: dict[bytes, float] = {}
        self._pending_last: dict[bytes, float] = {}
        self._pending_invalid: Counter[tuple[bytes, bytes, bytes, bytes]] = Counter()
        #: The earliest (time, raw line) of INVALID drops and of their ACKs, not yet flushed.
        self._evidence: tuple[list[tuple[float, str]], list[tuple[float, str]]] = ([], [])
        self._latest = float("-inf")
        self._rest = b""
        #: A record whose attribution fields are set from a net to ask the Attributor.
        self._scratch = LogRecord()
        #: Where native lanes keep the per-source counts until :meth:`drain` (None without
        #: the native scanner).
        self.store = SourceStore() if native.available() else None
        #: The native scanner this engine's own :meth:`feed` uses, when it is built.
        self._lane = self.lane()

    def lane(self) -> NativeLane | None:
        """A new native lane into this engine's summary (one per thread that feeds a byte
        stream of its own), or None when the native scanner is not available."""
        return NativeLane(self) if native.available() else None

    # -- interpreters, shared with native lanes -------------------------------------------------
    def header_info(self, header: bytes) -> tuple[float | None, int, bool] | None:
        """(time, slot, before ``since``) for a wrapper header; None if the full parser must
        read its lines."""
        info = self._headers.get(header)
        if info is None:
            if len(self._headers) > _CACHE_LIMIT:
                self._headers = {b"": (None, 0, False)}
                self._stamp = {b"": None}
                self._slot = {b"": 0}
                self._minutes.clear()
            info = self._headers[header] = self._same_minute(header) or self._header(header)
        return None if info is _REJECT else info

    def _same_minute(self, header: bytes) -> tuple[float, int, bool] | None:
        """(time, slot, skipped) of a classic syslog header from a header of the same minute
        that the full parser has read (the seconds add up; they are 00-59 in both), or None."""
        if len(header) < 17 or header[15:16] != b" " or not header[13:15].isdigit():
            return None
        second = int(header[13:15])
        key = header[:13] + header[15:]
        base = self._minutes.get(key)
        if base is None or second > 59:
            info = self._header(header)
            if info is not _REJECT and second <= 59 and header[:1].isupper():
                self._minutes[key] = info[0] - second
            return info  # type: ignore[no-any-return]
        time = base + second
        slot = int(time // self.config.slot_seconds)
        skipped = self._cutoff is not None and time < self._cutoff
        self._stamp[header] = time
        self._slot[header] = slot
        return (time, slot, skipped)

    def head_info(self, head: bytes) -> tuple[LogRecord, str, str, bool] | None:
        """(record, prefix, verdict, INVALID) for a ``PREFIX IN= OUT= MAC=`` head; None if the
        full parser must read its lines."""
        info = self._heads.get(head)
        if info is None:
            if len(self._heads) > _CACHE_LIMIT:
                self._heads.clear()
            info = self._heads[head] = self._head(head)
        return None if info is _REJECT else info

    @staticmethod
    def address(text: bytes) -> tuple[IPAddress, str] | None:
        """An address and its text as the summary writes it; None if it is not one (the
        answer of :func:`ipaddress.ip_address`, with the C parser's help for IPv4)."""
        try:
            value = text.decode("ascii")
        except ValueError:
            return None
        try:  # strict dotted quad only: what ip_address accepts, written as it writes it
            return (ipaddress.IPv4Address(socket.inet_pton(socket.AF_INET, value)), value)
        except (OSError, ValueError):  # ValueError: a NUL in the text
            pass
        try:
            address = ipaddress.ip_address(value)
        except ValueError:
            return None
        return (address, str(address))

    def port_info(self, key: tuple[bytes, bytes, bytes, bytes]) -> _Port:
        """What ``(TCP DPT, ICMP part, other protocol, its DPT)`` means."""
        return self._port(key)

    def fallback(self, lines: Iterable[bytes]) -> None:
        """Lines for the full parser: exactly :meth:`Summary.add_lines`, at ``reference``."""
        self._fallback(lines)

    # -- interpreting distinct values with the full parser -------------------------------------
    def parse_one(self, line: str) -> LogRecord | None:
        """One line through the full parser, at :attr:`reference`; None if it gives no record."""
        return self._parse(line)

    def _parse(self, line: str) -> LogRecord | None:
        if self.reference is None:
            return parse_line(line)
        try:
            return next(iter(self._stream([line])), None)
        except (ValueError, IndexError, KeyError):
            return None

    def _stream(self, lines: list[str]) -> RecordStream:
        """Parse at :attr:`reference` (the full parser's own reference hook)."""
        return iter_records(lines, reference=self.reference)

    def _header(self, header: bytes) -> Any:
        """(time, slot, skipped) for a wrapper header, or ``_REJECT``."""
        text = header.decode("utf-8", "replace")
        record = self._parse(f"{text} kernel: {_CANARY_NET}{_V4_TAIL.format(64)}")
        if record is None or record.prefix is not None or record.timestamp is None:
            return _REJECT
        stamp = record.timestamp
        time = round(stamp.timestamp(), 6)
        skipped = self._cutoff is not None and stamp.timestamp() < self._cutoff
        slot = int(time // self.config.slot_seconds)
        self._stamp[header] = time
        self._slot[header] = slot
        return (time, slot, skipped)

    def _net(self, net: bytes) -> Any:
        """Interpret ``PREFIX IN= OUT= MAC= SRC= DST=``: the head (prefix, interfaces, MAC) is
        read by the full parser once per distinct head, the addresses once per address."""
        head, sep, addresses = net.rpartition(b" SRC=")
        src_text, sep2, dst_text = addresses.partition(b" DST=")
        if not sep or not sep2:
            return _REJECT
        info = self._heads.get(head)
        if info is None:
            info = self._heads[head] = self._head(head)
        src = self._address(src_text)
        dst = self._address(dst_text)
        if info is _REJECT or src is None or dst is None or src[0].version != dst[0].version:
            return _REJECT
        head_record, prefix, verdict, invalid = info
        scratch = self._scratch
        scratch.in_iface = head_record.in_iface
        scratch.out_iface = head_record.out_iface
        scratch.mac_src = head_record.mac_src
        scratch.src = src[0]
        return _Net(
            prefix, verdict, invalid, self.attributor.origin(scratch), src[1], dst[1],
            head_record.mac_src, src[0].version, head_record, src[0],
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
            cache[text] = value
        return value  # type: ignore[no-any-return]

    def _ttl_net(self, key: tuple[bytes, bytes, bytes]) -> str | None:
        """The TTL contradiction (or None) for a ``(net, TTL, hop limit)`` triple."""
        net_bytes, ttl4, ttl6 = key
        net = self._nets[net_bytes]
        scratch = self._scratch
        scratch.in_iface = net.head.in_iface
        scratch.out_iface = net.head.out_iface
        scratch.mac_src = net.head.mac_src
        scratch.src = net.address
        scratch.ttl = int(ttl4 or ttl6)
        return self.attributor.attribute(scratch)[1]

    def _port(self, key: tuple[bytes, ...]) -> _Port:
        """Interpret ``(TCP DPT, ICMP part, other protocol, its DPT)``."""
        tdpt, icmp, other, dpt = key
        if tdpt:
            return _Port("tcp", f"tcp/{int(tdpt)}", True)
        if icmp:
            name, type_text, _code = icmp.decode().split()
            proto = name.lower()
            return _Port(proto, f"{proto}/{int(type_text[5:])}", False)
        proto = other.decode().lower() or "?"
        if dpt:
            return _Port(proto, f"{proto}/{int(dpt)}", True)
        return _Port(proto, None, False)  # no port, no ICMP type: counted, not a port

    # -- feeding -------------------------------------------------------------------------------
    def finish(self) -> Summary:
        """Count a last line without newline, flush, and return the summary."""
        self.feed_rest()
        self.flush()
        self.drain()
        return self.summary

    def drain(self) -> None:
        """Move what native lanes keep in :attr:`store` into :attr:`summary` (after every lane
        has flushed: :meth:`finish` does it for this engine's own lane)."""
        if self.store is not None:
            with self.lock:
                self.store.drain(self.summary)

    def release(self) -> None:
        """Drop the caches of interpreted values (call after :meth:`finish` to free memory
        before the summary is pickled or merged; the engine stays usable, only slower)."""
        self.flush()
        self.drain()
        if self._lane is not None:
            self._lane.forget()
        self._clear_caches(everything=True)
        self._port_ids.clear()
        self._port_list.clear()
        self._port_bits.clear()

    def _fallback(self, lines: Iterable[bytes]) -> None:
        """Lines for the full parser: exactly :meth:`Summary.add_lines`, at ``reference``."""
        texts = [line.decode("utf-8", "replace") for line in lines]
        summary = self.summary
        if self.reference is None:
            summary.add_lines(texts, since=self.since)
            return
        cutoff = self._cutoff
        for text in texts:
            summary.lines += 1
            try:
                record = next(iter(self._stream([text])), None)
            except (ValueError, IndexError, KeyError):
                record = None
            if record is None:
                summary.unparsed += 1
            elif (
                cutoff is not None
                and record.timestamp is not None
                and record.timestamp.timestamp() < cutoff
            ):
                summary.skipped += 1
            else:
                summary.add(record)

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
        if self._lane is not None:
            self._lane.feed_lines(block)
            return
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
        """Count accepted rows into the pending C-level counters (see :meth:`flush`)."""
        headers, nets = columns[_HEADER], columns[_NET]
        if self._pending_size() > _PENDING_LIMIT:
            self.flush()
        elif len(self._pending_activity) > _PENDING_LIMIT:
            self._flush_activity()
        if max(len(self._nets), len(self._ttl_nets), len(self._addresses)) > _CACHE_LIMIT:
            self.flush()  # pending counters refer to cached values: empty them first
            self._clear_caches()
        header_info = self._headers
        distinct_headers = set(headers)
        for header in distinct_headers - header_info.keys():
            info = header_info[header] = self._header(header)
            if info is _REJECT:
                self._rejected_headers.add(header)
            elif info[2]:
                self._skipped.add(header)
        nets_info = self._nets
        distinct_nets = set(nets)
        for net_bytes in distinct_nets - nets_info.keys():
            net = nets_info[net_bytes] = self._net(net_bytes)
            if net is _REJECT:
                self._rejected_nets.add(net_bytes)
                continue
            triple = (net.src, net.dst, net.origin)
            number = self._triples.get(triple)
            if number is None:
                number = self._triples[triple] = len(self._triple_list)
                self._triple_list.append(triple)
                self._who_bits.append(
                    _SKIP if net.origin == attr.LOCAL else self.summary.activity.dst_bits(net.dst)
                )
            self._who[net_bytes] = number
            net_class = (net.origin, net.verdict, net.prefix)
            kind = self._classes.get(net_class)
            if kind is None:
                kind = self._classes[net_class] = len(self._class_list)
                self._class_list.append(net_class)
            self._net_class[net_bytes] = kind
            if net.invalid:
                self._invalid_nets.add(net_bytes)
        rejected = distinct_headers & self._rejected_headers
        skipped = distinct_headers & self._skipped
        bad_nets = distinct_nets & self._rejected_nets
        if rejected or skipped or bad_nets:
            kept = self._split_rows(columns, block, rejected, skipped, bad_nets)
            if kept is None:
                return
            columns = kept
            headers, nets = columns[_HEADER], columns[_NET]
            distinct_nets -= bad_nets
        rows = len(nets)
        summary = self.summary
        summary.lines += rows
        summary.records += rows

        self._pending_ttl.update(zip(nets, columns[_TTL4], columns[_TTL6], strict=True))

        port_columns = (columns[_TDPT], columns[_ICMP], columns[_PROTO], columns[_PDPT])
        port_keys = list(zip(*port_columns, strict=True))
        port_ids = self._port_ids
        for port_key in set(port_keys) - port_ids.keys():
            port_ids[port_key] = len(self._port_list)
            port = self._port(port_key)
            self._port_list.append(port)
            self._port_bits.append(
                _SKIP if port.portkey is None else summary.activity.port_bits(port.portkey)
            )
        ports = list(map(port_ids.__getitem__, port_keys))
        stamps = list(map(self._stamp.__getitem__, headers))
        slots = list(map(self._slot.__getitem__, headers))
        # per row the number of its (source, destination, origin), shared by the nets that
        # differ only in prefix or MAC: small int keys hash and compare at C speed
        who = list(map(self._who.__getitem__, nets))
        classes = list(map(self._net_class.__getitem__, nets))
        self._pending_timeline.update(zip(slots, classes, strict=True))
        self._pending_classes.update(zip(classes, ports, strict=True))
        self._pending_ports.update(zip(who, ports, strict=True))
        # the activity key of every row, OR-ed together from its three parts at C speed
        activity = summary.activity
        slot_bits = {slot: activity.slot_bits(slot) for slot in set(slots)}
        keys = map(
            or_,
            map(or_, map(slot_bits.__getitem__, slots), map(self._who_bits.__getitem__, who)),
            map(self._port_bits.__getitem__, ports),
        )
        self._pending_activity.update(zip(who, keys, strict=True))
        self._first_last(nets, stamps)
        if not self._invalid_nets.isdisjoint(distinct_nets):
            self._findings(columns, stamps, block)

    def _split_rows(
        self,
        columns: list[Any],
        block: bytes,
        rejected: set[bytes],
        skipped: set[bytes],
        bad_nets: set[bytes],
    ) -> list[Any] | None:
        """Send the rows the full parser must see to it; count skipped ones; keep the rest."""
        keep: list[bool] = []
        full: list[int] = []
        for header, net, line_number in zip(
            columns[_HEADER], columns[_NET], columns[_OTHER], strict=True
        ):
            if header in rejected or net in bad_nets:
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
        return [list(compress(column, keep)) for column in columns]

    def _first_last(self, nets: list[bytes], stamps: list[Any]) -> None:
        """Pending first and last time per net (``stamps``: floats, None when untimed)."""
        untimed = stamps.count(None)
        rows = len(stamps)
        if untimed == rows:
            return
        first, last = self._pending_first, self._pending_last
        if not untimed and all(map(le, stamps, islice(stamps, 1, None))):
            # In time order: per net, the first and last row give its times (C-level dicts).
            lasts = dict(zip(nets, stamps, strict=True))
            firsts = dict(zip(reversed(nets), reversed(stamps), strict=True))
            new = firsts.keys() - first.keys()
            if stamps[0] >= self._latest:  # after everything pending: later is later
                last.update(lasts)
            else:  # another file or range, earlier: compare the nets seen before
                for net_bytes in firsts.keys() & first.keys():
                    if firsts[net_bytes] < first[net_bytes]:
                        first[net_bytes] = firsts[net_bytes]
                    if lasts[net_bytes] > last[net_bytes]:
                        last[net_bytes] = lasts[net_bytes]
                for net_bytes in new:
                    last[net_bytes] = lasts[net_bytes]
            for net_bytes in new:
                first[net_bytes] = firsts[net_bytes]
            self._latest = max(self._latest, stamps[-1])
            return
        for net_bytes, stamp in zip(nets, stamps, strict=True):
            if stamp is None:
                continue
            known = first.get(net_bytes)
            if known is None or stamp < known:
                first[net_bytes] = stamp
            known = last.get(net_bytes)
            if known is None or stamp > known:
                last[net_bytes] = stamp
            if stamp > self._latest:
                self._latest = stamp

    def _findings(self, columns: list[Any], stamps: list[float | None], block: bytes) -> None:
        """INVALID-drop rows: counted by (net, ports, flags); the earliest keep their line."""
        selected = list(map(self._invalid_nets.__contains__, columns[_NET]))
        picked = [list(compress(columns[i], selected)) for i in (_NET, _TSPT, _TDPT, _TFLAGS)]
        self._pending_invalid.update(zip(*picked, strict=True))
        times = [0.0 if t is None else t for t in compress(stamps, selected)]
        evidence = self._evidence
        if all(len(e) >= EVIDENCE for e in evidence) and min(times) > max(
            e[-1][0] for e in evidence
        ):
            return  # nothing earlier than the evidence kept so far
        lines = block.split(b"\n")
        for time, tdpt, flags, line_number in zip(
            times, picked[2], picked[3], compress(columns[_OTHER], selected), strict=True
        ):
            is_ack = bool(tdpt) and b"ACK" in flags.split() and b"SYN" not in flags.split()
            for kept, wanted in ((evidence[0], True), (evidence[1], is_ack)):
                if wanted and (len(kept) < EVIDENCE or time <= kept[-1][0]):
                    kept.append((time, lines[line_number].decode("utf-8", "replace")))
                    kept.sort()
                    del kept[EVIDENCE:]

    # -- flushing pending counters into the summary ----------------------------------------------
    def _pending_size(self) -> int:
        return max(len(self._pending_ttl), len(self._pending_first), len(self._pending_ports))

    def _clear_caches(self, everything: bool = False) -> None:
        """Empty the caches of nets and addresses; those of headers too when they are large
        (or with ``everything``). Pending counters refer to them: flush first."""
        self._nets.clear()
        self._ttl_nets.clear()
        self._addresses.clear()
        self._heads.clear()
        self._invalid_nets.clear()
        self._rejected_nets.clear()
        self._who.clear()
        self._triples.clear()
        self._triple_list.clear()
        self._who_bits.clear()
        self._net_class.clear()
        if everything or len(self._headers) > _CACHE_LIMIT:
            self._rejected_headers.clear()
            self._skipped.clear()
            self._headers = {b"": (None, 0, False)}
            self._stamp = {b"": None}
            self._slot = {b"": 0}

    def flush(self) -> None:
        """Move the pending counters into :attr:`summary` (done when they grow, and at the end)."""
        if self._lane is not None:
            with self.lock:
                self._lane.flush()
        summary = self.summary
        sources = summary.sources
        nets_info, ttl_info = self._nets, self._ttl_nets
        for key, count in self._pending_ttl.items():
            net = nets_info[key[0]]
            origin = net.origin
            stats = sources.get(net.src)
            if stats is None:
                stats = sources[net.src] = SourceStats(error=summary.floor)
            stats.packets += count
            stats.origins[origin] = stats.origins.get(origin, 0) + count
            if net.mac:
                stats.macs[net.mac] = stats.macs.get(net.mac, 0) + count
            stats.prefixes[net.prefix] = stats.prefixes.get(net.prefix, 0) + count
            contradiction = ttl_info.get(key, _REJECT)
            if contradiction is _REJECT:
                contradiction = ttl_info[key] = self._ttl_net(key)
            if contradiction is not None:
                stats.contradictions[contradiction] = (
                    stats.contradictions.get(contradiction, 0) + count
                )
        self._pending_ttl = Counter()
        last = self._pending_last
        for net_bytes, early in self._pending_first.items():
            stats = sources[nets_info[net_bytes].src]
            late = last[net_bytes]
            if stats.first is None or early < stats.first:
                stats.first = early
            if stats.last is None or late > stats.last:
                stats.last = late
        self._pending_first = {}
        self._pending_last = {}
        self._latest = float("-inf")  # the latest time of what is pending: nothing now
        self._flush_slots()
        self._flush_findings()
        summary.bound()

    def _flush_activity(self) -> None:
        """Move the pending activity keys into the summary's store, grouped by source.

        Done apart from the other counters too (they are the ones that grow with every line):
        the others then repeat more between their flushes, and each flush costs less.
        """
        triples = self._triple_list
        touched: dict[int, list[int]] = {}
        for who, key in self._pending_activity:
            if key < _SKIP:
                keys = touched.get(who)
                if keys is None:
                    touched[who] = [key]
                else:
                    keys.append(key)
        self._pending_activity = set()
        activity = self.summary.activity
        for who, keys in touched.items():
            activity.extend(triples[who][0], keys)

    def _flush_slots(self) -> None:
        summary = self.summary
        port_list, triples, classes = self._port_list, self._triple_list, self._class_list
        for (slot, kind), count in self._pending_timeline.items():
            origin, _verdict, prefix = classes[kind]
            summary.count_slot(slot, origin, prefix, count)
        self._pending_timeline = Counter()
        self._flush_activity()
        for (kind, port_id), count in self._pending_classes.items():
            port_info = port_list[port_id]
            if port_info.portkey is not None:
                origin, verdict, _prefix = classes[kind]
                summary.count_port(origin, port_info.portkey, verdict, count, port_info.has_port)
        self._pending_classes = Counter()
        sources = summary.sources
        for (who, port_id), count in self._pending_ports.items():
            port_info = port_list[port_id]
            stats = sources[triples[who][0]]
            stats.protos[port_info.proto] = stats.protos.get(port_info.proto, 0) + count
            portkey = port_info.portkey
            if port_info.has_port and portkey is not None:
                stats.ports[portkey] = stats.ports.get(portkey, 0) + count
        self._pending_ports = Counter()

    def _flush_findings(self) -> None:
        invalid, acks = Finding(), Finding()
        invalid.evidence, acks.evidence = self._evidence
        self._evidence = ([], [])
        nets_info = self._nets
        for (net_bytes, spt, tdpt, flag_text), count in self._pending_invalid.items():
            net = nets_info[net_bytes]
            flow = f"{net.src}:{int(spt)}>{net.dst}:{int(tdpt)}" if tdpt else None
            flags = flag_text.split()
            targets = [invalid]
            if tdpt and b"ACK" in flags and b"SYN" not in flags:
                targets.append(acks)
            for finding in targets:
                finding.packets += count
                finding.by_prefix[net.prefix] = finding.by_prefix.get(net.prefix, 0) + count
                if flow is not None:
                    finding.flows.add(flow)
        self._pending_invalid = Counter()
        self.summary.invalid.merge(invalid)
        self.summary.invalid_acks.merge(acks)


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
