"""Render the command-line reference (docs/cli.md) from the argument parsers themselves.

Run ``python -m nfkit.cli._manual > docs/cli.md`` after changing an option; a test fails when the
committed file and ``--help`` disagree.
"""

from __future__ import annotations

import argparse
import os

from nfkit.cli import build_parser

_HEADER = """\
# nfkit command-line reference

Generated from the commands' own `--help` by `python -m nfkit.cli._manual > docs/cli.md`;
a test keeps the two identical.

Exit codes shared by every command: `0` success, `1` findings to act on (`doctor`),
`2` error (bad input, usage error, a failed check or apply; nothing was changed),
`130` interrupted.
"""


def _help_text(parser: argparse.ArgumentParser) -> str:
    # A fixed width keeps the generated file identical on every terminal.
    old = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = "100"
    try:
        return parser.format_help().rstrip()
    finally:
        if old is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = old


def render_markdown() -> str:
    """Return the whole command reference as Markdown."""
    parser = build_parser()
    parts = [_HEADER, "## nfkit\n", "```text", _help_text(parser), "```\n"]
    for action in parser._subparsers._group_actions if parser._subparsers else ():
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                parts += [f"## nfkit {name}\n", "```text", _help_text(sub), "```\n"]
    return "\n".join(parts)


if __name__ == "__main__":
    print(render_markdown(), end="")
