"""Workbooks: XLSX, XLSM, XLS and ODS, read with calamine.

calamine (python-calamine) is the one engine for every workbook format: it reads cached formula
values, knows which numbers are dates, and is many times faster than openpyxl on large sheets.
Before calamine sees a zipped workbook, every part is decompressed once, counting the bytes it
really unpacks to and stopping at the limits, and every XML part's prolog is parsed with
defusedxml, so zip bombs and entity bombs are refused, not expanded. The sizes a zip declares
are not trusted either way: some exporters misstate them, and a bomb would understate them.
"""

import datetime as dt
import decimal
import io
import zipfile
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import IO

import python_calamine
from defusedxml import DefusedXmlException
from defusedxml.ElementTree import ParseError, iterparse

from importer.errors import InputError
from importer.readers.ods_cells import OdsDetails, ods_details
from importer.readers.table import (
    CHUNK_ROWS,
    MAX_COLUMNS,
    RawChunk,
    column_letter,
    password_protected,
)
from importer.readers.xls_cells import xls_details
from importer.readers.xlsx_cells import CellDetails, cell_details, render
from importer.rows.problems import Code

MAX_ZIP_MEMBERS = 10_000
MAX_UNCOMPRESSED = 1 << 30
MAX_RATIO = 200
RATIO_CHECK_ABOVE = 10 << 20
EXACT_DIGITS = 15
ODS_PARTS = frozenset({"content.xml", "styles.xml", "META-INF/manifest.xml"})


def check_zip(path: Path, content: bytes | None = None) -> None:
    """Refuse zip and XML bombs before any parser allocates memory for them.

    Every part is unpacked as a stream and its real size counted, but only the parts a reader
    parses are checked as XML or for damage: an empty settings part that LibreOffice 5.1 and
    OpenOffice 4.0 write (``Configurations2/accelerator/current.xml``), or a thumbnail with a
    bad checksum, is nobody's business. ``content``: the workbook decrypted in memory (see
    ``protection``), checked the same way.
    """
    size = len(content) if content is not None else path.stat().st_size
    try:
        with zipfile.ZipFile(_source(path, content)) as archive:
            members = archive.infolist()
            if len(members) > MAX_ZIP_MEMBERS:
                raise InputError(f"{path}: holds {len(members):,} parts, far more than any "
                                 "workbook; refusing to read it")
            unpacked = _Unpacked(path, size)
            for member in members:
                _unpack(path, archive, member, unpacked)
    except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
        # zlib.error: a part's compressed data is corrupt; EOFError: the file ends before a
        # part's declared compressed size does.
        raise InputError(f"{path}: the workbook is damaged (truncated or not a complete file); "
                         "export or download it again") from exc


def _unpack(path: Path, archive: zipfile.ZipFile, member: zipfile.ZipInfo,
            unpacked: "_Unpacked") -> None:
    """Unpack one part, counting its bytes (a bomb is refused whoever reads the part)."""
    read = _is_read(member.filename)
    try:
        with archive.open(member) as raw:
            stream = unpacked.part(member, raw)
            if read:
                _check_xml(path, member.filename, stream)
            while stream.read(1 << 20):
                pass
    except (zipfile.BadZipFile, zlib.error, EOFError):
        if read:
            raise


def _source(path: Path, content: bytes | None) -> Path | IO[bytes]:
    return io.BytesIO(content) if content is not None else path


def _is_read(name: str) -> bool:
    """The XML parts of XLSX and ODS that calamine or this package parse."""
    if not name.endswith((".xml", ".rels")):
        return False
    return (name.startswith(("xl/", "_rels/")) or name == "[Content_Types].xml"
            or name in ODS_PARTS)


class _Unpacked:
    """The bytes the workbook's parts really unpack to, counted as they are read.

    A part is a bomb when it unpacks to more than 10 MiB and to more than 200 times its
    compressed bytes (XML compresses 10 to 100 times); the whole workbook may unpack to 1 GiB.
    The compressed size is the declared one, but never more than the file itself. Reading
    stops at the first byte past a limit, so a bomb costs at most that much work and no
    memory. zipfile also stops a part at its declared size and checks its CRC, so a part that
    understates its size is refused as damaged (calamine refuses it too)."""

    def __init__(self, path: Path, size: int) -> None:
        self.path = path
        self.size = size
        self.total = 0

    def part(self, member: zipfile.ZipInfo, raw: IO[bytes]) -> "_Counted":
        return _Counted(self, member, raw)

    def add(self, member: zipfile.ZipInfo, part_bytes: int, count: int) -> None:
        self.total += count
        packed = max(1, min(member.compress_size, self.size))
        if part_bytes > RATIO_CHECK_ABOVE and part_bytes > MAX_RATIO * packed:
            self._refuse(f"{member.filename} unpacks to more than {part_bytes / 2**20:,.0f} MB",
                         "the shape of a zip bomb")
        if self.total > MAX_UNCOMPRESSED:
            self._refuse(f"unpacks to more than {MAX_UNCOMPRESSED / 2**20:,.0f} MB",
                         "more than a workbook reader can hold")

    def _refuse(self, what: str, shape: str) -> None:
        raise InputError(f"{self.path}: {what} from {self.size / 2**20:,.1f} MB, {shape}; "
                         "refusing to read it (save very large sheets as CSV)")


class _Counted(io.RawIOBase):
    """One part's stream, counting what it unpacks to."""

    def __init__(self, unpacked: _Unpacked, member: zipfile.ZipInfo, raw: IO[bytes]) -> None:
        super().__init__()
        self.unpacked, self.member, self.raw = unpacked, member, raw
        self.count = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        data = self.raw.read(1 << 20 if size is None or size < 0 else size)
        self.count += len(data)
        self.unpacked.add(self.member, self.count, len(data))
        return data


def _check_xml(path: Path, name: str, stream: io.RawIOBase) -> None:
    """Parse only up to the root element (where a DTD must appear); the caller drains the
    rest, counting it."""
    try:
        for _ in iterparse(stream, events=("start",), forbid_dtd=True):
            break
    except DefusedXmlException as exc:
        raise InputError(f"{path}: {name} declares XML entities or a DTD (an entity bomb or an "
                         "external reference); refusing to read it") from exc
    except ParseError as exc:
        raise InputError(f"{path}: {name} is not well-formed XML; the workbook is damaged, "
                         "export it again") from exc


@dataclass
class SheetRead:
    """One sheet's rows as text, with what the table needs to know about its layout.

    ``merged`` ranges are (first row, first column, last row, last column), 0-based, like
    ``hidden_rows`` and ``hidden_columns``; columns count from the sheet's column A."""

    chunks: Iterator[RawChunk]
    offset: int
    name: str
    height: int
    merged: list[tuple[int, int, int, int]] = field(default_factory=list)
    hidden_rows: set[int] = field(default_factory=set)
    hidden_columns: set[int] = field(default_factory=set)
    others: list[str] = field(default_factory=list)
    """The other visible worksheets, when no sheet was named (to look for the headers)."""


def read_workbook(path: Path, kind: str, sheet: str | None,
                  content: bytes | None = None) -> SheetRead:
    """Rows of one sheet as text, its first column index, its name and its last row number.

    ``content``: the workbook's bytes when they are not the file's (decrypted in memory);
    messages still name ``path``."""
    try:
        book = (python_calamine.CalamineWorkbook.from_filelike(io.BytesIO(content))
                if content is not None else python_calamine.CalamineWorkbook.from_path(str(path)))
        name = _choose_sheet(path, book, sheet)
        data = book.get_sheet_by_name(name)
    except InputError:
        raise
    except Exception as exc:
        if _says_password(exc):
            raise password_protected(path) from exc
        raise InputError(_calamine_message(path, kind, exc)) from exc
    if data.width > MAX_COLUMNS:
        raise InputError(f"{path}: sheet {name!r} is {data.width:,} columns wide, more than the "
                         f"{MAX_COLUMNS:,} a contact export can have; check this is the right file")
    offset = data.start[1] if data.start else 0
    height = data.end[0] + 1 if data.end else 0
    details = (cell_details(_source(path, content), name) if kind == "xlsx"
               else xls_details(str(path), name, content) if kind == "xls" else CellDetails())
    ods = ods_details(str(path), name) if kind == "ods" else OdsDetails()
    details.errors.update(ods.errors)
    merged = ods.merged if kind == "ods" else _merged(data)
    chunks = _chunks(path, data, _Details(details, ods.shown), nuls=kind == "xls")
    others = [] if sheet is not None else [n for n in _visible(book) if n != name]
    return SheetRead(chunks, offset, name, height, merged,
                     ods.hidden_rows | details.hidden_rows,
                     ods.hidden_columns | details.hidden_columns, others)


def _merged(data: python_calamine.CalamineSheet) -> list[tuple[int, int, int, int]]:
    ranges = data.merged_cell_ranges or []
    return [(top, left, bottom, right) for (top, left), (bottom, right) in ranges]


def _choose_sheet(path: Path, book: python_calamine.CalamineWorkbook, wanted: str | None) -> str:
    """By exact name, then case-insensitive name, then 1-based position; default: first visible."""
    sheets = [m for m in book.sheets_metadata if m.typ == python_calamine.SheetTypeEnum.WorkSheet]
    names = [m.name for m in sheets]
    if wanted is None:
        visible = _visible(book)
        if not (visible or names):
            raise InputError(f"{path}: the workbook has no worksheets")
        return (visible or names)[0]
    if wanted in names:
        return wanted
    folded = [n for n in names if n.casefold() == wanted.strip().casefold()]
    if folded:
        return folded[0]
    if wanted.strip().isdigit() and 1 <= int(wanted) <= len(names):
        return names[int(wanted) - 1]
    raise InputError(f"{path}: no sheet {wanted!r}; the sheets are: {', '.join(names)}")


def _visible(book: python_calamine.CalamineWorkbook) -> list[str]:
    return [m.name for m in book.sheets_metadata
            if m.typ == python_calamine.SheetTypeEnum.WorkSheet
            and m.visible == python_calamine.SheetVisibleEnum.Visible]


def _says_password(exc: Exception) -> bool:
    text = str(exc).lower()
    return "password" in text or "encrypt" in text


def _calamine_message(path: Path, kind: str, exc: Exception) -> str:
    return (f"{path}: cannot be read as {kind.upper()} ({str(exc)[:120]}); open it in a "
            "spreadsheet application and save it again")


class _Details:
    """``CellDetails`` grouped by row, applied to each row's text as it is read."""

    def __init__(self, details: CellDetails, shown: dict[tuple[int, int], str]) -> None:
        self.rows: dict[int, list[tuple[int, str, str]]] = {}
        for (row, column), text in shown.items():
            self.rows.setdefault(row, []).append((column, "shown", text))
        for (row, column), pattern in details.padded.items():
            self.rows.setdefault(row, []).append((column, "pad", pattern))
        for (row, column), text in details.errors.items():
            self.rows.setdefault(row, []).append((column, "error", text))
        for (row, column), serial in details.bad_dates.items():
            self.rows.setdefault(row, []).append((column, "date", serial))

    def apply(self, cells: list[str], values: Sequence[object], row: int, offset: int,
              chunk: RawChunk, index: int) -> None:
        for column, kind, detail in self.rows.get(row, ()):
            local = column - offset
            if not 0 <= local < len(values):
                continue
            if kind == "pad":
                _pad(cells, values, local, detail)
            elif kind == "shown":
                cells[local] = detail
            elif kind == "date":
                chunk.cell_problems[(index, local)] = Code.NOT_A_DATE.problem(
                    cell=f"{column_letter(column)}{row + 1}", serial=detail)
            else:
                cells[local] = detail
                chunk.cell_problems[(index, local)] = Code.CELL_ERROR.problem(
                    cell=f"{column_letter(column)}{row + 1}", error=detail)


def _chunks(path: Path, data: python_calamine.CalamineSheet, details: _Details,
            nuls: bool = False) -> Iterator[RawChunk]:
    offset = data.start[1] if data.start else 0
    rows = iter(data.iter_rows())
    first_row = 1
    while True:
        try:
            block = list(islice(rows, CHUNK_ROWS))
        except Exception as exc:
            raise InputError(f"{path}: cannot read row {first_row}: {str(exc)[:120]}") from exc
        if not block:
            return
        chunk = RawChunk(first_row, [])
        for i, values in enumerate(block):
            cells = _row_text(values, i, offset, first_row, chunk)
            details.apply(cells, values, first_row - 1 + i, offset, chunk, i)
            if nuls and "\x00" in "".join(cells):
                _without_nuls(path, cells, first_row + i, offset)
            chunk.rows.append(cells)
        yield chunk
        first_row += len(block)


def _row_text(values: Sequence[object], index: int, offset: int, first_row: int,
              chunk: RawChunk) -> list[str]:
    cells = [v if type(v) is str else cell_text(v) for v in values]
    for col, value in enumerate(values):
        if type(value) is float and value.is_integer() and abs(value) >= 10**EXACT_DIGITS:
            chunk.cell_problems[(index, col)] = Code.NUMBER_TOO_LONG.problem(
                cell=f"{column_letter(col + offset)}{first_row + index}",
                number=f"{value:.{EXACT_DIGITS}g}", digits=EXACT_DIGITS)
    return cells


def _without_nuls(path: Path, cells: list[str], row: int, offset: int) -> None:
    """Some old XLS writers store text as UTF-16 where an 8-bit string is expected, so it reads
    ``F\x00o\x00r\x00m``: every other character a NUL. Such text is read as it was meant; any
    other NUL is refused, because a NUL is never sent."""
    for column, text in enumerate(cells):
        if "\x00" not in text:
            continue
        if len(text) > 1 and not text[1::2].strip("\x00") and "\x00" not in text[0::2]:
            cells[column] = text[0::2]
            continue
        raise InputError(f"{path}: cell {column_letter(column + offset)}{row} holds NUL "
                         "characters, which no export should; open the file in LibreOffice "
                         "or Excel, save it as XLSX and import that")


def _pad(cells: list[str], values: Sequence[object], column: int, pattern: str) -> None:
    value = values[column]
    if isinstance(value, int | float) and not isinstance(value, bool):
        cells[column] = render(value, pattern) or cells[column]


def cell_text(value: object) -> str:
    """The text a person sees in the cell (for the default formats calamine can tell apart)."""
    if value is None or value == "":
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float):
        if value.is_integer():
            return str(int(value))
        return _positional(format(value, f".{EXACT_DIGITS}g"))
    if isinstance(value, dt.datetime):
        if value.microsecond:
            return value.isoformat(timespec="milliseconds")
        return value.isoformat(timespec="seconds")
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return _duration_text(value)
    return str(value)


def _positional(text: str) -> str:
    """``1e-07`` as ``0.0000001``: a small number is sent in plain decimals, as a DataFrame's
    floats are, whether the sheet shows it as ``0.0000001`` or ``1E-07`` (an exponent is the
    spreadsheet's display, and Python's, not the value)."""
    return format(decimal.Decimal(text), "f") if "e-" in text else text


def _duration_text(value: dt.timedelta) -> str:
    seconds = round(value.total_seconds())
    sign = "-" if seconds < 0 else ""
    hours, rest = divmod(abs(seconds), 3600)
    return f"{sign}{hours}:{rest // 60:02d}:{rest % 60:02d}"
