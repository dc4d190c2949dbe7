"""nfkit: a netfilter toolkit.

Summarise firewall logs (who attacks, from the local segment or through the upstream gateway),
and compile one policy to nftables and iptables scripts that keep Path MTU discovery working and
set ``nf_conntrack_tcp_be_liberal`` after the rules load.
"""

from __future__ import annotations

from nfkit.apply import apply_policy
from nfkit.backends.base import CompiledRuleset
from nfkit.compiler import compile_policy
from nfkit.doctor import run_doctor
from nfkit.dsl import parse_policy
from nfkit.errors import (
    ApplyError,
    ConfigError,
    DiscoveryError,
    LogFormatError,
    LogReadError,
    NfkitError,
    PmtudViolationError,
    RuleSemanticError,
    RulesetCheckError,
    RuleSyntaxError,
    SourceError,
    StateError,
    SummaryError,
    UnsupportedFeatureError,
)
from nfkit.fleet import Fleet, FleetSummary, summarize_on_dask
from nfkit.ir import Policy
from nfkit.logs.aggregate import Summary, SummaryConfig, summarize
from nfkit.logs.history import History
from nfkit.logs.parser import iter_records, parse_line
from nfkit.logs.record import LogRecord
from nfkit.logs.segment import Segment
from nfkit.span import Span

__version__ = "0.1.0"

__all__ = [
    "ApplyError",
    "CompiledRuleset",
    "ConfigError",
    "DiscoveryError",
    "Fleet",
    "FleetSummary",
    "History",
    "LogFormatError",
    "LogReadError",
    "LogRecord",
    "NfkitError",
    "PmtudViolationError",
    "Policy",
    "RuleSemanticError",
    "RuleSyntaxError",
    "RulesetCheckError",
    "Segment",
    "SourceError",
    "Span",
    "StateError",
    "Summary",
    "SummaryConfig",
    "SummaryError",
    "UnsupportedFeatureError",
    "__version__",
    "apply_policy",
    "compile_policy",
    "iter_records",
    "parse_line",
    "parse_policy",
    "run_doctor",
    "summarize",
    "summarize_on_dask",
]
