"""Values no one can see are wrong: invisible characters in keys, control characters anywhere,
numbers a spreadsheet mangled.

An email pasted from a web page may carry a zero-width space: it looks right, the API stores it,
mail to it bounces and it never matches the same address typed by hand (so de-duplication misses
it). A phone or id column that Excel showed as ``4.47701E+11`` was exported rounded: the digits
after the sixth are gone. Both are caught here and make the row ``invalid``, rather than being
sent unnoticed. Names are left alone: Persian and Indic names need the zero-width (non-)joiner.
A control character (say U+0010) in any value is what an export leaves where it lost text its
encoding could not hold (LibreOffice writes the low byte of each Cyrillic letter to a
Windows-1252 CSV): the person never saw it, and the value next to it is already wrong.
"""

import re
import unicodedata

from importer.mapping.binding import MappedBatch
from importer.rows.problems import Code

__all__ = ["check_hidden_values"]

KEYS = ("email", "external_id", "website_url")
INVISIBLE = re.compile("[\u00ad\u061c\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064"
                       "\u2066-\u2069\ufeff]")
CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
"""C0 and C1 controls but tab, line feed and carriage return, which cells do hold (a column is
searched joined by line feeds: ``SEP`` is a control character itself)."""
SCIENTIFIC = re.compile(r"[+-]?\d(?:[.,]\d+)?[eE][+-]\d{2,3}")
"""As Excel and LibreOffice show a long number in the General format: ``4.47701E+11``."""
NUMERIC_FIELD = re.compile(r"phone|mobile|fax|(?:^|_)tel|(?:^|_)id(?:$|_)")
SEP = "\x00"


def check_hidden_values(batch: MappedBatch) -> None:
    """Record a problem on every row whose key holds an invisible character, or whose phone or
    id field holds a number in scientific notation. Whole columns are searched at once first,
    so a clean batch costs one regex scan per column."""
    for name in KEYS:
        column = batch.values.get(name)
        if column is not None and INVISIBLE.search(SEP.join(v for v in column if v)):
            _mark_invisible(batch, name, column)
    for name, column in batch.values.items():
        if CONTROL.search("\n".join(v for v in column if v)):
            _mark_control(batch, name, column)
        if NUMERIC_FIELD.search(name) and _has_scientific(column):
            _mark_scientific(batch, name, column)


def _mark_invisible(batch: MappedBatch, name: str, column: list[str | None]) -> None:
    for index, value in enumerate(column):
        found = INVISIBLE.search(value) if value else None
        if found and value is not None:
            batch.problems.setdefault(index, Code.INVISIBLE_CHARACTER.problem(
                name, field_name=name, value=value, character=_named(found.group()),
                before=value[:found.start()]))


def _mark_control(batch: MappedBatch, name: str, column: list[str | None]) -> None:
    for index, value in enumerate(column):
        found = CONTROL.search(value) if value else None
        if found and value is not None:
            batch.problems.setdefault(index, Code.CONTROL_CHARACTER.problem(
                name, field_name=name, value=value, character=_named(found.group())))


def _named(character: str) -> str:
    what = unicodedata.name(character, "control character").lower()
    return f"U+{ord(character):04X} {what}"


def _has_scientific(column: list[str | None]) -> bool:
    joined = SEP.join(v for v in column if v)
    return ("e" in joined or "E" in joined) and any(
        SCIENTIFIC.fullmatch(v) for v in column if v and ("e" in v or "E" in v))


def _mark_scientific(batch: MappedBatch, name: str, column: list[str | None]) -> None:
    for index, value in enumerate(column):
        if value and SCIENTIFIC.fullmatch(value):
            batch.problems.setdefault(index, Code.NUMBER_MANGLED.problem(
                name, field_name=name, value=value))
