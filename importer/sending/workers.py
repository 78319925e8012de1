"""The worker threads that send rows concurrently, fed through a bounded queue.

The queue is small on purpose: when the API is slow, the reader waits instead of piling rows
up in memory.
"""

import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol

from importer.rows.outcomes import Outcome
from importer.rows.problems import RowProblem
from importer.runs.journal import Journal, JournalError
from importer.sending.delivery import Delivery
from importer.sending.repeats import Followers


@dataclass(frozen=True, slots=True)
class RowTask:
    """A row on its way to the API."""

    seq: int
    row: int
    fields: dict[str, str]
    identity: tuple[str, ...]
    keyed: bool
    maybe_sent: bool
    repeats: RowProblem | None = None


class OutcomeSink(Protocol):
    """Where workers put each row's outcome: ``ResultsWriter`` in a run, a list in a test.

    ``add`` is called from any worker thread, in any order; ``path`` names it in errors.
    """

    path: Path

    def add(self, outcomes: list[tuple[int, Outcome]]) -> None: ...


class Workers:
    """``concurrency`` threads delivering jobs; each outcome is journaled, then written.

    A worker never dies with a job in hand: whatever goes wrong, the job's row gets an outcome
    in the results, and a failure that makes the run unsafe (the journal cannot be written)
    stops the run.
    """

    def __init__(self, delivery: Delivery, journal: Journal, writer: OutcomeSink,
                 concurrency: int, stop: threading.Event,
                 on_stop: Callable[[str], None],
                 on_settled: Callable[[dict[str, str], Outcome], None] | None = None) -> None:
        self.delivery = delivery
        self.journal = journal
        self.writer = writer
        self.stop = stop
        self.on_stop = on_stop
        self.on_settled = on_settled
        self.submitted = 0
        self.followers = Followers()
        self.queue: queue.Queue[RowTask | None] = queue.Queue(maxsize=concurrency * 2)
        self.threads = [threading.Thread(target=self._work, name=f"sender-{n}", daemon=True)
                        for n in range(concurrency)]
        for thread in self.threads:
            thread.start()

    def submit(self, job: RowTask) -> None:
        """Queue a job, waiting while the workers are busy (a stop turns it into a skip)."""
        while True:
            if not any(thread.is_alive() for thread in self.threads):
                self.on_stop("internal error: every sending thread has ended; please report this")
            if self.stop.is_set():
                self._record(job, self._unsent(job))
                return
            try:
                self.followers.sending(job.row)
                self.queue.put(job, timeout=0.2)
                self.submitted += 1
                return
            except queue.Full:
                continue

    def finish(self, tick: Callable[[], None]) -> None:
        """Let the queued and in-flight rows finish; ``tick`` keeps progress alive meanwhile."""
        ends = len(self.threads)
        while ends and any(t.is_alive() for t in self.threads):
            try:
                self.queue.put(None, timeout=0.2)
                ends -= 1
            except queue.Full:
                tick()
        for thread in self.threads:
            while thread.is_alive():
                thread.join(0.2)
                tick()
        while not self.queue.empty():
            job = self.queue.get_nowait()
            if job is not None:
                self._record(job, self._unsent(job))

    def _work(self) -> None:
        while (job := self.queue.get()) is not None:
            self._handle(job)

    def _handle(self, job: RowTask) -> None:
        """Deliver one job, then settle or send the rows that were waiting for it.

        If it succeeded, its followers are duplicates of it; if not, the first follower is sent
        in its place (from this thread, so the queue never waits on itself) and the others wait
        for that one.
        """
        pending = [job]
        while pending:
            current = pending.pop()
            outcome = self._deliver(current)
            succeeded, waiting = self.followers.finished(current.row, outcome.status)
            if not waiting:
                continue
            if not succeeded:
                first, *rest = sorted(waiting, key=lambda j: j.row)
                self.followers.promote(first, rest)
                pending.append(first)
                continue
            for follower in waiting:
                self._record(follower, self._duplicate_of(follower, current.row))

    @staticmethod
    def _duplicate_of(follower: RowTask, leader: int) -> Outcome:
        problem = follower.repeats
        assert problem is not None
        repeat = problem.code.problem(problem.field, leader, key=problem.field, first=leader)
        return Outcome.from_problem(follower.row, repeat, ())

    def _deliver(self, job: RowTask) -> Outcome:
        """The job's outcome, recorded; nothing that goes wrong escapes this thread."""
        if self.stop.is_set():
            return self._record(job, self._unsent(job))
        try:
            delivered = self.delivery.deliver(
                job.row, job.fields, keyed=job.keyed, maybe_sent=job.maybe_sent,
                on_send=lambda: self.journal.sending(job.row))
        except JournalError as exc:
            self.on_stop(exc.strerror or str(exc))
            return self._record(job, self._unsent(replace(job, maybe_sent=True)))
        except Exception as exc:
            self.on_stop(f"internal error while sending row {job.row} ({type(exc).__name__}: "
                         f"{exc}); please report this")
            return self._record(job, self._unsent(replace(job, maybe_sent=True)))
        if delivered.stop_reason:
            self.on_stop(delivered.stop_reason)
        return self._record(job, delivered.outcome)

    def _unsent(self, job: RowTask) -> Outcome:
        return self.delivery.stopped(job.row, job.keyed, job.maybe_sent)

    def _record(self, job: RowTask, outcome: Outcome) -> Outcome:
        """Journal, then results; a journal that cannot be written stops the run."""
        outcome = replace(outcome, identity=job.identity)
        try:
            self.journal.outcome(outcome)
        except Exception as exc:
            self.on_stop(str(exc.strerror) if isinstance(exc, JournalError) else
                         f"cannot write the journal {self.journal.path} ({exc})")
        else:
            if self.on_settled:
                self.on_settled(job.fields, outcome)
        try:
            self.writer.add([(job.seq, outcome)])
        except Exception as exc:
            self.on_stop(f"cannot write the results {self.writer.path} ({exc})")
        return outcome

