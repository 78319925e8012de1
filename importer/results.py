"""The results file: one line per data row, in row order, in CSV, XLSX or JSON Lines.

Rows finish out of order (concurrent requests, retries), so the writer holds finished rows until
every earlier row is done and then writes them in order: the file is always an ordered prefix of
the input, readable at any moment. Durability of sent rows comes from the journal; this file is
rewritten from scratch by every run.

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
import time
from pathlib import Path
from typing import Protocol

from openpyxl import Workbook, load_workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.styles import Font, PatternFill

from importer.errors import ConfigError, ResumeError
from importer.outcomes import IDENTITY_FIELDS, Outcome, Status
from importer.problems import Code

COLUMNS = ("row", "status", "id", "http_status", "error", "error_code", *IDENTITY_FIELDS)
FORMATS = (".csv", ".xlsx", ".jsonl")
FORMULA_STARTS = "=+-@\t\r"
CODES = {str(code) for code in Code}
SYNC_EVERY = 1.0
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
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise ConfigError(f"--results {path}: unknown format {suffix or '(none)'}; end the name "
                          f"with {', '.join(FORMATS)}")
    return suffix


def neutralise(text: str) -> str:
    """Make Excel show a cell as the text it is instead of running it as a formula."""
    return "'" + text if text and text[0] in FORMULA_STARTS else text


def cells(outcome: Outcome) -> list[object]:
    http = outcome.http_status if outcome.http_status is not None else ""
    return [outcome.row, str(outcome.status), outcome.id, http, outcome.error,
            str(outcome.code), *outcome.identity]


def _csv_cells(outcome: Outcome) -> tuple[object, ...]:
    """``cells`` with text neutralised; the columns a person or server can fill are checked."""
    http = outcome.http_status if outcome.http_status is not None else ""
    return (outcome.row, outcome.status, outcome.id, http, neutralise(outcome.error),
            outcome.code, *map(neutralise, outcome.identity))


def read_outcomes(path: Path) -> dict[int, Outcome]:
    """Outcomes from an earlier results file, for resuming without a journal.

    A last line cut short by a crash is dropped; neutralising apostrophes are taken off.
    """
    try:
        rows = _read_rows(path)
    except (OSError, ValueError, KeyError) as exc:
        raise ResumeError(f"{path}: cannot be read as earlier results ({exc})") from exc
    outcomes = {}
    for row in rows:
        try:
            outcome = _outcome_from(row)
        except (KeyError, ValueError):
            continue
        outcomes[outcome.row] = outcome
    return outcomes


def _read_rows(path: Path) -> list[dict[str, object]]:
    kind = results_format(path)
    if kind == ".xlsx":
        book = load_workbook(path, read_only=True)
        values = list(book["Results"].iter_rows(values_only=True))
        return [dict(zip(values[0], row, strict=False)) for row in values[1:]]
    text = path.read_text(encoding="utf-8-sig")
    if not text.endswith("\n"):
        text = text[: text.rfind("\n") + 1]
    if kind == ".jsonl":
        return [json.loads(line) for line in text.splitlines() if line.strip()]
    return list(csv.DictReader(io.StringIO(text, newline="")))


def _outcome_from(row: dict[str, object]) -> Outcome:
    def text(name: str) -> str:
        value = "" if row.get(name) is None else str(row[name])
        return value[1:] if value[:1] == "'" and value[1:2] in FORMULA_STARTS else value

    http = text("http_status")
    code = text("error_code")
    return Outcome(int(str(row["row"])), Status(text("status")), text("id"),
                   int(http) if http else None, Code(code) if code in CODES else code,
                   text("error"))


class _Format(Protocol):
    def write(self, outcomes: list[Outcome]) -> None: ...
    def flush(self, sync: bool) -> None: ...
    def close(self, summary: dict[str, str]) -> None: ...


class ResultsWriter:
    """Takes outcomes in any order (from any thread) and writes them in input order."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.counts: dict[Status, int] = dict.fromkeys(Status, 0)
        self._format = _open_format(path)
        self._pending: dict[int, Outcome] = {}
        self._next = 0
        self._cond = threading.Condition()
        self._last_sync = time.monotonic()

    def add(self, seq: int, outcome: Outcome) -> None:
        """Record the outcome of the ``seq``-th data row (0-based, in input order)."""
        self.add_many([(seq, outcome)])

    def add_many(self, outcomes: list[tuple[int, Outcome]]) -> None:
        """Record several outcomes at once (a batch decided without the network)."""
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
            self._format.write(ready)
            sync = time.monotonic() - self._last_sync >= SYNC_EVERY
            self._format.flush(sync=sync)
            if sync:
                self._last_sync = time.monotonic()
            self._cond.notify_all()

    def wait_for_room(self, limit: int) -> None:
        """Block the reader while too many finished rows wait behind a slow earlier row."""
        with self._cond:
            while len(self._pending) > limit:
                self._cond.wait(0.5)

    @property
    def written(self) -> int:
        return self._next

    def close(self, summary: dict[str, str]) -> None:
        with self._cond:
            if self._pending:
                self._format.write([self._pending[k] for k in sorted(self._pending)])
                self._pending.clear()
            self._format.close(summary)


def _open_format(path: Path) -> _Format:
    kind = results_format(path)
    try:
        if kind == ".xlsx":
            return _Xlsx(path)
        stream = _private_text_file(path)
    except OSError as exc:
        raise ConfigError(f"--results {path}: cannot be written ({exc.strerror or exc}); choose "
                          "another path") from exc
    return _Csv(stream) if kind == ".csv" else _Jsonl(stream)


def _private_text_file(path: Path) -> io.TextIOWrapper:
    """Truncate-or-create, readable by the owner only (also when the file existed before)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    return open(fd, "w", encoding="utf-8", newline="")


class _Csv:
    """UTF-8 with a BOM, so Excel shows accented and non-Latin names correctly."""

    def __init__(self, stream: io.TextIOWrapper) -> None:
        self.stream = stream
        stream.write("\ufeff")
        self.writer = csv.writer(stream)
        self.writer.writerow(COLUMNS)

    def write(self, outcomes: list[Outcome]) -> None:
        self.writer.writerows(map(_csv_cells, outcomes))

    def flush(self, sync: bool) -> None:
        self.stream.flush()
        if sync:
            os.fsync(self.stream.fileno())

    def close(self, summary: dict[str, str]) -> None:
        self.flush(sync=True)
        self.stream.close()


class _Jsonl(_Csv):
    """One JSON object per row, for programs rather than people."""

    def __init__(self, stream: io.TextIOWrapper) -> None:
        self.stream = stream

    def write(self, outcomes: list[Outcome]) -> None:
        self.stream.writelines(
            json.dumps(dict(zip(COLUMNS, cells(o), strict=True)), ensure_ascii=False) + "\n"
            for o in outcomes)


class _Xlsx:
    """A Results sheet (bold frozen header, filter, coloured statuses) and a Summary sheet.

    Streamed with openpyxl's write-only mode into a temporary file that replaces the target
    only when complete, so an interrupted run never leaves a half-written workbook.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.temporary = path.with_name(f".{path.name}.partial")
        self.book = Workbook(write_only=True)
        self.sheet = self.book.create_sheet("Results")
        self.sheet.freeze_panes = "A2"
        for letter, width in zip("ABCDEFGHIJ", (7, 10, 38, 11, 60, 24, 16, 30, 18, 18),
                                 strict=True):
            self.sheet.column_dimensions[letter].width = width
        bold = Font(bold=True)
        self.sheet.append([self._cell(name, font=bold) for name in COLUMNS])
        self.rows = 1
        self.fills = {s: PatternFill("solid", fgColor=c) for s, c in STATUS_COLOURS.items()}

    def _cell(self, value: object, **style: object) -> WriteOnlyCell:
        cell = WriteOnlyCell(self.sheet, value=value)
        if isinstance(value, str):
            cell.data_type = "s"
        for name, setting in style.items():
            setattr(cell, name, setting)
        return cell

    def write(self, outcomes: list[Outcome]) -> None:
        for outcome in outcomes:
            row = [self._cell(v) for v in cells(outcome)]
            row[1].fill = self.fills[outcome.status]
            self.sheet.append(row)
        self.rows += len(outcomes)

    def flush(self, sync: bool) -> None:
        """Nothing to flush: the workbook is only valid once complete (the journal is durable)."""

    def close(self, summary: dict[str, str]) -> None:
        self.sheet.auto_filter.ref = f"A1:J{self.rows}"
        info = self.book.create_sheet("Summary")
        info.column_dimensions["A"].width = 22
        info.column_dimensions["B"].width = 80
        for key, value in summary.items():
            info.append([self._cell(key, font=Font(bold=True)), self._cell(value)])
        fd = os.open(self.temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with open(fd, "wb") as stream:
            self.book.save(stream)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(self.temporary, self.path)
