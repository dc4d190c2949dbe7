"""``nfkit doctor``: check a live system (or namespace) and explain each finding with its fix.

The checks read, never write:

* sysctls: be_liberal and tcp_window_scaling, and whether be_liberal survives a reboot;
* the loaded ruleset (``nft -j list ruleset``, plus ``iptables-save`` text for iptables-nft
  tables whose matches nft shows only as opaque ``xt`` objects, and legacy iptables): what
  happens to ICMP fragmentation-needed and ICMPv6 packet-too-big — for a flow conntrack knows
  (``related``) and one it does not (``invalid``) — in every base chain at the input and
  forward hooks; LOG rules and their prefixes; foreign tables hooking where nfkit does;
* the segment the log half uses for attribution (addresses, gateway, gateway MAC).

The ruleset analysis is a pure function of the nft JSON (:func:`check_ruleset`), tested on
fixtures; :func:`run_doctor` gathers the inputs from the kernel.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from nfkit.errors import DiscoveryError
from nfkit.logprefix import DEFAULT_TAG, parse_prefix
from nfkit.logs.segment import discover as discover_segment
from nfkit.netns import Netns
from nfkit.nftcheck import (
    HOOKS_CHECKED,
    PROBES,
    ChainRef,
    Rule,
    Ruleset,
    describe_rule,
    evaluate_hook,
    iptables_save_to_rules,
    iptc_to_save_text,
)
from nfkit.sysctl import BE_LIBERAL, TCP_WINDOW_SCALING, Sysctls

#: The table nfkit's nftables backend owns unless the policy names another.
DEFAULT_TABLE = ("inet", "nfkit")
IP_FORWARD = "net.ipv4.ip_forward"
IPV6_FORWARDING = "net.ipv6.conf.all.forwarding"
#: The systemd unit ``nfkit install-service`` writes.
UNIT_NAME = "nfkit-firewall.service"
SEVERITIES = ("error", "warning", "info")

_PMTUD_FIX = (
    "accept `icmp type destination-unreachable icmp code frag-needed` and `icmpv6 type "
    "packet-too-big` before any drop (and before `ct state invalid drop`); an nfkit policy "
    "does this by itself"
)


@dataclass(frozen=True, slots=True)
class Finding:
    """One problem (or note) found, with what to do about it."""

    code: str
    severity: str
    message: str
    fix: str = ""
    where: str = ""

    @property
    def counts(self) -> bool:
        """True when this finding makes the system unhealthy (exit code 1)."""
        return self.severity in {"error", "warning"}


@dataclass(slots=True)
class Report:
    """Everything doctor found: findings plus the facts they were drawn from."""

    netns: str | None
    findings: list[Finding] = field(default_factory=list)
    sysctls: dict[str, str | None] = field(default_factory=dict)
    tables: list[str] = field(default_factory=list)
    segment: dict[str, Any] = field(default_factory=dict)

    @property
    def healthy(self) -> bool:
        """True when no finding is an error or a warning."""
        return not any(finding.counts for finding in self.findings)

    def to_json(self) -> dict[str, Any]:
        """Return the report as JSON-ready data."""
        return {
            "netns": self.netns,
            "healthy": self.healthy,
            "findings": [asdict(finding) for finding in self.findings],
            "sysctls": self.sysctls,
            "tables": self.tables,
            "segment": self.segment,
        }

    def to_text(self) -> str:
        """Return a human-readable report."""
        lines = [f"nfkit doctor: {self.netns or 'host'} namespace"]
        for key, value in self.sysctls.items():
            lines.append(f"  {key} = {'(absent)' if value is None else value}")
        if self.tables:
            lines.append(f"  tables: {', '.join(self.tables)}")
        if self.segment:
            lines.append("  segment: " + _segment_text(self.segment))
        order = {severity: index for index, severity in enumerate(SEVERITIES)}
        for finding in sorted(self.findings, key=lambda f: order.get(f.severity, 9)):
            where = f" [{finding.where}]" if finding.where else ""
            lines.append(f"{finding.severity}: {finding.code}{where}: {finding.message}")
            if finding.fix:
                lines.append(f"    fix: {finding.fix}")
        lines.append("healthy" if self.healthy else "findings to act on (exit 1)")
        return "\n".join(lines)


def _segment_text(segment: Mapping[str, Any]) -> str:
    networks = ", ".join(segment.get("networks", [])) or "no networks"
    gateways = ", ".join(segment.get("gateway_ips", [])) or "none"
    macs = ", ".join(segment.get("gateway_macs", [])) or "unknown"
    return f"{networks}; gateway {gateways} (MAC {macs})"


# -- sysctls -------------------------------------------------------------------------------------
def check_sysctls(values: Mapping[str, str | None]) -> list[Finding]:
    """Findings about be_liberal and tcp_window_scaling values."""
    findings: list[Finding] = []
    liberal = values.get(BE_LIBERAL)
    if liberal is None:
        findings.append(
            Finding(
                "conntrack_inactive",
                "info",
                f"{BE_LIBERAL} does not exist: conntrack is not active in this namespace "
                "(no loaded rule uses it yet, or the module is not loaded)",
                "load an nfkit policy with `nfkit apply`; it sets be_liberal after the load",
            )
        )
    elif liberal != "1":
        findings.append(
            Finding(
                "be_liberal_off",
                "warning",
                f"{BE_LIBERAL} is {liberal}: conntrack marks TCP packets outside the window it "
                "tracked (window scaling mangled by a middlebox, lost state) INVALID, and a "
                "`ct state invalid drop` then stalls established connections",
                f"`nfkit apply` sets {BE_LIBERAL}=1 after loading the rules "
                "(`conntrack { be_liberal on }`, the default)",
            )
        )
    scaling = values.get(TCP_WINDOW_SCALING)
    if scaling == "0":
        findings.append(
            Finding(
                "tcp_window_scaling_off",
                "warning",
                f"{TCP_WINDOW_SCALING} is 0: the TCP window is capped at 64 KiB, which limits "
                "throughput on any path with latency (disabling it is a workaround for "
                "window-tracking trouble that be_liberal fixes without the cost)",
                f"set {TCP_WINDOW_SCALING}=1 and {BE_LIBERAL}=1 instead",
            )
        )
    return findings


def check_boot_persistence(root: Path, be_liberal_now: str | None) -> list[Finding]:
    """Will be_liberal be set again after a reboot? Looks at ``root`` (normally ``/``)."""
    unit_dirs = [root / "etc/systemd/system", root / "usr/lib/systemd/system",
                 root / "lib/systemd/system"]
    unit = next((d / UNIT_NAME for d in unit_dirs if (d / UNIT_NAME).exists()), None)
    enabled = any((root / "etc/systemd/system").glob(f"*.wants/{UNIT_NAME}"))
    if unit is not None and enabled:
        return _check_unit_policy(root, unit)
    sysctl_lines = list(_sysctl_conf_lines(root))
    if unit is not None:
        return [
            Finding(
                "boot_unit_disabled",
                "warning",
                f"{unit} exists but is not enabled: the rules and be_liberal are not restored "
                "at boot",
                f"systemctl enable {UNIT_NAME}",
            )
        ]
    if sysctl_lines:
        where = ", ".join(f"{path}:{lineno}" for path, lineno in sysctl_lines)
        return [
            Finding(
                "be_liberal_sysctl_conf",
                "warning",
                "be_liberal is set from sysctl.conf, which systemd-sysctl applies early at boot — "
                "before any rule loads conntrack, so on a kernel with conntrack as a module the "
                "sysctl does not exist yet and the line fails (silently)",
                "run `nfkit install-service`: its unit loads the rules, then sets be_liberal",
                where,
            )
        ]
    if be_liberal_now == "1":
        return [
            Finding(
                "be_liberal_not_persistent",
                "warning",
                "be_liberal is 1 now but nothing sets it at boot: it is lost on reboot",
                "run `nfkit install-service` (rules first, then be_liberal)",
            )
        ]
    return []


def _check_unit_policy(root: Path, unit: Path) -> list[Finding]:
    """The enabled unit must name a policy file that exists, or boot loads no rules at all."""
    try:
        text = unit.read_text(errors="replace")
    except OSError:
        return []
    for line in text.splitlines():
        if line.startswith("ExecStart="):
            try:
                words = shlex.split(line.split("=", 1)[1])
            except ValueError:
                return []
            if "apply" in words and words[-1].startswith("/"):
                policy = root / words[-1].lstrip("/")
                if not policy.exists():
                    return [
                        Finding(
                            "boot_policy_missing",
                            "error",
                            f"{unit} loads {words[-1]} at boot, but that file does not exist: "
                            "the boot unit fails and no rules are loaded",
                            f"put the policy at {words[-1]}, or rerun `nfkit install-service "
                            "--policy PATH`",
                            str(unit),
                        )
                    ]
    return []


def _sysctl_conf_lines(root: Path) -> Iterable[tuple[Path, int]]:
    candidates = [root / "etc/sysctl.conf"]
    for folder in ("etc/sysctl.d", "run/sysctl.d", "usr/lib/sysctl.d", "lib/sysctl.d"):
        candidates.extend(sorted((root / folder).glob("*.conf")))
    for path in candidates:
        try:
            text = path.read_text(errors="replace")
        except OSError:
            continue
        for lineno, line in enumerate(text.splitlines(), 1):
            stripped = line.strip()
            if stripped.startswith(("#", ";")):
                continue
            if "tcp_be_liberal" in stripped:
                yield path, lineno


# -- ruleset -------------------------------------------------------------------------------------
def check_ruleset(
    ruleset: Ruleset,
    nfkit_table: tuple[str, str] = DEFAULT_TABLE,
    log_tags: frozenset[str] = frozenset({DEFAULT_TAG}),
    hooks: tuple[str, ...] = HOOKS_CHECKED,
) -> list[Finding]:
    """Findings about a loaded ruleset: PMTUD ICMP at ``hooks``, LOG rules, foreign chains."""
    findings: list[Finding] = []
    findings.extend(_check_pmtud(ruleset, hooks))
    findings.extend(_check_logging(ruleset, log_tags | _own_tags(ruleset, nfkit_table)))
    findings.extend(_check_foreign(ruleset, nfkit_table))
    return findings


def _check_pmtud(ruleset: Ruleset, hooks: tuple[str, ...]) -> list[Finding]:
    findings: list[Finding] = []
    seen: set[tuple[str, str, Any]] = set()
    for hook in hooks:
        for probe in PROBES:
            for outcome in evaluate_hook(ruleset, hook, probe):
                if outcome.verdict not in {"drop", "reject"} and not outcome.maybe:
                    continue
                rule = outcome.rule
                key = (probe.what, str(outcome.chain), rule and (rule.handle, rule.text))
                if key in seen:
                    continue
                seen.add(key)
                findings.append(_pmtud_finding(hook, probe.what, probe.state, outcome))
    return findings


def _pmtud_finding(hook: str, what: str, state: str, outcome: Any) -> Finding:
    chain: ChainRef = outcome.chain
    flow = (
        "for flows conntrack knows (state related)"
        if state == "related"
        else "for flows conntrack does not know (state invalid: after a conntrack flush, a "
        "reboot or asymmetric routing)"
    )
    if outcome.rule is None:
        return Finding(
            "policy_drop_without_icmp_accept",
            "error",
            f"{what} {flow} reaches the end of base chain {chain} (hook {hook}) and its policy "
            "drops it: connections over a smaller-MTU path hang (PMTUD blackhole)",
            _PMTUD_FIX,
            str(chain),
        )
    rule_text = describe_rule(outcome.rule)
    if outcome.maybe:
        return Finding(
            "pmtud_maybe_dropped",
            "warning",
            f"{what} may be dropped {flow} by `{rule_text}` in {chain} (hook {hook}) "
            "depending on interface or address",
            _PMTUD_FIX,
            _where(chain, outcome.rule),
        )
    if outcome.rule.matches_invalid:
        return Finding(
            "invalid_drop_before_icmp_accept",
            "error",
            f"`{rule_text}` in {chain} (hook {hook}) comes before any accept of {what}: an ICMP "
            f"error about a flow conntrack has no entry for is INVALID, so {what} {flow} is "
            "dropped and PMTUD breaks",
            _PMTUD_FIX,
            _where(chain, outcome.rule),
        )
    return Finding(
        "pmtud_blackhole",
        "error",
        f"`{rule_text}` in {chain} (hook {hook}) {outcome.verdict}s {what} {flow}: "
        "connections over a smaller-MTU path hang",
        _PMTUD_FIX,
        _where(chain, outcome.rule),
    )


def _where(chain: ChainRef, rule: Rule) -> str:
    return f"{chain} handle {rule.handle}" if rule.handle is not None else str(chain)


def _own_tags(ruleset: Ruleset, nfkit_table: tuple[str, str]) -> frozenset[str]:
    """Tags used by nfkit's own rules (a policy may set ``log tag``): they are nfkit's scheme."""
    tags = set()
    for chain, _, stmt in ruleset.log_statements():
        own = (chain.family, chain.table) == nfkit_table or chain.name.startswith("NFKIT-")
        prefix = stmt.get("prefix") or ""
        tag = prefix.split(":", 1)[0]
        if own and tag and parse_prefix(prefix, frozenset({tag})) is not None:
            tags.add(tag)
    return frozenset(tags)


def _check_logging(ruleset: Ruleset, log_tags: frozenset[str]) -> list[Finding]:
    logs = [(chain, rule, stmt) for chain, rule, stmt in ruleset.log_statements()]
    if not logs:
        return [
            Finding(
                "no_log_rules",
                "warning",
                "no rule logs anything: the kernel log stays empty and `nfkit summarize` has "
                "nothing to attribute",
                "log the default policy — in an nfkit policy `input policy drop log { ... }`; in "
                "nft `limit rate 10/minute log prefix \"nfkit:input:drop:policy \"` at the end "
                "of the chain",
            )
        ]
    findings: list[Finding] = []
    for chain, rule, stmt in logs:
        where = _where(chain, rule)
        if stmt.get("group") is not None:
            findings.append(
                Finding(
                    "log_to_nflog",
                    "info",
                    f"`{describe_rule(rule)}` logs to NFLOG group {stmt['group']}: the lines go "
                    "to ulogd, not the kernel log",
                    "point `nfkit summarize` at ulogd's LOGEMU file",
                    where,
                )
            )
            continue
        prefix = stmt.get("prefix")
        if not prefix:
            findings.append(
                Finding(
                    "log_without_prefix",
                    "warning",
                    f"`{describe_rule(rule)}` logs without a prefix: its lines cannot be told "
                    "apart from other rules' (which rule, which verdict)",
                    "give it a prefix in nfkit's scheme TAG:CHAIN:VERDICT[:LABEL]",
                    where,
                )
            )
        elif parse_prefix(prefix, log_tags) is None:
            findings.append(
                Finding(
                    "log_prefix_not_nfkit",
                    "info",
                    f"log prefix {prefix!r} is not in nfkit's scheme: `nfkit summarize` counts "
                    "these packets but cannot tell the chain, verdict or an INVALID drop",
                    "use TAG:CHAIN:VERDICT[:LABEL], e.g. `nfkit:input:drop:invalid `",
                    where,
                )
            )
    return findings


def _check_foreign(ruleset: Ruleset, nfkit_table: tuple[str, str]) -> list[Finding]:
    own = [c for c in ruleset.base_chains() if (c.family, c.table) == nfkit_table]
    if not own:
        return [
            Finding(
                "nfkit_not_loaded",
                "info",
                f"table {nfkit_table[0]} {nfkit_table[1]} is not loaded",
                "load a policy with `nfkit apply POLICY`",
            )
        ]
    own_hooks = {c.hook for c in own}
    findings: list[Finding] = []
    for chain in ruleset.base_chains():
        if (chain.family, chain.table) == nfkit_table or chain.hook not in own_hooks:
            continue
        drops = chain.policy == "drop" or ruleset.chain_can_drop(chain)
        findings.append(
            Finding(
                "foreign_base_chain",
                "warning" if drops else "info",
                f"{chain} also hooks {chain.hook} (priority {chain.priority}, policy "
                f"{chain.policy}): "
                + (
                    "it can drop packets nfkit accepts — a drop in any base chain is final, "
                    "whatever the priority"
                    if drops
                    else "it only accepts, so it cannot override nfkit's drops"
                ),
                "check that its rules agree with the nfkit policy (Docker, libvirt and "
                "kube-proxy add such tables; nfkit leaves them alone)",
                str(chain),
            )
        )
    return findings


# -- gathering -----------------------------------------------------------------------------------
def load_ruleset(netns: Netns) -> Ruleset:
    """Read the loaded ruleset (nft JSON, iptables-nft and legacy iptables text)."""
    done = netns.run(["nft", "-j", "list", "ruleset"])
    if done.returncode != 0:
        raise DiscoveryError(f"nft -j list ruleset failed in {netns}: {done.stderr.strip()}")
    try:
        data = json.loads(done.stdout or '{"nftables": []}')
    except json.JSONDecodeError as exc:
        raise DiscoveryError(f"nft -j list ruleset gave unreadable JSON: {exc}") from exc
    ruleset = Ruleset.from_json(data)
    if ruleset.has_xt():
        # iptables-nft rules: nft shows their matches as opaque `xt`; read iptables' own view.
        for family, tool in (("ip", "iptables-save"), ("ip6", "ip6tables-save")):
            text = _run_optional(netns, [tool])
            if text:
                ruleset.replace_xt_tables(family, iptables_save_to_rules(text, family))
    for family, tool in (("ip", "iptables-legacy-save"), ("ip6", "ip6tables-legacy-save")):
        text = _run_optional(netns, [tool])
        if not text and family == "ip" and netns.name is None:
            text = _legacy_via_iptc()
        if text:
            ruleset.add_legacy(family, iptables_save_to_rules(text, family, legacy=True))
    return ruleset


def _legacy_via_iptc() -> str:
    """Legacy IPv4 rules through python-iptables (the ``legacy`` extra), when no save tool exists.

    Only reads, and only tables already loaded: python-iptables drives just the legacy backend
    and is not trusted to write (it has crashed on NFLOG prefixes). It works in the current
    namespace only, so ``--netns`` never uses it.
    """
    try:
        import iptc
    except ImportError:
        return ""
    try:
        names = Path("/proc/net/ip_tables_names").read_text().split()
    except OSError:
        return ""
    try:
        return iptc_to_save_text({name: iptc.Table(name) for name in names})
    except Exception:  # python-iptables raises its own error types for many conditions
        return ""


def _run_optional(netns: Netns, argv: list[str]) -> str:
    try:
        done = netns.run(argv)
    except DiscoveryError:
        return ""
    return done.stdout if done.returncode == 0 else ""


def check_segment(segment: Mapping[str, Any]) -> list[Finding]:
    """Findings about what attribution will be able to do with the discovered segment."""
    if not segment.get("gateway_ips"):
        return [
            Finding(
                "no_default_gateway",
                "info",
                "no default route: attribution cannot tell upstream traffic from peers",
                "give the gateway MAC to `nfkit summarize --gateway-mac`",
            )
        ]
    if not segment.get("gateway_macs"):
        gateways = ", ".join(segment["gateway_ips"])
        return [
            Finding(
                "gateway_mac_unknown",
                "info",
                f"the MAC of gateway {gateways} is not in the neighbour table yet (no traffic to "
                "it so far): attribution calls packets from it peer or unknown until it is",
                "ping the gateway once, or give `nfkit summarize --gateway-mac`",
            )
        ]
    return []


def run_doctor(
    netns: Netns | None = None,
    *,
    nfkit_table: tuple[str, str] = DEFAULT_TABLE,
    log_tags: frozenset[str] = frozenset({DEFAULT_TAG}),
    root: Path = Path("/"),
) -> Report:
    """Run every check against a live namespace; raise :class:`DiscoveryError` if it cannot."""
    where = netns or Netns()
    where.require()
    report = Report(netns=where.name)
    sysctls = Sysctls(where)
    report.sysctls = {key: sysctls.read(key) for key in (BE_LIBERAL, TCP_WINDOW_SCALING)}
    report.findings.extend(check_sysctls(report.sysctls))
    if where.name is None:
        # A named namespace has no boot of its own; only the host's configuration persists.
        report.findings.extend(check_boot_persistence(root, report.sysctls.get(BE_LIBERAL)))
    ruleset = load_ruleset(where)
    report.tables = ruleset.table_names()
    forwarding = {sysctls.read(key) for key in (IP_FORWARD, IPV6_FORWARDING)} - {None, "0"}
    # The forward hook matters only where this host routes packets for others.
    hooks = HOOKS_CHECKED if forwarding else tuple(h for h in HOOKS_CHECKED if h != "forward")
    report.findings.extend(check_ruleset(ruleset, nfkit_table, log_tags, hooks))
    report.segment = dict(discover_segment(where.name).to_dict())
    report.findings.extend(check_segment(report.segment))
    return report
