"""``nfkit summarize`` and ``nfkit report`` end to end (in-process), on the bundled sample."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from nfkit.cli import main
from nfkit.cli.summarize import parse_since
from nfkit.errors import ConfigError

REPO = Path(__file__).resolve().parent.parent
SAMPLE = REPO / "examples" / "kern.log"
SEGMENT = REPO / "examples" / "segment.toml"


def sample_records() -> int:
    """Packet records in the sample (it may be captured again with different counts)."""
    from nfkit.logs.parser import parse_line

    return sum(parse_line(line) is not None for line in SAMPLE.read_text().splitlines())


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_demo_sample_text(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "summarize", str(SAMPLE), "--config", str(SEGMENT))
    assert code == 0, err
    assert "!! CRITICAL [pmtud_blackhole]" in out
    assert "[be_liberal]" in out and "nf_conntrack_tcp_be_liberal=1" in out
    assert "192.0.2.20" in out and "52:54:00:00:00:20" in out
    peers = out[out.index("PEERS ON THE LOCAL SEGMENT") :]
    assert "\n  192.0.2.20 " in peers


def test_demo_sample_json_contract(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        capsys, "summarize", str(SAMPLE), "--config", str(SEGMENT), "--format", "json"
    )
    assert code == 0
    data = json.loads(out)
    assert data["lines"] == data["records"] + data["unparsed"] + data["skipped"]
    assert set(data["by_origin"]) >= {"peer", "upstream", "local"}
    for source in data["sources"]:
        assert {"address", "origin", "mac", "packets", "first_seen", "last_seen", "ports"} <= set(
            source
        )
    peer = next(s for s in data["sources"] if s["address"] == "192.0.2.20")
    assert peer["origin"] == "peer" and peer["mac"] == "52:54:00:00:00:20"
    assert data["sources"][0]["origin"] == "peer"
    # a peer claiming an address that is not on the segment is still a peer
    spoofed = next(s for s in data["sources"] if s["address"] == "198.18.0.99")
    assert spoofed["origin"] == "peer"
    codes = {r["code"] for r in data["recommendations"]}
    assert {"pmtud_blackhole", "be_liberal"} <= codes
    assert all(r["message"] for r in data["recommendations"])
    kinds = {(s["source"], s["kind"]) for s in data["scans"]}
    assert ("192.0.2.20", "vertical") in kinds and ("198.51.100.7", "vertical") in kinds


def test_flags_instead_of_config(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        capsys,
        "summarize",
        str(SAMPLE),
        "--format",
        "json",
        "--segment",
        "192.0.2.0/24",
        "--gateway-mac",
        "52:54:00:00:00:01",
    )
    assert code == 0
    assert json.loads(out)["by_origin"]["peer"] > 0


def test_incremental_quiet_and_html(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    log = tmp_path / "kern.log"
    log.write_text(SAMPLE.read_text())
    state = tmp_path / "state.json"
    args = ["summarize", str(log), "--config", str(SEGMENT), "--state", str(state)]
    code, out, _ = run(capsys, *args, "--quiet-if-empty")
    assert code == 0 and "pmtud_blackhole" in out
    code, out, err = run(capsys, *args, "--quiet-if-empty")
    assert (code, out, err) == (0, "", "")
    code, out, _ = run(capsys, *args)
    assert code == 0 and out.startswith("nfkit firewall summary\n0 packets")
    with log.open("a") as handle:
        handle.write(SAMPLE.read_text().splitlines()[-1] + "\n")
    html = tmp_path / "r.html"
    code, out, _ = run(capsys, *args, "--format", "html", "-o", str(html), "--quiet-if-empty")
    assert code == 0 and out == ""
    assert "<svg" in html.read_text()


def test_history_then_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "history.sqlite3"
    # the same file read twice by one host is one run (the row is replaced); another host's is not
    for host in ("web1", "web1", "web2"):
        code, _, err = run(
            capsys, "summarize", str(SAMPLE), "--config", str(SEGMENT), "--history", str(db),
            "--host", host,
        )  # fmt: skip
        assert code == 0, err
    code, out, _ = run(capsys, "report", "--days", "7", "--history", str(db))
    assert code == 0
    assert "LAST 7 DAYS (2 runs)" in out
    code, out, _ = run(capsys, "report", "--history", str(db), "--format", "json")
    data = json.loads(out)
    assert data["runs"] == 2 and data["records"] == 2 * sample_records()
    code, _, err = run(capsys, "report", "--history", str(tmp_path / "none.db"))
    assert code == 2 and "no history database" in err


@pytest.mark.parametrize(
    ("content", "argv", "message"),
    [
        ("[segment\n", ["--config", "{toml}"], "{toml}:1: error: invalid TOML"),
        ("", ["--segment", "192.0.2.0/40"], "nfkit summarize: error: invalid network"),
        ("", ["--gateway-mac", "zz"], "nfkit summarize: error: invalid MAC"),
        ("", ["--since", "yesterday"], "nfkit summarize: error: --since"),
        ("", ["-", "--state", "{state}"], "standard input"),
        ("garbage{", ["--state", "{state}"], "corrupt state file"),
    ],
)
def test_errors_exit_2_without_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str, argv: list[str], message: str
) -> None:
    toml = tmp_path / "bad.toml"
    toml.write_text(content)
    state = tmp_path / "state.json"
    state.write_text(content)
    argv = [a.format(toml=toml, state=state) for a in argv]
    files = [] if "-" in argv else [str(SAMPLE)]
    code, out, err = run(capsys, "summarize", *files, "--no-discover", *argv)
    assert code == 2
    assert message.format(toml=toml) in err
    assert "Traceback" not in err and out == ""


def test_unreadable_log(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "summarize", str(tmp_path / "absent.log"), "--no-discover")
    assert code == 2 and "cannot read log" in err
    broken = tmp_path / "broken.gz"
    broken.write_bytes(b"\x1f\x8b\x08\x00garbage")
    code, _, err = run(capsys, "summarize", str(broken), "--no-discover")
    assert code == 2 and "broken.gz: cannot read log" in err


def test_since() -> None:
    now = datetime(2026, 11, 24, 12, 0).astimezone()
    assert parse_since("24h", now) == now - timedelta(hours=24)
    assert parse_since("2w", now) == now - timedelta(weeks=2)
    assert parse_since("2026-11-24", now) == datetime(2026, 11, 24).astimezone()
    assert parse_since(None) is None
    with pytest.raises(ConfigError):
        parse_since("soon")


def test_since_skips_old_packets(capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = run(
        capsys,
        "summarize",
        str(SAMPLE),
        "--config",
        str(SEGMENT),
        "--format",
        "json",
        "--since",
        "2999-01-01",
    )
    data = json.loads(out)
    assert data["records"] == 0 and data["skipped"] == sample_records()


def test_help_documents_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["summarize", "--help"])
    out = capsys.readouterr().out
    assert "exit codes: 0 success" in out and "2 error" in out
    with pytest.raises(SystemExit):
        main(["report", "--help"])
    assert "exit codes" in capsys.readouterr().out


def test_max_sources_option(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "summarize", str(SAMPLE), "--no-discover", "--max-sources", "3")
    assert code == 0, err
    assert "APPROXIMATE: more sources than max_sources (3)" in out
    code, out, _ = run(
        capsys, "summarize", str(SAMPLE), "--no-discover", "--max-sources", "3", "--format", "json"
    )
    data = json.loads(out)
    assert data["approximate"]["max_sources"] == 3 and data["approximate"]["dropped_sources"] > 0
    assert len(data["sources"]) <= 4  # bounded at one and a half times max_sources
    code, out, _ = run(capsys, "summarize", str(SAMPLE), "--no-discover", "--max-sources", "0")
    assert code == 0 and "APPROXIMATE" not in out
    with pytest.raises(SystemExit) as exc:
        main(["summarize", str(SAMPLE), "--no-discover", "--max-sources", "-1"])
    assert exc.value.code == 2
    assert "--max-sources: must be from 0" in capsys.readouterr().err
