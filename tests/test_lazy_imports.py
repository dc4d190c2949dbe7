"""Start-up cost: ``import nfkit`` and ``nfkit summarize`` load only what they use.

A cron run of ``nfkit summarize`` must not pay for the policy compiler (lark grammar, backends,
templates), ``nfkit apply`` or ``nfkit doctor``. Each check runs in a fresh interpreter, since
this test process has long imported everything.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from nfkit.cli import _COMMANDS, build_parser

REPO = Path(__file__).resolve().parent.parent
SAMPLE = REPO / "examples" / "kern.log"

#: Modules only the policy side (compile, apply, doctor) needs.
HEAVY = ("lark", "nfkit.compiler", "nfkit.apply", "nfkit.doctor", "nfkit.backends", "nfkit.dsl")


def loaded_after(code: str) -> set[str]:
    """Run ``code`` in a fresh interpreter; return the names in its ``sys.modules`` afterwards."""
    probe = (
        "import json, sys\n"
        f"{code}\n"
        "sys.stdout.flush()\n"
        "sys.__stderr__.write('\\nMODULES=' + json.dumps(sorted(sys.modules)) + '\\n')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, cwd=REPO, check=False
    )
    assert done.returncode == 0, done.stderr
    marker = done.stderr.rindex("MODULES=")
    return set(json.loads(done.stderr[marker + len("MODULES="):]))


def run_nfkit_code(*argv: str) -> str:
    """Code that runs ``python -m nfkit ARGV`` in the probe and checks it exits 0."""
    return (
        "import runpy\n"
        f"sys.argv = ['nfkit', *{list(argv)!r}]\n"
        "try:\n"
        "    runpy.run_module('nfkit', run_name='__main__', alter_sys=True)\n"
        "except SystemExit as exc:\n"
        "    assert exc.code in (0, None), exc.code\n"
    )


def test_import_nfkit_loads_almost_nothing() -> None:
    loaded = loaded_after("import nfkit")
    nfkit_modules = {name for name in loaded if name.startswith("nfkit")}
    assert nfkit_modules == {"nfkit", "nfkit.errors", "nfkit.span"}
    assert "jinja2" not in loaded and "lark" not in loaded


class StillLoaded(Exception):
    """A module that should not be loaded was (distinct from a failed run)."""


def assert_not_loaded(heavy: str, loaded: set[str]) -> None:
    """Raise :class:`StillLoaded` when ``heavy`` is in ``loaded``."""
    if heavy in loaded:
        raise StillLoaded(heavy)


@pytest.mark.parametrize(
    "heavy",
    [*HEAVY, "jinja2"],
)
def test_summarize_does_not_load_the_compiler(heavy: str) -> None:
    code = run_nfkit_code("summarize", "--no-discover", "--format", "json", str(SAMPLE))
    loaded = loaded_after(code)
    assert "nfkit.logs.aggregate" in loaded  # it did run
    assert_not_loaded(heavy, loaded)


def test_parse_loads_neither_compiler_nor_fleet() -> None:
    loaded = loaded_after(run_nfkit_code("parse", str(SAMPLE)))
    assert "nfkit.logs.parser" in loaded
    unwanted = {*HEAVY, "jinja2", "nfkit.fleet", "nfkit.logs.aggregate"}
    assert not unwanted & loaded, unwanted & loaded


def test_compile_still_loads_what_it_needs() -> None:
    loaded = loaded_after(run_nfkit_code("compile", str(REPO / "rules" / "web-server.nfk")))
    assert {"lark", "nfkit.compiler", "jinja2"} <= loaded
    assert "nfkit.fleet" not in loaded


def test_every_public_name_resolves_lazily() -> None:
    code = (
        "import nfkit\n"
        "assert set(nfkit.__all__) <= set(dir(nfkit))\n"
        "values = {name: getattr(nfkit, name) for name in nfkit.__all__}\n"
        "assert all(value is not None for value in values.values())\n"
        "assert all(vars(nfkit)[name] is value for name, value in values.items())  # cached\n"
        "assert nfkit.compile_policy.__module__ == 'nfkit.compiler'\n"
        "assert nfkit.Summary is __import__('nfkit.logs.aggregate').logs.aggregate.Summary\n"
    )
    assert "nfkit.compiler" in loaded_after(code)


def test_star_import_gives_every_public_name() -> None:
    code = (
        "namespace = {}\n"
        "exec('from nfkit import *', namespace)\n"
        "import nfkit\n"
        "missing = [n for n in nfkit.__all__ if namespace.get(n) is not getattr(nfkit, n)]\n"
        "assert not missing, missing\n"
        "extra = {n for n in namespace if n != '__builtins__'} - set(nfkit.__all__)\n"
        "assert not extra, extra\n"
    )
    loaded_after(code)


def test_unknown_names_and_submodules() -> None:
    code = (
        "import nfkit\n"
        "try:\n"
        "    nfkit.no_such_name\n"
        "except AttributeError as exc:\n"
        "    assert 'no_such_name' in str(exc)\n"
        "else:\n"
        "    raise AssertionError('no AttributeError')\n"
        "assert not hasattr(nfkit, 'compile')\n"
        "from nfkit import ir  # a submodule, not a lazy name\n"
        "assert ir.__name__ == 'nfkit.ir'\n"
    )
    loaded_after(code)


@pytest.mark.parametrize("command", _COMMANDS)
def test_help_is_the_same_with_one_command_registered(command: str) -> None:
    def help_of(parser: object) -> str:
        choices = parser._subparsers._group_actions[0].choices  # type: ignore[attr-defined]
        return str(choices[command].format_help())

    assert help_of(build_parser(command)) == help_of(build_parser())


def test_main_registers_only_the_command_run(monkeypatch: pytest.MonkeyPatch) -> None:
    import nfkit.cli

    seen: list[str | None] = []
    real = nfkit.cli.build_parser

    def spy(command: str | None = None) -> object:
        seen.append(command)
        return real(command)

    monkeypatch.setattr(nfkit.cli, "build_parser", spy)
    with pytest.raises(SystemExit):
        nfkit.cli.main(["summarize", "--help"])
    with pytest.raises(SystemExit):
        nfkit.cli.main(["--help"])
    with pytest.raises(SystemExit):
        nfkit.cli.main(["sumarize"])
    assert seen == ["summarize", None, None]
