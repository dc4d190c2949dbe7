"""``nfkit apply`` against the real kernel, always inside a throwaway namespace (``--netns``).

Also the pure parts of apply (building the nft transaction) which need no kernel.
"""

from __future__ import annotations

import json
import os
import pty
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from netlab import Lab

from nfkit.apply import Plan, apply_plan, expected_chains, nft_transaction
from nfkit.errors import ApplyError, RulesetCheckError
from nfkit.netns import Netns
from nfkit.rollback import Backup, restore_backup

REPO = Path(__file__).resolve().parents[2]
BE_LIBERAL = "/proc/sys/net/netfilter/nf_conntrack_tcp_be_liberal"

POLICY = """\
# a small server policy
log tag {tag}
input policy drop log {{
    tcp dport 22 accept
    tcp dport {port} accept
}}
"""

DOCKER = """\
table ip docker {
    chain forward {
        type filter hook forward priority 0; policy drop;
        ct state established,related accept
    }
}
"""


def nfkit(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run the CLI in its own process, as an administrator would."""
    return subprocess.run([sys.executable, "-m", "nfkit", *args], capture_output=True,
                          text=True, cwd=REPO, timeout=timeout, check=False)


def write_policy(tmp_path: Path, lab: Lab, port: int = 80, name: str = "policy.nfk") -> Path:
    path = tmp_path / name
    path.write_text(POLICY.format(tag=lab.tag, port=port))
    return path


def ruleset(lab: Lab, ns: str) -> str:
    return lab.run(ns, "nft", "list", "ruleset").stdout


def sysctl(lab: Lab, ns: str) -> str:
    return lab.run(ns, "cat", BE_LIBERAL).stdout.strip()


def wait_until(predicate: Callable[[], bool], timeout: float) -> bool:
    """Poll ``predicate`` (no assertion on timing: only an upper bound to give up)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return predicate()


# -- pure -----------------------------------------------------------------------------------------
def test_transaction_replaces_only_nfkit_table() -> None:
    text = "table inet nfkit\ndelete table inet nfkit\ntable inet nfkit {\n chain input {\n }\n}\n"
    made = nft_transaction(Plan("nftables", {"inet": text}))
    assert made.splitlines()[:3] == ["table inet nfkit", "delete table inet nfkit",
                                     "table inet nfkit {"]
    assert expected_chains(made) == {"input"}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("flush ruleset\ntable inet nfkit {\n}\n", "flush ruleset"),
        ("table inet nfkit {\n}\ntable ip docker {\n}\n", "table ip docker"),
        ("  \n", "empty"),
        ("table inet nfkit {\n}\ndelete table ip docker\n", "delete table ip docker"),
        ('include "/etc/other.nft"\n', "include"),
    ],
)
def test_transaction_refuses_to_touch_others(text: str, message: str) -> None:
    with pytest.raises(ApplyError, match=message):
        nft_transaction(Plan("nftables", {"inet": text}))


# -- kernel ---------------------------------------------------------------------------------------
@pytest.mark.kernel
def test_apply_leaves_other_tables_and_sets_be_liberal(lab: Lab, tmp_path: Path) -> None:
    ns = lab.netns("srv")
    lab.nft(ns, DOCKER)
    assert sysctl(lab, ns) == "0"
    policy = write_policy(tmp_path, lab)
    done = nfkit("apply", str(policy), "--netns", ns, "--state-dir", str(tmp_path / "st"))
    assert done.returncode == 0, done.stderr
    assert "backup: " in done.stdout and "verified" in done.stdout
    assert "be_liberal: 0 -> 1" in done.stdout
    now = ruleset(lab, ns)
    assert "table ip docker" in now and "table inet nfkit" in now
    assert f'"{lab.tag}:input:drop:policy "' in now
    assert sysctl(lab, ns) == "1"
    backup = Path(done.stdout.split("backup: ", 1)[1].split()[0])
    assert backup.exists()
    # Applying again replaces nfkit's table, still leaving Docker's alone.
    write_policy(tmp_path, lab, port=8080)
    again = nfkit("apply", str(policy), "--netns", ns, "--state-dir", str(tmp_path / "st"))
    assert again.returncode == 0, again.stderr
    now = ruleset(lab, ns)
    assert "dport 8080" in now and "dport 80 " not in now and "table ip docker" in now


@pytest.mark.kernel
def test_dry_run_changes_nothing(lab: Lab, tmp_path: Path) -> None:
    ns = lab.netns("srv")
    policy = write_policy(tmp_path, lab)
    done = nfkit("apply", str(policy), "--netns", ns, "--dry-run",
                 "--state-dir", str(tmp_path / "st"))
    assert done.returncode == 0, done.stderr
    assert "checked with nft -c" in done.stdout and "table inet nfkit {" in done.stdout
    assert ruleset(lab, ns).strip() == ""
    assert not (tmp_path / "st").exists()


@pytest.mark.kernel
def test_broken_policy_leaves_the_old_ruleset(lab: Lab, tmp_path: Path) -> None:
    ns = lab.netns("srv")
    lab.nft(ns, DOCKER)
    good = write_policy(tmp_path, lab)
    assert nfkit("apply", str(good), "--netns", ns, "--state-dir", str(tmp_path)).returncode == 0
    before = ruleset(lab, ns)
    broken = tmp_path / "broken.nfk"
    broken.write_text("input policy drop {\n    tcp dport 22 acept\n}\n")
    done = nfkit("apply", str(broken), "--netns", ns, "--state-dir", str(tmp_path))
    assert done.returncode == 2
    assert f"{broken}:2:" in done.stderr and "Traceback" not in done.stderr
    assert ruleset(lab, ns) == before
    missing = nfkit("apply", str(tmp_path / "nope.nfk"), "--netns", ns)
    assert missing.returncode == 2 and "no such policy file" in missing.stderr


@pytest.mark.kernel
def test_kernel_rejection_and_failed_sysctl_roll_back(lab: Lab, tmp_path: Path) -> None:
    ns = lab.netns("srv")
    lab.nft(ns, DOCKER)
    good = "table inet nfkit {\n    chain input {\n        type filter hook input priority 0;\n" \
           "        ct state established accept\n    }\n}\n"
    liberal = (("net.netfilter.nf_conntrack_tcp_be_liberal", "1"),)
    apply_plan(Plan("nftables", {"inet": good}, sysctls=liberal), Netns(ns), state_dir=tmp_path)
    before = ruleset(lab, ns)
    # nft -c refuses a chain that jumps nowhere: nothing changes.
    bad = good.replace("accept", "jump nowhere")
    with pytest.raises(RulesetCheckError, match="nft -c rejected"):
        apply_plan(Plan("nftables", {"inet": bad}), Netns(ns), state_dir=tmp_path)
    assert ruleset(lab, ns) == before
    # The rules load, then a sysctl cannot be set: rules and sysctls come back.
    lab.run(ns, "sysctl", "-qw", "net.netfilter.nf_conntrack_tcp_be_liberal=0")
    other = good.replace("established", "established,related")
    sysctls = (*liberal, ("net.ipv4.no_such_knob", "1"))
    with pytest.raises(ApplyError, match="previous ruleset and sysctls were restored"):
        apply_plan(Plan("nftables", {"inet": other}, sysctls=sysctls), Netns(ns),
                   state_dir=tmp_path)
    assert ruleset(lab, ns) == before
    assert sysctl(lab, ns) == "0"


@pytest.mark.kernel
def test_try_without_confirmation_restores_previous(lab: Lab, tmp_path: Path) -> None:
    ns = lab.netns("srv")
    lab.nft(ns, DOCKER)
    before = ruleset(lab, ns)
    policy = write_policy(tmp_path, lab)
    done = nfkit("apply", str(policy), "--netns", ns, "--try", "6", "--state-dir", str(tmp_path))
    assert done.returncode == 0, done.stderr
    assert f"nfkit apply --confirm --netns {ns}" in done.stdout
    assert "table inet nfkit" in ruleset(lab, ns) and sysctl(lab, ns) == "1"
    assert wait_until(lambda: ruleset(lab, ns) == before, timeout=20)
    # The watchdog restores the ruleset, then the sysctl: wait for both.
    assert wait_until(lambda: sysctl(lab, ns) == "0", timeout=10)
    late = nfkit("apply", "--confirm", "--netns", ns, "--state-dir", str(tmp_path))
    assert late.returncode == 2 and "no trial apply is pending" in late.stderr


@pytest.mark.kernel
def test_try_confirmed_stays(lab: Lab, tmp_path: Path) -> None:
    ns = lab.netns("srv")
    policy = write_policy(tmp_path, lab)
    state = ["--netns", ns, "--state-dir", str(tmp_path)]
    assert nfkit("apply", str(policy), "--try", "8", *state).returncode == 0
    pending = nfkit("apply", str(policy), *state)
    assert pending.returncode == 2 and "still pending" in pending.stderr
    confirmed = nfkit("apply", "--confirm", *state)
    assert confirmed.returncode == 0, confirmed.stderr
    time.sleep(9)  # past the deadline: the watchdog must have let it be
    assert "table inet nfkit" in ruleset(lab, ns) and sysctl(lab, ns) == "1"


@pytest.mark.kernel
def test_try_survives_the_terminal_dying(lab: Lab, tmp_path: Path) -> None:
    """The session that ran --try is hung up (SSH dropped): the watchdog still restores."""
    ns = lab.netns("srv")
    lab.nft(ns, DOCKER)
    before = ruleset(lab, ns)
    policy = write_policy(tmp_path, lab)
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "nfkit", "apply", str(policy), "--netns", ns, "--try", "10",
         "--state-dir", str(tmp_path)],
        stdin=slave, stdout=slave, stderr=slave, cwd=REPO, start_new_session=True,
    )
    os.close(slave)
    seen = b""
    try:
        deadline = time.monotonic() + 30
        while b"Type yes" not in seen and time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.5)
            if ready:
                seen += os.read(master, 4096)
        assert b"Type yes" in seen, seen.decode(errors="replace")
        assert "table inet nfkit" in ruleset(lab, ns)
        os.killpg(proc.pid, signal.SIGHUP)  # the terminal goes away
    finally:
        os.close(master)
        proc.wait(timeout=10)
    assert proc.returncode != 0
    assert wait_until(lambda: ruleset(lab, ns) == before, timeout=20)
    # The watchdog restores the ruleset, then the sysctl: wait for both.
    assert wait_until(lambda: sysctl(lab, ns) == "0", timeout=10)


@pytest.mark.kernel
def test_try_confirmed_on_the_terminal(lab: Lab, tmp_path: Path) -> None:
    ns = lab.netns("srv")
    policy = write_policy(tmp_path, lab)
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "nfkit", "apply", str(policy), "--netns", ns, "--try", "30",
         "--state-dir", str(tmp_path)],
        stdin=slave, stdout=slave, stderr=slave, cwd=REPO, start_new_session=True,
    )
    os.close(slave)
    seen = b""
    try:
        while b"Type yes" not in seen:
            ready, _, _ = select.select([master], [], [], 10)
            assert ready, seen
            seen += os.read(master, 4096)
        os.write(master, b"yes\n")
        assert proc.wait(timeout=20) == 0
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert not list(tmp_path.glob("pending-*"))
    assert "table inet nfkit" in ruleset(lab, ns)


@pytest.mark.kernel
def test_doctor_on_applied_policy_is_healthy(lab: Lab, tmp_path: Path) -> None:
    ns = lab.netns("srv")
    lab.nft(ns, DOCKER)
    policy = write_policy(tmp_path, lab)
    assert nfkit("apply", str(policy), "--netns", ns, "--state-dir", str(tmp_path)).returncode == 0
    done = nfkit("doctor", "--netns", ns, "--json", "--log-tag", lab.tag)
    report = json.loads(done.stdout)
    counted = [f for f in report["findings"] if f["severity"] != "info"]
    assert done.returncode == 0, counted
    assert report["sysctls"]["net.netfilter.nf_conntrack_tcp_be_liberal"] == "1"
    assert "ip docker" in report["tables"]
    gone = nfkit("doctor", "--netns", f"{lab.tag}-missing")
    assert gone.returncode == 2 and "could not check" in gone.stderr


@pytest.mark.kernel
def test_iptables_backend_keeps_docker_chains_and_rolls_back(lab: Lab, tmp_path: Path) -> None:
    ns = lab.netns("srv")
    lab.run(ns, "iptables", "-N", "DOCKER")
    lab.run(ns, "iptables", "-A", "FORWARD", "-j", "DOCKER")
    lab.run(ns, "iptables", "-A", "DOCKER", "-d", "172.17.0.2", "-p", "tcp", "--dport", "80",
            "-j", "ACCEPT")
    before = lab.run(ns, "iptables", "-S").stdout
    policy = write_policy(tmp_path, lab)
    state = ["--netns", ns, "--backend", "iptables", "--state-dir", str(tmp_path)]
    for _ in range(2):  # the second run must not add a second jump
        done = nfkit("apply", str(policy), *state)
        assert done.returncode == 0, done.stderr
    rules = lab.run(ns, "iptables", "-S").stdout
    assert rules.count("-A INPUT -j NFKIT-INPUT") == 1
    assert "-A DOCKER -d 172.17.0.2/32" in rules and "-A FORWARD -j DOCKER" in rules
    assert f'--log-prefix "{lab.tag}:input:drop:policy "' in rules
    assert "-A INPUT -j NFKIT-INPUT" in lab.run(ns, "ip6tables", "-S").stdout
    # A trial on top of that, not confirmed: nfkit's chains as they were come back.
    wider = write_policy(tmp_path, lab, port=8080, name="wider.nfk")
    assert nfkit("apply", str(wider), "--try", "6", *state).returncode == 0
    assert "--dport 8080" in lab.run(ns, "iptables", "-S").stdout
    assert wait_until(lambda: lab.run(ns, "iptables", "-S").stdout == rules, timeout=20)
    # Undo everything through the first backup: back to Docker's rules only.
    first = sorted((tmp_path / "backups").glob("*.json"))[0]
    assert restore_backup(Backup.load(first)) == []
    assert lab.run(ns, "iptables", "-S").stdout == before


@pytest.mark.kernel
def test_rollback_now_and_no_on_the_terminal(lab: Lab, tmp_path: Path) -> None:
    ns = lab.netns("srv")
    lab.nft(ns, DOCKER)
    before = ruleset(lab, ns)
    policy = write_policy(tmp_path, lab)
    state = ["--netns", ns, "--state-dir", str(tmp_path)]
    assert nfkit("apply", str(policy), "--try", "60", *state).returncode == 0
    undone = nfkit("apply", "--rollback", *state)
    assert undone.returncode == 0, undone.stderr
    assert ruleset(lab, ns) == before and sysctl(lab, ns) == "0"
    # On a terminal, any answer but "yes" rolls back at once.
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "nfkit", "apply", str(policy), "--try", "60", *state],
        stdin=slave, stdout=slave, stderr=slave, cwd=REPO, start_new_session=True,
    )
    os.close(slave)
    seen = b""
    try:
        while b"Type yes" not in seen:
            ready, _, _ = select.select([master], [], [], 10)
            assert ready, seen
            seen += os.read(master, 4096)
        os.write(master, b"no\n")
        assert proc.wait(timeout=20) == 2
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert ruleset(lab, ns) == before and sysctl(lab, ns) == "0"
