"""Every error nfkit raises on purpose derives from :class:`NfkitError`.

The tree::

    NfkitError
    ├── LogFormatError            a log line could not be parsed (strict mode); has ``lineno``
    ├── SourceError               an error with a place in a policy file (``span``)
    │   ├── RuleSyntaxError       the policy does not follow the grammar
    │   ├── RuleSemanticError     undefined name, family clash, port without tcp/udp, ...
    │   │   └── PmtudViolationError   the policy would break Path MTU discovery
    │   └── UnsupportedFeatureError   a backend cannot express a rule (never dropped silently)
    ├── ConfigError               bad configuration (segment TOML, CLI values)
    │   └── LogReadError          a log file cannot be read (missing, directory, corrupt .gz)
    ├── SummaryError              a JSON summary is malformed, or two summaries do not merge
    │                             (also a ``ValueError``, which it used to be)
    ├── StateError                the cron state file is unreadable or inconsistent
    ├── DiscoveryError            the running system could not be inspected (netlink, namespace)
    ├── DaskError                 the Dask cluster failed a run (worker killed, scheduler lost)
    └── ApplyError                loading a ruleset or setting a sysctl failed
        └── RulesetCheckError     the kernel's own tools rejected the ruleset before loading

Library code raises these; only :mod:`nfkit.cli` prints them and chooses exit codes.
"""

from __future__ import annotations

from nfkit.span import Span


class NfkitError(Exception):
    """Base class of every error nfkit raises deliberately."""


class LogFormatError(NfkitError):
    """A log line is not a netfilter packet log line (raised only with ``strict=True``)."""

    def __init__(self, message: str, lineno: int | None = None, source: str | None = None) -> None:
        self.message = message
        self.lineno = lineno
        self.source = source
        where = f"{source or '<input>'}:{lineno}: " if lineno is not None else ""
        super().__init__(f"{where}error: {message}")


class SourceError(NfkitError):
    """An error tied to a place in a policy file, printed ``path:line:col: error: message``."""

    def __init__(self, message: str, span: Span, source_line: str | None = None) -> None:
        self.message = message
        self.span = span
        self.source_line = source_line
        super().__init__(self.render())

    def render(self) -> str:
        """Return the message with its place, the offending source line and a caret under it."""
        text = f"{self.span}: error: {self.message}"
        if self.source_line is not None:
            line = self.source_line.rstrip("\n")
            width = 1
            if self.span.end_line == self.span.line and self.span.end_column is not None:
                width = max(1, self.span.end_column - self.span.column)
            caret = " " * (self.span.column - 1) + "^" * width
            text += f"\n    {line}\n    {caret}"
        return text


class RuleSyntaxError(SourceError):
    """The policy text does not follow the grammar."""


class RuleSemanticError(SourceError):
    """The policy parses but means something invalid (undefined name, family clash, ...)."""


class PmtudViolationError(RuleSemanticError):
    """The policy would drop ICMP fragmentation-needed or ICMPv6 packet-too-big."""


class UnsupportedFeatureError(SourceError):
    """A backend cannot express a rule; raised instead of silently dropping it."""

    def __init__(
        self, message: str, span: Span, backend: str, source_line: str | None = None
    ) -> None:
        self.backend = backend
        super().__init__(f"{backend}: {message}", span, source_line)


class ConfigError(NfkitError):
    """Invalid configuration: segment file, command-line values, database URL."""


class LogReadError(ConfigError):
    """A log file cannot be read: missing, a directory, a truncated or corrupt ``.gz``."""


class SummaryError(NfkitError, ValueError):
    """A summary cannot be rebuilt from its JSON form, or two summaries cannot be merged."""


class StateError(NfkitError):
    """The cron state file cannot be read or does not match the logs."""


class DiscoveryError(NfkitError):
    """The running system (interfaces, routes, neighbours, namespace) could not be inspected."""


class DaskError(NfkitError):
    """The Dask cluster failed the run (a worker died, the scheduler went away).

    An unreachable scheduler or a bad address is a :class:`ConfigError` instead.
    """


class ApplyError(NfkitError):
    """Loading a ruleset or setting a sysctl failed; the previous ruleset is left in place."""


class RulesetCheckError(ApplyError):
    """The kernel's tools (``nft -c``, ``iptables-restore --test``) rejected the ruleset."""
