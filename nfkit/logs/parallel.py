"""Run the fast engine over files: byte ranges on several cores, ``.gz`` and standard input.

:func:`summarize_paths` is what ``nfkit summarize`` runs for whole files. Plain files larger than
8 MiB are cut into byte ranges on line boundaries (:func:`split_ranges`). With the native scanner
(:mod:`nfkit.logs.native`) one thread per range feeds its own
:class:`~nfkit.logs.nativepath.NativeLane` into one shared
:class:`~nfkit.logs.fastpath.BlockSummarizer`: the scanner gives up the GIL, so the threads use
the cores and there is one summary in memory. Without it, one worker process per range (``fork``
on Linux) returns a partial :class:`~nfkit.logs.aggregate.Summary`, which the parent merges as
it arrives (merging is exact below ``max_sources``). ``.gz`` files and standard input are read
in one stream in this process.
"""

from __future__ import annotations

import gc
import gzip
import multiprocessing
import os
import sys
import threading
import zlib
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from itertools import pairwise
from pathlib import Path
from typing import Any

from nfkit.errors import LogReadError
from nfkit.logs import native
from nfkit.logs.aggregate import Summary, SummaryConfig
from nfkit.logs.fastpath import BLOCK_SIZE, BlockSummarizer

__all__ = ["PARALLEL_MIN", "read_range", "split_ranges", "summarize_paths"]

#: A log smaller than this is not worth starting worker processes for.
PARALLEL_MIN = 8 << 20


def split_ranges(path: str | os.PathLike[str], parts: int) -> list[tuple[int, int]]:
    """Cut a file into about ``parts`` byte ranges, each starting at the start of a line."""
    size = Path(path).stat().st_size
    if size == 0:
        return []
    cuts = [0]
    with Path(path).open("rb") as handle:
        for part in range(1, parts):
            handle.seek(max(cuts[-1], size * part // parts))
            handle.readline()
            position = handle.tell()
            if position >= size:
                break
            if position > cuts[-1]:
                cuts.append(position)
    cuts.append(size)
    return list(pairwise(cuts))


def read_range(path: str, start: int, end: int, size: int | None = None) -> Iterator[bytes]:
    """The bytes ``path[start:end]`` in blocks of ``size`` (default the engine's block); fewer
    if the file shrank since ``end`` was measured. ``OSError`` is the caller's to report."""
    size = size or BLOCK_SIZE
    with Path(path).open("rb") as handle:
        handle.seek(start)
        left = end - start
        while left > 0:
            chunk = handle.read(min(size, left))
            if not chunk:
                break
            left -= len(chunk)
            yield chunk


def _read_range(
    path: str, start: int, end: int, feed: Callable[[bytes], None], done: Callable[[int], None]
) -> None:
    """Feed ``path[start:end]`` block by block; ``done(n)`` after each ``n`` bytes."""
    for chunk in read_range(path, start, end):
        feed(chunk)
        done(len(chunk))


def _read_stream(
    read: Callable[[int], bytes], feed: Callable[[bytes], None], done: Callable[[int], None]
) -> None:
    while True:
        chunk = read(BLOCK_SIZE)
        if not chunk:
            break
        feed(chunk)
        done(len(chunk))


# Set in each worker process by _init_worker (fork or spawn alike).
_WORKER: dict[str, Any] = {}


def _init_worker(
    config: SummaryConfig, since: datetime | None, reference: datetime | None, counter: Any
) -> None:
    _WORKER.update(config=config, since=since, reference=reference, counter=counter)


def _work(task: tuple[str, int, int]) -> Summary:
    path, start, end = task
    engine = BlockSummarizer(_WORKER["config"], _WORKER["since"], _WORKER["reference"])
    counter = _WORKER["counter"]

    def done(size: int) -> None:
        with counter.get_lock():
            counter.value += size

    _read_range(path, start, end, engine.feed, done)
    summary = engine.finish()
    engine.release()
    return summary


def summarize_paths(
    paths: Iterable[str | os.PathLike[str]],
    config: SummaryConfig | None = None,
    since: datetime | None = None,
    *,
    jobs: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    reference: datetime | None = None,
) -> Summary:
    """Summarise log files (plain, ``.gz``, or ``-`` for standard input) on ``jobs`` cores.

    Equal to ``Summary.add_lines(read_whole(path), since)`` for each path. ``jobs`` defaults
    to the number of CPUs; plain files are split into byte ranges on line boundaries, one
    thread (native scanner) or worker process (without it) per range at a time.
    ``progress(done, total)`` is called with bytes read
    (for :class:`~nfkit.logs.progress.Progress`). ``reference`` is "now" for syslog years
    (default: that of :func:`parse_line`, which forked workers share).
    """
    summary = Summary(config)
    config = summary.config
    jobs = max(1, jobs or os.cpu_count() or 1)
    names = [os.fspath(p) for p in paths]
    total = 0
    for name in names:
        if name != "-":
            try:
                total += Path(name).stat().st_size
            except OSError as exc:
                raise LogReadError(f"{name}: cannot read log: {exc.strerror or exc}") from None
    finished = 0

    def done(size: int) -> None:
        nonlocal finished
        finished += size
        if progress is not None:
            progress(finished, total)

    # Threads share one summary, so a small file is worth a task of its own; worker processes
    # each return a summary to merge, which only a large range is worth.
    threads = native.available()
    # Files read here share one engine (finish() after each keeps a last line without newline
    # apart); parallel parts are merged into it, or the first part becomes the result.
    engine = BlockSummarizer(config, since, reference)
    used = False
    tasks: list[tuple[str, int, int]] = []
    for name in names:
        try:
            if name == "-":
                stdin = getattr(sys.stdin, "buffer", None)
                if stdin is None:
                    raise LogReadError("<stdin>: cannot read log: standard input is closed")
                _read_stream(stdin.read, engine.feed, done)
            elif name.endswith(".gz"):
                with gzip.open(name, "rb") as handle:
                    _read_stream(handle.read, engine.feed, lambda _size: None)
                done(Path(name).stat().st_size)
            elif jobs == 1 or (Path(name).stat().st_size < PARALLEL_MIN and not threads):
                _read_range(name, 0, Path(name).stat().st_size, engine.feed, done)
            elif Path(name).stat().st_size < PARALLEL_MIN:  # a thread's task, whole
                size = Path(name).stat().st_size
                if size:
                    tasks.append((name, 0, size))
                continue
            else:
                tasks.extend((name, a, b) for a, b in split_ranges(name, jobs))
                continue
        except (OSError, EOFError, zlib.error) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
            raise LogReadError(f"{name}: cannot read log: {reason}") from None
        engine.finish()
        used = True
    result = engine.summary if used else None
    if tasks and threads:
        return _run_threads(engine, tasks, jobs, done)
    if tasks:
        result = _run_parallel(result, config, tasks, jobs, since, reference, done)
    return result if result is not None else engine.summary


def _run_threads(
    engine: BlockSummarizer,
    tasks: list[tuple[str, int, int]],
    jobs: int,
    done: Callable[[int], None],
) -> Summary:
    """Run ``tasks`` on ``jobs`` threads, each with a native lane into ``engine``'s summary.

    The scanner gives up the GIL while it cuts and counts, so the threads use several cores;
    one summary in one process keeps the memory that of a single summary.
    """
    _number_slots(engine, tasks)
    queue = list(reversed(tasks))
    lock = threading.Lock()
    errors: list[BaseException] = []

    def work() -> None:
        path = ""
        try:
            while True:
                with lock:
                    if not queue or errors:
                        return
                    path, start, end = queue.pop()
                lane = engine.lane()
                assert lane is not None
                for chunk in read_range(path, start, end):
                    lane.feed(chunk)
                    with lock:
                        done(len(chunk))
                lane.finish()
                lane.scanner.close()  # its tables are in the summary now
        except OSError as exc:  # as the reader in this thread words it
            with lock:
                errors.append(LogReadError(f"{path}: cannot read log: {exc.strerror or exc}"))
        except BaseException as exc:  # handed to the caller's thread
            with lock:
                errors.append(exc)

    enabled = gc.isenabled()
    gc.disable()  # the threads make no cycles; a collection would walk the whole summary
    try:
        threads = [threading.Thread(target=work, daemon=True) for _ in range(jobs)]
        for thread in threads:
            thread.start()
        for thread in threads:
            while thread.is_alive():
                thread.join(0.2)
        if errors:
            raise errors[0] from None
        engine.drain()  # nor does moving the sources out of the store
    finally:
        if enabled:
            gc.enable()
    native.release_memory()
    return engine.summary


#: At most this many time slots are numbered ahead (a year of 5-minute slots is 105,120).
_SLOTS_AHEAD = 1 << 17


def _number_slots(engine: BlockSummarizer, tasks: list[tuple[str, int, int]]) -> None:
    """Number the time slots between the first and the last line of the ranges in time order,
    before the threads number them as they meet them (each from another part of the file).
    Only an order: the scan search then finds each source's keys in time order and need not
    sort them. Slots no line uses are left out of every report."""
    times: list[float] = []
    for path, start, end in tasks:
        try:
            with Path(path).open("rb") as handle:
                handle.seek(start)
                first = handle.readline()
                handle.seek(max(start, end - 65536))
                last = handle.read(end - handle.tell()).rstrip(b"\n").rsplit(b"\n", 1)[-1]
        except OSError:
            continue  # the thread reading it reports the error
        for line in (first, last):
            record = engine.parse_one(line.decode("utf-8", "replace"))
            if record is not None and record.timestamp is not None:
                times.append(record.timestamp.timestamp())
    if not times:
        return
    seconds = engine.config.slot_seconds
    low, high = int(min(times) // seconds), int(max(times) // seconds)
    if high - low < _SLOTS_AHEAD:
        activity = engine.summary.activity
        for slot in range(low, high + 1):
            activity.slot_bits(slot)


def _run_parallel(
    summary: Summary | None,
    config: SummaryConfig,
    tasks: list[tuple[str, int, int]],
    jobs: int,
    since: datetime | None,
    reference: datetime | None,
    done: Callable[[int], None],
) -> Summary | None:
    """Run ``tasks`` on a pool; merge the parts into ``summary`` as they come."""
    context = multiprocessing.get_context("fork" if sys.platform == "linux" else "spawn")
    counter = context.Value("q", 0)
    # One task per process: a worker that has sent its part exits and gives its memory back.
    with context.Pool(
        min(jobs, len(tasks)),
        initializer=_init_worker,
        initargs=(config, since, reference, counter),
        maxtasksperchild=1,
    ) as pool:
        iterator = pool.imap_unordered(_work, tasks)
        reported = 0
        while True:
            try:
                part = iterator.next(timeout=0.2)
            except multiprocessing.TimeoutError:
                pass
            except StopIteration:
                break
            else:
                # as they come: the first part is the result, the others merge into it
                summary = part if summary is None else summary.merge(part)
            value = counter.value
            if value > reported:
                done(value - reported)
                reported = value
    return summary
