"""Read only what is new since the last cron run, across log rotation.

For each log file named on the command line (``/var/log/kern.log``) the state remembers every
member of its *rotation family* — the file itself and its rotated copies ``kern.log.1``,
``kern.log.2.gz``, ``kern.log-20261124[.gz]`` — by the hash of its first line, with the offset
(in uncompressed bytes, after the last complete line) read so far and its inode.

The first line identifies a file's content wherever rotation moves it and whether or not it is
compressed, so one rule covers both kinds of rotation:

* **rename** (``kern.log`` -> ``kern.log.1`` -> ``kern.log.2.gz``): the old content turns up under
  a new name with the same first line; reading continues at the remembered offset (lines written
  just before the rename are not lost), and the new ``kern.log`` is a new file read from 0;
* **copytruncate**: the copy carries the old first line (continue at the offset), the truncated
  original gets a new first line (read from 0).

When several files of a family start with the same line (a logger that writes a fixed header),
the first line cannot tell them apart: the state also keeps a hash of the last line read before
each offset, and the file holding that line at that offset is the one to continue; the others are
new content, read from their start (keys ``HASH+1``, ``HASH+2`` in the state file).

A file with no complete line yet is left for the next run. On the very first run the live file
is read from its start and older rotated files are taken as already read.

The caller writes the new state with :meth:`LogState.save` only **after** the report is out:
temp file + fsync + ``os.replace``, so a run killed before that point leaves the old state and
the next run reads the same lines again — nothing lost, nothing counted twice in the state or
in the history (whose rows are keyed by :attr:`IncrementalReader.run_key`).
"""

from __future__ import annotations

import contextlib
import fcntl
import gzip
import hashlib
import json
import os
import re
import sys
import tempfile
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from nfkit.errors import LogReadError, StateError

STATE_VERSION = 1
_CHUNK = 1 << 20
_ROTATED = re.compile(r"^(?:\.(\d+)|-(\d{8,10}))(\.gz)?$")


@dataclass(slots=True)
class Mark:
    """How far one file of a rotation family has been read."""

    offset: int
    inode: int = 0
    name: str = ""
    #: Hash and length of the bytes just before ``offset`` (the last line read): tells which
    #: of several files with the same first line is the one that was being read.
    tail: str = ""
    tail_len: int = 0


def first_line_hash(path: Path) -> str | None:
    """Hash of the first complete line of ``path`` (decompressed), or None if it has none."""
    with _open(path) as handle:
        head = handle.readline(1 << 16)
    if not head.endswith(b"\n"):
        return None
    return hashlib.sha256(head).hexdigest()[:32]


def _open(path: Path) -> IO[bytes]:
    if path.name.endswith(".gz"):
        return gzip.open(path, "rb")  # type: ignore[return-value]
    return path.open("rb")


def rotation_family(path: Path) -> list[Path]:
    """``path`` (if it exists) and its rotated copies, newest first."""
    members: list[tuple[tuple[int, int], Path]] = []
    if path.exists():
        members.append(((0, 0), path))
    try:
        siblings = list(path.parent.iterdir())
    except OSError:
        siblings = []
    prefix = path.name
    for sibling in siblings:
        if not sibling.name.startswith(prefix) or sibling == path:
            continue
        match = _ROTATED.match(sibling.name[len(prefix) :])
        if not match or not sibling.is_file():
            continue
        if match.group(1) is not None:
            members.append(((1, int(match.group(1))), sibling))
        else:  # dateext: newer dates first
            members.append(((2, -int(match.group(2))), sibling))
    members.sort(key=lambda item: (item[0], item[1].name))
    return [member for _, member in members]


class LogState:
    """Per rotation family (keyed by the live file's absolute path): first-line hash -> Mark."""

    def __init__(self, families: dict[str, dict[str, Mark]] | None = None) -> None:
        self.families: dict[str, dict[str, Mark]] = families or {}

    @classmethod
    def load(cls, path: str | Path) -> LogState:
        """Read a state file; a missing file gives an empty state, a corrupt one ``StateError``."""
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return cls()
        except (OSError, UnicodeDecodeError) as exc:
            raise StateError(f"{path}: cannot read state file: {exc}") from None
        try:
            data = json.loads(text)
            if not isinstance(data, dict) or data.get("version") != STATE_VERSION:
                raise ValueError(f"expected version {STATE_VERSION}")
            families: dict[str, dict[str, Mark]] = {}
            for base, members in data["files"].items():
                families[str(base)] = {
                    str(digest): Mark(
                        offset=_count(mark["offset"], "offset"),
                        inode=_count(mark.get("inode", 0), "inode"),
                        name=str(mark.get("name", "")),
                        tail=str(mark.get("tail", "")),
                        tail_len=_count(mark.get("tail_len", 0), "tail_len"),
                    )
                    for digest, mark in members.items()
                }
        except (ValueError, KeyError, TypeError, AttributeError, RecursionError) as exc:
            raise StateError(
                f"{path}: corrupt state file ({exc}); move it away to start afresh"
            ) from None
        return cls(families)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "version": STATE_VERSION,
            "files": {
                base: {
                    digest: {"offset": m.offset, "inode": m.inode, "name": m.name}
                    | ({"tail": m.tail, "tail_len": m.tail_len} if m.tail_len else {})
                    for digest, m in sorted(members.items())
                }
                for base, members in sorted(self.families.items())
            },
        }

    def save(self, path: str | Path) -> None:
        """Write atomically: temp file in the same directory, fsync, ``os.replace``, fsync dir."""
        atomic_write(Path(path), json.dumps(self.to_dict(), indent=1).encode() + b"\n")

    def digest(self, bases: Iterable[str]) -> str:
        """A key for "this state, these files": equal for a re-run after a killed run."""
        part = {base: self.to_dict()["files"].get(base, {}) for base in sorted(bases)}
        return hashlib.sha256(json.dumps(part, sort_keys=True).encode()).hexdigest()[:32]


def _count(value: object, what: str) -> int:
    """A non-negative JSON integer (not a float, bool or string) from a state file."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(f"{what} {value!r} is not an integer")
    if value < 0:
        raise ValueError(f"negative {what}")
    return value


def atomic_write(path: Path, data: bytes | Iterable[bytes]) -> None:
    """Replace ``path`` with ``data`` (bytes, or pieces of it written in turn) atomically:
    readers see the old or the new file."""
    directory = path.parent if str(path.parent) else Path()
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    except OSError as exc:
        raise StateError(f"{path}: cannot write: {exc.strerror or exc}") from None
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as handle:
            if isinstance(data, bytes):
                handle.write(data)
            else:
                handle.writelines(data)
            handle.flush()
            os.fsync(handle.fileno())
        if path.exists():
            with contextlib.suppress(OSError):
                tmp.chmod(path.stat().st_mode & 0o7777)
        tmp.replace(path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise StateError(f"{path}: cannot write: {exc.strerror or exc}") from None
    except BaseException:  # the pieces failed to come (or an interrupt): no stray file
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    with contextlib.suppress(OSError):
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


@contextlib.contextmanager
def locked(state_path: str | Path) -> Iterator[None]:
    """Hold an exclusive lock beside the state file, so two cron runs never overlap."""
    lock_path = Path(f"{state_path}.lock")
    try:
        handle = lock_path.open("a")
    except OSError as exc:
        raise StateError(f"{lock_path}: cannot open lock file: {exc.strerror or exc}") from None
    with handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise StateError(
                f"{state_path}: another nfkit summarize run holds the lock {lock_path}"
            ) from None
        yield


def _read_lines(handle: IO[bytes], complete_only: bool) -> Iterator[tuple[str, int]]:
    """Yield ``(line, bytes consumed including newline)``; a cut last line only if allowed."""
    for line, used, _ in _read_raw_lines(handle, complete_only):
        yield line, used


def _read_raw_lines(handle: IO[bytes], complete_only: bool) -> Iterator[tuple[str, int, bytes]]:
    """Like :func:`_read_lines`, with the line's bytes as read (newline included)."""
    rest = b""
    while True:
        chunk = handle.read(_CHUNK)
        if not chunk:
            break
        data = rest + chunk
        lines = data.split(b"\n")
        rest = lines.pop()
        for raw in lines:
            yield raw.decode("utf-8", "replace"), len(raw) + 1, raw
    if rest and not complete_only:
        yield rest.decode("utf-8", "replace"), len(rest), rest


def _tail_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:32]


def _continues(path: Path, mark: Mark) -> bool:
    """True when ``path`` holds, just before ``mark.offset``, the line last read there."""
    if not mark.tail_len or mark.tail_len > mark.offset:
        return False
    with _open(path) as handle:
        if _seek(handle, path, mark.offset - mark.tail_len) != mark.offset - mark.tail_len:
            return False
        data = handle.read(mark.tail_len)
    return _tail_hash(data) == mark.tail


def read_whole(path: str) -> Iterator[str]:
    """Every line of a file (``.gz`` decompressed; ``-`` is standard input)."""
    if path == "-":
        if sys.stdin is None:  # started with standard input closed (``<&-``)
            raise LogReadError("<stdin>: cannot read log: standard input is closed")
        try:
            for line in sys.stdin.buffer:
                yield line.rstrip(b"\n").decode("utf-8", "replace")
        except (OSError, ValueError) as exc:
            raise LogReadError(f"<stdin>: cannot read log: {exc}") from None
        return
    try:
        with _open(Path(path)) as handle:
            for line, _ in _read_lines(handle, complete_only=False):
                yield line
    except (OSError, EOFError, zlib.error) as exc:
        raise LogReadError(f"{path}: cannot read log: {_reason(exc)}") from None


def _reason(exc: BaseException) -> str:
    """``No such file or directory`` rather than ``[Errno 2] No such file ...: 'path'``."""
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc)


class IncrementalReader:
    """Yield the lines not read before, for some live log files; compute the next state."""

    def __init__(self, state: LogState, paths: Iterable[str | Path]) -> None:
        self.old = state
        self.paths = [Path(p).absolute() for p in paths]
        self.bases = [str(p) for p in self.paths]
        #: Equal for two runs starting from the same state over the same files.
        self.run_key = state.digest(self.bases)
        self._new: dict[str, dict[str, Mark]] = {}
        self.files_read = 0

    def lines(self) -> Iterator[str]:
        """Yield the new lines, oldest file first; raise ``LogReadError`` if one is unreadable."""
        for path in self.paths:
            yield from self._family_lines(path)

    def _family_lines(self, path: Path) -> Iterator[str]:
        base = str(path)
        known = self.old.families.get(base)
        first_run = known is None
        members = rotation_family(path)
        if not members:
            raise LogReadError(f"{path}: no such log file (nor rotated copies of it)")
        new: dict[str, Mark] = {}
        self._new[base] = new
        plan: list[tuple[Path, str, int]] = []
        digests: list[tuple[Path, str | None]] = []
        for member in members:
            try:
                digests.append((member, first_line_hash(member)))
            except (OSError, EOFError, zlib.error) as exc:
                raise LogReadError(f"{member}: cannot read log: {_reason(exc)}") from None
        counts: dict[str, int] = {}
        for _, digest in digests:
            if digest is not None:
                counts[digest] = counts.get(digest, 0) + 1
        consumed: set[str] = set()  # marks of the old state already matched to a file
        for member, digest in digests:
            if digest is None:
                continue  # no complete line yet: next run
            try:
                size = _content_size(member) if first_run and member != path else 0
                mark = _match(member, digest, counts[digest] > 1, known or {}, consumed)
            except (OSError, EOFError, zlib.error) as exc:
                raise LogReadError(f"{member}: cannot read log: {_reason(exc)}") from None
            if mark is not None:
                start = mark.offset
            elif first_run and member != path:
                start = size  # history before the first run is not reported
            else:
                start = 0
            key = next(k for n in range(len(new) + 1) if (k := _key(digest, n)) not in new)
            tail, tail_len = (mark.tail, mark.tail_len) if mark is not None else ("", 0)
            new[key] = Mark(start, _inode(member), member.name, tail, tail_len)
            plan.append((member, key, start))
        for member, key, start in reversed(plan):  # oldest first
            compressed = member.name.endswith(".gz")
            try:
                with _open(member) as handle:
                    if start and _seek(handle, member, start) < start:
                        # Shorter than what was read, same first line: rewritten, read afresh.
                        handle.seek(0)
                        start = 0
                        new[key].tail, new[key].tail_len = "", 0
                    offset = start
                    last: tuple[bytes, int] | None = None
                    for line, used, raw in _read_raw_lines(handle, not compressed):
                        offset += used
                        new[key].offset = offset
                        last = (raw, used)
                        yield line
                    if last is not None:
                        raw, used = last
                        new[key].tail = _tail_hash(raw + b"\n" if used > len(raw) else raw)
                        new[key].tail_len = used
            except (OSError, EOFError, zlib.error) as exc:
                raise LogReadError(f"{member}: cannot read log: {_reason(exc)}") from None
            self.files_read += 1

    def new_state(self) -> LogState:
        """The state to save once the report is out (families not read this run are kept)."""
        families = dict(self.old.families)
        families.update(self._new)
        return LogState(families)


def _key(digest: str, index: int) -> str:
    """State key of the ``index``-th file of a family starting with the same line."""
    return digest if index == 0 else f"{digest}+{index}"


def _match(
    member: Path, digest: str, shared: bool, known: dict[str, Mark], consumed: set[str]
) -> Mark | None:
    """The mark of the old state that ``member`` continues (None: new content).

    Usually the first line alone says which file is which. When several files of the family
    start with the same line (a fixed header), the line last read before the remembered
    offset tells the file that was being read from the ones that are new.
    """
    if not shared:
        return known.get(digest)
    candidates = [
        (key, mark) for key, mark in sorted(known.items())
        if key.split("+", 1)[0] == digest and key not in consumed
    ]
    for key, mark in candidates:
        if _continues(member, mark):
            consumed.add(key)
            return mark
    for key, mark in candidates:
        if not mark.tail_len:  # a state written before tails existed: as it used to be
            consumed.add(key)
            return mark
    return None


def _seek(handle: IO[bytes], path: Path, offset: int) -> int:
    """Seek to ``offset`` or as near as the content allows; return where it landed."""
    if not path.name.endswith(".gz"):
        size = os.fstat(handle.fileno()).st_size
        return handle.seek(min(offset, size))
    return handle.seek(offset)


def _inode(path: Path) -> int:
    try:
        return path.stat().st_ino
    except OSError:
        return 0


def _content_size(path: Path) -> int:
    """Uncompressed size up to the last complete line (what "fully read" means)."""
    if not path.name.endswith(".gz"):
        with path.open("rb") as handle:
            size = handle.seek(0, os.SEEK_END)
            if size == 0:
                return 0
            # walk back to the last newline
            pos = size
            while pos > 0:
                step = min(4096, pos)
                handle.seek(pos - step)
                block = handle.read(step)
                index = block.rfind(b"\n")
                if index >= 0:
                    return pos - step + index + 1
                pos -= step
            return 0
    total = 0
    with gzip.open(path, "rb") as handle:
        while True:
            chunk = handle.read(_CHUNK)
            if not chunk:
                break
            total += len(chunk)
    return total
