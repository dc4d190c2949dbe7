"""Parse policy text with the cached LALR parser; turn lark's errors into RuleSyntaxError.

Only this module talks to lark. A syntax error becomes a :class:`~nfkit.errors.RuleSyntaxError`
with the place (``path:line:col``), the source line, a caret and a plain-words "expected ...".
"""

from __future__ import annotations

import difflib
from functools import cache
from importlib.resources import files

from lark import Lark, Token, Tree
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from nfkit.errors import RuleSyntaxError
from nfkit.span import Span

#: How lark's terminal names read in an error message.
_TERMINAL_WORDS = {
    "_NL": "end of line",
    "$END": "end of file",
    "ITEM": "a value",
    "VAR": "a $variable",
    "SETREF": "an @set",
    "STRING": "a quoted string",
    "LIST": "a { list }",
    "VERDICT": "a verdict (accept, drop, reject)",
    "HOOK": "a chain (input, forward, output)",
    "ADDR_DIR": "saddr/daddr",
    "IFACE_DIR": "iif/oif",
    "PORT_DIR": "sport/dport",
    "L4PROTO": "tcp/udp",
    "ICMP_KW": "icmp/icmpv6",
    "NEQ": "'!='",
    "LBRACE": "'{'",
    "RBRACE": "'}'",
    "EQUAL": "'='",
    "COMMA": "','",
}
#: The terminals that start a match, summed up as one phrase when most of them are expected.
_MATCH_TERMINALS = frozenset({"ADDR_DIR", "IFACE_DIR", "PORT_DIR", "L4PROTO", "ICMP_KW", "PROTO",
                              "SERVICE", "CT", "FAMILY"})
_MATCH_PHRASE = "a match (saddr, daddr, iif, oif, proto, tcp/udp dport, service, icmp, ct, family)"


@cache
def _lark() -> Lark:
    grammar = files("nfkit.dsl").joinpath("nfkit.lark").read_text(encoding="utf-8")
    return Lark(
        grammar,
        parser="lalr",
        lexer="contextual",
        propagate_positions=False,  # transform.py takes places from tokens (faster)
        maybe_placeholders=True,
        cache=False,
    )


def _describe_expected(expected: set[str] | frozenset[str]) -> str:
    lark = _lark()
    words: set[str] = set()
    if len(expected & _MATCH_TERMINALS) >= 4:
        words.add(_MATCH_PHRASE)
        expected = expected - _MATCH_TERMINALS
    for name in expected:
        if name in _TERMINAL_WORDS:
            words.add(_TERMINAL_WORDS[name])
            continue
        try:
            pattern = lark.get_terminal(name).pattern
        except KeyError:
            words.add(name.lower())
            continue
        if pattern.type == "str":
            words.add(f"'{pattern.value}'")
        else:
            words.add(name.lower())
    ordered = sorted(words)
    if len(ordered) > 14:
        ordered = [*ordered[:14], "..."]
    return ", ".join(ordered)


def _did_you_mean(text: str, accepted: frozenset[str]) -> str | None:
    """The keyword closest to a misspelt word, if one is close."""
    words: list[str] = []
    lark = _lark()
    for name in accepted:
        try:
            pattern = lark.get_terminal(name).pattern
        except KeyError:
            continue
        if pattern.type == "str":
            words.append(pattern.value)
        else:
            # Alternatives such as "accept" | "drop" | "reject".
            words.extend(w for w in pattern.value.strip("()").replace("?:", "").split("|")
                         if w.isalpha())
    close = difflib.get_close_matches(text, words, n=1, cutoff=0.75)
    return close[0] if close else None


def _token_text(token: Token) -> str:
    if token.type == "_NL":
        return "end of line"
    if token.type == "$END":
        return "end of file"
    return repr(str(token))


def parse_text(text: str, path: str = "<policy>") -> Tree[Token]:
    """Parse one policy file's text into a lark tree; raise RuleSyntaxError on bad input."""
    source = text if text.endswith("\n") else text + "\n"
    lines = source.splitlines()
    try:
        return _lark().parse(source)
    except UnexpectedInput as exc:
        raise _syntax_error(exc, path, lines) from None


def _syntax_error(exc: UnexpectedInput, path: str, lines: list[str]) -> RuleSyntaxError:
    line = max(1, getattr(exc, "line", 1) or 1)
    column = max(1, getattr(exc, "column", 1) or 1)
    end_column: int | None = None
    if isinstance(exc, UnexpectedToken):
        token = exc.token
        if token.type == "$END":
            line, column = len(lines), len(lines[-1]) + 1 if lines else 1
            message = "unexpected end of file"
        elif token.type == "_NL":
            # The newline token starts at the end of the offending line.
            line = token.line or line
            column = token.column or column
            message = "unexpected end of line"
        else:
            end_column = token.end_column
            message = f"unexpected {_token_text(token)}"
        accepted = frozenset(exc.accepts or exc.expected)
        hint = _did_you_mean(str(token), accepted) if token.type not in ("$END", "_NL") else None
        if token.type == "_NL" and "VERDICT" in accepted:
            message = "this rule has no verdict: end it with accept, drop or reject"
        elif token.type == "$END" and "RBRACE" in accepted:
            message = "unexpected end of file: a '}' is missing"
        elif hint is not None:
            message += f"; did you mean {hint!r}?"
        elif accepted == {"_NL"}:
            message += "; expected end of line (one statement per line: rules go on their own "
            message += "lines inside { })"
        else:
            expected = _describe_expected(accepted)
            if expected:
                message += f"; expected {expected}"
    elif isinstance(exc, UnexpectedCharacters):
        char = lines[line - 1][column - 1] if line <= len(lines) and column <= len(
            lines[line - 1]
        ) else "?"
        message = f"unexpected character {char!r}"
        if exc.allowed:
            message += f"; expected {_describe_expected(frozenset(exc.allowed))}"
    elif isinstance(exc, UnexpectedEOF):
        line, column = len(lines), len(lines[-1]) + 1 if lines else 1
        message = "unexpected end of file; a '}' may be missing"
    else:  # pragma: no cover - lark has no other UnexpectedInput
        message = "syntax error"
    source_line = lines[line - 1] if 1 <= line <= len(lines) else None
    span = Span(path, line, column, line, end_column)
    return RuleSyntaxError(message, span, source_line)
