"""iter_records turns an unreadable log into LogReadError, never a raw OSError."""

from __future__ import annotations

import pytest
from hostile import hostile_dir, in_hostile

import nfkit
from nfkit.errors import LogReadError

__all__ = ["hostile_dir", "in_hostile"]  # fixtures, re-exported for pytest

pytestmark = pytest.mark.usefixtures("in_hostile")


# QA-7: logs/parser.py iter_records lets OSError / EOFError / BadGzipFile out
@pytest.mark.parametrize(
    "name", ["nonexist.log", "adir", "truncated.gz", "corrupt.gz", "plaintext.gz"]
)
def test_iter_records_unreadable(name: str) -> None:
    with pytest.raises(LogReadError):
        list(nfkit.iter_records(name))
