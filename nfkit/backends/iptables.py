"""The iptables backend: ``iptables-restore`` / ``ip6tables-restore`` files and ipsets.

nfkit owns only its own chains (``NFKIT-INPUT``, ``NFKIT-FORWARD``, ``NFKIT-OUTPUT``, helpers
``NFKIT-INPUT-LIMIT1`` ..., and ``NFKIT-PREROUTING`` / ``NFKIT-POSTROUTING`` in the nat table).
The files are loaded with ``--noflush``: declaring a chain flushes just that chain, so Docker's and
libvirt's rules survive. The jump into each chain (``-I INPUT 1 -j NFKIT-INPUT``) is the last line
of its table; the script leaves it out when ``iptables -C`` finds it already there.

Named address sets become ipsets ``nfk-NAME-4`` / ``nfk-NAME-6`` filled through a ``-n`` twin
and swapped in, so a set of 100,000 addresses is one rule per family.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from ipaddress import collapse_addresses
from pathlib import Path
from typing import assert_never

from nfkit import __version__, ir
from nfkit.backends.base import (
    Backend,
    CompiledRuleset,
    Emit,
    IptablesJump,
    Lowered,
    drops_invalid,
    in_output_order,
    lower,
    source_ref,
)
from nfkit.logprefix import LABEL_INVALID, LABEL_LIMIT, LABEL_POLICY, format_prefix
from nfkit.span import Span

PREFIX = "NFKIT-"
_BUILTIN = {"input": "INPUT", "forward": "FORWARD", "output": "OUTPUT"}
_MULTIPORT_SLOTS = 15
_PROTOCOL_WORDS = {"tcp": "tcp", "udp": "udp", "icmp": "icmp", "icmpv6": "ipv6-icmp",
                   "sctp": "sctp", "udplite": "udplite"}
_NUMBERS = {"gre": "47", "esp": "50", "ah": "51"}

# What iptables' rate matches hold (the nftables backend takes far more: nfkit.dsl.values).
# ``limit`` (LOG rates, ``limit rate`` for all sources) keeps the time between two packets in
# steps of 1/10000 s and takes a burst of at most 10000; ``hashlimit`` (``limit rate ... per
# source``) uses steps of 1/1000000 s and a burst of at most 1000000. In the kernel both count
# credits for ``burst`` packets at the rate: burst times the time between two packets must stay
# under MAX_BUCKET_SECONDS (2**32 / 38400 credits for xt_limit; 2**64 / (HZ x credits per jiffy)
# for xt_hashlimit at HZ=300), or the counter overflows and the rule is refused when loaded.
LIMIT_SCALE = 10_000
LIMIT_MAX_BURST = 10_000
HASHLIMIT_SCALE = 1_000_000
HASHLIMIT_MAX_BURST = 1_000_000
#: About 31 hours; ``1/hour`` takes a burst of 31 at most, ``1/day`` a burst of 1.
MAX_BUCKET_SECONDS = 111_848
_LIMIT_MAX_CREDIT = (2**32 - 1) // 38_400 * LIMIT_SCALE + LIMIT_SCALE - 1
_HASHLIMIT_MAX_CREDIT = (2**64 - 1) // 164_926_744
_UNIT_SECONDS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}
_GLOBAL_LOG_RATE = re.compile(r"\s*(log\s+rate)\b")


@dataclass(slots=True)
class IptChain:
    """A chain in one table of one family (view model)."""

    name: str
    lines: list[str] = field(default_factory=list)


@dataclass(slots=True)
class IptTable:
    """One ``*table`` section."""

    name: str
    chains: list[IptChain] = field(default_factory=list)
    jumps: list[IptablesJump] = field(default_factory=list)

    def rule_count(self) -> int:
        """Rules (not comments) in the section."""
        return sum(1 for c in self.chains for line in c.lines if line.startswith("-A"))


def _quote(text: str) -> str:
    return '"' + text.replace('"', "'") + '"'


def _rate(rate: ir.Rate) -> str:
    return f"{rate.count}/{rate.unit}"


def _port_text(port: ir.PortRange) -> str:
    return str(port.low) if port.is_single else f"{port.low}:{port.high}"


def _chunks(ports: tuple[ir.PortRange, ...]) -> list[list[ir.PortRange]]:
    """Split ports into multiport-sized groups (a range takes two of the 15 slots)."""
    out: list[list[ir.PortRange]] = [[]]
    used = 0
    for port in ports:
        cost = 1 if port.is_single else 2
        if used + cost > _MULTIPORT_SLOTS:
            out.append([])
            used = 0
        out[-1].append(port)
        used += cost
    return out


def _product(variants: list[list[str]], options: Iterable[list[str]]) -> list[list[str]]:
    options = list(options)
    return [[*variant, *option] for variant in variants for option in options]


def ipset_name(set_name: str, version: ir.IPVersion) -> str:
    """The ipset holding one IP version of a named set."""
    return f"nfk-{set_name}-{version}"


class IptablesBackend(Backend):
    """Compiles the IR to iptables-restore files, ipset input and a POSIX sh loader script."""

    name = "iptables"


    # -- matches -------------------------------------------------------------------------------
    def variants(self, lowered: Lowered, version: ir.IPVersion, span: Span) -> list[list[str]]:
        """Every iptables argument list one lowered rule needs (cross product of lists)."""
        matches = in_output_order(lowered.matches)
        variants: list[list[str]] = [[]]
        ports = [m for m in matches if isinstance(m, ir.PortMatch)]
        has_icmp = any(isinstance(m, ir.IcmpMatch) for m in matches)
        for match in matches:
            match match:
                case ir.InterfaceMatch():
                    flag = "-i" if match.direction == "iif" else "-o"
                    names = [n[:-1] + "+" if n.endswith("*") else n for n in match.names]
                    if match.negated and len(names) > 1:
                        raise self.unsupported(
                            f"'{match.direction} != {{ ... }}' with several interfaces has no "
                            "single iptables rule; write one rule per interface", match.span)
                    neg = ["!"] if match.negated else []
                    variants = _product(variants, ([*neg, flag, n] for n in names))
                case ir.FamilyMatch():
                    pass
                case ir.AddressMatch():
                    variants = _product(variants, self.address(match, version))
                case ir.ProtocolMatch():
                    if has_icmp:
                        continue
                    options = []
                    for protocol in match.protocols:
                        word = _PROTOCOL_WORDS.get(protocol, _NUMBERS.get(protocol, protocol))
                        if protocol == "icmp" and version == 6:
                            continue
                        if protocol == "icmpv6" and version == 4:
                            continue
                        options.extend(
                            [["-p", word, *port_args] for port_args in self.ports(protocol, ports)]
                        )
                    variants = _product(variants, options)
                case ir.PortMatch():
                    pass  # written with its protocol
                case ir.IcmpMatch():
                    variants = _product(variants, self.icmp(match))
                case ir.CtStateMatch():
                    states = ",".join(s.upper() for s in match.states)
                    variants = _product(variants, [["-m", "conntrack", "--ctstate", states]])
                case ir.CtStatusMatch():
                    # iptables spells the dnat/snat status bits as virtual ctstates.
                    statuses = ",".join(s.upper() for s in match.statuses)
                    variants = _product(variants, [["-m", "conntrack", "--ctstate", statuses]])
                case ir.ServiceMatch():  # pragma: no cover - lowered away
                    raise AssertionError("service not lowered")
                case _:
                    assert_never(match)
        return variants

    def address(self, match: ir.AddressMatch, version: ir.IPVersion) -> list[list[str]]:
        """``-s``/``-d`` options, or an ipset match for a named set."""
        neg = ["!"] if match.negated else []
        if match.set_name is not None:
            where = "src" if match.direction == "saddr" else "dst"
            return [["-m", "set", *neg, "--match-set", ipset_name(match.set_name, version),
                     where]]
        if match.negated and len(match.networks) > 1:
            raise self.unsupported(
                f"'{match.direction} != {{ ... }}' with several addresses has no single "
                "iptables rule; put them in a named set and write "
                f"'{match.direction} != @name'", match.span)
        flag = "-s" if match.direction == "saddr" else "-d"
        return [[*neg, flag, ir.show_network(net)] for net in match.networks]

    @staticmethod
    def ports(protocol: str, ports: list[ir.PortMatch]) -> list[list[str]]:
        """Port options for one protocol: ``-m tcp --dport`` or ``-m multiport``."""
        variants: list[list[str]] = [[]]
        for match in ports:
            if len(match.ports) == 1 and protocol in ("tcp", "udp", "sctp"):
                variants = _product(variants, [["-m", protocol, f"--{match.direction}",
                                                 _port_text(match.ports[0])]])
                continue
            options = [
                ["-m", "multiport", f"--{match.direction}s", ",".join(_port_text(p) for p in chunk)]
                for chunk in _chunks(match.ports)
            ]
            variants = _product(variants, options)
        return variants

    @staticmethod
    def icmp(match: ir.IcmpMatch) -> list[list[str]]:
        """One option list per ICMP type."""
        out = []
        for icmp in match.types:
            value = str(icmp.type) if icmp.code is None else f"{icmp.type}/{icmp.code}"
            if match.version == 4:
                out.append(["-p", "icmp", "-m", "icmp", "--icmp-type", value])
            else:
                out.append(["-p", "ipv6-icmp", "-m", "icmp6", "--icmpv6-type", value])
        return out

    # -- targets ----------------------------------------------------------------------------------
    @staticmethod
    def target(verdict: ir.Verdict, args: list[str]) -> list[str]:
        """``-j`` target; TCP rules reject with a reset."""
        if verdict is ir.Verdict.REJECT:
            if "-p" in args and args[args.index("-p") + 1] == "tcp":
                return ["-j", "REJECT", "--reject-with", "tcp-reset"]
            return ["-j", "REJECT"]
        return ["-j", str(verdict).upper()]

    def prefix(self, chain: str, verdict: str, label: str | None) -> str:
        """The log prefix, always through the shared scheme."""
        return format_prefix(chain, verdict, label, tag=self.policy.tag)

    @staticmethod
    def log_args(rate: ir.Rate, prefix: str) -> list[str]:
        """A rate-limited LOG target."""
        return ["-m", "limit", "--limit", _rate(rate), "--limit-burst", str(rate.burst),
                "-j", "LOG", "--log-prefix", _quote(prefix)]

    @staticmethod
    def line(chain: str, args: list[str], target: list[str], comment: str | None = None) -> str:
        """One ``-A`` line."""
        extra = ["-m", "comment", "--comment", _quote(comment)] if comment else []
        return " ".join(["-A", chain, *args, *extra, *target])

    # -- chains ---------------------------------------------------------------------------------
    def filter_table(self, version: ir.IPVersion) -> IptTable:
        """The ``*filter`` section for one IP version."""
        table = IptTable("filter")
        declared = {chain.hook: chain for chain in self.policy.chains}
        helpers: list[IptChain] = []
        for hook in ir.Hook:
            name = PREFIX + _BUILTIN[hook]
            ipt_chain = IptChain(name)
            table.chains.append(ipt_chain)
            chain = declared.get(hook)
            if chain is None:
                continue  # declared empty: a stale chain from an older policy is emptied
            ipt_chain.lines = self.chain_lines(chain, version, name, helpers)
            table.jumps.append(IptablesJump(version, "filter", _BUILTIN[hook], name))
        table.chains.extend(helpers)
        return table

    def prologue(self, chain: ir.Chain, version: ir.IPVersion, name: str) -> list[str]:
        """PMTUD/NDP ICMP first, then established/related, loopback, INVALID."""
        lines: list[str] = []
        if self.policy.pmtud_override is None:
            lines.append("# nfkit: Path MTU discovery and IPv6 neighbour discovery, before "
                         "anything drops")
            if version == 4:
                lines.append(f"-A {name} -p icmp -m icmp --icmp-type 3/4 -j ACCEPT")
            else:
                for icmp_type in (2, 133, 134, 135, 136):
                    lines.append(
                        f"-A {name} -p ipv6-icmp -m icmp6 --icmpv6-type {icmp_type} -j ACCEPT")
        lines.append(f"-A {name} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT")
        if chain.hook is ir.Hook.INPUT:
            lines.append(f"-A {name} -i lo -j ACCEPT")
        elif chain.hook is ir.Hook.OUTPUT:
            lines.append(f"-A {name} -o lo -j ACCEPT")
        if drops_invalid(chain):
            invalid = self.prefix(str(chain.hook), "drop", LABEL_INVALID)
            lines.append(self.line(name, ["-m", "conntrack", "--ctstate", "INVALID"],
                                   self.log_args(self.policy.log_rate, invalid)))
            lines.append(f"-A {name} -m conntrack --ctstate INVALID -j DROP")
        return lines

    def chain_lines(
        self, chain: ir.Chain, version: ir.IPVersion, name: str, helpers: list[IptChain]
    ) -> list[str]:
        """Every line of one filter chain for one IP version."""
        hook = str(chain.hook)
        lines = self.prologue(chain, version, name)
        for rule in chain.rules:
            lines.append(f"# {source_ref(rule.span)}")
            mark = len(lines)
            for lowered in lower(self.policy, rule.matches, rule.span):
                if lowered.version not in (None, version):
                    continue
                for args in self.variants(lowered, version, rule.span):
                    lines.extend(self.rule_lines(hook, name, rule, args, version, helpers))
            if len(lines) == mark:
                lines.pop()  # the rule has nothing for this IP version
        if chain.policy_log is not None:
            prefix = self.prefix(hook, str(chain.policy), LABEL_POLICY)
            lines.append(f"# {source_ref(chain.policy_log.span)}: default policy")
            lines.append(self.line(name, [], self.log_args(chain.policy_log.rate, prefix)))
        if chain.policy is not ir.Verdict.ACCEPT:
            lines.append(self.line(name, [], self.target(chain.policy, [])))
        return lines

    def rule_lines(
        self,
        hook: str,
        name: str,
        rule: ir.Rule,
        args: list[str],
        version: ir.IPVersion,
        helpers: list[IptChain],
    ) -> list[str]:
        """Lines for one variant of a rule: log, limit overflow, verdict."""
        comment = rule.comment
        target = self.target(rule.verdict, args)
        limit = rule.limit
        if limit is None:
            lines = []
            if rule.log is not None:
                prefix = self.prefix(hook, str(rule.verdict), rule.log.label)
                lines.append(self.line(name, args, self.log_args(rule.log.rate, prefix), comment))
            lines.append(self.line(name, args, target, comment))
            return lines
        over_verdict = ir.Verdict.REJECT if isinstance(limit, ir.ConnLimit) else ir.Verdict.DROP
        over = self.target(over_verdict, args)
        if rule.log is not None:
            self.counter += 1
            helper = IptChain(f"{name}-LIMIT{self.counter}")
            prefix = self.prefix(hook, str(over_verdict), LABEL_LIMIT)
            helper.lines.append(self.line(helper.name, [], self.log_args(rule.log.rate, prefix)))
            if over[-1] == "tcp-reset":
                helper.lines.append(self.line(helper.name, ["-p", "tcp"], over))
            helper.lines.append(self.line(helper.name, [], self.target(over_verdict, [])))
            helpers.append(helper)
            over = ["-j", helper.name]
        match limit:
            case ir.RateLimit(per_source=False):
                return [
                    self.line(name, [*args, "-m", "limit", "--limit", _rate(limit.rate),
                                     "--limit-burst", str(limit.rate.burst)], target, comment),
                    self.line(name, args, over, comment),
                ]
            case ir.RateLimit():
                self.counter += 1
                meter = ["-m", "hashlimit", "--hashlimit-above", _rate(limit.rate),
                         "--hashlimit-burst", str(limit.rate.burst), "--hashlimit-mode", "srcip",
                         "--hashlimit-name", f"nfk-{hook[:3]}{self.counter}"]
            case ir.ConnLimit():
                mask = "32" if version == 4 else "128"
                meter = ["-m", "connlimit", "--connlimit-above", str(limit.count),
                         "--connlimit-mask", mask]
            case _:
                assert_never(limit)
        return [self.line(name, [*args, *meter], over, comment),
                self.line(name, args, target, comment)]

    def nat_table(self, version: ir.IPVersion) -> IptTable | None:
        """The ``*nat`` section for one IP version, when the policy has NAT rules."""
        if not self.policy.nat:
            return None
        table = IptTable("nat")
        pre = IptChain(PREFIX + "PREROUTING")
        post = IptChain(PREFIX + "POSTROUTING")
        for rule in self.policy.nat:
            action = rule.action
            chain = pre if isinstance(action, ir.Dnat) else post
            versions: tuple[ir.IPVersion, ...] = ir.FAMILIES
            if isinstance(action, ir.Snat | ir.Dnat):
                versions = (action.address.version,)
            if version not in versions:
                continue
            produced = [
                self.line(chain.name, args, self.nat_target(action), rule.comment)
                for lowered in lower(self.policy, rule.matches, rule.span, versions)
                if lowered.version in (None, version)
                for args in self.variants(lowered, version, rule.span)
            ]
            if produced:
                chain.lines.append(f"# {source_ref(rule.span)}")
                chain.lines.extend(produced)
        table.chains = [pre, post]
        table.jumps = [IptablesJump(version, "nat", "PREROUTING", pre.name),
                       IptablesJump(version, "nat", "POSTROUTING", post.name)]
        return table

    @staticmethod
    def nat_target(action: ir.NatAction) -> list[str]:
        """MASQUERADE, SNAT or DNAT target."""
        match action:
            case ir.Masquerade():
                return ["-j", "MASQUERADE"]
            case ir.Snat() | ir.Dnat():
                address = action.address.network_address
                host = str(address) if address.version == 4 else f"[{address}]"
                if action.port is None:
                    host = str(address)
                else:
                    host += ":" + (str(action.port.low) if action.port.is_single
                                   else f"{action.port.low}-{action.port.high}")
                if isinstance(action, ir.Snat):
                    return ["-j", "SNAT", "--to-source", host]
                return ["-j", "DNAT", "--to-destination", host]
            case _:
                assert_never(action)

    # -- ipsets -----------------------------------------------------------------------------------
    def ipsets(self) -> tuple[str, str, tuple[str, ...]]:
        """``ipset restore`` input to prepare (fill ``-n`` twins) and to commit (swap)."""
        prepare: list[str] = []
        commit: list[str] = []
        owned: list[str] = []
        for address_set in self.policy.sets:
            for version in address_set.versions:
                nets = list(address_set.of_version(version))
                full = 32 if version == 4 else 128
                if not nets or any(net.prefixlen != full for net in nets):
                    kind = "hash:net"
                    elements = [str(n) for n in collapse_addresses(nets)]  # type: ignore[type-var]
                else:
                    kind = "hash:ip"
                    elements = [str(n.network_address) for n in nets]
                name = ipset_name(address_set.name, version)
                family = "inet" if version == 4 else "inet6"
                maxelem = max(65536, 2 * len(elements))
                spec = f"{kind} family {family} maxelem {maxelem}"
                prepare.append(f"create {name} {spec} -exist")
                prepare.append(f"create {name}-n {spec} -exist")
                prepare.append(f"flush {name}-n")
                prepare.extend(f"add {name}-n {element}" for element in elements)
                commit.append(f"swap {name}-n {name}")
                commit.append(f"destroy {name}-n")
                owned.append(name)
        text = "\n".join(prepare) + "\n" if prepare else ""
        return text, ("\n".join(commit) + "\n" if commit else ""), tuple(owned)

    # -- rates ----------------------------------------------------------------------------------
    def check_rates(self) -> None:
        """Refuse every rate iptables cannot hold (see :data:`MAX_BUCKET_SECONDS`)."""
        policy = self.policy
        if any(drops_invalid(chain) for chain in policy.chains):
            self.check_rate(policy.log_rate, "limit", self.log_rate_span(), "log rate")
        for chain in policy.chains:
            if chain.policy_log is not None:
                self.check_rate(chain.policy_log.rate, "limit", chain.policy_log.span, "log rate")
            for rule in chain.rules:
                if rule.log is not None:
                    self.check_rate(rule.log.rate, "limit", rule.log.span, "log rate")
                if isinstance(rule.limit, ir.RateLimit):
                    match = "hashlimit" if rule.limit.per_source else "limit"
                    self.check_rate(rule.limit.rate, match, rule.limit.span, "limit rate")

    def check_rate(self, rate: ir.Rate, match: str, span: Span, what: str) -> None:
        """Raise ``UnsupportedFeatureError`` when the ``limit``/``hashlimit`` match cannot
        hold ``rate``."""
        scale, max_burst, max_credit = (
            (LIMIT_SCALE, LIMIT_MAX_BURST, _LIMIT_MAX_CREDIT) if match == "limit"
            else (HASHLIMIT_SCALE, HASHLIMIT_MAX_BURST, _HASHLIMIT_MAX_CREDIT)
        )
        seconds = _UNIT_SECONDS[rate.unit]
        shown = f"{rate.count}/{rate.unit} burst {rate.burst}"
        interval = scale * seconds // rate.count  # what the match stores: steps between packets
        if interval == 0:
            raise self.unsupported(
                f"{what} {shown}: the {match} match takes at most {scale}/second "
                f"({scale * 60}/minute, {scale * 3600}/hour, {scale * 86400}/day)", span)
        if rate.burst > max_burst:
            raise self.unsupported(
                f"{what} {shown}: the {match} match takes a burst of at most {max_burst}", span)
        if interval * rate.burst > max_credit:
            raise self.unsupported(
                f"{what} {shown}: the kernel's {match} match cannot count a burst of "
                f"{rate.burst} packets {interval / scale:g} s apart (burst times interval must "
                f"stay under {MAX_BUCKET_SECONDS} s, about 31 hours); lower the burst to at "
                f"most {max_credit // interval} or raise the rate", span)

    def log_rate_span(self) -> Span:
        """Where the policy's ``log rate`` statement is (its first line when there is none)."""
        for path, lines in self.policy.sources.items():
            for number, text in enumerate(lines, 1):
                found = _GLOBAL_LOG_RATE.match(text)
                if found is not None:
                    return Span(path, number, found.start(1) + 1, number, found.end(1) + 1)
        return Span(self.policy.path, 1, 1)

    # -- result ---------------------------------------------------------------------------------
    def restore_file(self, version: ir.IPVersion) -> tuple[str, list[IptablesJump], int]:
        """The ``iptables-restore --noflush`` text for one IP version."""
        self.counter = 0  # helper chains and hashlimit names restart per family
        tables = [self.filter_table(version)]
        nat = self.nat_table(version)
        if nat is not None:
            tables.append(nat)
        text = self.render(
            "iptables/rules.j2",
            version=__version__,
            source=Path(self.policy.path).name,
            family="IPv4" if version == 4 else "IPv6",
            tool="iptables-restore" if version == 4 else "ip6tables-restore",
            tables=tables,
        )
        jumps = [jump for table in tables for jump in table.jumps]
        return text, jumps, sum(table.rule_count() for table in tables)

    def compile(self, emit: Emit = "script") -> CompiledRuleset:
        """Compile to restore files (and the loader script when ``emit == "script"``)."""
        self.check_rates()
        ipv4, jumps4, count4 = self.restore_file(4)
        ipv6, jumps6, count6 = self.restore_file(6)
        prepare, commit, owned = self.ipsets()
        rulesets = {"ipv4": ipv4, "ipv6": ipv6}
        if prepare:
            rulesets["ipset"] = prepare
            rulesets["ipset-commit"] = commit
        sysctls = self.sysctls()
        jumps = (*jumps4, *jumps6)
        if emit == "script":
            text = self.render(
                "iptables/script.sh.j2",
                version=__version__,
                source=Path(self.policy.path).name,
                ipv4=ipv4,
                ipv6=ipv6,
                ipset_prepare=prepare,
                ipset_commit=commit,
                ipsets=owned,
                jumps=jumps,
                rule_count=f"{count4} IPv4 and {count6} IPv6 rules",
                sysctls=sysctls,
                wait_ticks=5 * 10,
            )
        else:
            text = self.render("iptables/ruleset.j2", rulesets=rulesets)
        return CompiledRuleset(
            backend=self.name,
            emit=emit,
            text=text,
            rulesets=rulesets,
            sysctls=sysctls,
            table=PREFIX,
            warnings=self.rendered_warnings(),
            jumps=jumps,
            ipsets=owned,
            policy=self.policy,
        )
