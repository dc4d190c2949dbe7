"""The policy IR: what a policy means, independent of any backend.

The parser builds this from a policy file (:func:`nfkit.dsl.parse_policy`); the validator checks
it; every backend reads it and none can change it (frozen, slotted dataclasses holding tuples).
Every node keeps the :class:`~nfkit.span.Span` it came from, excluded from comparisons, so tests
compare structure and errors can point at the source.

Names are already resolved here: ``$variables`` are substituted, services expanded to protocol
and ports, zones and interface aliases expanded to interface names. Only named address sets stay
references (:class:`AddressMatch` ``set_name``), because backends turn them into kernel sets.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from ipaddress import IPv4Network, IPv6Network
from typing import Literal, TypeAlias, assert_never

from nfkit.span import Span

Network: TypeAlias = IPv4Network | IPv6Network
#: IP version: 4 or 6.
IPVersion: TypeAlias = Literal[4, 6]
FAMILIES: tuple[IPVersion, IPVersion] = (4, 6)


class Verdict(enum.StrEnum):
    """What a rule (or a chain's default policy) does with a packet."""

    ACCEPT = "accept"
    DROP = "drop"
    REJECT = "reject"


class Hook(enum.StrEnum):
    """The filter chains a policy can declare."""

    INPUT = "input"
    FORWARD = "forward"
    OUTPUT = "output"


def _no_span() -> Span:
    return Span("<builtin>", 1, 1)


@dataclass(frozen=True, slots=True)
class PortRange:
    """A port or an inclusive range of ports."""

    low: int
    high: int

    @property
    def is_single(self) -> bool:
        """True for one port rather than a range."""
        return self.low == self.high


@dataclass(frozen=True, slots=True)
class Rate:
    """A rate such as ``10/minute`` with a burst in packets."""

    count: int
    unit: Literal["second", "minute", "hour", "day"]
    burst: int


# --------------------------------------------------------------------------------------------
# Matches
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class AddressMatch:
    """``saddr``/``daddr`` against literal networks or a named set (``set_name``)."""

    direction: Literal["saddr", "daddr"]
    networks: tuple[Network, ...]
    set_name: str | None = None
    negated: bool = False
    span: Span = field(default_factory=_no_span, compare=False)


@dataclass(frozen=True, slots=True)
class InterfaceMatch:
    """``iif``/``oif``: interface names (``*`` at the end is a wildcard)."""

    direction: Literal["iif", "oif"]
    names: tuple[str, ...]
    negated: bool = False
    span: Span = field(default_factory=_no_span, compare=False)


@dataclass(frozen=True, slots=True)
class ProtocolMatch:
    """``proto``: layer-4 protocols by name (``tcp``, ``udp``, ``icmp``, ...) or number."""

    protocols: tuple[str, ...]
    span: Span = field(default_factory=_no_span, compare=False)


@dataclass(frozen=True, slots=True)
class PortMatch:
    """``sport``/``dport``: needs a tcp/udp/sctp/udplite protocol match in the same rule."""

    direction: Literal["sport", "dport"]
    ports: tuple[PortRange, ...]
    span: Span = field(default_factory=_no_span, compare=False)


@dataclass(frozen=True, slots=True)
class ServicePort:
    """One protocol with its destination ports, part of a service."""

    protocol: str
    ports: tuple[PortRange, ...]


@dataclass(frozen=True, slots=True)
class ServiceMatch:
    """``service NAME``: protocol and destination ports from the built-in or a user table."""

    names: tuple[str, ...]
    entries: tuple[ServicePort, ...]
    span: Span = field(default_factory=_no_span, compare=False)


@dataclass(frozen=True, slots=True)
class IcmpType:
    """An ICMP or ICMPv6 type with an optional code."""

    type: int
    code: int | None = None


@dataclass(frozen=True, slots=True)
class IcmpMatch:
    """``icmp type ...`` (version 4) or ``icmpv6 type ...`` (version 6)."""

    version: IPVersion
    types: tuple[IcmpType, ...]
    span: Span = field(default_factory=_no_span, compare=False)


@dataclass(frozen=True, slots=True)
class CtStateMatch:
    """``ct state``: conntrack states (new, established, related, invalid, untracked)."""

    states: tuple[str, ...]
    span: Span = field(default_factory=_no_span, compare=False)


@dataclass(frozen=True, slots=True)
class CtStatusMatch:
    """``ct status``: conntrack status bits (dnat, snat)."""

    statuses: tuple[str, ...]
    span: Span = field(default_factory=_no_span, compare=False)


@dataclass(frozen=True, slots=True)
class FamilyMatch:
    """``family ipv4|ipv6``: restrict a rule to one IP version."""

    version: IPVersion
    span: Span = field(default_factory=_no_span, compare=False)


Match: TypeAlias = (
    AddressMatch
    | InterfaceMatch
    | ProtocolMatch
    | PortMatch
    | ServiceMatch
    | IcmpMatch
    | CtStateMatch
    | CtStatusMatch
    | FamilyMatch
)


# --------------------------------------------------------------------------------------------
# Statements attached to rules
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Log:
    """Log matching packets first, rate-limited, with an optional prefix label."""

    rate: Rate
    label: str | None = None
    span: Span = field(default_factory=_no_span, compare=False)


@dataclass(frozen=True, slots=True)
class RateLimit:
    """``limit rate R [per source]``: packets over the rate are dropped."""

    rate: Rate
    per_source: bool = False
    span: Span = field(default_factory=_no_span, compare=False)


@dataclass(frozen=True, slots=True)
class ConnLimit:
    """``limit connections N per source``: connections over N are rejected."""

    count: int
    span: Span = field(default_factory=_no_span, compare=False)


Limit: TypeAlias = RateLimit | ConnLimit


@dataclass(frozen=True, slots=True)
class Rule:
    """One filter rule: matches, optional log and limit, a verdict, and the comment it carries."""

    matches: tuple[Match, ...]
    verdict: Verdict
    log: Log | None = None
    limit: Limit | None = None
    comment: str | None = None
    span: Span = field(default_factory=_no_span, compare=False)


@dataclass(frozen=True, slots=True)
class Chain:
    """A filter chain (input, forward, output) with its default policy and rules."""

    hook: Hook
    policy: Verdict
    rules: tuple[Rule, ...]
    policy_log: Log | None = None
    span: Span = field(default_factory=_no_span, compare=False)


# --------------------------------------------------------------------------------------------
# NAT
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Masquerade:
    """Source NAT to the outgoing interface's address."""


@dataclass(frozen=True, slots=True)
class Snat:
    """Source NAT to a fixed address (optionally a port)."""

    address: Network
    port: PortRange | None = None


@dataclass(frozen=True, slots=True)
class Dnat:
    """Destination NAT (port forwarding) to an address, optionally a port."""

    address: Network
    port: PortRange | None = None


NatAction: TypeAlias = Masquerade | Snat | Dnat


@dataclass(frozen=True, slots=True)
class NatRule:
    """One NAT rule: matches and a masquerade/snat/dnat action."""

    matches: tuple[Match, ...]
    action: NatAction
    comment: str | None = None
    span: Span = field(default_factory=_no_span, compare=False)


# --------------------------------------------------------------------------------------------
# Top level
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class AddressSet:
    """A named address set; IPv4 and IPv6 elements may mix (backends split them)."""

    name: str
    networks: tuple[Network, ...]
    span: Span = field(default_factory=_no_span, compare=False)

    def of_version(self, version: IPVersion) -> tuple[Network, ...]:
        """Return the elements of one IP version."""
        return tuple(net for net in self.networks if net.version == version)

    @property
    def versions(self) -> tuple[IPVersion, ...]:
        """IP versions present; both when the set is empty (it may be filled at run time)."""
        present = tuple(v for v in FAMILIES if any(n.version == v for n in self.networks))
        return present or FAMILIES


@dataclass(frozen=True, slots=True)
class Sysctl:
    """A sysctl the script sets after loading the rules."""

    key: str
    value: str
    span: Span = field(default_factory=_no_span, compare=False)


@dataclass(frozen=True, slots=True)
class PmtudOverride:
    """``pmtud override "reason"``: the policy takes responsibility for PMTUD ICMP itself."""

    reason: str
    span: Span = field(default_factory=_no_span, compare=False)


@dataclass(frozen=True, slots=True)
class Policy:
    """The IR root: everything one policy file (with its includes) says."""

    path: str
    tag: str
    chains: tuple[Chain, ...]
    nat: tuple[NatRule, ...] = ()
    sets: tuple[AddressSet, ...] = ()
    sysctls: tuple[Sysctl, ...] = ()
    be_liberal: bool = True
    pmtud_override: PmtudOverride | None = None
    #: Rate of the logs nfkit adds itself (INVALID drops); the policy's ``log rate``.
    log_rate: Rate = Rate(10, "minute", 5)
    #: Source lines per file, for error messages (not part of the policy's meaning).
    sources: Mapping[str, tuple[str, ...]] = field(default_factory=dict, compare=False)

    def source_line(self, span: Span) -> str | None:
        """Return the source line a span points at, if known."""
        lines = self.sources.get(span.path)
        if lines is None or not 1 <= span.line <= len(lines):
            return None
        return lines[span.line - 1]

    def chain(self, hook: Hook) -> Chain | None:
        """Return the chain for ``hook`` or None when the policy does not declare it."""
        return next((chain for chain in self.chains if chain.hook == hook), None)

    def address_set(self, name: str) -> AddressSet:
        """Return the named address set (the parser guarantees it exists)."""
        return next(s for s in self.sets if s.name == name)


def show_network(network: Network) -> str:
    """A network as text, a single address without its ``/32`` or ``/128``."""
    if network.prefixlen == network.max_prefixlen:
        return str(network.network_address)
    return str(network)


def match_versions(match: Match, policy: Policy) -> frozenset[IPVersion]:
    """IP versions a match can apply to (a negated address match applies to both)."""
    both: frozenset[IPVersion] = frozenset(FAMILIES)
    match match:
        case AddressMatch(negated=True):
            return both
        case AddressMatch(set_name=str() as name):
            return frozenset(policy.address_set(name).versions)
        case AddressMatch():
            return frozenset(net.version for net in match.networks)
        case IcmpMatch() | FamilyMatch():
            return frozenset({match.version})
        case ProtocolMatch():
            if set(match.protocols) == {"icmp"}:
                return frozenset({4})
            if set(match.protocols) == {"icmpv6"}:
                return frozenset({6})
            return both
        case (
            InterfaceMatch() | PortMatch() | ServiceMatch() | CtStateMatch() | CtStatusMatch()
        ):
            return both
        case _:
            assert_never(match)


def pins_version(match: Match) -> bool:
    """True when a match ties a rule to one IP version (addresses, ICMP, family)."""
    match match:
        case AddressMatch() | IcmpMatch() | FamilyMatch():
            return True
        case ProtocolMatch():
            return set(match.protocols) in ({"icmp"}, {"icmpv6"})
        case _:
            return False
