"""Log files of several hosts for the fleet tests (from benchmarks/genlog.py)."""

from __future__ import annotations

import gzip
import importlib.util
from pathlib import Path
from types import ModuleType

from nfkit.logs.aggregate import SummaryConfig
from nfkit.logs.segment import Segment

GENLOG_PATH = Path(__file__).resolve().parent.parent / "benchmarks" / "genlog.py"
#: The segment genlog's firewall sits on.
SEGMENT = Segment.from_values(
    networks=["192.168.1.0/24"], own_macs=["52:54:00:00:00:10"], gateway_macs=["52:54:00:00:00:01"]
)
CONFIG = SummaryConfig(segment=SEGMENT)


def genlog() -> ModuleType:
    """benchmarks/genlog.py as a module."""
    spec = importlib.util.spec_from_file_location("nfkit_fleet_genlog", GENLOG_PATH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def host_lines(host: str, count: int, seed: int) -> list[str]:
    """``count`` generated lines as host ``host`` logged them (syslog wrapper)."""
    lines = genlog().generate_lines(count, seed=seed, sources=200)
    return [line.replace(" fw kernel: ", f" {host} kernel: ", 1) for line in lines]


def write_host_log(path: Path, host: str, count: int, seed: int, junk: bool = True) -> Path:
    """Write a host's log (gzip when ``path`` ends in .gz), with a few non-packet lines."""
    lines = host_lines(host, count, seed)
    if junk:
        lines[3:3] = ["", f"Nov 20 00:00:01 {host} sshd[1]: Accepted publickey", "\x00garbage"]
    data = ("\n".join(lines) + "\n").encode()
    if path.name.endswith(".gz"):
        path.write_bytes(gzip.compress(data))
    else:
        path.write_bytes(data)
    return path
