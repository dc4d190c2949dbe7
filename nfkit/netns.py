"""Run the kernel's tools in a named network namespace, or in the current one.

Everything ``nfkit apply`` and ``nfkit doctor`` do to a system goes through :class:`Netns`, so
rules and sysctls always land in the same namespace. A named namespace is entered with
``ip netns exec NAME`` (Python 3.11 has no ``os.setns``); ``Netns(None)`` is the current one.
A name that ``ip netns`` could not hold (empty, ``..``, with ``/``) raises ``ConfigError``.
Commands are argument lists, never shell strings.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from nfkit.errors import ConfigError, DiscoveryError

#: Where ``ip netns add`` keeps the namespace handles.
NETNS_RUN_DIR = Path("/run/netns")
#: Default time limit for one kernel tool invocation, in seconds.
DEFAULT_TIMEOUT = 30.0


@dataclass(frozen=True, slots=True)
class Netns:
    """A network namespace by name (``ip netns``), or the current one when ``name`` is None."""

    name: str | None = None

    def __post_init__(self) -> None:
        # ``ip netns`` names are file names under /run/netns; the name also ends up in nfkit's
        # own file names (backups, --try state), so "", "..", "a/b" are refused up front.
        name = self.name
        if name is not None and (
            name in ("", ".", "..")
            or "/" in name
            or any(ord(char) < 32 or ord(char) == 127 for char in name)
            or len(name.encode(errors="surrogateescape")) > 255
        ):
            raise ConfigError(f"invalid network namespace name {name!r} (see `ip netns list`)")

    def __str__(self) -> str:
        return f"netns {self.name}" if self.name else "the current network namespace"

    @property
    def label(self) -> str:
        """A short name usable in file names: the namespace name, or ``host``."""
        return self.name or "host"

    def exists(self) -> bool:
        """True when the namespace can be entered (always true for the current one)."""
        return self.name is None or (NETNS_RUN_DIR / self.name).exists()

    def require(self) -> None:
        """Raise :class:`DiscoveryError` when the namespace does not exist."""
        if not self.exists():
            raise DiscoveryError(
                f"network namespace {self.name!r} does not exist (see `ip netns list`)"
            )

    def command(self, argv: Sequence[str]) -> list[str]:
        """Return ``argv`` wrapped so that it runs inside this namespace."""
        if self.name is None:
            return list(argv)
        return ["ip", "netns", "exec", self.name, *argv]

    def run(
        self,
        argv: Sequence[str],
        *,
        input: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> subprocess.CompletedProcess[str]:
        """Run ``argv`` in this namespace and return the result (never raises on exit status).

        A missing program or a time-out raises :class:`DiscoveryError` naming the command.
        """
        if shutil.which(argv[0]) is None:
            raise DiscoveryError(f"{argv[0]}: command not found (is it installed and on PATH?)")
        cmd = self.command(argv)
        # Error texts are matched ("No such file"): keep the tools' messages untranslated.
        env = {**os.environ, "LC_ALL": "C"}
        try:
            return subprocess.run(
                cmd, input=input, capture_output=True, text=True, timeout=timeout, check=False,
                env=env,
            )
        except subprocess.TimeoutExpired as exc:
            raise DiscoveryError(f"{' '.join(cmd)}: timed out after {timeout:g} s") from exc
        except OSError as exc:
            raise DiscoveryError(f"{' '.join(cmd)}: {exc.strerror or exc}") from exc

    def read_file(self, path: Path | str) -> str | None:
        """Return the text of ``path`` as seen from inside the namespace, None if absent.

        Files under ``/proc/sys/net`` differ per network namespace, so for a named namespace
        the file is read by a process running inside it.
        """
        if self.name is None:
            try:
                return Path(path).read_text()
            except FileNotFoundError:
                return None
            except OSError as exc:
                raise DiscoveryError(f"cannot read {path}: {exc.strerror or exc}") from exc
        self.require()
        done = self.run(["cat", "--", str(path)])
        if done.returncode != 0:
            if "No such file" in done.stderr:
                return None
            raise DiscoveryError(f"cannot read {path} in {self}: {done.stderr.strip()}")
        return done.stdout

    def write_file(self, path: Path | str, text: str) -> None:
        """Write ``text`` to ``path`` (a sysctl file) inside the namespace."""
        if self.name is None:
            try:
                Path(path).write_text(text)
            except OSError as exc:
                raise DiscoveryError(f"cannot write {path}: {exc.strerror or exc}") from exc
            return
        self.require()
        done = self.run(["tee", "--", str(path)], input=text)
        if done.returncode != 0:
            raise DiscoveryError(f"cannot write {path} in {self}: {done.stderr.strip()}")
