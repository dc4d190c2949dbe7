"""Standard input (closed, not UTF-8, CRLF), policy paths, ``--templates`` and terminal-safe
``nfkit parse`` output (QA-4, QA-5, QA-6, QA-12, QA-13, QA-14, and ``summarize`` with QA-16)."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hostile import POLICY, REPO, SAMPLE, assert_clean_error, run_cli

import nfkit
from nfkit.cli.parse import summarize as one_line
from nfkit.errors import ConfigError
from nfkit.logs.parser import parse_line
from nfkit.render import template_dirs

POLICY_TEXT = "input policy drop {\n    tcp dport 22 accept\n}\n"
ESCAPES = "\x1b]0;pwned\x07\x1b[31m\r\x9b"
HOSTILE_LINE = (
    f"Nov 25 04:17:23 srv kernel: [ 1.0] {ESCAPES}RED IN=eth0 OUT= SRC=198.51.100.7 "
    "DST=192.0.2.10 LEN=60 TTL=52 ID=1 PROTO=TCP SPT=1 DPT=23 SYN URGP=0"
)


def nfkit_closed_stdin(*args: str) -> subprocess.CompletedProcess[str]:
    """Run ``nfkit ARGS <&-``: file descriptor 0 closed, so ``sys.stdin`` is ``None``."""
    return subprocess.run(
        ["sh", "-c", 'exec "$@" <&-', "sh", sys.executable, "-m", "nfkit", *args],
        capture_output=True, text=True, cwd=REPO, check=False,
    )


# -- standard input closed ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "what"),
    [
        (["parse", "-"], "log"),
        (["parse", "--json", str(SAMPLE), "-"], "log"),
        (["compile", "-"], "policy"),
        (["summarize", "--no-discover", "-"], "log"),
        (["summarize", "--no-discover", "--format", "json", str(SAMPLE), "-"], "log"),
    ],
    ids=["parse", "parse-after-file", "compile", "summarize", "summarize-after-file"],
)
def test_closed_stdin_in_process(
    capsys: pytest.CaptureFixture[str], argv: list[str], what: str
) -> None:
    outcome = run_cli(capsys, argv, stdin=None)
    pattern = rf"^nfkit {argv[0]}: error: <stdin>: cannot read {what}: standard input is closed$"
    assert_clean_error(outcome, 2, pattern)


@pytest.mark.parametrize(
    "argv",
    [["parse", "-"], ["compile", "-"], ["summarize", "--no-discover", "-"]],
    ids=["parse", "compile", "summarize"],
)
def test_closed_stdin_real_process(argv: list[str]) -> None:
    done = nfkit_closed_stdin(*argv)
    assert "Traceback" not in done.stderr, done.stderr
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith(f"nfkit {argv[0]}: error: "), done.stderr
    assert "standard input is closed" in done.stderr
    assert done.stdout == ""


def test_summarize_stdin_still_read(capsys: pytest.CaptureFixture[str]) -> None:
    outcome = run_cli(capsys, ["summarize", "--no-discover", "--format", "json", "-"],
                      stdin=SAMPLE.read_bytes())
    assert outcome.code == 0, outcome.err
    assert '"records"' in outcome.out


# -- compile: standard input decoded as strictly as a file ------------------------------------


@pytest.mark.parametrize(
    "data", [b"\xff\xfe\n", POLICY_TEXT.encode()[:20] + b"\xc3(" + POLICY_TEXT.encode()[20:]],
    ids=["bom-like", "in-the-middle"],
)
def test_compile_stdin_not_utf8(capsys: pytest.CaptureFixture[str], data: bytes) -> None:
    outcome = run_cli(capsys, ["compile", "-"], stdin=data)
    assert_clean_error(
        outcome, 2, r"^nfkit compile: error: <stdin>: not a policy: not UTF-8 text \(.+\)$"
    )
    assert outcome.out == ""


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8:surrogateescape", "latin-1"])
def test_compile_stdin_not_utf8_whatever_the_locale(encoding: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "nfkit", "compile", "-"], input=b"\xff\xfe\n",
        capture_output=True, cwd=REPO, check=False,
        env={**os.environ, "PYTHONIOENCODING": encoding},
    )
    err = done.stderr.decode()
    assert "Traceback" not in err and done.returncode == 2, err
    assert err == "nfkit compile: error: <stdin>: not a policy: not UTF-8 text (invalid start " \
        "byte)\n"


def test_compile_stdin_utf8_and_crlf_like_a_file(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    text = 'define name = "café"\r\ninput policy drop {\r\n    tcp dport 22 accept\r\n}\r\n'
    policy = tmp_path / "p.nfk"
    policy.write_bytes(text.encode())
    from_file = run_cli(capsys, ["compile", "--emit", "ruleset", str(policy)])
    from_stdin = run_cli(capsys, ["compile", "--emit", "ruleset", "-"], stdin=text.encode())
    assert from_file.code == from_stdin.code == 0, (from_file.err, from_stdin.err)
    assert "\r" not in from_stdin.out and "tcp dport 22 accept" in from_stdin.out
    assert from_stdin.out.replace("<stdin>:", "p.nfk:") == from_file.out


def test_compile_stdin_text_stream_without_buffer(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # an embedding caller may put a plain text stream (no .buffer) in place of sys.stdin
    monkeypatch.setattr(sys, "stdin", io.StringIO(POLICY_TEXT))
    from nfkit.cli import main

    assert main(["compile", "--emit", "ruleset", "-"]) == 0
    assert "tcp dport 22 accept" in capsys.readouterr().out


# -- compile: policy paths and --templates ----------------------------------------------------


def test_compile_directory_says_directory(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    outcome = run_cli(capsys, ["compile", str(tmp_path)])
    assert_clean_error(
        outcome, 2, rf"^nfkit compile: error: {tmp_path}: is a directory, not a policy file$"
    )


def test_compile_missing_file_still_says_so(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    missing = tmp_path / "gone.nfk"
    outcome = run_cli(capsys, ["compile", str(missing)])
    assert_clean_error(outcome, 2, rf"^nfkit compile: error: no such policy file: {missing}$")


def test_compile_reads_a_pipe_path(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    # `nfkit compile <(generate-policy)` names a pipe, not a regular file
    fifo = tmp_path / "policy.fifo"
    os.mkfifo(fifo)
    writer = subprocess.Popen(["sh", "-c", f"printf '%s' '{POLICY_TEXT}' > '{fifo}'"])
    try:
        outcome = run_cli(capsys, ["compile", "--emit", "ruleset", str(fifo)])
    finally:
        try:
            writer.wait(timeout=5)
        except subprocess.TimeoutExpired:  # the pipe was never opened for reading
            writer.kill()
            writer.wait()
    assert outcome.code == 0, outcome.err
    assert "tcp dport 22 accept" in outcome.out


@pytest.mark.parametrize("kind", ["missing", "file"])
def test_compile_templates_not_a_directory(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, kind: str
) -> None:
    templates = tmp_path / "templates"
    if kind == "file":
        templates.write_text("not a directory\n")
    problem = "does not exist" if kind == "missing" else "is not a directory"
    outcome = run_cli(capsys, ["compile", str(POLICY), "--templates", str(templates)])
    assert_clean_error(
        outcome, 2, rf"^nfkit compile: error: template directory {templates} {problem}$"
    )
    assert outcome.out == ""


def test_compile_templates_env_not_a_directory(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NFKIT_TEMPLATES", str(tmp_path / "nope"))
    outcome = run_cli(capsys, ["compile", str(POLICY)])
    assert_clean_error(outcome, 2, r"^nfkit compile: error: NFKIT_TEMPLATES directory .*nope "
                                   r"does not exist$")


def test_compile_templates_directory_is_used(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    (tmp_path / "nftables").mkdir()
    (tmp_path / "nftables" / "ruleset.nft.j2").write_text("custom {{ table }}\n")
    outcome = run_cli(capsys, ["compile", str(POLICY), "--emit", "ruleset",
                               "--templates", str(tmp_path)])
    assert outcome.code == 0, outcome.err
    assert outcome.out == "custom nfkit\n"


def test_library_bad_template_dir_is_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        nfkit.compile_policy(POLICY_TEXT, template_dir=tmp_path / "nope")
    (tmp_path / "f").write_text("")
    with pytest.raises(ConfigError, match="is not a directory"):
        template_dirs(tmp_path / "f")
    assert template_dirs(tmp_path)[0] == tmp_path


# -- parse: control characters from log lines -------------------------------------------------


def test_parse_escapes_control_characters(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    log = tmp_path / "esc.log"
    log.write_text(HOSTILE_LINE + "\n")
    outcome = run_cli(capsys, ["parse", str(log)])
    assert outcome.code == 0, outcome.err
    line = outcome.out.rstrip("\n")
    assert "\n" not in line
    assert r"\x1b]0;pwned\x07\x1b[31m\x0d\x9bRED" in line
    assert not any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in line), repr(line)
    assert "TCP 198.51.100.7:1 -> 192.0.2.10:23" in line


def test_parse_escapes_host_and_keeps_ordinary_text() -> None:
    record = parse_line(HOSTILE_LINE.replace(" srv ", " s\x07rv "))
    assert record is not None and record.host == "s\x07rv"
    text = one_line(record)
    assert text.startswith("2026-11-25 04:17:23 s\\x07rv ")
    assert "\x07" not in text and "\x1b" not in text
    plain = parse_line(HOSTILE_LINE.replace(ESCAPES, "my-FW "))
    assert plain is not None
    assert one_line(plain) == (  # nothing to escape: unchanged
        '2026-11-25 04:17:23 srv "my-FW RED" eth0>- TCP 198.51.100.7:1 -> 192.0.2.10:23 len=60'
    )


def test_parse_json_output_keeps_the_raw_prefix(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # --json is data (JSON escapes control characters itself): the prefix stays exact
    import json

    log = tmp_path / "esc.log"
    log.write_text(HOSTILE_LINE + "\n")
    outcome = run_cli(capsys, ["parse", "--json", str(log)])
    assert outcome.code == 0, outcome.err
    assert "\x1b" not in outcome.out
    assert json.loads(outcome.out)["prefix"].startswith(ESCAPES)
