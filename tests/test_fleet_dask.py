"""Summaries on a real ``distributed.LocalCluster`` (worker processes) equal one-process runs."""

from __future__ import annotations

import argparse
import itertools
import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from fleetdata import CONFIG, write_host_log

from nfkit.errors import ConfigError
from nfkit.fleet import cli as fleet_cli
from nfkit.fleet import dask as fleet_dask
from nfkit.fleet.dask import summarize_fleet_on_dask, summarize_on_dask
from nfkit.fleet.fleetfile import Fleet
from nfkit.fleet.partition import plan_partitions
from nfkit.fleet.summary import summarize_by_host
from nfkit.logs.aggregate import Summary
from nfkit.logs.state import read_whole

distributed = pytest.importorskip("distributed")

FLEET = Fleet.from_mapping(
    {
        "segments": {
            "lan": {"networks": ["192.168.1.0/24"], "gateway_macs": ["52:54:00:00:00:01"]}
        },
        "hosts": {"web1": "lan", "web2": {"segment": "lan", "own_macs": ["52:54:00:00:00:10"]}},
    }
)


@pytest.fixture(scope="module")
def client() -> Iterator[object]:
    """Three single-threaded worker processes on loopback, closed afterwards."""
    with (
        distributed.LocalCluster(
            n_workers=3,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address="127.0.0.1:0",
            silence_logs=40,
        ) as cluster,
        distributed.Client(cluster) as connected,
    ):
        yield connected


@pytest.fixture(scope="module")
def logs(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Three hosts (one not in FLEET), one rotated copy gzipped."""
    base = tmp_path_factory.mktemp("fleet-logs")
    return [
        write_host_log(base / "web1.log", "web1", 4000, seed=1),
        write_host_log(base / "web2.log", "web2", 3000, seed=2),
        write_host_log(base / "web2.log.1.gz", "web2", 1000, seed=3),
        write_host_log(base / "db9.log", "db9", 2000, seed=4),
    ]


def one_process(paths: list[Path]) -> Summary:
    """What ``nfkit summarize PATHS`` computes."""
    summary = Summary(CONFIG)
    for path in paths:
        summary.add_lines(read_whole(str(path)))
    return summary


@pytest.mark.parametrize("engine", ["fast", "lines"])
def test_dask_equals_single_process(client: object, logs: list[Path], engine: str) -> None:
    expected = one_process(logs)
    result = summarize_on_dask(logs, client, CONFIG, partition_bytes=64 << 10, engine=engine)
    assert result == expected
    assert result.lines == 10_012 and result.records == 10_000
    assert result.by_origin == expected.by_origin and result.scans() == expected.scans()


def test_partitions_run_on_several_worker_processes(client: object, logs: list[Path]) -> None:
    from nfkit.fleet.partition import group_partitions

    partitions = plan_partitions(logs, 16 << 10)
    groups = group_partitions(partitions, 3 * fleet_dask.TASKS_PER_THREAD)
    assert len(partitions) > len(groups) == 12
    with distributed.get_task_stream(client) as stream:
        summarize_on_dask(logs, client, CONFIG, partition_bytes=16 << 10)
    tasks = [t for t in stream.data if str(t["key"]).startswith("summarize_partitions-")]
    assert len(tasks) == len(groups)
    assert len({t["worker"] for t in tasks}) >= 2


def test_scheduler_address_string(client: object, logs: list[Path]) -> None:
    address = client.scheduler.address
    assert summarize_on_dask(logs[:1], address, CONFIG) == one_process(logs[:1])


def test_fleet_on_dask_equals_fleet_in_one_process(client: object, logs: list[Path]) -> None:
    lines = itertools.chain.from_iterable(read_whole(str(p)) for p in logs)
    expected = summarize_by_host(lines, CONFIG, FLEET)
    result = summarize_fleet_on_dask(logs, client, CONFIG, FLEET, partition_bytes=100 << 10)
    assert result == expected
    assert sorted(result.hosts) == ["-", "db9", "web1", "web2"]
    assert result.segments == {"-": None, "db9": None, "web1": "lan", "web2": "lan"}
    # the host missing from the fleet file is reported, and attributed without a segment
    assert result.unmapped == {"db9": 2000}
    assert "peer" not in result.hosts["db9"].by_origin
    assert "upstream" not in result.hosts["db9"].by_origin
    assert result.hosts["web1"].by_origin["upstream"] > 0
    merged = summarize_on_dask(logs, client, CONFIG, FLEET, partition_bytes=100 << 10)
    assert merged == expected.merged()
    assert merged.lines == 10_012


def test_unreadable_file_is_a_config_error_before_the_cluster(
    client: object, tmp_path: Path
) -> None:
    with pytest.raises(ConfigError, match="cannot read log"):
        summarize_on_dask([tmp_path / "nope.log"], client, CONFIG)


def test_unreachable_scheduler_is_a_config_error(
    logs: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fleet_dask, "CONNECT_TIMEOUT", 1)
    with pytest.raises(ConfigError, match="cannot reach the Dask scheduler"):
        summarize_on_dask(logs[:1], "tcp://127.0.0.1:9", CONFIG)


def test_file_vanishing_after_the_plan_is_a_config_error_from_the_worker(
    client: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from nfkit.fleet import partition

    path = write_host_log(tmp_path / "gone.log", "web1", 100, seed=9)
    plan = partition.plan_partitions

    def plan_then_delete(paths: list[Path], size: int) -> list[partition.Partition]:
        parts = plan(paths, size)
        path.unlink()
        return parts

    monkeypatch.setattr(fleet_dask, "plan_partitions", plan_then_delete)
    with pytest.raises(ConfigError, match=r"gone\.log: cannot read log"):
        summarize_on_dask([path], client, CONFIG, engine="lines")


def test_unknown_engine(client: object, logs: list[Path]) -> None:
    with pytest.raises(ConfigError, match="unknown engine"):
        summarize_on_dask(logs, client, CONFIG, engine="turbo")


def test_fleet_without_attribution_values_is_refused(client: object, logs: list[Path]) -> None:
    fleet = Fleet.from_mapping({"hosts": {"web1": "nowhere"}})
    with pytest.raises(ConfigError, match="no gateway_macs and no networks for host"):
        summarize_fleet_on_dask(logs, client, CONFIG, fleet)


def fleet_args(*argv: str) -> argparse.Namespace:
    """The options ``nfkit summarize`` gets once the fleet options are added to it."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--state")
    parser.add_argument("--format", default="text")
    fleet_cli.add_arguments(parser)
    return parser.parse_args(list(argv))


def test_summarize_options_with_dask_and_fleet(
    client: object, logs: list[Path], tmp_path: Path
) -> None:
    fleet_file = tmp_path / "fleet.toml"
    fleet_file.write_text(
        '[segments.lan]\nnetworks = ["192.168.1.0/24"]\ngateway_macs = ["52:54:00:00:00:01"]\n'
        '[hosts]\nweb1 = "lan"\nweb2 = "lan"\n'
    )
    files = [str(p) for p in logs]
    address = client.scheduler.address
    args = fleet_args("--dask", address, "--fleet", str(fleet_file), "--format", "json")
    assert fleet_cli.wanted(args)
    run = fleet_cli.summarize_fleet(args, CONFIG, None, files)
    local = fleet_cli.summarize_fleet(fleet_args("--fleet", str(fleet_file)), CONFIG, None, files)
    assert run.hosts == local.hosts and run.summary == local.summary
    data = json.loads(run.text)
    assert data["fleet"]["unmapped_hosts"] == {"db9": 2000}
    plain = fleet_cli.summarize_fleet(fleet_args("--dask", address), CONFIG, None, files)
    assert plain.hosts is None and plain.summary == one_process(logs)
    assert "packets logged" in plain.text
    assert not fleet_cli.wanted(fleet_args())


@pytest.mark.parametrize(
    ("argv", "files", "message"),
    [
        (("--dask", "tcp://127.0.0.1:9", "--state", "s.json"), ["a.log"], "--state cannot"),
        (("--dask", "tcp://127.0.0.1:9"), ["-"], "standard input"),
        (("--fleet", "/nonexistent/fleet.toml"), ["a.log"], "cannot read"),
    ],
)
def test_summarize_option_errors(argv: tuple[str, ...], files: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        fleet_cli.summarize_fleet(fleet_args(*argv), CONFIG, None, files)


def _die(partitions: object, **_: object) -> None:
    os._exit(3)  # a worker killed mid-task (out of memory, OOM killer, ...)


def test_killed_worker_is_a_dask_error(logs: list[Path]) -> None:
    import dask

    with (
        dask.config.set({"distributed.scheduler.allowed-failures": 0}),
        distributed.LocalCluster(
            n_workers=1,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address="127.0.0.1:0",
            silence_logs=50,
        ) as cluster,
        distributed.Client(cluster) as connected,
        pytest.raises(fleet_dask.DaskError, match="KilledWorker"),
    ):
        fleet_dask._run(connected, plan_partitions(logs), _die, fleet_dask._merge_list)
