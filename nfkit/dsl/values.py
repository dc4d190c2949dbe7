"""Values in a policy: classifying tokens (addresses, ports, rates, ...) and their places.

:class:`ValueReader` is the half of the tree walker that knows about values: it expands
``$variables``, splits ``{ lists }``, resolves service and interface names, and reports a bad
value at its own line and column. :mod:`nfkit.dsl.transform` builds statements on top of it.
"""

from __future__ import annotations

import difflib
import ipaddress
import re
from typing import Literal, NamedTuple, NoReturn, cast

from lark import Token, Tree

from nfkit import ir
from nfkit.dsl import names
from nfkit.errors import RuleSemanticError
from nfkit.span import Span

#: Burst used when a rate has no ``burst``.
DEFAULT_BURST = 5
#: Largest ``burst`` (packets). iptables' ``limit`` match takes less (see the iptables backend).
MAX_BURST = 1_000_000
#: nftables keeps a rate (packets per unit) in 64 bits, and rate + burst must fit as well.
_U64_MAX = 2**64 - 1
#: Largest rate count per unit, whatever the burst: 18446744073708551615.
MAX_RATE = _U64_MAX - MAX_BURST
#: Seconds per rate unit.
UNIT_SECONDS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_IFNAME = re.compile(r"[A-Za-z0-9_.:@-]{1,15}\*?\Z")


class Item(NamedTuple):
    """One value token after ``$variable`` expansion (a tuple: made once per value, fast)."""

    text: str
    span: Span
    kind: Literal["item", "string", "setref"]


class ValueReader:
    """Reads values and places; holds the names defined so far."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.sources: dict[str, tuple[str, ...]] = {}
        self.defines: dict[str, tuple[Item, ...]] = {}
        self.services: dict[str, tuple[ir.ServicePort, ...]] = {}
        self.interfaces: dict[str, tuple[str, ...]] = {}

    # -- errors and places -----------------------------------------------------------------
    def span(self, node: Token | Tree[Token]) -> Span:
        """The place of a token, or of a tree from its first to its last token."""
        if isinstance(node, Token):
            return Span(self.path, node.line or 1, node.column or 1, node.end_line,
                        node.end_column)
        start = self.start(node)
        last = _edge_token(node, -1)
        if start is None or last is None:
            return Span(self.path, 1, 1)
        return Span(self.path, start[0], start[1], last.end_line, last.end_column)

    def start(self, node: Token | Tree[Token]) -> tuple[int, int] | None:
        """Line and column where a node starts, including keywords the tree leaves out."""
        if isinstance(node, Token):
            return node.line or 1, node.column or 1
        for child in node.children:
            if child is not None:
                found = self.start(child)
                break
        else:
            return None
        if found is None:
            return None
        keyword = _LEADING_KEYWORD.get(node.data)
        if keyword is not None:
            lines = self.sources.get(self.path, ())
            if 1 <= found[0] <= len(lines):
                index = lines[found[0] - 1].rfind(keyword, 0, found[1] - 1)
                if index >= 0:
                    return found[0], index + 1
        return found

    def fail(self, message: str, span: Span) -> NoReturn:
        lines = self.sources.get(span.path, ())
        line = lines[span.line - 1] if 1 <= span.line <= len(lines) else None
        raise RuleSemanticError(message, span, line)

    # -- values ------------------------------------------------------------------------------
    def items(self, value: Tree[Token] | Token) -> tuple[Item, ...]:
        """Flatten a value (token, list, $variable) into items."""
        if isinstance(value, Tree):
            out: list[Item] = []
            for child in value.children:
                if child is None:
                    continue
                out.extend(self.items(child))
            return tuple(out)
        if value.type == "LIST":
            return self.list_items(value)
        span = self.span(value)
        if value.type == "VAR":
            name = str(value)[1:]
            if name not in self.defines:
                self.fail(f"undefined variable ${name}", span)
            return self.defines[name]
        if value.type == "STRING":
            return (Item(str(value)[1:-1], span, "string"),)
        if value.type == "SETREF":
            return (Item(str(value)[1:], span, "setref"),)
        return (Item(str(value), span, "item"),)

    def list_items(self, token: Token) -> tuple[Item, ...]:
        """Split a ``{ ... }`` token into items, each with its own place."""
        body = str(token)
        out: list[Item] = []
        line = token.line or 1
        line_start = -(token.column or 1) + 1  # offset in body where the current line starts
        scanned = 0
        path = self.path
        for found in _LIST_ELEMENT.finditer(body, 1, len(body) - 1):
            text = found.group()
            if text[0] == "#":
                continue
            start = found.start()
            newlines = body.count("\n", scanned, start)
            if newlines:
                line += newlines
                line_start = body.rindex("\n", scanned, start) + 1
            scanned = start
            column = start - line_start + 1
            span = Span(path, line, column, line, column + len(text))
            first = text[0]
            if first == "$":
                name = text[1:]
                if name not in self.defines:
                    self.fail(f"undefined variable ${name}", span)
                out.extend(self.defines[name])
            elif first == "@":
                out.append(Item(text[1:], span, "setref"))
            elif first == '"':
                out.append(Item(text[1:-1], span, "string"))
            else:
                out.append(Item(text, span, "item"))
        return tuple(out)

    def name(self, token: Token, what: str) -> str:
        text = str(token)
        if not _NAME.match(text):
            self.fail(f"{what} name {text!r} must start with a letter and hold only letters, "
                      "digits and _", self.span(token))
        return text

    def network(self, item: Item) -> ir.Network:
        if item.kind != "item":
            self.fail(f"expected an address, got {item.text!r}", item.span)
        try:
            return ipaddress.ip_network(item.text, strict=True)
        except ValueError as exc:
            if "host bits set" in str(exc):
                fixed = ipaddress.ip_network(item.text, strict=False)
                self.fail(f"{item.text!r} has host bits set; did you mean {fixed}?", item.span)
            self.fail(f"{item.text!r} is not an IPv4 or IPv6 address or network", item.span)

    def networks(self, items: tuple[Item, ...]) -> tuple[ir.Network, ...]:
        return tuple(self.network(item) for item in items)

    def number(self, item: Item, what: str, low: int, high: int) -> int:
        """A decimal number within ``low..high``, or a ``RuleSemanticError`` at its place."""
        text = item.text
        if item.kind != "item" or not _DIGITS.fullmatch(text):
            self.fail(f"expected {what} (a number), got {text!r}", item.span)
        if len(text.lstrip("0")) > len(str(high)):  # also keeps int() off thousands of digits
            self.fail(f"{what} {_shorten(text)} is out of range {low}-{high}", item.span)
        value = int(text)
        if not low <= value <= high:
            self.fail(f"{what} {value} is out of range {low}-{high}", item.span)
        return value

    def port_range(self, item: Item, protocols: tuple[str, ...] | None) -> list[ir.PortRange]:
        text = item.text
        if item.kind == "item" and _DIGITS.fullmatch(text):
            port = self.number(item, "port", 0, 65535)
            return [ir.PortRange(port, port)]
        if item.kind == "item" and _PORT_RANGE.fullmatch(text):
            low_text, high_text = text.split("-")
            if max(len(low_text.lstrip("0")), len(high_text.lstrip("0"))) > 5:
                self.fail(f"port range {_shorten(text)!r} must be low-high within 0-65535",
                          item.span)
            low, high = int(low_text), int(high_text)
            if not 0 <= low <= high <= 65535:
                self.fail(f"port range {text!r} must be low-high within 0-65535", item.span)
            return [ir.PortRange(low, high)]
        entries = self.service_entries(item)
        chosen = [e for e in entries if protocols is None or e.protocol in protocols]
        if not chosen:
            have = ", ".join(sorted({e.protocol for e in entries}))
            want = "/".join(protocols or ())
            self.fail(f"service {text!r} is {have}, not {want}", item.span)
        return [port for entry in chosen for port in entry.ports]

    def ports(
        self, items: tuple[Item, ...], protocols: tuple[str, ...] | None
    ) -> tuple[ir.PortRange, ...]:
        seen: dict[ir.PortRange, None] = {}
        for item in items:
            for port in self.port_range(item, protocols):
                seen.setdefault(port, None)
        return tuple(seen)

    def service_entries(self, item: Item) -> tuple[ir.ServicePort, ...]:
        if item.text in self.services:
            return self.services[item.text]
        builtin = names.SERVICES.get(item.text)
        if builtin is None:
            known = [*names.SERVICES, *self.services]
            close = difflib.get_close_matches(item.text, known, n=1, cutoff=0.7)
            hint = f"did you mean {close[0]!r}?" if close else (
                f"define it: service {item.text} = tcp PORT")
            self.fail(f"unknown service {item.text!r} ({hint})", item.span)
        entries = [
            ir.ServicePort(proto, tuple(self.port_range(Item(port, item.span, "item"), None)))
            for proto, port in builtin
        ]
        return tuple(entries)

    def rate(self, node: Tree[Token]) -> ir.Rate:
        """``N/unit [burst N]`` within what nftables holds (see :data:`MAX_RATE`).

        The count is 1 to :data:`MAX_RATE` per unit and the burst 1 to :data:`MAX_BURST`; and
        nftables' token bucket (burst times nanoseconds per packet) must fit in 64 bits, which only
        a slow rate with a large burst exceeds (``1/day`` takes a burst of at most 213503).
        """
        rate_token, burst_token = node.children
        assert isinstance(rate_token, Token)
        item = Item(str(rate_token), self.span(rate_token), "item")
        match = _RATE.fullmatch(item.text)
        if not match or match.group(2) not in names.RATE_UNITS:
            self.fail(f"expected a rate such as 10/second or 5/minute, got {item.text!r}",
                      item.span)
        unit = cast(Literal["second", "minute", "hour", "day"], names.RATE_UNITS[match.group(2)])
        digits = match.group(1).lstrip("0")
        if len(digits) > len(str(MAX_RATE)) or int(digits or "0") > MAX_RATE:
            self.fail(f"rate {_shorten(match.group(1))}/{match.group(2)} is out of range: at "
                      f"most {MAX_RATE}/{unit} (nftables holds rates in 64 bits)", item.span)
        count = int(digits or "0")
        if count < 1:
            self.fail("a rate must be at least 1", item.span)
        burst = DEFAULT_BURST
        burst_span = item.span
        if isinstance(burst_token, Token):
            burst_item = Item(str(burst_token), self.span(burst_token), "item")
            burst = self.number(burst_item, "burst", 1, MAX_BURST)
            burst_span = burst_item.span
        per_packet = UNIT_SECONDS[unit] * 10**9 // count  # nanoseconds between two packets
        if per_packet * burst > _U64_MAX:
            self.fail(f"burst {burst} is too large for the rate {count}/{unit}: nftables' token "
                      f"bucket holds at most {_U64_MAX // per_packet} packets at this rate",
                      burst_span)
        return ir.Rate(count, unit, burst)

    def interfaces_of(self, items: tuple[Item, ...]) -> tuple[str, ...]:
        out: list[str] = []
        for item in items:
            if item.kind == "setref":
                self.fail("an @set holds addresses, not interfaces", item.span)
            if item.kind == "item" and item.text in self.interfaces:
                out.extend(self.interfaces[item.text])
                continue
            if not _IFNAME.match(item.text):
                self.fail(f"{item.text!r} is not an interface name (at most 15 characters; "
                          "'*' only at the end)", item.span)
            out.append(item.text)
        return tuple(dict.fromkeys(out))


_DIGITS = re.compile(r"[0-9]+")
_PORT_RANGE = re.compile(r"[0-9]+-[0-9]+")
_RATE = re.compile(r"([0-9]+)/([a-z]+)")


def _shorten(text: str, width: int = 40) -> str:
    """``text``, or its start and length when it is too long to quote in a message."""
    return text if len(text) <= width else f"{text[:20]}... ({len(text)} characters)"

#: The keyword a tree starts with; lark leaves anonymous keywords out of the tree.
_LEADING_KEYWORD = {
    "log": "log",
    "policy_log": "log",
    "log_prefix": "prefix",
    "log_rate": "rate",
    "rate_limit": "limit",
    "conn_limit": "limit",
    "proto_match": "proto",
    "service_match": "service",
    "ct_state_match": "ct",
    "ct_status_match": "ct",
    "family_match": "family",
    "chain_policy": "policy",
    "snat": "snat",
    "dnat": "dnat",
    "set_def": "set",
    "sysctl": "sysctl",
    "pmtud_override": "pmtud",
    "interface_def": "interface",
    "zone_def": "zone",
}

#: An element of a ``{ list }``: a quoted string, a comment (skipped) or a bare word.
_LIST_ELEMENT = re.compile(r'"[^"\n]*"|#[^\n]*|[^\s,#"{}]+')


def _edge_token(node: Tree[Token], index: int) -> Token | None:
    """The first (``index=0``) or last (``-1``) token under ``node``."""
    children = node.children if index == 0 else node.children[::-1]
    for child in children:
        if child is None:
            continue
        if isinstance(child, Token):
            return child
        found = _edge_token(child, index)
        if found is not None:
            return found
    return None
