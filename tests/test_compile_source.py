"""compile_policy reads its source cleanly: unreadable paths and bad options are NfkitErrors."""

from __future__ import annotations

from pathlib import Path

import pytest
from hostile import hostile_dir, in_hostile

import nfkit
from nfkit.errors import ConfigError, NfkitError

__all__ = ["hostile_dir", "in_hostile"]  # fixtures, re-exported for pytest

pytestmark = pytest.mark.usefixtures("in_hostile")


# QA-8: compiler.py _read_source lets OSError / UnicodeDecodeError out
@pytest.mark.parametrize("name", ["nonexist.nfk", "adir", "binary.nfk"])
def test_compile_policy_unreadable_path(name: str) -> None:
    with pytest.raises(NfkitError, match=name):
        nfkit.compile_policy(Path(name))


# QA-9: compiler.py: a str naming a missing file is compiled as policy text
def test_compile_policy_missing_file_named_by_str() -> None:
    with pytest.raises(NfkitError, match=r"(?i)nonexist\.nfk.*(no such|not found|does not exist)"):
        nfkit.compile_policy("nonexist.nfk")


# QA-10: compiler.py: a bad ``emit`` is a bare ValueError
def test_compile_policy_bad_emit() -> None:
    with pytest.raises(ConfigError, match="emit"):
        nfkit.compile_policy("input policy drop {\n}\n", emit="x")  # type: ignore[arg-type]
