"""Each run's summary in one database: a SQLite file by default, PostgreSQL for a fleet.

A history is named by a database URL (:func:`parse_url`):

* a plain path or ``sqlite:///relative/path`` / ``sqlite:////absolute/path``: an embedded SQLite
  file, zero set-up (the default, :data:`DEFAULT_HISTORY`);
* ``postgresql://user@host:port/dbname`` (or ``postgres://``): one server for a fleet's cron runs.

Both go through plain DB-API (``sqlite3``, ``psycopg`` 3) and the same SQL: the statements are
written once with ``?`` placeholders and the upsert is ``INSERT ... ON CONFLICT DO UPDATE``,
which both engines speak. The schema is versioned: ``schema_version`` lists the applied steps of
:data:`MIGRATIONS`, which run in order when a history is opened, under a lock (SQLite ``BEGIN
IMMEDIATE``, a PostgreSQL advisory lock) so fifty hosts opening a fresh database at once migrate
it exactly once. A SQLite file written before versioning (one ``runs`` table keyed by run key)
is migrated forward without losing rows.

A row is keyed by ``(host, run_key)``: the run key of the incremental reader
(:attr:`nfkit.logs.state.IncrementalReader.run_key`) makes a run killed after writing its row but
before saving its state *replace* its row when re-run, and the host keeps two hosts' runs apart
even when their keys are equal. Writers never read-modify-write, so concurrent hosts neither
lose nor duplicate rows.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import socket
import sqlite3
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from nfkit.errors import ConfigError, StateError, SummaryError
from nfkit.logs.aggregate import Summary

DEFAULT_HISTORY = "/var/lib/nfkit/history.sqlite3"
#: Key of the PostgreSQL advisory lock held while migrating (any constant shared by all nfkits).
_MIGRATION_LOCK = 0x6E666B6974  # "nfkit"
_COLUMNS = "host, run_key, segment, started, finished, lines, records, unparsed, by_origin, summary"

#: Ordered schema steps; step ``n`` (1-based) brings the schema to version ``n``. Never edit a
#: released step: append a new one. ``{legacy_host}`` is bound to this machine's name.
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    # 1: nfkit 0.1 (one host per SQLite file). A file made then already has it: IF NOT EXISTS.
    (
        """CREATE TABLE IF NOT EXISTS runs (
            run_key   TEXT PRIMARY KEY,
            started   DOUBLE PRECISION NOT NULL,
            finished  DOUBLE PRECISION NOT NULL,
            lines     INTEGER NOT NULL,
            records   INTEGER NOT NULL,
            unparsed  INTEGER NOT NULL,
            by_origin TEXT NOT NULL,
            summary   TEXT NOT NULL
        )""",
        "CREATE INDEX IF NOT EXISTS runs_finished ON runs (finished)",
    ),
    # 2: a fleet. Rows keyed by (host, run key), with the host's segment; the rows of version 1
    # were written by this machine's own cron, so they are filed under its name.
    (
        """CREATE TABLE runs_v2 (
            host      TEXT NOT NULL,
            run_key   TEXT NOT NULL,
            segment   TEXT NOT NULL DEFAULT '',
            started   DOUBLE PRECISION NOT NULL,
            finished  DOUBLE PRECISION NOT NULL,
            lines     BIGINT NOT NULL,
            records   BIGINT NOT NULL,
            unparsed  BIGINT NOT NULL,
            by_origin TEXT NOT NULL,
            summary   TEXT NOT NULL,
            PRIMARY KEY (host, run_key)
        )""",
        f"""INSERT INTO runs_v2 ({_COLUMNS})
            SELECT CAST(? AS TEXT), run_key, '', started, finished, lines, records, unparsed,
                   by_origin, summary
            FROM runs""",
        "DROP TABLE runs",
        "ALTER TABLE runs_v2 RENAME TO runs",
        "CREATE INDEX runs_finished ON runs (finished)",
        "CREATE INDEX runs_host ON runs (host, finished)",
    ),
)
SCHEMA_VERSION = len(MIGRATIONS)

_UPSERT = f"""INSERT INTO runs ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (host, run_key) DO UPDATE SET
    segment = excluded.segment, started = excluded.started, finished = excluded.finished,
    lines = excluded.lines, records = excluded.records, unparsed = excluded.unparsed,
    by_origin = excluded.by_origin, summary = excluded.summary"""


# -- URLs ---------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class DatabaseURL:
    """Where a history lives: a SQLite file or a PostgreSQL connection string."""

    kind: Literal["sqlite", "postgresql"]
    #: The SQLite file path, or the libpq URL (``postgresql://...``).
    target: str

    def __str__(self) -> str:
        """The URL for messages, with any password masked."""
        return self.target if self.kind == "sqlite" else _mask(self.target)

    def exists(self) -> bool:
        """False for a SQLite file not created yet (a server database is assumed to exist)."""
        return self.kind != "sqlite" or Path(self.target).is_file()


def parse_url(text: str) -> DatabaseURL:
    """Read ``--db``: a plain path (SQLite), ``sqlite:///path``, or ``postgresql://...``."""
    text = text.strip()
    if not text:
        raise ConfigError("empty database URL")
    scheme, sep, rest = text.partition("://")
    if not sep:
        return DatabaseURL("sqlite", text)
    scheme = scheme.lower()
    if scheme == "sqlite":
        # SQLAlchemy's spelling: sqlite:///relative.db, sqlite:////absolute.db
        if not rest.startswith("/") or len(rest) < 2 or "?" in rest:
            raise ConfigError(
                f"{text}: expected sqlite:///relative/path or sqlite:////absolute/path"
            )
        return DatabaseURL("sqlite", rest[1:])
    if scheme in {"postgresql", "postgres", "postgresql+psycopg"}:
        return DatabaseURL("postgresql", "postgresql://" + rest)
    shown = DatabaseURL("postgresql", text)
    raise ConfigError(
        f"{shown}: unsupported database URL (use a file path, sqlite:///PATH or postgresql://...)"
    )


# -- stored runs --------------------------------------------------------------------------------
@dataclass(slots=True)
class Run:
    """One stored run of one host."""

    run_key: str
    started: float
    finished: float
    lines: int
    records: int
    unparsed: int
    by_origin: dict[str, int]
    summary_json: str = field(repr=False)
    host: str = ""
    #: The host's segment as recorded (:func:`segment_label`); a fleet file may rename it.
    segment: str = ""

    def summary(self) -> Summary:
        """The run's full :class:`Summary` (parsed on demand).

        Raises ``StateError`` (``corrupt history row``) when the stored text is not a summary:
        not JSON, nested too deeply, or not what ``Summary.to_dict`` writes.
        """
        try:
            data = json.loads(self.summary_json)
        except ValueError as exc:
            raise self._corrupt(f"summary is not JSON: {exc}") from None
        except RecursionError:
            raise self._corrupt("summary is not JSON: nested too deeply") from None
        if not isinstance(data, dict):
            raise self._corrupt(f"summary is not an nfkit summary (a JSON {type(data).__name__})")
        try:
            return Summary.from_dict(data)
        except (SummaryError, ConfigError, RecursionError) as exc:
            why = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
            detail = why.removeprefix("not a summary: ")
            raise self._corrupt(f"summary is not an nfkit summary: {detail}") from None

    def _corrupt(self, reason: str) -> StateError:
        return StateError(
            f"corrupt history row (host {self.host!r}, run {self.run_key!r}): {reason}"
        )


def local_host() -> str:
    """This machine's short host name, as syslog writes it in the log lines."""
    return socket.gethostname().split(".", 1)[0] or "localhost"


def content_key(summary: Summary) -> str:
    """A run key for a run that read whole files (no state): a hash of what it found.

    Running it again on the same input gives the same key, so the row is replaced, not doubled.
    """
    data = json.dumps(summary.to_dict(), sort_keys=True, separators=(",", ":"))
    return "content-" + hashlib.sha256(data.encode()).hexdigest()[:32]


def segment_label(summary: Summary) -> str:
    """A stable name for the segment a summary was attributed with: its networks or gateways."""
    segment = summary.config.segment.to_dict()
    if segment.get("networks"):
        return " ".join(segment["networks"])
    if segment.get("gateway_macs"):
        return "gw " + " ".join(segment["gateway_macs"])
    return ""


class History:
    """Run history in a database (see the module docstring); use as a context manager."""

    def __init__(self, url: str | Path | DatabaseURL, legacy_host: str | None = None) -> None:
        self.url = url if isinstance(url, DatabaseURL) else parse_url(str(url))
        self._legacy_host = legacy_host or local_host()
        self._db: Any = None
        if self.url.kind == "sqlite":
            self._errors_caught: tuple[type[Exception], ...] = (sqlite3.Error,)
            self._open_sqlite()
        else:
            self._open_postgresql()
        try:
            self._migrate()
        except BaseException:
            self.close()
            raise

    # -- connecting -------------------------------------------------------------------------
    def _open_sqlite(self) -> None:
        path = Path(self.url.target)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            # Autocommit: transactions are explicit (BEGIN IMMEDIATE), one upsert is atomic.
            self._db = sqlite3.connect(path, timeout=60, isolation_level=None)
            self._db.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
        except (OSError, sqlite3.Error) as exc:
            raise StateError(f"{self.url}: cannot open history database: {exc}") from None

    def _open_postgresql(self) -> None:
        try:
            import psycopg
            from psycopg.conninfo import conninfo_to_dict, make_conninfo
        except ImportError:
            raise ConfigError(
                f"{self.url}: PostgreSQL needs psycopg (pip install 'nfkit[postgres]')"
            ) from None
        self._errors_caught = (psycopg.Error,)
        try:
            params = conninfo_to_dict(self.url.target)
        except psycopg.Error as exc:
            raise ConfigError(f"{self.url}: bad PostgreSQL URL: {_first_line(exc)}") from None
        defaults: dict[str, str | int] = {"connect_timeout": 10, "application_name": "nfkit"}
        conninfo = make_conninfo(
            self.url.target, **{k: v for k, v in defaults.items() if k not in params}
        )
        try:
            # Autocommit: transactions are explicit (``transaction()``), one upsert is atomic.
            self._db = psycopg.connect(conninfo, autocommit=True)
        except psycopg.Error as exc:
            raise StateError(f"{self.url}: cannot connect: {_first_line(exc)}") from None

    def __enter__(self) -> History:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the database connection."""
        if self._db is not None:
            self._db.close()
            self._db = None

    @contextmanager
    def _errors(self, doing: str = "history database error") -> Iterator[None]:
        try:
            yield
        except self._errors_caught as exc:
            raise StateError(f"{self.url}: {doing}: {_first_line(exc)}") from None

    def _sql(self, statement: str) -> str:
        return statement if self.url.kind == "sqlite" else statement.replace("?", "%s")

    def _execute(self, statement: str, args: Sequence[Any] = ()) -> Any:
        return self._db.execute(self._sql(statement), tuple(args))

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        """One transaction; for SQLite taking the write lock at once (no upgrade deadlock)."""
        if self.url.kind == "sqlite":
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
        else:
            with self._db.transaction():
                yield

    # -- schema -----------------------------------------------------------------------------
    def schema_version(self) -> int:
        """The version the database's schema is at (0: empty or from before versioning)."""
        with self._errors("cannot read the schema version"):
            if self.url.kind == "sqlite":
                found = self._db.execute(
                    "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'"
                ).fetchone()
            else:
                found = self._db.execute("SELECT to_regclass('schema_version')").fetchone()
                found = found if found and found[0] is not None else None
            if not found:
                return 0
            row = self._execute("SELECT MAX(version) FROM schema_version").fetchone()
            return int(row[0] or 0)

    def _migrate(self) -> None:
        if self.schema_version() == SCHEMA_VERSION:
            return  # nothing to do: no write lock needed (a read-only report works)
        with self._errors("cannot migrate the history database"), self._transaction():
            if self.url.kind == "postgresql":
                self._db.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
            self._execute(
                "CREATE TABLE IF NOT EXISTS schema_version "
                "(version INTEGER PRIMARY KEY, applied DOUBLE PRECISION NOT NULL)"
            )
            row = self._execute("SELECT MAX(version) FROM schema_version").fetchone()
            current = int(row[0] or 0)
            if current > SCHEMA_VERSION:
                raise StateError(
                    f"{self.url}: history schema version {current} is newer than this nfkit "
                    f"knows ({SCHEMA_VERSION}): upgrade nfkit"
                )
            for version in range(current + 1, SCHEMA_VERSION + 1):
                for statement in MIGRATIONS[version - 1]:
                    args = (self._legacy_host,) if "?" in statement else ()
                    self._execute(statement, args)
                self._execute(
                    "INSERT INTO schema_version (version, applied) VALUES (?, ?)",
                    (version, time.time()),
                )

    # -- runs -------------------------------------------------------------------------------
    def record(
        self,
        run_key: str,
        summary: Summary,
        started: float,
        finished: float | None = None,
        host: str | None = None,
        segment: str | None = None,
    ) -> None:
        """Store (or replace: same ``host`` and ``run_key``) one run's summary."""
        data = summary.to_dict()
        values = (
            host if host is not None else local_host(),
            run_key,
            segment if segment is not None else segment_label(summary),
            started,
            finished if finished is not None else time.time(),
            summary.lines,
            summary.records,
            summary.unparsed,
            json.dumps(data["by_origin"]),
            json.dumps(data, separators=(",", ":")),
        )
        with self._errors("cannot record the run"), self._transaction():
            self._execute(_UPSERT, values)

    def runs(
        self, since: float | None = None, until: float | None = None, hosts: Sequence[str] = ()
    ) -> list[Run]:
        """Runs finished in ``[since, until)`` (epoch seconds), of ``hosts`` (all if empty)."""
        query = f"SELECT {_COLUMNS} FROM runs WHERE 1 = 1"
        args: list[Any] = []
        if since is not None:
            query += " AND finished >= ?"
            args.append(since)
        if until is not None:
            query += " AND finished < ?"
            args.append(until)
        if hosts:
            query += f" AND host IN ({', '.join('?' for _ in hosts)})"
            args += hosts
        with self._errors("cannot read runs"):
            rows = self._execute(query + " ORDER BY finished, host, run_key", args).fetchall()
        return [self._run(row) for row in rows]

    def _run(self, row: Sequence[Any]) -> Run:
        """Decode one row; ``StateError`` (``corrupt history row``) when it makes no sense."""
        where = f"{self.url}: corrupt history row"
        try:
            where += f" (host {str(row[0])!r}, run {str(row[1])!r})"
            run = Run(
                host=str(row[0]),
                run_key=str(row[1]),
                segment=str(row[2]),
                started=_epoch(row[3], "started"),
                finished=_epoch(row[4], "finished"),
                lines=_count(row[5], "lines"),
                records=_count(row[6], "records"),
                unparsed=_count(row[7], "unparsed"),
                by_origin={str(k): _count(v, "by_origin") for k, v in json.loads(row[8]).items()},
                summary_json=str(row[9]),
            )
        except RecursionError:
            raise StateError(f"{where}: by_origin is nested too deeply") from None
        except (ValueError, TypeError, AttributeError, OverflowError, IndexError) as exc:
            raise StateError(f"{where}: {exc}") from None
        return run


#: The times a row may carry (epoch seconds): those ``datetime`` can hold, years 1 to 9999.
_FIRST_EPOCH = datetime(1, 1, 1, tzinfo=UTC).timestamp()
_LAST_EPOCH = datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC).timestamp()


def _epoch(value: Any, column: str) -> float:
    """A row's time column as epoch seconds; ``ValueError`` for infinity, NaN, year 10000..."""
    if isinstance(value, bool | str | bytes):
        raise ValueError(f"{column} is not a time: {value!r}")
    number = float(value)
    if not (math.isfinite(number) and _FIRST_EPOCH <= number <= _LAST_EPOCH):
        raise ValueError(f"{column} is not a time between the years 1 and 9999: {number!r}")
    return number


def _count(value: Any, column: str) -> int:
    """A row's count column as an int; ``ValueError`` for a fraction, a negative, infinity..."""
    if isinstance(value, bool | bytes) or (isinstance(value, float) and not value.is_integer()):
        raise ValueError(f"{column} is not a count: {value!r}")
    number = int(value)  # OverflowError for infinity, ValueError for NaN or text
    if number < 0:
        raise ValueError(f"{column} is not a count: {value!r}")
    return number


def _mask(text: str) -> str:
    """``text`` with the passwords of URLs (``scheme://user:password@``) replaced by ``***``."""
    return re.sub(r"(://[^:/@?#\s]*:)[^@/?#\s]*@", r"\1***@", text)


def _first_line(exc: BaseException) -> str:
    """The first line of an error message, passwords masked (libpq may quote the URL)."""
    return _mask((str(exc).strip().splitlines() or [type(exc).__name__])[0])


# -- trends -------------------------------------------------------------------------------------
@dataclass(slots=True)
class Trend:
    """Runs of a period: per-day totals and everything merged."""

    days: int
    runs: int = 0
    #: ``YYYY-MM-DD`` (UTC, by run end) -> {"runs", "lines", "records", origin: packets...}
    per_day: dict[str, dict[str, int]] = field(default_factory=dict)
    merged: Summary | None = None
    #: Runs whose summary could not be merged: made with other detection settings. (A stored
    #: summary that is not a summary at all is not counted here: it is a corrupt row.)
    unmerged: int = 0


def day_of(epoch: float) -> str:
    """``YYYY-MM-DD`` of an epoch time, in UTC."""
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d")


def trend(runs: list[Run], days: int) -> Trend:
    """Fold stored runs into a :class:`Trend`.

    Runs whose summaries were made with other detection settings than the first are counted in
    :attr:`Trend.unmerged`; a run whose stored summary is not a summary raises ``StateError``
    (``corrupt history row``, naming its host and run key) from :meth:`Run.summary`.
    """
    result = Trend(days=days, runs=len(runs))
    for run in runs:
        row = result.per_day.setdefault(day_of(run.finished), {"runs": 0, "lines": 0, "records": 0})
        row["runs"] += 1
        row["lines"] += run.lines
        row["records"] += run.records
        for origin, packets in run.by_origin.items():
            row[origin] = row.get(origin, 0) + packets
        summary = run.summary()
        if result.merged is None:
            result.merged = summary
            continue
        try:
            result.merged.merge(summary)
        except SummaryError:  # other detection settings
            result.unmerged += 1
    return result
