"""Reports: hostile log strings are escaped in HTML; text and JSON carry the findings."""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from nfkit.errors import ConfigError
from nfkit.logs.aggregate import Summary, SummaryConfig, summarize_records
from nfkit.logs.history import History, trend
from nfkit.logs.record import LogRecord
from nfkit.logs.report import chart, render, templates_dir
from nfkit.logs.segment import Segment

GW_MAC = "52:54:00:00:00:01"
PEER_MAC = "52:54:00:00:00:20"
CONFIG = SummaryConfig(segment=Segment.from_values(gateway_macs=[GW_MAC]))
T0 = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)>'


def hostile_records() -> list[LogRecord]:
    """Packets whose prefix and raw line carry markup, including a dropped frag-needed."""
    out = []
    for n in range(6):
        out.append(
            LogRecord(
                raw=f"Nov 24 10:00:0{n} h kernel: {HOSTILE} IN=eth0 & more",
                timestamp=T0 + timedelta(minutes=7 * n),
                prefix=f"DROP {HOSTILE}",
                in_iface="eth0",
                mac_src=PEER_MAC if n % 2 else GW_MAC,
                src=ipaddress.ip_address("192.0.2.20" if n % 2 else "198.51.100.7"),
                dst=ipaddress.ip_address("192.0.2.10"),
                ttl=64 if n % 2 else 63,
                proto="TCP",
                dpt=20 + n,
                tcp_flags=frozenset({"SYN"}),
            )
        )
    out.append(
        LogRecord(
            raw=f"frag needed {HOSTILE} & more",
            timestamp=T0,
            prefix=f"DROP {HOSTILE}",
            in_iface="eth0",
            mac_src=GW_MAC,
            src=ipaddress.ip_address("198.51.100.1"),
            dst=ipaddress.ip_address("192.0.2.10"),
            proto="ICMP",
            icmp_type=3,
            icmp_code=4,
        )
    )
    return out


def test_html_escapes_every_log_string() -> None:
    html = render(summarize_records(hostile_records(), CONFIG), "html")
    assert "<script" not in html
    assert "<img" not in html
    assert "&lt;script&gt;" in html
    assert "onerror=alert(1)&gt;" in html
    assert "&amp; more" in html  # the raw evidence line, escaped
    assert "pmtud_blackhole" in html


def test_html_is_self_contained_with_chart() -> None:
    summary = summarize_records(hostile_records(), CONFIG)
    html = render(summary, "html")
    assert html.startswith("<!DOCTYPE html>")
    assert "<svg" in html and html.count("<rect") >= 4
    assert not re.search(r"<(link|script|img|iframe)\b", html)
    assert not re.search(r"<[^>]*\b(src|href)=", html)
    bars = chart(summary)["bars"]
    assert sum(seg["count"] for bar in bars for seg in bar.segments) == 7


def test_chart_rebins_long_periods() -> None:
    records = [
        LogRecord(
            timestamp=T0 + timedelta(hours=h),
            in_iface="eth0",
            mac_src=GW_MAC,
            src=ipaddress.ip_address("198.51.100.7"),
            proto="TCP",
            dpt=22,
        )
        for h in range(24 * 7)
    ]
    data = chart(summarize_records(records, CONFIG))
    assert 0 < len(data["bars"]) <= 96
    assert sum(seg["count"] for bar in data["bars"] for seg in bar.segments) == 24 * 7


def test_text_lists_findings_first() -> None:
    text = render(summarize_records(hostile_records(), CONFIG), "text")
    lines = text.splitlines()
    assert lines[0] == "nfkit firewall summary"
    assert "!! CRITICAL [pmtud_blackhole]" in text
    assert text.index("pmtud_blackhole") < text.index("PEERS ON THE LOCAL SEGMENT")
    assert "192.0.2.20" in text and PEER_MAC in text
    assert max(len(line) for line in lines) < 200


def test_json_round_trips() -> None:
    summary = summarize_records(hostile_records(), CONFIG)
    data = json.loads(render(summary, "json"))
    assert Summary.from_dict(data) == summary


def test_unknown_format() -> None:
    with pytest.raises(ConfigError, match="unknown format"):
        render(Summary(), "pdf")


def test_templates_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert (templates_dir() / "report" / "summary.html.j2").is_file()
    (tmp_path / "report").mkdir()
    (tmp_path / "report" / "summary.html.j2").write_text("custom {{ data.records }}")
    monkeypatch.setenv("NFKIT_TEMPLATES", str(tmp_path))
    assert templates_dir() == tmp_path
    assert render(summarize_records(hostile_records(), CONFIG), "html") == "custom 7"


def test_history_and_trend(tmp_path: Path) -> None:
    db = tmp_path / "h.db"
    summary = summarize_records(hostile_records(), CONFIG)
    with History(db) as history:
        history.record("a", summary, started=1.0, finished=T0.timestamp())
        history.record("b", summary, started=2.0, finished=T0.timestamp() + 86400)
        history.record("b", summary, started=2.0, finished=T0.timestamp() + 86400)  # replaced
        runs = history.runs(since=T0.timestamp() - 1)
    assert [r.run_key for r in runs] == ["a", "b"]
    result = trend(runs, days=7)
    assert result.per_day["2026-11-24"]["records"] == 7
    assert result.per_day["2026-11-25"]["peer"] == 3
    assert result.merged is not None and result.merged.records == 14
    text = render(result.merged, "text", trend=result)
    assert "LAST 7 DAYS (2 runs)" in text
    html = render(result.merged, "html", trend=result)
    assert "Last 7 days" in html and "<script" not in html


def test_history_errors(tmp_path: Path) -> None:
    from nfkit.errors import StateError

    bad = tmp_path / "bad.db"
    bad.write_text("this is not sqlite" * 100)
    with pytest.raises(StateError, match="cannot open history database"):
        History(bad)


def test_stacked_segments_fill_the_bar_bottom_up() -> None:
    from nfkit.logs.report import ORIGIN_COLOURS, stacked_segments

    bar = stacked_segments({"peer": 1, "upstream": 3, "local": 0}, 4, 100)
    assert [(s["origin"], s["count"], s["y"], s["height"]) for s in bar] == [
        ("upstream", 3, 25.0, 75.0),
        ("peer", 1, 0.0, 25.0),
    ]
    assert bar[1]["colour"] == ORIGIN_COLOURS["peer"]
    assert stacked_segments({"peer": 2}, 0, 100) == []  # nothing logged that day


# -- JSON in pieces -----------------------------------------------------------------------------
def _sample_summary() -> Summary:
    root = Path(__file__).resolve().parent.parent
    summary = Summary(SummaryConfig())
    summary.add_lines((root / "examples" / "kern.log").read_text().splitlines())
    return summary


@pytest.mark.parametrize("with_trend", [False, True])
def test_json_chunks_are_the_json_of_to_dict(with_trend: bool) -> None:
    """Written one source at a time, the JSON is byte for byte ``json.dumps(to_dict())``."""
    first = {"days": 7, "runs": [1, 2.5], "per_day": {"2026-11-24": None}} if with_trend else None
    for summary in (_sample_summary(), Summary(SummaryConfig())):
        expected = json.dumps({**(first or {}), **summary.to_dict()}, separators=(",", ":"))
        chunks = list(summary.json_chunks(first))
        assert "".join(chunks) == expected
        assert json.loads("".join(chunks))["lines"] == summary.lines
    summary = _sample_summary()
    assert len(list(summary.json_chunks())) > len(summary.sources)  # pieces, not one text
    assert render(summary, "json") == json.dumps(summary.to_dict(), separators=(",", ":")) + "\n"


def test_atomic_write_of_pieces_that_fail_leaves_the_old_file(tmp_path: Path) -> None:
    from nfkit.logs.state import atomic_write

    target = tmp_path / "report.json"
    target.write_bytes(b"old")

    def pieces() -> Iterator[bytes]:
        yield b"new, half"
        raise ConfigError("no more")

    with pytest.raises(ConfigError):
        atomic_write(target, pieces())
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.json"]
    atomic_write(target, iter([b"a", b"b"]))
    assert target.read_bytes() == b"ab"


def test_text_lists_the_busiest_others_and_counts_the_rest() -> None:
    """Peers in full; of the other sources the 15 busiest (ties by origin, then address), and
    how many more there were."""
    line = (
        "Nov 25 04:17:{sec:02d} srv kernel: nfkit:input:drop IN=eth0 OUT= "
        "MAC=52:54:00:00:00:10:52:54:00:00:00:{mac}:08:00 SRC={src} DST=192.0.2.10 LEN=60 "
        "TOS=0x00 PREC=0x00 TTL=52 ID=1 DF PROTO=TCP SPT=40000 DPT=22 WINDOW=64240 RES=0x00 "
        "SYN URGP=0 "
    )
    config = SummaryConfig(
        segment=Segment.from_values(networks=["192.0.2.0/24"], gateway_macs=["52:54:00:00:00:01"])
    )
    summary = Summary(config)
    lines = []
    for number in range(20):  # upstream sources, number + 1 packets each
        lines += [line.format(sec=number, mac="01", src=f"198.51.100.{number}")] * (number + 1)
    lines += [line.format(sec=1, mac="aa", src="192.0.2.77")] * 2  # a peer
    summary.add_lines(lines)
    text = render(summary, "text")
    assert "... and 5 more sources" in text
    assert "192.0.2.77" in text.split("PEERS ON THE LOCAL SEGMENT")[1]
    shown = [f"198.51.100.{n} " for n in range(5, 20)]
    assert all(address in text for address in shown)
    assert not any(f"198.51.100.{n} " in text for n in range(5))
