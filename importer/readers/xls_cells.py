"""What calamine does not tell about XLS cells: zero-padded formats, formula errors, odd dates.

Excel 97-2003 files store a format for every cell, as XLSX does; calamine returns only the
number, so a ZIP code formatted ``00000`` would be sent as ``2134``. xlrd reads the formats
(``formatting_info``). Measured on a 65,000-row XLS: calamine reads it in 0.6 s, xlrd's
workbook globals (formats included) in 0.5 s and the sheet's cells in 1.8 s more; the sheet is
read for its hidden rows and columns too, so an XLS costs about four times what calamine alone
would (XLS sheets stop at 65,536 rows, so at most a few seconds). A formula that fails shows
``#N/A`` or ``#DIV/0!`` and calamine reads an empty cell; xlrd knows the error's code, so the
cell is reported as an XLSX one is. A cell formatted as a date that holds a serial no calendar
shows (0 or less, Excel's 1900-01-00 or #####; past 9999-12-31, #####) is reported too, as in
XLSX, rather than sent as calamine reads it (``00:00:00``, or the bare serial).
"""

import io
from collections.abc import Sequence

import xlrd
from xlrd.biffh import XLRDError

from importer.readers.xlsx_cells import (
    FIRST_SERIAL_PAST_9999,
    CellDetails,
    padded_pattern,
    shows_date,
)

MAC_EPOCH_DAYS = 1462
"""A workbook in the 1904 date system (old Macs) counts from 1904-01-01, so its dates end at
9999-12-31 = 2957003. Its serials under 1 are dates too, but calamine reads them as times of
day, so they are reported like the 1900 system's."""

__all__ = ["xls_details"]


def xls_details(path: str, sheet: str, content: bytes | None = None) -> CellDetails:
    """Zero-padded number cells and error cells of the sheet; nothing when xlrd cannot read
    the file (the values calamine read stay as they are). ``content``: the workbook decrypted
    in memory, when the file is encrypted."""
    try:
        book = xlrd.open_workbook(path, file_contents=content, formatting_info=True,
                                  on_demand=True, logfile=io.StringIO(), verbosity=0)
    except (XLRDError, OSError, ValueError, KeyError, IndexError, AssertionError):
        return CellDetails()
    try:
        return _details(book, sheet)
    except (XLRDError, ValueError, KeyError, IndexError, AssertionError):
        return CellDetails()
    finally:
        book.release_resources()


def _details(book: xlrd.Book, sheet: str) -> CellDetails:
    styles: dict[int, str] = {}
    calendar: set[int] = set()
    for index, xf in enumerate(book.xf_list):
        shown = book.format_map.get(xf.format_key)
        if shown is not None and padded_pattern(shown.format_str):
            styles[index] = shown.format_str
        elif shown is not None and shows_date(shown.format_str):
            calendar.add(index)
    data = book.sheet_by_name(sheet)
    details = CellDetails()
    details.hidden_rows = {row for row, info in data.rowinfo_map.items() if info.hidden}
    details.hidden_columns = {column for column, info in data.colinfo_map.items()
                              if info.hidden}
    for row in range(data.nrows):
        types = data.row_types(row)
        if xlrd.XL_CELL_ERROR in types:
            _errors(data, row, types, details)
        if xlrd.XL_CELL_DATE in types:
            _odd_dates(data, row, types, calendar, book.datemode, details)
        if not styles:
            continue
        for column, kind in enumerate(types):
            if kind == xlrd.XL_CELL_NUMBER:
                style = data.cell_xf_index(row, column)
                if style in styles:
                    details.padded[(row, column)] = styles[style]
    return details


def _odd_dates(data: xlrd.sheet.Sheet, row: int, types: Sequence[int], calendar: set[int],
               datemode: int, details: CellDetails) -> None:
    """Date cells (a format showing a day or a year) whose serial no calendar shows."""
    shift = MAC_EPOCH_DAYS if datemode == 1 else 0
    for column, kind in enumerate(types):
        if kind != xlrd.XL_CELL_DATE or data.cell_xf_index(row, column) not in calendar:
            continue
        serial = data.cell_value(row, column)
        if isinstance(serial, float) and not 1 <= serial < FIRST_SERIAL_PAST_9999 - shift:
            details.bad_dates[(row, column)] = (str(int(serial)) if serial.is_integer()
                                                else repr(serial))


def _errors(data: xlrd.sheet.Sheet, row: int, types: Sequence[int],
            details: CellDetails) -> None:
    """The text each error cell of the row shows (``#N/A``), by xlrd's error code."""
    for column, kind in enumerate(types):
        if kind == xlrd.XL_CELL_ERROR:
            code = data.cell_value(row, column)
            text = xlrd.error_text_from_code.get(code) if isinstance(code, int) else None
            details.errors[(row, column)] = text or "#ERROR"


