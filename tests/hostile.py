"""Hostile inputs for the robustness tests: a directory of bad files and an in-process runner."""

from __future__ import annotations

import contextlib
import gzip
import io
import json
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from nfkit.cli import main

REPO = Path(__file__).resolve().parent.parent
SAMPLE = REPO / "examples" / "kern.log"
SEGMENT = REPO / "examples" / "segment.toml"
POLICY = REPO / "rules" / "web-server.nfk"

#: A namespace name nobody creates: commands must refuse it, and must not create it.
NO_SUCH_NS = "nfkit-qa-no-such-ns"

_GARBAGE = bytes(range(256)) * 8 + b"\x00\xff\xfe\n" * 4


def build(root: Path) -> Path:
    """Write every hostile file into ``root`` (which becomes the tests' working directory)."""
    sample = SAMPLE.read_bytes()
    packed = gzip.compress(sample)
    corrupt = bytearray(packed)
    corrupt[len(corrupt) // 2 : len(corrupt) // 2 + 16] = b"x" * 16
    summary = _sample_summary()
    infinite = json.dumps(summary).replace('"lines": ', '"lines": 1e400, "_was": ', 1)
    files: dict[str, bytes] = {
        "plain.log": sample,
        "empty.log": b"",
        "garbage.bin": _GARBAGE,
        "badutf8.log": sample[:400] + b"\xff\xfe\xc3(\n" + sample[400:800],
        "huge-line.log": b"A" * 2_000_000 + b"\n",
        "good.log.gz": packed,
        "truncated.gz": packed[: len(packed) // 2],
        "corrupt.gz": bytes(corrupt),
        "plaintext.gz": sample,
        # configs
        "bad-syntax.toml": b"[segment\n",
        "wrong-type.toml": b"[segment]\nnetworks = 5\n",
        "bad-cidr.toml": b'[segment]\nnetworks = ["10.0.0.0/33"]\n',
        "bad-mac.toml": b'[segment]\ngateway_macs = ["zz:00:00:00:00:01"]\n',
        "unknown-key.toml": b"[segment]\nfoo = 1\n",
        "unknown-table.toml": b'[segmnet]\nnetworks = ["192.0.2.0/24"]\n',
        "summary-wrong-type.toml": b'[summary]\nslot_seconds = "five"\n',
        "summary-unknown.toml": b"[summary]\nfoo = 1\n",
        "segment-not-table.toml": b"segment = 3\n",
        "binary.toml": b"\xff\xfe[segment]\n",
        "deep.toml": b"a = " + b"[" * 50_000 + b"\n",
        # state files
        "state-bad-offset.json": b'{"version": 1, "files": {"a": {"x": {"offset": "nope"}}}}',
        "state-version.json": b'{"version": 99, "files": {}}',
        "state-truncated.json": b'{"version": 1, "fi',
        "state-list.json": b"[1, 2]",
        "state-files-list.json": b'{"version": 1, "files": []}',
        "state-infinite.json": b'{"version": 1, "files": {"a": {"x": {"offset": 1e400}}}}',
        "state-float.json": b'{"version": 1, "files": {"a": {"x": {"offset": 1.5}}}}',
        "state-bool.json": b'{"version": 1, "files": {"a": {"x": {"offset": true}}}}',
        "state-binary.json": b"\xff\xff",
        "deep.json": b"[" * 100_000,
        # history databases
        "not-sqlite.db": b"not sqlite at all, just text\n",
        "fake-sqlite.db": b"SQLite format 3\x00garbage",
        # summaries for merge
        "summary.json": json.dumps(summary).encode(),
        "summary-infinite.json": infinite.encode(),
        "summary-list.json": b"[]",
        "summary-foreign.json": b'{"version": 99}',
        # policies
        "empty.nfk": b"",
        "binary.nfk": _GARBAGE,
        "port70000.nfk": b"input policy drop {\n    tcp dport 70000 accept\n}\n",
        "huge-number.nfk": b"input policy drop {\n    tcp dport " + b"9" * 40 + b" accept\n}\n",
        "reversed-range.nfk": b"input policy drop {\n    tcp dport 100-20 accept\n}\n",
        "loop.nfk": b'include "loop.nfk"\ninput policy drop {\n}\n',
        "loop-a.nfk": b'include "loop-b.nfk"\n',
        "loop-b.nfk": b'include "loop-a.nfk"\ninput policy drop {\n}\n',
        "include-missing.nfk": b'include "missing.nfk"\ninput policy drop {\n}\n',
        "include-binary.nfk": b'include "binary.nfk"\ninput policy drop {\n}\n',
        "include-dir.nfk": b'include "adir"\ninput policy drop {\n}\n',
        "unicode-name.nfk": "define é = 22\ninput policy drop {\n}\n".encode(),
        "unterminated.nfk": b'log tag "nfkit\ninput policy drop {\n}\n',
        "crlf.nfk": b"input policy drop {\r\n    tcp dport 22 accept\r\n}\r\n",
        "tabs.nfk": b"input policy drop {\n\ttcp dport 22 accept\n\t\tfoo\n}\n",
        "deep-braces.nfk": b"define a = " + b"{" * 5000 + b"1" + b"}" * 5000 + b"\n",
        "define-loop.nfk": b"define a = $b\ndefine b = $a\ninput policy drop {\n"
        b"    tcp dport $a accept\n}\n",
        "bad-cidr.nfk": b"input policy drop {\n    saddr 10.0.0.0/33 accept\n}\n",
        "unclosed.nfk": b"input policy drop {\n    tcp dport 22 accept\n",
        "huge-rate.nfk": b"input policy drop {\n    limit rate "
        + b"9" * 23
        + b"/second accept\n}\n",
    }
    for name, data in files.items():
        (root / name).write_bytes(data)
    (root / "adir").mkdir()
    return root


def _sample_summary() -> dict[str, object]:
    from nfkit.logs.aggregate import SummaryConfig, summarize

    config = SummaryConfig.from_toml(SEGMENT)
    with SAMPLE.open(encoding="utf-8") as handle:
        return summarize(handle, config).to_dict()


@dataclass
class Outcome:
    """Exit code and captured output of one in-process ``nfkit`` run."""

    code: int
    out: str
    err: str


@contextlib.contextmanager
def _stdin(data: bytes | None) -> Iterator[None]:
    """Replace standard input: ``None`` means closed (as with ``<&-``)."""
    saved = sys.stdin
    sys.stdin = None if data is None else io.TextIOWrapper(io.BytesIO(data))  # type: ignore[assignment]
    try:
        yield
    finally:
        sys.stdin = saved


def run_cli(
    capsys: pytest.CaptureFixture[str], argv: list[str], stdin: bytes | None = b""
) -> Outcome:
    """Run ``nfkit argv`` in-process; argparse's ``SystemExit`` becomes the exit code."""
    with _stdin(stdin):
        try:
            code = main(argv)
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 2
    captured = capsys.readouterr()
    return Outcome(code, captured.out, captured.err)


def assert_clean_error(outcome: Outcome, code: int, pattern: str) -> None:
    """No traceback; the exit code and a stderr line matching ``pattern``."""
    assert "Traceback" not in outcome.err, outcome.err
    assert outcome.code == code, (outcome.code, outcome.err[-2000:])
    assert re.search(pattern, outcome.err, re.MULTILINE), outcome.err[-2000:]


def namespace_exists(name: str) -> bool:
    """True when ``ip netns`` would list ``name``."""
    return any(Path(base, name).exists() for base in ("/run/netns", "/var/run/netns"))


@pytest.fixture(scope="module")
def hostile_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory of hostile files, built once per module."""
    return build(tmp_path_factory.mktemp("hostile"))


@pytest.fixture
def in_hostile(hostile_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run the test inside the hostile directory, with nfkit's state kept there too."""
    monkeypatch.chdir(hostile_dir)
    monkeypatch.setenv("NFKIT_STATE_DIR", str(hostile_dir / "state"))
    return hostile_dir


__all__ = [
    "NO_SUCH_NS",
    "POLICY",
    "SAMPLE",
    "SEGMENT",
    "Outcome",
    "assert_clean_error",
    "build",
    "hostile_dir",
    "in_hostile",
    "namespace_exists",
    "run_cli",
]
