"""Progress for people: a tqdm bar on a terminal, a plain log line every few seconds elsewhere.

Cron mails and CI logs fill up with carriage-return bar redraws, so without a terminal the
display writes one line at the start, one at least every ``LOG_EVERY`` seconds and one at the
end. Everything here is rendering: the numbers come from the run's ``Progress`` snapshots,
which count finished rows (see ``importer.runs.reporting``).
"""

import time
from collections import deque
from typing import NoReturn, TextIO

from tqdm import tqdm

from importer.rows.outcomes import Status
from importer.runs.reporting import Progress, RunStart

LOG_EVERY = 5.0
RATE_WINDOW = 10.0
"""Seconds of recent snapshots the rate (and so the ETA) is measured over: rows kept from an
earlier run settle at once and would otherwise promise an ETA the API cannot keep."""
PROG = "routera-import"


def header_lines(start: RunStart) -> list[str]:
    """What is read and where it goes, shown before the first request leaves."""
    lines = [f"{PROG}: {start.input.name} -> {start.results}",
             f"  read      {start.source}",
             f"  sent to   {start.api}"]
    return lines + [f"  note: {note}" for note in start.notes]


def counts_text(counts: dict[Status, int]) -> str:
    return ", ".join(f"{status} {n:,}" for status, n in counts.items() if n) or "none yet"


def duration_text(seconds: float) -> str:
    """``0:07``, ``12:05``, ``1:02:03``: hours only when there are any."""
    whole = max(0, round(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class Rate:
    """Rows per second over the last ``RATE_WINDOW`` seconds of snapshots."""

    def __init__(self) -> None:
        self.samples: deque[tuple[float, int]] = deque()

    def add(self, progress: Progress) -> float | None:
        """The current rate, or None while there is not yet a second of data."""
        self.samples.append((progress.elapsed, progress.done))
        while len(self.samples) > 2 and progress.elapsed - self.samples[1][0] >= RATE_WINDOW:
            self.samples.popleft()
        first_time, first_done = self.samples[0]
        span = progress.elapsed - first_time
        if span < 1.0:
            return None
        return (progress.done - first_done) / span


def log_line(progress: Progress, rate: float | None, clock: str) -> str:
    """``02:00:15 12,000 of ~50,000 rows done (created 11,873, invalid 127), 312 rows/s,
    ETA 2:04`` (``ETA ?`` while unknown; the last line gives the average rate and how long
    the run took)."""
    total = f" of ~{progress.total:,}" if progress.total else ""
    if progress.final:
        average = progress.done / progress.elapsed if progress.elapsed > 0 else 0.0
        return (f"{clock} {progress.done:,} rows done ({counts_text(progress.counts)}), "
                f"{average:,.0f} rows/s, ended after {duration_text(progress.elapsed)}")
    speed = "? rows/s" if rate is None else f"{rate:,.0f} rows/s"
    eta = "?"
    if rate and progress.total and progress.total >= progress.done:
        eta = duration_text((progress.total - progress.done) / rate)
    return (f"{clock} {progress.done:,}{total} rows done ({counts_text(progress.counts)}), "
            f"{speed}, ETA {eta}")


class ProgressDisplay:
    """Receives the run's start and ``Progress`` snapshots; ``close`` before the summary."""

    def __init__(self, stream: TextIO, *, quiet: bool) -> None:
        self.stream = stream
        self.quiet = quiet
        self.terminal = stream.isatty()
        self.bar: tqdm[NoReturn] | None = None
        self.rate = Rate()
        self.last_log: float | None = None

    def start(self, start: RunStart) -> None:
        """The header, before anything is sent (the summary repeats it at the end)."""
        if self.quiet:
            return
        self.stream.write("\n".join(header_lines(start)) + "\n")
        self.stream.flush()

    def __call__(self, progress: Progress) -> None:
        if self.quiet:
            return
        if self.terminal:
            self._bar(progress)
            return
        rate = self.rate.add(progress)
        due = self.last_log is None or progress.elapsed - self.last_log >= LOG_EVERY
        if due or progress.final:
            self.last_log = progress.elapsed
            self.stream.write(log_line(progress, rate, time.strftime("%H:%M:%S")) + "\n")
            self.stream.flush()

    def _bar(self, progress: Progress) -> None:
        bar = self.bar
        if bar is None:
            bar = self.bar = tqdm(total=progress.total, unit="row", file=self.stream,
                                  dynamic_ncols=True, leave=False)
        if progress.total and progress.done > progress.total:
            bar.total = progress.done
        bar.update(progress.done - bar.n)
        bar.set_postfix_str(counts_text(progress.counts), refresh=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
