"""nfkit: a netfilter toolkit.

Summarise firewall logs (who attacks, from the local segment or through the upstream gateway),
and compile one policy to nftables and iptables scripts that keep Path MTU discovery working and
set ``nf_conntrack_tcp_be_liberal`` after the rules load.
"""

from __future__ import annotations

from nfkit.backends.base import CompiledRuleset
from nfkit.compiler import compile_policy
from nfkit.dsl import parse_policy
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
from nfkit.logs.parser import iter_records, parse_line
from nfkit.ir import Policy
from nfkit.logs.record import LogRecord
from nfkit.span import Span

__version__ = "0.1.0"

__all__ = [
    "ApplyError",
    "CompiledRuleset",
    "ConfigError",
    "DiscoveryError",
    "LogFormatError",
    "LogRecord",
    "NfkitError",
    "PmtudViolationError",
    "Policy",
    "RuleSemanticError",
    "RuleSyntaxError",
    "RulesetCheckError",
    "SourceError",
    "Span",
    "StateError",
    "UnsupportedFeatureError",
    "__version__",
    "compile_policy",
    "iter_records",
    "parse_line",
    "parse_policy",
]
