"""Partitioning log files: every line in exactly one partition, for any split."""

from __future__ import annotations

import gzip
import itertools
from pathlib import Path

import pytest
from fleetdata import CONFIG, write_host_log
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nfkit.errors import ConfigError
from nfkit.fleet.dask import summarize_partition
from nfkit.fleet.partition import Partition, group_partitions, plan_partitions, read_partition
from nfkit.fleet.summary import merge_summaries
from nfkit.logs.aggregate import Summary
from nfkit.logs.state import read_whole

LINE = st.binary(max_size=40).map(lambda b: b.replace(b"\n", b""))
CONTENT = st.builds(
    lambda lines, sep, tail: sep.join(lines) + (sep if tail else b""),
    st.lists(
        st.one_of(LINE, st.sampled_from([b"", b"\r", b"caf\xc3\xa9", b"\xff\xfe"])), max_size=30
    ),
    st.sampled_from([b"\n", b"\r\n"]),
    st.booleans(),
)


def check_plan(path: Path, parts: list[Partition]) -> None:
    """Contiguous, covering the file, each starting at a line start."""
    data = path.read_bytes()
    assert parts[0].start == 0
    assert parts[-1].end == len(data)
    for before, after in itertools.pairwise(parts):
        assert before.end == after.start
        assert before.end is not None and before.start < before.end
        assert data[after.start - 1 : after.start] == b"\n"


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(content=CONTENT, size=st.integers(1, 120))
def test_every_line_in_exactly_one_partition(tmp_path: Path, content: bytes, size: int) -> None:
    path = tmp_path / "kern.log"
    path.write_bytes(content)
    parts = plan_partitions([path], partition_bytes=size)
    check_plan(path, parts)
    split = [line for part in parts for line in read_partition(part)]
    assert split == list(read_whole(str(path)))


def test_a_line_longer_than_the_partition_size_stays_whole(tmp_path: Path) -> None:
    path = tmp_path / "kern.log"
    path.write_bytes(b"a\n" + b"x" * 500 + b"\nb\nc")
    parts = plan_partitions([path], partition_bytes=10)
    check_plan(path, parts)
    assert [list(read_partition(p)) for p in parts] == [["a", "x" * 500], ["b", "c"]]


def test_gzip_files_are_read_whole(tmp_path: Path) -> None:
    path = tmp_path / "kern.log.2.gz"
    path.write_bytes(gzip.compress(b"one\ntwo\n" * 1000))
    parts = plan_partitions([path], partition_bytes=16)
    assert parts == [Partition(str(path.resolve()), 0, None)]
    assert list(read_partition(parts[0])) == list(read_whole(str(path)))


def test_empty_file_is_one_empty_partition(tmp_path: Path) -> None:
    path = tmp_path / "empty.log"
    path.write_bytes(b"")
    parts = plan_partitions([path])
    assert len(parts) == 1 and list(read_partition(parts[0])) == []


def test_paths_are_made_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "k.log").write_text("x\n")
    monkeypatch.chdir(tmp_path)
    assert plan_partitions(["k.log"])[0].path == str((tmp_path / "k.log").resolve())


@pytest.mark.parametrize(
    ("name", "message"),
    [("missing.log", "cannot read log"), ("adir", "is a directory"), ("-", "standard input")],
)
def test_bad_paths_are_config_errors(tmp_path: Path, name: str, message: str) -> None:
    (tmp_path / "adir").mkdir()
    target = name if name == "-" else str(tmp_path / name)
    with pytest.raises(ConfigError, match=message):
        plan_partitions([target])


def test_nonpositive_partition_size_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "k.log").write_text("x\n")
    with pytest.raises(ConfigError, match="positive"):
        plan_partitions([tmp_path / "k.log"], partition_bytes=0)


def test_corrupt_gzip_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.gz"
    path.write_bytes(gzip.compress(b"line\n" * 100)[:-20])
    (part,) = plan_partitions([path])
    with pytest.raises(ConfigError, match=r"bad\.gz: cannot read log"):
        list(read_partition(part))


def test_partition_summaries_merge_to_the_whole_file(tmp_path: Path) -> None:
    path = write_host_log(tmp_path / "web1.log", "web1", 3000, seed=3)
    whole = Summary(CONFIG)
    whole.add_lines(read_whole(str(path)))
    parts = plan_partitions([path], partition_bytes=20_000)
    assert len(parts) > 10
    merged = merge_summaries([summarize_partition(p, CONFIG) for p in parts])
    assert merged == whole
    assert merged.lines == whole.lines == 3003


@given(sizes=st.lists(st.integers(1, 1000), min_size=1, max_size=60), groups=st.integers(1, 20))
def test_groups_keep_order_and_cover_every_partition(sizes: list[int], groups: int) -> None:
    bounds = list(itertools.accumulate([0, *sizes]))
    parts = [Partition("/x", a, b) for a, b in itertools.pairwise(bounds)]
    grouped = group_partitions(parts, groups)
    assert [p for group in grouped for p in group] == parts
    assert all(grouped) and len(grouped) <= groups
    if len(set(sizes)) == 1:
        assert len(grouped) == min(groups, len(parts))
        assert max(map(len, grouped)) - min(map(len, grouped)) <= 1
