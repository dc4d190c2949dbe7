"""The policy language front end: parse text into the IR and check it.

>>> policy = parse_policy('input policy drop {\\n  service ssh accept\\n}\\n')
>>> policy.chains[0].rules[0].verdict
<Verdict.ACCEPT: 'accept'>
"""

from __future__ import annotations

from pathlib import Path

from nfkit.dsl.transform import build_policy
from nfkit.dsl.validate import Diagnostic, validate
from nfkit.ir import Policy

__all__ = ["Diagnostic", "load_policy", "parse_policy", "validate"]


def parse_policy(text: str, path: str = "<policy>") -> Policy:
    """Parse policy ``text`` (its includes resolved relative to ``path``) into the IR.

    Raises :class:`~nfkit.errors.RuleSyntaxError` or :class:`~nfkit.errors.RuleSemanticError`.
    The result is not yet validated: call :func:`validate` (``compile_policy`` does both).
    """
    return build_policy(text, path)


def load_policy(path: str | Path) -> Policy:
    """Read and parse the policy file at ``path``."""
    return build_policy(Path(path).read_text(encoding="utf-8"), str(path))
