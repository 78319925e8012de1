"""The results file: one line per data row, in row order, in CSV, XLSX or JSON Lines.

Rows finish out of order (concurrent requests, retries), so the writer holds finished rows until
every earlier row is done and then writes them in order: the file is always an ordered prefix of
the input, readable at any moment. Durability of sent rows comes from the journal; this file is
rewritten from scratch by every run: a fresh run writes it in place, row by row; a resume writes
a temporary beside it and renames that over it when done, so the earlier outcomes stay in the
file until the new one holds them all (a ``kill -9`` mid-resume leaves the earlier file whole).

CSV and XLSX are opened by people in Excel, so cells are neutralised against formula injection:
CSV cells starting with ``= + - @``, tab or carriage return get a leading apostrophe (OWASP's
advice), XLSX cells are always stored as text. The file holds personal data, so it is created
readable by its owner only.
"""

import csv
import io
import json
import os
import threading
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from importer.errors import ConfigError, ResumeError
from importer.results.files import (
    SyncClock,
    create_fresh,
    first_row,
    is_link_error,
    named_format,
    open_private,
    partial_path,
    sync_folder,
    xlsx_first_row,
)
from importer.rows.outcomes import IDENTITY_FIELDS, Outcome, Status

COLUMNS = ("row", "status", "id", "http_status", "error", "error_code", *IDENTITY_FIELDS)
FORMATS = (".csv", ".xlsx", ".jsonl")
FORMULA_STARTS = "=+-@\t\r"
FORMULA_PREFIXES = tuple(FORMULA_STARTS)
STATUS_COLOURS = {
    Status.CREATED: "C6EFCE",
    Status.DUPLICATE: "DDEBF7",
    Status.READY: "DDEBF7",
    Status.INVALID: "FFEB9C",
    Status.REJECTED: "FFEB9C",
    Status.FAILED: "FFC7CE",
    Status.SKIPPED: "EDEDED",
}


def default_results_path(input_path: Path) -> Path:
    """``<input stem>.results.csv`` in the current directory."""
    return Path.cwd() / f"{input_path.stem}.results.csv"


def results_format(path: Path) -> str:
    return named_format(path, "--results", FORMATS)


def is_results_file(path: Path) -> bool:
    """Whether ``path`` holds results this tool wrote (by its header: ``row``, ``status``,
    ``id``, ... with an ``error_code`` column), so a new run may replace it. An errors file
    (``row``, ``status``, ``error_code``, ...) is not results: it may hold a person's fixes."""
    kind = path.suffix.lower()
    header = xlsx_first_row(path, "Results") if kind == ".xlsx" else first_row(path)
    return header[:3] == ["row", "status", "id"] and "error_code" in header


def cells(outcome: Outcome) -> list[str | int]:
    http = outcome.http_status if outcome.http_status is not None else ""
    return [outcome.row, str(outcome.status), outcome.id, http, outcome.error,
            str(outcome.code), *outcome.identity]


def _csv_cells(outcome: Outcome) -> tuple[object, ...]:
    """``cells`` with text neutralised; the columns a person or server can fill are checked.

    Written out rather than through a helper: this runs for every row of the file, and five
    function calls per row are a tenth of a large dry run.
    """
    http = outcome.http_status if outcome.http_status is not None else ""
    error = outcome.error
    external_id, email, first, last = outcome.identity
    return (outcome.row, outcome.status, outcome.id, http,
            "'" + error if error.startswith(FORMULA_PREFIXES) else error, outcome.code,
            "'" + external_id if external_id.startswith(FORMULA_PREFIXES) else external_id,
            "'" + email if email.startswith(FORMULA_PREFIXES) else email,
            "'" + first if first.startswith(FORMULA_PREFIXES) else first,
            "'" + last if last.startswith(FORMULA_PREFIXES) else last)


def read_outcomes(path: Path) -> dict[int, Outcome]:
    """Outcomes from an earlier results file, for resuming without a journal.

    A last line cut short by a crash is dropped; neutralising apostrophes are taken off.
    """
    try:
        rows = read_result_rows(path)
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
        raise ResumeError(f"{path}: cannot be read as earlier results ({exc})") from exc
    outcomes = {}
    for row in rows:
        try:
            outcome = Outcome.from_record(row)
        except (KeyError, ValueError):
            continue
        outcomes[outcome.row] = outcome
    return outcomes


def read_result_rows(path: Path) -> list[dict[str, object]]:
    """A results file's rows as written (neutralising apostrophes taken off); a last line cut
    short by a crash is dropped."""
    return [_unneutralised(row) for row in _read_rows(path)]


def _read_rows(path: Path) -> list[dict[str, object]]:
    kind = results_format(path)
    if kind == ".xlsx":
        from openpyxl import load_workbook

        book = load_workbook(path, read_only=True)
        values = list(book["Results"].iter_rows(values_only=True))
        header = [str(name) for name in values[0]]
        return [dict(zip(header, row, strict=False)) for row in values[1:]]
    text = path.read_text(encoding="utf-8-sig")
    if not text.endswith("\n"):
        text = text[: text.rfind("\n") + 1]
    if kind == ".jsonl":
        return [json.loads(line) for line in text.splitlines() if line.strip()]
    return list(csv.DictReader(io.StringIO(text, newline="")))


def _unneutralised(row: dict[str, object]) -> dict[str, object]:
    """Take off the apostrophe the CSV writer put before formula-like text."""
    def plain(value: object) -> object:
        if isinstance(value, str) and value[:1] == "'" and value[1:2] in FORMULA_STARTS:
            return value[1:]
        return value

    return {name: plain(value) for name, value in row.items()}


class _Format(Protocol):
    def write(self, outcomes: list[Outcome]) -> None: ...
    def flush(self, sync: bool) -> None: ...
    def close(self, summary: dict[str, str]) -> None: ...


class ResultsWriter:
    """Takes outcomes in any order (from any thread) and writes them in input order."""

    def __init__(self, path: Path, *, durable: bool = True, staged: bool = False,
                 on_written: Callable[[int, list[Outcome]], None] | None = None) -> None:
        """``durable``: fsync every second (a dry run can simply be run again, so it does not).
        ``staged``: write beside ``path`` and replace it only when complete (a resume: the
        earlier outcomes stay readable in ``path`` until the new file holds them all, even
        after ``kill -9``); otherwise ``path`` itself grows row by row.
        ``on_written(first, outcomes)`` sees the rows from ``first`` on as they are written,
        in row order (the errors file follows the results this way)."""
        self.path = path
        self.on_written = on_written
        self.durable = durable
        self.counts: dict[Status, int] = dict.fromkeys(Status, 0)
        self._format = _open_format(path, staged)
        self._pending: dict[int, Outcome] = {}
        self._next = 0
        self._cond = threading.Condition(threading.RLock())
        self._sync = SyncClock()

    def add(self, outcomes: list[tuple[int, Outcome]]) -> None:
        """Record outcomes of rows by their ``seq`` (0-based position in the input)."""
        with self._cond:
            for seq, outcome in outcomes:
                self._pending[seq] = outcome
                self.counts[outcome.status] += 1
            if self._next not in self._pending:
                return
            ready = []
            while self._next in self._pending:
                ready.append(self._pending.pop(self._next))
                self._next += 1
            self._write(ready)

    def add_many(self, outcomes: list[Outcome], first: int) -> None:
        """Record the outcomes of consecutive rows starting at ``first`` (a dry run's batch);
        when nothing is waiting they are written straight through."""
        with self._cond:
            if self._pending or first != self._next:
                self.add(list(enumerate(outcomes, first)))
                return
            for outcome in outcomes:
                self.counts[outcome.status] += 1
            self._next += len(outcomes)
            self._write(outcomes)

    def _write(self, outcomes: list[Outcome]) -> None:
        self._format.write(outcomes)
        if self.on_written is not None:
            self.on_written(self._next - len(outcomes), outcomes)
        sync = self.durable and self._sync.due()
        self._format.flush(sync=sync)
        self._cond.notify_all()

    def wait_for_room(self, limit: int, stop: threading.Event) -> None:
        """Block the reader while too many finished rows wait behind a slow earlier row; a
        stop ends the wait (the rows after it are skipped without piling up)."""
        with self._cond:
            while len(self._pending) > limit and not stop.is_set():
                self._cond.wait(0.1)

    def missing(self, rows: int) -> int:
        """How many of the first ``rows`` rows have no outcome (none, unless something broke)."""
        with self._cond:
            return rows - sum(self.counts.values())

    def close(self, summary: dict[str, str]) -> None:
        with self._cond:
            if self._pending:
                self._format.write([self._pending[k] for k in sorted(self._pending)])
                if self.on_written is not None:
                    for seq in sorted(self._pending):
                        self.on_written(seq, [self._pending[seq]])
                self._pending.clear()
            self._format.close(summary)


def _open_format(path: Path, staged: bool = False) -> _Format:
    kind = results_format(path)
    try:
        if kind == ".xlsx":
            from importer.results.xlsx import XlsxResults

            return XlsxResults(path, COLUMNS, cells, STATUS_COLOURS)
        stream = _staged_text_file(path) if staged else _private_text_file(path)
    except OSError as exc:
        if is_link_error(exc):
            raise ConfigError(f"--results {path}: is a symbolic link; refusing to write through "
                              "it; give the real path or remove the link") from exc
        raise ConfigError(f"--results {path}: cannot be written ({exc.strerror or exc}); choose "
                          "another path") from exc
    if staged:
        return _Csv(stream, path) if kind == ".csv" else _Jsonl(stream, path)
    return _Csv(stream) if kind == ".csv" else _Jsonl(stream)


def _private_text_file(path: Path) -> io.TextIOWrapper:
    """Truncate-or-create, readable by the owner only, never through a link."""
    fd = open_private(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    return open(fd, "w", encoding="utf-8", newline="")


def _staged_text_file(path: Path) -> io.TextIOWrapper:
    """A fresh owner-only temporary beside ``path`` (``O_EXCL``: never through a link)."""
    return open(create_fresh(partial_path(path)), "w", encoding="utf-8", newline="")


class _Csv:
    """UTF-8 with a BOM, so Excel shows accented and non-Latin names correctly."""

    def __init__(self, stream: io.TextIOWrapper, replaces: Path | None = None) -> None:
        """``replaces``: the stream is a temporary that is renamed over this path on close."""
        self.stream = stream
        self.replaces = replaces
        stream.write("\ufeff")
        self.writer = csv.writer(stream)
        self.writer.writerow(COLUMNS)
        stream.flush()

    def write(self, outcomes: list[Outcome]) -> None:
        self.writer.writerows(map(_csv_cells, outcomes))

    def flush(self, sync: bool) -> None:
        self.stream.flush()
        if sync:
            os.fsync(self.stream.fileno())

    def close(self, summary: dict[str, str]) -> None:
        """Flushed to disk; a staged file then replaces the target, and the folder is synced
        so the rename survives a power cut."""
        self.flush(sync=True)
        self.stream.close()
        if self.replaces is not None:
            os.replace(partial_path(self.replaces), self.replaces)
            sync_folder(self.replaces)


class _Jsonl(_Csv):
    """One JSON object per row, for programs rather than people."""

    def __init__(self, stream: io.TextIOWrapper, replaces: Path | None = None) -> None:
        self.stream = stream
        self.replaces = replaces

    def write(self, outcomes: list[Outcome]) -> None:
        self.stream.writelines(
            json.dumps(dict(zip(COLUMNS, cells(o), strict=True)), ensure_ascii=False) + "\n"
            for o in outcomes)
