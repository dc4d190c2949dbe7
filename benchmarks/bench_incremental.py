"""Time an incremental cron run: a 1 GB kern.log of which 1 MB is new since the last run.

    python3 benchmarks/bench_incremental.py [--size-mb 1024] [--new-mb 1] [--repeat 5]

The big log is built by repeating a generated 8 MB piece (its content does not matter: the run
must not read it). The state file says "read up to the end of the old content" — written with
``nfkit.logs.state`` (first-line hash, offset, inode), as a previous run would have left it —
then 1 MB of fresh lines is appended. Each round restores the state and runs, as cron would::

    nfkit summarize LOG --state STATE --no-discover --format text -o REPORT

and reports the wall time of the whole process (interpreter start, imports, reading the new
lines, summarising, rendering, saving the state). The goal is at most 0.5 s. The best and the
median round are printed with the load average.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from genlog import generate_lines  # noqa: E402

from nfkit.logs.state import LogState, Mark, first_line_hash  # noqa: E402


def piece(size: int, seed: int) -> bytes:
    """About ``size`` bytes of generated lines (whole lines)."""
    out: list[str] = []
    total = 0
    for line in generate_lines(size // 200 + 1, seed=seed, sources=2000):
        out.append(line + "\n")
        total += len(out[-1])
        if total >= size:
            break
    return "".join(out).encode()


def main(argv: list[str] | None = None) -> int:
    """Build the log and the state, run the rounds, print the timings."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mb", type=int, default=1024, help="old content (1024 MB)")
    parser.add_argument("--new-mb", type=float, default=1.0, help="new content (1 MB)")
    parser.add_argument("--repeat", type=int, default=5, help="rounds (5)")
    parser.add_argument("--dir", type=Path, help="work directory (default: a temporary one)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        log = Path(tmp) / "kern.log"
        state_path = Path(tmp) / "state.json"
        saved = Path(tmp) / "state.saved"
        block = piece(8 << 20, seed=1)
        with log.open("wb") as out:
            written = 0
            while written < args.size_mb << 20:
                out.write(block)
                written += len(block)
        old_size = log.stat().st_size
        absolute = str(log.absolute())
        digest = first_line_hash(log)
        assert digest is not None
        state = LogState({absolute: {digest: Mark(old_size, log.stat().st_ino, log.name)}})
        state.save(state_path)
        shutil.copy(state_path, saved)
        new = piece(int(args.new_mb * (1 << 20)), seed=2)
        new_lines = new.count(b"\n")
        with log.open("ab") as out:
            out.write(new)
        print(
            f"log {old_size / 2**30:.2f} GiB + {len(new) / 2**20:.2f} MiB new ({new_lines:,} lines)"
        )
        command = [
            sys.executable, "-m", "nfkit", "summarize", str(log), "--state", str(state_path),
            "--no-discover", "--format", "text", "-o", str(Path(tmp) / "report.txt"),
        ]  # fmt: skip
        times: list[float] = []
        for round_no in range(1, args.repeat + 1):
            shutil.copy(saved, state_path)
            start = time.perf_counter()
            subprocess.run(command, check=True)
            times.append(time.perf_counter() - start)
            after = LogState.load(state_path).families[absolute][digest].offset
            assert after == log.stat().st_size, "the run did not read up to the end"
            print(f"  round {round_no}: {times[-1]:.3f} s")
        report = (Path(tmp) / "report.txt").read_text()
        assert f"{new_lines:,}" in report or str(new_lines) in report, "new lines not reported"
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", "import nfkit.cli"], check=True)
        startup = time.perf_counter() - start
        load1, load5, _ = os.getloadavg()
        print(
            f"incremental cron run: best {min(times):.3f} s, median "
            f"{statistics.median(times):.3f} s (of which interpreter + imports "
            f"{startup:.3f} s); load average {load1:.2f} {load5:.2f} on {os.cpu_count()} CPUs"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
