"""The quick readers (nfkit.logs.fastparse, fastmessage) give exactly the token reader's records.

Every test is differential: a line the quick reader accepts is read again by the token reader
(``tokenreader._slow_parse`` after ``Unwrapper.unwrap``) and the two records must agree field by
field, the packet an ICMP error quotes (``inner``) included. Tests that name a shape also check
that the quick reader took it, so a regression that silently sends it to the token reader shows.
"""

from __future__ import annotations

import importlib.util
import json
import re
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nfkit import LogRecord, parse_line
from nfkit.logs import fastmessage, fastparse, tokenreader
from nfkit.logs.record import FIELD_NAMES
from nfkit.logs.wrappers import Unwrapper

REPO = Path(__file__).resolve().parent.parent
CORPUS = (REPO / "tests" / "data" / "kernel-corpus.log").read_text().splitlines()
REFERENCE = datetime(2026, 11, 25, 12, 0)
WRAPPERS = (
    "Nov 25 04:17:23 fw kernel: [  102.710000] ",
    "2026-11-24T10:00:05.114797+01:00 fw kernel: ",
    "[  686.000667] ",
)
V4 = (
    "IN=eth0 OUT= MAC=00:11:22:33:44:55:66:77:88:99:aa:bb:08:00 SRC=198.51.100.9 "
    "DST=192.0.2.1 LEN=576 TOS=0x00 PREC=0xC0 TTL=50 ID=77 "
)
V6 = (
    "IN=eth0 OUT= MAC=00:11:22:33:44:55:66:77:88:99:aa:bb:86:dd "
    "SRC=2001:0db8:0000:0000:0000:0000:0000:0001 DST=2001:0db8:0000:0000:0000:0000:0000:0002 "
    "LEN=1280 TC=0 HOPLIMIT=64 FLOWLBL=7 "
)
INNER4 = "SRC=192.0.2.1 DST=198.51.100.9 LEN=1500 TOS=0x00 PREC=0x00 TTL=64 ID=9 DF "
UDP = "PROTO=UDP SPT=1 DPT=2 LEN=8 "
INNER6 = (
    "SRC=2001:0db8:0000:0000:0000:0000:0000:0002 DST=2001:0db8:0000:0000:0000:0000:0000:0001 "
    "LEN=1240 TC=0 HOPLIMIT=63 FLOWLBL=99 "
)


def fields(record: LogRecord | None) -> dict[str, Any] | None:
    """Every field by name, ``inner`` as its own field dict (readable assertion diffs)."""
    if record is None:
        return None
    out = {name: getattr(record, name) for name in FIELD_NAMES}
    out["inner"] = fields(record.inner)
    return out


def general(line: str, unwrapper: Unwrapper) -> LogRecord | None:
    """The token reader's record for ``line`` (the reference every quick reader must match)."""
    timestamp, host, uptime, message = unwrapper.unwrap(line)
    if "IN=" not in message:
        return None
    try:
        return tokenreader._slow_parse(line, message, timestamp, host, uptime)
    except (ValueError, IndexError, KeyError):
        return None


def check_line(line: str, unwrapper: Unwrapper | None = None) -> bool:
    """Compare the line-level quick reader with the token reader; True if it took the line."""
    unwrapper = unwrapper or Unwrapper(reference=REFERENCE)
    try:
        fast = fastparse._fast_line(line, unwrapper)
    except (ValueError, IndexError, KeyError):
        fast = None  # parse_line counts it malformed; the general path decides then
    if fast is None:
        return False
    assert fields(fast) == fields(general(line, unwrapper)), line
    return True


def check_message(message: str) -> bool:
    """Compare the message-level quick reader with the token reader; True if it took it."""
    padded = message if message.endswith(" ") else message + " "
    try:
        fast = fastmessage._fast_parse(message, padded, None, None, None)
    except (ValueError, IndexError, KeyError):
        fast = None
    if fast is None:
        return False
    slow = tokenreader._slow_parse(message, message, None, None, None)
    assert fields(fast) == fields(slow), message
    return True


# -- the kernel corpus ---------------------------------------------------------------------------
@pytest.mark.parametrize("wrapper", WRAPPERS)
def test_every_corpus_line_agrees(wrapper: str) -> None:
    unwrapper = Unwrapper(reference=REFERENCE)
    taken = [check_line(wrapper + Unwrapper().unwrap(line).message, unwrapper) for line in CORPUS]
    assert sum(taken) >= 20


def test_every_corpus_message_agrees() -> None:
    assert sum(check_message(Unwrapper().unwrap(line).message) for line in CORPUS) >= 20


def test_corpus_icmp_errors_take_the_quick_path() -> None:
    errors = [line for line in CORPUS if " [SRC=" in line]
    assert len(errors) >= 8
    taken = []
    for line in errors:
        message = Unwrapper().unwrap(line).message
        if check_line(WRAPPERS[0] + message):
            taken.append(line)
            assert check_message(message), line
    # All but the quoted IPv6 fragments (FRAG:/INCOMPLETE ID: inside the brackets).
    assert len(taken) == len([line for line in errors if "INCOMPLETE ID:" not in line])
    records = [parse_line(line) for line in taken]
    assert all(r is not None and r.inner is not None for r in records)
    assert {r.inner.proto for r in records if r and r.inner} >= {"ICMP", "UDP", "ESP", "AH", "47"}
    assert any(r is not None and r.mtu == 1280 for r in records)


# -- shapes written by hand ----------------------------------------------------------------------
@pytest.mark.parametrize(
    "message",
    [
        # frag-needed quoting TCP, with the outer packet's UID/GID/MARK after MTU=
        V4 + "PROTO=ICMP TYPE=3 CODE=4 [" + INNER4 + "PROTO=TCP SPT=443 DPT=40000 WINDOW=502 "
        "RES=0x00 ACK PSH URGP=0 ] MTU=1400 UID=0 GID=0 MARK=0x1f ",
        V4 + "PROTO=ICMP TYPE=3 CODE=4 [" + INNER4 + "PROTO=TCP SPT=443 DPT=40000 SEQ=1 ACK=2 "
        "WINDOW=502 RES=0x00 ACK URGP=0 OPT (0101080A0000000000000000) ] MTU=1400 ",
        V4 + "PROTO=ICMP TYPE=3 CODE=3 [" + INNER4 + "PROTO=UDPLITE SPT=1 DPT=2 LEN=9 ] ",
        V4 + "PROTO=ICMP TYPE=11 CODE=0 [" + INNER4 + "PROTO=ICMP TYPE=8 CODE=0 ID=5 SEQ=1 ] ",
        V4 + "PROTO=ICMP TYPE=3 CODE=1 [" + INNER4 + "PROTO=ICMP TYPE=3 CODE=1 ] ",
        V4 + "PROTO=ICMP TYPE=3 CODE=2 [" + INNER4 + "PROTO=ESP SPI=0xdeadbeef ] ",
        V4 + "PROTO=ICMP TYPE=3 CODE=2 [" + INNER4 + "MF PROTO=AH SPI=0x0 ] ",
        V4 + "PROTO=ICMP TYPE=4 CODE=0 [" + INNER4 + "CE PROTO=132 ] ",
        V6 + "PROTO=ICMPv6 TYPE=2 CODE=0 [" + INNER6 + "PROTO=TCP SPT=22 DPT=4000 WINDOW=1 "
        "RES=0x00 SYN URGP=0 ] MTU=1280 ",
        V6 + "PROTO=ICMPv6 TYPE=1 CODE=4 [" + INNER6 + "PROTO=UDP SPT=5 DPT=9 LEN=14 ] MARK=0x2 ",
        V6 + "PROTO=ICMPv6 TYPE=3 CODE=0 [" + INNER6 + "PROTO=ICMPv6 TYPE=128 CODE=0 ID=1 SEQ=2 ] ",
        V4 + "PROTO=ESP SPI=0x1234 ",
        V4 + "DF PROTO=AH SPI=0xffffffff UID=1000 GID=1000 ",
    ],
)
def test_quick_shapes_agree_and_are_taken(message: str) -> None:
    assert check_line(WRAPPERS[0] + message)
    assert check_line(WRAPPERS[2] + message.rstrip())
    assert check_message(message)


@pytest.mark.parametrize(
    "message",
    [
        # shapes left to the token reader: they must still agree (here: both give the same)
        V4 + "PROTO=ICMP TYPE=5 CODE=1 GATEWAY=192.0.2.254 [" + INNER4 + "PROTO=47 ] ",
        V4 + "PROTO=ICMP TYPE=12 CODE=0 PARAMETER=20 [" + INNER4 + "PROTO=47 ] ",
        V4 + "PROTO=ICMP TYPE=3 CODE=4 [" + INNER4 + "PROTO=TCP INCOMPLETE [8 bytes] ] MTU=1 ",
        V4 + "PROTO=ICMP TYPE=3 CODE=4 [" + INNER4 + "MF FRAG:2 PROTO=TCP ] MTU=1400 ",
        V4 + "PROTO=ICMP TYPE=3 CODE=4 [SRC=2001:db8::1 DST=2001:db8::2 LEN=1 TOS=0x00 "
        "PREC=0x00 TTL=1 ID=1 PROTO=47 ] ",
        V4 + "PROTO=ICMP TYPE=3 CODE=1 [TRUNCATED] ",
        V4 + "PROTO=ICMP TYPE=3 CODE=1 ",  # ulogd: no quoted packet
        V4 + "PROTO=ICMP TYPE=8 CODE=0 [" + INNER4 + "PROTO=47 ] ",  # echo does not quote
        V4 + "PROTO=ICMP TYPE=3 CODE=1 ID=1 SEQ=1 [" + INNER4 + "PROTO=47 ] ",
        V4 + "PROTO=ICMP TYPE=3 CODE=1 [" + INNER4 + "PROTO=47 ] [" + INNER4 + "PROTO=47 ] ",
        V4 + "PROTO=ICMP TYPE=3 CODE=1 [" + INNER4 + "PROTO=47 UID=0 GID=0 ] ",
        V4 + "PROTO=ESP SPI=0xABC ",
        V4 + "PROTO=ESP ",
        V6 + "PROTO=ICMP TYPE=3 CODE=1 [" + INNER4 + "PROTO=47 ] ",
        # prefixes with header-like text: the header is the first "IN= OUT=" (token reader)
        "x IN=a OUT=b y " + V4 + UDP,
        "LOGIN=x " + V4 + UDP,
        "BLEN=1 " + V4 + UDP,
        "p:" + V4.replace("IN=eth0", "IN=LENeth0") + UDP,
    ],
)
def test_other_shapes_agree(message: str) -> None:
    for line in (WRAPPERS[0] + message, WRAPPERS[1] + message, message):
        check_line(line)
    check_message(message)
    assert parse_line(WRAPPERS[0] + message) is not None


def test_quoted_packet_fields() -> None:
    record = parse_line(
        WRAPPERS[0] + V4 + "PROTO=ICMP TYPE=3 CODE=4 [" + INNER4 + "PROTO=TCP SPT=443 "
        "DPT=40000 WINDOW=502 RES=0x00 ACK PSH URGP=0 ] MTU=1400 UID=7 GID=8 MARK=0x1f "
    )
    assert record is not None and record.inner is not None
    assert (str(record.src), record.proto, record.mtu) == ("198.51.100.9", "ICMP", 1400)
    assert (record.uid, record.gid, record.mark, record.tos) == (7, 8, 0x1F, 0xC0)
    inner = record.inner
    assert inner.raw == INNER4 + "PROTO=TCP SPT=443 DPT=40000 WINDOW=502 RES=0x00 ACK PSH URGP=0"
    assert (str(inner.src), inner.proto, inner.spt, inner.dpt) == ("192.0.2.1", "TCP", 443, 40000)
    assert inner.tcp_flags == frozenset({"ACK", "PSH"}) and inner.ip_flags == frozenset({"DF"})
    assert (inner.uid, inner.mtu, inner.prefix, inner.timestamp) == (None, None, None, None)


def test_spi_in_records_and_json() -> None:
    record = parse_line(WRAPPERS[0] + V4 + "DF PROTO=ESP SPI=0x1234 ")
    assert record is not None and (record.proto, record.spi) == ("ESP", 0x1234)
    assert record.to_dict()["spi"] == 0x1234
    tcp = parse_line(WRAPPERS[0] + V4 + "PROTO=TCP SPT=1 DPT=2 WINDOW=3 RES=0x00 SYN URGP=0 ")
    assert tcp is not None and tcp.spi is None and tcp.to_dict()["spi"] is None


# -- the benchmark's generated log ----------------------------------------------------------------
def _genlog() -> Any:
    spec = importlib.util.spec_from_file_location("nfkit_genlog", REPO / "benchmarks" / "genlog.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("wrapper", ["syslog", "rfc3339", "dmesg"])
def test_generated_lines_agree_and_all_take_the_quick_path(wrapper: str) -> None:
    unwrapper = Unwrapper(reference=REFERENCE)
    lines = list(_genlog().generate_lines(4000, seed=3, sources=400, wrapper=wrapper))
    assert all(check_line(line, unwrapper) for line in lines)
    assert sum(" [SRC=" in line for line in lines) >= 20


# -- the syslog header cache ---------------------------------------------------------------------
@pytest.mark.parametrize(
    "header",
    [
        "Nov 25 04:17:23 fw",
        "Nov 25 04:17:00 fw",
        "Nov 25 04:17:59 fw",
        "Nov 25 04:17:60 fw",  # a leap second: no datetime for it
        "Feb 29 23:59:58 fw",  # placed in the last leap year
        "Feb 30 10:00:01 fw",  # no such day
        "Dec 31 23:59:59 host.example",
        "Nov  5 04:17:23 fw",
        "Nov 25 04:17:23 kern.warn",  # a facility where the host should be
    ],
)
def test_syslog_header_derived_from_its_minute(header: str) -> None:
    def direct(text: str) -> tuple[datetime | None, str] | None:
        """What unwrap() reads, with no cache and no derivation."""
        when, host, uptime, message = Unwrapper(reference=REFERENCE).unwrap(text + " kernel: ")
        return (when, host) if host is not None and uptime is None and not message else None

    unwrapper = Unwrapper(reference=REFERENCE)
    assert unwrapper.syslog_header(header) == direct(header)
    # another second of the same minute is derived from the minute's cached value
    later = header[:13] + "42" + header[15:]
    assert unwrapper.syslog_header(later) == direct(later)
    assert unwrapper.header_cache[later] == direct(later)


# -- mutated corpus lines ------------------------------------------------------------------------
TOKENS = sorted(
    {token for line in CORPUS for token in line.split(" ") if token}
    | {"[", "]", "MTU=1400", "SPI=0x1", "PROTO=ESP", "PROTO=AH", "LEN=", "UID=1", "GID=1"}
    | {"IN=", "IN=a", "OUT=", "OUT=b", "xIN=c"}
)
FUZZ = settings(
    max_examples=400,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)


@FUZZ
@given(
    st.sampled_from(CORPUS),
    st.sampled_from(WRAPPERS),
    st.lists(
        st.tuples(st.integers(min_value=0, max_value=80), st.sampled_from(TOKENS)), max_size=3
    ),
    st.lists(st.integers(min_value=0, max_value=80), max_size=3),
)
def test_mutated_lines_agree(
    line: str, wrapper: str, inserts: list[tuple[int, str]], removals: list[int]
) -> None:
    tokens = Unwrapper().unwrap(line).message.split(" ")
    for index in removals:
        if index < len(tokens):
            del tokens[index]
    for index, token in inserts:
        tokens.insert(index % (len(tokens) + 1), token)
    message = " ".join(tokens)
    check_line(wrapper + message)
    check_message(message)


@FUZZ
@given(
    st.sampled_from(CORPUS),
    st.lists(
        st.tuples(st.integers(min_value=0, max_value=1100), st.sampled_from("0 9aAfFL=[]:.x")),
        min_size=1,
        max_size=4,
    ),
)
def test_lines_with_characters_replaced_agree(line: str, edits: list[tuple[int, str]]) -> None:
    chars = list(WRAPPERS[0] + Unwrapper().unwrap(line).message)
    for index, char in edits:
        chars[index % len(chars)] = char
    check_line("".join(chars))


def test_docs_list_every_field() -> None:
    docs = (REPO / "docs" / "logs.md").read_text()
    section = docs.split("## LogRecord fields", 1)[1].split("\n## ", 1)[0]
    listed = set(re.findall(r"`([a-z_]+)`", section))
    assert set(FIELD_NAMES) <= listed, set(FIELD_NAMES) - listed


def test_parse_json_output_has_every_field_and_spi(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from nfkit.cli import main

    esp = next(line for line in CORPUS if "PROTO=ESP SPI=" in line and " [SRC=" not in line)
    quoted = next(line for line in CORPUS if "PROTO=AH SPI=" in line and " [SRC=" in line)
    log = tmp_path / "kern.log"
    log.write_text(esp + "\n" + quoted + "\n")
    assert main(["parse", "--json", str(log)]) == 0
    first, second = (json.loads(line) for line in capsys.readouterr().out.splitlines())
    assert list(first) == list(FIELD_NAMES) and list(second["inner"]) == list(FIELD_NAMES)
    assert first["spi"] == int(re.findall(r"SPI=0x([0-9a-f]+)", esp)[0], 16)
    assert second["spi"] is None
    assert second["inner"]["spi"] == int(re.findall(r"SPI=0x([0-9a-f]+)", quoted)[0], 16)
