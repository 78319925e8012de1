"""Delimited text exports: CSV, TSV, Excel's "Unicode text", legacy single-byte files.

Every cell stays text. The csv module is used rather than a type-inferring reader because it
reports exact record boundaries (a quoted cell with a newline is one spreadsheet row) and never
guesses that ``02134`` is a number or that ``NA`` is missing.
"""

import codecs
import csv
import re
from collections.abc import Iterator
from itertools import islice
from pathlib import Path
from typing import TextIO

from importer.errors import InputError
from importer.readers.encodings import choose_legacy, normalise_encoding, sample_words
from importer.readers.table import CHUNK_ROWS, RawChunk, looks_binary

MAX_CELL_CHARS = 1_048_576
MAX_LINE_CHARS = 8 * MAX_CELL_CHARS
SAMPLE_BYTES = 65_536
SCAN_BYTES = 1 << 20
DELIMITERS = (",", ";", "\t", "|")
SEP_HINT = re.compile(r"sep=([,;\t|])\r?\n")
TEXT_FORMULA = re.compile(r'="((?:[^"]|"")*)"')
DELIMITER_NAMES = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}
BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


UNICODE = ("utf-8", "utf-8-sig", "utf-16", "utf-16-le", "utf-16-be", "utf-32")


def detect_encoding(path: Path, head: bytes) -> str:
    """BOM first, then the whole file must decode as UTF-8 (a legacy byte at row 90,000 still
    counts); a file that does not is judged by ``encodings.choose_legacy``, never guessed."""
    for bom, encoding in BOMS:
        if head.startswith(bom):
            return encoding
    utf16 = _utf16_without_bom(head)
    if utf16:
        return utf16
    if b"\x00" in head:
        raise InputError(f"{path}: contains binary data (NUL bytes), not text; export the data "
                         "as CSV or as a workbook")
    bad = _first_bad_byte(path, "utf-8")
    if bad is None:
        return "utf-8"
    line, utf8_before = bad
    if utf8_before:
        raise InputError(f"{path}: line {line} holds bytes that are not UTF-8, while the text "
                         "before it is UTF-8 (a pasted legacy value?); fix that line, or pass "
                         "--encoding if the whole file is in another encoding")
    return choose_legacy(path).name


def _utf16_without_bom(head: bytes) -> str | None:
    """Text saved as UTF-16 without a BOM shows NULs in every other byte."""
    sample = head[:4096]
    if len(sample) < 8:
        return None
    even = sample[0::2].count(0) / len(sample[0::2])
    odd = sample[1::2].count(0) / len(sample[1::2])
    if odd > 0.3 and even < 0.05:
        return "utf-16-le"
    if even > 0.3 and odd < 0.05:
        return "utf-16-be"
    return None


def _first_bad_byte(path: Path, encoding: str) -> tuple[int, bool] | None:
    """None when the whole file decodes; else the line of the first bad byte, and whether
    non-ASCII text before it decoded fine (a UTF-8 file with one damaged value, not cp1252)."""
    decoder = codecs.getincrementaldecoder(encoding)("strict")
    lines, non_ascii = 1, False
    with path.open("rb") as f:
        while block := f.read(SCAN_BYTES):
            if b"\x00" in block:
                raise InputError(f"{path}: contains NUL bytes, so it is binary or damaged, not a "
                                 "text export; export it again")
            try:
                decoder.decode(block)
            except UnicodeDecodeError as exc:
                before = block[:exc.start]
                return lines + before.count(b"\n"), non_ascii or not before.isascii()
            lines += block.count(b"\n")
            non_ascii = non_ascii or not block.isascii()
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            return lines, non_ascii
    return None


def detect_delimiter(sample: str, suffix: str) -> str:
    """The delimiter that splits the most sample lines into the same number (> 1) of cells."""
    lines = sample.splitlines()[:50]
    best, best_score = None, (0, 0)
    for delimiter in DELIMITERS:
        counts = [len(row) for row in csv.reader(lines, delimiter=delimiter) if any(row)]
        wide = [n for n in counts if n > 1]
        if not wide:
            continue
        common = max(set(wide), key=wide.count)
        score = (wide.count(common), common)
        if score > best_score:
            best, best_score = delimiter, score
    if best is None:
        return "\t" if suffix == ".tsv" else ","
    return best


def count_lines(path: Path) -> int:
    """Physical lines: an upper bound on rows, cheap enough to drive a progress bar."""
    lines = 0
    last = b"\n"
    with path.open("rb") as f:
        while block := f.read(SCAN_BYTES):
            lines += block.count(b"\n")
            last = block[-1:]
    return lines + (last != b"\n")


def read_text(path: Path, head: bytes, encoding: str | None,
              delimiter: str | None) -> tuple[Iterator[RawChunk], str, str]:
    """Rows of a delimited text file, with the encoding and delimiter actually used."""
    try:
        encoding = normalise_encoding(encoding) if encoding else detect_encoding(path, head)
    except LookupError as exc:
        raise InputError(f"{path}: unknown encoding {encoding!r}; use a name such as utf-8, "
                         "utf-16, cp1252, cp1250, MS-DOS (cp850) or x-mac-roman") from exc
    sample = head[:SAMPLE_BYTES].decode(encoding, errors="ignore")
    if looks_binary(sample):
        raise InputError(f"{path}: contains binary data, not text; export the data as CSV or "
                         "as a workbook")
    sample = sample.lstrip("\ufeff")
    hint = SEP_HINT.match(sample)
    if hint:
        sample = sample[hint.end():]
    delimiter = delimiter or (hint and hint.group(1)) or detect_delimiter(
        sample, path.suffix.lower())
    _refuse_unclosed_quote(path, encoding, delimiter)
    chunks = _chunks(path, encoding, delimiter, skip_hint=bool(hint))
    if _contains(path, encoding, '="'):
        chunks = _shown_text(chunks)
    return chunks, encoding, delimiter


def encoding_detail(path: Path, encoding: str) -> str:
    """The encoding for the summary; a legacy one with a few of the words it produced, so a
    wrong reading shows before anything is sent."""
    if encoding in UNICODE:
        return encoding
    words = sample_words(path, encoding)
    quoted = ", ".join(f'"{word}"' for word in words)
    return f"{encoding}, read as {quoted}" if words else encoding


def _refuse_unclosed_quote(path: Path, encoding: str, delimiter: str) -> None:
    """A quote that is never closed makes the rest of the file one cell; refuse that up front.

    Reading leniently (as Excel does: ``"ab"c`` is ``abc``) would otherwise swallow every
    following row without a word. Only a file with an odd number of quote characters can have
    one, so only such a file is parsed a second time, strictly, to find the line.
    """
    if _quote_count(path, encoding) % 2 == 0:
        return
    try:
        with path.open(encoding=encoding, newline="") as f:
            line = _unclosed_quote_line(_bounded_lines(path, f), delimiter)
    except (UnicodeError, csv.Error):
        return
    if line:
        raise InputError(f"{path}: line {line}: a quoted cell opens on this line and is never "
                         "closed, so every line after it would be read as one cell; close the "
                         'quote (a quote inside a value is written "")')


def _quote_count(path: Path, encoding: str) -> int:
    """Quote characters in the file; counted on the bytes when the encoding allows (UTF-8 and
    the 8-bit code pages never use 0x22 inside another character), which is ten times faster."""
    if codecs.lookup(encoding).name.startswith(("utf-16", "utf-32")):
        try:
            with path.open(encoding=encoding, newline="") as f:
                return sum(block.count('"') for block in iter(lambda: f.read(SCAN_BYTES), ""))
        except UnicodeError:
            return 0
    with path.open("rb") as f:
        return sum(block.count(b'"') for block in iter(lambda: f.read(SCAN_BYTES), b""))


def _contains(path: Path, encoding: str, text: str) -> bool:
    """Whether ``text`` occurs anywhere in the file (searched on the bytes, block by block)."""
    needle = text.encode(encoding)
    for bom in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE, codecs.BOM_UTF8):
        needle = needle.removeprefix(bom)
    tail = b""
    with path.open("rb") as f:
        while block := f.read(SCAN_BYTES):
            if needle in tail + block[:len(needle)] or needle in block:
                return True
            tail = block[-len(needle):]
    return False


def _shown_text(chunks: Iterator[RawChunk]) -> Iterator[RawChunk]:
    """Excel's "keep as text" cells, ``="02134"``, show ``02134``: send what it shows.

    Only files that hold ``="`` at all pay for looking at every cell.
    """
    for chunk in chunks:
        for row in chunk.rows:
            for i, cell in enumerate(row):
                if cell.startswith('="'):
                    found = TEXT_FORMULA.fullmatch(cell)
                    if found:
                        row[i] = found.group(1).replace('""', '"')
        yield chunk


def _unclosed_quote_line(lines: Iterator[str], delimiter: str) -> int | None:
    reader = csv.reader(lines, delimiter=delimiter, strict=True)
    start = 1
    while True:
        try:
            next(reader)
        except StopIteration:
            return None
        except csv.Error as exc:
            if "unexpected end of data" in str(exc):
                return start
        start = reader.line_num + 1


def _chunks(path: Path, encoding: str, delimiter: str, skip_hint: bool) -> Iterator[RawChunk]:
    """Excel hides a ``sep=;`` first line and numbers the next line 1, and so do we."""
    csv.field_size_limit(MAX_CELL_CHARS)
    first_row = 1
    with path.open(encoding=encoding, newline="") as f:
        if skip_hint:
            f.readline()
        reader = csv.reader(_bounded_lines(path, f), delimiter=delimiter, quotechar='"',
                            doublequote=True)
        while True:
            try:
                rows = list(islice(reader, CHUNK_ROWS))
            except csv.Error as exc:
                raise InputError(_csv_error(path, reader.line_num, exc)) from exc
            except UnicodeError as exc:
                raise InputError(f"{path}: near line {reader.line_num + 1}, bytes that are not "
                                 f"{encoding}; pass --encoding with the encoding the file was "
                                 "saved in") from exc
            if not rows:
                return
            if first_row == 1 and rows[0] and not skip_hint:
                rows[0][0] = rows[0][0].lstrip("\ufeff")
            yield RawChunk(first_row, rows)
            first_row += len(rows)


def _bounded_lines(path: Path, f: TextIO) -> Iterator[str]:
    """Lines of at most ``MAX_LINE_CHARS``: a file with no line breaks must not fill memory."""
    readline = f.readline
    while line := readline(MAX_LINE_CHARS):
        if len(line) == MAX_LINE_CHARS and not line.endswith(("\n", "\r")):
            raise InputError(f"{path}: holds a line longer than {MAX_LINE_CHARS:,} characters; "
                             "a contact export never does, so the file is damaged or not an "
                             "export")
        yield line


def _csv_error(path: Path, line: int, exc: csv.Error) -> str:
    if "field larger than field limit" in str(exc):
        return (f"{path}: near line {line}, a cell holds more than {MAX_CELL_CHARS:,} characters; "
                "a contact export never does, so the file is damaged or has an unclosed quote")
    return f"{path}: near line {line}, the text cannot be split into cells ({exc}); fix that line"
