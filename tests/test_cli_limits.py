"""Out-of-range numbers on the command line give a clean error, not an OverflowError."""

from __future__ import annotations

from pathlib import Path

import pytest
from hostile import SAMPLE, SEGMENT, assert_clean_error, hostile_dir, in_hostile, run_cli

__all__ = ["hostile_dir", "in_hostile"]  # fixtures, re-exported for pytest

pytestmark = pytest.mark.usefixtures("in_hostile")


@pytest.fixture
def history(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> Path:
    """A history database with one run in it."""
    db = tmp_path / "history.sqlite3"
    argv = ["summarize", str(SAMPLE), "--config", str(SEGMENT), "--db", str(db)]
    assert run_cli(capsys, argv).code == 0
    return db


# QA-1: cli/summarize.py parse_since
@pytest.mark.parametrize("when", ["99999999999d", "9999999999999999999999w", "999999999999s"])
def test_since_out_of_range(capsys: pytest.CaptureFixture[str], when: str) -> None:
    outcome = run_cli(capsys, ["summarize", "--no-discover", "--since", when, "plain.log"])
    assert_clean_error(outcome, 2, r"^nfkit summarize: error: --since: ")


# QA-2: cli/report.py / logs/fleet_trends.py period_dates
@pytest.mark.parametrize("days", ["99999999999", "999999999", "3000000"])
def test_report_days_out_of_range(
    capsys: pytest.CaptureFixture[str], history: Path, days: str
) -> None:
    outcome = run_cli(capsys, ["report", "--db", str(history), "--days", days])
    assert_clean_error(outcome, 2, r"^nfkit report: error: --days")


# QA-17: cli/summarize.py: --netns "" silently inspects the host instead
def test_summarize_empty_netns(capsys: pytest.CaptureFixture[str]) -> None:
    outcome = run_cli(capsys, ["summarize", "--netns", "", "plain.log"])
    assert_clean_error(outcome, 2, r"^nfkit summarize: error: .*namespace ''")


# QA-18: cli/summarize.py: --jobs has no upper bound (one worker process per byte range)
def test_summarize_jobs_bounded(capsys: pytest.CaptureFixture[str]) -> None:
    outcome = run_cli(capsys, ["summarize", "--no-discover", "--jobs", "100000", "plain.log"])
    assert_clean_error(outcome, 2, r"argument --jobs: ")
