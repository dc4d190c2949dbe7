"""Capture LOG lines from the running kernel now and check that every one parses."""

from __future__ import annotations

import importlib.util
from ipaddress import ip_address
from pathlib import Path

import pytest
from netlab import Lab

from nfkit import iter_records

_SPEC = importlib.util.spec_from_file_location(
    "nfkit_capture_corpus", Path(__file__).with_name("capture_corpus.py")
)
assert _SPEC is not None and _SPEC.loader is not None
capture_corpus = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(capture_corpus)


@pytest.mark.kernel
def test_live_capture_parses_completely(lab: Lab) -> None:
    lines = capture_corpus.capture(lab, settle=0.5)
    assert lines, "the kernel logged nothing: is nf_log_all_netns set?"
    stream = iter_records(lines)
    records = list(stream)
    assert stream.unparsed == 0 and len(records) == len(lines)
    assert all(record.prefix is not None and "corpus0" in record.prefix for record in records)

    forwarded = [r for r in records if r.in_iface == "r0" and r.out_iface == "r1"]
    assert forwarded and all(r.src == ip_address("10.77.1.2") or r.family == 6 for r in forwarded)
    frag_needed = [r for r in records if r.icmp_type == 3 and r.icmp_code == 4]
    assert frag_needed and frag_needed[0].mtu == 1280 and frag_needed[0].inner is not None
    assert frag_needed[0].src == ip_address("10.77.1.1")
    assert frag_needed[0].inner.src == ip_address("10.77.1.2")
    too_big = [r for r in records if r.proto == "ICMPv6" and r.icmp_type == 2]
    assert too_big and too_big[0].mtu == 1280 and too_big[0].inner is not None
    assert any(r.frag_offset and r.family == 4 for r in records)
    assert any(r.frag_offset and r.family == 6 for r in records)
    assert any(r.proto == "ARP" and r.family is None for r in records)
    assert any(r.physin == "b1" and r.physout == "b2" for r in records)
    assert any(r.mark == 0x2A for r in records)
    assert any(r.uid == 0 and r.gid == 0 for r in records)
    assert any(r.truncated and r.family == 6 for r in records)
    assert any(r.seq is not None and r.tcp_flags == frozenset({"ACK", "SYN"}) for r in records)
    assert {"47", "ESP", "AH"} <= {r.proto for r in records}
    assert any(r.prefix == "corpus0:quoted" for r in records)
