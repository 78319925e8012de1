"""Progress for people: a tqdm bar on a terminal, a plain log line every few seconds elsewhere.

Cron mails and CI logs fill up with carriage-return bar redraws, so without a terminal the
display falls back to one line every ``LOG_EVERY`` seconds.
"""

import time
from typing import NoReturn, TextIO

from tqdm import tqdm

from importer.rows.outcomes import Status
from importer.runs.runner import Progress

LOG_EVERY = 5.0


def _counts(counts: dict[Status, int]) -> str:
    return ", ".join(f"{status} {n:,}" for status, n in counts.items() if n)


class ProgressDisplay:
    """Receives ``Progress`` snapshots from the runner; ``close`` before printing the summary."""

    def __init__(self, stream: TextIO, *, quiet: bool) -> None:
        self.stream = stream
        self.quiet = quiet
        self.terminal = stream.isatty()
        self.bar: tqdm[NoReturn] | None = None
        self.last_log = time.monotonic()

    def __call__(self, progress: Progress) -> None:
        if self.quiet:
            return
        if self.terminal:
            self._bar(progress)
        elif time.monotonic() - self.last_log >= LOG_EVERY:
            self.last_log = time.monotonic()
            rate = progress.done / progress.elapsed if progress.elapsed else 0.0
            total = f" of ~{progress.total:,}" if progress.total else ""
            self.stream.write(f"{time.strftime('%H:%M:%S')} {progress.done:,}{total} rows done "
                              f"({_counts(progress.counts)}), {rate:,.0f} rows/s\n")
            self.stream.flush()

    def _bar(self, progress: Progress) -> None:
        if self.bar is None:
            self.bar = tqdm(total=progress.total, unit="row", file=self.stream,
                            dynamic_ncols=True, leave=False)
        if progress.total and progress.done > progress.total:
            self.bar.total = progress.done
        self.bar.update(progress.done - self.bar.n)
        self.bar.set_postfix_str(_counts(progress.counts), refresh=False)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
