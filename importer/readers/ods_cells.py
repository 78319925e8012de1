"""What calamine does not tell about ODS cells: merged ranges and the text each number shows.

An ODS file stores, beside each cell's value, the text LibreOffice displays (``<text:p>``): a
ZIP code formatted ``00000`` has the value ``2134`` and the text ``02134``. The sheet's XML is
scanned tag by tag (a regular expression over the bytes, far faster than building elements)
keeping the row and column of every cell, repeats included, to find merged ranges (and the
hidden rows and columns the summary reports) and the shown text of zero-padded numbers.
"""

import re
import zipfile
from dataclasses import dataclass, field
from html import unescape

TAG = re.compile(rb"<(/?)(?:\w+:)?(table-row|table-cell|covered-table-cell|table-column|table"
                 rb"|p)(?=[\s/>])([^>]*?)(/?)>")
ATTRIBUTE = re.compile(rb'(?:\w+:)?([\w-]+)="([^"]*)"')
PARAGRAPH = re.compile(rb"<(?:\w+:)?p\b[^>]*>(.*?)</(?:\w+:)?p>", re.DOTALL)
MARKUP = re.compile(rb"<[^>]*>")
PADDED = re.compile(r"[\d\-]+")
DURATION = re.compile(rb"(-?)PT(\d+)H(\d+)M(\d+)(?:[.,]\d+)?S")
DAY_HOURS = 24
DATE_AS_TIME_HOURS = 24 * 366
MAX_REPEAT = 1 << 20
MAX_HIDDEN_REPEAT = 1 << 16
"""A hidden block of more repeated rows is the empty rest of the sheet hidden, not data."""


@dataclass
class OdsDetails:
    """0-based ``(row, column)`` positions: merged ranges as (first row, first column, last row,
    last column), the shown text of zero-padded whole numbers, hidden rows and columns."""

    merged: list[tuple[int, int, int, int]] = field(default_factory=list)
    shown: dict[tuple[int, int], str] = field(default_factory=dict)
    hidden_rows: set[int] = field(default_factory=set)
    hidden_columns: set[int] = field(default_factory=set)


def ods_details(path: str, sheet: str) -> OdsDetails:
    with zipfile.ZipFile(path) as archive:
        xml = archive.read("content.xml")
    start = _sheet_start(xml, sheet)
    return _scan(xml, start) if start is not None else OdsDetails()


def _sheet_start(xml: bytes, sheet: str) -> int | None:
    for match in TAG.finditer(xml):
        if match.group(2) == b"table" and not match.group(1):
            name = dict(ATTRIBUTE.findall(match.group(3))).get(b"name", b"")
            if unescape(name.decode("utf-8", "replace")) == sheet:
                return match.end()
    return None


def _scan(xml: bytes, start: int) -> OdsDetails:
    details = OdsDetails()
    row, column, columns_seen = -1, 0, 0
    for match in TAG.finditer(xml, start):
        closing, name, raw, empty = match.groups()
        if name == b"table":
            if closing or not empty:
                break
            continue
        if closing or name == b"p":
            continue
        attributes = dict(ATTRIBUTE.findall(raw))
        repeat = min(int(attributes.get(b"number-columns-repeated", b"1") or 1), MAX_REPEAT)
        hidden = attributes.get(b"visibility", b"visible") != b"visible"
        if name == b"table-column":
            if hidden:
                details.hidden_columns.update(range(columns_seen, columns_seen + repeat))
            columns_seen += repeat
        elif name == b"table-row":
            row_repeat = min(int(attributes.get(b"number-rows-repeated", b"1") or 1), MAX_REPEAT)
            if hidden and row_repeat <= MAX_HIDDEN_REPEAT:
                details.hidden_rows.update(range(row + 1, row + 1 + row_repeat))
            row, column = row + row_repeat, 0
        else:
            _cell(details, xml, match.end(), attributes, row, column, empty)
            column += repeat
    return details


def _cell(details: OdsDetails, xml: bytes, end: int, attributes: dict[bytes, bytes], row: int,
          column: int, empty: bytes) -> None:
    rows = int(attributes.get(b"number-rows-spanned", b"1") or 1)
    columns = int(attributes.get(b"number-columns-spanned", b"1") or 1)
    if rows > 1 or columns > 1:
        details.merged.append((row, column, row + rows - 1, column + columns - 1))
    kind = attributes.get(b"value-type")
    if kind == b"time":
        text = _time_text(attributes.get(b"time-value", b""))
        if text:
            details.shown[(row, column)] = text
        return
    if empty or kind != b"float":
        return
    value = attributes.get(b"value", b"")
    if not value.lstrip(b"-").isdigit():
        return
    text = _shown_text(xml, end)
    if text and text != value.decode() and PADDED.fullmatch(text) and _same_number(text, value):
        details.shown[(row, column)] = text


def _time_text(value: bytes) -> str:
    """A time cell: a time of day as ISO ``16:17:36``, an elapsed time of a day or more as
    ``295:12:00`` (as XLSX and XLS ones are sent). A value of more than a year of hours is a
    date and time shown through a time format (``=NOW()``): its time of day is what shows."""
    found = DURATION.fullmatch(value)
    if found is None:
        return ""
    sign, hours, minutes, seconds = found.group(1).decode(), *map(int, found.groups()[1:])
    if hours >= DATE_AS_TIME_HOURS:
        hours %= DAY_HOURS
    if hours < DAY_HOURS and not sign:
        return f"{hours:02d}:{minutes:02d}:{seconds:02d}"
    return f"{sign}{hours}:{minutes:02d}:{seconds:02d}"


def _shown_text(xml: bytes, end: int) -> str:
    """The first paragraph of the cell that starts at ``end`` (its displayed text)."""
    cell_end = xml.find(b"table-cell>", end, end + 4096)
    found = PARAGRAPH.search(xml[end:cell_end]) if cell_end > 0 else None
    if found is None:
        return ""
    return unescape(MARKUP.sub(b"", found.group(1)).decode("utf-8", "replace"))


def _same_number(text: str, value: bytes) -> bool:
    """``02134`` or ``02134-0001`` show the value's digits, zero-padded, and nothing else."""
    digits = text.replace("-", "")
    return bool(digits) and int(digits) == abs(int(value)) and (
        len(digits) > len(value.lstrip(b"-")) or "-" in text)
