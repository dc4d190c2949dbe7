"""``nfkit parse``: text and JSON output, stdin, strict mode, errors without tracebacks."""

from __future__ import annotations

import gzip
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from nfkit.cli import main

CORPUS = Path(__file__).resolve().parent / "data" / "kernel-corpus.log"
CORPUS_LINES = CORPUS.read_text().splitlines()
FRAG_NEEDED = next(line for line in CORPUS_LINES if "TYPE=3 CODE=4" in line)
SYN = next(line for line in CORPUS_LINES if "fwd-syn" in line and "SRC=10." in line)


def run(
    argv: list[str], capsys: pytest.CaptureFixture[str], stdin: str | None = None,
    monkeypatch: pytest.MonkeyPatch | None = None,
) -> tuple[int, str, str]:  # fmt: skip
    if stdin is not None:
        assert monkeypatch is not None
        monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_json_output_nests_the_quoted_packet(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = tmp_path / "kern.log"
    log.write_text(FRAG_NEEDED + "\n" + SYN + "\n")
    code, out, err = run(["parse", "--json", str(log)], capsys)
    assert code == 0 and err == ""
    first, second = (json.loads(line) for line in out.splitlines())
    assert first["src"] == "10.77.1.1" and first["proto"] == "ICMP" and first["mtu"] == 1280
    assert first["inner"]["src"] == "10.77.1.2" and first["inner"]["dst"] == "10.77.2.2"
    assert first["inner"]["ip_flags"] == ["DF"] and first["raw"] == FRAG_NEEDED
    assert second["tcp_flags"] == ["SYN"] and second["dpt"] == 7000 and second["inner"] is None
    assert second["mac_src"] == "02:00:00:00:01:02" and second["family"] == 4


def test_text_output_from_stdin_and_gzip(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    gz = tmp_path / "kern.log.1.gz"
    gz.write_bytes(gzip.compress((SYN + "\n").encode()))
    code, out, err = run(["parse", "-", str(gz)], capsys, FRAG_NEEDED + "\n", monkeypatch)
    assert code == 0 and err == ""
    icmp, tcp = out.splitlines()
    assert "corpus0:icmp-err:" in icmp and "ICMP 10.77.1.1 -> 10.77.1.2" in icmp
    assert "type=3/4" in icmp and "mtu=1280" in icmp and "[ICMP 10.77.1.2 -> 10.77.2.2" in icmp
    assert "r0>r1" in tcp and "TCP 10.77.1.2:" in tcp and "-> 10.77.2.2:7000 SYN" in tcp


def test_unparsed_lines_are_counted_on_stderr(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = tmp_path / "kern.log"
    log.write_text(f"{SYN}\nusb 1-1: new device\nIN=x OUT= SRC=1.2.3 \n")
    code, out, err = run(["parse", str(log)], capsys)
    assert code == 0 and len(out.splitlines()) == 1
    assert "2 of 3 lines gave no record (1 not packet logs, 1 unreadable)" in err


def test_strict_reports_file_and_line_and_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = tmp_path / "kern.log"
    log.write_text(f"{SYN}\n{SYN}\nIN=eth0 OUT= SRC=999.0.0.1 DST=1.2.3.4 LEN=1 \n")
    code, _out, err = run(["parse", "--strict", str(log)], capsys)
    assert code == 2
    assert err.startswith(f"{log}:3: error: unreadable packet log line")
    assert "Traceback" not in err


def test_missing_file_and_corrupt_gzip_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _out, err = run(["parse", str(tmp_path / "absent.log")], capsys)
    assert code == 2 and "cannot read" in err and "absent.log" in err
    bad = tmp_path / "bad.gz"
    bad.write_bytes(gzip.compress(bytes(range(256)) * 40)[:100])
    code, _out, err = run(["parse", str(bad)], capsys)
    assert code == 2 and err.startswith("nfkit parse: error: cannot read")


def test_invalid_utf8_on_stdin_is_no_traceback() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "nfkit", "parse", "-"],
        input=b"\xff\xfe garbage\n" + SYN.encode() + b"\n",
        capture_output=True,
    )
    assert result.returncode == 0, result.stderr
    assert b"Traceback" not in result.stderr and b"1 not packet logs" in result.stderr
    assert b"-> 10.77.2.2:7000 SYN" in result.stdout


def test_help_describes_every_option() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "nfkit", "parse", "--help"], capture_output=True, text=True
    )
    assert result.returncode == 0
    for text in ("--json", "--strict", "standard input", ".gz", "exit codes"):
        assert text in result.stdout


def test_console_script_reads_stdin() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "nfkit", "parse", "--json", "-"],
        input=SYN + "\n",
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["dpt"] == 7000
