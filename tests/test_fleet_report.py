"""``nfkit report`` over a history: per segment, per host, trends; hostile strings escaped."""

from __future__ import annotations

import ipaddress
import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from nfkit.cli import main
from nfkit.logs.aggregate import Summary, SummaryConfig, summarize_records
from nfkit.logs.fleet_report import render_report, sparkline
from nfkit.logs.fleet_trends import (
    NO_SEGMENT,
    Report,
    build,
    load_host_segments,
    period_dates,
)
from nfkit.logs.history import History, Run
from nfkit.logs.record import LogRecord
from nfkit.logs.segment import Segment

GW_MAC = "52:54:00:00:00:01"
PEER_MAC = "52:54:00:00:00:66"
HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)>'
NOW = datetime(2026, 11, 25, 6, 0, tzinfo=UTC)


def records(day: int, upstream: int, peer: bool, pmtud: bool, scanner: str) -> list[LogRecord]:
    """``upstream`` packets from ``scanner``, a peer's packet, a dropped frag-needed."""
    when = NOW - timedelta(days=day, hours=1)
    out = [
        LogRecord(
            raw=f"Nov 24 05:00:00 h kernel: DROP {HOSTILE} IN=eth0",
            timestamp=when + timedelta(seconds=n),
            prefix=f"DROP {HOSTILE}",
            in_iface="eth0",
            mac_src=GW_MAC,
            src=ipaddress.ip_address(scanner),
            dst=ipaddress.ip_address("192.0.2.10"),
            ttl=50,
            proto="TCP",
            dpt=22,
        )
        for n in range(upstream)
    ]
    if peer:
        out.append(
            LogRecord(
                timestamp=when,
                prefix="DROP",
                in_iface="eth0",
                mac_src=PEER_MAC,
                src=ipaddress.ip_address("192.0.2.66"),
                dst=ipaddress.ip_address("192.0.2.10"),
                ttl=64,
                proto="TCP",
                dpt=445,
            )
        )
    if pmtud:
        out.append(
            LogRecord(
                raw=f"frag needed {HOSTILE}",
                timestamp=when,
                prefix="DROP",
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


def fill(history: History) -> None:
    """Segment A: web1 (peer-attacked, PMTUD trouble) and web2 (peer-attacked); segment B: db1
    (quiet until a burst today) and an evil host name; 198.51.100.7 scans both segments."""
    config_a = SummaryConfig(segment=Segment.from_values(["192.0.2.0/24"], gateway_macs=[GW_MAC]))
    config_b = SummaryConfig(segment=Segment.from_values(["203.0.113.0/24"], gateway_macs=[GW_MAC]))
    for day in range(6, -1, -1):
        finished = (NOW - timedelta(days=day)).timestamp()
        plan = [
            ("web1", config_a, 2, True, day == 0, "198.51.100.7"),
            ("web2", config_a, 1, day < 2, False, "198.51.100.8"),
            ("db1", config_b, 10 if day == 0 else 1, False, False, "198.51.100.7"),
            (HOSTILE, config_b, 1, False, False, "198.51.100.9"),
        ]
        for host, config, upstream, peer, pmtud, scanner in plan:
            summary = summarize_records(records(day, upstream, peer, pmtud, scanner), config)
            history.record(f"run-{day}", summary, finished - 60, finished, host=host)
    # a run from before the period is not reported
    old = (NOW - timedelta(days=9)).timestamp()
    history.record("old", summarize_records(records(9, 99, False, False, "198.51.100.7"),
                                            config_a), old, old, host="web1")  # fmt: skip


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "history.sqlite3"
    with History(path) as history:
        fill(history)
    return path


def load(db: Path, fleet: dict[str, str] | None = None) -> Report:
    since = datetime.strptime(period_dates(7, NOW.timestamp())[0], "%Y-%m-%d")
    with History(db) as history:
        runs = history.runs(since=since.replace(tzinfo=UTC).timestamp())
    return build(runs, 7, NOW.timestamp(), fleet)


def test_groups_by_segment_and_host(db: Path) -> None:
    report = load(db)
    assert report.dates[0] == "2026-11-19" and report.dates[-1] == "2026-11-25"
    hosts = {h.name: h for h in report.hosts}
    assert sorted(hosts) == sorted(["web1", "web2", "db1", HOSTILE])
    assert hosts["web1"].segment == "192.0.2.0/24" and hosts["db1"].segment == "203.0.113.0/24"
    assert hosts["web1"].trend.runs == 7  # the 9-day-old run is outside the period
    assert hosts["web1"].series == [3, 3, 3, 3, 3, 3, 4]
    assert hosts["db1"].series == [1] * 6 + [10]
    assert hosts["db1"].change == pytest.approx(9.0)  # 10 against 1 a day before
    assert hosts["web2"].series == [1, 1, 1, 1, 1, 2, 2]
    assert hosts["web2"].change == pytest.approx((2 - 7 / 6) / (7 / 6))
    assert "pmtud_blackhole" in hosts["web1"].findings
    assert "pmtud_blackhole" not in hosts["web2"].findings
    segments = {s.name: s for s in report.segments}
    seg_a = segments["192.0.2.0/24"]
    assert seg_a.hosts == ["web1", "web2"] and seg_a.trend.runs == 14
    assert report.segments[0] is seg_a  # hostile neighbours first
    [peer] = seg_a.peers
    assert peer["address"] == "192.0.2.66" and peer["mac"] == PEER_MAC
    assert peer["hosts"] == ["web1", "web2"] and peer["packets"] == 7 + 2
    assert seg_a.upstream["tcp/22"] == {"drop": 21}
    assert segments["203.0.113.0/24"].peers == []
    [across] = report.across_segments
    assert across["address"] == "198.51.100.7"
    assert across["segments"] == ["192.0.2.0/24", "203.0.113.0/24"]


def test_fleet_file_names_segments_and_lists_missing_hosts(db: Path, tmp_path: Path) -> None:
    fleet = tmp_path / "fleet.toml"
    fleet.write_text(
        '[segments.fra1]\ngateway_macs = ["52:54:00:00:00:01"]\nhosts = ["WEB1", "web2"]\n'
        '[hosts]\ndb1 = "ams2"\n'
    )
    mapping = load_host_segments(fleet)
    assert mapping == {"web1": "fra1", "web2": "fra1", "db1": "ams2"}
    report = load(db, mapping)
    assert sorted(s.name for s in report.segments) == sorted(["fra1", "ams2", "203.0.113.0/24"])
    assert report.unlisted_hosts == [HOSTILE]


def test_unknown_segment_label() -> None:
    run = Run("k", 1.0, NOW.timestamp(), 0, 0, 0, {}, json.dumps(Summary().to_dict()), host="h")
    report = build([run], 3, NOW.timestamp())
    assert [s.name for s in report.segments] == [NO_SEGMENT]
    assert report.hosts[0].series == [0, 0, 0] and report.hosts[0].change == 0.0


def test_html_escapes_and_draws_charts(db: Path) -> None:
    html = render_report(load(db), "html")
    assert "<script" not in html and "<img" not in html
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in html  # the host name, escaped
    assert html.count("<svg") >= 1 + 2 + 4  # per-day chart, 2 segments, 4 hosts
    assert "<h2>Segments</h2>" in html and "<h2>Hosts</h2>" in html
    assert "Sources seen across segments" in html
    assert not re.search(r"<(link|script|img|iframe)\b", html)
    assert not re.search(r"<[^>]*\b(src|href)=", html)


def test_text_and_json(db: Path) -> None:
    report = load(db)
    text = render_report(report, "text")
    assert text.startswith("nfkit fleet report, last 7 days\n")
    assert "hostile neighbour 192.0.2.66 [52:54:00:00:00:66]: 9 packets to 2 hosts" in text
    assert "pmtud_blackhole on 1 hosts: web1" in text
    assert text.index("SEGMENTS") < text.index("HOSTS") < text.index("ALL HOSTS MERGED")
    assert max(len(line) for line in text.splitlines()) < 220
    data = json.loads(render_report(report, "json"))
    assert data["runs"] == 28 and data["records"] == sum(h["packets"] for h in data["hosts"])
    web1 = next(h for h in data["hosts"] if h["name"] == "web1")
    assert web1["per_day"]["2026-11-25"] == 4 and web1["runs"] == 7
    assert data["segments"][0]["name"] == "192.0.2.0/24"
    assert data["sources_across_segments"][0]["address"] == "198.51.100.7"


def test_sparkline() -> None:
    assert sparkline([0, 1, 4, 8]) == ".▁▄█"
    assert sparkline([0, 0]) == ".."


def test_cli(db: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "r.html"
    assert main(["report", "--db", f"sqlite:///{db}", "--format", "html", "-o", str(out)]) == 0
    assert "<h2>Hosts</h2>" in out.read_text()
    assert main(["report", "--history", str(db), "--host", "db1", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [h["name"] for h in data["hosts"]] in ([], ["db1"])  # [] if NOW is long past
    bad = tmp_path / "fleet.toml"
    bad.write_text("[hosts]\nweb1 = 3\n")
    assert main(["report", "--db", str(db), "--fleet", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("nfkit report: error: ") and "Traceback" not in err
    assert main(["report", "--db", str(tmp_path / "missing.db")]) == 2
    assert "no history database" in capsys.readouterr().err
    assert main(["report", "--db", str(db), "--days", "0"]) == 2
