"""What every backend shares: the compiled result, the lowering of IR rules, the Backend base.

Lowering turns one IR rule into the rules a backend writes: services become protocol + port
matches (one rule per group of protocols sharing ports), and a rule that names addresses or ICMP
is split per IP version with its address lists narrowed to that version.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, Literal

from nfkit import ir
from nfkit.dsl.validate import Diagnostic, rule_versions
from nfkit.errors import UnsupportedFeatureError
from nfkit.render import render
from nfkit.span import Span

Emit = Literal["script", "ruleset"]

BE_LIBERAL = "net.netfilter.nf_conntrack_tcp_be_liberal"
BE_LIBERAL_LEGACY = "net.ipv4.netfilter.ip_conntrack_tcp_be_liberal"
TCP_WINDOW_SCALING = "net.ipv4.tcp_window_scaling"
#: Seconds the script waits for the be_liberal sysctl to appear after the load.
SYSCTL_WAIT_SECONDS = 10


@dataclass(frozen=True, slots=True)
class SysctlSetting:
    """A sysctl to set after the rules are loaded, in order."""

    key: str
    value: str
    #: Older kernels' name for the same knob, tried when ``key`` does not exist.
    fallback: str | None = None
    #: Wait (bounded) for the sysctl to appear: conntrack may come alive only after the load.
    wait: bool = False
    #: Printed by the script after setting it (e.g. the throughput cost of a setting).
    warning: str | None = None

    @property
    def path(self) -> str:
        """``/proc/sys/...`` path of ``key``."""
        return "/proc/sys/" + self.key.replace(".", "/")

    @property
    def fallback_path(self) -> str | None:
        """``/proc/sys/...`` path of ``fallback``."""
        return None if self.fallback is None else "/proc/sys/" + self.fallback.replace(".", "/")


@dataclass(frozen=True, slots=True)
class IptablesJump:
    """A jump from a built-in chain into one of nfkit's chains (iptables backend)."""

    version: ir.IPVersion
    table: str
    builtin: str
    target: str

    @property
    def rule(self) -> str:
        """The iptables-restore line that inserts the jump."""
        return f"-I {self.builtin} 1 -j {self.target}"


@dataclass(frozen=True, slots=True)
class CompiledRuleset:
    """The result of compiling a policy for one backend.

    ``text`` is what ``nfkit compile`` writes (the script or the ruleset, per ``emit``).
    ``rulesets`` maps a part name to loadable text: for nftables ``{"nft": ...}`` (an ``nft -f``
    file); for iptables ``{"ipv4": ..., "ipv6": ..., "ipset": ...}`` (``iptables-restore
    --noflush``, ``ip6tables-restore --noflush`` and ``ipset restore`` input; ``ipset`` only when
    the policy has named sets). ``sysctls`` are to be set in order *after* loading.
    """

    backend: str
    emit: Emit
    text: str
    rulesets: Mapping[str, str]
    sysctls: tuple[SysctlSetting, ...]
    #: nftables: the table nfkit owns (``inet nfkit``); iptables: the chain prefix (``NFKIT-``).
    table: str
    warnings: tuple[str, ...] = ()
    #: iptables only: jumps from built-in chains the loader must insert once (``-C`` first).
    jumps: tuple[IptablesJump, ...] = ()
    #: iptables only: ipset names nfkit owns.
    ipsets: tuple[str, ...] = ()
    policy: ir.Policy | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class Lowered:
    """One backend rule: a version (None: both) and matches narrowed to it."""

    version: ir.IPVersion | None
    matches: tuple[ir.Match, ...]


def _expand_services(matches: tuple[ir.Match, ...]) -> list[tuple[ir.Match, ...]]:
    service = next((m for m in matches if isinstance(m, ir.ServiceMatch)), None)
    if service is None:
        return [matches]
    per_protocol: dict[str, list[ir.PortRange]] = {}
    for entry in service.entries:
        bucket = per_protocol.setdefault(entry.protocol, [])
        bucket.extend(port for port in entry.ports if port not in bucket)
    groups: dict[tuple[ir.PortRange, ...], list[str]] = {}
    for protocol, port_list in per_protocol.items():
        groups.setdefault(tuple(port_list), []).append(protocol)
    out: list[tuple[ir.Match, ...]] = []
    for ports, protocols in groups.items():
        replaced: list[ir.Match] = []
        for match in matches:
            if match is service:
                replaced.append(ir.ProtocolMatch(tuple(protocols), service.span))
                replaced.append(ir.PortMatch("dport", ports, service.span))
            else:
                replaced.append(match)
        out.append(tuple(replaced))
    return out


def _narrow(policy: ir.Policy, match: ir.Match, version: ir.IPVersion) -> ir.Match | None:
    if isinstance(match, ir.AddressMatch) and match.set_name is not None:
        if version not in policy.address_set(match.set_name).versions:
            return None  # only possible for a negated match: no constraint in this version
        return match
    if isinstance(match, ir.AddressMatch):
        nets = tuple(net for net in match.networks if net.version == version)
        if not nets:
            return None  # only possible for a negated match: no constraint in this version
        return ir.AddressMatch(match.direction, nets, None, match.negated, match.span)
    return match


def lower(
    policy: ir.Policy,
    matches: tuple[ir.Match, ...],
    span: Span,
    versions: tuple[ir.IPVersion, ...] = ir.FAMILIES,
    split: bool = False,
) -> list[Lowered]:
    """Lower one rule's matches; ``split`` forces one rule per IP version."""
    out: list[Lowered] = []
    for expanded in _expand_services(matches):
        allowed = rule_versions(policy, expanded, span, versions)
        pinned = any(ir.pins_version(m) for m in expanded)
        if not pinned and not split and allowed == ir.FAMILIES:
            out.append(Lowered(None, expanded))
            continue
        for version in allowed:
            kept = (_narrow(policy, match, version) for match in expanded)
            narrowed = tuple(match for match in kept if match is not None)
            out.append(Lowered(version, narrowed))
    return out


#: The order matches are written in, whatever order the policy gave: stable, diff-friendly output.
_MATCH_ORDER: dict[type, int] = {
    ir.InterfaceMatch: 0,
    ir.FamilyMatch: 1,
    ir.AddressMatch: 2,
    ir.ProtocolMatch: 3,
    ir.PortMatch: 4,
    ir.IcmpMatch: 5,
    ir.CtStateMatch: 6,
    ir.CtStatusMatch: 7,
    ir.ServiceMatch: 8,
}


def in_output_order(matches: tuple[ir.Match, ...]) -> list[ir.Match]:
    """``matches`` sorted as backends write them: interfaces, addresses, protocol, ports, ..."""
    return sorted(matches, key=lambda match: _MATCH_ORDER[type(match)])


def drops_invalid(chain: ir.Chain) -> bool:
    """Whether a chain drops conntrack-INVALID packets (after the PMTUD/NDP accepts).

    input and forward always do; output only when its policy is not accept, because a host's
    own packets that conntrack finds INVALID (late RSTs, packets of expired flows) are better
    let out than silently lost.
    """
    return chain.hook is not ir.Hook.OUTPUT or chain.policy is not ir.Verdict.ACCEPT


def source_ref(span: Span) -> str:
    """``file:line`` for comments in the generated output (file name only, stable)."""
    return f"{Path(span.path).name}:{span.line}"


class Backend(abc.ABC):
    """A compiler from the validated IR to one netfilter front end."""

    name: ClassVar[str]

    def __init__(
        self,
        policy: ir.Policy,
        warnings: tuple[Diagnostic, ...] = (),
        template_dir: str | Path | None = None,
    ) -> None:
        self.policy = policy
        self.warnings = warnings
        self.template_dir = template_dir
        self.counter = 0

    def render(self, name: str, **context: object) -> str:
        """Render one of this backend's templates (a user's copy first, if given)."""
        return render(name, self.template_dir, **context)

    def unsupported(self, message: str, span: Span) -> UnsupportedFeatureError:
        """Return the error for a rule this backend cannot express (never drop it)."""
        return UnsupportedFeatureError(message, span, self.name, self.policy.source_line(span))

    def sysctls(self) -> tuple[SysctlSetting, ...]:
        """The sysctls to set after loading: be_liberal first, then the policy's own."""
        settings = [
            SysctlSetting(BE_LIBERAL, "1" if self.policy.be_liberal else "0", BE_LIBERAL_LEGACY,
                          wait=True)
        ]
        for sysctl in self.policy.sysctls:
            warning = None
            if sysctl.key == TCP_WINDOW_SCALING and sysctl.value == "0":
                warning = "TCP window scaling is off: throughput is capped at 64 KiB per round trip"
            settings.append(SysctlSetting(sysctl.key, sysctl.value, warning=warning))
        return tuple(settings)

    def rendered_warnings(self) -> tuple[str, ...]:
        """Warnings as ``path:line:col: warning: ...`` text."""
        return tuple(w.render(self.policy.source_line(w.span)) for w in self.warnings)

    @abc.abstractmethod
    def compile(self, emit: Emit = "script") -> CompiledRuleset:
        """Compile the policy; raise UnsupportedFeatureError for what cannot be expressed."""
