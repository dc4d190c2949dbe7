"""``nfkit compile`` as an administrator runs it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
WEB = REPO / "rules" / "web-server.nfk"


def nfkit(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run the CLI in its own process."""
    return subprocess.run([sys.executable, "-m", "nfkit", "compile", *args], input=stdin,
                          capture_output=True, text=True, cwd=REPO, check=False)


def test_default_is_an_nftables_script_on_stdout() -> None:
    run = nfkit(str(WEB))
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith("#!/bin/sh\n")
    assert "nft -c -f" in run.stdout and "table inet nfkit {" in run.stdout


def test_ruleset_for_each_backend() -> None:
    nft = nfkit(str(WEB), "--emit", "ruleset")
    assert nft.stdout.startswith("#!/usr/sbin/nft -f\n")
    ipt = nfkit(str(WEB), "--backend", "iptables", "--emit", "ruleset")
    assert "# ==> ipv4 <==" in ipt.stdout and "# ==> ipv6 <==" in ipt.stdout
    assert "*filter" in ipt.stdout


def test_output_file_script_is_executable(tmp_path: Path) -> None:
    out = tmp_path / "fw.sh"
    run = nfkit(str(WEB), "-o", str(out))
    assert run.returncode == 0 and run.stdout == ""
    assert out.read_text().startswith("#!/bin/sh\n")
    assert os.access(out, os.X_OK)


def test_iptables_ruleset_output_writes_one_file_per_part(tmp_path: Path) -> None:
    base = tmp_path / "rules"
    run = nfkit(str(WEB), "-b", "iptables", "-e", "ruleset", "-o", str(base))
    assert run.returncode == 0, run.stderr
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["rules.ipset", "rules.ipset-commit", "rules.ipv4", "rules.ipv6"]
    assert (tmp_path / "rules.ipv6").read_text().count("*filter") == 1


def test_policy_from_stdin_and_warnings_on_stderr() -> None:
    text = "sysctl net.ipv4.tcp_window_scaling = 0\ninput {\n}\n"
    run = nfkit("-", "--emit", "ruleset", stdin=text)
    assert run.returncode == 0
    assert run.stderr.startswith("<stdin>:1:1: warning: disabling TCP window scaling")
    assert "table inet nfkit" in run.stdout


def test_unwritable_output_is_an_error(tmp_path: Path) -> None:
    run = nfkit(str(WEB), "-o", str(tmp_path / "missing" / "fw.sh"))
    assert run.returncode == 2
    assert "cannot write" in run.stderr and "Traceback" not in run.stderr
