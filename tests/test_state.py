"""Incremental reading across rotation: every line counted exactly once; killed runs recover."""

from __future__ import annotations

import gzip
import json
import os
import random
import shutil
import sqlite3
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from nfkit.errors import ConfigError, StateError
from nfkit.logs.state import (
    IncrementalReader,
    LogState,
    atomic_write,
    first_line_hash,
    locked,
    rotation_family,
)

REPO = Path(__file__).resolve().parent.parent


class FakeSyslog:
    """Appends numbered lines to ``kern.log`` and rotates it like logrotate does."""

    def __init__(self, directory: Path, keep: int = 6) -> None:
        self.dir = directory
        self.path = directory / "kern.log"
        self.path.touch()
        self.keep = keep
        self.written: list[str] = []
        self.partial = ""  # a line being written: not yet ended by a newline
        self.late_target: Path | None = None  # rsyslog before its HUP still writes here

    def write(self, count: int, rng: random.Random, allow_partial: bool = True) -> None:
        target = self.late_target or self.path
        with target.open("a") as handle:
            for _ in range(count):
                padding = "x" * rng.randint(0, 40)
                line = f"Nov 24 10:00:00 host kernel: line {len(self.written)} {padding}"
                if self.partial:
                    handle.write(line[len(self.partial) :] + "\n")
                    self.partial = ""
                else:
                    handle.write(line + "\n")
                self.written.append(line)
            if allow_partial and not self.partial and rng.random() < 0.3:
                # half a line; the rest comes with the next write (to the same file)
                nxt = f"Nov 24 10:00:00 host kernel: line {len(self.written)} "
                self.partial = nxt[: rng.randint(1, len(nxt) - 1)]
                handle.write(self.partial)

    def finish_partial(self, rng: random.Random) -> None:
        if self.partial:
            self.write(1, rng, allow_partial=False)

    def _shift(self) -> None:
        oldest = self.dir / f"kern.log.{self.keep}.gz"
        oldest.unlink(missing_ok=True)
        for n in range(self.keep - 1, 1, -1):
            src = self.dir / f"kern.log.{n}.gz"
            if src.exists():
                src.rename(self.dir / f"kern.log.{n + 1}.gz")

    def rotate_rename(self, rng: random.Random) -> None:
        """kern.log -> .1 (delaycompress), .1 -> .2.gz; the daemon may write late to .1."""
        self.finish_partial(rng)
        self._shift()
        one = self.dir / "kern.log.1"
        if one.exists():
            with one.open("rb") as src, gzip.open(self.dir / "kern.log.2.gz", "wb") as dst:
                shutil.copyfileobj(src, dst)
            one.unlink()
        self.path.rename(one)
        self.path.touch()
        self.late_target = one if rng.random() < 0.5 else None

    def rotate_copytruncate(self, rng: random.Random) -> None:
        """copy kern.log to .1.gz (compressed at once), then truncate kern.log in place."""
        self.finish_partial(rng)
        self.late_target = None
        for n in range(self.keep - 1, 0, -1):
            src = self.dir / f"kern.log.{n}.gz"
            if src.exists():
                src.rename(self.dir / f"kern.log.{n + 1}.gz")
        with self.path.open("rb") as src, gzip.open(self.dir / "kern.log.1.gz", "wb") as dst:
            shutil.copyfileobj(src, dst)
        with self.path.open("r+") as handle:
            handle.truncate(0)

    def hup(self, rng: random.Random) -> None:
        """The daemon reopens kern.log (after finishing the line it was writing)."""
        self.finish_partial(rng)
        self.late_target = None


def run_once(state_path: Path, log: Path) -> list[str]:
    reader = IncrementalReader(LogState.load(state_path), [log])
    lines = list(reader.lines())
    reader.new_state().save(state_path)
    return lines


@pytest.mark.parametrize("kind", ["rename", "copytruncate"])
@pytest.mark.parametrize("seed", [1, 2])
def test_rotation_torture(tmp_path: Path, kind: str, seed: int) -> None:
    rng = random.Random(seed)
    syslog = FakeSyslog(tmp_path)
    state = tmp_path / "state.json"
    seen: list[str] = []
    rotations_since_run = 0
    syslog.write(3, rng)
    seen += run_once(state, syslog.path)
    for _ in range(100):
        for _ in range(rng.randint(0, 3)):
            syslog.write(rng.randint(0, 5), rng)
            if rng.random() < 0.3:
                seen += run_once(state, syslog.path)
                rotations_since_run = 0
        if kind == "rename":
            syslog.rotate_rename(rng)
        else:
            syslog.rotate_copytruncate(rng)
        rotations_since_run += 1
        syslog.write(rng.randint(0, 4), rng)
        syslog.hup(rng)
        if rotations_since_run >= 3 or rng.random() < 0.5:
            seen += run_once(state, syslog.path)
            rotations_since_run = 0
    syslog.finish_partial(rng)
    seen += run_once(state, syslog.path)
    duplicates = [line for line, n in Counter(seen).items() if n > 1]
    assert duplicates == []
    assert set(seen) == set(syslog.written)
    assert len(seen) == len(syslog.written)
    assert run_once(state, syslog.path) == []


def test_first_run_skips_old_rotations_and_reads_live_file(tmp_path: Path) -> None:
    (tmp_path / "kern.log.1").write_text("old 1\nold 2\n")
    with gzip.open(tmp_path / "kern.log.2.gz", "wt") as handle:
        handle.write("older\n")
    (tmp_path / "kern.log").write_text("new 1\nnew 2\npartial")
    state = tmp_path / "state.json"
    assert run_once(state, tmp_path / "kern.log") == ["new 1", "new 2"]
    with (tmp_path / "kern.log").open("a") as handle:
        handle.write(" line\n")
    assert run_once(state, tmp_path / "kern.log") == ["partial line"]


def test_rewritten_file_with_same_first_line_is_read_again(tmp_path: Path) -> None:
    log = tmp_path / "kern.log"
    log.write_text("first\nsecond\nthird\n")
    state = tmp_path / "state.json"
    assert len(run_once(state, log)) == 3
    log.write_text("first\n")
    assert run_once(state, log) == ["first"]


def test_family_order_and_hash(tmp_path: Path) -> None:
    for name in [
        "kern.log",
        "kern.log.1",
        "kern.log.2.gz",
        "kern.log.10.gz",
        "kern.log-20261120.gz",
        "kern.log-20261122",
        "kern.logx",
        "kern.log.bak",
    ]:
        (tmp_path / name).write_text("a\n")
    names = [p.name for p in rotation_family(tmp_path / "kern.log")]
    assert names == [
        "kern.log",
        "kern.log.1",
        "kern.log.2.gz",
        "kern.log.10.gz",
        "kern.log-20261122",
        "kern.log-20261120.gz",
    ]
    (tmp_path / "empty").write_text("no newline")
    assert first_line_hash(tmp_path / "empty") is None


def test_missing_log_and_corrupt_state(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such log file"):
        list(IncrementalReader(LogState(), [tmp_path / "absent.log"]).lines())
    bad = tmp_path / "state.json"
    for text in [
        "{not json",
        '{"version": 99, "files": {}}',
        '{"version": 1, "files": []}',
        '{"version": 1, "files": {"/x": {"h": {"offset": -4}}}}',
    ]:
        bad.write_text(text)
        with pytest.raises(StateError, match="corrupt state file"):
            LogState.load(bad)
    assert LogState.load(tmp_path / "none.json").families == {}


def test_state_round_trip_and_atomic_write(tmp_path: Path) -> None:
    log = tmp_path / "kern.log"
    log.write_text("a\nb\n")
    path = tmp_path / "state.json"
    run_once(path, log)
    data = json.loads(path.read_text())
    assert data["version"] == 1
    (mark,) = data["files"][str(log)].values()
    assert mark["offset"] == 4 and mark["name"] == "kern.log"
    assert LogState.load(path).to_dict() == data
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []
    with pytest.raises(StateError, match="cannot write"):
        atomic_write(tmp_path / "no" / "such" / "dir", b"x")


def test_lock_refuses_second_run(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    with locked(path), pytest.raises(StateError, match="holds the lock"), locked(path):
        pass


# -- a killed run --------------------------------------------------------------------------------
LINE = (
    "Nov 24 10:00:{sec:02d} srv kernel: [  1.000000] nfkit:input:drop:policy IN=eth0 OUT= "
    "MAC=52:54:00:00:00:10:52:54:00:00:00:01:08:00 SRC=198.51.100.7 DST=192.0.2.10 LEN=60 "
    "TOS=0x00 PREC=0x00 TTL=63 ID={n} DF PROTO=TCP SPT=4000 DPT={port} WINDOW=1 RES=0x00 SYN "
    "URGP=0 "
)


def write_lines(path: Path, start: int, count: int) -> None:
    with path.open("a") as handle:
        for n in range(start, start + count):
            handle.write(LINE.format(sec=n % 60, n=n, port=1000 + n) + "\n")


def summarize_cli(tmp_path: Path, hook: str | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env.pop("_NFKIT_TEST_HOOK", None)
    if hook:
        env["_NFKIT_TEST_HOOK"] = hook
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "nfkit",
            "summarize",
            str(tmp_path / "kern.log"),
            "--state",
            str(tmp_path / "state.json"),
            "--history",
            str(tmp_path / "h.db"),
            "--format",
            "json",
            "-o",
            str(tmp_path / "report.json"),
            "--no-discover",
            "--gateway-mac",
            "52:54:00:00:00:01",
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=60,
    )


def history_records(tmp_path: Path) -> list[int]:
    with sqlite3.connect(tmp_path / "h.db") as db:
        return [row[0] for row in db.execute("SELECT records FROM runs ORDER BY finished")]


def test_sigkill_between_report_and_state_recovers(tmp_path: Path) -> None:
    log = tmp_path / "kern.log"
    write_lines(log, 0, 10)
    assert summarize_cli(tmp_path).returncode == 0
    assert history_records(tmp_path) == [10]
    state_before = (tmp_path / "state.json").read_bytes()

    write_lines(log, 10, 7)
    killed = summarize_cli(tmp_path, hook="kill-before-state")
    assert killed.returncode == -9
    # the report was written, the state was not touched
    assert json.loads((tmp_path / "report.json").read_text())["records"] == 7
    assert (tmp_path / "state.json").read_bytes() == state_before
    assert history_records(tmp_path) == [10, 7]

    write_lines(log, 17, 3)
    again = summarize_cli(tmp_path)
    assert again.returncode == 0, again.stderr
    # the re-run reads the killed run's lines once more, and replaces its history row
    assert json.loads((tmp_path / "report.json").read_text())["records"] == 10
    assert history_records(tmp_path) == [10, 10]
    assert sum(history_records(tmp_path)) == 20

    assert summarize_cli(tmp_path).returncode == 0
    assert json.loads((tmp_path / "report.json").read_text())["records"] == 0
    assert sum(history_records(tmp_path)) == 20
