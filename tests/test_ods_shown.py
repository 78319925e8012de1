"""ODS cells are sent as LibreOffice shows them (found by a black-box tester, R2-5 and F8).

``shown.ods`` is an Excel user's workbook opened and saved by LibreOffice (see
specs/sheets.json): formula dates are stored as numbers shown ``03/01/24``, formula booleans
as 1/0 shown ``TRUE``/``FALSE``, a number formatted ``"ID-"000000`` as 42, a tab as
``<text:tab/>``. The hand-written cells below are the other markup LibreOffice writes in text
cells, and the stale display texts a reader must not trust.
"""

import zipfile
from pathlib import Path

import pytest

from importer.readers import ReadOptions, open_table

SHEETS = Path(__file__).parent / "fixtures" / "sheets"
NS = ('xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" '
      'xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" '
      'xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" '
      'xmlns:dc="http://purl.org/dc/elements/1.1/"')

MANIFEST = ('<?xml version="1.0" encoding="UTF-8"?><manifest:manifest '
            'xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0">'
            '<manifest:file-entry manifest:full-path="/" '
            'manifest:media-type="application/vnd.oasis.opendocument.spreadsheet"/>'
            '<manifest:file-entry manifest:full-path="content.xml" manifest:media-type="text/xml"/>'
            "</manifest:manifest>")


def _values(path: Path) -> list[list[str]]:
    return [cells for batch in open_table(path, ReadOptions()).batches()
            for cells in batch.cells]


def test_formula_dates_booleans_and_labelled_numbers_are_sent_as_shown() -> None:
    assert _values(SHEETS / "shown.ods") == [
        ["Ada", "ada@example.com", "2024-03-01", "TRUE", "ID-000042", "a\tb"],
        ["Grace", "grace@example.com", "2024-03-31", "FALSE", "ID-000007",
         "line1\nline2\nx   y"],
    ]


@pytest.mark.parametrize("suffix", ["xlsx", "xls"])
def test_the_same_sheet_in_xlsx_and_xls_agrees_where_excel_shows_the_same(suffix: str) -> None:
    """LibreOffice saves formula dates in XLSX/XLS with the General format (Excel shows 45352),
    so only the other columns are compared."""
    ods = _values(SHEETS / "shown.ods")
    other = _values(SHEETS / f"shown.{suffix}")
    assert [row[3:] for row in other] == [row[3:] for row in ods]


def _ods(tmp_path: Path, cells: list[str]) -> Path:
    def text(t: str) -> str:
        return _string(f"<text:p>{t}</text:p>")

    rows = "".join(f"<table:table-row>{text('Ods')}{c}</table:table-row>" for c in cells)
    content = (f'<?xml version="1.0" encoding="UTF-8"?><office:document-content {NS}>'
               '<office:body><office:spreadsheet><table:table table:name="Sheet1">'
               f"<table:table-row>{text('Name')}{text('Value')}</table:table-row>{rows}"
               "</table:table></office:spreadsheet></office:body></office:document-content>")
    path = tmp_path / "cells.ods"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(zipfile.ZipInfo("mimetype"),
                         "application/vnd.oasis.opendocument.spreadsheet")
        archive.writestr("content.xml", content, zipfile.ZIP_DEFLATED)
        archive.writestr("META-INF/manifest.xml", MANIFEST, zipfile.ZIP_DEFLATED)
    return path


def _float(value: str, shown: str) -> str:
    return (f'<table:table-cell office:value-type="float" office:value="{value}">'
            f"<text:p>{shown}</text:p></table:table-cell>")


def _string(paragraphs: str) -> str:
    return f'<table:table-cell office:value-type="string">{paragraphs}</table:table-cell>'


CELLS = [
    (_string("<text:p>a<text:tab/>b</text:p>"), "a\tb"),
    (_string("<text:p>a<text:line-break/>b</text:p>"), "a\nb"),
    (_string('<text:p>x<text:s text:c="3"/>y<text:tab/></text:p><text:p>z &amp; w</text:p>'),
     "x   y\t\nz & w"),
    (_string("<office:annotation><dc:creator>ops</dc:creator><text:p>INTERNAL</text:p>"
             "</office:annotation><text:p>a<text:tab/>b</text:p>"), "a\tb"),
    (_float("45352", "03/01/24"), "2024-03-01"),
    (_float("45352", "1. März 2024"), "2024-03-01"),
    (_float("45352.395833333336", "03/01/2024 09:30"), "2024-03-01T09:30:00"),
    (_float("1", "TRUE"), "TRUE"),
    (_float("0", "FALSE"), "FALSE"),
    (_float("42", "ID-000042"), "ID-000042"),
    (_float("42", "42 kg"), "42 kg"),
    # Stale or unrelated display texts are not trusted: the value is sent.
    (_float("45352", "03/02/24"), "45352"),
    (_float("45352", "45,352"), "45352"),
    (_float("1", "FALSE"), "1"),
    (_float("43", "ID-000042"), "43"),
    (_float("42", "ID-42 v2"), "42"),
    (_float("1234.5", "1.234,50"), "1234.5"),
    (_float("4155550123", "(415) 555-0123"), "4155550123"),
    # Small numbers in plain decimals, however the sheet shows them (README).
    (_float("1E-07", "1E-07"), "0.0000001"),
    (_float("0.000001", "0.000001"), "0.000001"),
    (_float("-1.5E-08", "-1.5E-08"), "-0.000000015"),
]


def test_each_cell_is_sent_as_shown_and_a_stale_text_is_not_trusted(tmp_path: Path) -> None:
    values = [row[1] for row in _values(_ods(tmp_path, [cell for cell, _ in CELLS]))]
    assert values == [want for _, want in CELLS]


def test_small_numbers_in_xlsx_are_sent_in_plain_decimals(tmp_path: Path) -> None:
    import openpyxl

    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["Name", "Value"])
    for value in (0.000001, 1e-07, 0.5, 123.25):
        sheet.append(["X", value])
    book.save(tmp_path / "small.xlsx")
    assert [row[1] for row in _values(tmp_path / "small.xlsx")] == [
        "0.000001", "0.0000001", "0.5", "123.25"]


def test_a_number_with_words_in_its_xlsx_format_is_sent_as_shown(tmp_path: Path) -> None:
    """The same cells as ODS sends them: ``0 "kg"`` shows ``42 kg``; a bare ``0`` pads nothing."""
    import openpyxl

    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["Name", "Value"])
    for value, shown in ((42, '0" kg"'), (7, '"Q"0'), (42, "0"), (4.2, '0" kg"')):
        sheet.append(["X", value])
        sheet.cell(sheet.max_row, 2).number_format = shown
    book.save(tmp_path / "words.xlsx")
    assert [row[1] for row in _values(tmp_path / "words.xlsx")] == ["42 kg", "Q7", "42", "4.2"]


def _formula(attributes: str, shown: str) -> str:
    return (f'<table:table-cell table:formula="of:=X()" {attributes}>'
            f"<text:p>{shown}</text:p></table:table-cell>")


def test_formula_errors_are_found_with_or_without_libreoffice_s_extension(
        tmp_path: Path) -> None:
    """LibreOffice marks an error ``calcext:value-type="error"``; a writer without that
    extension leaves an empty text value showing the error. Texts that only look like errors
    (typed, or a formula's text result) are values, sent as they are."""
    calcext = (b'xmlns:calcext="urn:org:documentfoundation:names:experimental:calc:xmlns:'
               b'calcext:1.0" ')
    cells = [
        _formula('office:value-type="string" office:string-value="" calcext:value-type="error"',
                 "#N/A"),
        _formula('office:value-type="string" office:string-value=""', "#DIV/0!"),
        _formula('office:value-type="string" office:string-value=""', "Err:502"),
        _formula('office:value-type="string" office:string-value="#N/A"', "#N/A"),
        _string("<text:p>#REF!</text:p>"),
    ]
    path = _ods(tmp_path, cells)
    with zipfile.ZipFile(path) as archive:
        content = archive.read("content.xml").replace(b"<office:document-content ",
                                                      b"<office:document-content " + calcext)
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("mimetype", "application/vnd.oasis.opendocument.spreadsheet")
        archive.writestr("content.xml", content)
        archive.writestr("META-INF/manifest.xml", MANIFEST)
    [batch] = open_table(path, ReadOptions()).batches()
    errors = {(batch.rows[i], column): p.message for (i, column), p in batch.cell_problems.items()}
    assert errors == {
        (2, 1): "cell B2 shows #N/A, a formula error; fix the formula or clear the cell",
        (3, 1): "cell B3 shows #DIV/0!, a formula error; fix the formula or clear the cell",
        (4, 1): "cell B4 shows Err:502, a formula error; fix the formula or clear the cell",
    }
    assert [row[1] for row in batch.cells][3:] == ["#N/A", "#REF!"]
