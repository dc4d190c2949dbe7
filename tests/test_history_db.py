"""The history database: URLs, migrations, and 50 concurrent writers on SQLite and PostgreSQL.

The PostgreSQL tests run against a real server the fixture starts itself (tests/pgserver.py);
without PostgreSQL they skip on a laptop and fail in CI (``CI`` or ``NFKIT_REQUIRE_POSTGRES=1``).
"""

from __future__ import annotations

import ipaddress
import json
import multiprocessing
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pgserver import PgServer, postgres_required

from nfkit.cli import main
from nfkit.errors import ConfigError, StateError
from nfkit.logs.aggregate import Summary, SummaryConfig, summarize_records
from nfkit.logs.history import SCHEMA_VERSION, History, content_key, parse_url
from nfkit.logs.record import LogRecord
from nfkit.logs.segment import Segment

REPO = Path(__file__).resolve().parent.parent
GW_MAC = "52:54:00:00:00:01"
CONFIG = SummaryConfig(segment=Segment.from_values(gateway_macs=[GW_MAC]))
T0 = datetime(2026, 11, 20, 6, 0, tzinfo=UTC)
WRITERS = 50
RUNS_PER_HOST = 3

#: The layout nfkit 0.1 created (before schema versioning), to prove the forward migration.
LEGACY_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_key   TEXT PRIMARY KEY,
    started   REAL NOT NULL,
    finished  REAL NOT NULL,
    lines     INTEGER NOT NULL,
    records   INTEGER NOT NULL,
    unparsed  INTEGER NOT NULL,
    by_origin TEXT NOT NULL,
    summary   TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS runs_finished ON runs (finished);
"""


def host_summary(host: int, run: int, extra: int = 0) -> Summary:
    """``host + run + 1 + extra`` upstream packets: every (host, run) has its own count."""
    records = [
        LogRecord(
            timestamp=T0 + timedelta(days=run, seconds=n),
            prefix="DROP",
            in_iface="eth0",
            mac_src=GW_MAC,
            src=ipaddress.ip_address(f"198.51.100.{host + 1}"),
            dst=ipaddress.ip_address("192.0.2.10"),
            proto="TCP",
            dpt=22,
        )
        for n in range(host + run + 1 + extra)
    ]
    summary = summarize_records(records, CONFIG)
    summary.lines = len(records)
    return summary


def expected_records(host: int, runs: range) -> int:
    return sum(host + run + 1 for run in runs)


# -- fixtures -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def pg_server() -> Iterator[PgServer]:
    """A private PostgreSQL cluster on loopback for this module; skipped locally, fatal in CI."""
    try:
        import psycopg  # noqa: F401
    except ImportError:
        reason = "psycopg is not installed (pip install -e '.[test]')"
        if postgres_required():
            pytest.fail(f"PostgreSQL tests cannot run: {reason}", pytrace=False)
        pytest.skip(reason)
    server = PgServer()
    try:
        server.start()
    except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
        server.close()
        if postgres_required():
            pytest.fail(f"PostgreSQL tests cannot run: {exc}", pytrace=False)
        pytest.skip(f"PostgreSQL not available: {exc}")
    try:
        yield server
    finally:
        server.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty history database of each kind."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'history.sqlite3'}"
    server: PgServer = request.getfixturevalue("pg_server")
    return server.create_database()


# -- URLs ---------------------------------------------------------------------------------------
def test_parse_url() -> None:
    assert parse_url("/var/lib/nfkit/h.db").target == "/var/lib/nfkit/h.db"
    assert parse_url("h.db").kind == "sqlite"
    assert parse_url("sqlite:///rel/h.db").target == "rel/h.db"
    assert parse_url("sqlite:////abs/h.db").target == "/abs/h.db"
    pg = parse_url("postgres://nfkit:s3cret@db.example:5433/fleet")
    assert pg.kind == "postgresql" and pg.target.startswith("postgresql://")
    assert "s3cret" not in str(pg) and "***" in str(pg)
    assert parse_url("postgresql+psycopg://db/x").target == "postgresql://db/x"
    for bad in ("mysql://u:pw@db/x", "sqlite://h.db", "sqlite:///", " "):
        with pytest.raises(ConfigError):
            parse_url(bad)
    with pytest.raises(ConfigError) as info:
        parse_url("mysql://u:pw@db/x")
    assert "pw" not in str(info.value)


def test_unreachable_postgresql_is_a_state_error(capsys: pytest.CaptureFixture[str]) -> None:
    url = "postgresql://nfkit:s3cret@127.0.0.1:1/nfkit"
    with pytest.raises(StateError, match="cannot connect"):
        History(url)
    code = main(["report", "--db", url])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("nfkit report: error: postgresql://nfkit:***@127.0.0.1:1/nfkit: ")
    assert "s3cret" not in err and "Traceback" not in err


def test_bad_urls_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for url in ("mysql://db/x", "postgresql://[::1/db", "postgresql://h/db?foo=bar"):
        assert main(["report", "--db", url]) == 2
        err = capsys.readouterr().err
        assert err.startswith("nfkit report: error: ") and "Traceback" not in err, err
    log = tmp_path / "kern.log"
    log.write_text("")
    code = main(["summarize", str(log), "--no-discover", "--db", "mysql://db/x"])
    assert code == 2
    assert "unsupported database URL" in capsys.readouterr().err


# -- schema -------------------------------------------------------------------------------------
def test_legacy_sqlite_file_migrates_without_losing_rows(tmp_path: Path) -> None:
    path = tmp_path / "history.sqlite3"
    summary = host_summary(1, 0)
    data = summary.to_dict()
    with sqlite3.connect(path) as legacy:
        legacy.executescript(LEGACY_SCHEMA)
        for n in range(3):
            legacy.execute(
                "INSERT INTO runs VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    f"k{n}",
                    1.0 + n,
                    T0.timestamp() + n,
                    2,
                    2,
                    0,
                    '{"upstream": 2}',
                    json.dumps(data),
                ),
            )
    legacy.close()
    with History(path, legacy_host="oldbox") as history:
        assert history.schema_version() == SCHEMA_VERSION
        runs = history.runs()
        assert [(r.host, r.run_key, r.records) for r in runs] == [
            ("oldbox", "k0", 2),
            ("oldbox", "k1", 2),
            ("oldbox", "k2", 2),
        ]
        assert runs[0].summary() == summary
        # keys are now per host: another host's k0 is another row, the same host's replaces
        history.record("k0", host_summary(5, 0), started=9.0, finished=T0.timestamp(), host="web")
        history.record("k0", host_summary(2, 0), started=9.0, finished=T0.timestamp(), host="web")
        assert len(history.runs()) == 4
        assert {r.host: r.records for r in history.runs() if r.run_key == "k0"} == {
            "oldbox": 2,
            "web": 3,
        }
    with sqlite3.connect(path) as db:
        assert [v for (v,) in db.execute("SELECT version FROM schema_version")] == [1, 2]
    db.close()
    with History(path) as history:  # opening again changes nothing
        assert len(history.runs()) == 4


def test_newer_schema_is_refused(db_url: str) -> None:
    with History(db_url) as history:
        history._execute("INSERT INTO schema_version (version, applied) VALUES (?, ?)", (99, 0.0))
    with pytest.raises(StateError, match="schema version 99 is newer"):
        History(db_url)


def test_record_replaces_and_filters(db_url: str) -> None:
    with History(db_url) as history:
        for host in ("a", "b"):
            for run in range(3):
                finished = (T0 + timedelta(days=run)).timestamp()
                history.record(f"r{run}", host_summary(0, run), 1.0, finished, host=host)
        history.record("r0", host_summary(7, 0), 1.0, T0.timestamp(), host="a", segment="dc1")
        runs = history.runs()
        assert len(runs) == 6
        a0 = next(r for r in runs if (r.host, r.run_key) == ("a", "r0"))
        assert (a0.records, a0.segment) == (8, "dc1")
        assert a0.summary().records == 8
        recent = history.runs(since=(T0 + timedelta(days=1)).timestamp(), hosts=["b"])
        assert [(r.host, r.run_key) for r in recent] == [("b", "r1"), ("b", "r2")]
        until = history.runs(until=(T0 + timedelta(days=1)).timestamp())
        assert {r.run_key for r in until} == {"r0"}


def test_content_key_is_the_same_for_the_same_input() -> None:
    assert content_key(host_summary(1, 2)) == content_key(host_summary(1, 2))
    assert content_key(host_summary(1, 2)) != content_key(host_summary(1, 2, extra=1))
    assert content_key(Summary()).startswith("content-")


# -- 50 concurrent writers ----------------------------------------------------------------------
def _writer(url: str, host: int, runs: list[int], extra: int, barrier: Any, results: Any) -> None:
    """One host's cron: open the history (migrating a fresh database) and record its runs."""
    try:
        barrier.wait(timeout=120)
        with History(url, legacy_host="never-used") as history:
            for run in runs:
                history.record(
                    f"run-{run}",
                    host_summary(host, run, extra),
                    started=(T0 + timedelta(days=run)).timestamp(),
                    finished=(T0 + timedelta(days=run, minutes=5)).timestamp(),
                    host=f"host-{host:02d}",
                    segment=f"seg-{host % 5}",
                )
        results.put((host, None))
    except BaseException as exc:
        results.put((host, repr(exc)))


def _wave(url: str, plan: dict[int, list[int]], extra: dict[int, int]) -> float:
    """Start one process per host, release them together, wait; return the seconds taken."""
    ctx = multiprocessing.get_context("fork")
    barrier = ctx.Barrier(len(plan) + 1)
    results = ctx.Queue()
    procs = [
        ctx.Process(target=_writer, args=(url, host, runs, extra.get(host, 0), barrier, results))
        for host, runs in plan.items()
    ]
    for proc in procs:
        proc.start()
    barrier.wait(timeout=120)
    start = time.perf_counter()
    outcomes = [results.get(timeout=120) for _ in procs]
    elapsed = time.perf_counter() - start
    for proc in procs:
        proc.join(timeout=60)
    assert [error for _, error in outcomes if error] == []
    assert sorted(host for host, _ in outcomes) == sorted(plan)
    assert all(proc.exitcode == 0 for proc in procs)
    return elapsed


def test_fifty_concurrent_writers_lose_and_duplicate_nothing(
    db_url: str, record_property: Any
) -> None:
    # wave 1: 50 hosts open a *fresh* database at once (racing to migrate it) and write 3 runs
    first = _wave(db_url, {host: list(range(RUNS_PER_HOST)) for host in range(WRITERS)}, {})
    # wave 2, again all at once: half the hosts re-run everything (killed-and-rerun cron: same
    # keys; each re-run read one more line, so its row must *replace* the old one), the other
    # half add a fourth run
    rerun = {host: list(range(RUNS_PER_HOST)) for host in range(0, WRITERS, 2)}
    new = {host: [RUNS_PER_HOST] for host in range(1, WRITERS, 2)}
    second = _wave(db_url, rerun | new, dict.fromkeys(rerun, 1))
    record_property("wave_seconds", f"{first:.2f} {second:.2f}")
    print(f"\n{db_url.split(':')[0]}: 50 writers x 3 runs {first:.2f} s, rerun wave {second:.2f} s")

    with History(db_url) as history:
        runs = history.runs()
        assert history.schema_version() == SCHEMA_VERSION
        versions = history._execute("SELECT version FROM schema_version ORDER BY 1").fetchall()
    assert [int(v) for (v,) in versions] == list(range(1, SCHEMA_VERSION + 1))  # migrated once
    keys = [(r.host, r.run_key) for r in runs]
    assert len(keys) == len(set(keys)) == WRITERS * RUNS_PER_HOST + len(new)
    for host in range(WRITERS):
        mine = {r.run_key: r for r in runs if r.host == f"host-{host:02d}"}
        done = range(RUNS_PER_HOST + (1 if host in new else 0))
        assert sorted(mine) == [f"run-{n}" for n in done]
        more = len(done) if host in rerun else 0
        assert sum(r.records for r in mine.values()) == expected_records(host, done) + more
        assert {r.segment for r in mine.values()} == {f"seg-{host % 5}"}
        assert all(r.summary().records == r.records for r in mine.values())
    total = sum(
        expected_records(h, range(RUNS_PER_HOST + (1 if h in new else 0))) for h in range(WRITERS)
    ) + RUNS_PER_HOST * len(rerun)
    assert sum(r.records for r in runs) == total


# -- the CLI on PostgreSQL ----------------------------------------------------------------------
def test_cli_summarize_and_report_on_postgresql(pg_server: PgServer, tmp_path: Path) -> None:
    url = pg_server.create_database()
    sample = REPO / "examples" / "kern.log"
    segment = REPO / "examples" / "segment.toml"
    for host in ("web1", "web2"):
        done = subprocess.run(
            [sys.executable, "-m", "nfkit", "summarize", str(sample), "--config", str(segment),
             "--db", url, "--host", host, "-o", str(tmp_path / "out.txt")],
            capture_output=True, text=True, cwd=REPO, timeout=60, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
    done = subprocess.run(
        [sys.executable, "-m", "nfkit", "report", "--db", url, "--format", "json"],
        capture_output=True, text=True, cwd=REPO, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert [h["name"] for h in data["hosts"]] == ["web1", "web2"]
    assert data["runs"] == 2
    assert data["hosts"][0]["packets"] * 2 == data["records"]
    [segment_row] = data["segments"]
    assert segment_row["hosts"] == ["web1", "web2"]
    assert any(peer["hosts"] == ["web1", "web2"] for peer in segment_row["peers"])
