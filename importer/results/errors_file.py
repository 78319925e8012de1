"""The file to fix and re-import: every row that was not created or a duplicate, as it was read.

Except rows whose outcome is unknown: they may have been created, so importing them again
could create them twice. They are left out (and counted in ``codes``); the summary names them
apart with what to do (check the CRM, then ``--resume``, with ``--retry-unknown`` for the
missing ones), and the ledger fences keyless ones off in any later run.

Ops people fix rejected rows in Excel and import them again (Salesforce Data Loader's error file,
Bullhorn's failure file). So each line is the row's original cells, exactly as the reader gave
them, after four columns that say what went wrong: ``row``, ``status``, ``error_code``,
``error``. Binding a mapping skips those four when a file starts with them, so the same mapping
imports the fixed file.

Memory stays flat: the runner hands over each batch's cells before routing it (``hold``), the
results writer reports outcomes as it writes them in row order (``written``), and a batch is
dropped as soon as all its rows are written. Rows stream into a temporary file that replaces
the target at the end, and only if some row belongs in it; an errors file of an earlier run is
removed when this run has none, so nobody re-imports a stale one.

Original cells are written unchanged (they come from the person's own file and must re-import
unchanged); the ``error`` text comes from a server and is neutralised against formula injection
as in the results. A workbook input gives an XLSX where every cell is a text cell, which is both
exact and safe.
"""

import csv
import os
import threading
from collections import Counter, deque
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol, TextIO

from importer.errors import ConfigError
from importer.results.files import (
    create_fresh,
    first_row,
    is_link_error,
    named_format,
    refuse_stranger,
    xlsx_first_row,
)
from importer.rows.outcomes import ERRORS_COLUMNS, Outcome, Status
from importer.rows.problems import Code

COLUMNS = ERRORS_COLUMNS
TO_FIX = frozenset({Status.INVALID, Status.REJECTED, Status.FAILED, Status.SKIPPED})
FORMATS = (".csv", ".xlsx")
FORMULA_PREFIXES = tuple("=+-@\t\r")
SHEET = "Errors"


def default_errors_path(results: Path, workbook: bool) -> Path:
    """Next to the results: ``x.results.csv`` -> ``x.errors.csv`` (``.xlsx`` for a workbook)."""
    suffix = ".xlsx" if workbook else ".csv"
    stem = results.stem
    stem = stem[: -len(".results")] if stem.endswith(".results") else stem
    return results.with_name(f"{stem}.errors{suffix}")


def errors_format(path: Path) -> str:
    return named_format(path, "--errors", FORMATS)


def is_errors_file(path: Path) -> bool:
    """Whether ``path`` holds an errors file this tool wrote (by its first four headers)."""
    header = xlsx_first_row(path) if path.suffix.lower() == ".xlsx" else first_row(path)
    return tuple(header[: len(COLUMNS)]) == COLUMNS


def check_errors_path(path: Path, *, results: Path, input_path: Path, overwrite: bool) -> None:
    """Before anything is sent: a usable path that is neither the input, the results, a link,
    nor someone else's file."""
    errors_format(path)
    for other, what in ((input_path, "the input file"), (results, "the results file")):
        if path.absolute() == other.absolute() or (
                path.exists() and other.exists() and path.resolve() == other.resolve()):
            raise ConfigError(f"--errors {path} is {what}; choose another path")
    if not path.parent.is_dir():
        raise ConfigError(f"--errors {path}: the folder {path.parent} does not exist")
    refuse_stranger(path, "--errors", "errors", is_errors_file, overwrite)


class _Sink(Protocol):
    def write(self, cells: list[object]) -> None: ...
    def close(self) -> None: ...


class ErrorsFile:
    """Collects the rows to fix while the run streams, and counts rows per ``error_code``."""

    def __init__(self, path: Path, headers: list[str], *, sheet: str | None = None,
                 blank_rows: int = 0, encoding: str | None = None,
                 delimiter: str | None = None) -> None:
        """``blank_rows`` empty rows go above the header, so a mapping with ``header_row``
        finds it; ``sheet`` names the XLSX sheet as in the input, so a mapping's ``sheet`` works;
        ``encoding`` and ``delimiter`` are used when the mapping fixes them (else UTF-8 with a
        BOM and commas, which the reader detects)."""
        self.path = path
        self.codes: Counter[str] = Counter()
        self.rows = 0
        # Re-importing an errors file: its own four columns are replaced, not repeated.
        self._skip = len(COLUMNS) if tuple(headers[:len(COLUMNS)]) == COLUMNS else 0
        self._header = [*COLUMNS, *headers[self._skip:]]
        self._width = len(headers)
        self._temporary = path.with_name(f".{path.name}.partial")
        self._held: deque[tuple[int, list[list[str]]]] = deque()
        self._lock = threading.Lock()
        try:
            self._sink: _Sink = (_XlsxSink(self._temporary, sheet or SHEET, blank_rows)
                                 if errors_format(path) == ".xlsx" else
                                 _CsvSink(self._temporary, blank_rows, encoding, delimiter))
        except OSError as exc:
            raise _unwritable(path, exc) from exc
        self._started = False

    def hold(self, first: int, cells: list[list[str]]) -> None:
        """Keep a batch's original cells (rows ``first``, ``first + 1``, ...) until written."""
        with self._lock:
            self._held.append((first, cells))

    def written(self, first: int, outcomes: Sequence[Outcome]) -> None:
        """Outcomes of rows ``first``, ``first + 1``, ... as the results writer writes them,
        in row order; the rows to fix go to the file with their original cells."""
        with self._lock:
            for seq, outcome in enumerate(outcomes, first):
                if outcome.code:
                    self.codes[str(outcome.code)] += 1
                if outcome.status in TO_FIX and outcome.code != Code.OUTCOME_UNKNOWN:
                    self._write(seq, outcome)
            self._release(first + len(outcomes))

    def _write(self, seq: int, outcome: Outcome) -> None:
        if not self._started:
            self._sink.write(list(self._header))
            self._started = True
        cells = self._cells(seq)[self._skip:]
        error = outcome.error
        if error.startswith(FORMULA_PREFIXES):
            error = "'" + error
        self._sink.write([outcome.row, str(outcome.status), str(outcome.code), error, *cells])
        self.rows += 1

    def _cells(self, seq: int) -> list[str]:
        for first, cells in self._held:
            if first <= seq < first + len(cells):
                row = cells[seq - first]
                return row + [""] * (self._width - len(row)) if len(row) < self._width else row
        return [""] * self._width  # never handed over (cannot happen): still account for the row

    def _release(self, below: int) -> None:
        """Forget batches whose rows are all written."""
        while self._held and self._held[0][0] + len(self._held[0][1]) <= below:
            self._held.popleft()

    def close(self) -> str:
        """Put the file in place (or clear a stale one away); a note for the summary."""
        with self._lock:
            self._held.clear()
            self._sink.close()
            if self.rows:
                os.replace(self._temporary, self.path)
                return ""
            os.unlink(self._temporary)
            if self.path.is_file() and not self.path.is_symlink() and is_errors_file(self.path):
                os.unlink(self.path)
                return f"removed {self.path.name}: an earlier run's rows to fix, none left now"
            return ""

    def abandon(self) -> None:
        """The run never started: leave no temporary behind."""
        with self._lock:
            self._sink.close()
            if self._temporary.exists():
                os.unlink(self._temporary)


def _unwritable(path: Path, exc: OSError) -> ConfigError:
    if is_link_error(exc):
        return ConfigError(f"--errors {path}: is a symbolic link; refusing to write through it")
    return ConfigError(f"--errors {path}: cannot be written ({exc.strerror or exc}); choose "
                       "another path")


class _CsvSink:
    def __init__(self, path: Path, blank_rows: int, encoding: str | None,
                 delimiter: str | None) -> None:
        self.encoding = encoding or "utf-8"
        self.stream = _text_stream(path, self.encoding)
        if encoding is None:
            self.stream.write("\ufeff")
        self.writer = csv.writer(self.stream, delimiter=delimiter or ",")
        self.stream.write("\r\n" * blank_rows)

    def write(self, cells: list[object]) -> None:
        try:
            self.writer.writerow(cells)
        except UnicodeEncodeError:  # a server message the input's encoding cannot hold
            self.writer.writerow([_encodable(c, self.encoding) for c in cells])

    def close(self) -> None:
        if not self.stream.closed:
            self.stream.flush()
            os.fsync(self.stream.fileno())
            self.stream.close()


def _text_stream(path: Path, encoding: str) -> TextIO:
    return open(create_fresh(path), "w", encoding=encoding, newline="")


def _encodable(value: object, encoding: str) -> object:
    if isinstance(value, str):
        return value.encode(encoding, "replace").decode(encoding)
    return value


class _XlsxSink:
    """Write-only workbook (rows go to disk as they come); every cell a text cell."""

    def __init__(self, path: Path, sheet: str, blank_rows: int) -> None:
        from openpyxl import Workbook

        self.path = path
        os.close(create_fresh(path))
        self.book = Workbook(write_only=True)
        self.sheet = self.book.create_sheet(sheet[:31])
        self.closed = False
        for _ in range(blank_rows):
            self.sheet.append([None])

    def write(self, cells: list[object]) -> None:
        from openpyxl.cell import WriteOnlyCell
        from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

        row = []
        for value in cells:
            cell = WriteOnlyCell(self.sheet, value=ILLEGAL_CHARACTERS_RE.sub(
                lambda m: f"\\x{ord(m.group()):02x}", str(value)))
            cell.data_type = "s"
            row.append(cell)
        self.sheet.append(row)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        fd = create_fresh(self.path)
        with open(fd, "wb") as stream:
            self.book.save(stream)
            stream.flush()
            os.fsync(stream.fileno())
