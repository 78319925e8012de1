"""What calamine does not tell about ODS cells: merged ranges and the text each number shows.

An ODS file stores, beside each cell's value, the text LibreOffice displays (``<text:p>``): a
ZIP code formatted ``00000`` has the value ``2134`` and the text ``02134``. The sheet's XML is
scanned tag by tag (a regular expression over the bytes, far faster than building elements)
keeping the row and column of every cell, repeats included, to find merged ranges (and the
hidden rows and columns the summary reports) and the shown text of numbers that show more
than their value: zero-padded numbers, numbers with text in their format (``ID-000042``),
and formula results LibreOffice shows as a date or a boolean (``=DATE(2024;3;1)`` is stored as
the number 45352 shown ``03/01/24``; ``=TRUE()`` as 1 shown ``TRUE``), whatever style the cell
has (such formula cells often have none). A shown text is used only when it shows the value
itself (the same date, the same digits), so a stale text is never trusted. Text cells with a
tab or a line break (``<text:tab/>``, ``<text:line-break/>``), which calamine drops, are
rebuilt from their paragraphs. A formula that fails shows its error (``#N/A``, ``#DIV/0!``,
LibreOffice's ``Err:502``) while calamine reads an empty cell, so error cells are reported with
the text they show, as XLSX ones are.
"""

import datetime as dt
import re
import zipfile
from dataclasses import dataclass, field
from html import unescape

TAG = re.compile(rb"<(/?)(?:\w+:)?(table-row|table-cell|covered-table-cell|table-column|table"
                 rb"|p)(?=[\s/>])([^>]*?)(/?)>")
ATTRIBUTE = re.compile(rb'(?:\w+:)?([\w-]+)="([^"]*)"')
PARAGRAPH = re.compile(rb"<(?:\w+:)?p\b[^>]*>(.*?)</(?:\w+:)?p>", re.DOTALL)
MARKUP = re.compile(rb"<[^>]*>")
CELL_END = re.compile(rb"</(?:\w+:)?(?:covered-)?table-cell>")
ANNOTATION = re.compile(rb"<(?:\w+:)?annotation\b.*?</(?:\w+:)?annotation>", re.DOTALL)
SPACES = re.compile(rb"<(?:\w+:)?s\b([^>]*)/>")
TAB = re.compile(rb"<(?:\w+:)?tab\b[^>]*/>")
LINE_BREAK = re.compile(rb"<(?:\w+:)?line-break\b[^>]*/>")
LAYOUT_MARKS = (b"tab/>", b"tab />", b"line-break")
MAX_CELL_BYTES = 1 << 16
DIGITS = re.compile(r"\d+")
WORDS = re.compile(r"[^\W\d_]+")
MONTHS = (("jan", "jän", "ene", "gen"), ("feb", "fév", "fev"), ("mar", "mär"),
          ("apr", "avr", "abr"), ("may", "mai", "mei", "mag"), ("jun", "juin", "giu"),
          ("jul", "juil", "lug"), ("aug", "aoû", "ago"), ("sep", "set"), ("oct", "okt", "ott"),
          ("nov",), ("dec", "dez", "déc", "dic"))
"""How month names begin in English, German, French, Spanish, Italian and Dutch."""
TIME_WORDS = frozenset({"am", "pm", "a", "p"})
TRUE_WORDS = frozenset({"TRUE", "WAHR", "VRAI", "VERDADERO", "VERO", "WAAR", "PRAWDA"})
FALSE_WORDS = frozenset({"FALSE", "FALSCH", "FAUX", "FALSO", "ONWAAR", "FAŁSZ"})
EPOCH = dt.datetime(1899, 12, 30)
FIRST_SERIAL_PAST_9999 = 2958466
PADDED = re.compile(r"[\d\-]+")
DURATION = re.compile(rb"(-?)PT(\d+)H(\d+)M(\d+)(?:[.,]\d+)?S")
DAY_HOURS = 24
DATE_AS_TIME_HOURS = 24 * 366
MAX_REPEAT = 1 << 20
MAX_HIDDEN_REPEAT = 1 << 16
"""A hidden block of more repeated rows is the empty rest of the sheet hidden, not data."""
ERROR_TEXT = re.compile(r"#(?:N/A|NULL!|DIV/0!|VALUE!|REF!|NAME\?|NUM!)|Err:\d{3}")
"""What a failed formula shows, in Excel's words and LibreOffice's own (``Err:502``)."""


@dataclass
class OdsDetails:
    """0-based ``(row, column)`` positions: merged ranges as (first row, first column, last row,
    last column), the shown text of zero-padded whole numbers, hidden rows and columns."""

    merged: list[tuple[int, int, int, int]] = field(default_factory=list)
    shown: dict[tuple[int, int], str] = field(default_factory=dict)
    hidden_rows: set[int] = field(default_factory=set)
    hidden_columns: set[int] = field(default_factory=set)
    errors: dict[tuple[int, int], str] = field(default_factory=dict)
    """Formula cells that show an error, with the error's text."""


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
    marks = any(mark in xml for mark in LAYOUT_MARKS)
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
            _cell(details, xml, match.end(), attributes, (row, column), empty, marks)
            column += repeat
    return details


def _cell(details: OdsDetails, xml: bytes, end: int, attributes: dict[bytes, bytes],
          position: tuple[int, int], empty: bytes, marks: bool) -> None:
    """``marks``: the sheet has tabs or line breaks somewhere (only then are text cells read)."""
    row, column = position
    rows = int(attributes.get(b"number-rows-spanned", b"1") or 1)
    columns = int(attributes.get(b"number-columns-spanned", b"1") or 1)
    if rows > 1 or columns > 1:
        details.merged.append((row, column, row + rows - 1, column + columns - 1))
    kind = attributes.get(b"value-type")
    if b"formula" in attributes and not empty and _is_error(kind, attributes):
        shown = _shown_text(xml, end)
        if kind == b"error" or ERROR_TEXT.fullmatch(shown):
            details.errors[(row, column)] = shown or "#ERROR"
        return
    if kind == b"time":
        text = _time_text(attributes.get(b"time-value", b""))
        if text:
            details.shown[(row, column)] = text
        return
    if empty:
        return
    if kind == b"float":
        text = _float_text(_shown_text(xml, end), attributes.get(b"value", b""))
    elif kind == b"string" and marks:
        text = _string_text(xml, end)
    else:
        return
    if text:
        details.shown[(row, column)] = text


def _is_error(kind: bytes | None, attributes: dict[bytes, bytes]) -> bool:
    """LibreOffice marks an error cell ``calcext:value-type="error"`` (the last value-type
    attribute, so the one ``kind`` holds); a writer without that extension stores an empty
    text value (``office:string-value=""``) whose shown text is the error."""
    return kind == b"error" or (kind == b"string" and attributes.get(b"string-value") == b"")


def _float_text(text: str, raw: bytes) -> str:
    """What to send for a number shown as ``text``: the text, a date, TRUE/FALSE, or ""
    (calamine's value) when the text does not show the value."""
    try:
        value = float(raw)
    except ValueError:
        return ""
    if not text or text == raw.decode():
        return ""
    word = text.strip().upper()
    if word in TRUE_WORDS or word in FALSE_WORDS:
        return ("TRUE" if value else "FALSE") if (word in TRUE_WORDS) == bool(value) else ""
    if not value.is_integer():
        return _date_text(text, value)
    if PADDED.fullmatch(text) and _same_number(text, raw):
        return text
    return _date_text(text, value) or _labelled_number(text, int(value))


def _labelled_number(text: str, value: int) -> str:
    """``ID-000042`` for 42: words around the value's digits (zero-padded), nothing else."""
    groups = DIGITS.findall(text)
    if not WORDS.search(text) or len(groups) != 1 or int(groups[0]) != abs(value):
        return ""
    return text if value >= 0 or "-" in text else ""


def _date_text(text: str, value: float) -> str:
    """The ISO date (and time, when the value has one) when ``text`` shows that calendar day:
    its day, month (a number or a name) and year (four or two digits), in any order."""
    if not 1 <= value < FIRST_SERIAL_PAST_9999:
        return ""
    moment = EPOCH + dt.timedelta(days=value)
    groups = [int(g) for g in DIGITS.findall(text)]
    words = [w.casefold() for w in WORDS.findall(text)]
    named = any(w.startswith(MONTHS[moment.month - 1]) for w in words)
    if not named and any(w not in TIME_WORDS for w in words):
        return ""
    wanted = [moment.day] + ([] if named else [moment.month])
    if not _take_year(groups, moment.year) or not all(_take(groups, n) for n in wanted):
        return ""
    if value.is_integer():
        return moment.date().isoformat()
    if len(groups) > 3:
        return ""
    rounded = EPOCH + dt.timedelta(seconds=round(value * 86400))
    return rounded.isoformat(timespec="seconds")


def _take_year(groups: list[int], year: int) -> bool:
    return _take(groups, year) or _take(groups, year % 100)


def _take(groups: list[int], number: int) -> bool:
    if number in groups:
        groups.remove(number)
        return True
    return False


def _string_text(xml: bytes, end: int) -> str:
    """A text cell with a tab or a line break, rebuilt as shown ("" for any other cell: calamine
    reads those right, and this is the only case that needs the cell's XML)."""
    found = CELL_END.search(xml, end, end + MAX_CELL_BYTES)
    if found is None:
        return ""
    content = xml[end:found.start()]
    if not any(mark in content for mark in LAYOUT_MARKS):
        return ""
    return _paragraphs(content)


def _paragraphs(content: bytes) -> str:
    """The cell's paragraphs, one a line, with tabs, line breaks and runs of spaces
    (``<text:s text:c="3"/>``) as shown; a comment (annotation) is not part of the cell."""
    content = ANNOTATION.sub(b"", content)
    lines = []
    for paragraph in PARAGRAPH.finditer(content):
        body = TAB.sub(b"\t", LINE_BREAK.sub(b"\n", paragraph.group(1)))
        body = SPACES.sub(_spaces, body)
        lines.append(unescape(MARKUP.sub(b"", body).decode("utf-8", "replace")))
    return "\n".join(lines)


def _spaces(found: re.Match[bytes]) -> bytes:
    count = re.search(rb'c="(\d+)"', found.group(1))
    return b" " * min(int(count.group(1)) if count else 1, MAX_CELL_BYTES)


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
    """The first paragraph of the cell that starts at ``end`` (its displayed text), not
    counting a comment."""
    cell_end = xml.find(b"table-cell>", end, end + 4096)
    if cell_end < 0:
        return ""
    content = xml[end:cell_end]
    if b"annotation" in content:
        content = ANNOTATION.sub(b"", content)
    found = PARAGRAPH.search(content)
    if found is None:
        return ""
    return unescape(MARKUP.sub(b"", found.group(1)).decode("utf-8", "replace"))


def _same_number(text: str, value: bytes) -> bool:
    """``02134`` or ``02134-0001`` show the value's digits, zero-padded, and nothing else."""
    digits = text.replace("-", "")
    return bool(digits) and int(digits) == abs(int(value)) and (
        len(digits) > len(value.lstrip(b"-")) or "-" in text)
