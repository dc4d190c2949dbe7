"""Compile a policy: parse -> IR -> validate -> backend -> text.

The library entry point::

    from nfkit import compile_policy

    result = compile_policy("rules/web-server.nfk", backend="nftables", emit="script")
    result.text            # what `nfkit compile` writes: a POSIX sh script (or the ruleset)
    result.rulesets        # {"nft": "..."}  or  {"ipv4": ..., "ipv6": ..., "ipset": ...}
    result.sysctls         # SysctlSetting(key, value, fallback, wait, warning), set AFTER load
    result.table           # "inet nfkit" (nftables) or "NFKIT-" (iptables chain prefix)
    result.jumps           # iptables: built-in chain -> NFKIT-* jumps to insert once
    result.warnings        # "path:line:col: warning: ..." lines

``source`` is a :class:`~pathlib.Path`, a path string naming an existing file, or policy text
(give ``path=`` to name it in errors and to resolve its includes). ``template_dir`` points at a
user's copy of the templates (see :mod:`nfkit.render`). Errors are
:class:`~nfkit.errors.RuleSyntaxError`, :class:`~nfkit.errors.RuleSemanticError`,
:class:`~nfkit.errors.PmtudViolationError` and :class:`~nfkit.errors.UnsupportedFeatureError`,
all :class:`~nfkit.errors.SourceError` with ``path:line:col`` and a caret.

Loading the nftables ruleset (``nft -f``) replaces only ``table inet nfkit``. Loading the iptables
rulesets (``iptables-restore --noflush`` / ``ip6tables-restore --noflush``) replaces only the
``NFKIT-*`` chains; each ``IptablesJump`` (``-I INPUT 1 -j NFKIT-INPUT``) is in the ruleset text and
must be left out when ``iptables -C`` shows it is already present (the script does this).
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Literal

from nfkit.backends import get_backend
from nfkit.backends.base import CompiledRuleset, Emit
from nfkit.dsl.transform import build_policy
from nfkit.dsl.validate import validate
from nfkit.errors import ConfigError
from nfkit.ir import Policy

BackendName = Literal["nftables", "iptables"]


def _read_file(file: Path, path: str | None) -> tuple[str, str]:
    try:
        return file.read_text(encoding="utf-8"), path or str(file)
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{file}: not a policy: not UTF-8 text ({exc.reason})") from None
    except OSError as exc:
        raise ConfigError(f"{file}: cannot read policy: {exc.strerror or exc}") from None


def _read_source(source: str | Path, path: str | None) -> tuple[str, str]:
    if isinstance(source, Path):
        return _read_file(source, path)
    one_line = "\n" not in source and len(source) < 4096
    if one_line and (Path(source).is_file() or source.strip().endswith(".nfk")):
        # A one-line string naming a file (or that looks like a policy file's name) is a path.
        return _read_file(Path(source), path or source)
    return source, path or "<policy>"


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while compiling.

    Compiling allocates hundreds of thousands of small acyclic objects (parse tree, IR); the
    collector's passes over them cost about 30% of a 10,000-rule compile and find nothing.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def load(source: str | Path, path: str | None = None) -> Policy:
    """Parse and validate a policy, returning the IR (warnings are dropped)."""
    text, name = _read_source(source, path)
    policy = build_policy(text, name)
    validate(policy)
    return policy


def compile_policy(
    source: str | Path,
    backend: BackendName = "nftables",
    emit: Emit = "script",
    *,
    path: str | None = None,
    template_dir: str | Path | None = None,
) -> CompiledRuleset:
    """Compile a policy file or text for ``backend``; see the module docstring."""
    if emit not in ("script", "ruleset"):
        raise ConfigError(f"emit must be 'script' or 'ruleset', not {emit!r}")
    text, name = _read_source(source, path)
    with _gc_paused():
        policy = build_policy(text, name)
        warnings = validate(policy)
        return get_backend(backend)(policy, warnings, template_dir).compile(emit)
