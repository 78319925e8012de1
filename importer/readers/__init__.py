"""Open any export a person hands us as a ``Table``, choosing the reader from the file's content.

The name is only a hint: a workbook saved as ``.csv`` is still read as a workbook, while a text
file named ``.xlsx`` is refused, because it means the file is not what its sender thinks it is.
"""

import io
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO

from importer.errors import InputError
from importer.readers.protection import unlocked
from importer.readers.table import (
    Hidden,
    PasswordProtected,
    Table,
    column_letter,
    looks_binary,
    password_protected,
)
from importer.readers.text import DELIMITER_NAMES, count_lines, encoding_detail, read_text
from importer.readers.workbook import SheetRead, check_zip, read_workbook

__all__ = ["ReadOptions", "Table", "column_letter", "describe", "open_table"]

HEAD_BYTES = 65_536
WORKBOOK_SUFFIXES = {".xlsx", ".xlsm", ".xlsb", ".xls", ".ods"}
OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
ENCRYPTED_STREAM = "EncryptedPackage".encode("utf-16-le")
WORKBOOK_STREAM = "Workbook".encode("utf-16-le")
BOOK_STREAM = "Book\x00".encode("utf-16-le")
"""Excel 97 and later keep the sheets in an OLE stream named Workbook; Excel 5.0/95 in Book."""
ENCRYPTED_OOXML = "encrypted-ooxml"
"""An XLSX (or XLSM, XLSB) encrypted into an OLE file: an EncryptedPackage stream."""
DEFAULT_PASSWORD_NOTE = "opened with Excel's default password (no password is asked)"
FOREIGN_MAGIC = {
    b"%PDF": "a PDF document",
    b"\x89PNG": "a PNG image",
    b"\xff\xd8\xff": "a JPEG image",
    b"GIF8": "a GIF image",
    b"\x1f\x8b": "a gzip archive",
    b"Rar!": "a RAR archive",
    b"7z\xbc\xaf": "a 7-Zip archive",
}


@dataclass(frozen=True)
class ReadOptions:
    """How to read the input; ``None`` means detect it."""

    sheet: str | None = None
    header_row: int | None = None
    encoding: str | None = None
    delimiter: str | None = None
    skip_hidden_rows: bool = False

    def with_defaults(self, sheet: str | None, header_row: int | None,
                      encoding: str | None = None,
                      delimiter: str | None = None) -> "ReadOptions":
        """These options, falling back to the mapping's sheet, header row, encoding and
        delimiter (command-line options win)."""
        return ReadOptions(self.sheet or sheet, self.header_row or header_row,
                           self.encoding or encoding, self.delimiter or delimiter,
                           self.skip_hidden_rows)


def open_table(path: Path, options: ReadOptions) -> Table:
    """The file's headers and a stream of its data rows; raises ``InputError`` for anything else."""
    head = _read_head(path)
    kind = _sniff(path, head)
    content = None
    if kind == ENCRYPTED_OOXML:
        content = unlocked(path)
        kind = _zip_kind(path, io.BytesIO(content))
    if kind in ("xlsx", "xlsb", "ods"):
        check_zip(path, content)
    if kind == "csv":
        chunks, encoding, delimiter = read_text(path, head, options.encoding, options.delimiter)
        detail = (f"{encoding_detail(path, encoding)}, "
                  f"{DELIMITER_NAMES.get(delimiter, repr(delimiter))}-separated")
        return Table(path, chunks, header_row=options.header_row, strict_width=True,
                     detail=detail, total_rows=count_lines(path))
    sheet, content = _read_sheet(path, kind, options.sheet, content)
    note = f", {DEFAULT_PASSWORD_NOTE}" if content is not None else ""
    table = Table(path, sheet.chunks, header_row=options.header_row, column_offset=sheet.offset,
                  detail=f"{kind.upper()}{note}, sheet {sheet.name!r}", total_rows=sheet.height,
                  merged=sheet.merged, sheet=sheet.name,
                  hidden=Hidden(sheet.hidden_rows, sheet.hidden_columns,
                                options.skip_hidden_rows))
    table.other_sheets = [_opener(path, options, name) for name in sheet.others]
    return table


def _read_sheet(path: Path, kind: str, sheet: str | None,
                content: bytes | None) -> tuple[SheetRead, bytes | None]:
    """The sheet, and the decrypted bytes it was read from (``None``: the file itself). An XLS
    shows it is encrypted only once opened, so it is decrypted here if it must be."""
    try:
        return read_workbook(path, kind, sheet, content), content
    except PasswordProtected:
        if kind != "xls" or content is not None:
            raise
    content = unlocked(path)
    return read_workbook(path, kind, sheet, content), content


def _opener(path: Path, options: ReadOptions, sheet: str) -> Callable[[], Table]:
    """Opens another sheet of the same workbook, only if the headers are looked for there."""
    return lambda: open_table(path, replace(options, sheet=sheet))


def describe(table: Table) -> str:
    """One line for the summary: what was read and how."""
    return f"{table.path.name} ({table.detail}, headers on row {table.header_row})"


def _read_head(path: Path) -> bytes:
    try:
        if path.is_dir():
            raise InputError(f"{path}: is a folder, not a file; give the path of the export file")
        with path.open("rb") as f:
            head = f.read(HEAD_BYTES)
    except FileNotFoundError as exc:
        raise InputError(f"{path}: no such file; check the path") from exc
    except PermissionError as exc:
        raise InputError(f"{path}: permission denied; check the file's permissions") from exc
    except OSError as exc:
        raise InputError(f"{path}: cannot be read ({exc.strerror or exc})") from exc
    if not head:
        raise InputError(f"{path}: the file is empty; export the data again")
    return head


def _sniff(path: Path, head: bytes) -> str:
    suffix = path.suffix.lower()
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        return _zip_kind(path)
    if head.startswith(OLE_MAGIC):
        return _ole_kind(path)
    for magic, what in FOREIGN_MAGIC.items():
        if head.startswith(magic):
            raise InputError(f"{path}: is {what}, not a spreadsheet export")
    if head.lstrip()[:20].lower().startswith((b"<!doctype html", b"<html", b"<table")):
        raise InputError(f"{path}: is an HTML page (some systems save HTML tables with a "
                         "spreadsheet name); open it in a spreadsheet application and save it "
                         "as XLSX or CSV")
    if suffix in WORKBOOK_SUFFIXES:
        if looks_binary(head[:4096].decode("latin-1")):
            raise InputError(f"{path}: is not a readable {suffix} workbook (damaged, or not a "
                             "spreadsheet at all); export or download it again")
        raise InputError(f"{path}: is named {suffix} but holds plain text, not a workbook; if it "
                         "is a CSV export, rename it to .csv")
    return "csv"


def _zip_kind(path: Path, content: IO[bytes] | None = None) -> str:
    """What the zip holds; ``content``: a decrypted workbook's bytes (messages name ``path``)."""
    try:
        with zipfile.ZipFile(content or path) as archive:
            names = set(archive.namelist())
            if "mimetype" in names:
                mimetype = archive.read("mimetype")[:100]
                if mimetype.startswith(b"application/vnd.oasis.opendocument.spreadsheet"):
                    if b"encryption-data" in archive.read("META-INF/manifest.xml")[:1 << 20]:
                        raise password_protected(path)
                    return "ods"
    except (zipfile.BadZipFile, KeyError) as exc:
        raise InputError(f"{path}: the workbook is damaged (truncated or not a complete file); "
                         "export or download it again") from exc
    if "xl/workbook.xml" in names:
        return "xlsx"
    if "xl/workbook.bin" in names:
        return "xlsb"
    raise InputError(f"{path}: is a zip archive but not an Excel or LibreOffice workbook")


def _ole_kind(path: Path) -> str:
    data = path.read_bytes()
    if ENCRYPTED_STREAM in data:
        return ENCRYPTED_OOXML
    if WORKBOOK_STREAM not in data and BOOK_STREAM in data:
        raise InputError(f"{path}: is an Excel 5.0/95 workbook (or older), a format this tool "
                         "does not read; open it in Excel or LibreOffice and save it as XLSX")
    return "xls"
