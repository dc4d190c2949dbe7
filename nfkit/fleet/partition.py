"""Split log files into byte ranges that start and end on line boundaries.

A plain file larger than ``partition_bytes`` is cut near every multiple of that size, each cut
moved forward to just after the next newline, so every line lies in exactly one partition and
no partition starts inside a line. A ``.gz`` file cannot be entered in the middle: it is one
partition, read whole.

:func:`read_partition` yields a partition's lines exactly as
:func:`nfkit.logs.state.read_whole` yields them for the whole file (split on ``\\n``, each line
decoded as UTF-8 with bad bytes replaced, a last line without newline included), so summarising
the partitions one after another gives the same counts as reading the file in one go.

The plan is made where the files are visible (the Dask client); the workers must see the same
paths (a shared or identical file system).
"""

from __future__ import annotations

import gzip
import itertools
import os
import zlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from nfkit.errors import ConfigError
from nfkit.logs.parallel import read_range

__all__ = [
    "DEFAULT_PARTITION_BYTES",
    "Partition",
    "group_partitions",
    "plan_partitions",
    "read_partition",
    "read_partition_bytes",
]

#: Default partition size: large enough that scheduling costs nothing next to parsing
#: (about 250,000 lines, a few seconds of work), small enough to spread a big file.
DEFAULT_PARTITION_BYTES = 64 << 20
_CHUNK = 4 << 20


@dataclass(frozen=True, slots=True, order=True)
class Partition:
    """Bytes ``[start, end)`` of ``path``; ``end`` is None for a whole ``.gz`` file."""

    path: str
    start: int = 0
    end: int | None = None

    @property
    def compressed(self) -> bool:
        """True for a gzip file (always read whole)."""
        return self.path.endswith(".gz")

    @property
    def size(self) -> int | None:
        """Bytes in the range (None for a compressed file)."""
        return None if self.end is None else self.end - self.start

    def __str__(self) -> str:
        if self.end is None:
            return self.path
        return f"{self.path}[{self.start}:{self.end}]"


def _next_line_start(handle: IO[bytes], offset: int, size: int) -> int:
    """The offset of the first line starting at or after ``offset`` (``size`` if none)."""
    if offset <= 0:
        return 0
    handle.seek(offset - 1)
    position = offset - 1
    while position < size:
        chunk = handle.read(min(_CHUNK, size - position))
        if not chunk:
            break
        newline = chunk.find(b"\n")
        if newline >= 0:
            return position + newline + 1
        position += len(chunk)
    return size


def split_file(path: str, partition_bytes: int = DEFAULT_PARTITION_BYTES) -> list[Partition]:
    """The partitions of one file (raises ``OSError`` when it cannot be read)."""
    if partition_bytes <= 0:
        raise ConfigError(f"partition size must be positive, not {partition_bytes}")
    if path.endswith(".gz"):
        Path(path).stat()  # fail early, on the client, when it is missing
        return [Partition(path, 0, None)]
    with Path(path).open("rb") as handle:
        size = os.fstat(handle.fileno()).st_size
        bounds = [0]
        for nominal in range(partition_bytes, size, partition_bytes):
            cut = _next_line_start(handle, nominal, size)
            if cut > bounds[-1] and cut < size:
                bounds.append(cut)
        bounds.append(size)
    return [Partition(path, start, end) for start, end in itertools.pairwise(bounds)]


def plan_partitions(
    paths: Iterable[str | os.PathLike[str]], partition_bytes: int = DEFAULT_PARTITION_BYTES
) -> list[Partition]:
    """Partitions of every file, in the order given; raise ``ConfigError`` for a bad path.

    Paths are made absolute so that workers started elsewhere find the same files.
    """
    out: list[Partition] = []
    for given in paths:
        name = os.fspath(given)
        if name == "-":
            raise ConfigError("standard input ('-') cannot be partitioned: name files")
        path = Path(name)
        if path.is_dir():
            raise ConfigError(f"{name}: is a directory, not a log file")
        try:
            out += split_file(str(path.resolve()), partition_bytes)
        except OSError as exc:
            raise ConfigError(f"{name}: cannot read log: {exc.strerror or exc}") from None
    return out


#: A gzip'ed log is about this many times larger once decompressed (for grouping only).
_GZIP_RATIO = 8


def _weight(partition: Partition) -> int:
    if partition.end is not None:
        return max(1, partition.end - partition.start)
    try:
        return max(1, Path(partition.path).stat().st_size * _GZIP_RATIO)
    except OSError:
        return 1


def group_partitions(partitions: Sequence[Partition], groups: int) -> list[list[Partition]]:
    """Cut ``partitions`` into at most ``groups`` runs of about equal size, keeping the order.

    One task per group saves shipping and merging a partial summary per partition when the
    input is many small files.
    """
    if not partitions:
        return []
    groups = max(1, min(groups, len(partitions)))
    weights = [_weight(p) for p in partitions]
    target = sum(weights) / groups
    out: list[list[Partition]] = [[]]
    filled = 0
    for partition, weight in zip(partitions, weights, strict=True):
        if out[-1] and filled + weight / 2 > target * len(out) and len(out) < groups:
            out.append([])
        out[-1].append(partition)
        filled += weight
    return out


def _split_lines(chunks: Iterable[bytes]) -> Iterator[str]:
    rest = b""
    for chunk in chunks:
        lines = (rest + chunk).split(b"\n")
        rest = lines.pop()
        for raw in lines:
            yield raw.decode("utf-8", "replace")
    if rest:
        yield rest.decode("utf-8", "replace")


def _gzip_chunks(path: str) -> Iterator[bytes]:
    with gzip.open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            yield chunk


def read_partition_bytes(partition: Partition) -> Iterator[bytes]:
    """The bytes of ``partition`` (decompressed) in chunks of up to 4 MiB, the fast engine's
    block; ``ConfigError`` if the file cannot be read."""
    if partition.end is None:
        chunks = _gzip_chunks(partition.path)
    else:
        chunks = read_range(partition.path, partition.start, partition.end, _CHUNK)
    try:
        yield from chunks
    except (OSError, EOFError, zlib.error) as exc:
        raise ConfigError(f"{partition.path}: cannot read log: {exc}") from None


def read_partition(partition: Partition) -> Iterator[str]:
    """The lines of ``partition`` without newlines; ``ConfigError`` if the file cannot be read."""
    return _split_lines(read_partition_bytes(partition))
