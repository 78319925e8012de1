"""A table of text cells with spreadsheet row numbers, whatever format it was read from.

Readers only turn bytes into rows of text; this module decides which row holds the headers and
which rows are data. Rows move in batches because per-row objects cost more than the work done
on each row, and because a bounded batch keeps memory flat however large the file is.
"""

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from itertools import chain
from pathlib import Path

from importer.errors import InputError
from importer.rows.problems import Code, RowProblem

MAX_COLUMNS = 2000
HEADER_SEARCH_ROWS = 30
CHUNK_ROWS = 4096
MAX_LISTED = 20
CONTROL_CHARS = frozenset(chr(c) for c in range(32)) - set("\t\r\n\f")


@dataclass(slots=True)
class RawChunk:
    """Consecutive rows as the format delivered them, numbered from ``first_row``."""

    first_row: int
    rows: list[list[str]]
    cell_problems: dict[tuple[int, int], RowProblem] = field(default_factory=dict)


@dataclass(slots=True)
class SourceBatch:
    """Data rows after the header: every row has exactly one cell per header."""

    rows: list[int]
    cells: list[list[str]]
    problems: dict[int, RowProblem] = field(default_factory=dict)
    cell_problems: dict[tuple[int, int], RowProblem] = field(default_factory=dict)


@dataclass(slots=True)
class ReadStats:
    """What the reader skipped, so the summary can account for every row of the file."""

    rows_above_header: int = 0
    empty_rows: int = 0
    not_contacts: int = 0
    hidden_rows: list[int] = field(default_factory=list)


@dataclass
class Hidden:
    """Rows and columns the sheet hides (0-based), and whether hidden rows are left out."""

    rows: set[int] = field(default_factory=set)
    columns: set[int] = field(default_factory=set)
    skip_rows: bool = False


def column_letter(index: int) -> str:
    """Spreadsheet column name for a 0-based index: 0 -> A, 26 -> AA."""
    name = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        name = chr(65 + rest) + name
    return name


class Table:
    """Headers plus a one-pass stream of data-row batches."""

    def __init__(
        self,
        path: Path,
        chunks: Iterator[RawChunk],
        *,
        header_row: int | None,
        column_offset: int = 0,
        strict_width: bool = False,
        detail: str = "",
        total_rows: int | None = None,
        merged: list[tuple[int, int, int, int]] | None = None,
        sheet: str | None = None,
        hidden: Hidden | None = None,
    ) -> None:
        self.path = path
        self.sheet = sheet
        """The sheet read, for a workbook; ``None`` for text files."""
        self.detail = detail
        self.total_rows = total_rows
        self.column_offset = column_offset
        self.stats = ReadStats()
        self._strict_width = strict_width
        self._chunks = chunks
        self._merges = _MergedDown(merged or [], column_offset)
        self.hidden = hidden or Hidden()
        self._hidden_rows = {row + 1 for row in self.hidden.rows}
        self.other_sheets: list[Callable[[], Table]] = []
        self._head = self._read_head(header_row)
        self.header_row_explicit = header_row is not None
        self.header_row = header_row or self._first_non_empty_row()
        self.headers = self._headers_at(self.header_row)

    def _read_head(self, header_row: int | None) -> list[RawChunk]:
        """Buffer the first chunks so the header can be found (or moved) before streaming starts."""
        wanted = max(header_row or 0, HEADER_SEARCH_ROWS)
        head: list[RawChunk] = []
        for chunk in self._chunks:
            head.append(chunk)
            if chunk.first_row + len(chunk.rows) > wanted:
                break
        return head

    def _head_rows(self) -> Iterator[tuple[int, list[str]]]:
        for chunk in self._head:
            for i, cells in enumerate(chunk.rows):
                yield chunk.first_row + i, cells

    def _first_non_empty_row(self) -> int:
        if not self._head:
            raise InputError(f"{self.path}: has no rows at all (an empty sheet or file); export "
                             "the data again")
        for number, cells in self._head_rows():
            if number > HEADER_SEARCH_ROWS:
                break
            if _has_text(cells):
                return number
        raise InputError(f"{self.path}: no header row found: the file has no text in its first "
                         f"{HEADER_SEARCH_ROWS} rows")

    def _headers_at(self, number: int) -> list[str]:
        cells = next((cells for n, cells in self._head_rows() if n == number), None)
        if cells is None or not _has_text(cells):
            raise InputError(f"{self.path}: row {number} is empty, so it cannot hold the headers; "
                             "set header_row to the row that shows the column names")
        headers = [clean_header(c) for c in cells]
        while headers and not headers[-1]:
            headers.pop()
        if len(headers) > MAX_COLUMNS:
            raise InputError(f"{self.path}: the header row has {len(headers):,} columns, more than "
                             f"the {MAX_COLUMNS:,} a contact export can have; check this is the "
                             "right file")
        return headers

    def top_rows(self) -> Iterator[tuple[int, list[str]]]:
        """Non-empty rows near the top with their filled cells, to guess where headers are."""
        for number, cells in self._head_rows():
            if number > HEADER_SEARCH_ROWS:
                return
            filled = [clean_header(c) for c in cells if c and not c.isspace()]
            if filled:
                yield number, filled

    def candidate_header_rows(self) -> Iterator[tuple[int, list[str]]]:
        """Rows near the top that could hold the headers (when row 1 is a title, say)."""
        for number, cells in self._head_rows():
            if number > HEADER_SEARCH_ROWS:
                return
            if number != self.header_row and _has_text(cells):
                yield number, [clean_header(c) for c in cells]

    def use_header_row(self, number: int) -> None:
        """Move the header to another buffered row (found by the mapping's column names)."""
        self.headers = self._headers_at(number)
        self.header_row = number

    def adopt(self, other: "Table") -> None:
        """Become ``other`` (another sheet of the same workbook, where the headers are)."""
        self.__dict__.update(other.__dict__)

    def notes(self, columns_used: list[int] | None = None) -> list[str]:
        """What the summary must say about rows and columns the reader found unusual."""
        notes = []
        count = self.stats.not_contacts
        if count:
            notes.append(f"{count} row{'s' if count > 1 else ''} of the file "
                         f"{'are not contacts' if count > 1 else 'is not a contact'} (a repeated "
                         "header, a section title, a total line or a footer): not sent, see "
                         "not-a-contact in the results")
        hidden = self.stats.hidden_rows
        if hidden:
            listed = ", ".join(map(str, hidden[:MAX_LISTED]))
            more = f" and {len(hidden) - MAX_LISTED:,} more" if len(hidden) > MAX_LISTED else ""
            them = "them" if len(hidden) > 1 else "it"
            what = ("left out (--skip-hidden-rows)" if self.hidden.skip_rows else
                    f"imported like the others; pass --skip-hidden-rows to leave {them} out")
            notes.append(f"row{'s' if len(hidden) > 1 else ''} {listed}{more} "
                         f"{'are' if len(hidden) > 1 else 'is'} hidden in the sheet (a filter?): "
                         f"{what}")
        notes += self._hidden_column_notes(columns_used or [])
        return notes

    def _hidden_column_notes(self, columns_used: list[int]) -> list[str]:
        hidden = [c for c in columns_used if c + self.column_offset in self.hidden.columns]
        if not hidden:
            return []
        names = ", ".join(f"{self.column_label(c)} ({self.headers[c]!r})" for c in hidden)
        return [f"column{'s' if len(hidden) > 1 else ''} {names} "
                f"{'are' if len(hidden) > 1 else 'is'} hidden in the sheet and imported as "
                "mapped"]

    @property
    def estimated_rows(self) -> int | None:
        """Roughly how many rows lie below the header (for progress bars only)."""
        if self.total_rows is None:
            return None
        return max(0, self.total_rows - self.header_row)

    def column_label(self, index: int) -> str:
        return column_letter(index + self.column_offset)

    def batches(self) -> Iterator[SourceBatch]:
        """Data rows below the header, with the rows that are not contacts marked; call once."""
        from importer.readers.layout import Layout  # here: layout.py builds on this module

        return Layout(self.headers, self.stats).mark(self._data_batches())

    def _data_batches(self) -> Iterator[SourceBatch]:
        for number, cells in self._head_rows():
            if number >= self.header_row:
                break
            if _has_text(cells):
                self.stats.rows_above_header += 1
            else:
                self.stats.empty_rows += 1
        below = (_rows_after(chunk, self.header_row) for chunk in self._head)
        for chunk in chain(below, self._chunks):
            batch = self._to_batch(chunk)
            if batch.rows:
                yield batch

    def _to_batch(self, chunk: RawChunk) -> SourceBatch:
        width = len(self.headers)
        batch = SourceBatch([], [])
        for i, cells in enumerate(chunk.rows):
            number = chunk.first_row + i
            if not _has_text(cells):
                self.stats.empty_rows += 1
                continue
            if number in self._hidden_rows:
                self.stats.hidden_rows.append(number)
                if self.hidden.skip_rows:
                    continue
            if number in self._merges.rows:
                self._merges.apply(number, cells)
            index = len(batch.rows)
            if len(cells) != width:
                cells = self._fit(cells, width, number, index, batch)
            batch.rows.append(number)
            batch.cells.append(cells)
        if chunk.cell_problems:
            self._carry_cell_problems(chunk, batch)
        return batch

    def _fit(self, cells: list[str], width: int, number: int, index: int,
             batch: SourceBatch) -> list[str]:
        """Pad short rows; a long row with text past the last header is misaligned, not shifted.

        A misaligned row keeps all its cells: it is never sent, and the errors file must show
        the person every cell to fix (binding only reads the first ``width``)."""
        if len(cells) < width:
            return cells + [""] * (width - len(cells))
        extra = [c for c in cells[width:] if c.strip()]
        if extra and self._strict_width:
            batch.problems[index] = Code.RAGGED_ROW.problem(
                row_number=number, cells=len(cells), headers=width)
            return cells
        return cells[:width]

    def _carry_cell_problems(self, chunk: RawChunk, batch: SourceBatch) -> None:
        index_of = {number: i for i, number in enumerate(batch.rows)}
        for (local, col), problem in chunk.cell_problems.items():
            index = index_of.get(chunk.first_row + local)
            if index is not None and col < len(self.headers):
                batch.cell_problems[(index, col)] = problem


class _MergedDown:
    """Ranges merged down several rows show their value on every row: each data row of such a
    range gets the value of its first cell. Rows are 1-based, columns local to the table.

    Only the range's first column is filled (a range merged across columns shows one value,
    not one per column), and only from a data row: a first cell in the header or above it is
    never read here, so a merged header never spills into the data."""

    def __init__(self, merged: list[tuple[int, int, int, int]], offset: int) -> None:
        self.rows: dict[int, list[tuple[int, int]]] = {}
        for top, left, bottom, _ in merged:
            for row in range(top + 1, bottom + 2):
                self.rows.setdefault(row, []).append((left - offset, top + 1))
        self.values: dict[tuple[int, int], str] = {}

    def apply(self, number: int, cells: list[str]) -> None:
        for column, first in self.rows[number]:
            if not 0 <= column < len(cells):
                continue
            if number == first:
                self.values[(first, column)] = cells[column]
            elif not cells[column].strip():
                cells[column] = self.values.get((first, column), "")


def looks_binary(sample: str) -> bool:
    """Text has next to no control characters; binary data has them everywhere."""
    control = sum(1 for ch in sample if ch in CONTROL_CHARS)
    return "\x00" in sample or control > max(8, len(sample) // 100)


class PasswordProtected(InputError):
    """The workbook is encrypted; an XLS may still be locked only with Excel's default
    password, which ``protection.unlocked`` tries before the run is refused."""


def password_protected(path: Path) -> PasswordProtected:
    return PasswordProtected(f"{path}: the workbook is password-protected; save a copy without "
                             "a password and import that")


def _rows_after(chunk: RawChunk, header_row: int) -> RawChunk:
    skip = max(0, header_row + 1 - chunk.first_row)
    if not skip:
        return chunk
    problems = {(i - skip, col): p for (i, col), p in chunk.cell_problems.items() if i >= skip}
    return RawChunk(chunk.first_row + skip, chunk.rows[skip:], problems)


def clean_header(text: str) -> str:
    """Header text as a person reads it: no BOM, no surrounding or non-breaking spaces."""
    return text.replace("\ufeff", "").replace("\xa0", " ").strip()


def _has_text(cells: list[str]) -> bool:
    """A loop rather than any(): almost every row returns at its first cell, with no generator."""
    for cell in cells:  # noqa: SIM110
        if cell and not cell.isspace():
            return True
    return False
