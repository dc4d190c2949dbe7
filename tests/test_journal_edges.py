"""``journalctl -o json`` lines at the edges (QA-15): huge timestamps, JSON nested too deeply.

A journal entry whose ``__REALTIME_TIMESTAMP`` is not a 64-bit count of microseconds or lies
past the year 9999 still gives its packet, without a timestamp (as an impossible syslog date
does); JSON too deep to read is a line that gives no record. Neither raises.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hostile import assert_clean_error, run_cli

import nfkit
from nfkit.logs.wrappers import Unwrapper

MESSAGE = "IN=eth0 OUT= SRC=1.2.3.4 DST=5.6.7.8 LEN=60 TTL=1 PROTO=TCP SPT=1 DPT=2 SYN"


def entry(**fields: object) -> str:
    """One ``journalctl -o json`` line carrying MESSAGE and ``fields``."""
    return json.dumps({"MESSAGE": MESSAGE, "_HOSTNAME": "web1", **fields})


TIMESTAMPS = {
    "huge-realtime": "99999999999999999999",  # 20 digits, over 2**64
    "year-10000": "253402300800000000",
    "u64-max": str(2**64 - 1),
    "thousands-of-digits": "9" * 5000,  # int() would refuse more than 4300 digits
    "huge-number": 10**30,
    "negative": -1,
    "float": 1.7e15,
    "bool": True,
    "unicode-digits": "١٢٣",  # str.isdigit() is true for these
    "superscript": "²",
}


@pytest.mark.parametrize("value", TIMESTAMPS.values(), ids=TIMESTAMPS.keys())
def test_bad_realtime_keeps_the_packet_without_a_time(value: object) -> None:
    record = nfkit.parse_line(entry(__REALTIME_TIMESTAMP=value))
    assert record is not None and record.timestamp is None
    assert str(record.src) == "1.2.3.4" and record.host == "web1"


#: Not 64-bit counts of microseconds (a year-10000 or 2**64-1 uptime is a number, if silly).
NOT_U64 = {k: v for k, v in TIMESTAMPS.items() if k not in {"year-10000", "u64-max"}}


@pytest.mark.parametrize("value", NOT_U64.values(), ids=NOT_U64.keys())
def test_bad_monotonic_timestamp_is_left_out(value: object) -> None:
    when, host, uptime, message = Unwrapper().unwrap(entry(_SOURCE_MONOTONIC_TIMESTAMP=value))
    assert uptime is None and message == MESSAGE and host == "web1" and when is None


def test_largest_monotonic_timestamp_is_read() -> None:
    unwrapped = Unwrapper().unwrap(entry(_SOURCE_MONOTONIC_TIMESTAMP=str(2**64 - 1)))
    assert unwrapped.uptime == (2**64 - 1) / 1_000_000


def test_good_timestamps_still_read() -> None:
    unwrapped = Unwrapper().unwrap(
        entry(__REALTIME_TIMESTAMP="1764044243250000", _SOURCE_MONOTONIC_TIMESTAMP=686000667)
    )
    assert unwrapped.timestamp == datetime(2025, 11, 25, 4, 17, 23, 250000, tzinfo=UTC)
    assert unwrapped.uptime == 686.000667
    last = Unwrapper().unwrap(entry(__REALTIME_TIMESTAMP="253402300799999999"))
    assert last.timestamp == datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)


@pytest.mark.parametrize("depth", [10_000, 100_000])
@pytest.mark.parametrize("opener", ['{"MESSAGE": ', "["])
def test_deep_json_gives_no_record(depth: int, opener: str) -> None:
    assert nfkit.parse_line(opener * depth) is None
    # also when it ends in a packet log: it is not a journal entry that can be read
    assert Unwrapper().unwrap('{"MESSAGE": ' * depth).timestamp is None


def test_deep_json_in_a_stream(tmp_path: Path) -> None:
    path = tmp_path / "journal.json"
    path.write_text(
        entry(__REALTIME_TIMESTAMP="1764044243250000") + "\n"
        + '{"MESSAGE": ' * 10_000 + "\n"
        + entry(__REALTIME_TIMESTAMP="9" * 20) + "\n"
    )  # fmt: skip
    records = list(nfkit.iter_records(path))
    assert len(records) == 2 and records[1].timestamp is None
    summary = nfkit.summarize(path)
    assert summary.lines == 3 and summary.records == 2 and summary.unparsed == 1


def test_parse_cli_journal_edge(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    log = tmp_path / "journal.json"
    log.write_text('{"__REALTIME_TIMESTAMP": "99999999999999999999", "MESSAGE": "x"}\n')
    assert_clean_error(run_cli(capsys, ["parse", str(log)]), 0, r"1 of 1 lines gave no record")


def test_parse_cli_deep_json(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    log = tmp_path / "deep.json"
    log.write_text('{"MESSAGE": ' * 10_000 + "\n" + entry(__REALTIME_TIMESTAMP="9" * 20) + "\n")
    outcome = run_cli(capsys, ["parse", str(log)])
    assert_clean_error(outcome, 0, r"1 of 2 lines gave no record")
    assert "1.2.3.4" in outcome.out
