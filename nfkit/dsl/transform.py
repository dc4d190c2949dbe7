"""Turn parse trees into the IR, resolving names and keeping every node's span.

Statements are processed in file order; a name must be defined before it is used (as in nft).
``include "file"`` is resolved relative to the including file and parsed in place. Values are
classified by :class:`nfkit.dsl.values.ValueReader`, so a bad value is reported at its own column.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Literal, cast

from lark import Token, Tree

from nfkit import ir
from nfkit.dsl import names
from nfkit.dsl.parser import parse_text
from nfkit.dsl.values import Item, ValueReader
from nfkit.logprefix import DEFAULT_TAG
from nfkit.span import Span

#: Log rate used when a policy says ``log`` without ``rate``.
DEFAULT_LOG_RATE = ir.Rate(10, "minute", 5)
_SYSCTL_KEY = re.compile(r"[a-z0-9_]+(\.[a-z0-9_-]+)+\Z")
_SYSCTL_VALUE = re.compile(r"[A-Za-z0-9_.:-]+\Z")
_LABEL = re.compile(r"[A-Za-z0-9_.-]+\Z")
_MAX_INCLUDE_DEPTH = 16
_COMMENT_MAX = 120
#: ipset names hold at most 31 characters: ``nfk-NAME-4-n``.
_MAX_SET_NAME = 20


class _Builder(ValueReader):
    """Walks the statements of a policy and its includes, accumulating the IR."""

    def __init__(self, path: str, loader: Callable[[Path], str]) -> None:
        super().__init__(path)
        self.root = path
        self.loader = loader
        self.sets: dict[str, ir.AddressSet] = {}
        self.chains: dict[ir.Hook, ir.Chain] = {}
        self.nat: list[ir.NatRule] = []
        self.sysctls: dict[str, ir.Sysctl] = {}
        self.tag = DEFAULT_TAG
        self.log_rate = DEFAULT_LOG_RATE
        self.be_liberal = True
        self.override: ir.PmtudOverride | None = None
        self.include_stack: list[str] = []

    # -- files -----------------------------------------------------------------------------
    def run_file(self, text: str, path: str) -> None:
        previous = self.path
        self.path = path
        self.sources[path] = tuple(text.splitlines())
        tree = parse_text(text, path)
        for statement in tree.children:
            assert isinstance(statement, Tree)
            handler = getattr(self, f"stmt_{statement.data}")
            handler(statement)
        self.path = previous

    def stmt_include(self, node: Tree[Token]) -> None:
        token = cast(Token, node.children[0])
        name = str(token)[1:-1]
        span = self.span(token)
        base = Path(self.path).parent if self.path not in ("<policy>", "<string>") else Path()
        target = base / name
        key = str(target)
        if key in self.include_stack or key == self.root:
            self.fail(f"include cycle: {name!r} includes itself", span)
        if len(self.include_stack) >= _MAX_INCLUDE_DEPTH:
            self.fail("includes nested too deeply", span)
        try:
            text = self.loader(target)
        except OSError as exc:
            self.fail(f"cannot include {name!r}: {exc.strerror or exc}", span)
        except UnicodeDecodeError:
            self.fail(f"cannot include {name!r}: not UTF-8 text", span)
        self.include_stack.append(key)
        self.run_file(text, key)
        self.include_stack.pop()

    # -- definitions -----------------------------------------------------------------------
    def defined(self, name: str) -> bool:
        return (name in self.defines or name in self.sets or name in self.services
                or name in self.interfaces)

    def stmt_define(self, node: Tree[Token]) -> None:
        token, value = node.children
        assert isinstance(token, Token) and value is not None
        name = self.name(token, "variable")
        if name in self.defines:
            self.fail(f"${name} is already defined", self.span(token))
        self.defines[name] = self.items(value)

    def stmt_set_def(self, node: Tree[Token]) -> None:
        token, value = node.children
        assert isinstance(token, Token) and value is not None
        name = self.name(token, "set")
        if name.startswith("nfk_"):
            self.fail("set names starting with nfk_ are reserved for nfkit's own sets",
                      self.span(token))
        if len(name) > _MAX_SET_NAME:
            self.fail(f"set name {name!r} is longer than {_MAX_SET_NAME} characters (ipset "
                      "names are short)", self.span(token))
        if name in self.sets:
            self.fail(f"set @{name} is already defined", self.span(token))
        items = self.items(value)
        nets = tuple(dict.fromkeys(self.network(item) for item in items))
        self.sets[name] = ir.AddressSet(name, nets, self.span(node))

    def stmt_service_def(self, node: Tree[Token]) -> None:
        token, *specs = node.children
        assert isinstance(token, Token)
        name = token.value
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_-]*", name):
            self.fail(f"service name {name!r} is not a name", self.span(token))
        if name in self.services:
            self.fail(f"service {name!r} is already defined", self.span(token))
        entries: list[ir.ServicePort] = []
        for spec in specs:
            assert isinstance(spec, Tree)
            proto_token, value = spec.children
            assert isinstance(proto_token, Token) and value is not None
            proto = str(proto_token)
            if proto not in names.PORT_PROTOCOLS:
                self.fail(f"a service needs tcp, udp, sctp or udplite, not {proto!r}",
                          self.span(proto_token))
            entries.append(ir.ServicePort(proto, self.ports(self.items(value), (proto,))))
        self.services[name] = tuple(entries)

    def stmt_interface_def(self, node: Tree[Token]) -> None:
        token, value = node.children
        assert isinstance(token, Token) and value is not None
        name = self.name(token, "interface")
        if name in self.interfaces:
            self.fail(f"interface or zone {name!r} is already defined", self.span(token))
        found = self.interfaces_of(self.items(value))
        if len(found) != 1:
            self.fail("an interface names exactly one device; use zone for several",
                      self.span(node))
        self.interfaces[name] = found

    def stmt_zone_def(self, node: Tree[Token]) -> None:
        token, value = node.children
        assert isinstance(token, Token) and value is not None
        name = self.name(token, "zone")
        if name in self.interfaces:
            self.fail(f"interface or zone {name!r} is already defined", self.span(token))
        self.interfaces[name] = self.interfaces_of(self.items(value))

    # -- settings ----------------------------------------------------------------------------
    def stmt_log_tag(self, node: Tree[Token]) -> None:
        token = cast(Token, node.children[0])
        if not _LABEL.match(token.value) or len(token.value) > 12:
            self.fail(f"log tag {token.value!r} must be 1-12 letters, digits, _ . -",
                      self.span(token))
        self.tag = token.value

    def stmt_log_defaults(self, node: Tree[Token]) -> None:
        self.log_rate = self.rate(cast(Tree[Token], node.children[0]))

    def stmt_conntrack(self, node: Tree[Token]) -> None:
        for option in node.children:
            assert isinstance(option, Tree)
            key, value = (cast(Token, child) for child in option.children)
            if key.value != "be_liberal":
                self.fail(f"unknown conntrack option {key.value!r} (known: be_liberal)",
                          self.span(key))
            if value.value not in ("on", "off"):
                self.fail(f"be_liberal is on or off, not {value.value!r}", self.span(value))
            self.be_liberal = value.value == "on"

    def stmt_sysctl(self, node: Tree[Token]) -> None:
        key, value = (cast(Token, child) for child in node.children)
        if not _SYSCTL_KEY.match(key.value):
            self.fail(f"{key.value!r} is not a sysctl name such as net.ipv4.ip_forward",
                      self.span(key))
        if "tcp_be_liberal" in key.value:
            self.fail("set be_liberal with: conntrack { be_liberal on|off }", self.span(key))
        if not _SYSCTL_VALUE.match(value.value):
            self.fail(f"sysctl value {value.value!r} is not a plain value", self.span(value))
        self.sysctls[key.value] = ir.Sysctl(key.value, value.value, self.span(node))

    def stmt_pmtud_override(self, node: Tree[Token]) -> None:
        token = cast(Token, node.children[0])
        reason = token.value[1:-1].strip()
        if not reason:
            self.fail("pmtud override needs a reason in the quotes", self.span(token))
        self.override = ir.PmtudOverride(reason, self.span(node))

    # -- chains --------------------------------------------------------------------------------
    def stmt_chain(self, node: Tree[Token]) -> None:
        hook_token, policy_node, *rule_nodes = node.children
        assert isinstance(hook_token, Token)
        hook = ir.Hook(hook_token.value)
        if hook in self.chains:
            self.fail(f"chain {hook} is declared twice", self.span(hook_token))
        policy = ir.Verdict.ACCEPT if hook is ir.Hook.OUTPUT else ir.Verdict.DROP
        policy_log: ir.Log | None = None
        if isinstance(policy_node, Tree):
            verdict_token, log_node = policy_node.children
            assert isinstance(verdict_token, Token)
            policy = ir.Verdict(verdict_token.value)
            if isinstance(log_node, Tree):
                policy_log = self.log(log_node, verdict_token)
        rules = tuple(self.rule(cast(Tree[Token], rule)) for rule in rule_nodes)
        self.chains[hook] = ir.Chain(hook, policy, rules, policy_log, self.span(hook_token))

    def log(self, node: Tree[Token], near: Token | None = None) -> ir.Log:
        """A log statement; ``near`` places a bare ``log`` (a tree without tokens)."""
        label: str | None = None
        rate = self.log_rate
        for option in node.children:
            assert isinstance(option, Tree)
            if option.data == "log_prefix":
                token = cast(Token, option.children[0])
                label = token.value.strip('"')
                if not _LABEL.match(label):
                    self.fail(f"log prefix {label!r} may hold only letters, digits, _ . - "
                              "(nfkit writes TAG:CHAIN:VERDICT: before it)", self.span(token))
            else:
                rate = self.rate(cast(Tree[Token], option.children[0]))
        span = self.span(node)
        if not node.children and near is not None:
            line = self.sources.get(self.path, ())[(near.line or 1) - 1]
            column = line.find("log", near.end_column or 0) + 1 or (near.column or 1)
            span = Span(self.path, near.line or 1, column, near.line, column + 3)
        return ir.Log(rate, label, span)

    def comment(self, span: Span) -> str | None:
        """The ``# comment`` at the end of a rule's last line, which travels into the output."""
        lines = self.sources.get(span.path, ())
        line_no = span.end_line or span.line
        if not 1 <= line_no <= len(lines):
            return None
        line = lines[line_no - 1]
        if "#" not in line:
            return None
        in_string = False
        for index, char in enumerate(line):
            if char == '"':
                in_string = not in_string
            elif char == "#" and not in_string:
                text = line[index + 1 :].strip().replace('"', "'").replace("\\", "/")
                text = "".join(ch for ch in text if ch.isprintable())
                return text[:_COMMENT_MAX] or None
        return None

    def matches(self, nodes: list[Tree[Token]]) -> tuple[ir.Match, ...]:
        protocols: tuple[str, ...] | None = None
        for node in nodes:
            if node.data == "l4_port_match":
                protocols = (cast(Token, node.children[0]).value,)
            elif node.data == "proto_match":
                value = cast(Tree[Token], node.children[0])
                protocols = tuple(item.text for item in self.items(value))
        out: list[ir.Match] = []
        for node in nodes:
            for match in self.match(node, protocols):
                # "udp sport X udp dport Y" names the protocol twice: keep one.
                if isinstance(match, ir.ProtocolMatch) and match in out:
                    continue
                out.append(match)
        return tuple(out)

    def match(self, node: Tree[Token], protocols: tuple[str, ...] | None) -> Iterator[ir.Match]:
        span = self.span(node)
        children = node.children
        match node.data:
            case "addr_match":
                direction, neq, value = children
                assert isinstance(direction, Token) and value is not None
                yield self.address_match(direction.value, neq is not None, value, span)
            case "iface_match":
                direction, neq, value = children
                assert isinstance(direction, Token) and value is not None
                yield ir.InterfaceMatch(
                    cast(Literal["iif", "oif"], direction.value),
                    self.interfaces_of(self.items(value)),
                    neq is not None,
                    span,
                )
            case "proto_match":
                yield ir.ProtocolMatch(self.protocols(self.items(cast(Tree[Token], children[0]))),
                                       span)
            case "port_match":
                direction, value = children
                assert isinstance(direction, Token) and value is not None
                ports = self.ports(self.items(value), protocols)
                yield ir.PortMatch(cast(Literal["sport", "dport"], direction.value), ports, span)
            case "l4_port_match":
                proto, direction, value = children
                assert isinstance(proto, Token) and isinstance(direction, Token)
                assert value is not None
                yield ir.ProtocolMatch((proto.value,), self.span(proto))
                ports = self.ports(self.items(value), (proto.value,))
                yield ir.PortMatch(cast(Literal["sport", "dport"], direction.value), ports, span)
            case "service_match":
                items = self.items(cast(Tree[Token], children[0]))
                entries: list[ir.ServicePort] = []
                for item in items:
                    entries.extend(self.service_entries(item))
                yield ir.ServiceMatch(tuple(item.text for item in items), tuple(entries), span)
            case "icmp_match":
                yield self.icmp_match(node, span)
            case "ct_state_match" | "ct_status_match":
                allowed = names.CT_STATES if node.data == "ct_state_match" else names.CT_STATUSES
                values: list[str] = []
                for child in children:
                    for item in self.items(cast(Tree[Token], child)):
                        if item.text not in allowed:
                            self.fail(f"unknown conntrack {node.data.split('_')[1]} "
                                      f"{item.text!r} (known: {', '.join(sorted(allowed))})",
                                      item.span)
                        values.append(item.text)
                states = tuple(dict.fromkeys(values))
                if node.data == "ct_state_match":
                    yield ir.CtStateMatch(states, span)
                else:
                    yield ir.CtStatusMatch(states, span)
            case "family_match":
                token = cast(Token, children[0])
                if token.value not in ("ipv4", "ipv6"):
                    self.fail(f"family is ipv4 or ipv6, not {token.value!r}", self.span(token))
                yield ir.FamilyMatch(4 if token.value == "ipv4" else 6, span)
            case _:  # pragma: no cover - grammar and builder out of step
                raise AssertionError(node.data)

    def protocols(self, items: tuple[Item, ...]) -> tuple[str, ...]:
        out: list[str] = []
        for item in items:
            if item.text in names.PROTOCOLS:
                out.append(item.text)
            elif (item.text.isascii() and item.text.isdigit()
                  and len(item.text.lstrip("0")) <= 3 and int(item.text.lstrip("0") or "0") <= 255):
                number = int(item.text.lstrip("0") or "0")
                named = next((k for k, v in names.PROTOCOLS.items() if v == number), None)
                out.append(named or item.text)
            else:
                self.fail(f"unknown protocol {item.text!r} (known: "
                          f"{', '.join(sorted(names.PROTOCOLS))}, or a number)", item.span)
        return tuple(dict.fromkeys(out))

    def address_match(
        self, direction: str, negated: bool, value: Tree[Token] | Token, span: Span
    ) -> ir.AddressMatch:
        items = self.items(value)
        dir_ = cast(Literal["saddr", "daddr"], direction)
        setrefs = [item for item in items if item.kind == "setref"]
        if setrefs:
            if len(items) != 1:
                self.fail("an @set cannot be mixed with other addresses in one match",
                          setrefs[0].span)
            name = setrefs[0].text
            if name not in self.sets:
                self.fail(f"undefined set @{name}", setrefs[0].span)
            return ir.AddressMatch(dir_, (), name, negated, span)
        nets = tuple(dict.fromkeys(self.network(item) for item in items))
        if not nets:
            self.fail("empty address list", span)
        return ir.AddressMatch(dir_, nets, None, negated, span)

    def icmp_match(self, node: Tree[Token], span: Span) -> ir.IcmpMatch:
        keyword, value, code_token = node.children
        assert isinstance(keyword, Token) and value is not None
        version: ir.IPVersion = 4 if keyword.value == "icmp" else 6
        table = names.ICMP_TYPES if version == 4 else names.ICMPV6_TYPES
        types: list[ir.IcmpType] = []
        items = self.items(value)
        for item in items:
            if item.text in table:
                number = table[item.text]
            elif item.text.isdigit():
                number = self.number(item, "ICMP type", 0, 255)
            else:
                self.fail(f"unknown {keyword.value} type {item.text!r}", item.span)
            types.append(ir.IcmpType(number))
        if isinstance(code_token, Token):
            code_item = Item(code_token.value, self.span(code_token), "item")
            if len(types) != 1:
                self.fail("code needs exactly one type", code_item.span)
            if version == 4 and code_item.text in names.ICMP_CODES:
                code = names.ICMP_CODES[code_item.text]
            else:
                code = self.number(code_item, "ICMP code", 0, 255)
            types = [ir.IcmpType(types[0].type, code)]
        return ir.IcmpMatch(version, tuple(dict.fromkeys(types)), span)

    def rule(self, node: Tree[Token]) -> ir.Rule:
        *parts, verdict_token = node.children
        assert isinstance(verdict_token, Token)
        match_nodes: list[Tree[Token]] = []
        log: ir.Log | None = None
        limit: ir.Limit | None = None
        for part in parts:
            if part is None:
                continue
            assert isinstance(part, Tree)
            if part.data == "log":
                log = self.log(part)
            elif part.data in ("rate_limit", "conn_limit"):
                limit = self.limit(part)
            else:
                match_nodes.append(part)
        span = self.span(node)
        return ir.Rule(
            self.matches(match_nodes),
            ir.Verdict(verdict_token.value),
            log,
            limit,
            self.comment(span),
            span,
        )

    def limit(self, node: Tree[Token]) -> ir.Limit:
        span = self.span(node)
        if node.data == "rate_limit":
            rate_node, per = node.children
            return ir.RateLimit(self.rate(cast(Tree[Token], rate_node)), per is not None, span)
        count_token, per = node.children
        assert isinstance(count_token, Token)
        if per is None:
            self.fail("connection limits count per source: write 'limit connections N per "
                      "source'", span)
        count = self.number(Item(count_token.value, self.span(count_token), "item"),
                            "connection count", 1, 1_000_000)
        return ir.ConnLimit(count, span)

    # -- NAT ------------------------------------------------------------------------------------
    def stmt_nat(self, node: Tree[Token]) -> None:
        for rule_node in node.children:
            assert isinstance(rule_node, Tree)
            *match_nodes, action_node = rule_node.children
            assert isinstance(action_node, Tree)
            action: ir.NatAction
            if action_node.data == "masquerade":
                action = ir.Masquerade()
            else:
                items = self.items(cast(Tree[Token], action_node.children[0]))
                if len(items) != 1:
                    self.fail(f"{action_node.data} to needs one address", self.span(action_node))
                address, port = self.nat_target(items[0])
                action = (ir.Snat(address, port) if action_node.data == "snat"
                          else ir.Dnat(address, port))
            span = self.span(rule_node)
            self.nat.append(ir.NatRule(
                self.matches(cast(list[Tree[Token]], match_nodes)), action, self.comment(span),
                span))

    def nat_target(self, item: Item) -> tuple[ir.Network, ir.PortRange | None]:
        text = item.text
        port_text: str | None = None
        if text.startswith("["):
            host, _, rest = text[1:].partition("]")
            if rest.startswith(":"):
                port_text = rest[1:]
            text = host
        elif text.count(":") == 1:
            text, port_text = text.split(":")
        network = self.network(Item(text, item.span, "item"))
        if network.num_addresses != 1:
            self.fail(f"NAT needs one address, not the network {network}", item.span)
        port = None
        if port_text is not None:
            ranges = self.port_range(Item(port_text, item.span, "item"), ("tcp", "udp"))
            port = ranges[0]
        return network, port

    # -- result -------------------------------------------------------------------------------
    def policy(self) -> ir.Policy:
        order = [ir.Hook.INPUT, ir.Hook.FORWARD, ir.Hook.OUTPUT]
        return ir.Policy(
            path=self.root,
            tag=self.tag,
            chains=tuple(self.chains[hook] for hook in order if hook in self.chains),
            nat=tuple(self.nat),
            sets=tuple(self.sets.values()),
            sysctls=tuple(self.sysctls.values()),
            be_liberal=self.be_liberal,
            pmtud_override=self.override,
            log_rate=self.log_rate,
            sources=dict(self.sources),
        )


def _read(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def build_policy(
    text: str, path: str = "<policy>", loader: Callable[[Path], str] = _read
) -> ir.Policy:
    """Parse ``text`` (read from ``path``) with its includes into an unvalidated IR."""
    builder = _Builder(path, loader)
    builder.run_file(text, path)
    return builder.policy()
