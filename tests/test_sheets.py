"""Workbooks saved by LibreOffice (tests/fixtures/sheets, made by make_sheet_fixtures.py): the
three formats send the same values for the same sheet, as a person sees it."""

from pathlib import Path

import pytest

from importer.readers import ReadOptions, open_table
from importer.readers.table import Table

SHEETS = Path(__file__).parent / "fixtures" / "sheets"
FORMATS = ["xlsx", "ods", "xls"]


def _rows(table: Table) -> list[list[str]]:
    return [cells for batch in table.batches() for cells in batch.cells]


@pytest.mark.parametrize("suffix", FORMATS)
def test_a_range_merged_down_gives_its_value_to_every_row(suffix: str) -> None:
    table = open_table(SHEETS / f"merged.{suffix}", ReadOptions())
    assert _rows(table) == [
        ["Ada", "Lovelace", "ada@example.com", "Acme Corp"],
        ["Grace", "Hopper", "grace@example.com", "Acme Corp"],
        ["Alan", "Turing", "alan@example.com", "Acme Corp"],
        ["Katherine", "Johnson", "kj@example.com", "NASA"],
        # Merged across two columns: one value shown, so it stays in its first column.
        ["Mary", "", "mary@example.com", "Globex"],
    ]


def test_a_merged_header_does_not_spill_into_the_data(tmp_path: Path) -> None:
    import openpyxl

    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["Name", "Email"])
    sheet.append(["", "a@x.io"])
    sheet.append(["Bob", "b@x.io"])
    sheet.merge_cells("A1:A2")
    book.save(tmp_path / "h.xlsx")
    assert _rows(open_table(tmp_path / "h.xlsx", ReadOptions())) == [["", "a@x.io"],
                                                                     ["Bob", "b@x.io"]]
