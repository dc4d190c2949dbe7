"""``nfkit apply``: load a compiled policy into a live namespace, safely.

The order never changes::

    compile -> check (nft -c / iptables-restore --test) -> back up nfkit's own table
            -> load atomically -> set sysctls (be_liberal after the load) -> verify

Only nfkit's own table is replaced (``table inet NAME`` + ``delete table inet NAME`` + the new
table, one ``nft -f`` transaction): Docker's, libvirt's or kube-proxy's tables are not touched.
If any step fails, the previous ruleset and sysctls are put back and :class:`ApplyError` says
what failed.

``--try SECONDS`` hands the backup to a detached watchdog (:mod:`nfkit.rollback`) that restores
it unless the trial is confirmed in time.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nfkit.errors import ApplyError, ConfigError, DiscoveryError, RulesetCheckError
from nfkit.netns import Netns
from nfkit.rollback import (
    Backup,
    iptables_tools,
    pending_path,
    restore_backup,
    stale_pending,
    start_watchdog,
    state_dir_default,
)
from nfkit.sysctl import (
    DEFAULT_APPEAR_TIMEOUT,
    SysctlChange,
    Sysctls,
    apply_sysctls,
    canonical_key,
    is_be_liberal,
)

DEFAULT_TABLE = "nfkit"
BACKENDS = ("nftables", "iptables")

_TOP_LEVEL = re.compile(
    r"(?:(?:add|create|delete|flush|insert|replace|destroy)\s+)?"
    r"(?:table|chain|set|map|element|rule|flowtable|counter|quota|limit|ct\s+\w+)\s+"
    r"(?P<family>\w+)\s+(?P<name>[\w.-]+)"
)
_QUOTED = re.compile(r'"[^"]*"')
_CHAIN_LINE = re.compile(r"^\s*chain\s+([\w.-]+)\s*\{", re.MULTILINE)
_FLUSH_RULESET = re.compile(r"^\s*flush\s+ruleset\b", re.MULTILINE)


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
    #: iptables: ``ipset restore`` input filling nfkit's sets' ``-n`` twins, then the swap.
    ipset: str | None = None
    ipset_commit: str | None = None
    #: Compiler warnings (``path:line:col: warning: ...``), shown by ``nfkit apply``.
    warnings: tuple[str, ...] = ()


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
    #: iptables: the restore text per family, as loaded (jumps already present left out).
    iptables: dict[str, str] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()


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
    _check_top_level(text, plan)
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


def _check_top_level(text: str, plan: Plan) -> None:
    """Every top-level command must name nfkit's own table (``define`` is allowed too)."""
    depth = 0
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = _QUOTED.sub('""', raw).split("#", 1)[0].strip()
        if depth == 0 and line and not line.startswith("define "):
            found = _TOP_LEVEL.match(line)
            if found is None or (found["family"], found["name"]) != (plan.family, plan.table):
                raise ApplyError(
                    f"{plan.source}: ruleset line {lineno} `{raw.strip()}` touches something "
                    f"other than nfkit's own table {plan.family} {plan.table}; nfkit never "
                    "changes other tools' tables"
                )
        depth += line.count("{") - line.count("}")


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


_BUILTIN_CHAINS = {
    "filter": ("INPUT", "FORWARD", "OUTPUT"),
    "nat": ("PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"),
    "mangle": ("PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"),
    "raw": ("PREROUTING", "OUTPUT"),
}


def _empty_tables(saved: str, new: str) -> str:
    """Empty sections for tables the new rules create, so that restoring removes them."""
    have = {line[1:].strip() for line in saved.splitlines() if line.startswith("*")}
    out = []
    for line in new.splitlines():
        name = line[1:].strip() if line.startswith("*") else None
        if name and name not in have and name in _BUILTIN_CHAINS:
            chains = "".join(f":{chain} ACCEPT [0:0]\n" for chain in _BUILTIN_CHAINS[name])
            out.append(f"*{name}\n{chains}COMMIT\n")
            have.add(name)
    return "".join(out)


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
            save_tool = iptables_tools(family)[1]
            done = netns.run([save_tool])
            if done.returncode != 0:
                raise ApplyError(f"{save_tool} failed in {netns}: {done.stderr.strip()}")
            restore[family] = done.stdout + _empty_tables(done.stdout, plan.rulesets[family])
    sysctls = Sysctls(netns)
    before = {key: sysctls.read(key) for key in sysctl_keys}
    backup = Backup(path, plan.backend, netns.name, restore, before)
    try:
        backup.save()
    except OSError as exc:
        raise ApplyError(f"cannot write backup {path}: {exc.strerror or exc}") from exc
    return backup


def _sysctl_keys(plan: Plan, sysctls: Sysctls) -> list[str]:
    keys = []
    for key, _ in plan.sysctls:
        if is_be_liberal(key):
            # Before the load it may not exist yet; record whichever name exists afterwards.
            keys.append(sysctls.be_liberal_key() or canonical_key(key))
        else:
            keys.append(canonical_key(key))
    return keys


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
    result = ApplyResult(netns=where.name, backend=plan.backend, dry_run=dry_run,
                         warnings=plan.warnings)
    pending = pending_path(state, where)
    if not dry_run and stale_pending(pending):
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
    except DiscoveryError as exc:
        raise ApplyError(str(exc)) from exc
    try:
        _load(plan, where, result)
        apply_sysctls(plan.sysctls, sysctls, appear_timeout, done=result.sysctls)
        result.steps.extend(f"sysctl {change.describe()}" for change in result.sysctls)
        _verify(plan, where, result)
        if try_seconds is not None:
            result.deadline = time.time() + try_seconds
            result.pending = pending
            start_watchdog(pending, backup, result.deadline, state)
    except (ApplyError, DiscoveryError, OSError) as exc:
        pending.unlink(missing_ok=True)
        problems = restore_backup(backup)
        tail = ("; the previous ruleset and sysctls were restored" if not problems
                else "; restoring the backup ALSO failed: " + "; ".join(problems))
        raise ApplyError(f"{exc}{tail} (backup: {backup.path})") from exc
    except KeyboardInterrupt:
        # Interrupted half-way (rules loaded, sysctls not yet): put the old state back.
        pending.unlink(missing_ok=True)
        restore_backup(backup)
        raise
    if try_seconds is not None:
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
    if plan.ipset:
        # Fills only the "-n" twins of nfkit's own sets: the running rules do not see them yet.
        done = netns.run(["ipset", "restore"], input=plan.ipset)
        if done.returncode != 0:
            raise RulesetCheckError(f"ipset restore failed (rules untouched): "
                                    f"{done.stderr.strip()}")
    texts = {}
    for family, text in plan.rulesets.items():
        tool = iptables_tools(family)[0]
        text = _without_present_jumps(plan, netns, family, text)
        done = netns.run([tool, "-w", "--test", "--noflush"], input=text)
        if done.returncode != 0:
            raise RulesetCheckError(
                f"{tool} --test rejected the {family} rules (nothing was changed):\n"
                f"{done.stderr.strip()}"
            )
        texts[family] = text
        result.steps.append(f"checked with {tool} --test")
    result.iptables = texts
    result.transaction = "\n".join(texts.values())


def _without_present_jumps(plan: Plan, netns: Netns, family: str, text: str) -> str:
    """Leave out the jumps into nfkit's chains that ``iptables -C`` finds already there."""
    version = "6" if family == "ipv6" else "4"
    tool = "ip6tables" if family == "ipv6" else "iptables"
    present: set[tuple[str, str]] = set()
    for jump_version, table, builtin, target, line in plan.jumps:
        if jump_version != version:
            continue
        done = netns.run([tool, "-w", "-t", table, "-C", builtin, "-j", target])
        if done.returncode == 0:
            present.add((table, line))
    if not present:
        return text
    kept: list[str] = []
    table = ""
    for line in text.splitlines():
        if line.startswith("*"):
            table = line[1:].strip()
        if (table, line.strip()) not in present:
            kept.append(line)
    return "\n".join(kept) + "\n"


def _load(plan: Plan, netns: Netns, result: ApplyResult) -> None:
    if plan.backend == "nftables":
        done = netns.run(["nft", "-f", "-"], input=result.transaction)
        if done.returncode != 0:
            raise ApplyError(f"nft -f failed (nothing was changed): {done.stderr.strip()}")
        result.steps.append(f"loaded table {plan.family} {plan.table} atomically")
        return
    for family, text in result.iptables.items():
        tool = iptables_tools(family)[0]
        done = netns.run([tool, "-w", "--noflush"], input=text)
        if done.returncode != 0:
            raise ApplyError(f"{tool} --noflush failed: {done.stderr.strip()}")
        result.steps.append(f"loaded the {family} {plan.table}* chains with {tool} --noflush")
    if plan.ipset_commit:
        done = netns.run(["ipset", "restore"], input=plan.ipset_commit)
        if done.returncode != 0:
            raise ApplyError(f"ipset swap failed: {done.stderr.strip()}")
        result.steps.append("swapped the new ipset contents in")


def _verify(plan: Plan, netns: Netns, result: ApplyResult) -> None:
    if plan.backend == "nftables":
        data = json.loads(_nft(netns, ["-j", "list", "table", plan.family, plan.table]))
        chains = {obj["chain"]["name"] for obj in data.get("nftables", []) if "chain" in obj}
        missing = expected_chains(result.transaction) - chains
        if missing:
            raise ApplyError(f"verification failed: chains {sorted(missing)} are not loaded")
    else:
        _verify_iptables(plan, netns, result)
    sysctls = Sysctls(netns)
    for change in result.sysctls:
        now = sysctls.read(change.key)
        if now != change.after:
            raise ApplyError(f"verification failed: {change.key} reads {now!r}, "
                             f"expected {change.after!r}")
    result.steps.append("verified: ruleset and sysctls read back as loaded")


def _verify_iptables(plan: Plan, netns: Netns, result: ApplyResult) -> None:
    for family, text in plan.rulesets.items():
        tool = "ip6tables" if family == "ipv6" else "iptables"
        table = ""
        for line in text.splitlines():
            if line.startswith("*"):
                table = line[1:].strip()
            elif line.startswith(":"):
                chain = line[1:].split()[0]
                done = netns.run([tool, "-w", "-t", table, "-S", chain])
                if done.returncode != 0:
                    raise ApplyError(f"verification failed: {tool} -t {table} chain {chain} "
                                     "is not loaded")
        version = "6" if family == "ipv6" else "4"
        for jump_version, jtable, builtin, target, _ in plan.jumps:
            if jump_version != version:
                continue
            done = netns.run([tool, "-w", "-t", jtable, "-C", builtin, "-j", target])
            if done.returncode != 0:
                raise ApplyError(f"verification failed: no jump {builtin} -> {target} "
                                 f"in {tool} -t {jtable}")


# -- --try: pending state and the watchdog --------------------------------------------------------
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
    if path.is_dir():
        raise ApplyError(f"{policy}: is a directory, not a policy file")
    if not path.is_file():
        raise ApplyError(f"{policy}: no such policy file")
    try:
        compiled = compile_policy(path, backend="iptables" if backend == "iptables" else
                                  "nftables", emit="ruleset")
    except ConfigError as exc:  # the file could not be read (compile_policy says why)
        raise ApplyError(str(exc)) from None
    return plan_from_compiled(compiled, str(policy))


def plan_from_compiled(compiled: Any, source: str = "<policy>") -> Plan:
    """Turn the compiler's ``CompiledRuleset`` into a :class:`Plan`."""
    sysctls = tuple((s.key, s.value) for s in compiled.sysctls)
    warnings = tuple(compiled.warnings) + tuple(
        f"{source}: warning: {s.key}={s.value}: {s.warning}"
        for s in compiled.sysctls
        if s.warning and not any(s.key in w for w in compiled.warnings)
    )
    if compiled.backend == "nftables":
        family, _, table = str(compiled.table).partition(" ")
        return Plan("nftables", {family: compiled.rulesets["nft"]}, table=table, family=family,
                    sysctls=sysctls, source=source, warnings=warnings)
    jumps = tuple(
        (str(j.version), j.table, j.builtin, j.target, j.rule) for j in compiled.jumps
    )
    rulesets = {k: v for k, v in compiled.rulesets.items() if k in ("ipv4", "ipv6") and v}
    return Plan("iptables", rulesets, table=str(compiled.table), family="",
                sysctls=sysctls, source=source, jumps=jumps,
                ipset=compiled.rulesets.get("ipset") or None,
                ipset_commit=compiled.rulesets.get("ipset-commit") or None, warnings=warnings)
