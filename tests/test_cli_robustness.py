"""Hostile input to every command: a clean ``error:`` line and exit 2, never a traceback.

Each case runs ``nfkit`` in-process inside a directory of bad files (see ``hostile.py``).
The QA findings' regression tests are in ``test_qa_regressions.py``.
"""

from __future__ import annotations

import gzip
import re
from pathlib import Path

import pytest
from hostile import (
    NO_SUCH_NS,
    POLICY,
    SEGMENT,
    assert_clean_error,
    hostile_dir,
    in_hostile,
    namespace_exists,
    run_cli,
)

__all__ = ["hostile_dir", "in_hostile"]  # fixtures, re-exported for pytest

pytestmark = pytest.mark.usefixtures("in_hostile")

SEG = ["--config", str(SEGMENT)]
OFFLINE = ["--no-discover"]

# id, argv, stdin (None: closed), exit code, stderr pattern
CASES: list[tuple[str, list[str], bytes | None, int, str]] = [
    # -- parse ------------------------------------------------------------------------------
    ("parse-missing", ["parse", "nonexist.log"], b"", 2,
     r"^nfkit parse: error: cannot read nonexist.log: No such file"),
    ("parse-directory", ["parse", "adir"], b"", 2, r"^nfkit parse: error: cannot read adir: Is a"),
    ("parse-truncated-gz", ["parse", "truncated.gz"], b"", 2,
     r"^nfkit parse: error: cannot read truncated.gz: Compressed file ended"),
    ("parse-corrupt-gz", ["parse", "corrupt.gz"], b"", 2,
     r"^nfkit parse: error: cannot read corrupt.gz: "),
    ("parse-gz-name-on-text", ["parse", "plaintext.gz"], b"", 2,
     r"^nfkit parse: error: cannot read plaintext.gz: Not a gzipped file"),
    ("parse-strict-garbage", ["parse", "--strict", "garbage.bin"], b"", 2,
     r"^garbage.bin:1: error: not a netfilter packet log line"),
    ("parse-strict-stdin", ["parse", "--strict", "-"], b"garbage\n", 2,
     r"^<stdin>:1: error: not a netfilter packet log line: 'garbage'"),
    ("parse-garbage-counts", ["parse", "garbage.bin"], b"", 0,
     r"garbage.bin: \d+ of \d+ lines gave no record"),
    ("parse-empty", ["parse", "empty.log"], b"", 0, r"\A\Z"),
    ("parse-bad-utf8", ["parse", "badutf8.log"], b"", 0, r"badutf8.log: \d+ of \d+ lines"),
    ("parse-huge-line", ["parse", "huge-line.log"], b"", 0, r"huge-line.log: 1 of 1 lines"),
    ("parse-empty-stdin", ["parse", "-"], b"", 0, r"\A\Z"),
    ("parse-no-file", ["parse"], b"", 2, r"the following arguments are required: FILE"),
    # -- summarize: logs --------------------------------------------------------------------
    ("sum-missing", ["summarize", *OFFLINE, "nonexist.log"], b"", 2,
     r"^nfkit summarize: error: nonexist.log: cannot read log: No such file or directory$"),
    ("sum-directory", ["summarize", *OFFLINE, "adir"], b"", 2,
     r"^nfkit summarize: error: adir: cannot read log: .*Is a directory"),
    ("sum-truncated-gz", ["summarize", *OFFLINE, "truncated.gz"], b"", 2,
     r"^nfkit summarize: error: truncated.gz: cannot read log: Compressed file ended"),
    ("sum-corrupt-gz", ["summarize", *OFFLINE, "corrupt.gz"], b"", 2,
     r"^nfkit summarize: error: corrupt.gz: cannot read log: "),
    ("sum-gz-name-on-text", ["summarize", *OFFLINE, "plaintext.gz"], b"", 2,
     r"^nfkit summarize: error: plaintext.gz: cannot read log: Not a gzipped file"),
    ("sum-empty", ["summarize", *OFFLINE, "empty.log"], b"", 0, r"\A\Z"),
    ("sum-garbage", ["summarize", *OFFLINE, "garbage.bin"], b"", 0, r"\A\Z"),
    ("sum-bad-utf8", ["summarize", *OFFLINE, "badutf8.log"], b"", 0, r"\A\Z"),
    ("sum-huge-line", ["summarize", *OFFLINE, "huge-line.log"], b"", 0, r"\A\Z"),
    ("sum-stdin-empty", ["summarize", *OFFLINE, "-"], b"", 0, r"\A\Z"),
    ("sum-stdin-binary", ["summarize", *OFFLINE, "-"], b"\xff\xfe\x00\n", 0, r"\A\Z"),
    # -- summarize: options -----------------------------------------------------------------
    ("sum-since-garbage", ["summarize", *OFFLINE, "--since", "garbage", "plain.log"], b"", 2,
     r"^nfkit summarize: error: --since: cannot read 'garbage'"),
    ("sum-since-bad-date", ["summarize", *OFFLINE, "--since", "2026-13-45", "plain.log"], b"",
     2, r"^nfkit summarize: error: --since: cannot read"),
    ("sum-since-empty", ["summarize", *OFFLINE, "--since", "", "plain.log"], b"", 2,
     r"^nfkit summarize: error: --since: cannot read ''"),
    ("sum-output-missing-dir", ["summarize", *OFFLINE, "-o", "nodir/x.txt", "plain.log"], b"",
     2, r"^nfkit summarize: error: nodir/x.txt: cannot write: No such file"),
    ("sum-output-directory", ["summarize", *OFFLINE, "-o", "adir", "plain.log"], b"", 2,
     r"^nfkit summarize: error: adir: cannot write: Is a directory"),
    ("sum-bad-segment-flag", ["summarize", "--segment", "300.1.1.1/8", "plain.log"], b"", 2,
     r"^nfkit summarize: error: invalid network '300.1.1.1/8'"),
    ("sum-bad-gateway-mac", ["summarize", "--gateway-mac", "nope", "plain.log"], b"", 2,
     r"^nfkit summarize: error: invalid MAC address 'nope'"),
    ("sum-bad-format", ["summarize", "--format", "pdf", "plain.log"], b"", 2,
     r"argument --format: invalid choice"),
    ("sum-netns-missing", ["summarize", "--netns", NO_SUCH_NS, "plain.log"], b"", 2,
     rf"^nfkit summarize: error: network namespace '{NO_SUCH_NS}' does not exist"),
    ("sum-netns-dotdot", ["summarize", "--netns", "..", "plain.log"], b"", 2,
     r"^nfkit summarize: error: network namespace '..' does not exist"),
    ("sum-netns-plain-file", ["summarize", "--netns", "/etc/passwd", "plain.log"], b"", 2,
     r"^nfkit summarize: error: network namespace '/etc/passwd' does not exist"),
    # -- summarize: config ------------------------------------------------------------------
    ("cfg-syntax", ["summarize", "--config", "bad-syntax.toml", "plain.log"], b"", 2,
     r"^bad-syntax.toml:1: error: invalid TOML: "),
    ("cfg-wrong-type", ["summarize", "--config", "wrong-type.toml", "plain.log"], b"", 2,
     r"^nfkit summarize: error: wrong-type.toml: \[segment\]: networks must be a list"),
    ("cfg-bad-cidr", ["summarize", "--config", "bad-cidr.toml", "plain.log"], b"", 2,
     r"wrong-type|bad-cidr.toml: \[segment\]: invalid network '10.0.0.0/33'"),
    ("cfg-bad-mac", ["summarize", "--config", "bad-mac.toml", "plain.log"], b"", 2,
     r"bad-mac.toml: \[segment\]: invalid MAC address 'zz:00:00:00:00:01'"),
    ("cfg-unknown-key", ["summarize", "--config", "unknown-key.toml", "plain.log"], b"", 2,
     r"unknown-key.toml: \[segment\]: unknown key\(s\) foo"),
    ("cfg-unknown-table", ["summarize", "--config", "unknown-table.toml", "plain.log"], b"", 2,
     r"unknown-table.toml: unknown table\(s\) or key\(s\) segmnet"),
    ("cfg-summary-wrong-type",
     ["summarize", "--config", "summary-wrong-type.toml", "plain.log"], b"", 2,
     r"\[summary\]: slot_seconds must be a positive integer"),
    ("cfg-summary-unknown", ["summarize", "--config", "summary-unknown.toml", "plain.log"],
     b"", 2, r"\[summary\]: unknown key\(s\) foo"),
    ("cfg-segment-not-table",
     ["summarize", "--config", "segment-not-table.toml", "plain.log"], b"", 2,
     r"\[segment\] must be a table"),
    ("cfg-binary", ["summarize", "--config", "binary.toml", "plain.log"], b"", 2,
     r"^binary.toml: error: not UTF-8 text \(byte 0\)"),
    ("cfg-deep", ["summarize", "--config", "deep.toml", "plain.log"], b"", 2,
     r"^deep.toml: error: invalid TOML: nested too deeply"),
    ("cfg-missing", ["summarize", "--config", "nonexist.toml", "plain.log"], b"", 2,
     r"nonexist.toml: cannot read: No such file"),
    ("cfg-directory", ["summarize", "--config", "adir", "plain.log"], b"", 2,
     r"adir: cannot read: Is a directory"),
    # -- summarize: state -------------------------------------------------------------------
    ("state-bad-offset", ["summarize", *OFFLINE, "--state", "state-bad-offset.json",
                          "plain.log"], b"", 2,
     r"state-bad-offset.json: corrupt state file \(offset 'nope' is not an integer\)"),
    ("state-version", ["summarize", *OFFLINE, "--state", "state-version.json", "plain.log"],
     b"", 2, r"state-version.json: corrupt state file \(expected version 1\)"),
    ("state-truncated", ["summarize", *OFFLINE, "--state", "state-truncated.json",
                         "plain.log"], b"", 2, r"state-truncated.json: corrupt state file"),
    ("state-list", ["summarize", *OFFLINE, "--state", "state-list.json", "plain.log"], b"", 2,
     r"state-list.json: corrupt state file"),
    ("state-files-list", ["summarize", *OFFLINE, "--state", "state-files-list.json",
                          "plain.log"], b"", 2, r"state-files-list.json: corrupt state file"),
    ("state-infinite", ["summarize", *OFFLINE, "--state", "state-infinite.json",
                        "plain.log"], b"", 2,
     r"state-infinite.json: corrupt state file \(offset inf is not an integer\)"),
    ("state-float", ["summarize", *OFFLINE, "--state", "state-float.json", "plain.log"], b"",
     2, r"state-float.json: corrupt state file \(offset 1.5 is not an integer\)"),
    ("state-bool", ["summarize", *OFFLINE, "--state", "state-bool.json", "plain.log"], b"", 2,
     r"state-bool.json: corrupt state file \(offset True is not an integer\)"),
    ("state-binary", ["summarize", *OFFLINE, "--state", "state-binary.json", "plain.log"],
     b"", 2, r"state-binary.json: cannot read state file"),
    ("state-deep", ["summarize", *OFFLINE, "--state", "deep.json", "plain.log"], b"", 2,
     r"deep.json: corrupt state file \(maximum recursion depth"),
    ("state-directory", ["summarize", *OFFLINE, "--state", "adir", "plain.log"], b"", 2,
     r"adir: cannot read state file"),
    ("state-missing-dir", ["summarize", *OFFLINE, "--state", "nodir/s.json", "plain.log"],
     b"", 2, r"nodir/s.json.lock: cannot open lock file: No such file"),
    ("state-stdin", ["summarize", *OFFLINE, "--state", "s.json", "-"], b"", 2,
     r"standard input \('-'\) cannot be read incrementally with --state"),
    ("state-log-missing", ["summarize", *OFFLINE, "--state", "s.json", "nonexist.log"], b"", 2,
     r"nonexist.log: no such log file \(nor rotated copies of it\)"),
    ("state-log-directory", ["summarize", *OFFLINE, "--state", "s.json", "adir"], b"", 2,
     r"/adir: cannot read log: Is a directory$"),
    ("state-log-truncated-gz", ["summarize", *OFFLINE, "--state", "s.json", "truncated.gz"],
     b"", 2, r"/truncated.gz: cannot read log: Compressed file ended"),
    ("state-log-gz-name-on-text",
     ["summarize", *OFFLINE, "--state", "s.json", "plaintext.gz"], b"", 2,
     r"/plaintext.gz: cannot read log: Not a gzipped file"),
    # -- summarize / report: history --------------------------------------------------------
    ("db-not-sqlite", ["summarize", *OFFLINE, "--db", "not-sqlite.db", "plain.log"], b"", 2,
     r"not-sqlite.db: cannot open history database: file is not a database"),
    ("db-fake-sqlite", ["summarize", *OFFLINE, "--db", "fake-sqlite.db", "plain.log"], b"", 2,
     r"fake-sqlite.db: cannot open history database"),
    ("db-directory", ["summarize", *OFFLINE, "--db", "adir", "plain.log"], b"", 2,
     r"adir: cannot open history database"),
    ("db-bad-scheme", ["summarize", *OFFLINE, "--db", "mysql://x/y", "plain.log"], b"", 2,
     r"mysql://x/y: unsupported database URL"),
    ("db-sqlite-no-path", ["summarize", *OFFLINE, "--db", "sqlite://", "plain.log"], b"", 2,
     r"sqlite://: expected sqlite:///relative/path"),
    ("report-not-sqlite", ["report", "--db", "not-sqlite.db"], b"", 2,
     r"^nfkit report: error: not-sqlite.db: cannot open history database"),
    ("report-missing-db", ["report", "--db", "nonexist.db"], b"", 2,
     r"^nfkit report: error: nonexist.db: no history database"),
    ("report-days-zero", ["report", "--days", "0", "--db", "nonexist.db"], b"", 2,
     r"--days must be a positive number"),
    ("report-days-text", ["report", "--days", "x"], b"", 2, r"argument --days: invalid int"),
    # -- merge ------------------------------------------------------------------------------
    ("merge-missing", ["merge", "nonexist.json"], b"", 2,
     r"^nonexist.json: error: cannot read: No such file"),
    ("merge-directory", ["merge", "adir"], b"", 2, r"^adir: error: cannot read: Is a directory"),
    ("merge-empty", ["merge", "empty.log"], b"", 2, r"^empty.log: error: invalid JSON"),
    ("merge-binary", ["merge", "garbage.bin"], b"", 2, r"^garbage.bin: error: cannot read"),
    ("merge-list", ["merge", "summary-list.json"], b"", 2,
     r"^summary-list.json: error: not an nfkit summary"),
    ("merge-foreign", ["merge", "summary-foreign.json"], b"", 2,
     r"^summary-foreign.json: error: not an nfkit summary"),
    ("merge-infinite", ["merge", "summary-infinite.json"], b"", 2,
     r"^summary-infinite.json: error: not an nfkit summary: .*OverflowError"),
    ("merge-twice", ["merge", "summary.json", "summary.json"], b"", 2,
     r"a summary file is named twice"),
    ("merge-fleet-binary", ["merge", "--fleet", "binary.toml", "summary.json"], b"", 2,
     r"^binary.toml: error: not UTF-8 text"),
    # -- compile ----------------------------------------------------------------------------
    ("compile-missing", ["compile", "nonexist.nfk"], b"", 2,
     r"^nfkit compile: error: no such policy file: nonexist.nfk"),
    ("compile-binary", ["compile", "binary.nfk"], b"", 2,
     r"^nfkit compile: error: cannot read binary.nfk: 'utf-8' codec"),
    ("compile-port-70000", ["compile", "port70000.nfk"], b"", 2, r"^port70000.nfk:2:\d+: error: "),
    ("compile-huge-number", ["compile", "huge-number.nfk"], b"", 2,
     r"^huge-number.nfk:2:\d+: error: "),
    ("compile-reversed-range", ["compile", "reversed-range.nfk"], b"", 2,
     r"^reversed-range.nfk:2:\d+: error: port range '100-20'"),
    ("compile-include-self", ["compile", "loop.nfk"], b"", 2,
     r"^loop.nfk:1:9: error: include cycle"),
    ("compile-include-cycle", ["compile", "loop-a.nfk"], b"", 2, r"error: include cycle"),
    ("compile-include-missing", ["compile", "include-missing.nfk"], b"", 2,
     r"^include-missing.nfk:1:9: error: "),
    ("compile-include-binary", ["compile", "include-binary.nfk"], b"", 2,
     r"^include-binary.nfk:1:9: error: "),
    ("compile-include-dir", ["compile", "include-dir.nfk"], b"", 2,
     r"^include-dir.nfk:1:9: error: "),
    ("compile-unicode-name", ["compile", "unicode-name.nfk"], b"", 2,
     r"^unicode-name.nfk:1:8: error: unexpected character 'é'"),
    ("compile-unterminated", ["compile", "unterminated.nfk"], b"", 2,
     r"^unterminated.nfk:1:9: error: "),
    ("compile-tabs", ["compile", "tabs.nfk"], b"", 2, r"^tabs.nfk:3:3: error: unexpected 'foo'"),
    ("compile-deep-braces", ["compile", "deep-braces.nfk"], b"", 2,
     r"^deep-braces.nfk:1:\d+: error: "),
    ("compile-define-loop", ["compile", "define-loop.nfk"], b"", 2,
     r"^define-loop.nfk:\d+:\d+: error: "),
    ("compile-bad-cidr", ["compile", "bad-cidr.nfk"], b"", 2, r"^bad-cidr.nfk:2:\d+: error: "),
    ("compile-unclosed", ["compile", "unclosed.nfk"], b"", 2, r"^unclosed.nfk:\d+:\d+: error: "),
    ("compile-crlf", ["compile", "crlf.nfk", "--emit", "ruleset"], b"", 0, r"\A\Z"),
    ("compile-output-missing-dir", ["compile", "crlf.nfk", "-o", "nodir/x.sh"], b"", 2,
     r"^nfkit compile: error: cannot write nodir/x.sh: No such file"),
    ("compile-output-directory", ["compile", "crlf.nfk", "-o", "adir"], b"", 2,
     r"^nfkit compile: error: cannot write adir: Is a directory"),
    # -- apply ------------------------------------------------------------------------------
    ("apply-netns-missing", ["apply", "--netns", NO_SUCH_NS, str(POLICY)], b"", 2,
     rf"^nfkit apply: error: network namespace '{NO_SUCH_NS}' does not exist"),
    ("apply-netns-missing-dry", ["apply", "--netns", NO_SUCH_NS, "--dry-run", str(POLICY)],
     b"", 2, rf"^nfkit apply: error: network namespace '{NO_SUCH_NS}' does not exist"),
    ("apply-netns-confirm", ["apply", "--netns", NO_SUCH_NS, "--confirm"], b"", 2,
     rf"^nfkit apply: error: no trial apply is pending in netns {NO_SUCH_NS}"),
    ("apply-netns-rollback", ["apply", "--netns", NO_SUCH_NS, "--rollback"], b"", 2,
     rf"^nfkit apply: error: no trial apply is pending in netns {NO_SUCH_NS}"),
    ("apply-netns-traversal", ["apply", "--netns", "../../etc", str(POLICY)], b"", 2,
     r"^nfkit apply: error: invalid network namespace name '../../etc'"),
    ("apply-netns-empty", ["apply", "--netns", "", "--dry-run", str(POLICY)], b"", 2,
     r"^nfkit apply: error: invalid network namespace name ''"),
    ("apply-netns-newline", ["apply", "--netns", "a\nb", "--confirm"], b"", 2,
     r"^nfkit apply: error: invalid network namespace name 'a\\nb'"),
    ("apply-nothing", ["apply"], b"", 2, r"give exactly one of POLICY, --confirm or --rollback"),
    ("apply-two-actions", ["apply", "--confirm", "--rollback"], b"", 2, r"give exactly one of"),
    ("apply-try-zero", ["apply", "--try", "0", "x.nfk"], b"", 2, r"--try takes 1 to 86400"),
    ("apply-try-nan", ["apply", "--try", "nan", "x.nfk"], b"", 2, r"--try takes 1 to 86400"),
    ("apply-try-text", ["apply", "--try", "soon", "x.nfk"], b"", 2, r"not a number of seconds"),
    ("apply-policy-missing", ["apply", "--netns", NO_SUCH_NS, "nonexist.nfk"], b"", 2,
     r"^nfkit apply: error: nonexist.nfk: no such policy file"),
    ("apply-policy-directory", ["apply", "--netns", NO_SUCH_NS, "adir"], b"", 2,
     r"^nfkit apply: error: adir: is a directory, not a policy file"),
    ("apply-policy-binary", ["apply", "--netns", NO_SUCH_NS, "binary.nfk"], b"", 2,
     r"^nfkit apply: error: binary.nfk: not a policy: not UTF-8 text"),
    ("apply-policy-syntax", ["apply", "--netns", NO_SUCH_NS, "tabs.nfk"], b"", 2,
     r"^tabs.nfk:3:3: error: "),
    # -- doctor -----------------------------------------------------------------------------
    ("doctor-netns-missing", ["doctor", "--netns", NO_SUCH_NS], b"", 2,
     rf"^nfkit doctor: could not check: network namespace '{NO_SUCH_NS}' does not exist"),
    ("doctor-netns-traversal", ["doctor", "--netns", "../../etc"], b"", 2,
     r"^nfkit doctor: error: invalid network namespace name '../../etc'"),
    ("doctor-table-one-word", ["doctor", "--table", "inet"], b"", 2,
     r"^nfkit doctor: error: --table wants 'FAMILY NAME'"),
    # -- install-service --------------------------------------------------------------------
    ("unit-relative-policy", ["install-service", "--policy", "rel.nfk", "--print"], b"", 2,
     r"--policy must be an absolute path"),
    ("unit-relative-nfkit", ["install-service", "--nfkit", "nfkit", "--print"], b"", 2,
     r"--nfkit must be an absolute path"),
    ("unit-newline-injection",
     ["install-service", "--policy", "/etc/a\nExecStartPost=/bin/evil", "--print"], b"", 2,
     r"--policy '/etc/a\\nExecStartPost=/bin/evil': a systemd unit cannot hold '\\n'"),
    ("unit-specifier", ["install-service", "--policy", "/etc/%n.nfk", "--print"], b"", 2,
     r"a systemd unit cannot hold '%'"),
    ("unit-dollar", ["install-service", "--nfkit", "/opt/$HOME/nfkit", "--print"], b"", 2,
     r"a systemd unit cannot hold '\$'"),
    ("unit-root-is-file", ["install-service", "--root", "plain.log"], b"", 2,
     r"^nfkit install-service: error: cannot install the unit under plain.log"),
    # -- top level --------------------------------------------------------------------------
    ("no-command", [], b"", 2, r"the following arguments are required: COMMAND"),
    ("unknown-command", ["frobnicate"], b"", 2, r"invalid choice: 'frobnicate'"),
]


@pytest.mark.parametrize(
    ("argv", "stdin", "code", "pattern"),
    [pytest.param(argv, stdin, code, pattern, id=name) for name, argv, stdin, code, pattern
     in CASES],
)
def test_hostile_input(
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    stdin: bytes | None,
    code: int,
    pattern: str,
) -> None:
    assert_clean_error(run_cli(capsys, argv, stdin), code, pattern)


def test_case_ids_are_unique() -> None:
    names = [case[0] for case in CASES]
    assert len(names) == len(set(names))


def test_missing_namespace_is_never_created(capsys: pytest.CaptureFixture[str]) -> None:
    """pyroute2 and ``ip netns`` can create a namespace as a side effect: nothing may."""
    assert not namespace_exists(NO_SUCH_NS)
    for argv in (
        ["apply", "--netns", NO_SUCH_NS, str(POLICY)],
        ["apply", "--netns", NO_SUCH_NS, "--dry-run", str(POLICY)],
        ["apply", "--netns", NO_SUCH_NS, "--rollback"],
        ["doctor", "--netns", NO_SUCH_NS],
        ["doctor", "--netns", NO_SUCH_NS, "--json"],
        ["summarize", "--netns", NO_SUCH_NS, "plain.log"],
    ):
        assert run_cli(capsys, argv).code == 2
        assert not namespace_exists(NO_SUCH_NS), argv


def test_doctor_json_error_for_missing_namespace(capsys: pytest.CaptureFixture[str]) -> None:
    import json

    outcome = run_cli(capsys, ["doctor", "--netns", NO_SUCH_NS, "--json"])
    assert outcome.code == 2 and "Traceback" not in outcome.err
    data = json.loads(outcome.out)
    assert data["netns"] == NO_SUCH_NS and "does not exist" in data["error"]


def test_failed_state_leaves_old_state(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """A log that cannot be read stops the run before the state is written."""
    log = tmp_path / "kern.log"
    log.write_bytes((Path.cwd() / "plain.log").read_bytes())
    state = tmp_path / "state.json"
    base = ["summarize", *OFFLINE, "--state", str(state), str(log)]
    assert run_cli(capsys, base).code == 0
    before = state.read_bytes()
    # A rotated copy that is a truncated .gz: reading it fails, and the state must not move.
    packed = gzip.compress(b"an older first line\n" + log.read_bytes() * 50)
    (tmp_path / "kern.log.2.gz").write_bytes(packed[: len(packed) // 2])
    with log.open("ab") as handle:
        handle.write((Path.cwd() / "plain.log").read_bytes()[:500].rsplit(b"\n", 1)[0] + b"\n")
    outcome = run_cli(capsys, base)
    assert_clean_error(outcome, 2, r"kern.log.2.gz: cannot read log")
    assert state.read_bytes() == before
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_pending_try_files_that_are_not_ours(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """Corrupt --try state: a clean error, and the file is left for a human to look at."""
    for content in (b"[]", b"{}", b'{"backup": 5, "deadline": 1}', b"\xff", b"[" * 100_000,
                    b'{"backup": "/x", "deadline": "soon"}'):
        pending = tmp_path / f"pending-{NO_SUCH_NS}.json"
        pending.write_bytes(content)
        for action in ("--confirm", "--rollback"):
            outcome = run_cli(capsys, ["apply", "--netns", NO_SUCH_NS, action,
                                       "--state-dir", str(tmp_path)])
            assert_clean_error(outcome, 2, rf"^nfkit apply: error: .*pending-{NO_SUCH_NS}.json")
            assert pending.read_bytes() == content


def test_state_dir_is_a_file(capsys: pytest.CaptureFixture[str]) -> None:
    outcome = run_cli(capsys, ["apply", "--confirm", "--state-dir", "plain.log"])
    assert_clean_error(outcome, 2, r"^nfkit apply: error: cannot read .*plain.log/pending-host")


def test_watchdog_with_corrupt_pending_file_reports_it(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    pending = tmp_path / "pending-x.json"
    pending.write_text('{"backup": "/x"}')
    outcome = run_cli(capsys, ["apply", "--watchdog", str(pending)])
    assert outcome.code == 1 and "Traceback" not in outcome.err
    assert "could not restore" in outcome.out and "deadline None is not a time" in outcome.out


def test_install_service_accepts_spaces(capsys: pytest.CaptureFixture[str]) -> None:
    outcome = run_cli(capsys, ["install-service", "--policy", "/etc/nfkit/my policy.nfk",
                               "--nfkit", "/opt/nf kit/nfkit", "--print"])
    assert outcome.code == 0, outcome.err
    assert "ExecStart='/opt/nf kit/nfkit' apply --backend nftables " \
           "'/etc/nfkit/my policy.nfk'" in outcome.out


@pytest.mark.parametrize(
    "command",
    ["compile", "parse", "summarize", "report", "merge", "apply", "doctor", "install-service"],
)
def test_help_reads_well(capsys: pytest.CaptureFixture[str], command: str) -> None:
    """Every ``--help`` exits 0, fits in 100 columns and states its exit codes."""
    outcome = run_cli(capsys, [command, "--help"])
    assert outcome.code == 0 and outcome.err == ""
    assert outcome.out.startswith(f"usage: nfkit {command}")
    assert max(len(line) for line in outcome.out.splitlines()) <= 100
    assert re.search(r"[Ee]xit codes?:", outcome.out), command


def test_no_temporary_files_left(hostile_dir: Path) -> None:
    """Failed writes (``-o`` into a directory, a bad state file) leave no ``.tmp`` behind."""
    leftovers = [p for p in hostile_dir.rglob("*") if p.name.endswith(".tmp")]
    assert leftovers == []
    assert list((hostile_dir / "adir").iterdir()) == []


def test_text_report_shows_control_characters_escaped(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """Whoever can write to the kernel log must not drive the admin's terminal or mail."""
    line = (
        "Nov 25 04:17:23 srv kernel: [ 1.0] \x1b[31mRED\x1b]0;pwned\x07\r IN=eth0 OUT= "
        "MAC=52:54:00:00:00:10:52:54:00:00:00:01:08:00 SRC=198.51.100.7 DST=192.0.2.10 LEN=60 "
        "TOS=0x00 PREC=0x00 TTL=52 ID=1 DF PROTO=TCP SPT=40000 DPT=23 WINDOW=64240 RES=0x00 "
        "SYN URGP=0\n"
    )
    log = tmp_path / "esc.log"
    log.write_text(line)
    outcome = run_cli(capsys, ["summarize", *OFFLINE, str(log)])
    assert outcome.code == 0, outcome.err
    assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]", outcome.out)
    assert "\\x1b[31mRED\\x1b]0;pwned\\x07" in outcome.out
