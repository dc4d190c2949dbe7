"""Putting the previous state back: backups, and the ``--try`` watchdog.

A :class:`Backup` holds what ``nfkit apply`` needs to undo a load: the text that restores
nfkit's table (nftables) or the saved tables (iptables), and the sysctl values from before.

``--try SECONDS`` leaves a *pending* file and a detached watchdog: a transient systemd unit when
systemd runs the machine, else a process in a session of its own (setsid), so it outlives the
terminal and the SSH connection. Unless :func:`confirm` removes the pending file in time, the
watchdog restores the backup. Whoever claims the pending file first (an atomic ``unlink`` or
``rename``) wins, so a confirmation and a rollback can never both happen.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nfkit.errors import ApplyError, ConfigError, DiscoveryError
from nfkit.netns import Netns
from nfkit.sysctl import Sysctls

#: Where backups and pending ``--try`` state live unless ``NFKIT_STATE_DIR`` says otherwise.
DEFAULT_STATE_DIR = Path("/var/lib/nfkit")


def state_dir_default() -> Path:
    """The state directory: ``$NFKIT_STATE_DIR`` or ``/var/lib/nfkit``."""
    env = os.environ.get("NFKIT_STATE_DIR")
    return Path(env) if env else DEFAULT_STATE_DIR


def iptables_tools(family: str) -> tuple[str, str]:
    return ("ip6tables-restore", "ip6tables-save") if family == "ipv6" else (
        "iptables-restore", "iptables-save")


# -- backup ---------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Backup:
    """The previous state: how to restore the rules, and the sysctl values before."""

    path: Path
    backend: str
    netns: str | None
    restore: dict[str, str]
    sysctls: dict[str, str | None]

    def save(self) -> None:
        """Write the backup (restore text beside a JSON description)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        for family, text in self.restore.items():
            self.path.with_suffix(f".{family}.rules").write_text(text)
        data = {"backend": self.backend, "netns": self.netns, "sysctls": self.sysctls,
                "families": sorted(self.restore)}
        atomic_write(self.path, json.dumps(data, indent=2) + "\n")

    @classmethod
    def load(cls, path: Path) -> Backup:
        """Read a backup written by :meth:`save`."""
        try:
            data = json.loads(path.read_text())
            if not isinstance(data, dict):
                raise ValueError("not a JSON object")
            restore = {str(fam): path.with_suffix(f".{fam}.rules").read_text()
                       for fam in data["families"]}
            backend, netns, sysctls = data["backend"], data.get("netns"), data.get("sysctls", {})
            if backend not in ("nftables", "iptables"):
                raise ValueError(f"unknown backend {backend!r}")
            if netns is not None and not isinstance(netns, str):
                raise ValueError(f"netns {netns!r} is not a name")
            try:
                Netns(netns)
            except ConfigError as exc:
                raise ValueError(str(exc)) from None
            if not isinstance(sysctls, dict) or not all(
                isinstance(v, str | None) for v in sysctls.values()
            ):
                raise ValueError("sysctls must map names to strings")
        except KeyError as exc:
            raise ApplyError(f"cannot read backup {path}: no {exc} in it") from None
        except (OSError, ValueError, TypeError, RecursionError) as exc:
            raise ApplyError(f"cannot read backup {path}: {exc}") from None
        return cls(path, backend, netns, restore, {str(k): v for k, v in sysctls.items()})


def atomic_write(path: Path, text: str) -> None:
    """Replace ``path`` with ``text``: temp file, fsync, ``os.replace`` (never half a file)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with tmp.open("w") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def restore_backup(backup: Backup) -> list[str]:
    """Load the backup's rules and put its sysctl values back; return problems (empty: ok)."""
    netns = Netns(backup.netns)
    problems: list[str] = []
    for family, text in backup.restore.items():
        if backup.backend == "nftables":
            done = netns.run(["nft", "-f", "-"], input=text)
        else:
            done = netns.run([iptables_tools(family)[0], "-w"], input=text)
        if done.returncode != 0:
            problems.append(f"restoring {family} rules: {done.stderr.strip()}")
    sysctls = Sysctls(netns)
    for key, value in backup.sysctls.items():
        if value is None:
            continue
        try:
            if sysctls.read(key) != value:
                sysctls.write(key, value)
        except (ApplyError, DiscoveryError) as exc:
            problems.append(str(exc))
    return problems


# -- apply ----------------------------------------------------------------------------------------
def stale_pending(pending: Path) -> bool:
    """True when ``pending`` exists but no watchdog process is watching it (after a reboot)."""
    if not pending.exists():
        return False
    needle = str(pending).encode()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes()
        except OSError:
            continue
        if b"--watchdog" in cmdline and needle in cmdline:
            return False
    return True


def pending_path(state_dir: Path, netns: Netns) -> Path:
    return state_dir.absolute() / f"pending-{netns.label}.json"


def start_watchdog(pending: Path, backup: Backup, deadline: float, state_dir: Path) -> None:
    data = {"backup": str(backup.path), "netns": backup.netns, "deadline": deadline}
    atomic_write(pending, json.dumps(data, indent=2) + "\n")
    package_parent = str(Path(__file__).resolve().parent.parent)
    python_path = os.pathsep.join(filter(None, [package_parent, os.environ.get("PYTHONPATH")]))
    argv = [sys.executable, "-m", "nfkit", "apply", "--watchdog", str(pending)]
    log = state_dir / f"watchdog-{pending.stem.removeprefix('pending-')}.log"
    if _start_with_systemd_run(argv, python_path, pending):
        return
    env = {**os.environ, "PYTHONPATH": python_path}
    with log.open("ab") as log_file:
        # A new session (setsid): no controlling terminal, so a closed terminal or SSH
        # connection (SIGHUP to the session) does not reach the watchdog.
        subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=log_file,
            cwd="/",
            env=env,
            start_new_session=True,
            close_fds=True,
        )


def _start_with_systemd_run(argv: list[str], python_path: str, pending: Path) -> bool:
    """Run the watchdog as a transient systemd unit when systemd runs the machine.

    A unit of its own also survives logind ending the user's session (``KillUserProcesses``),
    which a setsid process inside the session's cgroup would not. False when not available.
    """
    if not Path("/run/systemd/system").is_dir() or shutil.which("systemd-run") is None:
        return False
    unit = f"nfkit-watchdog-{pending.stem.removeprefix('pending-')}-{os.getpid()}"
    try:
        done = subprocess.run(
            ["systemd-run", "--quiet", "--collect", f"--unit={unit}",
             f"--setenv=PYTHONPATH={python_path}", "--", *argv],
            capture_output=True, text=True, timeout=30, check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def run_watchdog(pending: Path, poll: float = 0.2) -> tuple[str, list[str]] | None:
    """Wait for the deadline in ``pending``; restore the backup unless it was confirmed.

    Returns None when the trial was confirmed (or undone by someone else), otherwise the backup
    restored and any problems restoring it.
    """
    try:
        data: dict[str, Any] = json.loads(pending.read_text())
    except FileNotFoundError:
        return None  # already confirmed or rolled back
    except (OSError, ValueError, RecursionError) as exc:
        return None if not pending.exists() else ("the backup", [f"cannot read {pending}: {exc}"])
    try:
        deadline = _pending_deadline(data)
    except ValueError as exc:
        return ("the backup", [f"{pending}: {exc}"])
    while time.time() < deadline:
        if not pending.exists():
            return None
        time.sleep(min(poll, max(0.0, deadline - time.time())))
    problems = _claim_and_restore(pending, data)
    return None if problems is None else (str(data["backup"]), problems)


def _claim_and_restore(pending: Path, data: dict[str, Any]) -> list[str] | None:
    """Atomically claim the pending file and restore; None when someone else claimed it."""
    claimed = pending.with_name(pending.name + ".rollback")
    try:
        pending.rename(claimed)
    except FileNotFoundError:
        return None
    try:
        return restore_backup(Backup.load(Path(data["backup"])))
    except ApplyError as exc:
        return [str(exc)]
    finally:
        claimed.unlink(missing_ok=True)


def _pending_deadline(data: object) -> float:
    """The deadline of a pending file's content; ``ValueError`` when it is not one."""
    if not isinstance(data, dict) or not isinstance(data.get("backup"), str):
        raise ValueError("not an nfkit --try state file (no backup named)")
    deadline = data.get("deadline")
    if not isinstance(deadline, int | float) or isinstance(deadline, bool):
        raise ValueError(f"deadline {deadline!r} is not a time")
    return float(deadline)


def _read_pending(pending: Path, netns: Netns) -> dict[str, Any]:
    try:
        data: dict[str, Any] = json.loads(pending.read_text())
    except FileNotFoundError:
        raise ApplyError(
            f"no trial apply is pending in {netns} (already confirmed, or rolled back "
            "because the time ran out)"
        ) from None
    except NotADirectoryError:
        raise ApplyError(f"cannot read {pending}: the state directory is not a directory") from None
    except (OSError, ValueError, RecursionError) as exc:
        raise ApplyError(f"cannot read {pending}: {exc}") from None
    try:
        _pending_deadline(data)
    except ValueError as exc:
        raise ApplyError(f"{pending}: {exc}; remove it after checking the ruleset") from None
    return data


def confirm(netns: Netns | None = None, state_dir: Path | None = None) -> Path:
    """Keep the ruleset loaded by ``--try``; return the backup path it would have restored."""
    where = netns or Netns()
    pending = pending_path(state_dir or state_dir_default(), where)
    data = _read_pending(pending, where)
    try:
        pending.unlink()
    except FileNotFoundError:
        raise ApplyError(
            f"too late: the trial in {where} was already rolled back"
        ) from None
    return Path(data["backup"])


def rollback(netns: Netns | None = None, state_dir: Path | None = None) -> Path:
    """Undo a pending ``--try`` now; return the backup that was restored."""
    where = netns or Netns()
    pending = pending_path(state_dir or state_dir_default(), where)
    data = _read_pending(pending, where)
    problems = _claim_and_restore(pending, data)
    if problems is None:
        raise ApplyError(f"the trial in {where} was confirmed or rolled back meanwhile")
    if problems:
        raise ApplyError("rollback incomplete: " + "; ".join(problems))
    return Path(data["backup"])
