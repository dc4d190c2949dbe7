"""Hostile input to the public API: documented ``NfkitError`` subclasses, never bare errors.

Library calls must raise what ``nfkit/errors.py`` documents (a caller catches ``NfkitError``),
not ``ValueError`` / ``OSError`` / ``UnicodeDecodeError`` / ``OverflowError`` /
``RecursionError`` from deep inside. QA regressions: test_qa_regressions.py.
"""

from __future__ import annotations

import gzip
import io
import json
from pathlib import Path

import pytest
from hostile import NO_SUCH_NS, POLICY, SAMPLE, SEGMENT, namespace_exists

import nfkit
from nfkit.errors import (
    ApplyError,
    ConfigError,
    DiscoveryError,
    LogReadError,
    NfkitError,
    StateError,
    SummaryError,
)
from nfkit.logs.state import IncrementalReader, LogState, read_whole
from nfkit.netns import Netns


def test_new_errors_are_public_and_documented() -> None:
    assert {"LogReadError", "SummaryError"} <= set(nfkit.__all__)
    assert issubclass(LogReadError, ConfigError)  # callers catching ConfigError keep working
    assert issubclass(SummaryError, NfkitError) and issubclass(SummaryError, ValueError)
    tree = (Path(nfkit.__file__).parent / "errors.py").read_text()
    assert "LogReadError" in tree.split('"""')[1] and "SummaryError" in tree.split('"""')[1]


# -- configuration ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"\xff\xfe[segment]\n", r"not UTF-8 text"),
        (b"a = " + b"[" * 50_000 + b"\n", r"nested too deeply"),
        (b"[segment\n", r":1: error: invalid TOML"),
        (b'[segmnet]\nnetworks = ["192.0.2.0/24"]\n', r"unknown table\(s\) or key\(s\) segmnet"),
        (b"stray = 1\n", r"unknown table\(s\) or key\(s\) stray"),
        (b"[summary]\nport_levels = [5, 4, 3, 2, 1]\n", r"five increasing"),
        (b"[summary]\nslot_seconds = 1e400\n", r"positive integer"),
        (b'[segment]\nnetworks = ["10.0.0.0/33"]\n', r"invalid network"),
        (b'[segment]\nown_macs = ["00:11:22:33:44"]\n', r"invalid MAC"),
        (b'[segment]\ngateway_ips = ["192.0.2.300"]\n', r"invalid IP address"),
    ],
)
def test_summary_config_from_bad_toml(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "segment.toml"
    path.write_bytes(content)
    with pytest.raises(ConfigError, match=message):
        nfkit.SummaryConfig.from_toml(path)


@pytest.mark.parametrize("path", ["nonexist.toml", "."])
def test_summary_config_unreadable(path: str) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        nfkit.SummaryConfig.from_toml(path)


# -- summaries -------------------------------------------------------------------------------
def _summary_dict() -> dict[str, object]:
    with SAMPLE.open(encoding="utf-8") as handle:
        return nfkit.summarize(handle, nfkit.SummaryConfig.from_toml(SEGMENT)).to_dict()


@pytest.mark.parametrize(
    "mutate",
    [
        lambda d: d.clear(),
        lambda d: d.update(lines=float("inf")),
        lambda d: d.update(records="many"),
        lambda d: d.update(sources=[{"address": "x", "packets": 1, "first_seen": "garbage"}]),
        lambda d: d.update(timeline={"slots": [[float("nan"), {}]]}),
        lambda d: d.update(activity={"x": [[0, [[1, 2, 3]]]]}),
        lambda d: d.update(by_origin=[]),
    ],
    ids=["empty", "infinite", "text-count", "bad-time", "nan-slot", "bad-pair", "list"],
)
def test_summary_from_bad_dict(mutate: object) -> None:
    data = _summary_dict()
    mutate(data)  # type: ignore[operator]
    with pytest.raises(SummaryError, match="not a summary"):
        nfkit.Summary.from_dict(data)


def test_summary_from_dict_not_a_mapping() -> None:
    with pytest.raises(SummaryError):
        nfkit.Summary.from_dict([])  # type: ignore[arg-type]


def test_summary_from_dict_bad_segment_is_config_error() -> None:
    data = _summary_dict()
    data["config"]["segment"]["networks"] = ["nope"]  # type: ignore[index]
    with pytest.raises(ConfigError, match="invalid network"):
        nfkit.Summary.from_dict(data)


def test_merge_of_different_settings_is_summary_error() -> None:
    other = nfkit.Summary(nfkit.SummaryConfig(slot_seconds=60, window_seconds=3600))
    with pytest.raises(SummaryError, match="different detection settings"):
        nfkit.Summary().merge(other)
    with pytest.raises(ValueError):  # what it used to raise: old callers still catch it
        nfkit.Summary().merge(other)


def test_summarize_refuses_a_string_of_characters() -> None:
    with pytest.raises(ConfigError, match="not a str"):
        nfkit.summarize(str(SAMPLE))  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="not a bytes"):
        nfkit.summarize(b"x\n")  # type: ignore[arg-type]


def test_summarize_takes_a_path() -> None:
    config = nfkit.SummaryConfig.from_toml(SEGMENT)
    with SAMPLE.open(encoding="utf-8") as handle:
        expected = nfkit.summarize(handle, config)
    assert nfkit.summarize(SAMPLE, config) == expected
    assert expected.records > 0


@pytest.mark.parametrize("name", ["nonexist.log", "."])
def test_summarize_unreadable_path(name: str) -> None:
    with pytest.raises(LogReadError, match="cannot read log"):
        nfkit.summarize(Path(name))


def test_summarize_failing_file_objects(tmp_path: Path) -> None:
    packed = gzip.compress(SAMPLE.read_bytes())
    cut = tmp_path / "cut.gz"
    cut.write_bytes(packed[: len(packed) // 2])
    with gzip.open(cut, "rt") as handle, pytest.raises(LogReadError, match=r"cut\.gz"):
        nfkit.summarize(handle)
    closed = SAMPLE.open()
    closed.close()
    with pytest.raises(LogReadError, match="closed file"):
        nfkit.summarize(closed)
    strict = io.TextIOWrapper(io.BytesIO(b"ok\n\xff\xfe\n"), encoding="utf-8")
    with pytest.raises(LogReadError, match="cannot read log"):
        nfkit.summarize(strict)


# -- cron state and log reading --------------------------------------------------------------
@pytest.mark.parametrize(
    "content",
    [
        b'{"version": 1, "files": {"a": {"x": {"offset": 1e400}}}}',
        b'{"version": 1, "files": {"a": {"x": {"offset": 1.5}}}}',
        b'{"version": 1, "files": {"a": {"x": {"offset": true}}}}',
        b'{"version": 1, "files": {"a": {"x": {"offset": -1}}}}',
        b'{"version": 1, "files": {"a": {"x": {"offset": 1, "inode": "x"}}}}',
        b'{"version": 1, "files": {"a": {"x": 5}}}',
        b'{"version": 1, "files": {"a": []}}',
        b'{"version": 1}',
        b'{"version": 2, "files": {}}',
        b"[" * 100_000,
        b"\xff\xfe",
        b"",
    ],
)
def test_corrupt_state_file(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "state.json"
    path.write_bytes(content)
    with pytest.raises(StateError):
        LogState.load(path)


def test_state_save_is_atomic_and_refuses_missing_dir(tmp_path: Path) -> None:
    state = LogState()
    with pytest.raises(StateError, match="cannot write"):
        state.save(tmp_path / "nodir" / "state.json")
    with pytest.raises(StateError, match="cannot write"):
        state.save(tmp_path)  # a directory
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("missing.log", None, "No such file or directory$"),
        ("cut.gz", gzip.compress(b"line\n" * 1000)[:40], "Compressed file ended"),
        ("text.gz", b"plain text\n", "Not a gzipped file"),
    ],
)
def test_read_whole_errors(tmp_path: Path, name: str, content: bytes | None, message: str) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(LogReadError, match=message):
        list(read_whole(str(path)))
    with pytest.raises(LogReadError):
        list(IncrementalReader(LogState(), [path]).lines())


def test_read_whole_directory(tmp_path: Path) -> None:
    with pytest.raises(LogReadError, match="Is a directory"):
        list(read_whole(str(tmp_path)))


def test_read_whole_closed_stdin(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdin", None)
    with pytest.raises(LogReadError, match="standard input is closed"):
        list(read_whole("-"))


# -- namespaces, apply, doctor ---------------------------------------------------------------
@pytest.mark.parametrize("name", ["", ".", "..", "../../etc", "a/b", "a\nb", "x" * 300])
def test_netns_bad_names(name: str) -> None:
    with pytest.raises(ConfigError, match="invalid network namespace name"):
        Netns(name)


def test_netns_good_names() -> None:
    assert Netns("blue-1.2_x").label == "blue-1.2_x"
    assert Netns().label == "host"


def test_apply_policy_hostile_files(tmp_path: Path) -> None:
    binary = tmp_path / "binary.nfk"
    binary.write_bytes(bytes(range(256)))
    netns = Netns(NO_SUCH_NS)
    with pytest.raises(ApplyError, match="not UTF-8 text"):
        nfkit.apply_policy(binary, netns=netns)
    with pytest.raises(ApplyError, match="is a directory"):
        nfkit.apply_policy(tmp_path, netns=netns)
    with pytest.raises(ApplyError, match="no such policy file"):
        nfkit.apply_policy(tmp_path / "missing.nfk", netns=netns)
    with pytest.raises(ApplyError, match="does not exist"):
        nfkit.apply_policy(POLICY, netns=netns, dry_run=True)
    with pytest.raises(ApplyError, match="unknown backend"):
        nfkit.apply_policy(POLICY, backend="pf", netns=netns)
    assert not namespace_exists(NO_SUCH_NS)


@pytest.mark.parametrize(
    "name", ["", ".", "..", "a\nb", NO_SUCH_NS, "/etc/passwd", "/proc/self/ns/uts", "/proc"]
)
def test_discover_refuses_what_is_not_a_network_namespace(name: str) -> None:
    """pyroute2 creates a missing namespace (O_CREAT) and fails noisily on a plain file."""
    from nfkit.logs.segment import discover

    with pytest.raises(DiscoveryError, match="does not exist"):
        discover(name)
    assert not namespace_exists(NO_SUCH_NS)


def test_run_doctor_missing_namespace() -> None:
    with pytest.raises(DiscoveryError, match="does not exist"):
        nfkit.run_doctor(Netns(NO_SUCH_NS))
    assert not namespace_exists(NO_SUCH_NS)


@pytest.mark.parametrize(
    "content",
    [b"[]", b"{}", b'{"families": 5, "backend": "nftables"}',
     b'{"families": [], "backend": "pf"}', b'{"families": [], "backend": "nftables", '
     b'"netns": 5}', b'{"families": [], "backend": "nftables", "sysctls": [1]}',
     b'{"families": ["inet"], "backend": "nftables"}', b"\xff", b"[" * 100_000,
     b'{"families": [], "backend": "nftables", "netns": "../../etc"}'],
)
def test_corrupt_backup(tmp_path: Path, content: bytes) -> None:
    from nfkit.rollback import Backup

    path = tmp_path / "backup.json"
    path.write_bytes(content)
    with pytest.raises(ApplyError, match="cannot read backup"):
        Backup.load(path)


def test_rollback_atomic_write_leaves_no_temp_file(tmp_path: Path) -> None:
    from nfkit.rollback import atomic_write

    target = tmp_path / "pending.json"
    atomic_write(target, json.dumps({"a": 1}))
    assert json.loads(target.read_text()) == {"a": 1}
    with pytest.raises(OSError):
        atomic_write(tmp_path / "nodir" / "x.json", "{}")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pending.json"]


@pytest.mark.parametrize(
    ("policy", "nfkit_path", "message"),
    [
        ("/etc/a\nExecStartPost=/bin/evil", "/usr/bin/nfkit", r"cannot hold '\\n'"),
        ("/etc/%n.nfk", "/usr/bin/nfkit", r"cannot hold '%'"),
        ("/etc/x.nfk", "/opt/$USER/nfkit", r"cannot hold '\$'"),
        ("/etc/x\\y.nfk", "/usr/bin/nfkit", r"cannot hold '\\\\'"),
        ("relative.nfk", "/usr/bin/nfkit", r"--policy must be an absolute path"),
        ("/etc/x.nfk", "", r"--nfkit must be an absolute path"),
    ],
)
def test_render_unit_refuses_what_systemd_misreads(
    policy: str, nfkit_path: str, message: str
) -> None:
    from nfkit.cli.install_service import render_unit

    with pytest.raises(ConfigError, match=message):
        render_unit(policy, "nftables", nfkit_path)


# -- parsing and compiling (the parts that already hold) -------------------------------------
@pytest.mark.parametrize(
    "line",
    [
        "",
        "\x00" * 100,
        "IN= OUT= SRC= DST=",
        "kernel: IN=eth0 OUT= SRC=1.2.3.4 DST=5.6.7.8 LEN=99999999999999999999999 TTL=1 "
        "PROTO=TCP SPT=1 DPT=70000",
        "kernel: IN=eth0 OUT= MAC=zz SRC=999.1.1.1 DST=::::: PROTO=ICMP TYPE=3 CODE=4 MTU=-1",
        "kernel: IN=eth0 OUT= SRC=1.2.3.4 DST=5.6.7.8 " + "X=" * 100_000,
        "\ud800 surrogate IN=eth0",
        "IN=eth0 " * 10_000,
    ],
)
def test_parse_line_never_raises(line: str) -> None:
    record = nfkit.parse_line(line)
    assert record is None or isinstance(record, nfkit.LogRecord)


@pytest.mark.parametrize(
    "text",
    [
        "define a = " + "{" * 20_000 + "1" + "}" * 20_000 + "\n",
        "input policy drop {\n" * 2_000,
        "include \"" + "x" * 5000 + "\"\n",
        "input policy drop {\n    tcp dport 65536 accept\n}\n",
        "input policy drop {\n    saddr 10.0.0.0/33 accept\n}\n",
        "\x00",
        "define \u0430 = 1\n",  # Cyrillic a
    ],
)
def test_compile_policy_text_raises_source_errors(text: str) -> None:
    with pytest.raises(nfkit.SourceError):
        nfkit.compile_policy(text)


def test_history_not_a_database(tmp_path: Path) -> None:
    path = tmp_path / "history.sqlite3"
    path.write_bytes(b"not sqlite\n" * 100)
    with pytest.raises(StateError, match="not a database"), nfkit.History(str(path)) as history:
        history.runs()
    with pytest.raises(ConfigError, match="unsupported database URL"):
        nfkit.History("mysql://x/y")


# -- dates at the edge of what datetime holds ------------------------------------------------
_MESSAGE = (
    "IN=eth0 OUT= SRC=198.51.100.7 DST=192.0.2.10 LEN=60 TTL=52 ID=1 PROTO=TCP SPT=40000 "
    "DPT=23 SYN URGP=0"
)
EDGE_LINES = [
    f"9999-12-31T23:59:59.999999+00:00 srv kernel: {_MESSAGE}",
    f"0001-01-01T00:00:00+00:00 srv kernel: {_MESSAGE}",
    json.dumps({"__REALTIME_TIMESTAMP": "9" * 20, "_HOSTNAME": "h", "MESSAGE": _MESSAGE}),
    json.dumps({"__REALTIME_TIMESTAMP": "253402300800000000", "MESSAGE": _MESSAGE}),
    '{"MESSAGE": ' * 10_000,
    f"[99999999999999999999999999.5] {_MESSAGE}",
]


def test_summary_survives_edge_dates() -> None:
    """A line dated at the edge of datetime, or one the parser chokes on, costs one line."""
    from nfkit.logs.report import render

    summary = nfkit.summarize(EDGE_LINES)
    assert summary.lines == len(EDGE_LINES) and summary.records >= 2
    for fmt in ("text", "json", "html"):
        assert render(summary, fmt)
    again = nfkit.Summary.from_dict(json.loads(render(summary, "json")))
    assert again.records == summary.records


def test_iso_clamps_instead_of_failing() -> None:
    from nfkit.logs.findings import from_iso, iso

    assert iso(253402300800.0) == "9999-12-31T23:59:59.999999+00:00"
    assert iso(-1e18) == "0001-01-01T00:00:00.000000+00:00"
    assert iso(float("inf")) == "9999-12-31T23:59:59.999999+00:00"
    assert from_iso(iso(1795493843.25)) == 1795493843.25


@pytest.mark.parametrize(
    "key", ["", "..", "net/../../etc/passwd", "/proc/sys/../../etc/shadow", "net..ipv4", "a\0b"]
)
def test_sysctl_names_cannot_leave_proc_sys(tmp_path: Path, key: str) -> None:
    from nfkit.sysctl import Sysctls

    sysctls = Sysctls(Netns(), root=tmp_path / "proc" / "sys")
    with pytest.raises(ApplyError, match="invalid sysctl name"):
        sysctls.write(key, "1")
    assert list(tmp_path.iterdir()) == []


def test_backup_with_hostile_sysctl_key_restores_nothing_outside(tmp_path: Path) -> None:
    from nfkit.rollback import Backup, restore_backup

    path = tmp_path / "backup.json"
    path.write_text(json.dumps({"backend": "nftables", "netns": NO_SUCH_NS, "families": [],
                                "sysctls": {"net/../../../tmp/owned": "1"}}))
    problems = restore_backup(Backup.load(path))
    assert problems and "invalid sysctl name" in problems[0]


# -- rotation when every file starts with the same line ---------------------------------------
HEADER = "# logfile started"


def _with_header(kind: str, seed: int, tmp_path: Path) -> tuple[list[str], list[str]]:
    """The rotation torture of test_state.py, with a fixed first line in every new file."""
    import random

    from test_state import FakeSyslog, run_once

    class HeaderSyslog(FakeSyslog):
        def rotate_rename(self, rng: random.Random) -> None:
            super().rotate_rename(rng)
            self.path.write_text(HEADER + "\n")

        def rotate_copytruncate(self, rng: random.Random) -> None:
            super().rotate_copytruncate(rng)
            self.path.write_text(HEADER + "\n")

    rng = random.Random(seed)
    syslog = HeaderSyslog(tmp_path)
    syslog.path.write_text(HEADER + "\n")
    state = tmp_path / "state.json"
    seen = run_once(state, syslog.path)
    for _ in range(60):
        syslog.write(rng.randint(0, 4), rng)
        if rng.random() < 0.3:
            seen += run_once(state, syslog.path)
        if kind == "rename":
            syslog.rotate_rename(rng)
        else:
            syslog.rotate_copytruncate(rng)
        syslog.write(rng.randint(0, 3), rng)
        syslog.hup(rng)
        if rng.random() < 0.5:
            seen += run_once(state, syslog.path)
    syslog.finish_partial(rng)
    seen += run_once(state, syslog.path)
    assert run_once(state, syslog.path) == []
    return [line for line in seen if line != HEADER], syslog.written


@pytest.mark.parametrize("kind", ["rename", "copytruncate"])
@pytest.mark.parametrize("seed", [3, 4])
def test_rotation_with_a_fixed_first_line_loses_nothing(
    tmp_path: Path, kind: str, seed: int
) -> None:
    """Files told apart by their first line alone: the same header made the reader skip one."""
    seen, written = _with_header(kind, seed, tmp_path)
    assert sorted(seen) == sorted(written)
    assert len(seen) == len(set(seen))
