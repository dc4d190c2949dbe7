"""A throwaway PostgreSQL server for tests: its own cluster in a temp dir, on loopback.

Debian's ``postgresql`` package installs the server binaries under
``/usr/lib/postgresql/VERSION/bin`` but, in a container, starts no cluster: :class:`PgServer`
runs ``initdb`` into a fresh temp dir, starts ``postgres`` with ``pg_ctl`` on a free port of
127.0.0.1 (unix socket in the same dir, fsync off: the tests are about concurrency, not
durability) and :meth:`PgServer.close` stops it and deletes the dir. PostgreSQL refuses to run
as root, so as root the server runs as the ``postgres`` system user (``runuser``).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

SUPERUSER = "nfkit"


def postgres_required() -> bool:
    """True when a missing PostgreSQL must fail the run instead of skipping (CI)."""
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"} or (
        os.environ.get("NFKIT_REQUIRE_POSTGRES") == "1"
    )


def find_bindir() -> Path | None:
    """The newest PostgreSQL server ``bin`` directory (Debian layout, then ``$PATH``)."""

    def version(path: str) -> tuple[int, ...]:
        return tuple(int(p) for p in Path(path).parent.name.split(".") if p.isdigit())

    found = sorted(map(str, Path("/usr/lib/postgresql").glob("*/bin/initdb")), key=version)
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class PgServer:
    """One private cluster; :meth:`start` raises ``RuntimeError`` with the reason it failed."""

    def __init__(self) -> None:
        self.bindir = find_bindir()
        self.dir = Path(tempfile.mkdtemp(prefix="nfkit-pg-"))
        self.port = _free_port()
        self.started = False
        self._user: str | None = None
        if os.geteuid() == 0:
            try:
                pwd.getpwnam("postgres")
            except KeyError:
                self._user = None
            else:
                self._user = "postgres"
                shutil.chown(self.dir, user="postgres")
        self.dir.chmod(0o700)

    def _run(self, *argv: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        cmd = list(argv)
        if self._user:
            cmd = ["runuser", "-u", self._user, "--", *cmd]
        return subprocess.run(
            cmd, capture_output=True, text=True, timeout=timeout, cwd=self.dir, check=False
        )

    def start(self) -> None:
        """initdb + pg_ctl start; raise RuntimeError when PostgreSQL cannot run here."""
        if self.bindir is None:
            raise RuntimeError("PostgreSQL server binaries not found (apt install postgresql)")
        if os.geteuid() == 0 and self._user is None:
            raise RuntimeError("running as root and no 'postgres' user to run the server as")
        data = self.dir / "data"
        made = self._run(
            str(self.bindir / "initdb"),
            "-D",
            str(data),
            "-U",
            SUPERUSER,
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
        )
        if made.returncode != 0:
            raise RuntimeError(f"initdb failed: {made.stderr.strip()[-500:]}")
        options = (
            f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=150"
        )
        started = self._run(
            str(self.bindir / "pg_ctl"),
            "-D",
            str(data),
            "-o",
            options,
            "-l",
            str(self.dir / "server.log"),
            "-w",
            "-t",
            "60",
            "start",
            timeout=90,
        )
        if started.returncode != 0:
            log = (self.dir / "server.log").read_text(errors="replace")[-800:]
            raise RuntimeError(f"pg_ctl start failed: {started.stderr.strip()} {log}")
        self.started = True

    def url(self, database: str = "postgres") -> str:
        """A libpq URL for ``database`` over TCP on loopback."""
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def create_database(self) -> str:
        """A new empty database; return its URL."""
        import psycopg

        name = "t_" + secrets.token_hex(4)
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        return self.url(name)

    def close(self) -> None:
        """Stop the server (immediately) and delete its directory."""
        if self.started and self.bindir is not None:
            self._run(
                str(self.bindir / "pg_ctl"),
                "-D",
                str(self.dir / "data"),
                "-m",
                "immediate",
                "-w",
                "stop",
            )
            self.started = False
        with contextlib.suppress(OSError):
            shutil.rmtree(self.dir)
