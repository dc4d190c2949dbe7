"""The documentation matches the code."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import nfkit
from nfkit.cli._manual import render_markdown

REPO = Path(__file__).resolve().parent.parent


def test_cli_reference_matches_help() -> None:
    committed = (REPO / "docs" / "cli.md").read_text()
    assert committed == render_markdown(), (
        "docs/cli.md is stale: run `python -m nfkit.cli._manual > docs/cli.md`"
    )


def test_every_command_has_help_for_every_option() -> None:
    from nfkit.cli import build_parser

    parser = build_parser()
    subparsers = parser._subparsers
    assert subparsers is not None
    for action in subparsers._group_actions:
        for name, sub in getattr(action, "choices", {}).items():
            for option in sub._actions:
                if option.dest == "help":
                    continue
                assert option.help, f"nfkit {name}: option {option.dest!r} has no help text"


def test_readme_opens_with_the_two_commands() -> None:
    readme = (REPO / "README.md").read_text()
    block = re.search(r"```sh\n(.*?)```", readme, re.S)
    assert block is not None
    commands = [line.split("#")[0].strip() for line in block.group(1).splitlines()]
    assert [c for c in commands if c] == ["make demo", "make test"]
    ci = (REPO / ".ci" / "run").read_text()
    assert "make test" in ci


def test_public_api_is_exactly_all() -> None:
    # `annotations` is the __future__ feature object, not part of the API.
    public = {name for name in dir(nfkit) if not name.startswith("_")} - {"annotations"}
    modules = {name for name in public if type(getattr(nfkit, name)).__name__ == "module"}
    assert sorted(nfkit.__all__) == nfkit.__all__
    assert public - modules == set(nfkit.__all__) - {"__version__"}


def test_version_flag() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "nfkit", "--version"], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == f"nfkit {nfkit.__version__}"
