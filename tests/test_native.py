"""The native engine (``_scan.c`` through :mod:`nfkit.logs.nativepath`) equals the full parser.

Every test compares whole ``Summary.to_dict()`` outputs: the native engine (what
:class:`~nfkit.logs.fastpath.BlockSummarizer` uses when ``native.available()``), the pure-Python
engine (forced by unloading the library) and ``Summary.add_lines`` over the same lines (the full
parser, record by record). Tests that need the compiled scanner skip when it is not built, except
in CI, where :func:`test_native_is_built_in_ci` fails instead.
"""

from __future__ import annotations

import json
import os
import random
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nfkit.logs import fastpath, native, nativepath, parallel, parser
from nfkit.logs.aggregate import Summary, SummaryConfig
from nfkit.logs.fastpath import BlockSummarizer
from nfkit.logs.parallel import summarize_paths
from nfkit.logs.segment import Segment
from nfkit.logs.wrappers import Unwrapper

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "benchmarks"))

from genlog import (  # type: ignore[import-not-found, unused-ignore]  # noqa: E402
    FW_MAC,
    GATEWAY_MAC,
    generate_lines,
)

CORPUS = (REPO / "tests" / "data" / "kernel-corpus.log").read_text().splitlines()
MESSAGES = [Unwrapper().unwrap(line).message for line in CORPUS]
#: "Now" for syslog years, the same for every engine and the full parser.
REFERENCE = datetime(2026, 11, 25, 12, 0)
CONFIGS = {
    "none": SummaryConfig(),
    "gateway": SummaryConfig(
        segment=Segment.from_values(
            networks=["192.168.1.0/24", "10.77.0.0/16", "fd77::/16"],
            gateway_macs=[GATEWAY_MAC, "02:00:00:00:01:01"],
            own_macs=[FW_MAC],
        )
    ),
    "networks-only": SummaryConfig(segment=Segment.from_values(networks=["192.168.1.0/24"])),
}

needs_native = pytest.mark.skipif(not native.available(), reason="the native scanner is not built")


# -- the three engines --------------------------------------------------------------------------
def full(
    lines: list[str],
    config: SummaryConfig | None = None,
    since: datetime | None = None,
    reference: datetime | None = None,
) -> dict[str, Any]:
    """The reference: the full parser, one line at a time (``Summary.add_lines``; with a
    ``reference``, the same loop with an unwrapper at that "now")."""
    summary = Summary(config)
    if reference is None:
        summary.add_lines(lines, since=since)
        return summary.to_dict()
    unwrapper = Unwrapper(reference)
    cutoff = since.timestamp() if since is not None else None
    for line in lines:
        summary.lines += 1
        try:
            record = parser._parse(line, unwrapper)
        except (ValueError, IndexError, KeyError, OverflowError, RecursionError):
            record = None
        if record is None:
            summary.unparsed += 1
        elif (
            cutoff is not None
            and record.timestamp is not None
            and record.timestamp.timestamp() < cutoff
        ):
            summary.skipped += 1
        else:
            summary.add(record)
    return summary.to_dict()


def lines_of(data: bytes) -> list[str]:
    """Lines as ``read_whole`` yields them (no final empty line after the last newline)."""
    parts = data.decode("utf-8", "replace").split("\n")
    if parts and parts[-1] == "":
        parts.pop()
    return parts


def engine(
    data: bytes,
    config: SummaryConfig | None = None,
    since: datetime | None = None,
    reference: datetime | None = REFERENCE,
    block: int = fastpath.BLOCK_SIZE,
    expect_native: bool | None = None,
) -> dict[str, Any]:
    """One engine (whichever ``native._LIB`` selects) over ``data`` in blocks of ``block``."""
    summarizer = BlockSummarizer(config, since, reference)
    if expect_native is not None:
        assert (summarizer._lane is not None) is expect_native
    for start in range(0, len(data), block):
        summarizer.feed(data[start : start + block])
    return summarizer.finish().to_dict()


@contextmanager
def pure_engine() -> Iterator[None]:
    """The pure-Python engine (the native library unloaded) inside the block."""
    saved = native._LIB
    native._LIB = None
    try:
        assert not native.available() and BlockSummarizer().lane() is None
        yield
    finally:
        native._LIB = saved


def native_summary(data: bytes, **options: Any) -> dict[str, Any]:
    return engine(data, expect_native=True, **options)


def pure_summary(data: bytes, **options: Any) -> dict[str, Any]:
    with pure_engine():
        return engine(data, expect_native=False, **options)


def generated(count: int, seed: int, **options: Any) -> bytes:
    return "".join(f"{line}\n" for line in generate_lines(count, seed=seed, **options)).encode()


def joined(lines: list[str], end: str = "\n") -> bytes:
    return ("\n".join(lines) + end).encode("utf-8", "surrogateescape")


# -- CI must not fall back to pure Python silently -----------------------------------------------
def test_native_is_built_in_ci() -> None:
    if not os.environ.get("CI"):
        pytest.skip("not in CI: the native scanner may legitimately be missing here")
    assert not os.environ.get("NFKIT_PURE"), "NFKIT_PURE is set in CI"
    assert native.library_path().is_file(), f"{native.library_path()} was not built"
    assert native.available(), "the native scanner is built but did not load"
    assert BlockSummarizer().lane() is not None


# -- the kernel corpus under every wrapper -------------------------------------------------------
def _syslog(i: int) -> str:
    return f"Nov 25 04:{i // 60 % 60:02d}:{i % 60:02d} fw kernel: [{100 + i:12.6f}] "


WRAPPERS: dict[str, Callable[[int, str], str]] = {
    "bare": lambda i, m: m,
    "syslog": lambda i, m: _syslog(i) + m,
    "syslog-no-uptime": lambda i, m: f"Nov 25 04:17:{i % 60:02d} fw kernel: " + m,
    "syslog-one-digit-day": lambda i, m: f"Nov  5 23:59:{i % 60:02d} fw kernel: " + m,
    "syslog-precise": lambda i, m: f"Nov 25 04:17:23.{i:06d} fw kernel: " + m,
    "syslog-facility": lambda i, m: f"Nov 25 04:17:{i % 60:02d} fw kern.warn kernel: " + m,
    "syslog-caller": lambda i, m: f"Nov 25 04:17:23 fw kernel: [  {i}.000001][    C0] " + m,
    "syslog-priority": lambda i, m: f"<4>Nov 25 04:17:{i % 60:02d} fw kernel: " + m,
    "ulogd": lambda i, m: f"Nov 25 04:17:{i % 60:02d} fw " + m,
    "rfc3339": lambda i, m: f"2026-11-24T10:00:{i % 60:02d}.114797+01:00 fw kernel: " + m,
    "rfc3339-z": lambda i, m: f"2026-11-24T10:{i % 60:02d}:05Z fw kernel: " + m,
    "rfc3339-no-colon": lambda i, m: f"2026-11-24T10:00:05.{i}-0330 fw kernel: " + m,
    "rfc3339-naive": lambda i, m: f"2026-11-24T10:00:{i % 60:02d} fw kernel: " + m,
    "dmesg": lambda i, m: f"[{686 + i / 7:12.6f}] " + m,
    "dmesg-caller": lambda i, m: f"[  686.{i:06d}] [    T{i}] " + m,
    "short-monotonic": lambda i, m: f"[  686.{i:06d}] fw kernel: " + m,
    "dmesg-T": lambda i, m: f"[Tue Nov 24 10:00:{i % 60:02d} 2026] " + m,
    "logread": lambda i, m: f"Tue Nov 24 10:00:{i % 60:02d} 2026 kern.warn kernel: " + m,
    "journal": lambda i, m: json.dumps(
        {
            "MESSAGE": m,
            "__REALTIME_TIMESTAMP": str(1_795_000_000_000_000 + i * 1_000_003),
            "_HOSTNAME": "fw",
            "_SOURCE_MONOTONIC_TIMESTAMP": str(686_000_000 + i),
        }
    ),
    "journal-bytes": lambda i, m: json.dumps(
        {"MESSAGE": list(m.encode()), "__REALTIME_TIMESTAMP": 1_795_000_000_000_000 + i}
    ),
}


@needs_native
@pytest.mark.parametrize("wrapper", sorted(WRAPPERS))
@pytest.mark.parametrize("config_name", sorted(CONFIGS))
def test_corpus_native_equals_full_and_pure(wrapper: str, config_name: str) -> None:
    config = CONFIGS[config_name]
    wrap = WRAPPERS[wrapper]
    lines = [wrap(i, message) for i, message in enumerate(MESSAGES)]
    data = joined(lines)
    expected = full(lines_of(data), config, reference=REFERENCE)
    assert expected["records"] >= 50
    assert native_summary(data, config=config) == expected
    assert native_summary(data, config=config, block=997) == expected  # blocks end mid-line
    assert pure_summary(data, config=config) == expected


@needs_native
def test_corpus_file_as_it_is() -> None:
    data = (REPO / "tests" / "data" / "kernel-corpus.log").read_bytes()
    for config in CONFIGS.values():
        expected = full(lines_of(data), config)
        assert native_summary(data, config=config, reference=None) == expected
        assert pure_summary(data, config=config, reference=None) == expected


# -- generated logs: many sources, cutoffs, a fixed "now" ----------------------------------------
@needs_native
@pytest.mark.parametrize("seed", [1, 2, 3, 4])
@pytest.mark.parametrize("wrapper", ["syslog", "rfc3339", "dmesg"])
def test_generated_logs_native_equals_full(seed: int, wrapper: str) -> None:
    start = datetime(2026, 11, 20, 0, 0)
    data = generated(2500, seed=seed, wrapper=wrapper, sources=400 * seed, rate=1.5, start=start)
    lines = lines_of(data)
    config = CONFIGS[sorted(CONFIGS)[seed % len(CONFIGS)]]
    for since in (None, datetime(2026, 11, 20, 0, 7, 30, 500_000).astimezone()):
        expected = full(lines, config, since, REFERENCE)
        assert native_summary(data, config=config, since=since) == expected
    # December lines read in January: the year before, whatever the engine
    data = generated(600, seed=seed, wrapper=wrapper, start=datetime(2026, 12, 31, 23, 58))
    january = datetime(2027, 1, 1, 0, 30)
    assert native_summary(data, config=config, reference=january) == full(
        lines_of(data), config, reference=january
    )


@needs_native
@pytest.mark.parametrize("wrapper", ["syslog", "rfc3339", "dmesg"])
def test_generated_lines_are_counted_natively(
    wrapper: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The comparisons above test the scanner only if it takes the lines (not the full
    parser behind it): every generated line is of its shape."""
    handed: list[bytes] = []
    original = BlockSummarizer.fallback

    def spy(self: BlockSummarizer, lines: Any) -> None:
        taken = list(lines)
        handed.extend(taken)
        original(self, taken)

    monkeypatch.setattr(BlockSummarizer, "fallback", spy)
    data = generated(3000, seed=5, wrapper=wrapper, sources=300)
    assert native_summary(data, config=CONFIGS["gateway"]) == full(
        lines_of(data), CONFIGS["gateway"], reference=REFERENCE
    )
    assert handed == []


# -- ICMP errors and other shapes, written by hand -----------------------------------------------
V4 = (
    "IN=eth0 OUT= MAC=52:54:00:00:00:10:52:54:00:00:00:01:08:00 SRC=198.51.100.9 "
    "DST=192.168.1.10 LEN=576 TOS=0x00 PREC=0xC0 TTL=50 ID=77 "
)
V6 = (
    "IN=eth0 OUT= MAC=52:54:00:00:00:10:52:54:00:00:00:01:86:dd "
    "SRC=2001:0db8:0000:0000:0000:0000:0000:0009 DST=2001:0db8:0001:0000:0000:0000:0000:0010 "
    "LEN=1280 TC=0 HOPLIMIT=57 FLOWLBL=7 "
)
INNER4 = "SRC=192.168.1.10 DST=198.51.100.9 LEN=1500 TOS=0x00 PREC=0x00 TTL=64 ID=9 DF "
INNER6 = (
    "SRC=2001:0db8:0001:0000:0000:0000:0000:0010 DST=2001:0db8:0000:0000:0000:0000:0000:0009 "
    "LEN=1240 TC=0 HOPLIMIT=63 FLOWLBL=99 "
)
TCP_IN = "PROTO=TCP SPT=443 DPT=40000 WINDOW=502 RES=0x00 ACK PSH URGP=0 "
UDP_IN = "PROTO=UDP SPT=53 DPT=4444 LEN=8 "
ICMP_IN = "PROTO=ICMP TYPE=8 CODE=0 ID=5 SEQ=1 "
SYN = "PROTO=TCP SPT=40000 DPT=22 WINDOW=64240 RES=0x00 SYN URGP=0 "
DROP = "nfkit:input:drop "
ACCEPT = "nfkit:input:accept "
INVALID = "nfkit:input:drop:invalid "

SHAPES: dict[str, str] = {
    # PMTUD: dropped (a hazard) and accepted (counted as allowed)
    "frag-needed-drop": DROP + V4 + "PROTO=ICMP TYPE=3 CODE=4 [" + INNER4 + TCP_IN + "] MTU=1400 ",
    "frag-needed-accept": ACCEPT + V4 + "PROTO=ICMP TYPE=3 CODE=4 [" + INNER4 + TCP_IN
    + "] MTU=1400 ",
    "frag-needed-invalid": INVALID + V4 + "PROTO=ICMP TYPE=3 CODE=4 [" + INNER4 + TCP_IN
    + "] MTU=1400 ",
    "frag-needed-log": "nfkit:input:log " + V4 + "PROTO=ICMP TYPE=3 CODE=4 [" + INNER4 + UDP_IN
    + "] MTU=1400 ",
    "frag-needed-reject": "nfkit:input:reject " + V4 + "PROTO=ICMP TYPE=3 CODE=4 [" + INNER4
    + UDP_IN + "] MTU=1400 ",
    "frag-needed-forward": "nfkit:forward:drop " + V4.replace("OUT=", "OUT=eth1")
    + "PROTO=ICMP TYPE=3 CODE=4 [" + INNER4 + UDP_IN + "] MTU=1400 ",
    "frag-needed-output": "nfkit:output:drop " + V4.replace("IN=eth0 OUT=", "IN= OUT=eth0")
    + "PROTO=ICMP TYPE=3 CODE=4 [" + INNER4 + UDP_IN + "] MTU=1400 ",
    "frag-needed-other-tool": "ufw-block " + V4 + "PROTO=ICMP TYPE=3 CODE=4 [" + INNER4
    + UDP_IN + "] MTU=1400 ",
    "frag-needed-v6-outer": DROP + V6 + "PROTO=ICMP TYPE=3 CODE=4 [" + INNER4 + UDP_IN
    + "] MTU=1400 ",
    "frag-needed-no-mtu": DROP + V4 + "PROTO=ICMP TYPE=3 CODE=4 [" + INNER4 + UDP_IN + "] ",
    "frag-needed-tail": DROP + V4 + "PROTO=ICMP TYPE=3 CODE=4 [" + INNER4 + TCP_IN
    + "] MTU=1400 UID=0 GID=0 MARK=0x1f ",
    "frag-needed-huge-mtu": DROP + V4 + "PROTO=ICMP TYPE=3 CODE=4 [" + INNER4 + TCP_IN
    + "] MTU=999999999999 ",
    "frag-needed-unprefixed": V4 + "PROTO=ICMP TYPE=3 CODE=4 [" + INNER4 + TCP_IN + "] MTU=1 ",
    "packet-too-big-drop": DROP + V6 + "PROTO=ICMPv6 TYPE=2 CODE=0 [" + INNER6
    + "PROTO=TCP SPT=22 DPT=4000 WINDOW=1 RES=0x00 SYN URGP=0 ] MTU=1280 ",
    "packet-too-big-accept": ACCEPT + V6 + "PROTO=ICMPv6 TYPE=2 CODE=0 [" + INNER6 + UDP_IN
    + "] MTU=1280 ",
    "packet-too-big-no-mtu": DROP + V6 + "PROTO=ICMPv6 TYPE=2 CODE=0 [" + INNER6 + UDP_IN + "] ",
    # other errors, quoting TCP, UDP, ICMP
    "time-exceeded-tcp": DROP + V4 + "PROTO=ICMP TYPE=11 CODE=0 [" + INNER4 + TCP_IN + "] ",
    "time-exceeded-udp": DROP + V4 + "PROTO=ICMP TYPE=11 CODE=1 [" + INNER4 + UDP_IN + "] ",
    "time-exceeded-icmp": DROP + V4 + "PROTO=ICMP TYPE=11 CODE=0 [" + INNER4 + ICMP_IN + "] ",
    "unreachable-icmp-in-icmp": DROP + V4 + "PROTO=ICMP TYPE=3 CODE=1 [" + INNER4
    + "PROTO=ICMP TYPE=3 CODE=1 ] ",
    "error-quoting-error": DROP + V4 + "PROTO=ICMP TYPE=3 CODE=1 [" + INNER4
    + "PROTO=ICMP TYPE=3 CODE=1 [" + INNER4 + UDP_IN + "] ] ",
    "v6-time-exceeded": DROP + V6 + "PROTO=ICMPv6 TYPE=3 CODE=0 [" + INNER6 + ICMP_IN.replace(
        "ICMP", "ICMPv6"
    ).replace("TYPE=8", "TYPE=128") + "] ",
    "v6-parameter-problem": DROP + V6 + "PROTO=ICMPv6 TYPE=4 CODE=1 [" + INNER6 + UDP_IN + "] ",
    "v6-unreachable-v4-inside": DROP + V6 + "PROTO=ICMPv6 TYPE=1 CODE=4 [" + INNER4 + UDP_IN
    + "] ",
    "v4-error-v6-inside": DROP + V4 + "PROTO=ICMP TYPE=3 CODE=3 [" + INNER6 + UDP_IN + "] ",
    "quoted-incomplete": DROP + V4 + "PROTO=ICMP TYPE=3 CODE=4 [" + INNER4
    + "PROTO=TCP INCOMPLETE [8 bytes] ] MTU=1400 ",
    "quoted-v6-fragment": DROP + V6 + "PROTO=ICMPv6 TYPE=2 CODE=0 [" + INNER6
    + "FRAG:1448 INCOMPLETE ID:2f344fb3 PROTO=ICMPv6 ] MTU=1280 ",
    "quoted-truncated": DROP + V4 + "PROTO=ICMP TYPE=3 CODE=1 [TRUNCATED] ",
    "quoted-unclosed": DROP + V4 + "PROTO=ICMP TYPE=3 CODE=4 [" + INNER4 + UDP_IN + "MTU=1400 ",
    "quoted-twice-closed": DROP + V4 + "PROTO=ICMP TYPE=3 CODE=4 [" + INNER4 + UDP_IN
    + "] ] MTU=1400 ",
    "quoted-two-packets": DROP + V4 + "PROTO=ICMP TYPE=3 CODE=1 [" + INNER4 + "PROTO=47 ] ["
    + INNER4 + "PROTO=47 ] ",
    "quoted-nested-brackets": DROP + V4 + "PROTO=ICMP TYPE=3 CODE=1 [[" + INNER4 + UDP_IN
    + "]] ",
    "quoted-empty": DROP + V4 + "PROTO=ICMP TYPE=3 CODE=1 [] ",
    "quoted-no-space": DROP + V4 + "PROTO=ICMP TYPE=3 CODE=4 [" + INNER4 + UDP_IN + "]MTU=1 ",
    "quoted-with-uid": DROP + V4 + "PROTO=ICMP TYPE=3 CODE=1 [" + INNER4 + "PROTO=47 UID=0 ] ",
    "quoted-huge-ttl": DROP + V4 + "PROTO=ICMP TYPE=3 CODE=4 [" + INNER4.replace(
        "TTL=64", "TTL=99999999999"
    ) + UDP_IN + "] MTU=1400 ",
    "mtu-on-port-unreachable": DROP + V4 + "PROTO=ICMP TYPE=3 CODE=3 [" + INNER4 + UDP_IN
    + "] MTU=1400 ",
    "mtu-on-v6-unreachable": DROP + V6 + "PROTO=ICMPv6 TYPE=1 CODE=4 [" + INNER6 + UDP_IN
    + "] MTU=1280 ",
    "redirect": DROP + V4 + "PROTO=ICMP TYPE=5 CODE=1 GATEWAY=192.168.1.254 [" + INNER4
    + UDP_IN + "] ",
    "redirect-no-gateway": DROP + V4 + "PROTO=ICMP TYPE=5 CODE=1 [" + INNER4 + UDP_IN + "] ",
    "parameter-problem": DROP + V4 + "PROTO=ICMP TYPE=12 CODE=0 PARAMETER=20 [" + INNER4
    + "PROTO=47 ] ",
    "source-quench": DROP + V4 + "PROTO=ICMP TYPE=4 CODE=0 [" + INNER4 + "CE PROTO=132 ] ",
    "type-leading-zero-pmtud": DROP + V4 + "PROTO=ICMP TYPE=03 CODE=04 [" + INNER4 + TCP_IN
    + "] MTU=1400 ",
    "type-leading-zero-echo": DROP + V4 + "PROTO=ICMP TYPE=008 CODE=0 ID=1 SEQ=1 ",
    "type-leading-zero-v6": ACCEPT + V6 + "PROTO=ICMPv6 TYPE=02 CODE=00 [" + INNER6 + UDP_IN
    + "] MTU=1280 ",
    "type-huge": DROP + V4 + "PROTO=ICMP TYPE=4294967299 CODE=4 [" + INNER4 + UDP_IN + "] ",
    "type-nine-digits": DROP + V4 + "PROTO=ICMP TYPE=000000003 CODE=000000004 [" + INNER4
    + UDP_IN + "] MTU=1 ",
    "type-256": DROP + V4 + "PROTO=ICMP TYPE=256 CODE=0 ",
    "echo-quoting": DROP + V4 + "PROTO=ICMP TYPE=8 CODE=0 [" + INNER4 + "PROTO=47 ] ",
    "icmp-with-ports": DROP + V4 + "PROTO=ICMP SPT=1 DPT=2 LEN=3 ",
    "icmp-no-type": DROP + V4 + "PROTO=ICMP ",
    # huge numbers
    "ttl-huge": DROP + V4.replace("TTL=50", "TTL=99999999999") + SYN,
    "ttl-nine-digits": DROP + V4.replace("TTL=50", "TTL=999999999") + SYN,
    "ttl-zero": DROP + V4.replace("TTL=50", "TTL=0") + SYN,
    "ttl-leading-zeros": DROP + V4.replace("TTL=50", "TTL=064") + SYN,
    "ttl-256": DROP + V4.replace("TTL=50", "TTL=256") + SYN,
    "hoplimit-huge": DROP + V6.replace("HOPLIMIT=57", "HOPLIMIT=4294967296") + SYN,
    "dpt-twelve-digits": DROP + V4 + SYN.replace("DPT=22", "DPT=123456789012"),
    "dpt-nine-digits": DROP + V4 + SYN.replace("DPT=22", "DPT=999999999"),
    "dpt-65536": DROP + V4 + SYN.replace("DPT=22", "DPT=65536"),
    "dpt-leading-zeros": DROP + V4 + SYN.replace("DPT=22", "DPT=0022"),
    "spt-huge": INVALID + V4 + SYN.replace("SPT=40000", "SPT=99999999999").replace(
        " SYN ", " ACK "
    ),
    "udp-dpt-twelve-digits": DROP + V4 + "PROTO=UDP SPT=1 DPT=123456789012 LEN=8 ",
    "udp-dpt-twenty-one-digits": DROP + V4 + "PROTO=UDP SPT=1 DPT=123456789012345678901 LEN=8 ",
    "udp-dpt-leading-zeros": DROP + V4 + "PROTO=UDP SPT=1 DPT=053 LEN=8 ",
    "len-huge": DROP + V4.replace("LEN=576", "LEN=99999999999999999999") + SYN,
    "id-huge": DROP + V4.replace("ID=77", "ID=99999999999999") + SYN,
    "proto-number": DROP + V4 + "PROTO=47 ",
    "proto-long": DROP + V4 + "PROTO=" + "X" * 40 + " ",
    "proto-lowercase": DROP + V4 + "PROTO=tcp SPT=1 DPT=2 LEN=3 ",
    # TCP flags, options
    "flags-odd-order": DROP + V4 + SYN.replace(" SYN ", " URG FIN PSH SYN RST ACK "),
    "flags-ae": DROP + V4 + SYN.replace(" SYN ", " AE SYN "),
    "flags-ae-last": DROP + V4 + SYN.replace(" SYN ", " CWR ECE ACK AE "),
    "flags-ae-only": INVALID + V4 + SYN.replace(" SYN ", " AE "),
    "flags-none": INVALID + V4 + SYN.replace(" SYN ", " "),
    "flags-unknown": DROP + V4 + SYN.replace(" SYN ", " SYN XYZ "),
    "flags-repeated": INVALID + V4 + SYN.replace(" SYN ", " ACK ACK SYN SYN "),
    "invalid-ack": INVALID + V4 + SYN.replace(" SYN ", " ACK "),
    "invalid-ack-syn": INVALID + V4 + SYN.replace(" SYN ", " ACK SYN "),
    "invalid-udp": INVALID + V4 + "PROTO=UDP SPT=1 DPT=2 LEN=8 ",
    "tcp-seq": DROP + V4 + SYN.replace("WINDOW=", "SEQ=1 ACK=0 WINDOW="),
    "tcp-opt": DROP + V4 + SYN + "OPT (020405B40402080A0000000000000000) ",
    "tcp-opt-empty": DROP + V4 + SYN + "OPT () ",
    "tcp-opt-lowercase": DROP + V4 + SYN + "OPT (020405b4) ",
    "tcp-opt-spaced": DROP + V4 + SYN + "OPT ( 0204 ) ",
    "tcp-opt-unclosed": DROP + V4 + SYN + "OPT (0204 ",
    "ip-opt": DROP + V4 + "OPT (0107270C) " + SYN,
    "ip-flags-all": DROP + V4 + "CE DF MF " + SYN,
    "ip-flags-reversed": DROP + V4 + "MF DF CE " + SYN,
    "tcp-res-upper": DROP + V4 + SYN.replace("RES=0x00", "RES=0xAB"),
    "tos-lower": DROP + V4.replace("TOS=0x00", "TOS=0x0a") + SYN,
    "fragment": DROP + V4 + "MF FRAG:185 PROTO=UDP ",
    "tcp-incomplete": DROP + V4 + "DF PROTO=TCP INCOMPLETE [4 bytes] ",
    "esp": DROP + V4 + "DF PROTO=ESP SPI=0x1234 ",
    "sctp": DROP + V4 + "PROTO=SCTP SPT=1 DPT=2905 LEN=20 ",
    # UID/GID/MARK tails
    "uid-gid": DROP + V4 + SYN + "UID=1000 GID=1000 ",
    "uid-gid-mark": DROP + V4 + SYN + "UID=0 GID=0 MARK=0x2a ",
    "mark": DROP + V4 + "PROTO=UDP SPT=1 DPT=2 LEN=8 MARK=0xdeadbeef ",
    "mark-upper": DROP + V4 + "PROTO=UDP SPT=1 DPT=2 LEN=8 MARK=0xDEAD ",
    "mark-empty": DROP + V4 + "PROTO=UDP SPT=1 DPT=2 LEN=8 MARK=0x ",
    "mark-then-uid": DROP + V4 + SYN + "MARK=0x1 UID=0 GID=0 ",
    "uid-without-gid": DROP + V4 + SYN + "UID=0 ",
    "uid-huge": DROP + V4 + SYN + "UID=99999999999 GID=0 ",
    # heads and addresses
    "no-prefix": V4 + SYN,
    "no-mac": DROP + V4.replace("MAC=52:54:00:00:00:10:52:54:00:00:00:01:08:00 ", "") + SYN,
    "mac-empty": DROP + V4.replace("MAC=52:54:00:00:00:10:52:54:00:00:00:01:08:00", "MAC=") + SYN,
    "macsrc": DROP + V4.replace(
        "MAC=52:54:00:00:00:10:52:54:00:00:00:01:08:00", "MACSRC=52:54:00:00:00:01 "
        "MACDST=52:54:00:00:00:10 MACPROTO=0800"
    ) + SYN,
    "forward": "nfkit:forward:drop " + V4.replace("OUT=", "OUT=eth1") + SYN,
    "output": "nfkit:output:drop " + V4.replace("IN=eth0 OUT=", "IN= OUT=eth0") + SYN,
    "prefix-glued": "nfkit:input:dropIN=eth0" + V4[len("IN=eth0") :] + SYN,
    "prefix-with-equals": "x=1 " + V4 + SYN,
    "prefix-login": "LOGIN=x " + V4 + SYN,
    "prefix-header-like": "x IN=a OUT=b y " + V4 + SYN,
    "prefix-quoted": '"nfkit:input:drop" ' + V4 + SYN,
    "prefix-bracket": "[fw] " + V4 + SYN,
    "src-leading-zero": DROP + V4.replace("SRC=198.51.100.9", "SRC=198.51.100.09") + SYN,
    "src-compressed-v6": DROP + V6.replace("SRC=2001:0db8:0000:0000:0000:0000:0000:0009",
                                           "SRC=2001:db8::9") + SYN,
    "src-v6-upper": DROP + V6.replace("SRC=2001:0db8", "SRC=2001:0DB8") + SYN,
    "src-v4-mapped": DROP + V6.replace("SRC=2001:0db8:0000:0000:0000:0000:0000:0009",
                                       "SRC=::ffff:198.51.100.9") + SYN,
    "src-v4-dst-v6": DROP + V4.replace("DST=192.168.1.10",
                                       "DST=2001:0db8:0001:0000:0000:0000:0000:0010") + SYN,
    "src-gateway": DROP + V4.replace("SRC=198.51.100.9", "SRC=192.168.1.1") + SYN,
    "src-peer": DROP + V4.replace("SRC=198.51.100.9", "SRC=192.168.1.77").replace(
        "52:54:00:00:00:01:08:00", "52:54:00:aa:00:4d:08:00"
    ) + SYN,
    "src-empty": DROP + V4.replace("SRC=198.51.100.9", "SRC=") + SYN,
    "src-text": DROP + V4.replace("SRC=198.51.100.9", "SRC=localhost") + SYN,
    "src-300": DROP + V4.replace("SRC=198.51.100.9", "SRC=198.51.100.300") + SYN,
    "double-space": DROP + V4.replace(" DST=", "  DST=") + SYN,
    "no-trailing-space": DROP + V4 + SYN.rstrip(),
    "tab": DROP + V4.replace(" LEN=", "\tLEN=") + SYN,
}  # fmt: skip
#: Lines around the shapes (byte level): CR, NUL, bad UTF-8, cut lines, empty lines.
RAW_SHAPES: dict[str, bytes] = {
    "crlf": (DROP + V4 + SYN + "\r").encode(),
    "crlf-no-space": (DROP + V4 + SYN.rstrip() + "\r").encode(),
    "cr-inside": (DROP + V4 + "\r" + SYN).encode(),
    "nul-in-prefix": ("nfkit:input:drop\x00 " + V4 + SYN).encode(),
    "nul-in-tail": (DROP + V4 + SYN + "\x00").encode(),
    "nul-in-src": (DROP + V4.replace("SRC=198.51.100.9", "SRC=198.51.100.9\x00") + SYN).encode(),
    "bad-utf8-prefix": b"nfkit:input:drop\xff\xfe " + (V4 + SYN).encode(),
    "bad-utf8-prefix-other": b"nfkit:input:drop\xfe\xff " + (V4 + SYN).encode(),
    "bad-utf8-iface": (DROP + V4).replace("IN=eth0", "IN=eth\xe90").encode("latin-1")
    + SYN.encode(),
    "bad-utf8-src": (DROP + V4).encode().replace(b"SRC=198.51.100.9", b"SRC=198.51.\xff.9")
    + SYN.encode(),
    "utf8-prefix": ("nfkit:input:dröp " + V4 + SYN).encode(),
    "lone-continuation": b"\x80" + (DROP + V4 + SYN).encode(),
    "empty": b"",
    "spaces": b"   ",
    "just-cr": b"\r",
    "not-a-packet": b"Nov 25 04:17:23 fw kernel: eth0: link up",
}
RAW_SHAPES.update(
    {f"cut-{name}-{n}": (DROP + V4 + SHAPES[name][len(DROP + V4) :])[:n].encode()
     for name in ("frag-needed-drop", "tcp-opt", "uid-gid-mark")
     for n in (5, 40, 120, 200, 230, 260, 300, 330)}
)  # fmt: skip
RAW_SHAPES.update({name: line.encode() for name, line in SHAPES.items()})

#: A wrapper for each raw shape by its index (the header decides the native path too).
RAW_WRAPPERS: tuple[Callable[[int], bytes], ...] = (
    lambda i: f"Nov 25 04:17:{i % 60:02d} fw kernel: [{100 + i:12.6f}] ".encode(),
    lambda i: f"2026-11-24T10:00:{i % 60:02d}.5+01:00 fw kernel: ".encode(),
    lambda i: f"[{686 + i:12.6f}] ".encode(),
)
NORMAL = generated(200, seed=40, sources=30, rate=0.2, start=datetime(2026, 11, 25, 4, 0))


def shape_log(line: bytes, index: int) -> bytes:
    """Normal lines, the shape under each wrapper, normal lines, the shape at the very end
    without a newline."""
    normal = NORMAL.splitlines(keepends=True)
    out = b"".join(normal[:60])
    for i, wrap in enumerate(RAW_WRAPPERS):
        out += wrap(index + i) + line + b"\n"
        out += b"".join(normal[60 + 40 * i : 100 + 40 * i])
    return out + RAW_WRAPPERS[0](index) + line


def _check_shape(name: str) -> None:
    line = RAW_SHAPES[name]
    data = shape_log(line, sorted(RAW_SHAPES).index(name))
    for config_name in ("gateway", "none"):
        config = CONFIGS[config_name]
        expected = full(lines_of(data), config, reference=REFERENCE)
        assert native_summary(data, config=config) == expected, (name, config_name, line)
        assert native_summary(data, config=config, block=211) == expected, (name, line)
        assert pure_summary(data, config=config) == expected, (name, config_name, line)


#: Shapes where the native engine disagrees with the full parser (see the report in each).
KNOWN_MISMATCHES: dict[str, str] = {}


@needs_native
@pytest.mark.parametrize(
    "name",
    [
        pytest.param(name, marks=pytest.mark.xfail(strict=True, reason=KNOWN_MISMATCHES[name]))
        if name in KNOWN_MISMATCHES
        else name
        for name in sorted(RAW_SHAPES)
    ],
)
def test_hand_written_shape_native_equals_full(name: str) -> None:
    _check_shape(name)


@needs_native
def test_pmtud_drop_and_accept_are_told_apart() -> None:
    """The shapes above are compared whole; here what they must count, so a test log that
    silently stopped being read as PMTUD would show."""
    names = ["frag-needed-drop", "frag-needed-accept", "packet-too-big-drop",
             "packet-too-big-accept", "time-exceeded-tcp"]  # fmt: skip
    lines = [f"Nov 25 04:17:{i:02d} fw kernel: " + SHAPES[name] for i, name in enumerate(names)]
    data = joined(lines)
    got = native_summary(data, config=CONFIGS["gateway"])
    assert got == full(lines, CONFIGS["gateway"], reference=REFERENCE)
    assert got["pmtud"]["allowed"] == 2
    assert got["pmtud"]["packets"] == 2
    assert got["records"] == len(names)


@needs_native
def test_all_shapes_in_one_log() -> None:
    """Every shape, mixed with normal lines, fed in blocks that end anywhere."""
    rng = random.Random(7)
    normal = NORMAL.splitlines()
    rows = [RAW_WRAPPERS[i % 3](i) + line for i, line in enumerate(RAW_SHAPES.values())] + normal
    rng.shuffle(rows)
    data = b"\n".join(rows)  # no final newline
    for config in CONFIGS.values():
        expected = full(lines_of(data), config, reference=REFERENCE)
        for block in (fastpath.BLOCK_SIZE, 4093, 1):
            if block == 1 and config is not CONFIGS["gateway"]:
                continue
            assert native_summary(data, config=config, block=block) == expected, block
        assert pure_summary(data, config=config) == expected


# -- mutated corpus lines --------------------------------------------------------------------------
_POOL_SHAPES = (
    "frag-needed-drop", "packet-too-big-accept", "time-exceeded-icmp", "tcp-opt", "uid-gid-mark"
)  # fmt: skip
_POOL = [
    wrap(i, message).encode()
    for i, message in enumerate(MESSAGES)
    for wrap in (WRAPPERS["syslog"], WRAPPERS["rfc3339"], WRAPPERS["dmesg"])
] + [SHAPES[name].encode() for name in _POOL_SHAPES]
_BYTES = [
    *(b" ", b"=", b"[", b"]", b"0", b"9", b"x", b"A", b":", b".", b"-", b"  ", b"] ", b" ["),
    *(b"\r", b"\x00", b"\xff", b"\xc3\xa9", b"\n", b"IN=", b"SRC=", b"MTU=1 ", b"UID=0 "),
]


def _edit(line: bytes, how: int, where: int, text: bytes) -> bytes:
    spot = where % (len(line) + 1)
    if how == 0:
        return line[:spot] + text + line[spot:]  # insert
    if how == 1:
        return line[:spot] + line[spot + 1 :]  # delete
    if how == 2:
        return line[:spot] + text + line[spot + 1 :]  # replace
    return line[:spot]  # cut


edit = st.tuples(st.integers(0, 3), st.integers(0, 1200), st.sampled_from(_BYTES))


@needs_native
@settings(max_examples=200, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])  # fmt: skip
@given(
    st.lists(st.tuples(st.sampled_from(_POOL), st.lists(edit, max_size=3)), min_size=1,
             max_size=25),
    st.sampled_from(sorted(CONFIGS)),
    st.booleans(),
)  # fmt: skip
def test_mutated_corpus_lines_native_equals_full(
    items: list[tuple[bytes, list[tuple[int, int, bytes]]]], config_name: str, newline: bool
) -> None:
    rows = []
    for line, edits in items:
        for how, where, text in edits:
            line = _edit(line, how, where, text)
        rows.append(line)
    data = b"\n".join(rows) + (b"\n" if newline else b"")
    config = CONFIGS[config_name]
    assert native_summary(data, config=config) == full(lines_of(data), config, reference=REFERENCE)


# -- threads over byte ranges, and tiny C tables ---------------------------------------------------
def _mixed_log(count: int, seed: int) -> bytes:
    """Generated lines, syslog then RFC 3339, with a few odd lines among them."""
    start = datetime(2026, 11, 20, 0, 0)
    out = generated(count, seed=seed, sources=600, rate=1.0, start=start)
    out += b"\n\nnot a packet\n" + RAW_WRAPPERS[0](5) + SHAPES["redirect"].encode() + b"\n"
    out += generated(count // 2, seed=seed + 1, sources=200, rate=1.0, wrapper="rfc3339",
                     start=start + timedelta(hours=1))  # fmt: skip
    return out + RAW_WRAPPERS[0](7) + SHAPES["frag-needed-drop"].encode() + b"\n"


@pytest.fixture
def big_log(tmp_path: Path) -> Path:
    path = tmp_path / "kern.log"
    path.write_bytes(_mixed_log(3000, seed=50))
    return path


def _threads_used(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []
    original = parallel._run_threads

    def counting(engine: BlockSummarizer, tasks: Any, jobs: int, done: Any) -> Summary:
        calls.append(len(tasks))
        return original(engine, tasks, jobs, done)

    monkeypatch.setattr(parallel, "_run_threads", counting)
    return calls


@needs_native
@pytest.mark.parametrize("jobs", [2, 3, 7])
def test_threads_equal_one_job_and_full(
    big_log: Path, jobs: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = CONFIGS["gateway"]
    since = datetime(2026, 11, 20, 0, 20, 30).astimezone()
    expected = full(lines_of(big_log.read_bytes()), config, since, REFERENCE)
    one = summarize_paths([big_log], config, since, jobs=1, reference=REFERENCE).to_dict()
    assert one == expected
    monkeypatch.setattr(parallel, "PARALLEL_MIN", 1)
    monkeypatch.setattr(parallel, "BLOCK_SIZE", 8192)  # many blocks per range
    calls = _threads_used(monkeypatch)
    got = summarize_paths([big_log], config, since, jobs=jobs, reference=REFERENCE).to_dict()
    assert calls and calls[0] >= 2, "the threaded path did not run"
    assert got == expected


@needs_native
@pytest.mark.parametrize("limits", [(4, 8, 16), (1, 1, 1), (64, 3, 5)])
def test_tiny_native_tables_flush_and_forget(
    big_log: Path, limits: tuple[int, int, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    table, activity, values = limits
    monkeypatch.setattr(nativepath, "_TABLE_LIMIT", table)
    monkeypatch.setattr(nativepath, "_ACTIVITY_LIMIT", activity)
    monkeypatch.setattr(nativepath, "_VALUE_LIMIT", values)
    config = CONFIGS["gateway"]
    data = big_log.read_bytes()
    since = datetime(2026, 11, 20, 0, 20, 30).astimezone()
    expected = full(lines_of(data), config, since, REFERENCE)
    assert native_summary(data, config=config, since=since, block=5000) == expected
    monkeypatch.setattr(parallel, "PARALLEL_MIN", 1)
    monkeypatch.setattr(parallel, "BLOCK_SIZE", 5000)
    calls = _threads_used(monkeypatch)
    got = summarize_paths([big_log], config, since, jobs=3, reference=REFERENCE).to_dict()
    assert calls, "the threaded path did not run"
    assert got == expected


@needs_native
def test_threads_over_several_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two files in threads into one summary; a file without final newline."""
    first, second = tmp_path / "a.log", tmp_path / "b.log"
    first.write_bytes(_mixed_log(1500, seed=60))
    second.write_bytes(_mixed_log(1500, seed=61).rstrip(b"\n"))
    config = CONFIGS["networks-only"]
    expected = full(
        lines_of(first.read_bytes()) + lines_of(second.read_bytes()), config, None, REFERENCE
    )
    monkeypatch.setattr(parallel, "PARALLEL_MIN", 1)
    monkeypatch.setattr(parallel, "BLOCK_SIZE", 3000)
    monkeypatch.setattr(nativepath, "_VALUE_LIMIT", 32)
    calls = _threads_used(monkeypatch)
    got = summarize_paths([first, second], config, jobs=4, reference=REFERENCE).to_dict()
    assert calls
    assert got == expected


@needs_native
@pytest.mark.parametrize("limits", [(1, 1, 1), (16, 64, 2), (500, 7, 3)])
def test_tiny_store_flushes_and_header_limits(
    big_log: Path, limits: tuple[int, int, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Per-source tables moved into the store every few rows, counters and activity apart;
    wrapper headers forgotten every few: the same summary."""
    sources, activity, headers = limits
    monkeypatch.setattr(nativepath, "_SOURCE_LIMIT", sources)
    monkeypatch.setattr(nativepath, "_ACTIVITY_LIMIT", activity)
    monkeypatch.setattr(nativepath, "_HEADER_LIMIT", headers)
    config = CONFIGS["gateway"]
    data = big_log.read_bytes()
    expected = full(lines_of(data), config, None, REFERENCE)
    assert native_summary(data, config=config, block=4000) == expected
    monkeypatch.setattr(parallel, "PARALLEL_MIN", 1)
    monkeypatch.setattr(parallel, "BLOCK_SIZE", 4000)
    calls = _threads_used(monkeypatch)
    got = summarize_paths([big_log], config, jobs=2, reference=REFERENCE).to_dict()
    assert calls, "the threaded path did not run"
    assert got == expected


@needs_native
def test_files_read_in_turn_drain_into_one_summary(tmp_path: Path) -> None:
    """One engine reads file after file (one job): its store is drained after each, the second
    time into sources the summary already has."""
    first, second = tmp_path / "a.log", tmp_path / "b.log"
    first.write_bytes(_mixed_log(1200, seed=62))
    second.write_bytes(_mixed_log(1200, seed=62).replace(b"Nov 20", b"Nov 21"))
    config = CONFIGS["gateway"]
    expected = full(
        lines_of(first.read_bytes()) + lines_of(second.read_bytes()), config, None, REFERENCE
    )
    got = summarize_paths([first, second], config, jobs=1, reference=REFERENCE)
    assert got.to_dict() == expected
    assert all(stats.packets >= 2 for stats in got.sources.values())  # seen in both files


@needs_native
@pytest.mark.parametrize("limit", [20, 100])
def test_the_store_bounds_as_a_summary_promises(
    limit: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the store flushed every few rows, sources are dropped many times over: no source
    left out sent more than the floor, each listed one sent between packets and packets +
    error (exactly packets when error is 0), and the busiest are listed."""
    monkeypatch.setattr(nativepath, "_SOURCE_LIMIT", 50)
    monkeypatch.setattr(nativepath, "_ACTIVITY_LIMIT", 50)
    data = generated(6000, seed=71, sources=3000, rate=5.0)
    config = SummaryConfig(segment=CONFIGS["gateway"].segment, max_sources=limit)
    truth = {
        source["address"]: source["packets"]
        for source in full(lines_of(data), replace(config, max_sources=None), None, REFERENCE)[
            "sources"
        ]
    }
    engine_ = BlockSummarizer(config, reference=REFERENCE)
    for start in range(0, len(data), 3000):
        engine_.feed(data[start : start + 3000])
    summary = engine_.finish()
    assert summary.records == 6000 and summary.dropped > 0
    assert len(summary.sources) <= limit + limit // 2
    exact = 0
    for address, stats in summary.sources.items():
        assert stats.packets <= truth[address] <= stats.packets + stats.error
        if stats.error == 0:
            assert stats.packets == truth[address]
            exact += 1
    assert exact
    for address, packets in truth.items():
        if address not in summary.sources:
            assert packets <= summary.floor
    busiest = sorted(truth, key=lambda a: -truth[a])[:5]
    assert truth[busiest[0]] > summary.floor
    for address in busiest:
        if truth[address] > summary.floor:
            assert address in summary.sources


@needs_native
def test_sources_past_the_narrow_activity_keys() -> None:
    """The store keeps a source's activity keys in 32 bits while its slot, destination and port
    numbers are small: sources that pass them (15,000 ports, 100 destinations, 20,000 slots)
    after their keys were stored narrow give the full parser's summary."""
    start = datetime(2026, 11, 1, 0, 0)
    lines = []
    for i in range(20_000):
        stamp = (start + timedelta(seconds=60 * i)).strftime("%b %d %H:%M:%S")  # a slot each
        port = 22 if i < 5000 else 1000 + i  # port numbers pass 2**12 late
        dst = f"192.0.2.{1 + (i % 3 if i < 8000 else i % 100)}"  # destinations pass 2**6
        lines.append(
            f"{stamp} fw kernel: [{i}.000001] nfkit:input:drop IN=eth0 OUT= "
            f"MAC=52:54:00:00:00:10:52:54:00:00:00:01:08:00 SRC=203.0.113.{i % 5} DST={dst} "
            f"LEN=60 TOS=0x00 PREC=0x00 TTL=50 ID=1 DF PROTO=TCP SPT=40000 DPT={port} "
            "WINDOW=64240 RES=0x00 SYN URGP=0 "
        )
    data = joined(lines)
    config = SummaryConfig(slot_seconds=60)
    expected = full(lines_of(data), config, None, REFERENCE)
    assert len(expected["ports"]) > 4096 and len(expected["timeline"]["slots"]) > 1 << 14
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(nativepath, "_ACTIVITY_LIMIT", 100)  # stored often, narrow first
        assert native_summary(data, config=config, block=20_000) == expected
    assert native_summary(data, config=config) == expected


@needs_native
def test_the_store_floor_reaches_sources_the_full_parser_counted() -> None:
    """A source the store dropped (its one packet counted natively) and the full parser kept
    (30 lines the scanner leaves to it): listed with the full parser's 30 packets, and an error
    that covers the dropped one, as merging two summaries would say."""
    start = datetime(2026, 11, 25, 4, 0)
    first = (
        "Nov 25 04:00:00 fw kernel: [1.000001] nfkit:input:drop IN=eth0 OUT= "
        "MAC=52:54:00:00:00:10:52:54:00:00:00:01:08:00 SRC=99.99.0.1 DST=192.168.1.10 LEN=60 "
        "TOS=0x00 PREC=0x00 TTL=50 ID=1 DF PROTO=UDP SPT=5353 DPT=53 LEN=40 \n"
    )
    odd = SHAPES["redirect"].replace("SRC=198.51.100.9", "SRC=99.99.0.1").encode()
    data = b"".join(
        [
            first.encode(),  # counted natively
            generated(4000, seed=73, sources=3000, rate=5.0, start=start),
            *(RAW_WRAPPERS[0](i) + odd + b"\n" for i in range(30)),  # by the full parser
        ]
    )
    config = SummaryConfig(segment=CONFIGS["gateway"].segment, max_sources=40)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(nativepath, "_SOURCE_LIMIT", 64)
        patch.setattr(nativepath, "_ACTIVITY_LIMIT", 64)
        engine_ = BlockSummarizer(config, reference=REFERENCE)
        engine_.feed(data)
        summary = engine_.finish()
    assert summary.dropped > 0 and summary.floor > 0
    stats = summary.sources["99.99.0.1"]
    assert stats.counts("protos") == {"icmp": 30}  # the native packet (not ICMP) was dropped
    assert stats.packets == 30 < 31 <= stats.packets + stats.error


# -- bounded summaries: both engines bound alike ---------------------------------------------------
@needs_native
@pytest.mark.parametrize("limit", [10, 50, 300])
def test_bounded_native_equals_pure(limit: int) -> None:
    data = generated(4000, seed=70, sources=1500, rate=2.0)
    config = SummaryConfig(segment=CONFIGS["gateway"].segment, max_sources=limit)
    native_result = native_summary(data, config=config)
    assert native_result == pure_summary(data, config=config)
    assert native_result["records"] == 4000
    assert len(native_result["sources"]) <= limit + limit // 2
    # unbounded, the two still equal the full parser
    unbounded = SummaryConfig(segment=CONFIGS["gateway"].segment, max_sources=None)
    assert native_summary(data, config=unbounded) == full(
        lines_of(data), unbounded, reference=REFERENCE
    )


# -- since ---------------------------------------------------------------------------------------
@needs_native
@pytest.mark.parametrize(
    "since",
    [
        datetime(2026, 11, 20, 0, 10),  # on a minute
        datetime(2026, 11, 20, 0, 10, 30),  # inside a minute: its syslog headers split
        datetime(2026, 11, 20, 0, 10, 30, 999_999),
        datetime(2026, 11, 19, 0, 0),  # before everything
        datetime(2026, 11, 21, 0, 0),  # after everything
        datetime(2026, 11, 20, 0, 10, 30, tzinfo=UTC),
    ],
    ids=str,
)
@pytest.mark.parametrize("wrapper", ["syslog", "rfc3339", "dmesg"])
def test_since_skips_like_the_full_parser(since: datetime, wrapper: str) -> None:
    if since.tzinfo is None:
        since = since.astimezone()
    data = generated(1500, seed=80, sources=100, rate=0.5, wrapper=wrapper,
                     start=datetime(2026, 11, 20))  # fmt: skip
    data += b"Nov 20 00:10:30 fw kernel: " + SHAPES["frag-needed-drop"].encode() + b"\n"
    data += b"Nov 20 00:10:29 fw kernel: " + SHAPES["frag-needed-accept"].encode() + b"\n"
    data += b"Nov 20 00:10:31 fw kernel: " + SHAPES["invalid-ack"].encode() + b"\n"
    config = CONFIGS["gateway"]
    expected = full(lines_of(data), config, since, REFERENCE)
    got = native_summary(data, config=config, since=since)
    assert got == expected
    assert got == pure_summary(data, config=config, since=since)
    if wrapper != "dmesg" and since.day == 20:  # dmesg lines have no date: never skipped
        assert 0 < got["skipped"] < got["lines"]


# -- wrapper headers: odd dates, time zones, slot sizes --------------------------------------------
HEADERS = [
    "Nov 25 04:17:60 fw kernel: ",  # a leap second
    "Feb 29 23:59:58 fw kernel: ",  # the last leap year
    "Feb 30 10:00:01 fw kernel: ",  # no such day
    "Dec 31 23:59:59 fw kernel: ",
    "Jan  1 00:00:00 fw kernel: ",
    "Nov 25 04:17:23 kern.warn kernel: ",  # a facility where the host should be
    "Nov 25 04:17:23 fw\udcff kernel: ",
    "Nov 25 04:17:23  fw kernel: ",
    "Nov 25 4:17:23 fw kernel: ",
    "Nov 25 04:17:23 fw kernel:",
    "Nov 25 04:17:23 fw kernel: [ 5.5] [ 6.5] ",
    "Nov 25 04:17:23 fw kernel: [5.5]",
    "Nov 25 04:17:23 fw kernel: [  5] ",
    "Nov 25 04:17:23 fw ulogd[42]: ",
    "Nov 25 04:17:23 fw other: ",
    "Xyz 25 04:17:23 fw kernel: ",
    "2026-11-24T10:00:05.1234567891+01:00 fw kernel: ",
    "2026-11-24T10:00:05+14:00 fw kernel: ",
    "2026-11-24T10:00:05-00:00 fw kernel: ",
    "2026-11-24T10:00:05+99:99 fw kernel: ",
    "2026-02-30T10:00:05Z fw kernel: ",
    "2026-11-24T25:00:05Z fw kernel: ",
    "2026-11-24 10:00:05Z fw kernel: ",
    "2026-11-24T10:00:05z fw kernel: ",
    "0000-01-01T00:00:00Z fw kernel: ",
    "9999-12-31T23:59:59-12:00 fw kernel: ",
    "[99999999999.000001] ",
    "[  0.0] ",
    "[ 1.5] fw kern.info kernel: ",
    "[ 1.5] a b kernel: ",
    "[ 1.5]  ",
]


@needs_native
@pytest.mark.parametrize(
    "config",
    [SummaryConfig(), SummaryConfig(slot_seconds=7), SummaryConfig(slot_seconds=86400)],
    ids=["default", "slot-7s", "slot-1d"],
)
def test_odd_headers_native_equals_full(config: SummaryConfig) -> None:
    body = [DROP + V4 + SYN, SHAPES["frag-needed-drop"], SHAPES["invalid-ack"]]
    lines = [header + line for header in HEADERS for line in body]
    lines += lines_of(generated(300, seed=90, sources=20, rate=0.05))
    data = joined(lines)
    for reference in (REFERENCE, datetime(2027, 1, 1, 0, 5), datetime(2029, 2, 1)):
        expected = full(lines_of(data), config, reference=reference)
        assert native_summary(data, config=config, reference=reference) == expected
        since = datetime(2026, 11, 20, 0, 30, 30).astimezone()
        expected = full(lines_of(data), config, since, reference)
        assert native_summary(data, config=config, since=since, reference=reference) == expected


@needs_native
@pytest.mark.parametrize("zone", ["Europe/Berlin", "America/St_Johns", "Australia/Lord_Howe"])
def test_daylight_saving_changes(zone: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Local syslog times across the changes of a zone's clock (the scanner dates the seconds
    of a minute from second 00)."""
    import time

    if not (Path("/usr/share/zoneinfo") / zone).is_file():
        pytest.skip(f"no time zone data for {zone}")
    monkeypatch.setenv("TZ", zone)
    time.tzset()
    try:
        data = b""
        for start in (datetime(2026, 3, 29, 0, 0), datetime(2026, 10, 25, 0, 0),
                      datetime(2026, 11, 1, 0, 0), datetime(2026, 4, 5, 1, 0)):  # fmt: skip
            data += generated(1500, seed=start.month, sources=50, rate=0.2, start=start)
        config = CONFIGS["gateway"]
        for since in (None, datetime(2026, 10, 25, 2, 30, 30)):
            expected = full(lines_of(data), config, since, REFERENCE)
            assert native_summary(data, config=config, since=since) == expected
    finally:
        monkeypatch.undo()
        time.tzset()


@needs_native
def test_a_library_of_another_interface_version_is_not_used(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A ``_scan.so`` left from an older ``_scan.c`` (a stale build) is refused, not called."""
    assert native._load() is not None
    monkeypatch.setattr(native, "ABI", native.ABI + 1)
    assert native._load() is None
    monkeypatch.setenv("NFKIT_PURE", "1")
    monkeypatch.setattr(native, "ABI", native.ABI - 1)
    assert native._load() is None  # NFKIT_PURE wins


@needs_native
def test_threads_number_slots_in_time_order(big_log: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Threads start in different parts of the file; the slots between the first and the last
    line are numbered in time order beforehand, so the scan search needs no sorting. The
    summary (and its scans) is the same either way."""
    config = CONFIGS["gateway"]
    one = summarize_paths([big_log], config, jobs=1, reference=REFERENCE)
    monkeypatch.setattr(parallel, "PARALLEL_MIN", 1)
    monkeypatch.setattr(parallel, "BLOCK_SIZE", 8192)
    threaded = summarize_paths([big_log], config, jobs=3, reference=REFERENCE)
    slots = threaded.activity.slot_numbers()
    used = {slot for source in threaded.activity for slot in threaded.activity.by_slot(source)}
    assert used and [slot for slot in slots if slot in used] == sorted(used)
    assert threaded.to_dict() == one.to_dict()
    monkeypatch.setattr(parallel, "_SLOTS_AHEAD", 0)  # too many: nothing numbered ahead
    unordered = summarize_paths([big_log], config, jobs=3, reference=REFERENCE)
    assert unordered.to_dict() == one.to_dict()


@needs_native
def test_small_files_are_thread_tasks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Rotated logs below the range size each become a thread's task (threads share one
    summary, so no merge makes them not worth it); the result is one job's."""
    data = _mixed_log(3000, seed=51)
    lines = data.split(b"\n")
    paths = []
    for number in range(6):
        path = tmp_path / f"kern.log.{number}"
        path.write_bytes(b"\n".join(lines[number * 500 : (number + 1) * 500]) + b"\n")
        paths.append(path)
    (tmp_path / "empty.log").write_bytes(b"")
    paths.append(tmp_path / "empty.log")
    config = CONFIGS["gateway"]
    one = summarize_paths(paths, config, jobs=1, reference=REFERENCE).to_dict()
    calls = _threads_used(monkeypatch)
    got = summarize_paths(paths, config, jobs=2, reference=REFERENCE).to_dict()
    assert calls == [6]  # one task per non-empty file
    assert got == one


@needs_native
def test_a_read_error_in_a_thread_names_the_file(
    big_log: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An error while a thread reads its range is the same LogReadError as in one thread."""
    from nfkit.errors import LogReadError

    def failing(path: str, start: int, end: int, size: int | None = None) -> Iterator[bytes]:
        raise PermissionError(13, "Permission denied")
        yield b""  # pragma: no cover - a generator

    monkeypatch.setattr(parallel, "PARALLEL_MIN", 1)
    monkeypatch.setattr(parallel, "read_range", failing)
    with pytest.raises(LogReadError, match=r"kern\.log: cannot read log: Permission denied"):
        summarize_paths([big_log], jobs=2)
