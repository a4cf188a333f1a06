"""Progress of long steps as plain log lines with an ETA: readable in a terminal, a CI log and
the run's log file alike (no carriage returns, no bars).
"""

from __future__ import annotations

import logging
import time

#: Seconds between progress lines.
PROGRESS_INTERVAL_S = 10.0


def format_seconds(seconds: float) -> str:
    """``1 h 02 min``, ``3 min 05 s`` or ``42 s``."""
    seconds = max(0.0, seconds)
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    if minutes:
        return f"{minutes} min {secs:02d} s"
    return f"{secs} s"


class Progress:
    """Counts work done and logs ``label: done/total unit (pct), elapsed, ETA`` now and then.

    Args:
        logger: Where the lines go.
        label: What is being done (``scene ozarks``, ``patches export``).
        total: Units of work in all (``None`` when unknown: no percentage, no ETA).
        unit: Name of a unit (``patches``, ``files``).
        interval_s: Seconds between lines; the last unit always gets one.
    """

    def __init__(
        self,
        logger: logging.Logger,
        label: str,
        total: int | None,
        unit: str,
        interval_s: float = PROGRESS_INTERVAL_S,
    ) -> None:
        self.logger, self.label, self.total, self.unit = logger, label, total, unit
        self.interval_s = interval_s
        self.done = 0
        self.started = self.last = time.monotonic()

    def update(self, count: int = 1) -> None:
        """Count ``count`` more units; log when the interval has passed or all are done."""
        self.done += count
        now = time.monotonic()
        finished = self.total is not None and self.done >= self.total
        if now - self.last >= self.interval_s or finished:
            self.last = now
            self.logger.info("%s", self.line(now))

    def line(self, now: float | None = None) -> str:
        """The current progress line."""
        elapsed = (now or time.monotonic()) - self.started
        if not self.total:
            return f"{self.label}: {self.done} {self.unit}, {format_seconds(elapsed)}"
        share = self.done / self.total
        eta = elapsed / share - elapsed if share > 0 else float("nan")
        remaining = "done" if share >= 1 else f"ETA {format_seconds(eta)}" if share > 0 else ""
        return (
            f"{self.label}: {self.done}/{self.total} {self.unit} ({share:.0%}), "
            f"{format_seconds(elapsed)} elapsed, {remaining}".rstrip(", ")
        )
