"""A one-line progress bar on a terminal (stderr), silent elsewhere.

Drawn only when the stream is a TTY and the job is large enough to be
worth watching; redrawn at most ten times a second; the line is cleared
when the job ends, so what follows (the summary) starts clean.
"""

from __future__ import annotations

import time
from typing import TextIO

MIN_TOTAL = 2000
_INTERVAL = 0.1


class ProgressBar:
    """``advance(n)`` as work is done, ``close()`` at the end."""

    def __init__(
        self,
        stream: TextIO,
        label: str,
        total: int,
        min_total: int = MIN_TOTAL,
        width: int = 30,
    ) -> None:
        self.stream = stream
        self.label = label
        self.total = max(total, 1)
        self.width = width
        self.done = 0
        self._shown = 0.0
        isatty = getattr(stream, "isatty", None)
        self.active = bool(isatty and isatty()) and total >= min_total

    def advance(self, count: int) -> None:
        self.done = min(self.total, self.done + count)
        now = time.monotonic()
        if self.active and (
            now - self._shown >= _INTERVAL or self.done == self.total
        ):
            self._shown = now
            self.stream.write("\r" + self.line())
            self.stream.flush()

    def line(self) -> str:
        filled = self.width * self.done // self.total
        bar = "#" * filled + "." * (self.width - filled)
        percent = 100 * self.done // self.total
        return f"{self.label} [{bar}] {percent:3d}% {self.done}/{self.total}"

    def close(self) -> None:
        if self.active:
            self.stream.write("\r" + " " * len(self.line()) + "\r")
            self.stream.flush()
