"""Hostile input to the fleet commands: merge, the Dask options, tampered history rows.

QA-3 (``nfkit merge`` of JSON nested 100,000 deep), QA-19 (``--dask nonsense://x`` left a
half-made ``distributed.Client`` whose ``__del__`` printed a traceback 20 s later;
``--partition-mb 0`` was accepted), QA-20 (history rows with ``summary`` nested 100,000 deep,
``finished = 1e400``, or a ``summary`` that is not a summary), and ``DaskError``'s move into
:mod:`nfkit.errors`.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hostile import SAMPLE, SEGMENT, assert_clean_error, hostile_dir, in_hostile, run_cli

import nfkit.errors
from nfkit.errors import DaskError, NfkitError, StateError
from nfkit.logs.aggregate import Summary, SummaryConfig, summarize
from nfkit.logs.history import History, Run, trend

__all__ = ["hostile_dir", "in_hostile"]  # fixtures, re-exported for pytest

DEEP = "[" * 100_000


# -- QA-3: nfkit merge ------------------------------------------------------------------------
@pytest.mark.usefixtures("in_hostile")
def test_merge_deeply_nested_json(capsys: pytest.CaptureFixture[str]) -> None:
    outcome = run_cli(capsys, ["merge", "deep.json"])
    assert_clean_error(outcome, 2, r"^deep.json: error: invalid JSON: nested too deeply")


@pytest.mark.usefixtures("in_hostile")
def test_merge_deep_json_after_a_good_file(capsys: pytest.CaptureFixture[str]) -> None:
    """The bad file is named even when it is not the first one."""
    outcome = run_cli(capsys, ["merge", "summary.json", "deep.json"])
    assert_clean_error(outcome, 2, r"^deep.json: error: ")


def test_merge_deep_json_inside_an_object(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "web1.json"
    path.write_text('{"config": ' + "[" * 100_000)
    outcome = run_cli(capsys, ["merge", str(path)])
    assert_clean_error(outcome, 2, rf"^{path}: error: .*nested too deeply")


# -- QA-19: --partition-mb, --dask ------------------------------------------------------------
@pytest.mark.usefixtures("in_hostile")
@pytest.mark.parametrize("value", ["0", "-1", "1.5", "x", "1048577", "99999999999999999999"])
def test_partition_mb_refused(capsys: pytest.CaptureFixture[str], value: str) -> None:
    argv = ["summarize", "--no-discover", "--partition-mb", value, "plain.log"]
    assert_clean_error(run_cli(capsys, argv), 2, r"argument --partition-mb: ")


@pytest.mark.usefixtures("in_hostile")
@pytest.mark.parametrize("value", ["1", "64", "1048576"])
def test_partition_mb_accepted(capsys: pytest.CaptureFixture[str], value: str) -> None:
    argv = ["summarize", "--no-discover", "--partition-mb", value, "plain.log"]
    outcome = run_cli(capsys, argv)
    assert outcome.code == 0, outcome.err


def test_dask_bad_address_fails_fast_and_clean() -> None:
    """The half-made client is closed: no ``Client.__del__`` traceback 20 s after the error."""
    pytest.importorskip("distributed")
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "nfkit", "summarize", "--no-discover", "--dask", "nonsense://x",
         str(SAMPLE)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    elapsed = time.monotonic() - started
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr and "Exception ignored" not in done.stderr, done.stderr
    assert done.stderr.startswith("nfkit summarize: error: cannot reach the Dask scheduler")
    assert elapsed < 15, f"took {elapsed:.1f} s"


def test_dask_bad_address_closes_the_client(monkeypatch: pytest.MonkeyPatch) -> None:
    """In process: the client the constructor left behind is closed before the error."""
    distributed = pytest.importorskip("distributed")
    from nfkit.errors import ConfigError
    from nfkit.fleet import dask as fleet_dask

    made: list[object] = []
    closed: list[object] = []
    real_init = distributed.Client.__init__
    real_close = distributed.Client.close

    def tracking_init(self: object, *args: object, **kwargs: object) -> None:
        made.append(self)
        real_init(self, *args, **kwargs)

    def tracking_close(self: object, *args: object, **kwargs: object) -> object:
        closed.append(self)
        return real_close(self, *args, **kwargs)

    monkeypatch.setattr(distributed.Client, "__init__", tracking_init)
    monkeypatch.setattr(distributed.Client, "close", tracking_close)
    with pytest.raises(ConfigError, match="unknown address scheme"):
        fleet_dask.summarize_on_dask([SAMPLE], "nonsense://x")
    assert len(made) == 1 and closed == made
    assert getattr(made[0], "status", None) == "closed"


# -- DaskError lives in nfkit.errors ----------------------------------------------------------
def test_dask_error_is_in_the_error_tree() -> None:
    from nfkit import fleet
    from nfkit.fleet import dask as fleet_dask

    assert fleet_dask.DaskError is DaskError and fleet.DaskError is DaskError
    assert issubclass(DaskError, NfkitError) and DaskError.__module__ == "nfkit.errors"
    assert "DaskError" in (nfkit.errors.__doc__ or "")


def test_error_tree_names_every_error() -> None:
    """The tree drawn in the errors module docstring lists every class the module defines."""
    doc = nfkit.errors.__doc__ or ""
    for name, value in vars(nfkit.errors).items():
        if isinstance(value, type) and issubclass(value, NfkitError):
            assert name == "NfkitError" or f"── {name} " in doc, name


# -- QA-20: tampered history rows -------------------------------------------------------------
@pytest.fixture
def history(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> Path:
    """A history database with one run in it."""
    db = tmp_path / "history.sqlite3"
    argv = ["summarize", str(SAMPLE), "--config", str(SEGMENT), "--db", str(db)]
    assert run_cli(capsys, argv).code == 0
    return db


def _tamper(db: Path, update: str) -> None:
    with sqlite3.connect(db) as connection:
        connection.execute(f"UPDATE runs SET {update}")
    connection.close()


TAMPERED = {
    "deep-summary-json": (f"summary = '{DEEP}'", "summary is not JSON: nested too deeply"),
    "infinite-finished": ("finished = 1e400", "finished is not a time"),
    "infinite-started": ("started = 1e400", "started is not a time"),
    "year-10000": ("finished = 253402300800.0", "finished is not a time"),
    "text-started": ("started = 'x'", "started is not a time"),
    "infinite-lines": ("lines = 1e400", "lines is not a count"),
    "negative-records": ("records = -5", "records is not a count"),
    "deep-by-origin": (f"by_origin = '{DEEP}'", "by_origin is nested too deeply"),
    "summary-a-list": ("summary = '[]'", "summary is not an nfkit summary"),
    "summary-empty-object": ("summary = '{}'", "summary is not an nfkit summary"),
    "summary-not-json": ("summary = 'nope'", "summary is not JSON"),
    "summary-bad-config": (
        """summary = json_set(summary, '$.config.slot_seconds', 'five')""",
        "summary is not an nfkit summary",
    ),
}


@pytest.mark.parametrize(("update", "reason"), TAMPERED.values(), ids=TAMPERED.keys())
def test_report_tampered_history_row(
    capsys: pytest.CaptureFixture[str], history: Path, update: str, reason: str
) -> None:
    _tamper(history, update)
    outcome = run_cli(capsys, ["report", "--db", str(history)])
    assert_clean_error(outcome, 2, r"^nfkit report: error: .*corrupt history row \(host '")
    assert reason in outcome.err and "run 'content-" in outcome.err, outcome.err


@pytest.mark.parametrize("fmt", ["json", "html"])
def test_report_tampered_row_every_format(
    capsys: pytest.CaptureFixture[str], history: Path, fmt: str
) -> None:
    _tamper(history, "finished = 1e400")
    outcome = run_cli(capsys, ["report", "--db", str(history), "--format", fmt])
    assert_clean_error(outcome, 2, r"corrupt history row")


def test_history_runs_refuses_minus_infinity(history: Path) -> None:
    """``report`` never asks for rows that old; the library's ``runs()`` without ``since`` does."""
    _tamper(history, "finished = -1e400")
    with History(history) as db, pytest.raises(StateError, match="corrupt history row"):
        db.runs()


def test_run_summary_raises_state_error() -> None:
    run = Run("k", 0.0, 0.0, 0, 0, 0, {}, summary_json=DEEP, host="web1")
    with pytest.raises(StateError, match=r"corrupt history row \(host 'web1', run 'k'\)"):
        run.summary()
    with pytest.raises(StateError, match="not an nfkit summary"):
        trend([Run("k", 0.0, 0.0, 0, 0, 0, {}, summary_json='{"lines": 1}')], 7)


def test_other_detection_settings_are_unmerged_not_corrupt() -> None:
    """Summaries that do not merge (other settings) are still counted, not an error."""
    import json

    with SAMPLE.open(encoding="utf-8") as handle:
        lines = handle.readlines()
    first = summarize(lines, SummaryConfig())
    other = summarize(lines, SummaryConfig(slot_seconds=600))
    now = datetime(2026, 11, 25, tzinfo=UTC).timestamp()
    runs = [
        Run(f"k{n}", now, now, s.lines, s.records, s.unparsed, dict(s.by_origin),
            summary_json=json.dumps(s.to_dict()), host="h")
        for n, s in enumerate([first, other, first])
    ]  # fmt: skip
    folded = trend(runs, 7)
    assert folded.unmerged == 1 and folded.runs == 3
    assert isinstance(folded.merged, Summary) and folded.merged.records == 2 * first.records
