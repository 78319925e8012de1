"""Where validated rows go: two implementations of one sink, a dry run and a sending run.

The runner reads, maps and validates batches the same way for both; only the sink differs.
A dry run settles every row at once (``ready`` or its problem) and writes the batch straight
through. A sending run decides each row's fate: settled without sending (invalid, kept from an
earlier run, a repeat of a row that succeeded) or handed to the workers, whose ``settle`` is
the one way a sent row (and the repeats waiting for it) ends.
"""

import threading
from collections.abc import Callable
from dataclasses import replace
from typing import Protocol

from importer.ledger import RunLedger
from importer.mapping.binding import MappedBatch
from importer.results.writer import ResultsWriter
from importer.rows.outcomes import Outcome
from importer.rows.problems import Code, RowProblem
from importer.rows.validation import has_dedupe_key
from importer.runs.journal import Journal, JournalError
from importer.runs.resume import Plan
from importer.sending.workers import RowTask, Workers

REORDER_LIMIT = 20_000
"""Finished rows the writer may hold behind a slow earlier row before the reader waits."""


class Sink(Protocol):
    """Takes every batch of the input, in order, and gives each row exactly one outcome."""

    reads_to_the_end: bool
    """Whether the run reads every row even after a stop (to record the unsent ones)."""

    @property
    def sent_any(self) -> bool: ...

    def take(self, mapped: MappedBatch, first: int,
             identities: list[tuple[str, ...]]) -> None: ...

    def finish(self) -> None: ...


class DryRunSink:
    """Nothing is sent: valid rows are ``ready``; the first few bodies are kept as previews."""

    reads_to_the_end = False
    sent_any = False

    def __init__(self, writer: ResultsWriter, preview: int,
                 previews: list[dict[str, object]]) -> None:
        self.writer = writer
        self.preview = preview
        self.previews = previews

    def take(self, mapped: MappedBatch, first: int,
             identities: list[tuple[str, ...]]) -> None:
        problems = mapped.problems
        for index, row in enumerate(mapped.rows):
            if len(self.previews) >= self.preview:
                break
            if index not in problems:
                self.previews.append({"row": row, "body": {"fields": mapped.fields(index)}})
        self.writer.add_many(
            [Outcome.ready(row, identity) if index not in problems
             else Outcome.from_problem(row, problems[index], identity)
             for index, (row, identity) in enumerate(zip(mapped.rows, identities, strict=True))],
            first)

    def finish(self) -> None:
        pass


class SendingSink:
    """Rows to the API through the workers; rows settled here are written in batches.

    The journal of these results decides first whether a row is sent (``plan``); then the
    import ledger (``ledger``), consulted once per batch.
    """

    reads_to_the_end = True

    def __init__(self, plan: Plan, journal: Journal, workers: Workers, writer: ResultsWriter,
                 stop: threading.Event, on_stop: Callable[[str], None],
                 ledger: RunLedger | None) -> None:
        self.plan = plan
        self.journal = journal
        self.workers = workers
        self.writer = writer
        self.stop = stop
        self.on_stop = on_stop
        self.ledger = ledger
        self.settled: list[tuple[int, Outcome]] = []

    @property
    def sent_any(self) -> bool:
        return self.workers.submitted > 0

    def take(self, mapped: MappedBatch, first: int,
             identities: list[tuple[str, ...]]) -> None:
        fields, earlier = self._ledger_check(mapped)
        for index, (row, identity) in enumerate(zip(mapped.rows, identities, strict=True)):
            problem = mapped.problems.get(index)
            if problem is not None and problem.code != Code.DUPLICATE_IN_FILE:
                outcome: Outcome | None = Outcome.from_problem(row, problem, identity)
            else:
                outcome = self._send_or_settle(
                    first + index, row, fields.get(index) or mapped.fields(index), identity,
                    problem, earlier.get(index))
            if outcome is not None:
                self.settled.append((first + index, outcome))
        self._write_settled()
        self.writer.wait_for_room(REORDER_LIMIT, self.stop)

    def finish(self) -> None:
        self._write_settled()
        self.workers.finish()

    def _write_settled(self) -> None:
        """Hand the rows settled here to the writer before the reader may wait to send a row,
        so they reach the results (and the counts) while the API is still working."""
        if self.settled:
            self.writer.add(self.settled)
            self.settled = []

    def _ledger_check(self, mapped: MappedBatch) -> tuple[dict[int, dict[str, str]],
                                                          dict[int, Outcome]]:
        """The fields of the batch's sendable rows, and the outcomes the ledger already holds
        for them: one lookup per read batch."""
        if self.ledger is None:
            return {}, {}
        problems = mapped.problems
        indexes = [i for i in range(len(mapped.rows)) if i not in problems]
        fields = {i: mapped.fields(i) for i in indexes}
        found = self.ledger.check([mapped.rows[i] for i in indexes], [fields[i] for i in indexes])
        return fields, {i: o for i, o in zip(indexes, found, strict=True) if o is not None}

    def _send_or_settle(self, seq: int, row: int, fields: dict[str, str],
                        identity: tuple[str, ...], problem: RowProblem | None,
                        earlier: Outcome | None) -> Outcome | None:
        """Queue the row for sending, or return its outcome when it must not be sent.

        A repeat of an earlier row's key (``problem``) is sent only if the row carrying that
        key came to nothing (see ``sending.repeats``). Outcomes the journal settles are handed
        to the ledger again, in case a crash kept them from it; the ledger's ``earlier``
        outcome settles a row the journal does not. A row the ledger settles was never sent,
        so like every unsent row it is not journaled (a resumed run asks the ledger again),
        and it succeeded (the ledger holds 201s and 409s), so its repeats are its duplicates
        without any state kept for it.
        """
        keyed = has_dedupe_key(fields)
        outcome = self.plan.settled(row, keyed)
        if outcome is None and earlier is not None and self.ledger:
            self.ledger.counts.used(earlier)
            earlier.identity = identity
            return earlier
        if outcome is not None and self.ledger:
            self.ledger.record(fields, outcome, fresh=False)
        job = RowTask(seq, row, fields, identity, keyed, self.plan.maybe_sent(row), problem)
        if outcome is None and self.stop.is_set():
            outcome = self.workers.delivery.stopped(row, keyed, job.maybe_sent)
        if outcome is not None:
            outcome = replace(outcome, identity=identity)
            self._journal(outcome)
            self.workers.settle(job, outcome, write=False)
            return outcome
        self._write_settled()
        if problem is not None:
            return self.workers.follow(job)
        self.workers.submit(job)
        return None

    def _journal(self, outcome: Outcome) -> None:
        try:
            self.journal.outcome(outcome)
        except JournalError as exc:
            self.on_stop(exc.strerror or str(exc))
