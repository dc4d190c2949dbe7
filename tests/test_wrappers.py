"""Wrappers around the kernel message: syslog, RFC 3339, dmesg, journald, ulogd."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest

from nfkit.logs.wrappers import Unwrapped, Unwrapper, infer_year

MSG = "nfkit:input:drop IN=eth0 OUT= SRC=1.2.3.4 DST=5.6.7.8 LEN=20 "
REF = datetime(2026, 11, 25, 12, 0, 0)


@pytest.fixture
def unwrapper() -> Unwrapper:
    return Unwrapper(reference=REF)


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (  # classic syslog with uptime
            f"Nov 25 04:17:23 fw kernel: [  102.710000] {MSG}",
            Unwrapped(datetime(2026, 11, 25, 4, 17, 23), "fw", 102.71, MSG),
        ),
        (  # single-digit day padded with a space, no uptime (journalctl -k)
            f"Nov  5 04:17:23 fw kernel: {MSG}",
            Unwrapped(datetime(2026, 11, 5, 4, 17, 23), "fw", None, MSG),
        ),
        (  # journalctl -o short-precise
            f"Nov 25 04:17:23.123456 fw kernel: {MSG}",
            Unwrapped(datetime(2026, 11, 25, 4, 17, 23, 123456), "fw", None, MSG),
        ),
        (  # facility and priority before the tag
            f"Nov 25 04:17:23 fw kern.warning kernel: [ 5.5] {MSG}",
            Unwrapped(datetime(2026, 11, 25, 4, 17, 23), "fw", 5.5, MSG),
        ),
        (
            f"Nov 25 04:17:23 fw user.info kernel: {MSG}",
            Unwrapped(datetime(2026, 11, 25, 4, 17, 23), "fw", None, MSG),
        ),
        (  # printk caller id
            f"Nov 25 04:17:23 fw kernel: [17748.070000][    C0] {MSG}",
            Unwrapped(datetime(2026, 11, 25, 4, 17, 23), "fw", 17748.07, MSG),
        ),
        (  # rsyslog RFC 3339
            f"2026-11-24T10:00:05.114797+01:00 fw kernel: {MSG}",
            Unwrapped(
                datetime(2026, 11, 24, 10, 0, 5, 114797, tzinfo=timezone(timedelta(hours=1))),
                "fw",
                None,
                MSG,
            ),
        ),
        (  # journalctl -o short-iso (zone without a colon) and Z
            f"2026-11-24T10:00:05+0000 fw kernel: [ 1.000000] {MSG}",
            Unwrapped(datetime(2026, 11, 24, 10, 0, 5, tzinfo=UTC), "fw", 1.0, MSG),
        ),
        (
            f"2026-11-24T10:00:05Z fw kernel: {MSG}",
            Unwrapped(datetime(2026, 11, 24, 10, 0, 5, tzinfo=UTC), "fw", None, MSG),
        ),
        ("[  686.000667] " + MSG, Unwrapped(None, None, 686.000667, MSG)),  # dmesg
        ("[  686.000667] [  T123] " + MSG, Unwrapped(None, None, 686.000667, MSG)),  # caller
        (  # dmesg -T
            "[Tue Nov 24 10:00:03 2026] " + MSG,
            Unwrapped(datetime(2026, 11, 24, 10, 0, 3), None, None, MSG),
        ),
        (  # journalctl -o short-monotonic
            "[  686.000667] fw kernel: " + MSG,
            Unwrapped(None, "fw", 686.000667, MSG),
        ),
        (  # OpenWrt logread
            "Tue Nov 24 10:00:03 2026 kern.warn kernel: [ 7.250000] " + MSG,
            Unwrapped(datetime(2026, 11, 24, 10, 0, 3), None, 7.25, MSG),
        ),
        (  # ulogd LOGEMU: no tag, the prefix follows the host
            "Nov 25 04:17:23 gw " + MSG,
            Unwrapped(datetime(2026, 11, 25, 4, 17, 23), "gw", None, MSG),
        ),
        (  # syslog protocol priority, then dmesg-style uptime (/dev/kmsg readers)
            "<4>[  686.000667] " + MSG,
            Unwrapped(None, None, 686.000667, MSG),
        ),
        ("IN=eth0 OUT= ", Unwrapped(None, None, None, "IN=eth0 OUT= ")),  # journalctl -o cat
        ("", Unwrapped(None, None, None, "")),
    ],
)
def test_unwrap(unwrapper: Unwrapper, line: str, expected: Unwrapped) -> None:
    assert unwrapper.unwrap(line) == expected
    assert unwrapper.unwrap(line + "\n") == expected  # newline removed, cache hit the same


def test_journal_json(unwrapper: Unwrapper) -> None:
    entry = {
        "__REALTIME_TIMESTAMP": "1764044243123456",
        "_SOURCE_MONOTONIC_TIMESTAMP": "686000667",
        "_HOSTNAME": "fw",
        "_TRANSPORT": "kernel",
        "MESSAGE": MSG,
    }
    got = unwrapper.unwrap(json.dumps(entry))
    assert got == Unwrapped(
        datetime(2025, 11, 25, 4, 17, 23, 123456, tzinfo=UTC), "fw", 686.000667, MSG
    )
    entry["MESSAGE"] = [*MSG.encode(), 0xFF]  # not UTF-8: journald writes byte values
    assert unwrapper.unwrap(json.dumps(entry)).message == MSG + "\ufffd"
    entry["MESSAGE"] = None  # over 4 KiB without --all
    assert unwrapper.unwrap(json.dumps(entry)).message == ""
    assert unwrapper.unwrap("{not json").message == "{not json"
    assert unwrapper.unwrap("[1, 2]").message == "[1, 2]"


def test_bad_dates_give_no_timestamp(unwrapper: Unwrapper) -> None:
    assert unwrapper.unwrap("Feb 30 04:17:23 fw kernel: x") == Unwrapped(None, "fw", None, "x")
    assert unwrapper.unwrap("2026-13-01T00:00:00Z fw kernel: x").timestamp is None
    assert unwrapper.unwrap("[Tue Nov 31 10:00:03 2026] x") == Unwrapped(None, None, None, "x")


@pytest.mark.parametrize(
    ("month", "day", "reference", "year"),
    [
        (11, 25, datetime(2026, 11, 25), 2026),
        (12, 31, datetime(2027, 1, 2), 2026),  # read just after New Year
        (1, 1, datetime(2027, 1, 2), 2027),
        (12, 20, datetime(2026, 11, 25), 2026),  # within the month of slack (clock skew)
        (3, 1, datetime(2026, 1, 10), 2025),  # far in the future: last year
        (2, 29, datetime(2026, 3, 1), 2024),  # no Feb 29 in 2026 or 2025
        (2, 29, datetime(2028, 3, 1), 2028),
    ],
)
def test_infer_year(month: int, day: int, reference: datetime, year: int) -> None:
    assert infer_year(month, day, reference) == year


def test_year_inference_uses_the_reference(unwrapper: Unwrapper) -> None:
    soon = unwrapper.unwrap("Dec 20 23:59:59 fw kernel: x").timestamp
    assert soon == datetime(2026, 12, 20, 23, 59, 59)  # within a month of 25 Nov 2026
    later = unwrapper.unwrap("Dec 31 23:59:59 fw kernel: x").timestamp
    assert later == datetime(2025, 12, 31, 23, 59, 59)  # over a month ahead: last year
    other = Unwrapper(reference=datetime(2027, 1, 1, 0, 5))
    assert other.unwrap("Dec 31 23:59:59 fw kernel: x").timestamp == datetime(
        2026, 12, 31, 23, 59, 59
    )
    assert other.unwrap("Jan  1 00:00:01 fw kernel: x").timestamp == datetime(2027, 1, 1, 0, 0, 1)
    aware = Unwrapper(reference=datetime(2027, 1, 1, tzinfo=UTC))
    assert aware.unwrap("Jan  1 00:00:01 fw kernel: x").timestamp == datetime(2027, 1, 1, 0, 0, 1)
