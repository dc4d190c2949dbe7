"""Summarise many hosts' logs on a Dask ``distributed`` cluster.

The input files are cut into :class:`~nfkit.fleet.partition.Partition` byte ranges on line
boundaries (``.gz`` files whole); each worker task reads one partition and runs the same parser
and aggregation as a single-process run; the partial summaries are merged on the workers, a few
at a time, in partition order. Because summaries merge exactly, the result equals a
single-process run on the same input.

Engines (``engine=``): ``"fast"`` is the multi-core fast path's
:class:`~nfkit.logs.fastpath.BlockSummarizer` (what ``nfkit summarize`` runs on a big file),
``"lines"`` is :meth:`Summary.add_lines` (the record-by-record reference); ``"auto"`` is the
fast one. Both give equal summaries (tested). With a fleet file the
records are routed to per-host summaries by :func:`~nfkit.fleet.summary.summarize_by_host`.
Every task is given the same ``reference`` time for the year of syslog dates, so workers whose
clocks or start times differ still agree.

Only summaries travel: a worker returns its partial :class:`Summary` (counters, a few MB at
most), never records. The files must be readable under the same path on the client (which
plans the partitions) and on every worker (a shared or replicated file system).

``distributed`` is an optional dependency: ``pip install 'nfkit[fleet]'``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

from nfkit.errors import ConfigError, DaskError, NfkitError
from nfkit.fleet.fleetfile import Fleet
from nfkit.fleet.partition import (
    DEFAULT_PARTITION_BYTES,
    Partition,
    group_partitions,
    plan_partitions,
)
from nfkit.fleet.partition import read_partition as _read_partition
from nfkit.fleet.partition import read_partition_bytes as _read_partition_bytes
from nfkit.fleet.summary import FleetSummary, combine, merge_summaries, summarize_by_host
from nfkit.logs.aggregate import Summary, SummaryConfig
from nfkit.logs.fastpath import BlockSummarizer

if TYPE_CHECKING:
    from distributed import Client, Future

__all__ = [
    "DaskError",
    "summarize_fleet_on_dask",
    "summarize_on_dask",
    "summarize_partition",
    "summarize_partition_by_host",
    "summarize_partitions",
    "summarize_partitions_by_host",
]

#: Partial summaries merged by one task (a tree of this fan-in: 64 partitions -> 8 -> 1).
FAN_IN = 8
#: Tasks per worker thread: partitions are grouped into this many runs per thread, so that
#: 50 small host files do not ship and merge 50 partial summaries, while the load still
#: balances when one worker is slower.
TASKS_PER_THREAD = 4
#: Seconds to wait for the scheduler to answer.
CONNECT_TIMEOUT = 10
#: Seconds to wait when closing a client whose connection failed.
CLOSE_TIMEOUT = 5

ENGINES = ("auto", "fast", "lines")

T = TypeVar("T")
#: Exceptions from these packages are the cluster failing, not nfkit: reported without traceback.
_CLUSTER_MODULES = frozenset({"distributed", "dask", "concurrent", "asyncio", "tornado"})


def _check_engine(engine: str) -> None:
    if engine not in ENGINES:
        raise ConfigError(f"unknown engine {engine!r} (expected one of {', '.join(ENGINES)})")


def summarize_partition(
    partition: Partition,
    config: SummaryConfig,
    since: datetime | None = None,
    reference: datetime | None = None,
    engine: str = "auto",
) -> Summary:
    """Summarise one partition exactly as ``nfkit summarize`` does a file (a worker task)."""
    return summarize_partitions([partition], config, since, reference, engine)


def summarize_partition_by_host(
    partition: Partition,
    config: SummaryConfig,
    fleet: Fleet | None = None,
    since: datetime | None = None,
) -> FleetSummary:
    """Summarise one partition per host (a worker task)."""
    return summarize_by_host(_read_partition(partition), config, fleet, since)


def summarize_partitions(
    partitions: Sequence[Partition],
    config: SummaryConfig,
    since: datetime | None = None,
    reference: datetime | None = None,
    engine: str = "auto",
) -> Summary:
    """Summarise a run of partitions in order, into one summary (a worker task).

    One engine reads them all, its caches warm from one partition to the next, and no partial
    summaries are merged: the same result as merging one summary per partition (merging is
    exact), for less work.
    """
    _check_engine(engine)
    if engine == "lines":
        summary = Summary(config)
        for partition in partitions:
            summary.add_lines(_read_partition(partition), since=since)
        return summary
    block = BlockSummarizer(config, since, reference)
    for partition in partitions:
        for chunk in _read_partition_bytes(partition):
            block.feed(chunk)
        block.finish()  # a last line without newline stays apart from the next partition
    block.release()
    return block.summary


def summarize_partitions_by_host(
    partitions: Sequence[Partition],
    config: SummaryConfig,
    fleet: Fleet | None = None,
    since: datetime | None = None,
) -> FleetSummary:
    """Summarise a run of partitions per host, in order (a worker task)."""
    result = FleetSummary(config)
    for partition in partitions:
        result.update(summarize_partition_by_host(partition, config, fleet, since))
    return result


@contextmanager
def _client(scheduler: str | Client) -> Iterator[Client]:
    """Use the given client, or connect to the scheduler address and close afterwards."""
    try:
        from distributed import Client
    except ImportError:
        raise ConfigError(
            "Dask is not installed: pip install 'nfkit[fleet]' (or the 'distributed' package)"
        ) from None
    if isinstance(scheduler, Client):
        yield scheduler
        return
    if not isinstance(scheduler, str) or not scheduler.strip():
        raise ConfigError(f"invalid Dask scheduler address {scheduler!r}")
    # Made in two steps so that a client whose constructor fails (a bad address scheme, an
    # unreachable scheduler) can still be closed here: left to ``Client.__del__`` it waits
    # 20 s at exit, then prints a TimeoutError traceback.
    client = Client.__new__(Client)
    try:
        Client.__init__(  # type: ignore[no-untyped-call]  # distributed leaves it untyped
            client, scheduler, timeout=CONNECT_TIMEOUT, set_as_default=False
        )
    except (OSError, TimeoutError, ValueError, TypeError) as exc:
        _close_quietly(client)
        raise ConfigError(
            f"cannot reach the Dask scheduler at {scheduler}: {exc or type(exc).__name__}"
        ) from None
    except BaseException:
        _close_quietly(client)
        raise
    with client:
        yield client


def _close_quietly(client: Client) -> None:
    """Close a client whose constructor failed; never raise (the constructor's error wins)."""
    if getattr(client, "_loop_runner", None) is None:
        return  # failed before it had an event loop: nothing to close (``__del__`` agrees)
    with suppress(Exception):  # a half-made client may fail to close: nothing more to do
        client.close(timeout=CLOSE_TIMEOUT)  # type: ignore[no-untyped-call]


def _reduce(client: Client, futures: list[Future[Any]], merge: Callable[..., Any]) -> Any:
    """Merge ``futures`` on the cluster in a tree of :data:`FAN_IN`, keeping their order."""
    while len(futures) > 1:
        futures = [
            client.submit(merge, futures[i : i + FAN_IN], pure=False)
            for i in range(0, len(futures), FAN_IN)
        ]
    return futures[0].result()


def _merge_list(parts: Sequence[Summary]) -> Summary:
    return merge_summaries(parts)


def _run(
    client_or_address: str | Client,
    partitions: Sequence[Partition],
    task: Callable[..., T],
    merge: Callable[[Sequence[T]], T],
    **kwargs: Any,
) -> T:
    with _client(client_or_address) as client:
        try:
            threads = sum(client.nthreads().values()) or 1  # type: ignore[no-untyped-call]
            groups = group_partitions(partitions, threads * TASKS_PER_THREAD)
            futures = [client.submit(task, group, pure=False, **kwargs) for group in groups]
            result: T = _reduce(client, futures, merge)
        except NfkitError:
            raise
        except (OSError, TimeoutError) as exc:
            raise DaskError(f"the Dask cluster failed the run: {exc}") from None
        except Exception as exc:
            # KilledWorker, CancelledError, FutureCancelledError...: no traceback for these.
            if type(exc).__module__.split(".")[0] in _CLUSTER_MODULES:
                raise DaskError(
                    f"the Dask cluster failed the run: {type(exc).__name__}: {exc}"
                ) from None
            raise
    return result


def summarize_on_dask(
    paths: Iterable[str | os.PathLike[str]],
    scheduler_address_or_client: str | Client,
    config: SummaryConfig | None = None,
    fleet: Fleet | None = None,
    *,
    since: datetime | None = None,
    partition_bytes: int = DEFAULT_PARTITION_BYTES,
    engine: str = "auto",
    reference: datetime | None = None,
) -> Summary:
    """Summarise log files on a Dask cluster; equals a single-process run on the same input.

    ``scheduler_address_or_client`` is ``tcp://host:8786`` or a ``distributed.Client``. With
    ``fleet`` each host is attributed with its segment from the fleet file (use
    :func:`summarize_fleet_on_dask` to see the hosts apart and those missing from the file).
    ``engine`` is ``auto``, ``fast`` or ``lines`` (see the module docstring); ``reference`` is
    "now" for syslog years (default: now, the same for every task).

    Raises ``ConfigError`` for an unreadable file or an unreachable scheduler, ``DaskError``
    when the cluster fails the run.
    """
    _check_engine(engine)
    config = config or SummaryConfig()
    if fleet is not None:
        return summarize_fleet_on_dask(
            paths,
            scheduler_address_or_client,
            config,
            fleet,
            since=since,
            partition_bytes=partition_bytes,
        ).merged()
    partitions = plan_partitions(paths, partition_bytes)
    if not partitions:
        return Summary(config)
    return _run(
        scheduler_address_or_client,
        partitions,
        summarize_partitions,
        _merge_list,
        config=config,
        since=since,
        reference=reference or datetime.now(),
        engine=engine,
    )


def summarize_fleet_on_dask(
    paths: Iterable[str | os.PathLike[str]],
    scheduler_address_or_client: str | Client,
    config: SummaryConfig | None = None,
    fleet: Fleet | None = None,
    *,
    since: datetime | None = None,
    partition_bytes: int = DEFAULT_PARTITION_BYTES,
) -> FleetSummary:
    """Like :func:`summarize_on_dask`, but keep one summary per host (for correlation).

    Equals :func:`~nfkit.fleet.summary.summarize_by_host` run in one process on the lines of
    every file in order.
    """
    config = config or SummaryConfig()
    if fleet is not None:
        fleet.check_attribution()
    partitions = plan_partitions(paths, partition_bytes)
    if not partitions:
        return FleetSummary(config)
    return _run(
        scheduler_address_or_client,
        partitions,
        summarize_partitions_by_host,
        combine,
        config=config,
        fleet=fleet,
        since=since,
    )
