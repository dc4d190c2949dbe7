"""Golden files: every construct of the policy language, compiled for both backends.

Each ``tests/golden/NN-topic/`` holds ``policy.nfk`` and the expected ``expected.nft`` (the
``nft -f`` file) and ``expected.iptables`` (IPv4, IPv6 and ipset sections). To regenerate after an
intended change, then review the diff::

    pytest tests/golden tests/test_golden.py --update-golden
    NFKIT_UPDATE_GOLDEN=1 pytest tests/test_golden.py        # same thing

(``tests/golden`` on the command line makes pytest load the conftest that defines the option.)
The kernel accepts every golden output: see ``tests/kernel/test_compile_kernel.py``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from nfkit.compiler import compile_policy

GOLDEN = Path(__file__).resolve().parent / "golden"
CASES = sorted(p for p in GOLDEN.iterdir() if (p / "policy.nfk").is_file())
OUTPUTS = {"nftables": "expected.nft", "iptables": "expected.iptables"}


def compile_case(case: Path, backend: str) -> str:
    """Compile a golden case the way the golden files were made (path relative, stable)."""
    source = case / "policy.nfk"
    result = compile_policy(source, backend, "ruleset")  # type: ignore[arg-type]
    return result.text


def _update(request: pytest.FixtureRequest) -> bool:
    return bool(
        request.config.getoption("--update-golden", default=False)
        or os.environ.get("NFKIT_UPDATE_GOLDEN") == "1"
    )


def test_there_are_cases() -> None:
    assert len(CASES) >= 15


@pytest.mark.parametrize("backend", sorted(OUTPUTS))
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_golden(case: Path, backend: str, request: pytest.FixtureRequest) -> None:
    produced = compile_case(case, backend)
    expected_path = case / OUTPUTS[backend]
    if _update(request):
        expected_path.write_text(produced, encoding="utf-8")
        return
    assert expected_path.is_file(), f"missing {expected_path}: run with --update-golden"
    assert produced == expected_path.read_text(encoding="utf-8")


def test_compiling_twice_gives_the_same_text() -> None:
    for case in CASES:
        assert compile_case(case, "nftables") == compile_case(case, "nftables")
