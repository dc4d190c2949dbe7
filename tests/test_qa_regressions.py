"""Regression tests for the QA findings QA-3..QA-6 and QA-11..QA-20 (tests/QA-FINDINGS.md).

Each test states the behaviour the house standard asks for (clean ``error:`` line, exit 2, a
documented ``NfkitError``); all of them failed before the fixes of 2026-11-25.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hostile import (
    SAMPLE,
    SEGMENT,
    assert_clean_error,
    hostile_dir,
    in_hostile,
    run_cli,
)

import nfkit

__all__ = ["hostile_dir", "in_hostile"]  # fixtures, re-exported for pytest

pytestmark = pytest.mark.usefixtures("in_hostile")


@pytest.fixture
def history(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> Path:
    """A history database with one run in it."""
    db = tmp_path / "history.sqlite3"
    argv = ["summarize", str(SAMPLE), "--config", str(SEGMENT), "--db", str(db)]
    assert run_cli(capsys, argv).code == 0
    return db


# QA-3: cli/merge.py read_summary
def test_merge_deeply_nested_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert_clean_error(run_cli(capsys, ["merge", "deep.json"]), 2, r"^deep.json: error: ")


# QA-4: cli/parse.py, QA-5: cli/compile.py — standard input closed (``<&-``)
@pytest.mark.parametrize("argv", [["parse", "-"], ["compile", "-"]], ids=["parse", "compile"])
def test_closed_stdin(capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    outcome = run_cli(capsys, argv, stdin=None)
    assert_clean_error(outcome, 2, rf"^nfkit {argv[0]}: error: .*standard input")


# QA-6: cli/compile.py reads stdin as text with the locale's strict decoding
def test_compile_stdin_invalid_utf8(capsys: pytest.CaptureFixture[str]) -> None:
    outcome = run_cli(capsys, ["compile", "-"], stdin=b"\xff\xfe\n")
    assert_clean_error(outcome, 2, r"^(<stdin>|nfkit compile): .*error: ")


# QA-11: dsl/values.py: a rate nft cannot hold compiles (nft -c then says "syntax error")
def test_compile_rate_out_of_range(capsys: pytest.CaptureFixture[str]) -> None:
    outcome = run_cli(capsys, ["compile", "huge-rate.nfk"])
    assert_clean_error(outcome, 2, r"^huge-rate.nfk:2:\d+: error: .*rate")


# QA-12: cli/compile.py: a directory is "no such policy file"
def test_compile_directory_message(capsys: pytest.CaptureFixture[str]) -> None:
    outcome = run_cli(capsys, ["compile", "adir"])
    assert_clean_error(outcome, 2, r"^nfkit compile: error: .*adir.*directory")


# QA-13: cli/compile.py / render.py: --templates DIR that does not exist is silently ignored
def test_compile_templates_dir_missing(capsys: pytest.CaptureFixture[str]) -> None:
    outcome = run_cli(capsys, ["compile", "crlf.nfk", "--templates", "nonexist"])
    assert_clean_error(outcome, 2, r"^nfkit compile: error: .*nonexist")


# QA-14: cli/parse.py prints control characters from log lines raw
def test_parse_escapes_control_characters(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    log = tmp_path / "esc.log"
    log.write_text(
        "Nov 25 04:17:23 srv kernel: [ 1.0] \x1b]0;pwned\x07\x1b[31mRED IN=eth0 OUT= "
        "SRC=198.51.100.7 DST=192.0.2.10 LEN=60 TTL=52 ID=1 PROTO=TCP SPT=1 DPT=23 SYN URGP=0\n"
    )
    outcome = run_cli(capsys, ["parse", str(log)])
    assert outcome.code == 0 and "RED" in outcome.out
    assert "\x1b" not in outcome.out and "\x07" not in outcome.out


# QA-15: logs/wrappers.py _journal_json: OverflowError / RecursionError out of parse_line
@pytest.mark.parametrize(
    "line",
    [
        '{"__REALTIME_TIMESTAMP": "99999999999999999999", "MESSAGE": "IN=eth0 OUT= '
        'SRC=1.2.3.4 DST=5.6.7.8 LEN=60 TTL=1 PROTO=TCP SPT=1 DPT=2 SYN"}',
        '{"__REALTIME_TIMESTAMP": "253402300800000000", "MESSAGE": "IN=eth0 OUT= '
        'SRC=1.2.3.4 DST=5.6.7.8 LEN=60 TTL=1 PROTO=TCP SPT=1 DPT=2 SYN"}',
        '{"MESSAGE": ' * 10_000,
    ],
    ids=["huge-realtime", "year-10000", "deep-json"],
)
def test_parse_line_journal_edge(line: str) -> None:
    record = nfkit.parse_line(line)
    assert record is None or record.timestamp is None


def test_parse_cli_journal_edge(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    log = tmp_path / "journal.json"
    log.write_text('{"__REALTIME_TIMESTAMP": "99999999999999999999", "MESSAGE": "x"}\n')
    assert_clean_error(run_cli(capsys, ["parse", str(log)]), 0, r"1 of 1 lines gave no record")


# QA-16: logs/fastpath.py summarize_paths: standard input closed (``<&-``)
def test_summarize_closed_stdin(capsys: pytest.CaptureFixture[str]) -> None:
    outcome = run_cli(capsys, ["summarize", "--no-discover", "-"], stdin=None)
    assert_clean_error(outcome, 2, r"^nfkit summarize: error: .*standard input")


# QA-19: fleet (dask.py / cli): --partition-mb <= 0 accepted; a bad scheduler address leaves
# a Dask Client whose __del__ prints a traceback after the error (and waits 20 s)
def test_partition_mb_must_be_positive(capsys: pytest.CaptureFixture[str]) -> None:
    outcome = run_cli(capsys, ["summarize", "--no-discover", "--partition-mb", "0", "plain.log"])
    assert_clean_error(outcome, 2, r"--partition-mb")


def test_dask_bad_address_fails_fast_and_clean() -> None:
    import subprocess
    import sys

    pytest.importorskip("distributed")
    done = subprocess.run(
        [sys.executable, "-m", "nfkit", "summarize", "--no-discover", "--dask", "nonsense://x",
         str(SAMPLE)], capture_output=True, text=True, timeout=30, check=False,
    )
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr


# QA-20: logs/history.py / fleet_report.py: tampered history rows
@pytest.mark.parametrize(
    "update",
    ["summary = '" + "[" * 100_000 + "'", "finished = 1e400"],
    ids=["deep-summary-json", "infinite-finished"],
)
def test_report_tampered_history_row(
    capsys: pytest.CaptureFixture[str], history: Path, update: str
) -> None:
    import sqlite3

    with sqlite3.connect(history) as connection:
        connection.execute(f"UPDATE runs SET {update}")
    outcome = run_cli(capsys, ["report", "--db", str(history)])
    assert "Traceback" not in outcome.err and outcome.code in (0, 2), outcome.err[-2000:]
    if outcome.code == 2:
        assert "corrupt history row" in outcome.err


# QA-16 (library side): summarize_paths itself, not only the CLI in front of it
def test_summarize_paths_closed_stdin(monkeypatch: pytest.MonkeyPatch) -> None:
    from nfkit.errors import LogReadError
    from nfkit.logs.parallel import summarize_paths

    monkeypatch.setattr("sys.stdin", None)
    with pytest.raises(LogReadError, match="standard input is closed"):
        summarize_paths(["-"])


def test_summarize_paths_directory_message(tmp_path: Path) -> None:
    from nfkit.errors import LogReadError
    from nfkit.logs.parallel import summarize_paths

    with pytest.raises(LogReadError, match=r"cannot read log: Is a directory$"):
        summarize_paths([str(tmp_path)], jobs=1)
