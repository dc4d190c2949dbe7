"""Semantic checks on the IR, including the Path MTU discovery invariants.

:func:`validate` raises :class:`~nfkit.errors.RuleSemanticError` (or its subclass
:class:`~nfkit.errors.PmtudViolationError`) for the first problem found and returns warnings
(:class:`Diagnostic`) for things that are legal but costly.

The PMTUD invariant: every chain nfkit generates starts by accepting ICMP type 3 code 4
(fragmentation needed), ICMPv6 packet-too-big and the neighbour discovery types, *before* the
conntrack-INVALID drop and before any rule of the policy. A rule that explicitly drops or rejects
those messages shows that its author wants something that would break PMTUD; it is refused unless
the policy says ``pmtud override "reason"``, which also removes the automatic accepts.
"""

from __future__ import annotations

from dataclasses import dataclass

from nfkit import ir
from nfkit.dsl import names
from nfkit.errors import PmtudViolationError, RuleSemanticError
from nfkit.logprefix import LABEL_LIMIT, format_prefix
from nfkit.span import Span

_VERSION_WORD = {4: "IPv4", 6: "IPv6"}

PMTUD_EXPLANATION = (
    "Path MTU discovery needs ICMP fragmentation-needed (type 3 code 4) and ICMPv6 "
    "packet-too-big; without them connections over a smaller-MTU link hang once they send a "
    "full-size packet. nfkit already accepts these (and IPv6 neighbour discovery) before any "
    "drop; remove this rule, or write 'pmtud override \"reason\"' to take responsibility"
)


@dataclass(frozen=True, slots=True)
class Diagnostic:
    """A warning with its place in the policy."""

    message: str
    span: Span

    def render(self, source_line: str | None = None) -> str:
        """Return ``path:line:col: warning: message`` (with the source line when given)."""
        text = f"{self.span}: warning: {self.message}"
        if source_line is not None:
            text += f"\n    {source_line.rstrip()}"
        return text


def _fail(policy: ir.Policy, message: str, span: Span) -> RuleSemanticError:
    return RuleSemanticError(message, span, policy.source_line(span))


def _describe(match: ir.Match) -> str:
    match match:
        case ir.AddressMatch(set_name=str() as name):
            return f"{match.direction} @{name}"
        case ir.AddressMatch():
            shown = ", ".join(ir.show_network(net) for net in match.networks[:2])
            return f"{match.direction} {shown}{', ...' if len(match.networks) > 2 else ''}"
        case ir.IcmpMatch():
            return "icmp" if match.version == 4 else "icmpv6"
        case ir.FamilyMatch():
            return f"family ipv{match.version}"
        case ir.ProtocolMatch():
            return f"proto {', '.join(match.protocols)}"
        case _:
            return type(match).__name__


def rule_versions(
    policy: ir.Policy, matches: tuple[ir.Match, ...], span: Span, extra: tuple[ir.IPVersion, ...]
    = ir.FAMILIES,
) -> tuple[ir.IPVersion, ...]:
    """IP versions a rule applies to; raise when its matches leave none."""
    versions = set(extra)
    reason: ir.Match | None = None
    for match in matches:
        allowed = ir.match_versions(match, policy)
        narrowed = versions & allowed
        if not narrowed:
            if reason is None:
                raise _fail(policy, f"{_describe(match)} is {_family_words(allowed)} but the "
                            f"rule is {_family_words(versions)}-only", match.span)
            raise _fail(
                policy,
                f"{_describe(match)} is {_family_words(allowed)} but the rule is "
                f"{_family_words(versions)}-only because of '{_describe(reason)}' at "
                f"column {reason.span.column}",
                match.span,
            )
        if narrowed != versions or (reason is None and len(allowed) == 1):
            reason = match
        versions = narrowed
    return tuple(sorted(versions))


def _family_words(versions: set[ir.IPVersion] | frozenset[ir.IPVersion]) -> str:
    return "/".join(_VERSION_WORD[v] for v in sorted(versions))


def _check_matches(policy: ir.Policy, matches: tuple[ir.Match, ...], span: Span) -> None:
    protocol: ir.ProtocolMatch | None = None
    seen: dict[str, ir.Match] = {}
    for match in matches:
        key = type(match).__name__ + str(getattr(match, "direction", ""))
        if isinstance(match, ir.IcmpMatch):
            key += str(match.version)
        if key in seen:
            raise _fail(policy, f"{_describe(match)} is given twice in one rule; combine the "
                        "values into one { list }", match.span)
        seen[key] = match
        if isinstance(match, ir.ProtocolMatch):
            protocol = match
    service = next((m for m in matches if isinstance(m, ir.ServiceMatch)), None)
    for match in matches:
        match match:
            case ir.PortMatch():
                if service is not None:
                    raise _fail(policy, "a service already names protocol and ports; drop "
                                f"'{match.direction}' or the service", match.span)
                if protocol is None:
                    raise _fail(policy, f"{match.direction} needs a protocol with ports: write "
                                f"'tcp {match.direction} ...' or 'udp {match.direction} ...'",
                                match.span)
                bad = [p for p in protocol.protocols if p not in names.PORT_PROTOCOLS]
                if bad:
                    raise _fail(policy, f"{match.direction} needs tcp, udp, sctp or udplite; "
                                f"{bad[0]} has no ports", match.span)
            case ir.ServiceMatch():
                if protocol is not None:
                    raise _fail(policy, "a service already names its protocol; drop 'proto'",
                                protocol.span)
            case ir.IcmpMatch():
                if service is not None:
                    raise _fail(policy, "a service is tcp/udp: it cannot match an ICMP type "
                                "in the same rule", match.span)
                if protocol is not None:
                    word = "icmp" if match.version == 4 else "icmpv6"
                    if set(protocol.protocols) != {word}:
                        raise _fail(policy, f"{word} type cannot match {_describe(protocol)}",
                                    match.span)
            case _:
                pass
    rule_versions(policy, matches, span)


def _drops_pmtud(rule: ir.Rule) -> ir.Match | None:
    """Return the match that makes ``rule`` drop PMTUD/NDP ICMP explicitly, or None."""
    if rule.verdict is ir.Verdict.ACCEPT:
        return None
    for match in rule.matches:
        match match:
            case ir.ProtocolMatch() if {"icmp", "icmpv6"} & set(match.protocols):
                has_types = any(isinstance(m, ir.IcmpMatch) for m in rule.matches)
                if not has_types:
                    return match
            case ir.IcmpMatch(version=4):
                for icmp in match.types:
                    if icmp.type == names.FRAG_NEEDED[0] and icmp.code in (
                        None,
                        names.FRAG_NEEDED[1],
                    ):
                        return match
            case ir.IcmpMatch(version=6):
                essential = {names.PACKET_TOO_BIG, *names.NDP_TYPES}
                if any(icmp.type in essential for icmp in match.types):
                    return match
            case _:
                pass
    return None


def _check_log(policy: ir.Policy, chain: str, verdict: str, log: ir.Log, label: str | None,
               span: Span) -> None:
    try:
        format_prefix(chain, verdict, label, tag=policy.tag)
    except ValueError as exc:
        raise _fail(policy, str(exc), span) from None


def validate(policy: ir.Policy) -> tuple[Diagnostic, ...]:
    """Check ``policy``; raise on the first error, return warnings."""
    warnings: list[Diagnostic] = []
    for chain in policy.chains:
        if chain.policy_log is not None:
            _check_log(policy, chain.hook, chain.policy, chain.policy_log, "policy",
                       chain.policy_log.span)
        for rule in chain.rules:
            _check_matches(policy, rule.matches, rule.span)
            _check_interfaces(policy, chain.hook, rule.matches)
            if rule.log is not None:
                _check_log(policy, chain.hook, rule.verdict, rule.log, rule.log.label,
                           rule.log.span)
            if rule.limit is not None:
                if rule.verdict is not ir.Verdict.ACCEPT:
                    raise _fail(policy, "a limit says how much to accept: use it with 'accept' "
                                "(what goes over the limit is dropped)", rule.limit.span)
                if rule.log is not None:
                    over = "reject" if isinstance(rule.limit, ir.ConnLimit) else "drop"
                    _check_log(policy, chain.hook, over, rule.log, LABEL_LIMIT, rule.log.span)
            offending = _drops_pmtud(rule)
            if offending is not None and policy.pmtud_override is None:
                raise PmtudViolationError(
                    f"this rule would {rule.verdict} ICMP needed for Path MTU discovery. "
                    + PMTUD_EXPLANATION,
                    offending.span,
                    policy.source_line(offending.span),
                )
    for nat in policy.nat:
        _check_nat(policy, nat)
    for sysctl in policy.sysctls:
        if sysctl.key == "net.ipv4.tcp_window_scaling" and sysctl.value == "0":
            warnings.append(Diagnostic(
                "disabling TCP window scaling costs throughput: every TCP connection is capped "
                "at 64 KiB in flight (about 5 Mbit/s at 100 ms round trip); keep it on and "
                "let be_liberal cope with the middlebox instead", sysctl.span))
    if policy.pmtud_override is not None:
        warnings.append(Diagnostic(
            "pmtud override: nfkit does not accept ICMP fragmentation-needed, packet-too-big "
            "and neighbour discovery for you; this policy must", policy.pmtud_override.span))
    return tuple(warnings)


def _check_interfaces(policy: ir.Policy, hook: ir.Hook, matches: tuple[ir.Match, ...]) -> None:
    """input packets have no output interface, output packets no input interface."""
    wrong = {ir.Hook.INPUT: "oif", ir.Hook.OUTPUT: "iif"}.get(hook)
    for match in matches:
        if isinstance(match, ir.InterfaceMatch) and match.direction == wrong:
            side = "input" if wrong == "iif" else "output"
            raise _fail(policy, f"packets in the {hook} chain have no {side} interface: "
                        f"'{wrong}' never matches there", match.span)


def _check_nat(policy: ir.Policy, nat: ir.NatRule) -> None:
    _check_matches(policy, nat.matches, nat.span)
    versions: tuple[ir.IPVersion, ...] = ir.FAMILIES
    match nat.action:
        case ir.Masquerade() | ir.Snat():
            bad = next((m for m in nat.matches
                        if isinstance(m, ir.InterfaceMatch) and m.direction == "iif"), None)
            if bad is not None:
                raise _fail(policy, "source NAT happens on the way out: match 'oif', not 'iif'",
                            bad.span)
        case ir.Dnat():
            bad = next((m for m in nat.matches
                        if isinstance(m, ir.InterfaceMatch) and m.direction == "oif"), None)
            if bad is not None:
                raise _fail(policy, "destination NAT happens on the way in: match 'iif', not "
                            "'oif'", bad.span)
    if isinstance(nat.action, ir.Snat | ir.Dnat):
        versions = (nat.action.address.version,)
        if nat.action.port is not None:
            protocol = next((m for m in nat.matches if isinstance(m, ir.ProtocolMatch)), None)
            if protocol is None or not set(protocol.protocols) <= {"tcp", "udp", "sctp"}:
                raise _fail(policy, "a NAT port needs 'tcp dport ...' or 'proto tcp' in the rule",
                            nat.span)
    rule_versions(policy, nat.matches, nat.span, versions)
