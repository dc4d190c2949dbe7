"""The sysctls nfkit cares about, read and written inside one network namespace.

``net.netfilter.nf_conntrack_tcp_be_liberal`` exists only once conntrack is alive: on kernels
with conntrack as a module it appears when the first rule using conntrack is loaded, which is
why nfkit sets it *after* loading the rules and waits a bounded time for it to appear. Old
kernels name it ``/proc/sys/net/ipv4/netfilter/ip_conntrack_tcp_be_liberal``. The value is per
network namespace (0 in a fresh one).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from nfkit.errors import ApplyError, DiscoveryError
from nfkit.netns import Netns

BE_LIBERAL = "net.netfilter.nf_conntrack_tcp_be_liberal"
#: The name on kernels from before the nf_conntrack rename.
BE_LIBERAL_LEGACY = "net.ipv4.netfilter.ip_conntrack_tcp_be_liberal"
TCP_WINDOW_SCALING = "net.ipv4.tcp_window_scaling"
#: How long to wait for the be_liberal sysctl to appear after the rules load, in seconds.
DEFAULT_APPEAR_TIMEOUT = 5.0

PROC_SYS = Path("/proc/sys")


def key_to_relpath(key: str) -> str:
    """Return ``net/netfilter/x`` for ``net.netfilter.x`` (slashes are kept as they are)."""
    key = key.strip().strip("/")
    if key.startswith("proc/sys/"):
        key = key[len("proc/sys/") :]
    return key if "/" in key else key.replace(".", "/")


@dataclass(frozen=True, slots=True)
class SysctlChange:
    """One sysctl written by nfkit: its name, the value before and the value after."""

    key: str
    before: str | None
    after: str

    def describe(self) -> str:
        """Return ``key: before -> after`` for reports."""
        before = "absent" if self.before is None else self.before
        return f"{self.key}: {before} -> {self.after}"


class Sysctls:
    """Read and write sysctls inside one network namespace.

    ``root`` is where ``/proc/sys`` is; tests point it at a temporary directory.
    """

    def __init__(self, netns: Netns | None = None, root: Path = PROC_SYS) -> None:
        self.netns = netns or Netns()
        self.root = root

    def path(self, key: str) -> Path:
        """Return the file of ``key`` under :attr:`root`; ``ApplyError`` if it is not a name.

        Keys reach here from plans and from backup files, so ``..`` or an empty part (which
        would lead out of ``/proc/sys``) is refused rather than trusted.
        """
        relpath = key_to_relpath(key)
        parts = relpath.split("/")
        if any(part in ("", ".", "..") for part in parts) or "\0" in relpath:
            raise ApplyError(f"invalid sysctl name {key!r}")
        return self.root / relpath

    def read(self, key: str) -> str | None:
        """Return the value of ``key`` stripped of white space, or None when it does not exist."""
        text = self.netns.read_file(self.path(key))
        return None if text is None else text.strip()

    def write(self, key: str, value: str) -> SysctlChange:
        """Set ``key`` to ``value`` and read it back; raise :class:`ApplyError` on failure."""
        before = self.read(key)
        if before is None:
            raise ApplyError(f"sysctl {key} does not exist in {self.netns}")
        try:
            self.netns.write_file(self.path(key), f"{value}\n")
        except DiscoveryError as exc:
            raise ApplyError(f"cannot set {key}={value}: {exc}") from exc
        after = self.read(key)
        if after != str(value):
            raise ApplyError(f"sysctl {key} reads {after!r} after writing {value!r}")
        return SysctlChange(key=key, before=before, after=after)

    def first_existing(self, keys: Sequence[str]) -> str | None:
        """Return the first of ``keys`` that exists, or None."""
        for key in keys:
            if self.read(key) is not None:
                return key
        return None

    def be_liberal_key(self) -> str | None:
        """Return the name under which be_liberal exists here (new or old kernel), or None."""
        return self.first_existing((BE_LIBERAL, BE_LIBERAL_LEGACY))

    def wait_for_be_liberal(
        self,
        timeout: float = DEFAULT_APPEAR_TIMEOUT,
        *,
        interval: float = 0.1,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> str:
        """Wait until be_liberal exists (conntrack loaded); return its key.

        Raises :class:`ApplyError` after ``timeout`` seconds: conntrack never came alive,
        usually because no loaded rule uses it.
        """
        deadline = clock() + timeout
        while True:
            key = self.be_liberal_key()
            if key is not None:
                return key
            if clock() >= deadline:
                raise ApplyError(
                    f"{BE_LIBERAL} did not appear within {timeout:g} s after the rules were "
                    f"loaded in {self.netns} (is conntrack available? does a rule use "
                    "`ct state`?)"
                )
            sleep(interval)

    def set_be_liberal(
        self, enabled: bool = True, timeout: float = DEFAULT_APPEAR_TIMEOUT
    ) -> SysctlChange:
        """Set be_liberal (waiting for it to appear first); return what changed."""
        key = self.wait_for_be_liberal(timeout)
        return self.write(key, "1" if enabled else "0")


def canonical_key(key: str) -> str:
    """Return the dotted form of a sysctl name (``net/ipv4/x`` -> ``net.ipv4.x``)."""
    return key_to_relpath(key).replace("/", ".")


def is_be_liberal(key: str) -> bool:
    """True when ``key`` names be_liberal under its new or old name."""
    return canonical_key(key) in {BE_LIBERAL, BE_LIBERAL_LEGACY}


def apply_sysctls(
    sysctls: Sequence[tuple[str, str]] | dict[str, str],
    target: Sysctls,
    appear_timeout: float = DEFAULT_APPEAR_TIMEOUT,
    done: list[SysctlChange] | None = None,
) -> list[SysctlChange]:
    """Set each sysctl in order (be_liberal under whichever name this kernel has).

    Call this only after the rules are loaded. Each change is appended to ``done`` as it is
    made, so a caller can undo the ones before an :class:`ApplyError`.
    """
    items = list(sysctls.items()) if isinstance(sysctls, dict) else list(sysctls)
    changes = done if done is not None else []
    for key, value in items:
        if is_be_liberal(key):
            real_key = target.wait_for_be_liberal(appear_timeout)
            changes.append(target.write(real_key, str(value)))
        else:
            changes.append(target.write(canonical_key(key), str(value)))
    return changes


def restore_sysctls(changes: Sequence[SysctlChange], target: Sysctls) -> list[str]:
    """Put back the values from before ``changes`` (in reverse order); return any errors."""
    problems: list[str] = []
    for change in reversed(changes):
        if change.before is None or change.before == change.after:
            continue
        try:
            target.write(change.key, change.before)
        except ApplyError as exc:
            problems.append(str(exc))
    return problems
