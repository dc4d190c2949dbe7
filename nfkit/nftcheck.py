"""What a loaded ruleset does to the ICMP that Path MTU discovery needs (used by ``doctor``).

The ruleset comes from ``nft -j list ruleset``; iptables rules (iptables-nft, whose matches nft
shows only as opaque ``xt`` objects, and legacy iptables) are parsed from ``iptables-save`` text
into the same shape. A *probe* — ICMP fragmentation-needed or ICMPv6 packet-too-big, about a flow
conntrack knows (``related``) or not (``invalid``) — is walked through every base chain at a
hook. A rule decides the probe's fate only when every match in it certainly holds for the probe;
rules that depend on interfaces or addresses are passed over, and reported as "may drop" when
they otherwise aim at ICMP or INVALID. A packet survives a hook only if no base chain drops it.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

#: Hooks where a dropped ICMP error breaks PMTUD for this host or the hosts it routes for.
HOOKS_CHECKED = ("prerouting", "input", "forward")
_TERMINAL = frozenset({"accept", "drop", "reject", "queue"})
_NOT_ICMP_PROTOCOLS = frozenset(
    {"tcp", "udp", "udplite", "sctp", "dccp", "esp", "ah", "comp", "igmp", "gre"}
)
_BUILTIN_HOOKS = {
    "PREROUTING": "prerouting",
    "INPUT": "input",
    "FORWARD": "forward",
    "OUTPUT": "output",
    "POSTROUTING": "postrouting",
}
_TABLE_PRIORITY = {"raw": -300, "mangle": -150, "nat": -100, "filter": 0, "security": 50}
#: iptables ICMP type names -> (type, code or None).
_ICMP_NAMES: dict[str, tuple[int, int | None]] = {
    "any": (-1, None),
    "destination-unreachable": (3, None),
    "fragmentation-needed": (3, 4),
    "frag-needed": (3, 4),
    "echo-request": (8, None),
    "echo-reply": (0, None),
    "time-exceeded": (11, None),
    "port-unreachable": (3, 3),
    "host-unreachable": (3, 1),
    "network-unreachable": (3, 0),
}
_ICMPV6_NAMES: dict[str, tuple[int, int | None]] = {
    "packet-too-big": (2, None),
    "destination-unreachable": (1, None),
    "time-exceeded": (3, None),
    "echo-request": (128, None),
    "echo-reply": (129, None),
    "neighbour-solicitation": (135, None),
    "neighbour-advertisement": (136, None),
    "router-solicitation": (133, None),
    "router-advertisement": (134, None),
}


@dataclass(frozen=True, slots=True)
class Probe:
    """A packet PMTUD needs, described by the values rules match on."""

    what: str
    nfproto: str
    state: str
    l4proto: frozenset[str | int]
    icmp_protocol: str
    icmp_type: frozenset[str | int]
    icmp_code: frozenset[str | int]


def _probe(v6: bool, state: str) -> Probe:
    if v6:
        return Probe(
            "ICMPv6 packet-too-big", "ipv6", state,
            frozenset({"ipv6-icmp", "icmpv6", 58}), "icmpv6",
            frozenset({"packet-too-big", 2}), frozenset({"no-route", 0}),
        )
    return Probe(
        "ICMP fragmentation-needed", "ipv4", state,
        frozenset({"icmp", 1}), "icmp",
        frozenset({"destination-unreachable", 3}), frozenset({"frag-needed", 4}),
    )


#: The four probes doctor walks through the ruleset.
PROBES = (_probe(False, "related"), _probe(False, "invalid"),
          _probe(True, "related"), _probe(True, "invalid"))


@dataclass(frozen=True, slots=True)
class ChainRef:
    """A chain: where it lives and, for a base chain, its hook, priority and policy."""

    family: str
    table: str
    name: str
    hook: str | None = None
    type: str | None = None
    priority: int | str | None = None
    policy: str | None = None

    def __str__(self) -> str:
        return f"{self.family} {self.table} {self.name}"


@dataclass(frozen=True, slots=True)
class Rule:
    """One rule as nft JSON expressions, with its handle and, if parsed from text, the text."""

    family: str
    table: str
    chain: str
    handle: int | None
    expr: tuple[Mapping[str, Any], ...]
    text: str | None = None
    comment: str | None = None

    @property
    def matches_invalid(self) -> bool:
        """True when the rule matches conntrack state INVALID (the ufw/FireHOL trap)."""
        for item in self.expr:
            match = item.get("match")
            if (
                match
                and match.get("left") == {"ct": {"key": "state"}}
                and match["op"] != "!="
                and "invalid" in _elements(match.get("right"))
            ):
                return True
            vmap = item.get("vmap")
            if vmap and vmap.get("key") == {"ct": {"key": "state"}}:
                for key, verdict in _vmap_items(vmap):
                    if key == "invalid" and _verdict_of(verdict)[0] in {"drop", "reject"}:
                        return True
        return False


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a base chain does with a probe: a verdict (None: fell through) and the rule."""

    chain: ChainRef
    verdict: str | None
    rule: Rule | None
    maybe: bool = False


@dataclass(slots=True)
class Ruleset:
    """The loaded tables, chains and rules, in nft JSON terms."""

    tables: list[tuple[str, str]] = field(default_factory=list)
    chains: dict[tuple[str, str, str], ChainRef] = field(default_factory=dict)
    rules: dict[tuple[str, str, str], list[Rule]] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Ruleset:
        """Build from the output of ``nft -j list ruleset``."""
        made = cls()
        for obj in data.get("nftables", []):
            if "table" in obj:
                made.tables.append((obj["table"]["family"], obj["table"]["name"]))
            elif "chain" in obj:
                c = obj["chain"]
                made.add_chain(
                    ChainRef(c["family"], c["table"], c["name"], c.get("hook"), c.get("type"),
                             c.get("prio"), c.get("policy"))
                )
            elif "rule" in obj:
                r = obj["rule"]
                made.add_rule(
                    Rule(r["family"], r["table"], r["chain"], r.get("handle"),
                         tuple(r.get("expr", ())), comment=r.get("comment"))
                )
        return made

    def add_chain(self, chain: ChainRef) -> None:
        """Add (or replace) a chain."""
        self.chains[(chain.family, chain.table, chain.name)] = chain
        self.rules.setdefault((chain.family, chain.table, chain.name), [])

    def add_rule(self, rule: Rule) -> None:
        """Append a rule to its chain."""
        self.rules.setdefault((rule.family, rule.table, rule.chain), []).append(rule)

    def table_names(self) -> list[str]:
        """``family name`` of every table."""
        return [f"{family} {name}" for family, name in self.tables]

    def base_chains(self) -> list[ChainRef]:
        """Chains attached to a hook."""
        return [chain for chain in self.chains.values() if chain.hook]

    def has_xt(self) -> bool:
        """True when some rule uses iptables-nft's opaque ``xt`` expressions."""
        return any("xt" in item for rules in self.rules.values() for r in rules for item in r.expr)

    def replace_xt_tables(self, family: str, parsed: Ruleset) -> None:
        """Swap the rules of ``family`` tables that hold ``xt`` expressions for parsed ones."""
        for fam, table in self.tables:
            keys = [k for k in self.rules if k[0] == fam == family and k[1] == table]
            has_xt = any("xt" in item for k in keys for r in self.rules[k] for item in r.expr)
            if not has_xt or (family, table) not in parsed.tables:
                continue
            for key in keys:
                self.rules[key] = list(parsed.rules.get(key, []))

    def add_legacy(self, family: str, parsed: Ruleset) -> None:
        """Add legacy iptables tables (invisible to nft) under ``NAME (legacy)``."""
        for (fam, table) in parsed.tables:
            if fam == family:
                self.tables.append((fam, table))
        for chain in parsed.chains.values():
            self.add_chain(chain)
        for rules in parsed.rules.values():
            for rule in rules:
                self.add_rule(rule)

    def log_statements(self) -> Iterator[tuple[ChainRef, Rule, Mapping[str, Any]]]:
        """Every ``log`` statement with its chain and rule."""
        for key, rules in self.rules.items():
            chain = self.chains.get(key, ChainRef(*key))
            for rule in rules:
                for item in rule.expr:
                    if "log" in item:
                        yield chain, rule, item["log"] or {}

    def chain_can_drop(self, chain: ChainRef, depth: int = 0) -> bool:
        """True when the chain (or a chain it jumps to) holds a drop or reject."""
        if depth > 16:
            return False
        for rule in self.rules.get((chain.family, chain.table, chain.name), []):
            for item in rule.expr:
                verdict, target = _verdict_of(item)
                if verdict in {"drop", "reject"}:
                    return True
                if "vmap" in item and any(
                    _verdict_of(v)[0] in {"drop", "reject"} for _, v in _vmap_items(item["vmap"])
                ):
                    return True
                if verdict in {"jump", "goto"} and target:
                    sub = self.chains.get((chain.family, chain.table, target))
                    if sub and self.chain_can_drop(sub, depth + 1):
                        return True
        return False


# -- evaluation ----------------------------------------------------------------------------------
_FALSE = object()  # the expression's protocol dependency does not hold for the probe


def _left_value(left: Any, probe: Probe) -> frozenset[str | int] | object | None:
    if not isinstance(left, Mapping):
        return None
    if "ct" in left:
        return frozenset({probe.state}) if left["ct"].get("key") == "state" else None
    if "meta" in left:
        key = left["meta"].get("key")
        if key == "l4proto":
            return probe.l4proto
        if key == "nfproto":
            return frozenset({probe.nfproto})
        if key == "protocol":
            return frozenset({"ip" if probe.nfproto == "ipv4" else "ip6"})
        return None
    if "payload" in left:
        proto = left["payload"].get("protocol")
        fld = left["payload"].get("field")
        v6 = probe.nfproto == "ipv6"
        if proto == "ip":
            return _FALSE if v6 else (probe.l4proto if fld == "protocol" else None)
        if proto == "ip6":
            return (probe.l4proto if fld == "nexthdr" else None) if v6 else _FALSE
        if proto in {"icmp", "icmpv6"}:
            if proto != probe.icmp_protocol:
                return _FALSE
            return {"type": probe.icmp_type, "code": probe.icmp_code}.get(fld)
        if proto in _NOT_ICMP_PROTOCOLS:
            return _FALSE
    return None


def _elements(right: Any) -> list[Any]:
    if isinstance(right, Mapping) and "set" in right:
        return list(right["set"])
    if isinstance(right, list):
        return list(right)
    return [right]


def _element_matches(element: Any, values: frozenset[str | int]) -> bool | None:
    if isinstance(element, (str, int)):
        return element in values
    if isinstance(element, Mapping) and "range" in element:
        low, high = element["range"]
        numbers = [v for v in values if isinstance(v, int)]
        if isinstance(low, int) and isinstance(high, int) and numbers:
            return any(low <= n <= high for n in numbers)
    return None


def _match(match: Mapping[str, Any], probe: Probe) -> tuple[bool | None, bool]:
    """Evaluate a match: (True/False/None=unknown, whether it is specific to ICMP/INVALID)."""
    value = _left_value(match.get("left"), probe)
    if value is _FALSE:
        return False, False
    if not isinstance(value, frozenset):
        return None, False
    op = match.get("op", "==")
    if op not in {"==", "in", "!="}:
        return None, False
    results = [_element_matches(e, value) for e in _elements(match.get("right"))]
    if any(r is True for r in results):
        hit: bool | None = True
    elif all(r is False for r in results):
        hit = False
    else:
        return None, False
    if op == "!=":
        hit = not hit
    return hit, bool(hit)


def _verdict_of(item: Any) -> tuple[str | None, str | None]:
    if not isinstance(item, Mapping):
        return None, None
    for word in ("accept", "drop", "reject", "return", "continue", "queue"):
        if word in item:
            return word, None
    for word in ("jump", "goto"):
        if word in item:
            return word, (item[word] or {}).get("target")
    xt = item.get("xt")
    if isinstance(xt, Mapping) and xt.get("type") == "target" and xt.get("name") == "REJECT":
        return "reject", None
    return None, None


def _vmap_items(vmap: Mapping[str, Any]) -> list[tuple[Any, Any]]:
    return [tuple(pair) for pair in _elements(vmap.get("data")) if isinstance(pair, list)]


def _rule_verdict(
    rule: Rule, probe: Probe
) -> tuple[bool | None, str | None, str | None, bool]:
    """(certain?, verdict, jump target, specific) — certain is False when the rule cannot match."""
    certain: bool | None = True
    specific = False
    for item in rule.expr:
        if "match" in item:
            hit, is_specific = _match(item["match"], probe)
            if hit is False:
                return False, None, None, False
            if hit is None:
                certain = None
            specific = specific or is_specific
            continue
        if "vmap" in item:
            vmap = item["vmap"]
            value = _left_value(vmap.get("key"), probe)
            if value is _FALSE:
                return False, None, None, False
            if not isinstance(value, frozenset):
                return None, None, None, False
            for key, verdict in _vmap_items(vmap):
                if _element_matches(key, value):
                    word, target = _verdict_of(verdict)
                    return certain, word, target, True
            return False, None, None, False
        if any(k in item for k in ("limit", "quota", "meter", "numgen")) or (
            "xt" in item and (item["xt"] or {}).get("type") == "match"
        ):
            certain = None
            continue
        word, target = _verdict_of(item)
        if word is not None:
            return certain, word, target, specific
    return certain, None, None, specific


def evaluate_chain(
    ruleset: Ruleset, chain: ChainRef, probe: Probe, maybes: list[Outcome], depth: int = 0
) -> Outcome:
    """Walk ``probe`` through ``chain``; collect "may drop" rules into ``maybes``."""
    for rule in ruleset.rules.get((chain.family, chain.table, chain.name), []):
        certain, verdict, target, specific = _rule_verdict(rule, probe)
        if certain is False or verdict is None or verdict == "continue":
            continue
        if certain is None:
            if verdict in {"drop", "reject"} and specific:
                maybes.append(Outcome(chain, verdict, rule, maybe=True))
            continue
        if verdict in _TERMINAL:
            return Outcome(chain, "accept" if verdict == "queue" else verdict, rule)
        if verdict == "return":
            return Outcome(chain, None, rule)
        sub = ruleset.chains.get((chain.family, chain.table, target or ""))
        if sub is None or depth > 16:
            continue
        result = evaluate_chain(ruleset, sub, probe, maybes, depth + 1)
        if result.verdict is not None or verdict == "goto":
            return result
    return Outcome(chain, None, None)


def _family_applies(family: str, probe: Probe) -> bool:
    return family == "inet" or family == ("ip" if probe.nfproto == "ipv4" else "ip6")


def evaluate_hook(ruleset: Ruleset, hook: str, probe: Probe) -> list[Outcome]:
    """Outcomes of ``probe`` in every filter base chain at ``hook``, plus any "may drop" rules."""
    outcomes: list[Outcome] = []
    for chain in ruleset.base_chains():
        if chain.hook != hook or chain.type not in {None, "filter"}:
            continue
        if not _family_applies(chain.family, probe):
            continue
        maybes: list[Outcome] = []
        result = evaluate_chain(ruleset, chain, probe, maybes)
        if result.verdict is None:
            result = Outcome(chain, chain.policy or "accept", None)
        outcomes.append(result)
        if result.verdict == "accept":
            # "May drop" rules matter only if the probe would otherwise pass.
            outcomes.extend(maybes)
    return outcomes


# -- describing rules ----------------------------------------------------------------------------
def _text(value: Any) -> str:
    if isinstance(value, Mapping):
        if "set" in value:
            return "{ " + ", ".join(_text(v) for v in value["set"]) + " }"
        if "range" in value:
            return "-".join(_text(v) for v in value["range"])
        if "prefix" in value:
            return f"{value['prefix']['addr']}/{value['prefix']['len']}"
        if "payload" in value:
            return f"{value['payload'].get('protocol')} {value['payload'].get('field')}"
        if "meta" in value:
            return f"meta {value['meta'].get('key')}"
        if "ct" in value:
            return f"ct {value['ct'].get('key')}"
        return next(iter(value), "?")
    if isinstance(value, list):
        return ",".join(_text(v) for v in value)
    return str(value)


def describe_rule(rule: Rule) -> str:
    """A short nft-like text of the rule (or its iptables-save line)."""
    if rule.text:
        return rule.text
    parts: list[str] = []
    for item in rule.expr:
        if "match" in item:
            m = item["match"]
            op = " != " if m.get("op") == "!=" else " "
            parts.append(f"{_text(m.get('left'))}{op}{_text(m.get('right'))}")
        elif "log" in item:
            prefix = (item["log"] or {}).get("prefix")
            parts.append(f'log prefix "{prefix}"' if prefix else "log")
        elif "vmap" in item:
            parts.append(f"{_text(item['vmap'].get('key'))} vmap {{...}}")
        else:
            word, target = _verdict_of(item)
            if word:
                parts.append(f"{word} {target}" if target else word)
            elif item:
                parts.append(next(iter(item)))
    if rule.comment:
        parts.append(f'comment "{rule.comment}"')
    return " ".join(parts)


# -- iptables-save text --------------------------------------------------------------------------
_FLAG_OPTIONS = frozenset(
    {"--syn", "--log-uid", "--log-tcp-sequence", "--log-tcp-options", "--log-ip-options",
     "--log-macdecode", "--rcheck", "--update", "--set", "--fragment", "-f"}
)
_IGNORED_OPTIONS = frozenset(
    {"-m", "--comment", "--log-level", "--reject-with", "--nflog-range", "--nflog-size",
     "--nflog-threshold", "-c"}
)


def _icmp_matches(spec: str, v6: bool) -> list[dict[str, Any]]:
    protocol = "icmpv6" if v6 else "icmp"
    names = _ICMPV6_NAMES if v6 else _ICMP_NAMES
    if spec in names:
        icmp_type, code = names[spec]
    else:
        head, _, tail = spec.partition("/")
        if not head.isdigit() or (tail and not tail.isdigit()):
            return [{"xt": {"type": "match", "name": protocol}}]
        icmp_type, code = int(head), (int(tail) if tail else None)
    if icmp_type < 0:
        return []
    made: list[dict[str, Any]] = [_payload_match(protocol, "type", icmp_type)]
    if code is not None:
        made.append(_payload_match(protocol, "code", code))
    return made


def _payload_match(protocol: str, fld: str, value: Any, op: str = "==") -> dict[str, Any]:
    return {"match": {"op": op, "left": {"payload": {"protocol": protocol, "field": fld}},
                      "right": value}}


def _parse_rule_tokens(tokens: list[str], v6: bool) -> list[dict[str, Any]]:
    expr: list[dict[str, Any]] = []
    verdict: dict[str, Any] | None = None
    log: dict[str, Any] | None = None
    negate = False
    i = 0
    while i < len(tokens):
        option = tokens[i]
        i += 1
        if option == "!":
            negate = True
            continue
        values: list[str] = []
        if option not in _FLAG_OPTIONS:
            while i < len(tokens) and not (tokens[i].startswith("-") or tokens[i] == "!"):
                values.append(tokens[i])
                i += 1
        value = " ".join(values)
        op = "!=" if negate else "=="
        negate = False
        if option in {"-p", "--protocol"}:
            proto: str | int = int(value) if value.isdigit() else value.lower()
            if proto == "icmpv6":
                proto = "ipv6-icmp"
            expr.append({"match": {"op": op, "left": {"meta": {"key": "l4proto"}},
                                   "right": proto}})
        elif option in {"--ctstate", "--state"}:
            states = [s.lower() for s in value.split(",")]
            expr.append({"match": {"op": "!=" if op == "!=" else "in",
                                   "left": {"ct": {"key": "state"}}, "right": states}})
        elif option in {"--icmp-type", "--icmpv6-type"}:
            matches = _icmp_matches(value.lower(), v6)
            if op == "!=":
                matches = [{"xt": {"type": "match", "name": "icmp"}}]
            expr.extend(matches)
        elif option in {"-j", "-g", "--jump", "--goto"}:
            target = value
            if target in {"ACCEPT", "DROP", "REJECT", "RETURN"}:
                verdict = {target.lower(): None}
            elif target in {"LOG", "NFLOG"}:
                log = log or {}
                if target == "NFLOG":
                    log.setdefault("group", 0)
            elif target.isupper() or not target:
                pass  # MASQUERADE, DNAT, MARK, ...: not a filtering verdict
            else:
                verdict = {"goto" if option in {"-g", "--goto"} else "jump": {"target": target}}
        elif option in {"--log-prefix", "--nflog-prefix"}:
            log = log or {}
            log["prefix"] = value
        elif option == "--nflog-group":
            log = log or {}
            log["group"] = int(value) if value.isdigit() else value
        elif option in _IGNORED_OPTIONS or option in _FLAG_OPTIONS:
            continue
        else:
            expr.append({"xt": {"type": "match", "name": option}})
    if log is not None:
        expr.append({"log": log})
    if verdict is not None:
        expr.append(verdict)
    return expr


def iptables_save_to_rules(text: str, family: str, legacy: bool = False) -> Ruleset:
    """Parse ``iptables-save`` / ``ip6tables-save`` text into a :class:`Ruleset`."""
    made = Ruleset()
    table = ""
    v6 = family == "ip6"
    suffix = " (legacy)" if legacy else ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("*"):
            table = line[1:] + suffix
            made.tables.append((family, table))
        elif line.startswith(":"):
            name, _, rest = line[1:].partition(" ")
            policy = rest.split(" ", 1)[0]
            hook = _BUILTIN_HOOKS.get(name) if policy != "-" else None
            base = table.removesuffix(suffix)
            made.add_chain(
                ChainRef(family, table, name, hook,
                         ("nat" if base == "nat" else "filter") if hook else None,
                         _TABLE_PRIORITY.get(base, 0) if hook else None,
                         policy.lower() if hook else None)
            )
        elif line.startswith("-A "):
            try:
                tokens = shlex.split(line)
            except ValueError:
                continue
            chain = tokens[1]
            made.add_rule(
                Rule(family, table, chain, None, tuple(_parse_rule_tokens(tokens[2:], v6)),
                     text=line)
            )
    return made


# -- python-iptables (optional ``legacy`` extra, read-only) ---------------------------------------
def iptc_to_save_text(tables: Mapping[str, Any]) -> str:
    """Render python-iptables ``Table`` objects as ``iptables-save`` text, reading only.

    ``tables`` maps a table name to an ``iptc.Table`` (or anything with the same attributes:
    ``chains``, each with ``name``, ``rules`` and, for built-in chains, ``get_policy()``).
    """
    lines: list[str] = []
    for name, table in tables.items():
        lines.append(f"*{name}")
        chains = list(table.chains)
        for chain in chains:
            policy = chain.get_policy() if chain.is_builtin() else None
            policy_name = getattr(policy, "name", None) or "-"
            lines.append(f":{chain.name} {policy_name} [0:0]")
        for chain in chains:
            for rule in chain.rules:
                lines.append(shlex.join(["-A", chain.name, *_iptc_rule_tokens(rule)]))
        lines.append("COMMIT")
    return "\n".join(lines) + "\n"


def _iptc_rule_tokens(rule: Any) -> list[str]:
    tokens: list[str] = []
    protocol = str(getattr(rule, "protocol", "") or "")
    if protocol and protocol not in {"ip", "all", "0"}:
        tokens += ["-p", protocol]
    for attribute, option in (("in_interface", "-i"), ("out_interface", "-o")):
        value = getattr(rule, attribute, None)
        if value:
            tokens += [option, str(value)]
    for attribute, option in (("src", "-s"), ("dst", "-d")):
        value = str(getattr(rule, attribute, "") or "")
        if value and not value.startswith(("0.0.0.0/", "::/")):
            tokens += [option, value]
    for match in getattr(rule, "matches", ()):
        tokens += ["-m", str(match.name)]
        for key, values in match.get_all_parameters().items():
            tokens += [f"--{key}", *(str(v).strip('"') for v in values)]
    target = getattr(rule, "target", None)
    if target is not None and getattr(target, "name", None):
        tokens += ["-j", str(target.name)]
        for key, values in target.get_all_parameters().items():
            tokens += [f"--{key}", *(str(v).strip('"') for v in values)]
    return tokens
