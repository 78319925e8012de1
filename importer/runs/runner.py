"""The import job: reader -> mapping -> validation -> delivery -> results, in one direction.

``run_import`` is the library entry point the CLI and orchestrators (Airflow, a script) call. It
never prints and never exits: it returns a ``RunSummary`` (with the exit code a scheduler
should see) or raises an ``ImporterError`` before anything was sent.
"""

import gc
import os
import threading
from collections.abc import Callable, Iterator
from collections.abc import Mapping as EnvMapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import requests

from importer.errors import ConfigError, ImporterError
from importer.ledger import LedgerError, RunLedger, default_location, open_store
from importer.ledger import destination as ledger_destination
from importer.ledger.fingerprints import ACCOUNT_ENV
from importer.mapping.binding import BoundMapping, MappedBatch, bind
from importer.mapping.spec import ColumnMapping, load_mapping
from importer.readers import ReadOptions, Table, describe, open_table
from importer.results.errors_file import ErrorsFile, check_errors_path, default_errors_path
from importer.results.files import refuse_link, refuse_stranger
from importer.results.writer import (
    ResultsWriter,
    default_results_path,
    is_results_file,
    results_format,
)
from importer.rows.outcomes import IDENTITY_FIELDS, Outcome, Status
from importer.rows.validation import Validator
from importer.runs import resume
from importer.runs.journal import (
    Journal,
    JournalError,
    file_digest,
    journal_path,
)
from importer.runs.lock import ResultsLock
from importer.runs.reporting import Progress, Reporter, RunStart
from importer.runs.resume import Plan
from importer.runs.sinks import DryRunSink, SendingSink, Sink
from importer.runs.stopping import Stop
from importer.runs.summary import RunSummary, summary_sheet
from importer.sending.breaker import DEFAULT_MAX_REJECTED, Breaker, Watched
from importer.sending.client import RecordsClient, Target, Timeouts
from importer.sending.deadlines import build_session
from importer.sending.delivery import Delivery, RetryPolicy
from importer.sending.destination import destination
from importer.sending.throttle import Throttle
from importer.sending.workers import RowTask, Workers

GC_EVERY = 64


@dataclass(frozen=True)
class RunOptions:
    """Everything a run needs; the CLI flags map one to one onto these."""

    input: Path
    mapping: Path
    results: Path | None = None
    sheet: str | None = None
    header_row: int | None = None
    encoding: str | None = None
    delimiter: str | None = None
    skip_hidden_rows: bool = False
    """Leave out the rows the sheet hides (a filter); by default they are imported."""
    concurrency: int = 8
    timeouts: Timeouts = field(default_factory=Timeouts)
    max_retries: int = 5
    rate_limit: float | None = None
    dry_run: bool = False
    preview: int = 0
    sandbox: bool = False
    sandbox_db: Path | None = None
    api_url: str | None = None
    resume: bool = False
    force: bool = False
    retry_unknown: bool = False
    strict: bool = False
    overwrite: bool = False
    ledger: str | None = None
    """The ledger's SQLite path or ``postgresql://`` URL (default: ``default_location()``)."""
    no_ledger: bool = False
    """Send every row without consulting the ledger (what is created is still recorded)."""
    errors: Path | None = None
    max_rejected: float = DEFAULT_MAX_REJECTED
    """Stop when more than this percent of the rows the API answered were rejected (the
    breaker, ``importer.sending.breaker``); 100 turns the breaker off."""


@dataclass(frozen=True)
class RunHooks:
    """What a caller plugs into a run besides its options, whatever the input: the stop flag,
    the callbacks that report the run, the HTTP session and the environment (token, ledger)."""

    stop: threading.Event | None = None
    on_progress: Callable[[Progress], None] | None = None
    session: requests.Session | None = None
    environ: EnvMapping[str, str] | None = None
    on_start: Callable[[RunStart], None] | None = None


def run_import(
    options: RunOptions,
    *,
    stop: threading.Event | None = None,
    on_progress: Callable[[Progress], None] | None = None,
    session: requests.Session | None = None,
    environ: EnvMapping[str, str] | None = None,
    on_start: Callable[[RunStart], None] | None = None,
) -> RunSummary:
    """Import ``options.input``; raises ``ImporterError`` (nothing sent) for unusable input.

    ``on_start`` is called once, before the first request, with what is read and where it
    goes; ``on_progress`` then gets snapshots of the finished rows, from a thread of the run's
    own (see ``importer.runs.reporting``), the last one with ``final`` set.
    """
    started = _now()
    mapping = load_mapping(options.mapping)
    read = ReadOptions(options.sheet, options.header_row, options.encoding, options.delimiter,
                       options.skip_hidden_rows)
    table = open_table(options.input, read.with_defaults(
        mapping.sheet, mapping.header_row, mapping.encoding, mapping.delimiter))
    hooks = RunHooks(stop, on_progress, session, environ, on_start)
    return run_table(options, mapping, table, lambda: file_digest(options.input),
                     started=started, hooks=hooks)


def run_table(options: RunOptions, mapping: ColumnMapping, table: Table,
              digest: Callable[[], str], *, started: datetime, hooks: RunHooks) -> RunSummary:
    """Import a table that is already open, whatever it was read from (a file, rows in memory);
    ``digest`` names its content, so resume can tell whether it changed."""
    environ = os.environ if hooks.environ is None else hooks.environ
    bound, note = bind(mapping, table)
    results, results_note = _results_path(options)
    _refuse_unsafe_targets(results, options)
    errors = options.errors or default_errors_path(results, workbook=table.sheet is not None)
    check_errors_path(errors, results=results, input_path=options.input,
                      overwrite=options.overwrite)
    where = destination(dry_run=options.dry_run, sandbox=options.sandbox,
                        sandbox_db=options.sandbox_db, api_url=options.api_url,
                        object_name=mapping.object, environ=environ)
    with where as (target, api_note), ResultsLock(results) as lock:
        run = _Run(options, mapping, table, bound, results, target, hooks.stop or Stop())
        run.digest = digest
        run.summary.errors = errors
        run.summary.started = started
        run.summary.notes += [n for n in (note, results_note, lock.note) if n]
        run.summary.api = api_note
        run.ledger = _open_ledger(options, target, environ, run._request_stop, results)
        try:
            return run.run(hooks.on_start, hooks.on_progress, hooks.session)
        finally:
            if run.ledger:
                run.ledger.close()
                run.ledger.store.close()


def _open_ledger(options: RunOptions, target: Target | None, environ: EnvMapping[str, str],
                 on_error: Callable[[str], None], results: Path) -> RunLedger | None:
    """The ledger of the run's destination; a dry run neither reads nor writes it.

    The sandbox is one destination per database file whatever token it is given (it makes up
    a new one each time unless told), so its token is not part of the destination.
    """
    if target is None:
        return None
    store = open_store(options.ledger or default_location(environ))
    token = "" if target.name else target.token
    account = "" if target.name else environ.get(ACCOUNT_ENV, "").strip()
    try:
        return RunLedger(store, ledger_destination(target.identity, token, account),
                         options.input.name,
                         consult=not options.no_ledger, on_error=on_error,
                         retry_unknown=options.retry_unknown, results=str(results))
    except LedgerError:
        store.close()
        raise


def _results_path(options: RunOptions) -> tuple[Path, str]:
    """The results path, and a note when a dry run had to keep clear of a real run's results."""
    path = options.results or default_results_path(options.input)
    results_format(path)
    if path.exists() and path.resolve() == options.input.resolve():
        raise ConfigError(f"--results {path} is the input file itself; choose another path")
    if not path.parent.is_dir():
        raise ConfigError(f"--results {path}: the folder {path.parent} does not exist")
    if not (options.dry_run and _holds_real_results(path)):
        return path, ""
    if options.results is not None:
        raise ConfigError(f"--results {path} holds the results of a real run (see "
                          f"{journal_path(path).name}); give the dry run another --results path")
    dry = path.with_name(f"{options.input.stem}.dry-run{path.suffix}")
    return dry, (f"{path.name} holds a real run's results, so this dry run wrote {dry.name} "
                 "instead")


def _refuse_unsafe_targets(results: Path, options: RunOptions) -> None:
    """Before anything is sent: no link at a path we write, no stranger's file replaced."""
    refuse_stranger(results, "--results", "results", is_results_file, options.overwrite)
    refuse_link(journal_path(results), "journal")


def _holds_real_results(path: Path) -> bool:
    """A real run's results: its journal is there, or (journal deleted) the file itself shows
    rows that were sent. A dry run must not overwrite them: the next ``--resume --force``
    would take its "ready" rows for rows never sent."""
    return journal_path(path).exists() or (path.exists() and resume.shows_sent_rows(path))


class _Run:
    """One run's state: the open results, the journal, the workers and the counts."""

    def __init__(self, options: RunOptions, mapping: ColumnMapping, table: Table,
                 bound: BoundMapping, results: Path, target: Target | None,
                 stop: threading.Event) -> None:
        self.options = options
        self.mapping = mapping
        self.table = table
        self.bound = bound
        self.target = target
        self.stop = stop
        self.stop_reason = ""
        self.validator = Validator(mapping.required_any, {
            name: table.headers[i] for name, i in bound.column_of.items()})
        self.summary = RunSummary(options.input, results, {}, _now(), _now(),
                                  source=describe(table), dry_run=options.dry_run,
                                  strict=options.strict, mapping=mapping.path)
        self.seq = 0
        self.breaker = Breaker(options.max_rejected, mapping.known_fields)
        self.tripped = False
        self.writer: ResultsWriter
        self.ledger: RunLedger | None = None
        self.digest: Callable[[], str] = lambda: file_digest(options.input)
        self.errors: ErrorsFile
        self.owned_session: requests.Session | None = None

    def run(self, on_start: Callable[[RunStart], None] | None,
            on_progress: Callable[[Progress], None] | None,
            session: requests.Session | None) -> RunSummary:
        """The journal is created before the results file, so a results file without a journal
        never comes from a run that sent something."""
        self.errors = self._open_errors()
        try:
            plan, journal = self._start_journal()
        except BaseException:
            self.errors.abandon()
            raise
        self.writer = ResultsWriter(self.summary.results, durable=self.target is not None,
                                    staged=self.options.resume and self.summary.results.exists(),
                                    on_written=self.errors.written)
        if on_start is not None:
            self._announce(on_start)
        sink, client = self._sink(plan, journal, session)
        with Reporter(self._snapshot, on_progress) as reporter:
            try:
                self._stream(sink)
            finally:
                try:
                    sink.finish()
                finally:
                    if client is not None:
                        client.close()
                    if self.owned_session is not None:
                        self.owned_session.close()
                    reporter.close()
                    if self.ledger:
                        self.ledger.close()
                        self.summary.notes += [n for n in (self.ledger.counts.note(),) if n]
                    if journal:
                        self._close_journal(journal)
                    self._finish()
        return self.summary

    def _open_errors(self) -> ErrorsFile:
        """The errors file keeps the input's layout where the mapping relies on it."""
        assert self.summary.errors is not None
        table, options = self.table, self.options
        return ErrorsFile(
            self.summary.errors, table.headers, sheet=table.sheet,
            blank_rows=table.header_row - 1 if table.header_row_explicit else 0,
            encoding=options.encoding or self.mapping.encoding,
            delimiter=options.delimiter or self.mapping.delimiter)

    def _announce(self, on_start: Callable[[RunStart], None]) -> None:
        """Tell the caller what is about to happen; a display that fails (a broken pipe) must
        not change the outcome of an import, so it is noted and the run goes on."""
        summary = self.summary
        try:
            on_start(RunStart(summary.input, summary.results, summary.source, summary.api,
                              self.table.estimated_rows, tuple(summary.notes)))
        except Exception as exc:
            summary.notes.append(f"the start could not be reported ({type(exc).__name__}: "
                                 f"{exc}); the run went on")

    def _close_journal(self, journal: Journal) -> None:
        try:
            journal.close(complete=not self.stop_reason, breaker=self.tripped)
        except JournalError as exc:
            self._request_stop(exc.strerror or str(exc))

    def _stream(self, sink: Sink) -> None:
        """Every batch through mapping, validation and the sink, until the end or a stop.

        Once rows have been sent, a problem further down the file (a damaged line, a huge
        cell) can no longer be "nothing was sent": it stops the run instead, with its summary.
        """
        try:
            with _young_garbage_only():
                for number, batch in enumerate(self.table.batches()):
                    if self.stop.is_set() and not sink.reads_to_the_end:
                        self._request_stop("interrupted (Ctrl-C or SIGTERM) before every row "
                                           "was read")
                        return
                    self.errors.hold(self.seq, batch.cells)
                    mapped = self.bound.apply(batch)
                    self.validator.check(mapped)
                    first, self.seq = self.seq, self.seq + len(mapped.rows)
                    sink.take(mapped, first, _identities(mapped))
                    if number % GC_EVERY == GC_EVERY - 1:
                        gc.collect(1)
        except ImporterError as exc:
            if not sink.sent_any:
                raise
            self._request_stop(f"{exc}; the rows above it were sent, the rest were not read")
        except JournalError as exc:
            self._request_stop(exc.strerror or str(exc))
        except LedgerError as exc:
            if not sink.sent_any:
                raise
            self._request_stop(f"{exc}; fix the ledger first")
        except OSError as exc:
            self._request_stop(f"cannot write the results {self.summary.results} "
                               f"({exc.strerror or exc})")

    def _start_journal(self) -> tuple[Plan, Journal | None]:
        if self.target is None:
            return Plan(), None
        plan, journal, note = resume.start(
            self.summary.results, self._fingerprint(), resume=self.options.resume,
            force=self.options.force, retry_unknown=self.options.retry_unknown)
        if note:
            self.summary.notes.append(note)
        return plan, journal

    def _fingerprint(self) -> dict[str, object]:
        """What must be unchanged for earlier results to still describe these rows."""
        assert self.target is not None
        return {
            "input": self.digest(),
            "mapping": self.mapping.digest,
            "sheet": self.options.sheet or self.mapping.sheet,
            "header_row": self.table.header_row,
            "encoding": self.options.encoding,
            "delimiter": self.options.delimiter,
            "endpoint": self.target.identity,
            **({"ledger": self.ledger.store.identity(), "ledger_at": self.ledger.store.location}
               if self.ledger else {}),
        }

    def _sink(self, plan: Plan, journal: Journal | None, session: requests.Session | None
              ) -> tuple[Sink, RecordsClient | None]:
        """A dry run's sink, or the workers (and the client, to close at the end) of a real
        run."""
        if self.target is None or journal is None:
            return DryRunSink(self.writer, self.options.preview, self.summary.previews), None
        concurrency = max(1, self.options.concurrency)
        if session is None:
            session = build_session(self.target.base_url, concurrency)
            self.owned_session = session
        client = RecordsClient(self.target, session, self.options.timeouts)
        if isinstance(self.stop, Stop):
            self.stop.on_force(client.deadlines.expire_all)
        throttle = Throttle(self.options.rate_limit)
        delivery = Delivery(client, RetryPolicy(self.options.max_retries), throttle, self.stop)
        watched = Watched(self.writer, self.breaker, self._trip)
        workers = Workers(delivery, journal, watched, concurrency, self.stop,
                          on_stop=self._request_stop, on_settled=self._settled,
                          claim=self._claim if self.ledger else None)
        return SendingSink(plan, journal, workers, self.writer, self.stop, self._request_stop,
                           self.ledger), client

    def _settled(self, fields: dict[str, str], outcome: Outcome) -> None:
        """After the journal has a sent row's outcome: the ledger records 201s and 409s."""
        if self.ledger:
            self.ledger.record(fields, outcome, fresh=True)

    def _claim(self, job: RowTask) -> Outcome | None:
        """Before a keyless row is sent: the ledger's outcome for it when another run has
        created it or is sending it right now (see ``RunLedger.claim``)."""
        assert self.ledger is not None
        return self.ledger.claim(job.row, job.fields, self.stop)

    def _trip(self, reason: str) -> None:
        """The breaker saw systematic rejections: stop sending; the rest is skipped."""
        self.tripped = True
        self._request_stop(reason)

    def _request_stop(self, reason: str) -> None:
        if not self.stop_reason:
            self.stop_reason = reason
        self.stop.set()

    def _snapshot(self, final: bool) -> Progress:
        """Counted from outcomes as they come in, not as they reach the file in order."""
        elapsed = (_now() - self.summary.started).total_seconds()
        counts = dict(self.writer.counts)
        return Progress(sum(counts.values()), counts, elapsed, self.table.estimated_rows, final)

    def _finish(self) -> None:
        summary = self.summary
        summary.finished = _now()
        summary.counts = dict(self.writer.counts)
        interrupted = self.stop.is_set() and (summary.counts[Status.SKIPPED]
                                              or summary.counts[Status.FAILED])
        missing = self.writer.missing(self.seq)
        if missing:
            self._request_stop(f"{missing} rows have no outcome (an internal error); rerun "
                               "with --resume to settle them")
        summary.stop_reason = self.stop_reason or (
            "interrupted (Ctrl-C or SIGTERM) before every row was sent" if interrupted else "")
        summary.rejected_alert = "" if summary.stop_reason else self.breaker.verdict()
        if summary.rejected_alert:
            summary.notes.append(summary.rejected_alert)
        summary.empty_rows = self.table.stats.empty_rows
        summary.rows_above_header = self.table.stats.rows_above_header
        summary.notes += self.table.notes(self.bound.columns_used)
        if summary.rows == 0:
            summary.notes.append("no data rows below the header: nothing to do")
        self._close_errors()
        self.writer.close(summary_sheet(summary))

    def _close_errors(self) -> None:
        summary = self.summary
        try:
            note = self.errors.close()
        except OSError as exc:
            note = f"cannot write the errors file {summary.errors} ({exc.strerror or exc})"
        summary.errors_rows = self.errors.rows
        summary.error_codes = dict(self.errors.codes)
        if not self.errors.rows:
            summary.errors = None
        if note:
            summary.notes.append(note)


@contextmanager
def _young_garbage_only() -> Iterator[None]:
    """Pause automatic garbage collection while rows stream through.

    The pipeline allocates millions of short-lived lists and tuples without reference cycles;
    the collector's automatic passes over them cost about 15% of a large dry run. The loop
    collects the young generations itself every few batches, and the setting is restored.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _identities(mapped: MappedBatch) -> list[tuple[str, ...]]:
    """The columns that let a person find the row's record, for every row of the batch."""
    empty = [""] * len(mapped.rows)
    columns = [[v or "" for v in mapped.values[name]] if name in mapped.values else empty
               for name in IDENTITY_FIELDS]
    return list(zip(*columns, strict=True))


def _now() -> datetime:
    return datetime.now(UTC)
