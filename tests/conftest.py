"""Shared fixtures. Real-kernel tests skip on a developer's laptop but fail in CI."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from netlab import Lab, enable_namespace_logging, kernel_required, kernel_unavailable_reason

REPO = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data"


@pytest.fixture(scope="session")
def kernel() -> None:
    """Demand root, namespaces and the netfilter tools: skip locally, fail in CI."""
    reason = kernel_unavailable_reason()
    if reason is not None:
        if kernel_required():
            pytest.fail(f"real-kernel test cannot run: {reason}", pytrace=False)
        pytest.skip(f"real-kernel test skipped: {reason}")
    enable_namespace_logging()


@pytest.fixture
def lab(kernel: None) -> Iterator[Lab]:
    """A fresh set of uniquely named namespaces, deleted afterwards whatever happens."""
    made = Lab()
    try:
        yield made
    finally:
        made.close()
