"""``nfkit apply``: load a compiled policy into a live namespace, safely.

The order never changes::

    compile -> check (nft -c / iptables-restore --test) -> back up nfkit's own table
            -> load atomically -> set sysctls (be_liberal after the load) -> verify

Only nfkit's own table is replaced (``table inet NAME`` + ``delete table inet NAME`` + the new
table, one ``nft -f`` transaction): Docker's, libvirt's or kube-proxy's tables are not touched.
If any step fails, the previous ruleset and sysctls are put back and :class:`ApplyError` says
what failed.

``--try SECONDS`` leaves a *pending* file and a detached watchdog (its own session, so it outlives
the terminal and the SSH connection). Unless :func:`confirm` removes the pending file in time,
the watchdog restores the backup. Whoever claims the pending file first (an atomic ``unlink`` or
``rename``) wins, so a confirmation and a rollback can never both happen.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nfkit.errors import ApplyError, DiscoveryError, RulesetCheckError
from nfkit.netns import Netns
from nfkit.sysctl import DEFAULT_APPEAR_TIMEOUT, SysctlChange, Sysctls, apply_sysctls

#: Where backups and pending ``--try`` state live unless ``NFKIT_STATE_DIR`` says otherwise.
DEFAULT_STATE_DIR = Path("/var/lib/nfkit")
DEFAULT_TABLE = "nfkit"
BACKENDS = ("nftables", "iptables")

_TABLE_LINE = re.compile(r"^\s*(?:add\s+|create\s+)?table\s+(\w+)\s+([\w.-]+)", re.MULTILINE)
_CHAIN_LINE = re.compile(r"^\s*chain\s+([\w.-]+)\s*\{", re.MULTILINE)
_FLUSH_RULESET = re.compile(r"^\s*flush\s+ruleset\b", re.MULTILINE)


def state_dir_default() -> Path:
    """The state directory: ``$NFKIT_STATE_DIR`` or ``/var/lib/nfkit``."""
    env = os.environ.get("NFKIT_STATE_DIR")
    return Path(env) if env else DEFAULT_STATE_DIR


@dataclass(frozen=True, slots=True)
class Plan:
    """What to load: ruleset text per family, the table nfkit owns, sysctls to set after."""

    backend: str
    rulesets: dict[str, str]
    table: str = DEFAULT_TABLE
    family: str = "inet"
    sysctls: tuple[tuple[str, str], ...] = ()
    source: str = "<policy>"
    #: iptables: (version, table, builtin chain, nfkit chain, rule line) jumps to insert once.
    jumps: tuple[tuple[str, str, str, str, str], ...] = ()
    #: iptables: ``ipset restore`` input for nfkit's named sets.
    ipset: str | None = None


@dataclass(slots=True)
class ApplyResult:
    """What ``apply`` did, for the report and for tests."""

    netns: str | None
    backend: str
    dry_run: bool = False
    backup: Path | None = None
    pending: Path | None = None
    deadline: float | None = None
    sysctls: list[SysctlChange] = field(default_factory=list)
    steps: list[str] = field(default_factory=list)
    transaction: str = ""


# -- building the nft transaction -----------------------------------------------------------------
def nft_transaction(plan: Plan) -> str:
    """Return the ``nft -f`` text that replaces nfkit's table and nothing else.

    Raises :class:`ApplyError` when the ruleset would touch another table or flush everything.
    """
    text = plan.rulesets.get(plan.family) or plan.rulesets.get("nft") or ""
    if not text.strip():
        raise ApplyError(f"{plan.source}: the compiled nftables ruleset is empty")
    if _FLUSH_RULESET.search(text):
        raise ApplyError(
            f"{plan.source}: the ruleset contains `flush ruleset`, which would delete other "
            "tools' tables (Docker, libvirt); nfkit replaces only its own table"
        )
    owned = (plan.family, plan.table)
    for family, name in _TABLE_LINE.findall(text):
        if (family, name) != owned:
            raise ApplyError(
                f"{plan.source}: the ruleset touches table {family} {name}; nfkit loads only "
                f"its own table {plan.family} {plan.table}"
            )
    # Drop any create/flush/delete idiom the compiler already put in; ours comes first.
    body = "\n".join(
        line
        for line in text.splitlines()
        if not re.fullmatch(
            rf"\s*(?:(?:add\s+)?table|flush\s+table|delete\s+table)\s+{plan.family}\s+"
            rf"{re.escape(plan.table)}\s*;?\s*",
            line,
        )
    )
    head = f"table {plan.family} {plan.table}\ndelete table {plan.family} {plan.table}\n"
    return head + body.rstrip("\n") + "\n"


def expected_chains(transaction: str) -> set[str]:
    """Chain names the transaction defines (checked against the kernel after loading)."""
    return set(_CHAIN_LINE.findall(transaction))


# -- kernel tools ---------------------------------------------------------------------------------
def _nft(netns: Netns, argv: Sequence[str], text: str | None = None) -> str:
    done = netns.run(["nft", *argv], input=text)
    if done.returncode != 0:
        raise ApplyError(f"nft {' '.join(argv)} failed in {netns}: {done.stderr.strip()}")
    return done.stdout


def check_nft(netns: Netns, transaction: str) -> None:
    """``nft -c -f -``: the kernel checks the transaction without committing it."""
    done = netns.run(["nft", "-c", "-f", "-"], input=transaction)
    if done.returncode != 0:
        raise RulesetCheckError(
            f"nft -c rejected the ruleset (nothing was changed):\n{done.stderr.strip()}"
        )


def current_table(netns: Netns, family: str, table: str) -> str | None:
    """The text of nfkit's table as loaded now, or None when it is not loaded."""
    done = netns.run(["nft", "list", "table", family, table])
    if done.returncode != 0:
        if "No such file" in done.stderr or "does not exist" in done.stderr:
            return None
        raise ApplyError(f"cannot read table {family} {table} in {netns}: {done.stderr.strip()}")
    return done.stdout


def _iptables_tools(family: str) -> tuple[str, str]:
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
        _atomic_write(self.path, json.dumps(data, indent=2) + "\n")

    @classmethod
    def load(cls, path: Path) -> Backup:
        """Read a backup written by :meth:`save`."""
        try:
            data = json.loads(path.read_text())
            restore = {fam: path.with_suffix(f".{fam}.rules").read_text()
                       for fam in data["families"]}
        except (OSError, ValueError, KeyError) as exc:
            raise ApplyError(f"cannot read backup {path}: {exc}") from exc
        return cls(path, data["backend"], data.get("netns"), restore, data.get("sysctls", {}))


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    tmp.replace(path)


def take_backup(plan: Plan, netns: Netns, state_dir: Path, sysctl_keys: Sequence[str]) -> Backup:
    """Save what a rollback needs: nfkit's current table (or its absence) and sysctl values."""
    now = time.time()
    stamp = time.strftime("%Y%m%dT%H%M%S", time.localtime(now)) + f".{int(now % 1 * 1e6):06d}"
    path = state_dir / "backups" / f"{netns.label}-{stamp}-{os.getpid()}.json"
    restore: dict[str, str] = {}
    if plan.backend == "nftables":
        old = current_table(netns, plan.family, plan.table)
        head = f"table {plan.family} {plan.table}\ndelete table {plan.family} {plan.table}\n"
        restore[plan.family] = head + (old or "")
    else:
        for family in plan.rulesets:
            save_tool = _iptables_tools(family)[1]
            done = netns.run([save_tool])
            if done.returncode != 0:
                raise ApplyError(f"{save_tool} failed in {netns}: {done.stderr.strip()}")
            restore[family] = done.stdout
    sysctls = Sysctls(netns)
    before = {key: sysctls.read(key) for key in sysctl_keys}
    backup = Backup(path, plan.backend, netns.name, restore, before)
    try:
        backup.save()
    except OSError as exc:
        raise ApplyError(f"cannot write backup {path}: {exc.strerror or exc}") from exc
    return backup


def restore_backup(backup: Backup) -> list[str]:
    """Load the backup's rules and put its sysctl values back; return problems (empty: ok)."""
    netns = Netns(backup.netns)
    problems: list[str] = []
    for family, text in backup.restore.items():
        if backup.backend == "nftables":
            done = netns.run(["nft", "-f", "-"], input=text)
        else:
            done = netns.run([_iptables_tools(family)[0]], input=text)
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
def _sysctl_keys(plan: Plan, sysctls: Sysctls) -> list[str]:
    from nfkit.sysctl import canonical_key, is_be_liberal

    keys = []
    for key, _ in plan.sysctls:
        if is_be_liberal(key):
            # Before the load it may not exist yet; record whichever name exists afterwards.
            keys.append(sysctls.be_liberal_key() or canonical_key(key))
        else:
            keys.append(canonical_key(key))
    return keys


def _stale_pending(pending: Path) -> bool:
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


def _pending_path(state_dir: Path, netns: Netns) -> Path:
    return state_dir.absolute() / f"pending-{netns.label}.json"


def apply_plan(
    plan: Plan,
    netns: Netns | None = None,
    *,
    state_dir: Path | None = None,
    try_seconds: float | None = None,
    dry_run: bool = False,
    appear_timeout: float = DEFAULT_APPEAR_TIMEOUT,
) -> ApplyResult:
    """Check, back up, load, set sysctls, verify; on failure restore and raise ApplyError."""
    where = netns or Netns()
    try:
        where.require()
    except DiscoveryError as exc:
        raise ApplyError(str(exc)) from exc
    if plan.backend not in BACKENDS:
        raise ApplyError(f"unknown backend {plan.backend!r} (expected one of {BACKENDS})")
    state = state_dir or state_dir_default()
    result = ApplyResult(netns=where.name, backend=plan.backend, dry_run=dry_run)
    pending = _pending_path(state, where)
    if not dry_run and _stale_pending(pending):
        # Its watchdog is gone (a reboot): nobody can confirm or roll back that trial any more.
        pending.unlink(missing_ok=True)
        result.steps.append(f"removed stale trial state {pending}")
    if pending.exists() and not dry_run:
        raise ApplyError(
            f"a trial apply is still pending in {where} ({pending}): confirm it with "
            "`nfkit apply --confirm` or undo it with `nfkit apply --rollback` first"
        )
    try:
        _check(plan, where, result)
        if dry_run:
            result.steps.append("dry run: nothing was changed")
            return result
        sysctls = Sysctls(where)
        backup = take_backup(plan, where, state, _sysctl_keys(plan, sysctls))
        result.backup = backup.path
        result.steps.append(f"backup: {backup.path}")
        _load(plan, where, result)
    except DiscoveryError as exc:
        raise ApplyError(str(exc)) from exc
    try:
        apply_sysctls(plan.sysctls, sysctls, appear_timeout, done=result.sysctls)
        result.steps.extend(f"sysctl {change.describe()}" for change in result.sysctls)
        _verify(plan, where, result)
    except (ApplyError, DiscoveryError) as exc:
        problems = restore_backup(backup)
        tail = ("; the previous ruleset and sysctls were restored" if not problems
                else "; restoring the backup ALSO failed: " + "; ".join(problems))
        raise ApplyError(f"{exc}{tail} (backup: {backup.path})") from exc
    if try_seconds is not None:
        result.deadline = time.time() + try_seconds
        result.pending = pending
        _start_watchdog(pending, backup, result.deadline, state)
        result.steps.append(
            f"trial: unless confirmed within {try_seconds:g} s, the previous ruleset comes back"
        )
    return result


def _check(plan: Plan, netns: Netns, result: ApplyResult) -> None:
    if plan.backend == "nftables":
        result.transaction = nft_transaction(plan)
        check_nft(netns, result.transaction)
        result.steps.append("checked with nft -c")
        return
    for family, text in plan.rulesets.items():
        tool = _iptables_tools(family)[0]
        done = netns.run([tool, "--test"], input=text)
        if done.returncode != 0:
            raise RulesetCheckError(
                f"{tool} --test rejected the {family} rules (nothing was changed):\n"
                f"{done.stderr.strip()}"
            )
        result.steps.append(f"checked with {tool} --test")
    result.transaction = "\n".join(plan.rulesets.values())


def _load(plan: Plan, netns: Netns, result: ApplyResult) -> None:
    if plan.backend == "nftables":
        done = netns.run(["nft", "-f", "-"], input=result.transaction)
        if done.returncode != 0:
            raise ApplyError(f"nft -f failed (nothing was changed): {done.stderr.strip()}")
        result.steps.append(f"loaded table {plan.family} {plan.table} atomically")
        return
    loaded: list[str] = []
    for family, text in plan.rulesets.items():
        tool = _iptables_tools(family)[0]
        done = netns.run([tool], input=text)
        if done.returncode != 0:
            if loaded:
                raise ApplyError(f"{tool} failed after loading {', '.join(loaded)}: "
                                 f"{done.stderr.strip()}")
            raise ApplyError(f"{tool} failed (nothing was changed): {done.stderr.strip()}")
        loaded.append(family)
        result.steps.append(f"loaded {family} rules with {tool}")


def _verify(plan: Plan, netns: Netns, result: ApplyResult) -> None:
    if plan.backend == "nftables":
        data = json.loads(_nft(netns, ["-j", "list", "table", plan.family, plan.table]))
        chains = {obj["chain"]["name"] for obj in data.get("nftables", []) if "chain" in obj}
        missing = expected_chains(result.transaction) - chains
        if missing:
            raise ApplyError(f"verification failed: chains {sorted(missing)} are not loaded")
    sysctls = Sysctls(netns)
    for change in result.sysctls:
        now = sysctls.read(change.key)
        if now != change.after:
            raise ApplyError(f"verification failed: {change.key} reads {now!r}, "
                             f"expected {change.after!r}")
    result.steps.append("verified: ruleset and sysctls read back as loaded")


# -- --try: pending state and the watchdog --------------------------------------------------------
def _start_watchdog(pending: Path, backup: Backup, deadline: float, state_dir: Path) -> None:
    data = {"backup": str(backup.path), "netns": backup.netns, "deadline": deadline}
    _atomic_write(pending, json.dumps(data, indent=2) + "\n")
    package_parent = str(Path(__file__).resolve().parent.parent)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_parent, env.get("PYTHONPATH")]))
    log = state_dir / f"watchdog-{pending.stem.removeprefix('pending-')}.log"
    with log.open("ab") as log_file:
        # A new session: no controlling terminal, so a closed terminal or SSH connection
        # (SIGHUP to the session) does not reach the watchdog.
        subprocess.Popen(
            [sys.executable, "-m", "nfkit", "apply", "--watchdog", str(pending)],
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=log_file,
            cwd="/",
            env=env,
            start_new_session=True,
            close_fds=True,
        )


def run_watchdog(pending: Path, poll: float = 0.2) -> int:
    """Wait for the deadline in ``pending``; restore the backup unless it was confirmed."""
    try:
        data: dict[str, Any] = json.loads(pending.read_text())
    except (OSError, ValueError):
        return 0  # already confirmed or rolled back
    deadline = float(data["deadline"])
    while time.time() < deadline:
        if not pending.exists():
            return 0
        time.sleep(min(poll, max(0.0, deadline - time.time())))
    problems = _claim_and_restore(pending, data)
    if problems is None:
        return 0
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S")
    print(f"{stamp} not confirmed: restored {data['backup']}"
          + (f" with problems: {problems}" if problems else ""), flush=True)
    return 1 if problems else 0


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


def _read_pending(pending: Path, netns: Netns) -> dict[str, Any]:
    try:
        data: dict[str, Any] = json.loads(pending.read_text())
    except FileNotFoundError:
        raise ApplyError(
            f"no trial apply is pending in {netns} (already confirmed, or rolled back "
            "because the time ran out)"
        ) from None
    except (OSError, ValueError) as exc:
        raise ApplyError(f"cannot read {pending}: {exc}") from exc
    return data


def confirm(netns: Netns | None = None, state_dir: Path | None = None) -> Path:
    """Keep the ruleset loaded by ``--try``; return the backup path it would have restored."""
    where = netns or Netns()
    pending = _pending_path(state_dir or state_dir_default(), where)
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
    pending = _pending_path(state_dir or state_dir_default(), where)
    data = _read_pending(pending, where)
    problems = _claim_and_restore(pending, data)
    if problems is None:
        raise ApplyError(f"the trial in {where} was confirmed or rolled back meanwhile")
    if problems:
        raise ApplyError("rollback incomplete: " + "; ".join(problems))
    return Path(data["backup"])


def apply_policy(
    policy: str | Path,
    *,
    backend: str = "nftables",
    netns: Netns | None = None,
    state_dir: Path | None = None,
    try_seconds: float | None = None,
    dry_run: bool = False,
) -> ApplyResult:
    """Compile ``policy`` and apply it (see :func:`apply_plan`)."""
    plan = compile_plan(policy, backend=backend)
    return apply_plan(plan, netns, state_dir=state_dir, try_seconds=try_seconds, dry_run=dry_run)


def compile_plan(policy: str | Path, backend: str = "nftables") -> Plan:
    """Compile a policy file with :func:`nfkit.compiler.compile_policy` into a :class:`Plan`."""
    from nfkit.compiler import compile_policy

    if backend not in BACKENDS:
        raise ApplyError(f"unknown backend {backend!r} (expected one of {BACKENDS})")
    path = Path(policy)
    if not path.is_file():
        raise ApplyError(f"{policy}: no such policy file")
    try:
        compiled = compile_policy(path, backend="iptables" if backend == "iptables" else
                                  "nftables", emit="ruleset")
    except OSError as exc:
        raise ApplyError(f"cannot read {policy}: {exc.strerror or exc}") from exc
    return plan_from_compiled(compiled, str(policy))


def plan_from_compiled(compiled: Any, source: str = "<policy>") -> Plan:
    """Turn the compiler's ``CompiledRuleset`` into a :class:`Plan`."""
    sysctls = tuple((s.key, s.value) for s in compiled.sysctls)
    if compiled.backend == "nftables":
        family, _, table = str(compiled.table).partition(" ")
        return Plan("nftables", {family: compiled.rulesets["nft"]}, table=table, family=family,
                    sysctls=sysctls, source=source)
    jumps = tuple(
        (str(j.version), j.table, j.builtin, j.target, j.rule) for j in compiled.jumps
    )
    rulesets = {k: v for k, v in compiled.rulesets.items() if k in ("ipv4", "ipv6") and v}
    return Plan("iptables", rulesets, table=str(compiled.table), family="",
                sysctls=sysctls, source=source, jumps=jumps,
                ipset=compiled.rulesets.get("ipset") or None)
