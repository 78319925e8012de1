"""The worker threads that send rows concurrently, fed through a bounded queue.

The queue is small on purpose: when the API is slow, the reader waits instead of piling rows
up in memory.
"""

import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol

from importer.rows.outcomes import Outcome
from importer.rows.problems import RowProblem
from importer.runs.journal import Journal, JournalError
from importer.sending.delivery import Delivery
from importer.sending.repeats import Decision, Repeats

WAIT_STEP = 0.1
"""Seconds between looks at the stop flag while waiting."""
CLAIM_IN_TURN = 0.05
"""A claim answered within this many seconds of the row's turn to be sent keeps that turn;
one that waited for another run takes a new turn, so rows released together do not leave in
a burst."""


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
    """``concurrency`` threads delivering jobs; each outcome of a request is journaled, then
    written.

    A worker never dies with a job in hand: whatever goes wrong, the job's row gets an outcome
    in the results, and a failure that makes the run unsafe (the journal cannot be written)
    stops the run. Every wait (for room in the queue, for the threads to end) watches the stop
    flag, and every way a row ends goes through ``settle``, which also decides the fate of
    the repeats that were waiting for it.
    """

    def __init__(self, delivery: Delivery, journal: Journal, writer: OutcomeSink,
                 concurrency: int, stop: threading.Event,
                 on_stop: Callable[[str], None],
                 on_settled: Callable[[dict[str, str], Outcome], None] | None = None,
                 claim: Callable[[RowTask], Outcome | None] | None = None) -> None:
        self.delivery = delivery
        self.claim = claim
        self.journal = journal
        self.writer = writer
        self.stop = stop
        self.on_stop = on_stop
        self.on_settled = on_settled
        self.submitted = 0
        self.repeats: Repeats[RowTask] = Repeats()
        self.queue: queue.Queue[RowTask | None] = queue.Queue(maxsize=concurrency * 2)
        self.threads = [threading.Thread(target=self._work, name=f"sender-{n}", daemon=True)
                        for n in range(concurrency)]
        for thread in self.threads:
            thread.start()

    def submit(self, job: RowTask) -> None:
        """Queue a job, waiting while the workers are busy (a stop turns it into a skip)."""
        if job.keyed:
            self.repeats.sending(job.row)
        while True:
            if self.stop.is_set():
                self.settle(job, self._unsent(job))
                return
            if not any(thread.is_alive() for thread in self.threads):
                self.on_stop("internal error: every sending thread has ended; please report this")
                continue
            try:
                self.queue.put(job, timeout=WAIT_STEP)
                self.submitted += 1
                return
            except queue.Full:
                continue

    def follow(self, job: RowTask) -> Outcome | None:
        """A repeat of an earlier row's key: its outcome now (a duplicate), or None when it
        waits for the key's carrier or is sent in its place."""
        problem = job.repeats
        assert problem is not None and problem.field is not None
        decision, carrier = self.repeats.follow(job.row, (problem.earlier, problem.field), job)
        if decision is Decision.DUPLICATE:
            return _duplicate_of(job, carrier)
        if decision is Decision.SEND:
            self.submit(job)
        return None

    def settle(self, job: RowTask, outcome: Outcome, *, write: bool = True) -> None:
        """The one way a row ends: record it (unless the caller writes it, ``write=False``),
        then settle the repeats that waited for it, sending the next carrier from this thread
        (so a worker never waits on the queue it drains)."""
        pending = [(job, outcome, write)]
        while pending:
            current, result, record = pending.pop()
            if record:
                result = self._record(current, result)
            actions = self.repeats.settle(current.row, result.status, keyed=current.keyed,
                                          stopping=self.stop.is_set())
            for follower, decision, carrier in reversed(actions):
                if decision is Decision.DUPLICATE:
                    pending.append((follower, _duplicate_of(follower, carrier), True))
                else:
                    pending.append((follower, self._deliver(follower), True))

    def finish(self) -> None:
        """Let the queued and in-flight rows finish (each bounded by its deadline); rows still
        queued after a stop are settled as not sent."""
        ends = len(self.threads)
        while ends and any(t.is_alive() for t in self.threads):
            try:
                self.queue.put(None, timeout=WAIT_STEP)
                ends -= 1
            except queue.Full:
                self._drain_if_stopped()
        for thread in self.threads:
            while thread.is_alive():
                thread.join(WAIT_STEP)
        self._drain_if_stopped(force=True)

    def _drain_if_stopped(self, force: bool = False) -> None:
        """After a stop, rows still in the queue are settled as skipped here, so the threads
        reach their end markers at once instead of working through the queue."""
        if not (force or self.stop.is_set()):
            return
        while True:
            try:
                job = self.queue.get_nowait()
            except queue.Empty:
                return
            if job is None:
                self.queue.put(None)
                return
            self.settle(job, self._unsent(job))

    def _work(self) -> None:
        while (job := self.queue.get()) is not None:
            paced, held = self._claimed_in_turn(job)
            if held is None:
                self.settle(job, self._deliver(job, paced=paced), write=True)
            else:
                self.settle(job, self._record(job, held, journal=False), write=False)

    def _claimed_in_turn(self, job: RowTask) -> tuple[bool, Outcome | None]:
        """A keyless row is claimed (``claim``, the import ledger's) when its turn to be sent
        has come, not before: a claim says the request may leave at any moment, and a run
        killed while holding it leaves the row "may exist". Returns whether the row still has
        its turn, and the row's outcome when another run created it or is sending it.
        """
        if self.claim is None or job.keyed or self.stop.is_set():
            return False, None
        if not self.delivery.throttle.acquire(self.stop):
            return False, None
        asked = time.monotonic()
        held = self._held_elsewhere(job)
        return held is None and time.monotonic() - asked < CLAIM_IN_TURN, held

    def _held_elsewhere(self, job: RowTask) -> Outcome | None:
        """The claim's answer: another run may be sending the same row, and then its outcome
        is this row's, without a request. Like every row the ledger settles, it is not
        journaled: this run did not send it, and a resumed run asks the ledger again. Nothing
        that goes wrong escapes this thread."""
        assert self.claim is not None
        try:
            return self.claim(job)
        except Exception as exc:
            self.on_stop(f"internal error while claiming row {job.row} ({type(exc).__name__}: "
                         f"{exc}); please report this")
            return None

    def _deliver(self, job: RowTask, *, paced: bool = False) -> Outcome:
        """The job's outcome; nothing that goes wrong escapes this thread. ``paced``: its
        first request's turn has come already."""
        if self.stop.is_set():
            return self._unsent(job)
        try:
            delivered = self.delivery.deliver(
                job.row, job.fields, keyed=job.keyed, maybe_sent=job.maybe_sent,
                on_send=lambda: self.journal.sending(job.row), paced=paced)
        except JournalError as exc:
            self.on_stop(exc.strerror or str(exc))
            return self._unsent(job)
        except Exception as exc:
            self.on_stop(f"internal error while sending row {job.row} ({type(exc).__name__}: "
                         f"{exc}); please report this")
            return self._unsent(replace(job, maybe_sent=True))
        if delivered.stop_reason:
            self.on_stop(delivered.stop_reason)
        return delivered.outcome

    def _unsent(self, job: RowTask) -> Outcome:
        return self.delivery.stopped(job.row, job.keyed, job.maybe_sent)

    def _record(self, job: RowTask, outcome: Outcome, *, journal: bool = True) -> Outcome:
        """Journal (unless the row was not sent by this run), then results; a journal that
        cannot be written stops the run."""
        outcome = replace(outcome, identity=job.identity)
        if journal:
            self._journal(job, outcome)
        try:
            self.writer.add([(job.seq, outcome)])
        except Exception as exc:
            self.on_stop(f"cannot write the results {self.writer.path} ({exc})")
        return outcome

    def _journal(self, job: RowTask, outcome: Outcome) -> None:
        """The journal first; the ledger (``on_settled``) only once the journal has it."""
        try:
            self.journal.outcome(outcome)
        except Exception as exc:
            self.on_stop(str(exc.strerror) if isinstance(exc, JournalError) else
                         f"cannot write the journal {self.journal.path} ({exc})")
        else:
            if self.on_settled:
                self.on_settled(job.fields, outcome)


def _duplicate_of(follower: RowTask, carrier: int) -> Outcome:
    problem = follower.repeats
    assert problem is not None
    repeat = problem.code.problem(problem.field, carrier, key=problem.field, first=carrier)
    return Outcome.from_problem(follower.row, repeat, follower.identity)
