"""Netfilter LOG lines to :class:`~nfkit.logs.record.LogRecord`.

The kernel's formatter (``net/netfilter/nf_log_syslog.c``) writes ``PREFIXIN=.. OUT=.. `` and
then one field after another, each followed by a space. Three readers share the work, tried in
this order:

* a line-level regular expression for the common shapes (classic syslog, RFC 3339 or dmesg
  wrapper around an IPv4/IPv6 TCP, UDP, ICMP, AH/ESP message, an ICMP error quoting a packet,
  or an IPv4 fragment after the first): one match per line; the parts that repeat between lines
  are converted once and cached, and the record's slots are filled directly
  (:mod:`nfkit.logs.fastparse`);
* the same for a message whose wrapper :class:`~nfkit.logs.wrappers.Unwrapper` removed (ulogd,
  journal JSON, OpenWrt, caller ids, ...) (:mod:`nfkit.logs.fastmessage`);
* a token reader for everything else (:mod:`nfkit.logs.tokenreader`): IPv6 fragments,
  ``INCOMPLETE [N bytes]``, IPv6 extension headers in ``OPT ( ... )``, bridge ``PHYSIN``,
  ``MACSRC``/``MACDST``, ARP, lines cut at the kernel's ~1 KiB limit, ulogd's variations, and
  the rarer shapes of ICMP errors.

All give equal records for the lines the quicker ones accept (tests check that); a quicker
reader returns None rather than guess, and the next one decides.
"""

from __future__ import annotations

import gzip
import io
import os
import zlib
from collections.abc import Iterable, Iterator
from datetime import datetime
from itertools import chain, repeat
from pathlib import Path
from typing import IO

from nfkit.errors import LogFormatError, LogReadError
from nfkit.logs.fastmessage import _fast_parse
from nfkit.logs.fastparse import _fast_line
from nfkit.logs.record import LogRecord
from nfkit.logs.tokenreader import KERNEL_LINE_MAX, TRUNCATION_LENGTH, _slow_parse
from nfkit.logs.wrappers import Unwrapper

__all__ = [
    "KERNEL_LINE_MAX",
    "TRUNCATION_LENGTH",
    "RecordStream",
    "iter_records",
    "parse_line",
    "parse_message",
]


def parse_message(
    message: str,
    raw: str | None = None,
    timestamp: datetime | None = None,
    host: str | None = None,
    uptime: float | None = None,
) -> LogRecord | None:
    """Parse a kernel message without wrapper; None when it is not a packet log.

    Raises ``ValueError`` when the line carries the netfilter header but a field is unreadable.
    """
    if raw is None:
        raw = message
    if "IN=" not in message:
        return None
    record = _fast_parse(raw, message, timestamp, host, uptime)
    if record is not None:
        return record
    return _slow_parse(raw, message, timestamp, host, uptime)


_UNWRAPPER = Unwrapper()


def _parse(line: str, unwrapper: Unwrapper) -> LogRecord | None:
    """Parse one raw line; ``_MalformedError`` for a packet line with unreadable fields."""
    raw = line.rstrip("\r\n")
    if "IN=" not in raw and raw[:1] != "{":  # journal JSON may carry MESSAGE as byte values
        return None
    record = _fast_line(raw, unwrapper)
    if record is not None:
        return record
    timestamp, host, uptime, message = unwrapper.split(raw)
    if "IN=" not in message:
        return None
    record = _fast_parse(raw, message, timestamp, host, uptime)
    if record is not None:
        return record
    return _slow_parse(raw, message, timestamp, host, uptime)


def parse_line(line: str) -> LogRecord | None:
    """Parse one log line (any supported wrapper); None if it is not a readable packet log."""
    try:
        return _parse(line, _UNWRAPPER)
    except (ValueError, IndexError, KeyError):
        return None


Source = str | os.PathLike[str] | IO[str] | IO[bytes] | Iterable[str] | Iterable[bytes]


class RecordStream:
    """An iterator of :class:`LogRecord` that counts what it read.

    Attributes, updated as it goes: ``lines`` (lines read), ``records`` (records yielded),
    ``skipped`` (lines that are not packet logs: other kernel or syslog messages; blank lines
    are not counted), ``malformed`` (lines with the netfilter ``IN= OUT=`` header whose fields
    could not be read), and ``unparsed`` = ``skipped + malformed``: every non-blank line that gave
    no record. With ``strict=True`` the first such line raises :class:`LogFormatError` instead.
    """

    __slots__ = (
        "_iterator", "_lines", "_unwrapper", "lines", "malformed", "name", "records", "skipped",
        "strict",
    )  # fmt: skip

    def __init__(
        self,
        lines: Iterable[str],
        *,
        strict: bool = False,
        name: str | None = None,
        reference: datetime | None = None,
    ) -> None:
        self._lines = lines
        self.strict = strict
        self.name = name
        self.lines = 0
        self.records = 0
        self.skipped = 0
        self.malformed = 0
        self._unwrapper = Unwrapper(reference) if reference is not None else _UNWRAPPER
        self._iterator = self._run()

    @property
    def unparsed(self) -> int:
        """Non-blank lines that gave no record (``skipped + malformed``)."""
        return self.skipped + self.malformed

    def __iter__(self) -> Iterator[LogRecord]:
        return self._iterator

    def __next__(self) -> LogRecord:
        return next(self._iterator)

    def _run(self) -> Iterator[LogRecord]:
        unwrapper = self._unwrapper
        split = unwrapper.split
        fast_line = _fast_line
        fast = _fast_parse
        slow = _slow_parse
        lineno = self.lines
        records = self.records
        source = self._lines
        # A file comes as lists of lines already stripped: a plain loop over a list is quicker
        # than resuming a line generator and calling rstrip for every line.
        batches: Iterable[Iterable[str]] = (
            source.batches
            if isinstance(source, _FileLines)
            else (map(str.rstrip, source, repeat("\r\n")),)
        )
        try:
            for batch in batches:
                for raw in batch:
                    lineno += 1
                    try:
                        record = fast_line(raw, unwrapper)
                        if record is None and ("IN=" in raw or raw[:1] == "{"):
                            timestamp, host, uptime, message = split(raw)
                            record = fast(raw, message, timestamp, host, uptime)
                            if record is None:
                                record = slow(raw, message, timestamp, host, uptime)
                    except (ValueError, IndexError, KeyError) as exc:
                        self.malformed += 1
                        if self.strict:
                            raise LogFormatError(
                                f"unreadable packet log line ({exc}): {_excerpt(raw)}",
                                lineno,
                                self.name,
                            ) from None
                        continue
                    if record is None:
                        if raw.strip():
                            self.skipped += 1
                            if self.strict:
                                raise LogFormatError(
                                    f"not a netfilter packet log line: {_excerpt(raw)}",
                                    lineno,
                                    self.name,
                                )
                        continue
                    records += 1
                    self.records = records
                    self.lines = lineno
                    yield record
        finally:
            self.lines = lineno


#: Characters read at a time. Small enough that a chunk and its lines stay in the CPU's L2
#: cache while they are parsed: 64 KiB reads a log about 10% quicker than 1 MiB did.
_CHUNK = 1 << 16


def _excerpt(line: str, width: int = 60) -> str:
    """The start of ``line`` for an error message, quoted."""
    return repr(line if len(line) <= width else line[:width] + "...")


class _FileLines:
    """The lines of a plain or gzip file without their line endings, read in 1 MiB chunks.

    Opening or reading it raises OSError (a corrupt ``.gz`` OSError or EOFError) when iteration
    starts or where it breaks.
    """

    __slots__ = ("path",)

    def __init__(self, source: str | os.PathLike[str]) -> None:
        self.path = Path(source)

    @property
    def batches(self) -> Iterator[list[str]]:
        """The lines in lists, one per chunk read: quicker to loop over than a line iterator."""
        return _read_batches(self.path)

    def __iter__(self) -> Iterator[str]:
        return chain.from_iterable(self.batches)


def _read_batches(path: Path) -> Iterator[list[str]]:
    """Yield the lines of ``path`` chunk by chunk; raise LogReadError if it cannot be read."""
    try:
        yield from _read_batches_raw(path)
    except (OSError, EOFError, zlib.error) as exc:
        reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        raise LogReadError(f"cannot read {path}: {reason}") from None


def _read_batches_raw(path: Path) -> Iterator[list[str]]:
    """Yield the lines of ``path`` chunk by chunk; split on "\\n", quicker than line iteration."""
    handle: IO[str]
    if path.suffix == ".gz":
        handle = gzip.open(path, "rt", encoding="utf-8", errors="replace", newline="")  # noqa: SIM115
    else:
        handle = path.open(encoding="utf-8", errors="replace", newline="")
    with handle:
        read = handle.read
        pending: list[str] = []  # the start of a line that goes on in the next chunk
        while True:
            chunk = read(_CHUNK)
            if not chunk:
                break
            lines = chunk.split("\n")
            last = lines.pop()
            if not lines:  # no line ends in this chunk
                pending.append(last)
                continue
            if pending:
                pending.append(lines[0])
                lines[0] = "".join(pending)
                pending = []
            pending.append(last)
            if "\r" in chunk or "\r" in lines[0]:
                lines = [line.rstrip("\r") for line in lines]
            yield lines
        rest = "".join(pending)
        if rest:
            yield [rest.rstrip("\r")]


def _text_lines(source: Iterable[str] | Iterable[bytes]) -> Iterator[str]:
    for line in source:
        if isinstance(line, bytes | bytearray):
            yield bytes(line).decode("utf-8", "replace")
        else:
            yield line


def iter_records(
    source: Source,
    *,
    strict: bool = False,
    reference: datetime | None = None,
    name: str | None = None,
) -> RecordStream:
    """Stream records from a path (plain or ``.gz``), a text or binary file, or lines.

    A path that cannot be opened raises ``OSError`` when iteration starts (a corrupt ``.gz``
    raises ``OSError`` or ``EOFError`` where it breaks); a binary file object is decoded as UTF-8
    (bad bytes replaced) but not decompressed.

    Returns a :class:`RecordStream`: iterate it for records; its ``lines``, ``records``,
    ``skipped``, ``malformed`` and ``unparsed`` counters say what was read. Lines that give no
    record are counted, not raised, unless ``strict`` is true (then :class:`LogFormatError` with
    the line number). ``reference`` is "now" for the year of syslog dates (default: now).
    """
    lines: Iterable[str]
    label: object = name
    if isinstance(source, str | os.PathLike):
        label = name or os.fspath(source)
        lines = _FileLines(source)
    elif isinstance(source, io.TextIOBase):
        label = name or getattr(source, "name", None)
        lines = source
    else:
        if hasattr(source, "read"):
            label = name or getattr(source, "name", None)
        lines = _text_lines(source)
    return RecordStream(
        lines, strict=strict, name=label if isinstance(label, str) else None, reference=reference
    )
