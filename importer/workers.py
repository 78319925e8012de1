"""The worker threads that send rows concurrently, fed through a bounded queue.

The queue is small on purpose: when the API is slow, the reader waits instead of piling rows
up in memory.
"""

import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace

from importer.delivery import Delivery
from importer.journal import Journal
from importer.results import ResultsWriter


@dataclass(frozen=True, slots=True)
class Job:
    """A row on its way to the API."""

    seq: int
    row: int
    fields: dict[str, str]
    identity: tuple[str, ...]
    keyed: bool
    maybe_sent: bool


class Workers:
    """``concurrency`` threads delivering jobs; each outcome is journaled, then written."""

    def __init__(self, delivery: Delivery, journal: Journal, writer: ResultsWriter,
                 concurrency: int, stop: threading.Event,
                 on_stop: Callable[[str], None]) -> None:
        self.delivery = delivery
        self.journal = journal
        self.writer = writer
        self.stop = stop
        self.on_stop = on_stop
        self.queue: queue.Queue[Job | None] = queue.Queue(maxsize=concurrency * 2)
        self.threads = [threading.Thread(target=self._work, name=f"sender-{n}", daemon=True)
                        for n in range(concurrency)]
        for thread in self.threads:
            thread.start()

    def submit(self, job: Job) -> None:
        """Queue a job, waiting while the workers are busy (a stop turns it into a skip)."""
        while True:
            if self.stop.is_set():
                self._settle_unsent(job)
                return
            try:
                self.queue.put(job, timeout=0.2)
                return
            except queue.Full:
                continue

    def finish(self, tick: Callable[[], None]) -> None:
        """Let the queued and in-flight rows finish; ``tick`` keeps progress alive meanwhile."""
        for _ in self.threads:
            self.queue.put(None)
        for thread in self.threads:
            while thread.is_alive():
                thread.join(0.2)
                tick()

    def _work(self) -> None:
        while (job := self.queue.get()) is not None:
            if self.stop.is_set():
                self._settle_unsent(job)
                continue
            try:
                self._deliver(job)
            except Exception as exc:
                self.on_stop(f"internal error while sending row {job.row}: "
                             f"{type(exc).__name__}")
                self._settle_unsent(replace(job, maybe_sent=True))

    def _deliver(self, job: Job) -> None:
        delivered = self.delivery.deliver(
            job.row, job.fields, keyed=job.keyed, maybe_sent=job.maybe_sent,
            on_send=lambda: self.journal.sending(job.row))
        outcome = replace(delivered.outcome, identity=job.identity)
        self.journal.outcome(outcome)
        self.writer.add(job.seq, outcome)
        if delivered.stop_reason:
            self.on_stop(delivered.stop_reason)

    def _settle_unsent(self, job: Job) -> None:
        outcome = replace(self.delivery.stopped(job.row, job.keyed, job.maybe_sent),
                          identity=job.identity)
        self.journal.outcome(outcome)
        self.writer.add(job.seq, outcome)
