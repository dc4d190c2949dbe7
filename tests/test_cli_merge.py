"""``nfkit merge``: per-host JSON summaries merged == the summary of all the lines together."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fleetdata import host_lines

from nfkit.cli import main
from nfkit.logs.aggregate import Summary

SEGMENT_FLAGS = ("--segment", "192.168.1.0/24", "--gateway-mac", "52:54:00:00:00:01")


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def summarize_json(capsys: pytest.CaptureFixture[str], log: Path, out: Path) -> Path:
    code, _, err = run(
        capsys, "summarize", str(log), *SEGMENT_FLAGS, "--format", "json", "-o", str(out)
    )
    assert code == 0, err
    return out


@pytest.fixture
def hosts(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[list[Path], Path]:
    """Three hosts' JSON summaries, and the log of all their lines concatenated."""
    summaries = []
    everything = []
    for seed, host in enumerate(("web1", "web2", "db1")):
        lines = host_lines(host, 1500, seed=seed)
        lines.append(f"Nov 20 00:00:00 {host} cron[1]: not a packet")
        everything += lines
        log = tmp_path / f"{host}.log"
        log.write_text("\n".join(lines) + "\n")
        summaries.append(summarize_json(capsys, log, tmp_path / f"{host}.json"))
    whole = tmp_path / "all.log"
    whole.write_text("\n".join(everything) + "\n")
    return summaries, whole


def test_merge_equals_summary_of_the_concatenation(
    hosts: tuple[list[Path], Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    summaries, whole = hosts
    code, out, err = run(capsys, "merge", "--format", "json", *map(str, summaries))
    assert code == 0, err
    merged = json.loads(out)
    expected = json.loads(summarize_json(capsys, whole, tmp_path / "all.json").read_text())
    assert Summary.from_dict(merged) == Summary.from_dict(expected)
    assert {k: v for k, v in merged.items() if k != "fleet"} == expected
    assert merged["lines"] == 4503 and merged["unparsed"] == 3
    assert [h["host"] for h in merged["fleet"]["hosts"]] == ["db1", "web1", "web2"]
    assert {h["segment"] for h in merged["fleet"]["hosts"]} == {"192.168.1.0/24"}


def test_merge_text_and_html_to_a_file(
    hosts: tuple[list[Path], Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    summaries, _ = hosts
    code, out, _ = run(capsys, "merge", *map(str, summaries))
    assert code == 0
    assert out.startswith("nfkit fleet summary, 3 hosts\nFleet: 3 hosts in 1 segments")
    assert "ALL HOSTS MERGED" in out and "4500 packets logged" in out
    target = tmp_path / "fleet.html"
    code, out, _ = run(capsys, "merge", "--format", "html", "-o", str(target), *map(str, summaries))
    assert code == 0 and out == ""
    page = target.read_text()
    assert page.startswith("<!DOCTYPE html>") and "<h2>Hosts</h2>" in page


def test_merge_with_a_fleet_file_reports_unlisted_hosts(
    hosts: tuple[list[Path], Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    summaries, _ = hosts
    fleet = tmp_path / "fleet.toml"
    fleet.write_text(
        '[segments.lan]\ngateway_macs = ["52:54:00:00:00:01"]\n[hosts]\nweb1 = "lan"\n'
    )
    code, out, err = run(
        capsys, "merge", "--fleet", str(fleet), "--format", "json", *map(str, summaries)
    )
    assert code == 0, err
    data = json.loads(out)["fleet"]
    assert set(data["unmapped_hosts"]) == {"web2", "db1"}
    assert {h["host"]: h["segment"] for h in data["hosts"]} == {
        "db1": None,
        "web1": "lan",
        "web2": None,
    }


def test_bad_json_is_file_error_exit_2(
    hosts: tuple[list[Path], Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    summaries, _ = hosts
    bad = tmp_path / "bad.json"
    bad.write_text('{"lines": 3,')
    code, out, err = run(capsys, "merge", str(summaries[0]), str(bad))
    assert code == 2 and out == ""
    assert err.startswith(f"{bad}: error: invalid JSON at line 1")
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("[1, 2]", "not an nfkit summary (expected a JSON object)"),
        ('{"lines": 1}', "not an nfkit summary: "),
        ("\udcff", "cannot read"),
    ],
)
def test_not_a_summary(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str, message: str
) -> None:
    path = tmp_path / "x.json"
    path.write_bytes(content.encode("utf-8", "surrogateescape"))
    code, _, err = run(capsys, "merge", str(path))
    assert code == 2
    assert err.startswith(f"{path}: error: {message}")


def test_missing_file_and_twice_named_file(
    hosts: tuple[list[Path], Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    summaries, _ = hosts
    code, _, err = run(capsys, "merge", str(tmp_path / "none.json"))
    assert code == 2 and err.startswith(f"{tmp_path / 'none.json'}: error: cannot read")
    code, _, err = run(capsys, "merge", str(summaries[0]), str(summaries[0]))
    assert code == 2 and "named twice" in err


def test_different_detection_settings_are_refused(
    hosts: tuple[list[Path], Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    summaries, _ = hosts
    data = json.loads(summaries[1].read_text())
    data["config"]["slot_seconds"] = 60
    other = tmp_path / "other.json"
    other.write_text(json.dumps(data))
    code, _, err = run(capsys, "merge", str(summaries[0]), str(other))
    assert code == 2 and err.startswith(f"{other}: error: made with other detection settings")


def test_bad_fleet_file(
    hosts: tuple[list[Path], Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    summaries, _ = hosts
    fleet = tmp_path / "fleet.toml"
    fleet.write_text("[hosts\n")
    code, _, err = run(capsys, "merge", "--fleet", str(fleet), str(summaries[0]))
    assert code == 2 and err.startswith(f"{fleet}:1: error: invalid TOML")


def test_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["merge", "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "SUMMARY.json" in out and "--fleet" in out and "exit codes" in out
