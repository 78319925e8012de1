"""What calamine does not tell about XLSX cells: zero-padded formats and formula errors.

Excel's "Zip Code" format (``00000``), ids formatted ``000000`` and the like show leading zeros
that the stored number does not have, and calamine returns only the number; a formula that
fails shows ``#N/A`` or ``#DIV/0!``, and calamine returns an empty cell. Both would silently
change what the person saw, so the sheet's cell tags are scanned for them (styles.xml first,
to know which styles pad). Other formats (decimals, currency, dates) are left to calamine.
"""

import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO

from defusedxml.ElementTree import fromstring

MAIN = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
RELS = "{http://schemas.openxmlformats.org/package/2006/relationships}"
DOC_RELS = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}"
ERROR_VALUE = re.compile(rb"<(?:\w+:)?v>([^<]{1,40})</")
ATTRIBUTE = re.compile(rb'\b(r|s|t)="([^"]*)"')
REFERENCE = re.compile(r"([A-Z]+)(\d+)")
HIDDEN_ROW = re.compile(rb"<(?:\w+:)?row\b([^>]*\bhidden=[^>]*)>")
HIDDEN_COLUMN = re.compile(rb"<(?:\w+:)?col\b([^>]*\bhidden=[^>]*)/?>")
ATTRIBUTE_ANY = re.compile(rb'\b([\w:]+)="([^"]*)"')
LITERALS = set(" -()/:+")
DATE = "<date>"
BUILTIN_DATES = (14, 15, 16, 17, 22)
FIRST_SERIAL_PAST_9999 = 2958466
ERROR_CELL = re.compile(rb'<(?:\w+:)?c\b([^>]*\bt="e"[^>]*)>')
ODD_SERIAL = re.compile(rb"<(?:\w+:)?v>(-[^<]{1,40}|0(?:\.[^<]{1,40})?|\d{7,}(?:\.[^<]{0,40})?)"
                        rb"</")
CELL_START = re.compile(rb"(?:\w+:)?c\b([^>]*)>")
LOCALE_TAG = re.compile(r"\[\$-[0-9A-Fa-f]{1,8}\]")
"""``[$-409]``: the language a format was picked for (English (US)); it changes no digit. A
tag with a currency symbol (``[$€-407]``) shows the symbol, so it is left alone."""


@dataclass
class CellDetails:
    """By ``(row, column)``, 0-based: the format of zero-padded numbers, the text of errors."""

    padded: dict[tuple[int, int], str] = field(default_factory=dict)
    errors: dict[tuple[int, int], str] = field(default_factory=dict)
    hidden_rows: set[int] = field(default_factory=set)
    hidden_columns: set[int] = field(default_factory=set)
    bad_dates: dict[tuple[int, int], str] = field(default_factory=dict)
    """Cells formatted as dates holding a serial no calendar shows (0, negative, past 9999)."""


def cell_details(path: Path | IO[bytes], sheet: str) -> CellDetails:
    """The sheet's details, from the workbook's file or its decrypted bytes."""
    with zipfile.ZipFile(path) as archive:
        part = _sheet_part(archive, sheet)
        if part is None:
            return CellDetails()
        styles = _number_styles(archive)
        xml = archive.read(part)
    details = _scan(xml, styles)
    if b"hidden=" in xml:
        _hidden(xml, details)
    return details


def _hidden(xml: bytes, details: CellDetails) -> None:
    """Rows and columns hidden by the user (a filter, or Hide), 0-based."""
    for match in HIDDEN_ROW.finditer(xml):
        attributes = dict(ATTRIBUTE_ANY.findall(match.group(1)))
        if attributes.get(b"hidden") in (b"1", b"true") and attributes.get(b"r", b"").isdigit():
            details.hidden_rows.add(int(attributes[b"r"]) - 1)
    for match in HIDDEN_COLUMN.finditer(xml):
        attributes = dict(ATTRIBUTE_ANY.findall(match.group(1)))
        low, high = attributes.get(b"min", b""), attributes.get(b"max", b"")
        if attributes.get(b"hidden") in (b"1", b"true") and low.isdigit() and high.isdigit():
            details.hidden_columns.update(range(int(low) - 1, min(int(high), 16384)))


def render(value: float, pattern: str) -> str | None:
    """The number as the format shows it, or None when the format is not a digit pattern."""
    pieces = _pieces(pattern)
    if pieces is None or not float(value).is_integer():
        return None
    slots = sum(1 for piece in pieces if piece is None)
    digits = str(abs(int(value))).zfill(slots)
    extra = len(digits) - slots
    out, taken = [], 0
    for piece in pieces:
        if piece is not None:
            out.append(piece)
            continue
        width = 1 + (extra if taken == 0 else 0)
        start = taken + (0 if taken == 0 else extra)
        out.append(digits[start:start + width])
        taken += 1
    return ("-" if value < 0 else "") + "".join(out)


def padded_pattern(pattern: str) -> bool:
    """Whether numbers shown through this format show zeros they do not hold (``00000``)."""
    return _pieces(pattern) is not None


def _pieces(pattern: str) -> list[str | None] | None:
    """``00000-0000`` -> [None]*5 + ["-"] + [None]*4; None for anything but digits and text,
    and for a lone ``0`` without words (``0 "kg"`` shows ``42 kg``, as ODS sends it)."""
    pattern = LOCALE_TAG.sub("", pattern)
    pieces: list[str | None] = []
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "0":
            pieces.append(None)
        elif ch == '"':
            end = pattern.find('"', i + 1)
            if end < 0:
                return None
            pieces.append(pattern[i + 1:end])
            i = end
        elif ch == "\\" and i + 1 < len(pattern):
            pieces.append(pattern[i + 1])
            i += 1
        elif ch in LITERALS:
            pieces.append(ch)
        else:
            return None
        i += 1
    zeros = sum(1 for piece in pieces if piece is None)
    worded = any(piece is not None and any(c.isalpha() for c in piece) for piece in pieces)
    return pieces if zeros >= 2 or (zeros and worded) else None


def _number_styles(archive: zipfile.ZipFile) -> dict[int, str]:
    """Cell style index -> format code, for the styles whose format pads with zeros, and
    (marked ``DATE``) those that show a calendar date."""
    try:
        root = fromstring(archive.read("xl/styles.xml"))
    except KeyError:
        return {}
    codes = {int(f.get("numFmtId", -1)): f.get("formatCode", "")
             for f in root.iter(f"{MAIN}numFmt")}
    padded = {number: code for number, code in codes.items() if _pieces(code) is not None}
    padded.update({number: DATE for number in BUILTIN_DATES})
    padded.update({number: DATE for number, code in codes.items() if shows_date(code)})
    cell_xfs = root.find(f"{MAIN}cellXfs")
    if cell_xfs is None:
        return {}
    styles = [int(xf.get("numFmtId", 0)) for xf in cell_xfs.findall(f"{MAIN}xf")]
    return {index: padded[number] for index, number in enumerate(styles) if number in padded}


def shows_date(code: str) -> bool:
    """A format with a day or year in it (``m`` alone may be minutes)."""
    bare = re.sub(r'"[^"]*"|\\.|\[[^\]]*\]', "", code).lower()
    return "d" in bare or "y" in bare


def _sheet_part(archive: zipfile.ZipFile, sheet: str) -> str | None:
    book = fromstring(archive.read("xl/workbook.xml"))
    rels = fromstring(archive.read("xl/_rels/workbook.xml.rels"))
    targets = {r.get("Id"): r.get("Target", "") for r in rels.iter(f"{RELS}Relationship")}
    for entry in book.iter(f"{MAIN}sheet"):
        if entry.get("name") == sheet:
            target = targets.get(entry.get(f"{DOC_RELS}id"), "")
            return target.lstrip("/") if target.startswith("/") else str(
                PurePosixPath("xl") / target)
    return None


def _scan(xml: bytes, styles: dict[int, str]) -> CellDetails:
    """Only the cells that matter are matched (by a pattern naming their styles, or their
    error type), so a sheet of ordinary cells costs one regular-expression pass."""
    details = CellDetails()
    padded = {index: code for index, code in styles.items() if code != DATE}
    used = [index for index in padded if f's="{index}"'.encode() in xml]
    if used:
        styled = re.compile(rb'<(?:\w+:)?c\b([^>]*\bs="(?:' + "|".join(map(str, used)).encode()
                            + rb')"[^>]*)>')
        for match in styled.finditer(xml):
            attributes = dict(ATTRIBUTE.findall(match.group(1)))
            position = _position(attributes.get(b"r", b""))
            if position is not None and attributes.get(b"t", b"n") == b"n":
                details.padded[position] = padded[int(attributes[b"s"])]
    dates = {str(index).encode() for index, code in styles.items() if code == DATE}
    if dates:
        _check_dates(xml, dates, details)
    if b't="e"' in xml:
        for match in ERROR_CELL.finditer(xml):
            position = _position(dict(ATTRIBUTE.findall(match.group(1))).get(b"r", b""))
            if position is not None:
                value = ERROR_VALUE.search(xml, match.end(), match.end() + 4096)
                details.errors[position] = value.group(1).decode() if value else "#ERROR"
    return details


def _check_dates(xml: bytes, dates: set[bytes], details: CellDetails) -> None:
    """Values no calendar shows (0, negative, 7 digits or more) are rare, so they are found
    first and only their cells' styles are looked at."""
    for found in ODD_SERIAL.finditer(xml):
        try:
            serial = float(found.group(1))
        except ValueError:
            continue
        if 1 <= serial < FIRST_SERIAL_PAST_9999:
            continue
        start = max(xml.rfind(b"<c ", 0, found.start()), xml.rfind(b":c ", 0, found.start()))
        tag = CELL_START.match(xml, start + 1) if start >= 0 else None
        if tag is None:
            continue
        attributes = dict(ATTRIBUTE.findall(tag.group(1)))
        position = _position(attributes.get(b"r", b""))
        if (position is not None and attributes.get(b"s") in dates
                and attributes.get(b"t", b"n") == b"n"):
            details.bad_dates[position] = found.group(1).decode()


def _position(reference: bytes) -> tuple[int, int] | None:
    found = REFERENCE.fullmatch(reference.decode())
    if found is None:
        return None
    return int(found.group(2)) - 1, _column_index(found.group(1))


def _column_index(letters: str) -> int:
    index = 0
    for letter in letters:
        index = index * 26 + ord(letter) - 64
    return index - 1
