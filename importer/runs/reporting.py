"""What a run reports while it works: where it reads and sends, then how far it has got.

The library never prints. A caller (the CLI, an orchestrator) passes callbacks to
``run_import``: ``on_start`` gets a ``RunStart`` before the first request leaves, and
``on_progress`` gets ``Progress`` snapshots counted from finished rows. Rows finish on the
sending threads, so a ``Reporter`` thread of its own takes a snapshot every
``PROGRESS_EVERY`` seconds, whatever the reader or the workers are doing (waiting on a slow
API included): a display is never starved, and it is only ever called from one thread at a
time.
"""

import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from importer.rows.outcomes import Status

PROGRESS_EVERY = 0.25


@dataclass(frozen=True)
class RunStart:
    """What a run is about to do, reported before anything is sent."""

    input: Path
    results: Path
    source: str
    """How the input is read (format, encoding, header row)."""
    api: str
    """Where rows go: the API endpoint, the sandbox, or nothing (a dry run)."""
    total: int | None
    """Roughly how many data rows there are (an upper bound for text files), if known."""
    notes: tuple[str, ...] = ()


@dataclass
class Progress:
    """A snapshot of the rows that have an outcome so far (written to the results or not)."""

    done: int
    counts: dict[Status, int]
    elapsed: float
    total: int | None
    final: bool = False
    """The last snapshot of the run: every row that will get an outcome has one."""


class Reporter:
    """Calls ``on_progress`` with ``snapshot()`` right away, every ``every`` seconds, and once
    more (``final``) when the block ends. A display that raises is dropped: progress must never
    change the outcome of an import."""

    def __init__(self, snapshot: Callable[[bool], Progress],
                 on_progress: Callable[[Progress], None] | None,
                 every: float = PROGRESS_EVERY) -> None:
        self._snapshot = snapshot
        self._on_progress = on_progress
        self._every = every
        self._done = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._loop, name="progress", daemon=True)

    def __enter__(self) -> "Reporter":
        if self._on_progress is not None:
            self._report(final=False)
            self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        """Stop the thread and send the final snapshot (once)."""
        if self._done.is_set():
            return
        self._done.set()
        if self._thread.is_alive():
            self._thread.join()
        self._report(final=True)

    def _loop(self) -> None:
        while not self._done.wait(self._every):
            self._report(final=False)

    def _report(self, *, final: bool) -> None:
        with self._lock:
            if self._on_progress is None:
                return
            try:
                self._on_progress(self._snapshot(final))
            except Exception:
                self._on_progress = None
