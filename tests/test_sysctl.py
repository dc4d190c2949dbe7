"""Sysctl handling: names, the bounded wait for be_liberal, ordered setting and restoring.

A temporary directory stands in for ``/proc/sys``; the clock is a fake, so nothing here depends
on timing. The real namespace behaviour is covered by ``tests/kernel``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from nfkit.errors import ApplyError
from nfkit.netns import Netns
from nfkit.sysctl import (
    BE_LIBERAL,
    BE_LIBERAL_LEGACY,
    TCP_WINDOW_SCALING,
    SysctlChange,
    Sysctls,
    apply_sysctls,
    canonical_key,
    is_be_liberal,
    key_to_relpath,
    restore_sysctls,
)


class FakeClock:
    """A clock that advances only when slept on; ``hooks`` create a file at the Nth sleep."""

    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps = 0
        self.hooks: dict[int, Path] = {}

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps += 1
        if self.sleeps in self.hooks:
            path = self.hooks[self.sleeps]
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("0\n")
        self.now += seconds


def make(root: Path, key: str, value: str) -> Path:
    path = root / key_to_relpath(key)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(value + "\n")
    return path


@pytest.mark.parametrize(
    ("key", "relpath"),
    [
        (BE_LIBERAL, "net/netfilter/nf_conntrack_tcp_be_liberal"),
        ("net/ipv4/tcp_window_scaling", "net/ipv4/tcp_window_scaling"),
        ("/proc/sys/net/ipv4/netfilter/ip_conntrack_tcp_be_liberal",
         "net/ipv4/netfilter/ip_conntrack_tcp_be_liberal"),
    ],
)
def test_key_to_relpath(key: str, relpath: str) -> None:
    assert key_to_relpath(key) == relpath


def test_be_liberal_names() -> None:
    assert is_be_liberal(BE_LIBERAL)
    assert is_be_liberal("/proc/sys/net/ipv4/netfilter/ip_conntrack_tcp_be_liberal")
    assert not is_be_liberal(TCP_WINDOW_SCALING)
    assert canonical_key("net/ipv4/tcp_window_scaling") == TCP_WINDOW_SCALING


def test_read_write_and_missing(tmp_path: Path) -> None:
    sysctls = Sysctls(root=tmp_path)
    assert sysctls.read(BE_LIBERAL) is None
    make(tmp_path, BE_LIBERAL, "0")
    change = sysctls.write(BE_LIBERAL, "1")
    assert change == SysctlChange(BE_LIBERAL, "0", "1")
    assert change.describe() == f"{BE_LIBERAL}: 0 -> 1"
    assert sysctls.read(BE_LIBERAL) == "1"
    with pytest.raises(ApplyError, match="does not exist"):
        sysctls.write(TCP_WINDOW_SCALING, "1")


def test_wait_finds_the_sysctl_once_conntrack_comes_alive(tmp_path: Path) -> None:
    clock = FakeClock()
    clock.hooks[3] = tmp_path / key_to_relpath(BE_LIBERAL)
    sysctls = Sysctls(root=tmp_path)
    key = sysctls.wait_for_be_liberal(5.0, interval=0.1, clock=clock, sleep=clock.sleep)
    assert key == BE_LIBERAL
    assert clock.sleeps == 3


def test_wait_falls_back_to_the_old_name(tmp_path: Path) -> None:
    make(tmp_path, BE_LIBERAL_LEGACY, "0")
    clock = FakeClock()
    key = Sysctls(root=tmp_path).wait_for_be_liberal(5.0, clock=clock, sleep=clock.sleep)
    assert key == BE_LIBERAL_LEGACY
    assert clock.sleeps == 0


def test_wait_is_bounded(tmp_path: Path) -> None:
    clock = FakeClock()
    with pytest.raises(ApplyError, match=r"did not appear within 2 s"):
        Sysctls(root=tmp_path).wait_for_be_liberal(2.0, interval=0.5, clock=clock,
                                                   sleep=clock.sleep)
    assert clock.sleeps == 4


def test_apply_in_order_then_restore(tmp_path: Path) -> None:
    make(tmp_path, BE_LIBERAL_LEGACY, "0")
    make(tmp_path, TCP_WINDOW_SCALING, "0")
    sysctls = Sysctls(root=tmp_path)
    changes = apply_sysctls([(BE_LIBERAL, "1"), (TCP_WINDOW_SCALING, "1")], sysctls)
    # be_liberal is set under the name this kernel has.
    assert [c.key for c in changes] == [BE_LIBERAL_LEGACY, TCP_WINDOW_SCALING]
    assert sysctls.read(BE_LIBERAL_LEGACY) == "1"
    assert restore_sysctls(changes, sysctls) == []
    assert sysctls.read(BE_LIBERAL_LEGACY) == "0"
    assert sysctls.read(TCP_WINDOW_SCALING) == "0"


def test_apply_records_changes_before_a_failure(tmp_path: Path) -> None:
    make(tmp_path, BE_LIBERAL, "0")
    sysctls = Sysctls(root=tmp_path)
    done: list[SysctlChange] = []
    with pytest.raises(ApplyError, match=r"net\.ipv4\.nonexistent"):
        apply_sysctls({BE_LIBERAL: "1", "net.ipv4.nonexistent": "1"}, sysctls, done=done)
    assert [c.key for c in done] == [BE_LIBERAL]
    restore_sysctls(done, sysctls)
    assert sysctls.read(BE_LIBERAL) == "0"


def test_netns_command_wrapping() -> None:
    assert Netns().command(["nft", "list", "ruleset"]) == ["nft", "list", "ruleset"]
    assert Netns("blue").command(["cat", "/x"]) == ["ip", "netns", "exec", "blue", "cat", "/x"]
    assert Netns("blue").label == "blue" and Netns().label == "host"
    assert not Netns("nfkit-no-such-namespace").exists()
