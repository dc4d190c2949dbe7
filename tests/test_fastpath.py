"""The fast summary engine equals the full parser: corpus, generated logs, mutations, splits.

Every test compares complete ``Summary.to_dict()`` outputs: the fast engine
(:mod:`nfkit.logs.fastpath`) against ``Summary.add_lines`` over the same lines (the full parser,
record by record), so a counter the engine forgets or reads differently fails here.
"""

from __future__ import annotations

import gzip
import io
import itertools
import random
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nfkit.logs import fastpath, parallel
from nfkit.logs.aggregate import Summary, SummaryConfig, summarize_records
from nfkit.logs.fastpath import BlockSummarizer, summarize_bytes
from nfkit.logs.parallel import split_ranges, summarize_paths
from nfkit.logs.parser import iter_records
from nfkit.logs.progress import Progress, progress_for
from nfkit.logs.segment import Segment
from nfkit.logs.state import read_whole

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "benchmarks"))

from genlog import FW_MAC, GATEWAY_MAC, generate_lines  # noqa: E402

CORPUS_FILES = [*sorted((REPO / "tests" / "data").glob("*.log")), REPO / "examples" / "kern.log"]
CONFIGS = {
    "none": SummaryConfig(),
    "gateway": SummaryConfig(
        segment=Segment.from_values(
            networks=["192.168.1.0/24", "10.77.0.0/16"],
            gateway_macs=[GATEWAY_MAC, "02:00:00:00:01:01"],
            own_macs=[FW_MAC],
        )
    ),
    "networks-only": SummaryConfig(segment=Segment.from_values(networks=["192.168.1.0/24"])),
}


def full(lines: list[str], config: SummaryConfig, since: datetime | None = None) -> dict[str, Any]:
    """The reference: the full parser, one record at a time."""
    summary = Summary(config)
    summary.add_lines(lines, since=since)
    return summary.to_dict()


def lines_of(data: bytes) -> list[str]:
    """Lines as ``read_whole`` yields them (no final empty line after the last newline)."""
    text = data.decode("utf-8", "replace")
    parts = text.split("\n")
    if parts and parts[-1] == "":
        parts.pop()
    return parts


def generated(count: int, seed: int, **options: Any) -> bytes:
    return "".join(f"{line}\n" for line in generate_lines(count, seed=seed, **options)).encode()


@pytest.mark.parametrize("path", CORPUS_FILES, ids=lambda p: p.name)
@pytest.mark.parametrize("config_name", sorted(CONFIGS))
def test_corpus_equals_full_parser(path: Path, config_name: str) -> None:
    config = CONFIGS[config_name]
    data = path.read_bytes()
    expected = full(list(read_whole(str(path))), config)
    assert summarize_bytes(data, config).to_dict() == expected
    assert summarize_paths([path], config).to_dict() == expected


def test_corpus_equals_summarize_records() -> None:
    """Against ``summarize_records(iter_records(...))`` too (it counts no lines)."""
    for path in CORPUS_FILES:
        fast = summarize_bytes(path.read_bytes()).to_dict()
        records = summarize_records(iter_records(path)).to_dict()
        for key in ("lines", "unparsed", "skipped"):
            fast.pop(key)
            records.pop(key)
        assert fast == records, path


@pytest.mark.parametrize("wrapper", ["syslog", "rfc3339", "dmesg"])
@pytest.mark.parametrize("config_name", sorted(CONFIGS))
def test_generated_logs_equal_full_parser(wrapper: str, config_name: str) -> None:
    config = CONFIGS[config_name]
    data = generated(3000, seed=len(wrapper), wrapper=wrapper, sources=300, rate=2.0)
    assert summarize_bytes(data, config).to_dict() == full(lines_of(data), config)


def test_out_of_order_blocks_and_lines() -> None:
    """Times that go backwards (merged logs, clock steps) within and across blocks."""
    lines = lines_of(generated(4000, seed=3, sources=200, rate=5.0))
    rng = random.Random(3)
    head, tail = lines[:2000], lines[2000:]
    rng.shuffle(head)
    data = ("\n".join(tail + head) + "\n").encode()
    engine = BlockSummarizer(CONFIGS["gateway"])
    for start in range(0, len(data), 50_000):
        engine.feed(data[start : start + 50_000])
    assert engine.finish().to_dict() == full(lines_of(data), CONFIGS["gateway"])


def test_since_skips_like_the_full_parser() -> None:
    data = generated(2000, seed=4, sources=50, rate=0.5, start=datetime(2026, 11, 20))
    since = datetime(2026, 11, 20, 0, 30).astimezone()
    fast = summarize_bytes(data, CONFIGS["gateway"], since=since).to_dict()
    assert fast["skipped"] > 0
    assert fast == full(lines_of(data), CONFIGS["gateway"], since=since)


# -- mutations: every line the fast path does not fully understand goes to the full parser ----
_POOL = [
    line
    for path in CORPUS_FILES
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines()
] + list(generate_lines(150, seed=9, sources=20, wrapper="syslog")) + list(
    generate_lines(50, seed=10, sources=20, wrapper="rfc3339")
) + list(generate_lines(50, seed=11, sources=20, wrapper="dmesg"))  # fmt: skip


def _mutate(line: str, how: int, where: int, text: str) -> str:
    spot = where % (len(line) + 1)
    if how == 0:
        return line[:spot]  # cut
    if how == 1:
        return line[:spot] + text + line[spot + 1 :]  # replace one character
    if how == 2:
        return line[:spot] + text + line[spot:]  # insert
    if how == 3:
        return line.rstrip(" ")  # no trailing blank
    if how == 4:
        return line + "\r"
    if how == 5:
        return line.replace("TTL=", "TTL=0", 1).replace("DPT=", "DPT=00", 1)
    if how == 6:
        return line.replace("SRC=", "SRC=0", 1)  # leading zeros: not an address
    if how == 7:
        return line.replace("Nov 2", "Feb 3", 1).replace("11-2", "02-3", 1)  # impossible dates
    return line


mutation = st.tuples(
    st.sampled_from(_POOL),
    st.integers(0, 9),
    st.integers(0, 400),
    st.sampled_from(
        [" ", "=", "[", "]", "\n", "x", "0", "9", ":", "é", "IN=", "\x00", " kernel: "]
    ),
)


@settings(max_examples=150, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])  # fmt: skip
@given(st.lists(mutation, min_size=1, max_size=60), st.sampled_from(sorted(CONFIGS)))
def test_mutated_lines_equal_full_parser(items: list[tuple[str, int, int, str]], name: str) -> None:
    lines = [_mutate(*item) for item in items]
    data = ("\n".join(lines) + "\n").encode("utf-8", "surrogateescape")
    config = CONFIGS[name]
    assert summarize_bytes(data, config).to_dict() == full(lines_of(data), config)


def test_invalid_bytes_and_blank_lines() -> None:
    data = b"\n\n" + generated(50, seed=5) + b"\xff\xfe garbage IN=\n\n" + generated(5, seed=6)
    assert summarize_bytes(data).to_dict() == full(lines_of(data), SummaryConfig())


# -- splitting: any line boundary, any block size ---------------------------------------------
@settings(max_examples=40, deadline=None, derandomize=True)
@given(st.lists(st.integers(0, 10**9), max_size=4), st.integers(1, 4096))
def test_split_points_merge_to_the_same(cuts: list[int], block: int) -> None:
    data = _SPLIT_DATA
    starts = [0] + [data.index(b"\n", c % len(data)) + 1 for c in cuts] + [len(data)]
    starts = sorted(set(starts))
    merged = Summary(CONFIGS["gateway"])
    for a, b in itertools.pairwise(starts):
        engine = BlockSummarizer(CONFIGS["gateway"])
        for start in range(a, b, block):  # blocks that end mid-line
            engine.feed(data[start : min(b, start + block)])
        merged.merge(engine.finish())
    assert merged.to_dict() == _SPLIT_EXPECTED


_SPLIT_DATA = generated(400, seed=8, sources=40, rate=0.2)
_SPLIT_EXPECTED = full(lines_of(_SPLIT_DATA), CONFIGS["gateway"])


def test_split_ranges_start_on_lines(tmp_path: Path) -> None:
    path = tmp_path / "kern.log"
    path.write_bytes(_SPLIT_DATA)
    ranges = split_ranges(path, 7)
    assert ranges[0][0] == 0 and ranges[-1][1] == len(_SPLIT_DATA)
    for (_a, b), (c, _d) in itertools.pairwise(ranges):
        assert b == c and _SPLIT_DATA[c - 1 : c] == b"\n"
    assert split_ranges(tmp_path / "kern.log", 1) == [(0, len(_SPLIT_DATA))]


def test_parallel_workers_gzip_and_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(parallel, "PARALLEL_MIN", 0)
    monkeypatch.setattr(parallel, "BLOCK_SIZE", 4096)
    plain = tmp_path / "kern.log"
    plain.write_bytes(_SPLIT_DATA)
    packed = tmp_path / "kern.log.2.gz"
    other = generated(300, seed=12, sources=30, rate=0.2)
    packed.write_bytes(gzip.compress(other))
    seen: list[tuple[int, int]] = []
    got = summarize_paths(
        [packed, plain], CONFIGS["gateway"], jobs=2, progress=lambda d, t: seen.append((d, t))
    )
    expected = full(lines_of(other) + lines_of(_SPLIT_DATA), CONFIGS["gateway"])
    assert got.to_dict() == expected
    assert seen and seen[-1][0] == seen[-1][1] == plain.stat().st_size + packed.stat().st_size


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    from nfkit.errors import ConfigError

    with pytest.raises(ConfigError, match="cannot read log"):
        summarize_paths([tmp_path / "absent.log"])


def test_year_reference_reaches_the_workers() -> None:
    """December lines read in January belong to the year before, in every worker."""
    data = generated(200, seed=13, start=datetime(2026, 12, 31, 23, 59), rate=1.0)
    january = datetime(2027, 1, 1, 0, 30)
    fast = summarize_bytes(data, reference=january).to_dict()
    stream = iter_records(lines_of(data), reference=january)
    assert min(s["first_seen"] for s in fast["sources"]).startswith("2026-12-31")
    assert max(s["last_seen"] for s in fast["sources"]).startswith("2027-01-01")
    assert summarize_records(stream).to_dict()["sources"] == fast["sources"]


# -- progress bar -------------------------------------------------------------------------------
class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_only_on_a_terminal() -> None:
    assert progress_for(io.StringIO()) is None
    stream = _Tty()
    bar = progress_for(stream)
    assert isinstance(bar, Progress)
    bar(50, 100)
    bar(100, 100)
    assert "100.0%" in stream.getvalue() and "[" in stream.getvalue()
    bar.close()
    assert stream.getvalue().endswith("\r")


def test_fragments_and_other_protocols() -> None:
    """Fragments without a transport header, unknown protocols, SCTP ports, TCP fragments."""
    head = (
        "Nov 20 00:00:0{n} fw kernel: [ 1.{n}] nfkit:input:drop{inv} IN=eth0 OUT= "
        "MAC=52:54:00:00:00:10:52:54:00:00:00:01:08:00 SRC=198.51.100.{n} DST=192.168.1.10 "
        "LEN=1500 TOS=0x00 PREC=0x00 TTL=52 ID=4{n} "
    )
    tails = [
        "MF FRAG:185 PROTO=UDP ",
        "FRAG:370 PROTO=TCP ",
        "MF PROTO=UDP SPT=53 DPT=4444 LEN=4000 ",
        "DF PROTO=47 ",
        "PROTO=SCTP SPT=1 DPT=2905 LEN=20 ",
        "PROTO=ICMP SPT=1 DPT=2 LEN=3 ",
        "DF PROTO=ESP SPI=0x1234 ",
        "PROTO=UDPLITE SPT=5 DPT=6 LEN=7 UID=0 GID=0 MARK=0x1 ",
        "PROTO=TCP SPT=5 DPT=6 LEN=7 ",
    ]
    lines = [
        head.format(n=n, inv=inv) + tail
        for n in range(1, 4)
        for inv in ("", ":invalid")
        for tail in tails
    ]
    data = ("\n".join(lines) + "\n").encode()
    for config in CONFIGS.values():
        fast = summarize_bytes(data, config).to_dict()
        assert fast == full(lines, config)
    assert fast["records"] == len(lines)


def test_small_caches_and_frequent_flushes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Caches cleared and pending counters flushed many times: the same summary."""
    monkeypatch.setattr(fastpath, "_CACHE_LIMIT", 40)
    monkeypatch.setattr(fastpath, "_PENDING_LIMIT", 25)
    lines = lines_of(generated(1500, seed=14, sources=120, rate=0.5))
    lines[10:10] = ["Foo 31 99:99:99 fw kernel: " + lines[0].split("kernel: ", 1)[1]]
    lines[20:20] = [lines[5].replace("SRC=", "SRC=0", 1), "", "not a packet"]
    data = ("\n".join(lines) + "\n").encode()
    since = datetime(2026, 11, 20, 0, 10).astimezone()
    for config in CONFIGS.values():
        engine = BlockSummarizer(config, since)
        for start in range(0, len(data), 3000):
            engine.feed(data[start : start + 3000])
        assert engine.finish().to_dict() == full(lines, config, since)


def test_release_keeps_the_engine_correct() -> None:
    data = generated(400, seed=21, sources=40)
    middle = data.index(b"\n", len(data) // 2) + 1
    engine = BlockSummarizer()
    engine.feed(data[:middle])
    engine.finish()
    engine.release()  # caches dropped in the middle: later lines are read again from scratch
    engine.feed(data[middle:])
    assert engine.finish() == summarize_bytes(data)


def test_files_out_of_time_order_in_one_engine() -> None:
    # two hosts' logs, the second one earlier: the same sources seen in both (first and last
    # seen must take the earliest and the latest over both), as one engine reads a group
    later = generated(3000, seed=31, sources=25, start=datetime(2026, 11, 20, 12, 0))
    earlier = generated(3000, seed=32, sources=25, start=datetime(2026, 11, 20, 6, 0))
    config = CONFIGS["gateway"]
    engine = BlockSummarizer(config)
    for data in (later, earlier, later):
        for start in range(0, len(data), 8192):  # small blocks: many in-order blocks
            engine.feed(data[start : start + 8192])
        engine.finish()
    expected = full(lines_of(later) + lines_of(earlier) + lines_of(later), config)
    assert engine.summary.to_dict() == expected
