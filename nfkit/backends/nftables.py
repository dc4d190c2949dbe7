"""The nftables backend: one ``inet`` table owned by nfkit, loaded atomically with ``nft -f``.

The ruleset file creates the table, deletes it and recreates it in one transaction, so loading
it replaces nfkit's table and nothing else (no ``flush ruleset``: Docker's and libvirt's tables
survive). Named address sets become nft sets (``NAME_v4`` / ``NAME_v6``), so a set of 100,000
addresses is one rule.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from ipaddress import collapse_addresses
from pathlib import Path
from typing import assert_never

from nfkit import __version__, ir
from nfkit.backends.base import (
    Backend,
    CompiledRuleset,
    Emit,
    Lowered,
    drops_invalid,
    in_output_order,
    lower,
    source_ref,
)
from nfkit.dsl import names
from nfkit.logprefix import LABEL_INVALID, LABEL_LIMIT, LABEL_POLICY, format_prefix

TABLE = "nfkit"
_HOOK_PRIORITY = {"prerouting": "dstnat", "postrouting": "srcnat"}


@dataclass(slots=True)
class NftSet:
    """A set in the table (view model)."""

    name: str
    type: str
    flags: str = ""
    extra: list[str] = field(default_factory=list)
    elements: list[str] = field(default_factory=list)


@dataclass(slots=True)
class NftChain:
    """A chain in the table (view model): header line and rule lines (``#`` lines allowed)."""

    name: str
    header: str
    lines: list[str] = field(default_factory=list)

    @property
    def rule_count(self) -> int:
        """Rules in the chain (comment lines excluded)."""
        return sum(1 for line in self.lines if not line.startswith("#"))


def _quote(text: str) -> str:
    return '"' + text.replace('"', "'") + '"'


def _list(values: list[str]) -> str:
    return values[0] if len(values) == 1 else "{ " + ", ".join(values) + " }"


def _ports(ports: tuple[ir.PortRange, ...]) -> str:
    return _list([str(p.low) if p.is_single else f"{p.low}-{p.high}" for p in ports])


def _rate(rate: ir.Rate) -> str:
    return f"{rate.count}/{rate.unit} burst {rate.burst} packets"


def _protocol(name: str) -> str:
    # nft resolves other names through /etc/protocols, which a minimal system may lack.
    if name in ("tcp", "udp", "icmp", "icmpv6"):
        return name
    return str(names.PROTOCOLS.get(name, name))


def _version_word(version: ir.IPVersion) -> str:
    return "ip" if version == 4 else "ip6"


class NftablesBackend(Backend):
    """Compiles the IR to an ``nft -f`` file and a POSIX sh loader script."""

    name = "nftables"

    sets: list[NftSet]
    chains: list[NftChain]

    # -- expressions -----------------------------------------------------------------------
    def expressions(self, lowered: Lowered) -> list[str]:
        """The match expressions of one lowered rule, in a stable order."""
        version = lowered.version
        matches = in_output_order(lowered.matches)
        out: list[str] = []
        if version is not None and not any(ir.pins_version(m) for m in matches):
            out.append(f"meta nfproto ipv{version}")
        protocol = next((m for m in matches if isinstance(m, ir.ProtocolMatch)), None)
        has_ports = any(isinstance(m, ir.PortMatch) for m in matches)
        has_icmp = any(isinstance(m, ir.IcmpMatch) for m in matches)
        for match in matches:
            match match:
                case ir.InterfaceMatch():
                    word = "iifname" if match.direction == "iif" else "oifname"
                    neg = "!= " if match.negated else ""
                    out.append(f"{word} {neg}{_list([_quote(n) for n in match.names])}")
                case ir.FamilyMatch():
                    out.append(f"meta nfproto ipv{match.version}")
                case ir.AddressMatch():
                    assert version is not None
                    neg = "!= " if match.negated else ""
                    fam = _version_word(version)
                    if match.set_name is not None:
                        out.append(f"{fam} {match.direction} {neg}@{match.set_name}_v{version}")
                    else:
                        values = _list([ir.show_network(net) for net in match.networks])
                        out.append(f"{fam} {match.direction} {neg}{values}")
                case ir.ProtocolMatch():
                    single = len(match.protocols) == 1
                    if has_ports and single:
                        continue  # written as "tcp dport ..."
                    if has_icmp and single:
                        continue  # "icmp type ..." implies the protocol
                    out.append(f"meta l4proto {_list([_protocol(p) for p in match.protocols])}")
                case ir.PortMatch():
                    assert protocol is not None
                    word = protocol.protocols[0] if len(protocol.protocols) == 1 else "th"
                    out.append(f"{word} {match.direction} {_ports(match.ports)}")
                case ir.IcmpMatch():
                    out.extend(self.icmp(match))
                case ir.CtStateMatch():
                    out.append("ct state " + ",".join(match.states))
                case ir.CtStatusMatch():
                    out.append("ct status " + ",".join(match.statuses))
                case ir.ServiceMatch():  # pragma: no cover - lowered away
                    raise AssertionError("service not lowered")
                case _:
                    assert_never(match)
        return out

    @staticmethod
    def icmp(match: ir.IcmpMatch) -> list[str]:
        """``icmp type ...`` / ``icmpv6 type ...`` (with ``code`` for a single type)."""
        word = "icmp" if match.version == 4 else "icmpv6"
        shown = [names.icmp_type_name(match.version, t.type) or str(t.type) for t in match.types]
        out = [f"{word} type {_list(shown)}"]
        code = match.types[0].code
        if len(match.types) == 1 and code is not None:
            code_name = names.icmp_code_name(code) if match.version == 4 else None
            out.append(f"{word} code {code_name or code}")
        return out

    # -- statements ----------------------------------------------------------------------------
    @staticmethod
    def verdict(verdict: ir.Verdict, matches: tuple[ir.Match, ...]) -> str:
        """The verdict statement; TCP-only rules reject with a reset."""
        if verdict is ir.Verdict.REJECT:
            protocol = next((m for m in matches if isinstance(m, ir.ProtocolMatch)), None)
            if protocol is not None and protocol.protocols == ("tcp",):
                return "reject with tcp reset"
        return str(verdict)

    def prefix(self, chain: str, verdict: str, label: str | None) -> str:
        """The log prefix, always through the shared scheme."""
        return format_prefix(chain, verdict, label, tag=self.policy.tag)

    def log_statement(self, rate: ir.Rate, prefix: str) -> str:
        """A rate-limited log statement."""
        return f"limit rate {_rate(rate)} log prefix {_quote(prefix)}"

    @staticmethod
    def join(parts: list[str], comment: str | None = None) -> str:
        """One rule line."""
        if comment:
            parts = [*parts, f"comment {_quote(comment)}"]
        return " ".join(parts)

    # -- chains ----------------------------------------------------------------------------------
    def prologue(self, chain: ir.Chain) -> list[str]:
        """The safe defaults every filter chain starts with, PMTUD ICMP first."""
        hook = str(chain.hook)
        lines: list[str] = []
        if self.policy.pmtud_override is None:
            lines += [
                "# nfkit: Path MTU discovery and IPv6 neighbour discovery, before anything drops",
                "icmp type destination-unreachable icmp code frag-needed accept",
                "icmpv6 type { packet-too-big, nd-router-solicit, nd-router-advert, "
                "nd-neighbor-solicit, nd-neighbor-advert } accept",
            ]
        else:
            lines.append(f"# nfkit: pmtud override ({source_ref(self.policy.pmtud_override.span)})"
                         ": no automatic PMTUD/NDP accepts")
        lines.append("ct state established,related accept")
        if chain.hook is ir.Hook.INPUT:
            lines.append('iifname "lo" accept')
        elif chain.hook is ir.Hook.OUTPUT:
            lines.append('oifname "lo" accept')
        if drops_invalid(chain):
            invalid = self.prefix(hook, "drop", LABEL_INVALID)
            lines.append("ct state invalid " + self.log_statement(self.policy.log_rate, invalid))
            lines.append("ct state invalid drop")
        return lines

    def chain_lines(self, chain: ir.Chain) -> list[str]:
        """Every line of one filter chain."""
        hook = str(chain.hook)
        lines = self.prologue(chain)
        for rule in chain.rules:
            lines.append(f"# {source_ref(rule.span)}")
            split = rule.limit is not None and (
                isinstance(rule.limit, ir.ConnLimit) or rule.limit.per_source
            )
            for lowered in lower(self.policy, rule.matches, rule.span, split=split):
                lines.extend(self.rule_lines(hook, rule, lowered))
        if chain.policy_log is not None:
            prefix = self.prefix(hook, str(chain.policy), LABEL_POLICY)
            lines.append(f"# {source_ref(chain.policy_log.span)}: default policy")
            lines.append(self.log_statement(chain.policy_log.rate, prefix))
        if chain.policy is ir.Verdict.REJECT:
            lines.append("reject")
        return lines

    def rule_lines(self, hook: str, rule: ir.Rule, lowered: Lowered) -> list[str]:
        """The nft rules for one lowered rule: log, limit overflow, verdict."""
        exprs = self.expressions(lowered)
        verdict = self.verdict(rule.verdict, lowered.matches)
        lines: list[str] = []
        limit = rule.limit
        if limit is None:
            if rule.log is not None:
                prefix = self.prefix(hook, str(rule.verdict), rule.log.label)
                lines.append(self.join([*exprs, self.log_statement(rule.log.rate, prefix)],
                                       rule.comment))
            lines.append(self.join([*exprs, verdict], rule.comment))
            return lines
        over_verdict = ir.Verdict.REJECT if isinstance(limit, ir.ConnLimit) else ir.Verdict.DROP
        over = self.verdict(over_verdict, lowered.matches)
        if rule.log is not None:
            self.counter += 1
            helper = NftChain(f"{hook}_limit{self.counter}", "")
            prefix = self.prefix(hook, str(over_verdict), LABEL_LIMIT)
            helper.lines = [self.log_statement(rule.log.rate, prefix), over]
            self.chains.append(helper)
            over = f"goto {helper.name}"
        match limit:
            case ir.RateLimit(per_source=False):
                test = f"limit rate over {_rate(limit.rate)}"
            case ir.RateLimit():
                test = self.meter(hook, lowered, "rate", f"limit rate over {_rate(limit.rate)}",
                                  limit.rate)
            case ir.ConnLimit():
                test = self.meter(hook, lowered, "conn", f"ct count over {limit.count}", None)
            case _:
                assert_never(limit)
        lines.append(self.join([*exprs, test, over], rule.comment))
        lines.append(self.join([*exprs, verdict], rule.comment))
        return lines

    def meter(
        self, hook: str, lowered: Lowered, kind: str, statement: str, rate: ir.Rate | None
    ) -> str:
        """A per-source dynamic set and the expression that updates it."""
        assert lowered.version is not None
        self.counter += 1
        version = lowered.version
        name = f"nfk_{hook}_{kind}{self.counter}_v{version}"  # "nfk_" is reserved for these
        fam = _version_word(version)
        addr_type = "ipv4_addr" if version == 4 else "ipv6_addr"
        if rate is not None:
            seconds = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}[rate.unit]
            timeout = max(60, 2 * seconds)
            self.sets.append(NftSet(name, addr_type, "dynamic,timeout",
                                    ["size 65535", f"timeout {timeout}s"]))
            return f"update @{name} {{ {fam} saddr {statement} }}"
        self.sets.append(NftSet(name, addr_type, "dynamic", ["size 65535"]))
        return f"add @{name} {{ {fam} saddr {statement} }}"

    def nat_chains(self) -> list[NftChain]:
        """prerouting (dnat) and postrouting (masquerade, snat) chains, when used."""
        pre = NftChain("prerouting", "type nat hook prerouting priority dstnat; policy accept;")
        post = NftChain("postrouting", "type nat hook postrouting priority srcnat; policy accept;")
        for rule in self.policy.nat:
            action = rule.action
            target = pre if isinstance(action, ir.Dnat) else post
            versions: tuple[ir.IPVersion, ...] = ir.FAMILIES
            if isinstance(action, ir.Snat | ir.Dnat):
                versions = (action.address.version,)
            target.lines.append(f"# {source_ref(rule.span)}")
            for lowered in lower(self.policy, rule.matches, rule.span, versions):
                exprs = self.expressions(lowered)
                target.lines.append(self.join([*exprs, self.nat_action(action)], rule.comment))
        return [chain for chain in (pre, post) if chain.lines]

    @staticmethod
    def nat_action(action: ir.NatAction) -> str:
        """The NAT statement."""
        match action:
            case ir.Masquerade():
                return "masquerade"
            case ir.Snat() | ir.Dnat():
                word = "snat" if isinstance(action, ir.Snat) else "dnat"
                address = action.address.network_address
                fam = _version_word(action.address.version)
                host = str(address) if address.version == 4 else f"[{address}]"
                if action.port is None:
                    return f"{word} {fam} to {address}"
                port = (str(action.port.low) if action.port.is_single
                        else f"{action.port.low}-{action.port.high}")
                return f"{word} {fam} to {host}:{port}"
            case _:
                assert_never(action)

    def address_sets(self) -> list[NftSet]:
        """The policy's named sets, one nft set per IP version."""
        out: list[NftSet] = []
        for address_set in self.policy.sets:
            for version in address_set.versions:
                nets = list(address_set.of_version(version))
                addr_type = "ipv4_addr" if version == 4 else "ipv6_addr"
                full = 32 if version == 4 else 128
                # An empty set may be filled at run time with networks: make it an interval set.
                if not nets or any(net.prefixlen != full for net in nets):
                    merged = list(collapse_addresses(nets))  # type: ignore[type-var]
                    elements = [str(net) for net in merged]
                    flags = "interval"
                else:
                    elements = [str(net.network_address) for net in nets]
                    flags = ""
                out.append(NftSet(f"{address_set.name}_v{version}", addr_type, flags, [],
                                  elements))
        return out

    # -- result ------------------------------------------------------------------------------
    def ruleset(self) -> str:
        """The ``nft -f`` text."""
        self.sets = self.address_sets()
        self.chains = []
        filters: list[NftChain] = []
        for chain in self.policy.chains:
            policy = "drop" if chain.policy is ir.Verdict.REJECT else str(chain.policy)
            header = f"type filter hook {chain.hook} priority filter; policy {policy};"
            filters.append(NftChain(str(chain.hook), header, self.chain_lines(chain)))
        helpers = self.chains
        self.chains = [*filters, *helpers, *self.nat_chains()]
        return self.render(
            "nftables/ruleset.nft.j2",
            version=__version__,
            source=Path(self.policy.path).name,
            table=TABLE,
            sets=self.sets,
            chains=self.chains,
        )

    def compile(self, emit: Emit = "script") -> CompiledRuleset:
        """Compile to the ruleset, and to the loader script when ``emit == "script"``."""
        ruleset = self.ruleset()
        sysctls = self.sysctls()
        rule_count = sum(chain.rule_count for chain in self.chains)
        text = ruleset
        if emit == "script":
            text = self.render(
                "nftables/script.sh.j2",
                version=__version__,
                source=Path(self.policy.path).name,
                table=TABLE,
                ruleset=ruleset,
                rule_count=rule_count,
                sysctls=sysctls,
                wait_ticks=5 * 10,
            )
        return CompiledRuleset(
            backend=self.name,
            emit=emit,
            text=text,
            rulesets={"nft": ruleset},
            sysctls=sysctls,
            table=f"inet {TABLE}",
            warnings=self.rendered_warnings(),
            policy=self.policy,
        )

