"""Command line: parse arguments, call one library function, render what it returns.

Library errors become one line on stderr with the documented exit code; nothing here decides
what happens to a row. Every line printed passes through ``_redact`` so the token cannot leak
even if a server echoes it back.
"""

import argparse
import contextlib
import io
import json
import os
import secrets
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import TextIO, cast

from importer import __version__, _entry
from importer.errors import ConfigError, ImporterError
from importer.ledger import LEDGER_ENV, LedgerStore, Selection, default_location, open_store
from importer.ledger.admin import Chosen, choose, export_csv, view
from importer.ledger.store import EXPORT_COLUMNS, RunInfo
from importer.mapping.check import check_mapping
from importer.mapping.draft import init_mapping
from importer.progress import ProgressDisplay
from importer.readers import ReadOptions
from importer.readers.text import DELIMITERS
from importer.results.files import first_row, refuse_stranger, written_whole
from importer.runs.exits import ExitCode, epilog
from importer.runs.runner import RunOptions, run_import
from importer.runs.stopping import Stop
from importer.runs.summary import RunSummary, summary_text
from importer.sandbox import DEFAULT_CUSTOM_FIELDS, Faults, Sandbox
from importer.sandbox_limiters import SHAPES
from importer.sending.breaker import DEFAULT_MAX_REJECTED, FIRST_ROWS, WINDOW
from importer.sending.client import Timeouts, redact
from importer.sending.destination import TOKEN_ENV

PROG = "routera-import"
EXIT_OK, EXIT_ROWS, EXIT_USAGE, EXIT_ABORTED = ExitCode.OK, ExitCode.ROWS, ExitCode.USAGE, \
    ExitCode.STOPPED
DELIMITER_WORDS = {"comma": ",", "semicolon": ";", "tab": "\t", "pipe": "|", "\\t": "\t"}
EPILOG = epilog()
SUMMARY_BYTES = 1 << 20


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        command: Callable[[argparse.Namespace], int] = args.command
        return command(args)
    except ImporterError as exc:
        _error(str(exc))
        return EXIT_USAGE
    except KeyboardInterrupt:
        _error("interrupted before anything was sent")
        return EXIT_USAGE
    except Exception as exc:
        _error(f"internal error ({type(exc).__name__}: {exc}); any rows sent are recorded in "
               "the journal, so a rerun with --resume is safe; please report this")
        return EXIT_ABORTED


def build_parser() -> argparse.ArgumentParser:
    """Every command and option; ``tests/test_docs.py`` checks the README documents each."""
    parser = argparse.ArgumentParser(
        prog=PROG, description="Import spreadsheet exports into the Routera CRM, every row "
        "exactly once, with a results file that accounts for every row.", epilog=EPILOG)
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    commands = parser.add_subparsers(title="commands", required=True, metavar="COMMAND")
    _run_parser(commands)
    _init_parser(commands)
    _check_parser(commands)
    _sandbox_parser(commands)
    _ledger_parser(commands)
    return parser


def _run_parser(commands: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    run = commands.add_parser(
        "run", help="import a CSV/TSV/XLSX/XLS/ODS export",
        description="Map, validate and send every row of INPUT to POST /contacts, then write "
        "a results file with one line per row.", epilog=EPILOG)
    run.set_defaults(command=_run)
    run.add_argument("input", type=Path, metavar="INPUT", help="the export to import")
    run.add_argument("--mapping", type=Path, required=True, metavar="MAPPING.yaml",
                     help="column mapping file (see the README's mapping reference)")
    run.add_argument("--results", type=Path, metavar="PATH",
                     help="results file: .csv, .xlsx or .jsonl (default: <input stem>.results.csv "
                     "in the current folder)")
    run.add_argument("--overwrite", action="store_true",
                     help="replace an existing --results or --summary-json file even though "
                     "routera-import did not write it (symbolic links are refused all the same)")
    run.add_argument("--errors", type=Path, metavar="PATH",
                     help="file of the rows to fix and import again: .csv or .xlsx (default: "
                     "next to the results, <stem>.errors.csv, or .xlsx for a workbook input); "
                     "written only when a row was not created or duplicate")
    _read_arguments(run.add_argument_group("reading the input"))
    send = run.add_argument_group("sending")
    send.add_argument("--api-url", metavar="URL", help="API base URL (default: "
                      "$ROUTERA_API_URL, else https://api.routera.io); the token comes from "
                      f"${TOKEN_ENV}")
    send.add_argument("--sandbox", action="store_true",
                      help="send to the built-in sandbox API (local SQLite), not the real API")
    send.add_argument("--sandbox-db", type=Path, metavar="PATH",
                      help="the sandbox's database file (default: .routera-sandbox.db)")
    send.add_argument("--dry-run", action="store_true",
                      help="map and validate every row, send nothing (rows that would be sent "
                      "are 'ready')")
    send.add_argument("--preview", type=_count, default=0, metavar="N",
                      help="with --dry-run: print the first N request bodies")
    send.add_argument("--concurrency", type=_positive_int, default=8, metavar="N",
                      help="requests in flight at once (default: 8)")
    send.add_argument("--rate-limit", type=_positive_float, metavar="N",
                      help="at most N requests per second across all workers")
    send.add_argument("--timeout", type=_timeouts, default=Timeouts(), metavar="SECONDS",
                      help="read timeout, or CONNECT,READ (default: 5,30); a whole request may "
                      "take at most their sum")
    send.add_argument("--max-retries", type=_count, default=5, metavar="N",
                      help="retries per row for 429, 5xx and connection errors (default: 5)")
    again = run.add_argument_group("running again")
    again.add_argument("--resume", action="store_true",
                       help="keep the final outcomes of the earlier run into the same results "
                       "file and send only the rest")
    again.add_argument("--force", action="store_true",
                       help="with --resume: resume even though the input or mapping changed")
    again.add_argument("--retry-unknown", action="store_true",
                       help="send rows whose earlier outcome is unknown even though they have no "
                       "key the API can recognise (they may be created twice)")
    _ledger_argument(again)
    again.add_argument("--no-ledger", action="store_true",
                       help="send every row, even those the ledger says were imported earlier "
                       "(what is created is still recorded)")
    send.add_argument("--max-rejected", type=_percent, default=DEFAULT_MAX_REJECTED,
                      metavar="PCT",
                      help=f"stop when more than PCT%% of the last {WINDOW} rows the API "
                      f"answered were rejected (default: {DEFAULT_MAX_REJECTED:g}); the first "
                      f"{FIRST_ROWS} rows all rejected for the same reason also stop the run; "
                      "100 turns the breaker off")
    report = run.add_argument_group("reporting")
    report.add_argument("--strict", action="store_true",
                        help="exit 1 when any row is invalid or rejected")
    report.add_argument("--quiet", action="store_true",
                        help="print only errors and the summary")
    report.add_argument("--summary-json", type=Path, metavar="PATH",
                        help="also write the run summary as JSON, for schedulers")


def _ledger_argument(parser: argparse._ActionsContainer) -> None:
    parser.add_argument("--ledger", metavar="PATH|URL",
                        help=f"the import ledger: a SQLite file or a postgresql:// URL (default: "
                        f"${LEDGER_ENV}, else ledger.sqlite3 in the user's state folder)")


def _read_arguments(parser: argparse._ActionsContainer) -> None:
    """How to read an export: declared once for every command that reads one."""
    parser.add_argument("--sheet", metavar="NAME", help="workbook sheet: name or 1-based number "
                        "(default: the mapping's sheet, else the first visible sheet)")
    parser.add_argument("--header-row", type=_positive_int, metavar="N",
                        help="row that holds the headers (default: the mapping's, else the "
                        "first non-empty row)")
    parser.add_argument("--encoding", metavar="NAME", help="text encoding of a CSV (default: "
                        "detected: UTF-8, UTF-16, or the one plausible legacy encoding; "
                        "MS-DOS, x-mac-roman, cp1250 ... also accepted)")
    parser.add_argument("--delimiter", type=_delimiter, metavar="CHAR",
                        help="CSV delimiter: , ; tab | (default: detected)")
    parser.add_argument("--skip-hidden-rows", action="store_true",
                        help="leave out the rows a workbook sheet hides (a filter); by default "
                        "they are imported and the summary lists them")


def _init_parser(commands: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    init = commands.add_parser(
        "init", help="print a starting mapping for an export",
        description="Read INPUT's headers, match them to the API's fields (external_id, "
        "first_name, last_name, email, phone, company, job_title, city, country, website_url) "
        "by name, common synonyms and then similarity, and print a version 1 mapping to "
        "stdout; a comment on each line gives the match's confidence (check the ones below "
        "100%). Columns that match nothing are listed as comments.",
        epilog="example: routera-import init export.xlsx > mappings/export.yaml")
    init.set_defaults(command=_init)
    init.add_argument("input", type=Path, metavar="INPUT", help="the export to read")
    _read_arguments(init)
    init.add_argument("--fields", default="", metavar="A,B,C",
                      help="the account's custom field names, also matched against headers")


def _check_parser(commands: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    check = commands.add_parser(
        "check-mapping", help="validate a mapping (against an export's headers when given)",
        description="Validate MAPPING as `run` would, without sending anything; with INPUT, "
        "also resolve every column against its headers and list the columns not imported.",
        epilog="exit codes: 0 valid; 2 the mapping (or the input) has a problem")
    check.set_defaults(command=_check)
    check.add_argument("mapping", type=Path, metavar="MAPPING")
    check.add_argument("input", type=Path, metavar="INPUT", nargs="?")
    _read_arguments(check)


def _sandbox_parser(commands: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    sandbox = commands.add_parser(
        "sandbox", help="serve the local sandbox API",
        description="Serve the documented contacts API locally (SQLite), for trying the "
        "importer without an account. Requests must carry the token in "
        f"${TOKEN_ENV} (a random one is printed when it is not set).")
    sandbox.set_defaults(command=_sandbox)
    sandbox.add_argument("--host", default="127.0.0.1", help="address to listen on")
    sandbox.add_argument("--port", type=int, default=8765, help="port (default: 8765)")
    sandbox.add_argument("--db", type=Path, default=Path(".routera-sandbox.db"),
                         help="SQLite database file (default: .routera-sandbox.db)")
    sandbox.add_argument("--custom-fields", default=",".join(DEFAULT_CUSTOM_FIELDS),
                         metavar="A,B", help="custom fields the account accepts")
    faults = sandbox.add_argument_group("fault injection (for testing the importer)")
    faults.add_argument("--latency", type=float, default=0.0, metavar="SECONDS")
    faults.add_argument("--rate-limit", type=_positive_float, metavar="N",
                        help="answer 429 with Retry-After beyond N requests per second")
    faults.add_argument("--rate-limit-shape", choices=SHAPES, metavar="SHAPE",
                        help="how --rate-limit counts: sliding-window (default), fixed-window, "
                        "token-bucket")
    faults.add_argument("--rate-limit-burst", type=_positive_float, metavar="N",
                        help="token bucket size: requests allowed at once (implies token-bucket; "
                        "default N of --rate-limit)")
    faults.add_argument("--fail-rate", type=_probability, default=0.0, metavar="P",
                        help="answer 500 without storing")
    faults.add_argument("--drop-rate", type=_probability, default=0.0, metavar="P",
                        help="store, then drop the connection without answering")
    faults.add_argument("--slow-rate", type=_probability, default=0.0, metavar="P",
                        help="store, then answer only after --slow-seconds")
    faults.add_argument("--slow-seconds", type=float, default=5.0, metavar="SECONDS")
    faults.add_argument("--seed", type=int, help="random seed for reproducible faults")


def _ledger_parser(commands: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    ledger = commands.add_parser(
        "ledger", help="show, export or forget what earlier runs imported",
        description="The import ledger remembers, per destination, every record created (201) "
        "or found existing (409), so later runs do not send those rows again. These commands "
        "look at it and edit it; nothing is sent to the API.",
        epilog="exit codes: 0 done; 2 bad arguments, unknown destination, unreadable ledger, or "
        "forget refused without confirmation")
    actions = ledger.add_subparsers(title="actions", required=True, metavar="ACTION")
    listing = actions.add_parser("list", help="the destinations the ledger holds entries for")
    listing.set_defaults(command=_ledger_list)
    _ledger_argument(listing)
    show = actions.add_parser("show", help="how many entries a destination has, by file")
    show.set_defaults(command=_ledger_show)
    export = actions.add_parser("export", help="write a destination's entries as CSV")
    export.set_defaults(command=_ledger_export)
    export.add_argument("--output", type=Path, metavar="PATH",
                        help="CSV file to write (default: standard output)")
    export.add_argument("--overwrite", action="store_true",
                        help="replace an existing --output file that is not a ledger export")
    forget = actions.add_parser(
        "forget", help="forget entries, so their rows are sent again (after deleting records in "
        "the CRM)")
    forget.set_defaults(command=_ledger_forget)
    forget.add_argument("--all", action="store_true", help="every entry of the destination")
    forget.add_argument("--yes", action="store_true",
                        help="do not ask for confirmation (for scripts)")
    for action in (show, export, forget):
        _ledger_argument(action)
        where = action.add_argument_group("which destination (as the run named it)")
        where.add_argument("--api-url", metavar="URL", help="API base URL (default: "
                           f"$ROUTERA_API_URL, else https://api.routera.io), with the token in "
                           f"${TOKEN_ENV}")
        where.add_argument("--object", default="contacts", metavar="NAME",
                           help="the mapping's object (default: contacts)")
        where.add_argument("--sandbox-db", type=Path, metavar="PATH",
                           help="the sandbox database the run sent to")
        where.add_argument("--destination", type=_positive_int, metavar="N",
                           help="destination number N from 'ledger list'")
    for action in (export, forget):
        action.add_argument("--file", metavar="NAME",
                            help="only entries imported from this input file (its name)")
        action.add_argument("--key", metavar="VALUE",
                            help="only the entry with this email, external_id or website_url")


def _ledger_store(args: argparse.Namespace) -> LedgerStore:
    return open_store(args.ledger or default_location())


def _ledger_chosen(args: argparse.Namespace, store: LedgerStore) -> Chosen:
    return choose(store, os.environ, number=args.destination, api_url=args.api_url,
                  object_name=args.object, sandbox_db=args.sandbox_db)


def _ledger_list(args: argparse.Namespace) -> int:
    store = _ledger_store(args)
    try:
        known = store.destinations()
    finally:
        store.close()
    lines = [f"ledger {store.location}"]
    lines += [f"  {info.number:>3}  {info.endpoint}  token {info.token_print or '-'}  "
              f"{info.entries:,} entries" for info in known]
    if not known:
        lines.append("  (empty: no run has recorded anything here yet)")
    print(_redact("\n".join(lines)))
    return EXIT_OK


def _ledger_show(args: argparse.Namespace) -> int:
    store = _ledger_store(args)
    try:
        shown = view(store, _ledger_chosen(args, store))
    finally:
        store.close()
    lines = [f"ledger {store.location}",
             f"  {shown.chosen.endpoint} (destination {shown.chosen.number}): "
             f"{shown.entries:,} entries"]
    lines += [f"  {count:>9,}  {name}  (imported {first[:10]} .. {last[:10]})"
              for name, count, first, last in shown.files]
    lines += [_run_line(run) for run in shown.runs]
    print(_redact("\n".join(lines)))
    return EXIT_OK


def _run_line(run: RunInfo) -> str:
    state = ("running now" if run.alive else
             "ended without finishing (its claimed rows count as outcome unknown; resume its "
             "results file to settle them)")
    return (f"  run {state}: pid {run.pid} on {run.host} since {run.started_at}, results "
            f"{run.results}, {run.claims:,} rows without a key claimed")


def _ledger_export(args: argparse.Namespace) -> int:
    store = _ledger_store(args)
    try:
        chosen = _ledger_chosen(args, store)
        selection = Selection(file=args.file, key=args.key)
        if args.output is None:
            export_csv(store, chosen, selection, sys.stdout)
            return EXIT_OK
        refuse_stranger(args.output, "--output", "ledger export", _is_ledger_export,
                        args.overwrite)
        with args.output.open("w", encoding="utf-8-sig", newline="") as out:
            written = export_csv(store, chosen, selection, out)
    finally:
        store.close()
    print(f"{written:,} entries written to {args.output}", file=sys.stderr)
    return EXIT_OK


def _ledger_forget(args: argparse.Namespace) -> int:
    chosen_parts = sum(1 for part in (args.all, args.file is not None, args.key is not None)
                       if part)
    if chosen_parts != 1:
        raise ConfigError("ledger forget needs exactly one of --all, --file NAME or --key VALUE")
    selection = Selection(file=args.file, key=args.key)
    store = _ledger_store(args)
    try:
        chosen = _ledger_chosen(args, store)
        count = store.count(chosen.number, selection)
        what = (f"{count:,} entries of {chosen.endpoint}" + (f" from {args.file}" if args.file
                else "") + (f" with key {args.key}" if args.key else ""))
        if count == 0:
            print(_redact(f"nothing to forget: {what}"))
            return EXIT_OK
        if not args.yes and not _confirmed(f"Forget {what}? Their rows will be sent again by "
                                           "the next run. [y/N] "):
            raise ConfigError(f"not forgotten: {what} (confirm, or pass --yes in scripts)")
        gone = store.forget(chosen.number, selection)
    finally:
        store.close()
    print(_redact(f"forgot {gone:,} entries of {chosen.endpoint}"))
    return EXIT_OK


def _confirmed(question: str) -> bool:
    """Ask on the terminal; without one (cron, a pipe) the answer is no."""
    if not sys.stdin.isatty():
        return False
    try:
        return input(question).strip().lower() in ("y", "yes")
    except EOFError:
        return False


def _run(args: argparse.Namespace) -> int:
    options = RunOptions(
        input=args.input, mapping=args.mapping, results=args.results, sheet=args.sheet,
        header_row=args.header_row, encoding=args.encoding, delimiter=args.delimiter,
        concurrency=args.concurrency, timeouts=args.timeout, max_retries=args.max_retries,
        rate_limit=args.rate_limit, dry_run=args.dry_run, preview=args.preview,
        sandbox=args.sandbox, sandbox_db=args.sandbox_db, api_url=args.api_url,
        resume=args.resume, force=args.force, retry_unknown=args.retry_unknown,
        strict=args.strict, overwrite=args.overwrite, ledger=args.ledger,
        no_ledger=args.no_ledger, errors=args.errors, skip_hidden_rows=args.skip_hidden_rows,
        max_rejected=args.max_rejected,
    )
    if args.summary_json:
        refuse_stranger(args.summary_json, "--summary-json", "summary", _is_summary,
                        args.overwrite)
    stop = Stop()
    display = ProgressDisplay(cast(TextIO, _Forgiving(sys.stderr)), quiet=args.quiet)
    with _stop_on_signals(stop):
        try:
            summary = run_import(options, stop=stop, on_progress=display,
                                     on_start=display.start)
        except ImporterError as exc:
            if args.summary_json:
                _write_json(args.summary_json, {"exit_code": EXIT_USAGE, "error": str(exc),
                                                "input": str(args.input)})
            raise
        finally:
            display.close()
    _render(summary)
    if args.summary_json and not _write_json(args.summary_json, summary.to_dict()):
        return max(summary.exit_code, EXIT_ROWS)
    return summary.exit_code


def _init(args: argparse.Namespace) -> int:
    custom = tuple(f.strip() for f in args.fields.split(",") if f.strip())
    print(init_mapping(args.input, _read_options(args), custom), end="")
    return EXIT_OK


def _check(args: argparse.Namespace) -> int:
    check = check_mapping(args.mapping, args.input, _read_options(args))
    mapping = check.mapping
    lines = [f"{args.mapping}: valid (version 1, object {mapping.object}, "
             f"{len(mapping.fields)} fields, required_any {', '.join(mapping.required_any)})"]
    if check.source:
        lines.append(f"  against {check.source}:")
    width = max(len(name) for name, _ in check.fields)
    lines += [f"  {name:<{width}} <- {source}" for name, source in check.fields]
    if check.unmatched:
        lines.append(f"  not imported: {', '.join(check.unmatched)}")
    lines += [f"  note: {note}" for note in check.notes]
    print(_redact("\n".join(lines)))
    return EXIT_OK


def _read_options(args: argparse.Namespace) -> ReadOptions:
    return ReadOptions(sheet=args.sheet, header_row=args.header_row, encoding=args.encoding,
                       delimiter=args.delimiter, skip_hidden_rows=args.skip_hidden_rows)


def _is_summary(path: Path) -> bool:
    """A summary this tool wrote: one JSON object that carries an ``exit_code``."""
    try:
        with path.open("rb") as stream:
            data = json.loads(stream.read(SUMMARY_BYTES))
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and "exit_code" in data


def _is_ledger_export(path: Path) -> bool:
    return first_row(path) == list(EXPORT_COLUMNS)


def _write_json(path: Path, data: Mapping[str, object]) -> bool:
    """Replace the file whole, so a scheduler never reads half a summary or yesterday's."""
    text = _redact(json.dumps(data, ensure_ascii=False, indent=2)) + "\n"
    try:
        with written_whole(path) as stream:
            stream.write(text.encode("utf-8"))
    except OSError as exc:
        _error(f"--summary-json {path}: cannot be written ({exc.strerror or exc})")
        return False
    return True


def _sandbox(args: argparse.Namespace) -> int:
    token = os.environ.get(TOKEN_ENV, "").strip()
    faults = Faults(latency=args.latency, rate_limit=args.rate_limit,
                    rate_limit_shape=args.rate_limit_shape,
                    rate_limit_burst=args.rate_limit_burst, fail_rate=args.fail_rate,
                    drop_rate=args.drop_rate, slow_rate=args.slow_rate,
                    slow_seconds=args.slow_seconds, seed=args.seed)
    fields = tuple(f.strip() for f in args.custom_fields.split(",") if f.strip())
    printed_token = ""
    if not token:
        token = printed_token = secrets.token_urlsafe(24)
    stop = Stop()
    sandbox = Sandbox(args.db, token=token, host=args.host, port=args.port, faults=faults,
                      fields=fields)
    with sandbox, _stop_on_signals(stop):
        print(f"sandbox API at {sandbox.url} (database {args.db}); Ctrl-C to stop", flush=True)
        if printed_token:
            print(f"token for this sandbox: export {TOKEN_ENV}={printed_token}", flush=True)
        stop.wait()
    return EXIT_OK


@contextmanager
def _stop_on_signals(stop: Stop) -> Iterator[None]:
    """SIGINT/SIGTERM ask the run to stop; a second one also cuts requests in flight.

    Windows has no SIGHUP and delivers Ctrl-Break as SIGBREAK (taken too); its SIGTERM exists
    but only this process can raise it. Handlers can only be set from the main thread, so a
    program calling ``main`` from another thread keeps its own handling.
    """
    def handle(signum: int, frame: FrameType | None) -> None:
        stop.request()

    if _entry.received:
        stop.request()

    names = ("SIGINT", "SIGTERM", "SIGBREAK")
    wanted = [getattr(signal, name) for name in names if hasattr(signal, name)]
    previous = {}
    if threading.current_thread() is threading.main_thread():
        previous = {sig: signal.signal(sig, handle) for sig in wanted}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _render(summary: RunSummary) -> None:
    print(_redact(summary_text(summary, PROG)), flush=True)


def _error(message: str) -> None:
    _Forgiving(sys.stderr).write(_redact(f"{PROG}: error: {message}") + "\n")


class _Forgiving(io.TextIOBase):
    """stderr for progress and errors: when it is a broken pipe (``2>&1 | head``, a dead
    ``tee``), writing to it is given up, never the run. The descriptor is pointed at the null
    device so that nothing else (the interpreter's flush at exit) trips over it either."""

    def __init__(self, stream: TextIO) -> None:
        super().__init__()
        self._stream = stream

    def isatty(self) -> bool:
        try:
            return self._stream.isatty()
        except (OSError, ValueError):
            return False

    def write(self, text: str) -> int:
        try:
            written = self._stream.write(text)
            self._stream.flush()
            return written
        except (OSError, ValueError):
            self._give_up()
            return len(text)

    def flush(self) -> None:
        try:
            self._stream.flush()
        except (OSError, ValueError):
            self._give_up()

    def _give_up(self) -> None:
        with contextlib.suppress(OSError, ValueError, AttributeError):
            null = os.open(os.devnull, os.O_WRONLY)
            os.dup2(null, self._stream.fileno())
            os.close(null)


def _redact(text: str) -> str:
    return redact(text, os.environ.get(TOKEN_ENV, ""))


def _positive_int(text: str) -> int:
    value = _count(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, not {text}")
    return value


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative: {text}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number, not {text}")
    return value


def _percent(text: str) -> float:
    try:
        value = float(text.strip().rstrip("%"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a percentage: {text!r}") from None
    if not 0 <= value <= 100:
        raise argparse.ArgumentTypeError(f"must be between 0 and 100, not {text}")
    return value


def _probability(text: str) -> float:
    value = _positive_float(text) if text not in ("0", "0.0") else 0.0
    if value > 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, not {text}")
    return value


def _timeouts(text: str) -> Timeouts:
    parts = [p.strip() for p in text.split(",")]
    if len(parts) > 2:
        raise argparse.ArgumentTypeError(f"expected SECONDS or CONNECT,READ, not {text!r}")
    values = [_positive_float(p) for p in parts]
    if len(values) == 1:
        return Timeouts(connect=min(5.0, values[0]), read=values[0])
    return Timeouts(connect=values[0], read=values[1])


def _delimiter(text: str) -> str:
    value = DELIMITER_WORDS.get(text.lower(), text)
    if value not in DELIMITERS:
        raise argparse.ArgumentTypeError(f"use one of , ; tab | (not {text!r})")
    return value
