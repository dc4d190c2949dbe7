"""A progress bar on standard error, only when standard error is a terminal.

Cron mail and redirected output never see it: :func:`progress_for` returns None unless the
stream is a TTY. The bar is redrawn at most ten times a second, on one line (``\\r``), and
erased when the work is done.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

__all__ = ["Progress", "progress_for"]


class Progress:
    """Draw ``done/total`` bytes as a bar with the rate; call it, then :meth:`close`."""

    def __init__(self, stream: TextIO, label: str = "summarize", width: int = 30) -> None:
        self.stream = stream
        self.label = label
        self.width = width
        self.started = time.monotonic()
        self._drawn = 0.0
        self._shown = False

    def __call__(self, done: int, total: int) -> None:
        """Report ``done`` of ``total`` bytes (redraws at most every 0.1 s, and at the end)."""
        now = time.monotonic()
        if now - self._drawn < 0.1 and done < total:
            return
        self._drawn = now
        self.stream.write("\r" + self.line(done, total, now - self.started))
        self.stream.flush()
        self._shown = True

    def line(self, done: int, total: int, elapsed: float) -> str:
        """The text of the bar (without carriage return)."""
        fraction = min(1.0, done / total) if total > 0 else 0.0
        filled = int(fraction * self.width)
        rate = done / elapsed / 1e6 if elapsed > 0 else 0.0
        bar = "#" * filled + "-" * (self.width - filled)
        return f"{self.label} [{bar}] {fraction * 100:5.1f}% {done / 1e6:,.0f} MB {rate:,.0f} MB/s"

    def close(self) -> None:
        """Erase the bar."""
        if self._shown:
            self.stream.write("\r" + " " * (len(self.line(1, 1, 1.0)) + 12) + "\r")
            self.stream.flush()
            self._shown = False


def progress_for(stream: TextIO | None = None, label: str = "summarize") -> Progress | None:
    """A :class:`Progress` on ``stream`` (default standard error) if it is a TTY, else None."""
    stream = stream if stream is not None else sys.stderr
    try:
        tty = stream.isatty()
    except (AttributeError, ValueError):
        tty = False
    return Progress(stream, label) if tty else None
