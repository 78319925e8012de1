"""XLSX results: imported only when a run asks for ``--results *.xlsx``.

openpyxl takes a fifth of the importer's start-up, so the CSV and JSON Lines paths never load it.
"""

import re
from collections.abc import Callable
from pathlib import Path

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE, Cell
from openpyxl.styles import Font, PatternFill

from importer.results.files import written_whole
from importer.rows.outcomes import Outcome, Status


class XlsxResults:
    """A Results sheet (bold frozen header, filter, coloured statuses) and a Summary sheet.

    Streamed with openpyxl's write-only mode into a temporary file that replaces the target
    only when complete, so an interrupted run never leaves a half-written workbook.
    """

    def __init__(self, path: Path, columns: tuple[str, ...],
                 cells: Callable[[Outcome], list[str | int]], colours: dict[Status, str]) -> None:
        self.path = path
        self.cells = cells
        self.temporary = path.with_name(f".{path.name}.partial")
        self.book = Workbook(write_only=True)
        self.sheet = self.book.create_sheet("Results")
        self.sheet.freeze_panes = "A2"
        for letter, width in zip("ABCDEFGHIJ", (7, 10, 38, 11, 60, 24, 16, 30, 18, 18),
                                 strict=True):
            self.sheet.column_dimensions[letter].width = width
        bold = Font(bold=True)
        self.sheet.append([self._cell(name, font=bold) for name in columns])
        self.rows = 1
        self.fills = {s: PatternFill("solid", fgColor=c) for s, c in colours.items()}

    def _cell(self, value: str | float | None, **style: object) -> Cell:
        if isinstance(value, str):
            value = ILLEGAL_CHARACTERS_RE.sub(_escaped, value)
        cell = WriteOnlyCell(self.sheet, value=value)
        if isinstance(value, str):
            cell.data_type = "s"
        for name, setting in style.items():
            setattr(cell, name, setting)
        return cell

    def write(self, outcomes: list[Outcome]) -> None:
        for outcome in outcomes:
            row = [self._cell(v) for v in self.cells(outcome)]
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
        with written_whole(self.path, self.temporary) as stream:
            self.book.save(stream)


def _escaped(match: re.Match[str]) -> str:
    """Control characters XLSX cannot hold, shown as ``\\x0b`` instead of failing the file."""
    return f"\\x{ord(match.group()):02x}"
