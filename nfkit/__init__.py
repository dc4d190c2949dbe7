"""nfkit: a netfilter toolkit.

Summarise firewall logs (who attacks, from the local segment or through the upstream gateway),
and compile one policy to nftables and iptables scripts that keep Path MTU discovery working and
set ``nf_conntrack_tcp_be_liberal`` after the rules load.

The names below are imported on first use (PEP 562): ``import nfkit`` alone stays cheap, so a
cron run of ``nfkit summarize`` does not load the policy compiler, its grammar or the templates.
"""

from __future__ import annotations

import importlib as _importlib
import typing as _typing

from nfkit.errors import (
    ApplyError,
    ConfigError,
    DaskError,
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
from nfkit.span import Span

if _typing.TYPE_CHECKING:
    from nfkit.apply import apply_policy
    from nfkit.backends.base import CompiledRuleset
    from nfkit.compiler import compile_policy
    from nfkit.doctor import run_doctor
    from nfkit.dsl import parse_policy
    from nfkit.fleet import Fleet, FleetSummary, summarize_on_dask
    from nfkit.ir import Policy
    from nfkit.logs.aggregate import Summary, SummaryConfig, summarize
    from nfkit.logs.history import History
    from nfkit.logs.parser import iter_records, parse_line
    from nfkit.logs.record import LogRecord
    from nfkit.logs.segment import Segment

__version__ = "0.1.0"

__all__ = [
    "ApplyError",
    "CompiledRuleset",
    "ConfigError",
    "DaskError",
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

#: Public name -> the module it is imported from on first use.
_LAZY: dict[str, str] = {
    "CompiledRuleset": "nfkit.backends.base",
    "Fleet": "nfkit.fleet",
    "FleetSummary": "nfkit.fleet",
    "History": "nfkit.logs.history",
    "LogRecord": "nfkit.logs.record",
    "Policy": "nfkit.ir",
    "Segment": "nfkit.logs.segment",
    "Summary": "nfkit.logs.aggregate",
    "SummaryConfig": "nfkit.logs.aggregate",
    "apply_policy": "nfkit.apply",
    "compile_policy": "nfkit.compiler",
    "iter_records": "nfkit.logs.parser",
    "parse_line": "nfkit.logs.parser",
    "parse_policy": "nfkit.dsl",
    "run_doctor": "nfkit.doctor",
    "summarize": "nfkit.logs.aggregate",
    "summarize_on_dask": "nfkit.fleet",
}


def __getattr__(name: str) -> object:
    """Import a public name on first use and keep it in the module (PEP 562)."""
    module = _LAZY.get(name)
    if module is None:
        # AttributeError (not KeyError) lets ``from nfkit import ir`` fall back to the submodule.
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(_importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    """The module's names, including the public ones not imported yet."""
    return sorted(set(globals()) | set(__all__))
