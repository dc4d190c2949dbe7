"""nfkit: a netfilter toolkit.

Summarise firewall logs (who attacks, from the local segment or through the upstream gateway),
and compile one policy to nftables and iptables scripts that keep Path MTU discovery working and
set ``nf_conntrack_tcp_be_liberal`` after the rules load.
"""

from __future__ import annotations

from nfkit.errors import (
    ApplyError,
    ConfigError,
    DiscoveryError,
    LogFormatError,
    NfkitError,
    PmtudViolationError,
    RuleSemanticError,
    RulesetCheckError,
    RuleSyntaxError,
    SourceError,
    StateError,
    UnsupportedFeatureError,
)
from nfkit.logs.record import LogRecord
from nfkit.span import Span

__version__ = "0.1.0"

__all__ = [
    "ApplyError",
    "ConfigError",
    "DiscoveryError",
    "LogFormatError",
    "LogRecord",
    "NfkitError",
    "PmtudViolationError",
    "RuleSemanticError",
    "RuleSyntaxError",
    "RulesetCheckError",
    "SourceError",
    "Span",
    "StateError",
    "UnsupportedFeatureError",
    "__version__",
]
