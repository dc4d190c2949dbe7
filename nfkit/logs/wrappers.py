"""Strip what syslog, dmesg, journald or ulogd wrap around a kernel message.

Every log line is unwrapped to ``(timestamp, host, uptime, message)`` by :class:`Unwrapper`.
Recognised wrappers:

* classic syslog ``Nov 25 04:17:23 host kernel: [  102.710000] ...`` (no year: it is inferred
  from a reference time, see :func:`infer_year`), optionally with fractional seconds
  (``journalctl -o short-precise``), a facility before the tag (``host kern.warn kernel:``), and
  the printk caller id (``[17748.07][    C0]``);
* RFC 3339 (rsyslog, ``journalctl -o short-iso``) ``2026-11-24T10:00:05.114797+01:00 host ...``;
* ``dmesg`` ``[  686.000667] ...``, ``dmesg -T`` ``[Tue Nov 24 10:00:03 2026] ...``, and
  ``journalctl -o short-monotonic`` ``[  686.000667] host kernel: ...``;
* OpenWrt ``logread`` ``Tue Nov 24 10:00:03 2026 kern.warn kernel: ...``;
* ``journalctl -o json`` (``MESSAGE`` as text or as a list of byte values,
  ``__REALTIME_TIMESTAMP`` in microseconds, ``_HOSTNAME``, ``_SOURCE_MONOTONIC_TIMESTAMP``); a
  timestamp that is not a 64-bit count of microseconds, or lies past the year 9999, is left out
  (the message is still read: the packet gets no timestamp, as with an impossible syslog date),
  and a line that is not JSON or is nested too deeply to read is taken as a bare message;
* ulogd LOGEMU ``Nov 25 04:17:23 host PREFIX IN=...`` (no ``kernel:`` tag: everything after the
  host is the message, so the prefix is kept);
* a bare kernel message (``journalctl -o cat``), returned unchanged.

Timestamps without a zone (syslog, ``dmesg -T``) are naive local times; RFC 3339 and journal
timestamps are timezone-aware.
"""

from __future__ import annotations

import json
import re
import time
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

__all__ = ["MONTHS", "Unwrapped", "Unwrapper", "infer_year", "unwrap"]

#: Month abbreviations as syslog writes them, mapped to 1..12.
MONTHS: dict[str, int] = {
    name: number
    for number, name in enumerate(
        ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1
    )
}

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
#: A syslog date more than this far after the reference time is taken to be from the year before.
_FUTURE_SLACK = timedelta(days=31)
#: The reference time of the shared :func:`unwrap` is renewed after this many seconds.
_REFERENCE_MAX_AGE = 3600.0
_CACHE_LIMIT = 65536
#: "00".."59" -> the second, for :meth:`Unwrapper.syslog_header`.
_SECONDS = {f"{second:02d}": second for second in range(60)}

_FACILITY = (
    r"(?:kern|user|mail|daemon|auth|syslog|lpr|news|uucp|cron|authpriv|ftp|ntp|security|console"
    r"|local[0-7])\.(?:emerg|alert|crit|err|error|warning|warn|notice|info|debug|panic)"
)
# After the timestamp: [host] [facility.priority] [tag:] message. Only ``kernel:`` and tags with
# a pid (``ulogd[42]:``) count as tags: anything else is a log prefix (ulogd LOGEMU has no tag).
_AFTER_TIME = re.compile(
    rf"(?:(?!{_FACILITY} |kernel: )(?P<host>[^\s\[]\S*) )?(?:{_FACILITY} )?"
    r"(?:(?:kernel|[\w.-]+\[\d+\]): ?)?"
    r"(?:\[ *(?P<uptime>\d+\.\d+)\] ?)?(?:\[ *[CT]\d+\] ?)?"
)
_SYSLOG_TIME = re.compile(
    r"(?P<mon>Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) {1,2}(?P<day>\d{1,2}) "
    r"(?P<h>\d\d):(?P<m>\d\d):(?P<s>\d\d)(?:\.(?P<frac>\d{1,6})\d*)? "
)
_CTIME = re.compile(
    r"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun) "
    r"(?P<mon>Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) {1,2}(?P<day>\d{1,2}) "
    r"(?P<h>\d\d):(?P<m>\d\d):(?P<s>\d\d) (?P<year>\d{4})"
)
_ISO_TIME = re.compile(
    r"(?P<iso>\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:?\d\d)?) "
)
_DMESG = re.compile(r"\[ *(?P<uptime>\d+\.\d+)\] ?(?:\[ *[CT]\d+\] ?)?")
_PRIORITY = re.compile(r"<\d{1,3}>(?:1 )?")


class Unwrapped(NamedTuple):
    """A line without its wrapper: when, where, seconds since boot, and the kernel message."""

    timestamp: datetime | None
    host: str | None
    uptime: float | None
    message: str


def infer_year(month: int, day: int, reference: datetime) -> int:
    """Return the year of a year-less syslog date, given the time the log is read.

    A date more than a month after ``reference`` is from the year before: a log read on
    2 January holds the previous December's lines. Feb 29 falls back to the last leap year.
    """
    year = reference.year
    try:
        candidate = datetime(year, month, day)
    except ValueError:
        candidate = None
    ref = reference.replace(tzinfo=None)
    if candidate is None or candidate - ref > _FUTURE_SLACK:
        year -= 1
    for back in range(8):  # Feb 29: walk back to a leap year
        try:
            datetime(year - back, month, day)
        except ValueError:
            continue
        return year - back
    return year


def _fraction(text: str | None) -> int:
    return int(text.ljust(6, "0")) if text else 0


class Unwrapper:
    """Unwrap lines against one reference time, caching the timestamps it has converted.

    ``reference`` is "now" for year inference of syslog dates (default: the current local time,
    renewed hourly). A log that crosses New Year keeps its December lines in the old year as long
    as it is read within eleven months.
    """

    def __init__(self, reference: datetime | None = None) -> None:
        self._fixed = reference is not None
        self._reference = reference or datetime.now()
        self._reference_at = time.monotonic()
        self._syslog_cache: dict[str, datetime | None] = {}
        self._iso_cache: dict[str, datetime | None] = {}
        #: :meth:`syslog_header`'s cache, read directly by the parser's fast path.
        self.header_cache: dict[str, tuple[datetime | None, str] | None] = {}

    @property
    def reference(self) -> datetime:
        """The time year-less dates are placed before."""
        return self._reference

    def _syslog_time(self, stamp: str, match: re.Match[str]) -> datetime | None:
        cache = self._syslog_cache
        if (
            not self._fixed
            and time.monotonic() - self._reference_at > _REFERENCE_MAX_AGE
        ):
            self._reference = datetime.now()
            self._reference_at = time.monotonic()
            cache.clear()
            self.header_cache.clear()  # its dates were placed with the old reference
        if len(cache) > _CACHE_LIMIT:
            cache.clear()
        month = MONTHS[match["mon"]]
        day = int(match["day"])
        try:
            value: datetime | None = datetime(
                infer_year(month, day, self._reference),
                month,
                day,
                int(match["h"]),
                int(match["m"]),
                int(match["s"]),
                _fraction(match["frac"]),
            )
        except ValueError:
            value = None
        cache[stamp] = value
        return value

    def _iso_time(self, stamp: str) -> datetime | None:
        cache = self._iso_cache
        try:
            return cache[stamp]
        except KeyError:
            pass
        if len(cache) > _CACHE_LIMIT:
            cache.clear()
        try:
            value: datetime | None = datetime.fromisoformat(stamp)
        except ValueError:
            value = None
        cache[stamp] = value
        return value

    def syslog_header(self, header: str) -> tuple[datetime | None, str] | None:
        """Timestamp and host of ``"Nov 25 04:17:23 host"`` followed by `` kernel: ``, cached.

        None when :meth:`unwrap` would not read it as a timestamp and a host (for example a
        facility name in the host's place).
        """
        cache = self.header_cache
        try:
            return cache[header]
        except KeyError:
            pass
        # A header differs from the one at second 00 of its minute only in the time (time zone
        # changes fall on whole minutes): derive it from that one's, read once per minute.
        second = _SECONDS.get(header[13:15])
        if second is not None and header[15:16] == " " and header[13:15] != "00":
            base = self.syslog_header(header[:13] + "00" + header[15:])
            if base is not None and base[0] is not None:
                value: tuple[datetime | None, str] | None = (
                    base[0].replace(second=second),
                    base[1],
                )
                if len(cache) >= _CACHE_LIMIT:
                    cache.clear()
                cache[header] = value
                return value
        if len(cache) >= _CACHE_LIMIT:
            cache.clear()
        when, host, uptime, message = self.unwrap(header + " kernel: ")
        value = (when, host) if host is not None and uptime is None and not message else None
        cache[header] = value
        return value

    def iso_time(self, stamp: str) -> datetime | None:
        """The datetime of an RFC 3339 timestamp (None if it is not one), cached per second."""
        if "." in stamp:  # sub-second stamps hardly repeat: caching them costs more than it saves
            try:
                return datetime.fromisoformat(stamp)
            except ValueError:
                return None
        try:
            return self._iso_cache[stamp]
        except KeyError:
            return self._iso_time(stamp)

    def split(self, line: str) -> tuple[datetime | None, str | None, float | None, str]:
        """Like :meth:`unwrap` (same values) but a plain tuple, quicker for common wrappers.

        ``line`` must not end in a newline. Classic syslog and RFC 3339 lines tagged
        ``host kernel:`` are split with string operations; the rest goes through :meth:`unwrap`.
        """
        if len(line) > 26:
            if line[15] == " " and line[12] == ":" and line[9] == ":" and line[3] == " ":
                # "Nov 25 04:17:23 host kernel: [  102.710000] message"
                when = self._syslog_cache.get(line[:16], _MISSING)
                if when is not _MISSING:
                    split = self._host_kernel(when, line, 16)
                    if split is not None:
                        return split
            elif line[10] == "T" and line[4] == "-" and line[7] == "-":
                # "2026-11-24T10:00:05.114797+01:00 host kernel: message"
                space = line.find(" ", 19)
                if space > 0:
                    stamp = line[:space]
                    when = self._iso_cache.get(stamp, _MISSING)
                    if when is _MISSING and _ISO_TIME.fullmatch(line, 0, space + 1):
                        when = self._iso_time(stamp)
                    if when is not _MISSING:
                        split = self._host_kernel(when, line, space + 1)
                        if split is not None:
                            return split
        return tuple(self.unwrap(line))  # type: ignore[return-value]

    @staticmethod
    def _host_kernel(
        when: datetime | None, line: str, start: int
    ) -> tuple[datetime | None, str | None, float | None, str] | None:
        """Read ``host kernel: [uptime] `` at ``start``; None when the line is shaped otherwise."""
        space = line.find(" ", start)
        if space <= start or not line.startswith("kernel: ", space + 1):
            return None
        host = line[start:space]
        if host[0] == "[" or host == "kernel:" or ("." in host and _FACILITY_NAME.fullmatch(host)):
            return None
        pos = space + 9
        if line[pos : pos + 1] != "[":
            return when, host, None, line[pos:]
        close = line.find("]", pos)
        if close < 0 or not _UPTIME.fullmatch(line, pos + 1, close):
            return None
        after = close + 1
        following = line[after : after + 1]
        if following == " ":
            after += 1
            following = line[after : after + 1]
        if following == "[":
            return None  # a printk caller id: the general path strips it
        return when, host, float(line[pos + 1 : close]), line[after:]

    def unwrap(self, line: str) -> Unwrapped:
        """Split ``line`` into timestamp, host, uptime and the kernel message."""
        line = line.rstrip("\r\n")
        if not line:
            return Unwrapped(None, None, None, "")
        first = line[0]
        if first == "<":
            match = _PRIORITY.match(line)
            if match:
                line = line[match.end() :]
                if not line:
                    return Unwrapped(None, None, None, "")
                first = line[0]
        if first == "{":
            return self._journal_json(line)
        if first == "[":
            return self._dmesg(line)
        if first.isdigit():
            match = _ISO_TIME.match(line)
            if match is None:
                return Unwrapped(None, None, None, line)
            stamp = match["iso"]
            return self._after_time(self._iso_time(stamp), line, match.end())
        match = _SYSLOG_TIME.match(line)
        if match is not None:
            stamp = line[: match.end()]
            try:
                when = self._syslog_cache[stamp]
            except KeyError:
                when = self._syslog_time(stamp, match)
            return self._after_time(when, line, match.end())
        match = _CTIME.match(line)
        if match is not None:  # OpenWrt logread: "Tue Nov 24 10:00:03 2026 kern.warn kernel:"
            end = match.end()
            when = self._ctime(match)
            if line[end : end + 1] == " ":
                end += 1
            return self._after_time(when, line, end)
        return Unwrapped(None, None, None, line)

    def _after_time(self, when: datetime | None, line: str, start: int) -> Unwrapped:
        match = _AFTER_TIME.match(line, start)
        assert match is not None  # every group is optional
        uptime = match["uptime"]
        return Unwrapped(
            when, match["host"], float(uptime) if uptime else None, line[match.end() :]
        )

    def _ctime(self, match: re.Match[str]) -> datetime | None:
        try:
            return datetime(
                int(match["year"]),
                MONTHS[match["mon"]],
                int(match["day"]),
                int(match["h"]),
                int(match["m"]),
                int(match["s"]),
            )
        except ValueError:
            return None

    def _dmesg(self, line: str) -> Unwrapped:
        match = _DMESG.match(line)
        if match is not None:
            rest = line[match.end() :]
            uptime = float(match["uptime"])
            # journalctl -o short-monotonic: "[  686.000667] host kernel: message"
            after = _MONOTONIC_HOST.match(rest)
            if after is not None:
                return Unwrapped(None, after["host"], uptime, rest[after.end() :])
            return Unwrapped(None, None, uptime, rest)
        if line.startswith("[") and line[1:2].isalpha():  # dmesg -T
            close = line.find("]")
            ctime = _CTIME.fullmatch(line, 1, close) if close > 0 else None
            if ctime is not None:
                rest = line[close + 1 :]
                if rest.startswith(" "):
                    rest = rest[1:]
                caller = _DMESG_CALLER.match(rest)
                if caller is not None:
                    rest = rest[caller.end() :]
                return Unwrapped(self._ctime(ctime), None, None, rest)
        return Unwrapped(None, None, None, line)

    def _journal_json(self, line: str) -> Unwrapped:
        try:
            entry: Any = json.loads(line)
        except (ValueError, RecursionError):  # not JSON, or nested too deeply to read
            return Unwrapped(None, None, None, line)
        if not isinstance(entry, dict):
            return Unwrapped(None, None, None, "")
        message = _journal_message(entry.get("MESSAGE"))
        when: datetime | None = None
        realtime = _microseconds(entry.get("__REALTIME_TIMESTAMP"))
        if realtime is not None:
            try:
                when = _EPOCH + timedelta(microseconds=realtime)
            except OverflowError:  # past the year 9999: no timestamp, like an impossible date
                when = None
        host = entry.get("_HOSTNAME")
        mono = _microseconds(entry.get("_SOURCE_MONOTONIC_TIMESTAMP"))
        uptime = None if mono is None else mono / 1_000_000
        return Unwrapped(when, host if isinstance(host, str) else None, uptime, message)


_DMESG_CALLER = re.compile(r"\[ *[CT]\d+\] ?")
_UPTIME = re.compile(r" *\d+\.\d+")
_MISSING: Any = object()
_FACILITY_NAME = re.compile(_FACILITY)
_MONOTONIC_HOST = re.compile(rf"(?P<host>[^\s\[]\S*) (?:{_FACILITY} )?kernel: ?")


#: journald's timestamps are unsigned 64-bit microseconds: at most 20 decimal digits.
_MAX_MICROSECONDS = (1 << 64) - 1


def _microseconds(value: object) -> int | None:
    """A journal timestamp field (a string or a number of microseconds); None if not one.

    Values beyond journald's unsigned 64-bit range are refused (also keeps ``int()`` from
    reading thousands of digits).
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if 0 <= value <= _MAX_MICROSECONDS else None
    if not isinstance(value, str) or not (value.isascii() and value.isdigit()) or len(value) > 20:
        return None
    number = int(value)
    return number if number <= _MAX_MICROSECONDS else None


def _journal_message(value: object) -> str:
    """Return journald's MESSAGE: a string, or a list of byte values when not valid UTF-8."""
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(b, int) and 0 <= b < 256 for b in value):
        return bytes(value).decode("utf-8", "replace")
    return ""  # null (over 4 KiB without --all) or something unexpected


_SHARED: Unwrapper | None = None


def unwrap(line: str) -> Unwrapped:
    """Unwrap one line with a shared :class:`Unwrapper` whose reference time is "now"."""
    global _SHARED
    if _SHARED is None:
        _SHARED = Unwrapper()
    return _SHARED.unwrap(line)
