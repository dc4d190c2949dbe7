"""Throwaway network namespaces for tests that send real packets through the real kernel.

Every ``Lab`` gets a short random tag; namespaces, links and log prefixes carry it, so parallel
or repeated runs never collide, and :meth:`Lab.close` removes everything it made. The host
namespace is never touched except for ``net.netfilter.nf_log_all_netns=1``, which lets LOG lines
from namespaces reach ``dmesg``.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

KERNEL_TOOLS = ("ip", "nft", "iptables-restore", "ip6tables-restore", "dmesg")


def kernel_required() -> bool:
    """True when a missing kernel capability must fail the run instead of skipping (CI)."""
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"} or (
        os.environ.get("NFKIT_REQUIRE_KERNEL") == "1"
    )


def kernel_unavailable_reason() -> str | None:
    """Return why real-kernel tests cannot run here, or None when they can."""
    if os.geteuid() != 0:
        return "not root"
    missing = [tool for tool in KERNEL_TOOLS if shutil.which(tool) is None]
    if missing:
        return f"missing tools: {', '.join(missing)}"
    probe = f"nfkprobe{secrets.token_hex(3)}"
    made = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if made.returncode != 0:
        return f"cannot create a network namespace: {made.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", probe], capture_output=True)
    return None


def enable_namespace_logging() -> None:
    """Let LOG lines from non-initial namespaces reach the kernel log (host sysctl)."""
    Path("/proc/sys/net/netfilter/nf_log_all_netns").write_text("1\n")


class Lab:
    """A set of namespaces and links created for one test, removed by :meth:`close`."""

    def __init__(self) -> None:
        self.tag = "k" + secrets.token_hex(3)
        self.namespaces: list[str] = []
        self._procs: list[subprocess.Popen[bytes]] = []

    # -- topology ---------------------------------------------------------------------------
    def netns(self, role: str) -> str:
        """Create a namespace named after this lab's tag and ``role``; loopback is brought up."""
        name = f"{self.tag}-{role}"
        subprocess.run(["ip", "netns", "add", name], check=True)
        self.namespaces.append(name)
        self.run(name, "ip", "link", "set", "lo", "up")
        return name

    def veth(self, ns_a: str, if_a: str, ns_b: str, if_b: str, mtu: int | None = None) -> None:
        """Create a veth pair with one end in each namespace, both ends up."""
        cmd = ["ip", "link", "add", if_a, "netns", ns_a]
        if mtu:
            cmd += ["mtu", str(mtu)]
        cmd += ["type", "veth", "peer", "name", if_b, "netns", ns_b]
        if mtu:
            cmd += ["mtu", str(mtu)]
        subprocess.run(cmd, check=True)
        self.run(ns_a, "ip", "link", "set", if_a, "up")
        self.run(ns_b, "ip", "link", "set", if_b, "up")

    def bridge(self, ns: str, name: str, ports: Sequence[str]) -> None:
        """Create bridge ``name`` in ``ns`` enslaving ``ports``."""
        self.run(ns, "ip", "link", "add", name, "type", "bridge")
        for port in ports:
            self.run(ns, "ip", "link", "set", port, "master", name)
        self.run(ns, "ip", "link", "set", name, "up")

    def addr(self, ns: str, dev: str, cidr: str) -> None:
        """Add an address (IPv6 without duplicate address detection, so it is usable at once)."""
        extra = ["nodad"] if ":" in cidr else []
        self.run(ns, "ip", "addr", "add", cidr, "dev", dev, *extra)

    def mac(self, ns: str, dev: str) -> str:
        """Return the MAC address of ``dev`` in ``ns``."""
        return Path(f"/sys/class/net/{dev}/address").read_text().strip() if ns == "" else (
            self.run(ns, "cat", f"/sys/class/net/{dev}/address").stdout.strip()
        )

    # -- running things ---------------------------------------------------------------------
    def run(
        self,
        ns: str,
        *cmd: str,
        check: bool = True,
        input: str | None = None,
        timeout: float = 60,
    ) -> subprocess.CompletedProcess[str]:
        """Run ``cmd`` inside ``ns`` and return the completed process (text mode)."""
        return subprocess.run(
            ["ip", "netns", "exec", ns, *cmd],
            check=check,
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def spawn(self, ns: str, *cmd: str) -> subprocess.Popen[bytes]:
        """Start ``cmd`` in the background inside ``ns``; it is killed by :meth:`close`."""
        proc = subprocess.Popen(
            ["ip", "netns", "exec", ns, *cmd],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self._procs.append(proc)
        return proc

    def nft(self, ns: str, ruleset: str) -> None:
        """Load an nft ruleset into ``ns``."""
        self.run(ns, "nft", "-f", "-", input=ruleset)

    # -- kernel log ---------------------------------------------------------------------------
    def prefix(self, label: str) -> str:
        """A log prefix unique to this lab (fits iptables' 29-character limit)."""
        return f"{self.tag}:{label}:"[:29]

    def kernel_log(self, wait_for: int = 1, timeout: float = 5.0) -> list[str]:
        """Return the ``dmesg`` lines carrying this lab's tag, waiting for ``wait_for`` of them."""
        deadline = time.monotonic() + timeout
        while True:
            out = subprocess.run(["dmesg"], capture_output=True, text=True, check=True).stdout
            lines = [line for line in out.splitlines() if self.tag in line]
            if len(lines) >= wait_for or time.monotonic() > deadline:
                return lines
            time.sleep(0.1)

    def close(self) -> None:
        """Stop background processes and delete every namespace (their links go with them)."""
        for proc in self._procs:
            proc.kill()
            proc.wait()
        for name in reversed(self.namespaces):
            subprocess.run(["ip", "netns", "del", name], capture_output=True)
        self.namespaces.clear()
