"""Each run's summary, kept in an embedded SQLite database for trends (``nfkit report``).

All SQL lives in :class:`History`: a later backend (a database URL, PostgreSQL) only has to offer
the same three methods. A row is keyed by the run key of the incremental reader
(:attr:`nfkit.logs.state.IncrementalReader.run_key`), so a run killed after writing its row but
before saving its state is *replaced* by the re-run, never counted twice.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from nfkit.errors import StateError
from nfkit.logs.aggregate import Summary

DEFAULT_HISTORY = "/var/lib/nfkit/history.sqlite3"

_SCHEMA = """
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


@dataclass(slots=True)
class Run:
    """One stored run."""

    run_key: str
    started: float
    finished: float
    lines: int
    records: int
    unparsed: int
    by_origin: dict[str, int]
    summary_json: str = field(repr=False)

    def summary(self) -> Summary:
        """The run's full :class:`Summary` (parsed on demand)."""
        return Summary.from_dict(json.loads(self.summary_json))


class History:
    """Run history in one SQLite file; use as a context manager."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, timeout=30)
            self._db.executescript(_SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise StateError(f"{self.path}: cannot open history database: {exc}") from None

    def __enter__(self) -> History:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the database."""
        self._db.close()

    @contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except sqlite3.Error as exc:
            raise StateError(f"{self.path}: history database error: {exc}") from None

    def record(
        self, run_key: str, summary: Summary, started: float, finished: float | None = None
    ) -> None:
        """Store (or replace: same ``run_key``) one run's summary."""
        data = summary.to_dict()
        with self._errors(), self._db:
            self._db.execute(
                "INSERT OR REPLACE INTO runs VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    run_key,
                    started,
                    finished if finished is not None else time.time(),
                    summary.lines,
                    summary.records,
                    summary.unparsed,
                    json.dumps(data["by_origin"]),
                    json.dumps(data, separators=(",", ":")),
                ),
            )

    def runs(self, since: float | None = None) -> list[Run]:
        """Runs finished at or after ``since`` (epoch seconds), oldest first."""
        query = "SELECT * FROM runs"
        args: tuple[Any, ...] = ()
        if since is not None:
            query += " WHERE finished >= ?"
            args = (since,)
        with self._errors():
            rows = self._db.execute(query + " ORDER BY finished, run_key", args).fetchall()
        try:
            return [
                Run(
                    run_key=row[0],
                    started=float(row[1]),
                    finished=float(row[2]),
                    lines=int(row[3]),
                    records=int(row[4]),
                    unparsed=int(row[5]),
                    by_origin={str(k): int(v) for k, v in json.loads(row[6]).items()},
                    summary_json=row[7],
                )
                for row in rows
            ]
        except (ValueError, TypeError, AttributeError) as exc:
            raise StateError(f"{self.path}: corrupt history row: {exc}") from None


@dataclass(slots=True)
class Trend:
    """Runs of a period: per-day totals and everything merged."""

    days: int
    runs: int = 0
    #: ``YYYY-MM-DD`` (UTC, by run end) -> {"runs", "lines", "records", origin: packets...}
    per_day: dict[str, dict[str, int]] = field(default_factory=dict)
    merged: Summary | None = None
    #: Runs whose summary could not be merged (other configuration, unreadable).
    unmerged: int = 0


def trend(runs: list[Run], days: int) -> Trend:
    """Fold stored runs into a :class:`Trend`."""
    result = Trend(days=days, runs=len(runs))
    for run in runs:
        day = datetime.fromtimestamp(run.finished, UTC).strftime("%Y-%m-%d")
        row = result.per_day.setdefault(day, {"runs": 0, "lines": 0, "records": 0})
        row["runs"] += 1
        row["lines"] += run.lines
        row["records"] += run.records
        for origin, packets in run.by_origin.items():
            row[origin] = row.get(origin, 0) + packets
        try:
            summary = run.summary()
            if result.merged is None:
                result.merged = summary
            else:
                result.merged.merge(summary)
        except ValueError:
            result.unmerged += 1
    return result
