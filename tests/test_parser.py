"""The LOG line parser, checked field by field against lines the real kernel wrote.

``tests/data/kernel-corpus.log`` comes from ``tests/kernel/capture_corpus.py``. Fields that a
new capture keeps (addresses, MACs, interfaces, types, MTUs, lengths) are compared with fixed
values; fields that change run to run (ports, IDs, sequence numbers) with the number in the line.
"""

from __future__ import annotations

import gzip
import importlib.util
import io
import re
from datetime import datetime
from ipaddress import IPv4Address, IPv6Address, ip_address
from pathlib import Path

import pytest

from nfkit import LogFormatError, LogRecord, iter_records, parse_line
from nfkit.logs import parser as parser_module
from nfkit.logs.wrappers import Unwrapper, unwrap

DATA = Path(__file__).resolve().parent / "data"
CORPUS = DATA / "kernel-corpus.log"
CORPUS_LINES = CORPUS.read_text().splitlines()
TAG = "corpus0"

MAC_CLI = "02:00:00:00:01:02"
MAC_RTR0 = "02:00:00:00:01:01"
MAC_RTR1 = "02:00:00:00:02:01"
MAC_SRV = "02:00:00:00:02:02"
CLI4, RTR4_CLI, SRV4, RTR4_SRV = (IPv4Address(a) for a in ("10.77.1.2", "10.77.1.1",
                                                               "10.77.2.2", "10.77.2.1"))
CLI6, RTR6_CLI, SRV6 = (IPv6Address(a) for a in ("fd77:1::2", "fd77:1::1", "fd77:2::2"))


def lines_with(label: str, *contains: str) -> list[str]:
    """Corpus lines logged by rule ``label`` that contain every string in ``contains``."""
    found = [
        line
        for line in CORPUS_LINES
        if f"{TAG}:{label}:" in line or f"{TAG}:{label} " in line
        if all(text in line for text in contains)
    ]
    assert found, f"no corpus line for {label} {contains}: regenerate the corpus?"
    return found


def one(label: str, *contains: str) -> tuple[LogRecord, str]:
    line = lines_with(label, *contains)[0]
    record = parse_line(line)
    assert record is not None, line
    return record, line


def number(line: str, key: str, occurrence: int = 0) -> int:
    """The ``occurrence``-th value of ``KEY=`` in ``line`` (an independent, naive reading)."""
    return int(re.findall(rf"(?<![A-Z]){key}=(\d+)", line)[occurrence])


# -- the whole corpus --------------------------------------------------------------------------
def test_every_corpus_line_gives_a_record() -> None:
    stream = iter_records(CORPUS)
    records = list(stream)
    assert len(records) == len(CORPUS_LINES) == stream.lines == stream.records
    assert stream.unparsed == 0
    assert all(r.raw == line for r, line in zip(records, CORPUS_LINES, strict=True))
    assert all(r.uptime is not None and r.uptime > 0 for r in records)
    assert all(r.prefix is not None and TAG in r.prefix for r in records)


def test_fast_and_token_readers_agree_on_the_corpus() -> None:
    fast_count = 0
    for line in CORPUS_LINES:
        timestamp, host, uptime, message = unwrap(line)
        padded = message if message.endswith(" ") else message + " "
        fast = parser_module._fast_parse(line, padded, timestamp, host, uptime)
        slow = parser_module._slow_parse(line, message, timestamp, host, uptime)
        if fast is not None:
            fast_count += 1
            assert fast == slow, line
    assert fast_count >= 10


@pytest.mark.parametrize(
    ("wrapper", "fast_expected"),
    [
        ("Nov 25 04:17:23 fw kernel: [  102.710000] ", True),
        ("Nov  5 04:17:23 fw kernel: ", True),
        ("2026-11-24T10:00:05.114797+01:00 fw kernel: ", True),
        ("2026-11-24T10:00:05Z fw kernel: [ 5.000001] ", True),
        ("[  686.000667] ", True),
        ("[  686.000667] [UFW BLOCK] ", True),  # a prefix that starts with a bracket
        # shapes the fast path leaves to the general one (facility, monotonic host, caller id)
        ("Nov 25 04:17:23 fw kern.warn kernel: ", False),
        ("[  686.000667] fw kernel: ", False),
        ("Nov 25 04:17:23 fw kernel: [17748.070000][    C0] ", False),
    ],
)
def test_line_fast_path_agrees_with_the_general_path(wrapper: str, fast_expected: bool) -> None:
    unwrapper = Unwrapper(reference=datetime(2026, 11, 25, 12, 0))
    fast_count = 0
    for corpus_line in CORPUS_LINES:
        line = wrapper + unwrap(corpus_line).message
        fast = parser_module._fast_line(line, unwrapper)
        timestamp, host, uptime, message = unwrapper.unwrap(line)
        general = parser_module._slow_parse(line, message, timestamp, host, uptime)
        assert general is not None
        if fast is not None:
            fast_count += 1
            assert fast == general, line
    assert (fast_count >= 10) is fast_expected


# -- IPv4 ----------------------------------------------------------------------------------------
def test_forwarded_icmp_echo_with_glued_prefix() -> None:
    record, line = one("fwd-icmp", "LEN=84 ")
    assert record.prefix == f"{TAG}:fwd-icmp:"  # glued to IN= with no space
    assert (record.in_iface, record.out_iface) == ("r0", "r1")
    assert (record.mac_dst, record.mac_src, record.ethertype) == (MAC_RTR0, MAC_CLI, 0x0800)
    assert (record.family, record.src, record.dst) == (4, CLI4, SRV4)
    assert (record.length, record.ttl, record.tos) == (84, 63, 0)
    assert record.ip_flags == frozenset({"DF"})
    assert record.proto == "ICMP"
    assert (record.icmp_type, record.icmp_code) == (8, 0)
    assert record.ip_id == number(line, "ID", 0)
    assert record.icmp_id == number(line, "ID", 1)  # the second ID= is the echo identifier
    assert record.icmp_seq == 1
    assert record.spt is None and record.tcp_flags is None and record.inner is None
    assert record.truncated is False


def test_ip_options_are_skipped_not_misread() -> None:
    record, _ = one("srv-echo", "OPT (")
    assert (record.src, record.dst, record.proto, record.icmp_type) == (CLI4, SRV4, "ICMP", 8)
    assert record.length == 124 and record.icmp_seq == 1


def test_tcp_syn_with_sequence_options_and_mac_decode() -> None:
    record, line = one("fwd-syn", "DPT=7000", "SRC=10.77")
    assert (record.mac_src, record.mac_dst, record.ethertype) == (MAC_CLI, MAC_RTR0, 0x0800)
    assert (record.src, record.dst, record.proto) == (CLI4, SRV4, "TCP")
    assert record.spt == number(line, "SPT") and record.dpt == 7000
    assert record.tcp_flags == frozenset({"SYN"})
    assert record.seq == number(line, "SEQ") and record.ack == 0
    assert record.window == 64480 and record.length == 60


def test_tcp_ack_key_is_not_the_ack_flag() -> None:
    record, line = one("cli-in-tcp", "SRC=10.77", "ACK SYN")
    assert record.tcp_flags == frozenset({"ACK", "SYN"})
    assert record.ack == number(line, "ACK") and record.seq == number(line, "SEQ")
    assert record.spt == 7000 and record.src == SRV4 and record.ip_id == 0


def test_tcp_rst_and_fin() -> None:
    rst, _ = one("cli-in-tcp", "SRC=10.77", "RST")
    assert rst.tcp_flags == frozenset({"ACK", "RST"}) and rst.spt == 7001 and rst.window == 0
    fin, _ = one("cli-in-tcp", "SRC=10.77", "FIN")
    assert fin.tcp_flags == frozenset({"ACK", "FIN"})


def test_output_packet_with_uid_gid() -> None:
    record, _ = one("cli-out-uid", "SRC=10.77")
    assert (record.in_iface, record.out_iface) == (None, "c0")
    assert record.mac_src is None and record.mac_dst is None and record.ethertype is None
    assert (record.uid, record.gid) == (0, 0)
    assert record.tcp_flags == frozenset({"SYN"}) and record.dpt == 7000


def test_udp_second_len_is_not_the_ip_length() -> None:
    record, line = one("fwd-udp")
    assert record.proto == "UDP" and record.length == 34  # not the UDP LEN=14
    assert (record.spt, record.dpt) == (number(line, "SPT"), 9)
    assert (record.in_iface, record.out_iface) == ("r0", "r1")


def test_mark() -> None:
    record, _ = one("udp-mark")
    assert record.mark == 0x2A and record.proto == "UDP" and record.dpt == 9


def test_nft_flags_ether() -> None:
    record, _ = one("ether")
    assert (record.mac_src, record.mac_dst, record.ethertype) == (MAC_RTR1, MAC_SRV, 0x0800)
    assert record.mark == 0x2A and record.src == CLI4


def test_prefix_with_spaces_quotes_and_none() -> None:
    spaced = parse_line(next(line for line in CORPUS_LINES if " spaced prefix: IN=" in line))
    assert spaced is not None and spaced.prefix == f"{TAG} spaced prefix:"
    quoted = parse_line(next(line for line in CORPUS_LINES if '"IN=' in line or '" IN=' in line))
    assert quoted is not None and quoted.prefix == f"{TAG}:quoted"
    glued = parse_line(next(line for line in CORPUS_LINES if f"] {TAG}IN=" in line))
    assert glued is not None and glued.prefix == TAG and glued.in_iface == "s0"
    bare = parse_line(
        "IN=eth0 OUT= SRC=1.2.3.4 DST=5.6.7.8 LEN=20 TOS=0x00 PREC=0x00 TTL=1 ID=1 PROTO=47 "
    )
    assert bare is not None and bare.prefix is None
    tricky = parse_line("LOGIN=x IN=eth0 OUT= SRC=1.2.3.4 DST=5.6.7.8 LEN=20 TOS=0x00 PREC=0x00 "
                        "TTL=1 ID=1 PROTO=47 ")  # fmt: skip
    assert tricky is not None and tricky.prefix == "LOGIN=x" and tricky.in_iface == "eth0"


def test_fragments() -> None:
    first, line = one("fwd-icmp", "LEN=1500", " MF ")
    assert first.ip_flags == frozenset({"MF"}) and first.frag_offset is None
    assert first.icmp_type == 8 and first.icmp_id == number(line, "ID", 1)
    middle, _ = one("fwd-frag", "FRAG:185")
    assert middle.ip_flags == frozenset({"MF"})
    assert middle.frag_offset == 185 * 8  # bytes; IPv4 logs 8-byte units
    assert middle.proto == "ICMP" and middle.icmp_type is None and middle.icmp_id is None
    last, _ = one("fwd-frag", "FRAG:370")
    assert last.ip_flags == frozenset() and last.frag_offset == 2960 and last.length == 68


def test_icmp_time_exceeded_keeps_outer_fields() -> None:
    record, line = one("icmp-err", "TYPE=11")
    assert (record.src, record.dst, record.proto) == (RTR4_CLI, CLI4, "ICMP")
    assert (record.icmp_type, record.icmp_code, record.length, record.tos) == (11, 0, 112, 0xC0)
    assert record.ip_id == number(line, "ID", 0)
    inner = record.inner
    assert inner is not None
    assert (inner.src, inner.dst, inner.proto, inner.ttl) == (CLI4, SRV4, "ICMP", 1)
    assert (inner.icmp_type, inner.icmp_id, inner.icmp_seq) == (8, number(line, "ID", 2), 1)
    assert inner.ip_id == number(line, "ID", 1)
    assert inner.raw.startswith("SRC=10.77.1.2 ") and inner.raw.endswith("SEQ=1")
    assert record.mtu is None and inner.inner is None


def test_icmp_frag_needed_mtu_after_the_bracket() -> None:
    record, _ = one("icmp-err", "TYPE=3 CODE=4")
    assert (record.icmp_type, record.icmp_code, record.mtu) == (3, 4, 1280)
    assert (record.src, record.dst, record.length) == (RTR4_CLI, CLI4, 576)
    assert record.inner is not None and record.inner.mtu is None
    assert (record.inner.length, record.inner.ip_flags) == (1428, frozenset({"DF"}))


def test_icmp_port_unreachable_quoting_udp() -> None:
    record, line = one("icmp-err", "TYPE=3 CODE=3")
    assert (record.src, record.dst, record.proto, record.spt) == (SRV4, CLI4, "ICMP", None)
    inner = record.inner
    assert inner is not None
    assert (inner.src, inner.dst, inner.proto, inner.dpt) == (CLI4, SRV4, "UDP", 9)
    assert inner.spt == number(line, "SPT") and inner.length == 34


@pytest.mark.parametrize(("proto", "spi"), [("47", None), ("ESP", "0x1001"), ("AH", "0x2002")])
def test_other_protocols_and_their_icmp_errors(proto: str, spi: str | None) -> None:
    record, _ = one("srv-raw", f"PROTO={proto} ")
    assert record.proto == proto and record.spt is None and record.length in (40, 44)
    assert (record.src, record.dst, record.family) == (CLI4, SRV4, 4)
    assert record.spi == (None if spi is None else int(spi, 16))
    error, _ = one("icmp-err", "CODE=2", f"PROTO={proto} ")
    assert (error.icmp_type, error.icmp_code, error.proto) == (3, 2, "ICMP")
    assert error.inner is not None and error.inner.proto == proto
    assert error.inner.spi == record.spi and error.spi is None


def test_incomplete_tcp_header() -> None:
    record, _ = one("srv-tcp-odd", "INCOMPLETE [4 bytes]")
    assert record.proto == "TCP" and record.truncated is True
    assert record.spt is None and record.tcp_flags is None and record.length == 24


def test_arp_family_line() -> None:
    record, _ = one("arp")
    assert record.family is None and record.proto == "ARP" and record.ethertype == 0x0806
    assert (record.src, record.dst) == (RTR4_SRV, SRV4)
    assert (record.mac_src, record.mac_dst) == (MAC_RTR1, "00:00:00:00:00:00")
    assert record.ip_flags is None and record.ttl is None and record.in_iface == "s0"


def test_bridge() -> None:
    nft, _ = one("br-nft")
    assert (nft.in_iface, nft.out_iface, nft.physin, nft.physout) == ("b1", "b2", None, None)
    assert nft.mac_src == "02:00:00:00:03:01" and nft.icmp_type == 8
    ipt, _ = one("bridged", "PHYSIN=b1")
    assert (ipt.in_iface, ipt.out_iface, ipt.physin, ipt.physout) == ("br0", "br0", "b1", "b2")
    assert ipt.src == IPv4Address("10.77.3.1") and ipt.proto == "ICMP"


# -- IPv6 ----------------------------------------------------------------------------------------
def test_ipv6_forwarded_echo() -> None:
    record, line = one("fwd6-icmp", "LEN=104")
    assert (record.family, record.src, record.dst) == (6, CLI6, SRV6)
    assert isinstance(record.src, IPv6Address)
    assert (record.length, record.ttl, record.tos) == (104, 63, 0)
    assert record.flowlabel == number(line, "FLOWLBL")
    assert record.ip_id is None and record.ip_flags == frozenset()
    assert (record.proto, record.icmp_type, record.icmp_seq) == ("ICMPv6", 128, 1)
    assert record.icmp_id == number(line, "ID")
    assert record.ethertype == 0x86DD


def test_ipv6_fragments() -> None:
    first, line = one("v6-frag", "FRAG:0 INCOMPLETE", "TYPE=128")
    assert first.frag_offset == 0 and first.ip_flags == frozenset({"MF"})
    assert first.ip_id == int(re.search(r"ID:([0-9a-f]{8})", line)[1], 16)  # type: ignore[index]
    assert first.icmp_type == 128 and first.icmp_id == number(line, "ID")
    middle, _ = one("v6-frag", "FRAG:1448 INCOMPLETE")
    assert middle.frag_offset == 1448 and middle.ip_flags == frozenset({"MF"})
    assert middle.proto == "ICMPv6" and middle.icmp_type is None
    last, _ = one("v6-frag", "FRAG:2896")
    assert last.frag_offset == 2896 and last.ip_flags == frozenset()


def test_ipv6_fragment_header_inside_opt_with_flags_all() -> None:
    record, line = one("srv6-echo", "OPT ( FRAG:0")
    assert (record.mac_src, record.mac_dst, record.ethertype) == (MAC_RTR1, MAC_SRV, 0x86DD)
    assert record.ip_flags == frozenset({"MF"}) and record.frag_offset == 0
    assert record.ip_id == int(re.search(r"ID:([0-9a-f]{8})", line)[1], 16)  # type: ignore[index]
    assert (record.proto, record.icmp_type, record.icmp_seq) == ("ICMPv6", 128, 1)


def test_icmpv6_errors() -> None:
    hop, _ = one("icmp6-err", "TYPE=3 ")
    assert (hop.src, hop.dst, hop.icmp_type, hop.icmp_code) == (RTR6_CLI, CLI6, 3, 0)
    assert hop.inner is not None and hop.inner.ttl == 1 and hop.inner.icmp_type == 128
    too_big, _ = one("icmp6-err", "TYPE=2 ", "TYPE=128")
    assert (too_big.icmp_type, too_big.mtu, too_big.length) == (2, 1280, 1280)
    inner = too_big.inner
    assert inner is not None and (inner.src, inner.dst, inner.length) == (CLI6, SRV6, 1496)
    assert inner.ip_flags == frozenset({"MF"}) and inner.frag_offset == 0
    unreachable, line = one("icmp6-err", "TYPE=1 CODE=4")
    assert (unreachable.src, unreachable.proto, unreachable.mtu) == (SRV6, "ICMPv6", None)
    assert unreachable.inner is not None and unreachable.inner.proto == "UDP"
    assert unreachable.inner.spt == number(line, "SPT") and unreachable.inner.dpt == 9


def test_ipv6_tcp_and_unknown_protocol() -> None:
    syn, line = one("fwd6-syn", "DPT=7000")
    assert (syn.src, syn.proto, syn.tcp_flags) == (CLI6, "TCP", frozenset({"SYN"}))
    assert syn.seq == number(line, "SEQ") and syn.ack == 0
    raw, _ = one("srv6-raw")
    assert raw.proto == "47" and raw.family == 6 and raw.length == 64


def test_line_cut_at_the_kernel_limit() -> None:
    record, line = one("srv6-exthdr")
    assert len(unwrap(line).message) >= parser_module.TRUNCATION_LENGTH
    assert record.truncated is True
    assert (record.src, record.dst, record.length, record.flowlabel) == (CLI6, SRV6, 1000, 0)
    assert record.proto is None  # cut before PROTO=


# -- lines written by hand (shapes the corpus cannot capture) ------------------------------------
V4 = ("IN=eth0 OUT= MAC=00:11:22:33:44:55:66:77:88:99:aa:bb:08:00 SRC=198.51.100.9 "
      "DST=192.0.2.1 LEN=60 TOS=0x10 PREC=0x20 TTL=50 ID=77 ")  # fmt: skip


def test_cut_line_drops_the_partial_last_field() -> None:
    tcp = "CE DF PROTO=TCP SPT=1 DPT=2 WINDOW=5 RES=0x00 SYN URGP=0 OPT ("
    record = parse_line(("P " + V4 + tcp + "A" * 900)[:1016])
    assert record is not None and record.truncated is True
    assert record.tcp_flags == frozenset({"SYN"}) and record.ip_flags == frozenset({"CE", "DF"})
    tail = "PROTO=UDP SPT=1 DPT=2 LEN=40 MARK=0x1234"
    full = "X" * (1014 - len(V4) - len(tail)) + V4 + tail
    cut_value = parse_line(full[:1012])
    assert cut_value is not None and cut_value.truncated is True
    assert cut_value.mark is None  # "MARK=0x12" was cut: not kept as a wrong value
    assert cut_value.dpt == 2


def test_cut_inside_the_quoted_packet() -> None:
    line = ("A" * 700 + V4 + "PROTO=ICMP TYPE=3 CODE=4 [SRC=192.0.2.1 DST=198.51.100.9 LEN=1500 "
            "TOS=0x00 PREC=0x00 TTL=64 ID=9 DF PROTO=TCP SPT=443 DPT=40000 WINDOW=7 RES=0x00 "
            "ACK URGP=0 OPT (0101080A00000000000000000101080A00000000000000000000000000000000)")
    record = parse_line(line[:1016])
    assert record is not None and record.truncated is True
    assert record.mtu is None and record.src == IPv4Address("198.51.100.9")
    assert record.inner is not None and record.inner.truncated is True
    assert record.inner.dpt == 40000


def test_tos_prec_combined_and_ce_flag() -> None:
    record = parse_line(V4 + "CE PROTO=UDP SPT=53 DPT=5353 LEN=40 ")
    assert record is not None
    assert record.tos == 0x30 and record.ip_flags == frozenset({"CE"})
    assert (record.mac_dst, record.mac_src) == ("00:11:22:33:44:55", "66:77:88:99:aa:bb")


def test_inner_tcp_incomplete_and_redirect_gateway() -> None:
    record = parse_line(
        V4 + "PROTO=ICMP TYPE=5 CODE=1 GATEWAY=192.0.2.254 [SRC=192.0.2.1 DST=203.0.113.5 "
        "LEN=40 TOS=0x00 PREC=0x00 TTL=63 ID=1 PROTO=TCP INCOMPLETE [8 bytes] ] "
    )
    assert record is not None and record.truncated is False
    assert record.gateway == IPv4Address("192.0.2.254") and record.icmp_type == 5
    assert record.inner is not None and record.inner.truncated is True
    assert record.inner.proto == "TCP" and record.inner.dst == IPv4Address("203.0.113.5")


def test_icmp_incomplete_and_parameter_problem() -> None:
    short = parse_line(V4 + "PROTO=ICMP INCOMPLETE [3 bytes] ")
    assert short is not None and short.truncated and short.proto == "ICMP"
    assert short.icmp_type is None
    param = parse_line(V4 + "PROTO=ICMP TYPE=12 CODE=0 PARAMETER=20 [SRC=192.0.2.1 "
                       "DST=198.51.100.9 LEN=20 TOS=0x00 PREC=0x00 TTL=1 ID=2 PROTO=47 ] ")
    assert param is not None and param.inner is not None and param.inner.proto == "47"
    assert param.icmp_type == 12


def test_inner_truncated_marker() -> None:
    record = parse_line(V4 + "PROTO=ICMP TYPE=3 CODE=1 [TRUNCATED] ")
    assert record is not None and record.inner is not None
    assert record.inner.truncated is True and record.inner.src is None
    assert record.truncated is False and record.icmp_code == 1


def test_tcp_non_first_fragment_and_udplite_and_ae_flag() -> None:
    frag = parse_line(V4.replace("ID=77 ", "ID=77 MF FRAG:3 ") + "PROTO=TCP ")
    assert frag is not None and frag.tcp_flags is None and frag.frag_offset == 24
    lite = parse_line(V4 + "PROTO=UDPLITE SPT=1 DPT=2 LEN=9 ")
    assert lite is not None and (lite.proto, lite.spt, lite.dpt) == ("UDPLITE", 1, 2)
    ae = parse_line(V4 + "PROTO=TCP SPT=1 DPT=2 WINDOW=3 RES=0x00 AE CWR ECE SYN URGP=0 ")
    assert ae is not None and ae.tcp_flags == frozenset({"AE", "CWR", "ECE", "SYN"})


def test_ipv6_esp_and_unknown_ext_header() -> None:
    head = ("IN=eth0 OUT= MAC= SRC=2001:0db8:0000:0000:0000:0000:0000:0001 "
            "DST=2001:0db8:0000:0000:0000:0000:0000:0002 LEN=100 TC=8 HOPLIMIT=5 FLOWLBL=7 ")
    esp = parse_line(head + "OPT ( ESP SPI=0x100 )")
    assert esp is not None and esp.proto == "ESP" and esp.tos == 8 and esp.ttl == 5
    assert esp.spi == 0x100
    assert esp.mac_src is None and esp.ethertype is None  # MAC= empty (tun device)
    bare = parse_line(head)
    assert bare is not None and bare.proto is None and bare.truncated is False
    assert bare.dst == ip_address("2001:db8::2")


def test_vlan_mac_header() -> None:
    record = parse_line(
        "IN=eth0.5 OUT= MAC=00:11:22:33:44:55:66:77:88:99:aa:bb:81:00:00:05:08:00 "
        "SRC=10.0.0.1 DST=10.0.0.2 LEN=20 TOS=0x00 PREC=0x00 TTL=1 ID=1 PROTO=47 "
    )
    assert record is not None and record.ethertype == 0x0800
    assert record.mac_src == "66:77:88:99:aa:bb"


def test_ulogd_logemu() -> None:
    record = parse_line(
        "Nov 25 04:17:23 gw DROP-IN IN=eth0 OUT= MAC=00:11:22:33:44:55:66:77:88:99:aa:bb:08:00 "
        "SRC=198.51.100.9 DST=192.0.2.1 LEN=40 TOS=00 PREC=0x00 TTL=244 ID=54321 "
        "PROTO=TCP SPT=40000 DPT=23 SEQ=1 ACK=0 WINDOW=1024 SYN URGP=0 MARK=0"
    )
    assert record is not None
    assert (record.host, record.prefix, record.in_iface) == ("gw", "DROP-IN", "eth0")
    assert (record.tos, record.ttl, record.dpt, record.seq) == (0, 244, 23, 1)
    assert record.tcp_flags == frozenset({"SYN"}) and record.mark == 0
    assert record.timestamp is not None and (record.timestamp.month, record.timestamp.day) == (
        11,
        25,
    )
    v6 = parse_line(
        "Nov 25 04:17:23 gw v6drop IN=eth0 OUT= MAC= SRC=2001:db8::1 DST=2001:db8::2 LEN=72 "
        "TC=0 HOPLIMIT=64 FLOWLBL=0 PROTO=ICMPv6 TYPE=128 CODE=0 ID=1 SEQ=2 "
    )
    assert v6 is not None and v6.src == IPv6Address("2001:db8::1") and v6.icmp_seq == 2
    icmp = parse_line(
        "Nov 25 04:17:23 gw x IN=eth0 OUT= MAC= SRC=1.2.3.4 DST=5.6.7.8 LEN=56 TOS=00 "
        "PREC=0xC0 TTL=64 ID=0 PROTO=ICMP TYPE=3 CODE=4 MTU=1400 "
    )
    assert icmp is not None and (icmp.mtu, icmp.tos, icmp.inner) == (1400, 0xC0, None)


@pytest.mark.parametrize(
    ("line", "host", "timestamp", "uptime"),
    [
        (
            "Nov 25 04:17:23 fw kernel: [  102.710000] " + V4 + "PROTO=47 ",
            "fw",
            datetime(2026, 11, 25, 4, 17, 23),
            102.71,
        ),
        (
            "2026-11-24T10:00:05.114797+01:00 fw kernel: [17748.070000][    C0] " + V4 + "PROTO=47",
            "fw",
            datetime.fromisoformat("2026-11-24T10:00:05.114797+01:00"),
            17748.07,
        ),
        ("[Tue Nov 24 10:00:03 2026] " + V4 + "PROTO=47 ", None, datetime(2026, 11, 24, 10, 0, 3),
         None),
        ("[  686.000667] " + V4 + "PROTO=47 ", None, None, 686.000667),
        ("Nov 25 04:17:23 fw user.info kernel: " + V4 + "PROTO=47 ", "fw",
         datetime(2026, 11, 25, 4, 17, 23), None),
    ],
)
def test_wrappers_around_a_packet(
    line: str, host: str | None, timestamp: datetime | None, uptime: float | None
) -> None:
    record = next(iter(iter_records([line], reference=datetime(2026, 11, 25, 12, 0))))
    assert (record.host, record.timestamp, record.uptime) == (host, timestamp, uptime)
    assert record.src == IPv4Address("198.51.100.9") and record.proto == "47"
    assert record.prefix is None


def test_journal_json_message_as_text_and_as_bytes() -> None:
    message = "nfkit:input:drop " + V4 + "PROTO=UDP SPT=1 DPT=2 LEN=8 "
    as_text = (
        '{"__REALTIME_TIMESTAMP":"1764044243000000","_HOSTNAME":"fw","_TRANSPORT":"kernel",'
        f'"MESSAGE":"{message}"}}'
    )
    as_bytes = as_text.replace(f'"{message}"', str(list(message.encode())))
    for line in (as_text, as_bytes):
        record = parse_line(line)
        assert record is not None, line
        assert record.host == "fw" and record.prefix == "nfkit:input:drop"
        assert record.timestamp is not None
        assert record.timestamp.isoformat() == "2025-11-25T04:17:23+00:00"
        assert record.dpt == 2
    assert parse_line('{"MESSAGE":null,"_HOSTNAME":"fw"}') is None


def test_syslog_year_across_new_year() -> None:
    lines = [
        "Dec 31 23:59:59 fw kernel: " + V4 + "PROTO=47 ",
        "Jan  1 00:00:01 fw kernel: " + V4 + "PROTO=47 ",
    ]
    stamps = [r.timestamp for r in iter_records(lines, reference=datetime(2027, 1, 2, 8, 0))]
    assert stamps == [datetime(2026, 12, 31, 23, 59, 59), datetime(2027, 1, 1, 0, 0, 1)]


def test_generated_benchmark_log_parses_completely() -> None:
    spec = importlib.util.spec_from_file_location(
        "nfkit_genlog", Path(__file__).resolve().parent.parent / "benchmarks" / "genlog.py"
    )
    assert spec is not None and spec.loader is not None
    genlog = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(genlog)
    for wrapper in genlog.WRAPPERS:
        lines = list(genlog.generate_lines(3000, seed=5, sources=300, wrapper=wrapper))
        stream = iter_records(lines, reference=datetime(2026, 11, 25))
        records = list(stream)
        assert stream.unparsed == 0 and len(records) == 3000
        for line, record in zip(lines, records, strict=True):
            assert record.src == ip_address(re.search(r"SRC=(\S+)", line)[1])  # type: ignore[index]
            assert record.proto == re.search(r"PROTO=(\S+)", line)[1]  # type: ignore[index]
            if record.proto in ("TCP", "UDP") and "SPT=" in line:
                assert record.spt == number(line, "SPT") and record.dpt == number(line, "DPT")
            if wrapper != "dmesg":
                assert record.timestamp is not None and record.host == "fw"
        assert {r.proto for r in records} >= {"TCP", "UDP", "ICMP", "ICMPv6"}
        assert any(r.inner is not None and r.mtu == 1400 for r in records)


# -- iter_records: sources, counters, strict -------------------------------------------------------
def test_iter_records_from_gzip_binary_file_and_text(tmp_path: Path) -> None:
    text = "".join(line + "\n" for line in CORPUS_LINES[:5]) + "not a packet\n\n"
    gz = tmp_path / "kern.log.gz"
    gz.write_bytes(gzip.compress(text.encode()))
    plain = tmp_path / "kern.log"
    plain.write_text(text)
    expected = [parse_line(line) for line in CORPUS_LINES[:5]]
    for source in (gz, str(plain), io.BytesIO(text.encode()), io.StringIO(text),
                   text.splitlines(), [line.encode() for line in text.splitlines()]):  # fmt: skip
        stream = iter_records(source)
        assert list(stream) == expected
        assert (stream.lines, stream.records, stream.skipped, stream.malformed) == (7, 5, 1, 0)
        assert stream.unparsed == 1


def test_malformed_packet_line_counted_and_strict_raises() -> None:
    bad = "IN=eth0 OUT= SRC=300.1.2.3 DST=1.2.3.4 LEN=20 TOS=0x00 PREC=0x00 TTL=1 ID=1 PROTO=6 "
    assert parse_line(bad) is None
    stream = iter_records([CORPUS_LINES[0], bad, "hello"])
    assert len(list(stream)) == 1
    assert (stream.malformed, stream.skipped, stream.unparsed) == (1, 1, 2)
    with pytest.raises(LogFormatError) as caught:
        list(iter_records([CORPUS_LINES[0], bad], strict=True, name="kern.log"))
    assert caught.value.lineno == 2 and str(caught.value).startswith("kern.log:2: error:")
    with pytest.raises(LogFormatError) as caught:
        list(iter_records([CORPUS_LINES[0], "", "usb 1-1: new device"], strict=True))
    assert caught.value.lineno == 3


def test_non_packet_lines_give_none() -> None:
    for line in ("", "Nov 25 04:17:23 fw sshd[1]: Accepted key", "[    1.0] Linux version",
                 "{}", "[]", "IN=", "LOGIN=root"):  # fmt: skip
        assert parse_line(line) is None


def test_docs_example_runs(capsys: pytest.CaptureFixture[str]) -> None:
    doc = (Path(__file__).resolve().parent.parent / "docs" / "logs.md").read_text()
    block = re.search(r"```python\n(.*?)```", doc, re.S)
    assert block is not None
    code = block[1].replace('"/var/log/kern.log.1.gz"', repr(str(CORPUS)))
    exec(compile(code, "docs/logs.md", "exec"), {})
    assert capsys.readouterr().out.split() == [str(len(CORPUS_LINES))] * 2 + ["0"]


@pytest.mark.parametrize("chunk", [1, 2, 7, 64, 1 << 16])
def test_file_lines_across_chunk_boundaries(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chunk: int
) -> None:
    # Lines longer than a chunk, CRLF split between two chunks, a last line without a newline.
    text = "a\r\nbb\n" + "c" * 150 + "\r\n\r\n" + "d" * 20 + "\ne\r\nlast\r"
    path = tmp_path / "lines.log"
    path.write_bytes(text.encode())
    monkeypatch.setattr(parser_module, "_CHUNK", chunk)
    expected = ["a", "bb", "c" * 150, "", "d" * 20, "e", "last"]
    assert list(parser_module._FileLines(path)) == expected
    corpus = tmp_path / "corpus.log"
    corpus.write_text("\r\n".join(CORPUS_LINES[:6]) + "\r\n")
    records = list(iter_records(corpus))
    assert [r.raw for r in records] == CORPUS_LINES[:6]
