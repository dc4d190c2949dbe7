"""Property tests: no text makes the parser raise or hang.

A fixed, deadline-free example budget keeps the run short and repeatable in CI; a parse that
loops or backtracks badly shows up as a slow test, not as a flaky deadline.
"""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nfkit import LogRecord, iter_records, parse_line

CORPUS_LINES = (Path(__file__).resolve().parent / "data" / "kernel-corpus.log").read_text()
CORPUS = CORPUS_LINES.splitlines()
TOKENS = sorted(
    {token for line in CORPUS for token in line.split(" ") if token}
    | {"[", "]", "INCOMPLETE", "[8", "bytes]", "OPT", "(", ")", "TRUNCATED", "ARP", "ESP", "{"}
)

FUZZ = settings(
    max_examples=300,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)


def _check(line: str) -> None:
    record = parse_line(line)
    assert record is None or isinstance(record, LogRecord)
    if record is not None:
        record.to_dict()  # every value must be JSON-ready, including a nested packet


@FUZZ
@given(st.text(max_size=300))
def test_arbitrary_text(line: str) -> None:
    _check(line)


@FUZZ
@given(st.sampled_from(CORPUS), st.integers(min_value=0, max_value=1100))
def test_corpus_lines_cut_anywhere(line: str, cut: int) -> None:
    _check(line[:cut])


@FUZZ
@given(
    st.sampled_from(CORPUS),
    st.lists(
        st.tuples(st.integers(min_value=0, max_value=1100), st.sampled_from(TOKENS)), max_size=6
    ),
    st.lists(st.integers(min_value=0, max_value=60), max_size=4),
)
def test_corpus_lines_with_tokens_inserted_and_removed(
    line: str, inserts: list[tuple[int, str]], removals: list[int]
) -> None:
    tokens = line.split(" ")
    for index in removals:
        if index < len(tokens):
            del tokens[index]
    for index, token in inserts:
        tokens.insert(index % (len(tokens) + 1), token)
    _check(" ".join(tokens))


@FUZZ
@given(
    st.sampled_from(CORPUS),
    st.lists(st.tuples(st.integers(min_value=0, max_value=1100), st.characters()), max_size=8),
)
def test_corpus_lines_with_characters_replaced(line: str, edits: list[tuple[int, str]]) -> None:
    chars = list(line)
    for index, char in edits:
        if chars:
            chars[index % len(chars)] = char
    _check("".join(chars))


@FUZZ
@given(st.lists(st.one_of(st.sampled_from(CORPUS), st.text(max_size=80)), max_size=20))
def test_iter_records_never_raises_when_not_strict(lines: list[str]) -> None:
    stream = iter_records(lines)
    records = list(stream)
    assert stream.records == len(records)
    assert stream.records + stream.unparsed <= stream.lines == len(lines)


def test_pathological_lines_are_fast_enough_to_finish() -> None:
    # Regex backtracking traps: many "IN=" with no " OUT=", a huge prefix, deep brackets.
    for line in (
        "IN=" * 20000,
        "IN=x" * 20000 + " OUT=",
        "x" * 100_000 + "IN=eth0 OUT= ",
        "IN=a OUT= SRC=1.2.3.4 " + "[" * 2000 + "]" * 2000,
        "IN=a OUT= " + "OPT ( " * 3000,
        "IN=a OUT=b " * 3000,
    ):
        _check(line)
