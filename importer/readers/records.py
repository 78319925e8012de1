"""Rows that are data in memory (dicts, a DataFrame's rows) read as a ``Table``, like a file.

Values become the text a person sees, under strict rules: ``None``/``NaN``/``NA``/``NaT`` is an
empty cell, strings pass as they are, integers are sent as digits, dates and times as ISO 8601,
``True``/``False`` as ``TRUE``/``FALSE`` (as a spreadsheet shows them). A float is shown with at
most 15 significant digits; one that is not whole, or too large to be exact, cannot be an
identifier, so it makes its row invalid when it feeds an id-like field (``ID_LIKE``) rather
than being sent as ``1.5`` or ``1e+19``. A float of 16 digits or more, and a value no cell can
hold (a list, bytes, an object), make the row invalid whichever field they feed.

The rows are read once, converted, and spooled to a private temporary file while a SHA-256 of
the converted text is taken. The digest is the data's identity for resume, the part a file's
digest plays for a file; the spool lets a one-pass iterator (a generator, a database cursor) be
read again without holding it in memory.
"""

import datetime as dt
import decimal
import hashlib
import json
import math
import numbers
import pickle
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO

import numpy as np

from importer.errors import InputError
from importer.readers.table import CHUNK_ROWS, RawChunk, Table
from importer.rows.problems import Code

ID_LIKE = frozenset({"external_id", "phone", "mobile", "mobile_phone", "postal_code", "zip"})
"""Fields whose value identifies or addresses something: a float there is a damaged value."""
EXACT_DIGITS = 15
MISSING_TYPES = frozenset({"NAType", "NaTType"})
"""pandas' missing-value markers, recognised by name so this module never imports pandas."""


def id_like(field: str) -> bool:
    """Identifier-like fields: the known ones, and any custom field named ``..._id``."""
    return field in ID_LIKE or field.endswith("_id")


class Unusable(ValueError):
    """A value that cannot be sent in any field; its text is kept for the digest."""

    def __init__(self, text: str, reason: str) -> None:
        super().__init__(reason)
        self.text = text


def value_text(value: object) -> tuple[str, str]:
    """The text sent for ``value``, and why it cannot be an identifier ('' when it can).

    Raises ``Unusable`` for values no field can take.
    """
    if value is None or type(value).__name__ in MISSING_TYPES:
        return "", ""
    if isinstance(value, str):
        return value, ""
    if isinstance(value, bool | np.bool_):
        return ("TRUE" if value else "FALSE"), ""
    if isinstance(value, numbers.Integral):
        return str(int(value)), ""
    if isinstance(value, decimal.Decimal):
        return _decimal_text(value)
    if isinstance(value, np.floating) and value.itemsize < 8:
        return _float_text(float(str(value)))  # float32 0.1 is shown, and meant, as 0.1
    if isinstance(value, numbers.Real):
        return _float_text(float(value))
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat(), ""
    kind = type(value).__name__
    raise Unusable(repr(value)[:60], f"a {kind} value is not a cell value; pass text, numbers "
                                     "or dates")


def _float_text(value: float) -> tuple[str, str]:
    if math.isnan(value):
        return "", ""
    if math.isinf(value):
        raise Unusable(str(value), "infinity is not a value")
    if value.is_integer() and abs(value) < 10**EXACT_DIGITS:
        return str(int(value)), ""
    text = np.format_float_positional(value, precision=EXACT_DIGITS, unique=False,
                                      fractional=False, trim="-")
    if value.is_integer():
        raise Unusable(text, f"the float {value:.{EXACT_DIGITS}g} has more than {EXACT_DIGITS} "
                             "digits, so it is not exact; load the column as text or as integers "
                             "(dtype 'string' or 'Int64')")
    return text, (f"the number {text} has a fraction, so it is not an identifier; load the "
                  "column as text or as integers (dtype 'string' or 'Int64')")


def _decimal_text(value: decimal.Decimal) -> tuple[str, str]:
    if value.is_nan():
        return "", ""
    if value.is_infinite():
        raise Unusable(str(value), "infinity is not a value")
    if value == value.to_integral_value():
        return f"{value.to_integral_value():f}", ""
    text = f"{value:f}"
    return text, f"the number {text} has a fraction, so it is not an identifier"


class RecordSpool:
    """Converted rows in a private temporary file, and the digest of their text."""

    def __init__(self, headers: list[str], rows: Iterable[Sequence[object]],
                 fields_of: Callable[[int], list[str]]) -> None:
        self.headers = headers
        self.rows = 0
        # Closed by ``chunks`` once read, or here when the rows cannot be read.
        self._file: IO[bytes] = tempfile.TemporaryFile(prefix="routera-rows-")  # noqa: SIM115
        self._fields_of = fields_of
        try:
            self.digest = self._fill(rows)
        except BaseException:
            self._file.close()
            raise

    def _fill(self, rows: Iterable[Sequence[object]]) -> str:
        hashed = hashlib.sha256(_line(self.headers))
        chunk = RawChunk(2, [])
        for values in rows:
            cells = self._convert(values, chunk)
            hashed.update(_line(cells))
            chunk.rows.append(cells)
            if len(chunk.rows) == CHUNK_ROWS:
                chunk = self._spill(chunk)
        self._spill(chunk)
        return hashed.hexdigest()

    def _convert(self, values: Sequence[object], chunk: RawChunk) -> list[str]:
        index = len(chunk.rows)
        cells = []
        for column, value in enumerate(values):
            try:
                text, not_an_id = value_text(value)
            except Unusable as exc:
                text, not_an_id = exc.text, ""
                self._refuse(chunk, index, column, str(exc))
            if not_an_id and any(id_like(name) for name in self._fields_of(column)):
                self._refuse(chunk, index, column, not_an_id)
            cells.append(text)
        return cells

    def _refuse(self, chunk: RawChunk, index: int, column: int, reason: str) -> None:
        names = self._fields_of(column) or [self.headers[column]]
        chunk.cell_problems[(index, column)] = Code.INVALID_VALUE.problem(
            names[0], field_name=names[0], reason=f"column {self.headers[column]!r}: {reason}")

    def _spill(self, chunk: RawChunk) -> RawChunk:
        if chunk.rows:
            pickle.dump(chunk, self._file, protocol=pickle.HIGHEST_PROTOCOL)
            self.rows += len(chunk.rows)
        return RawChunk(chunk.first_row + len(chunk.rows), [])

    def chunks(self) -> Iterator[RawChunk]:
        """The header row, then the spooled rows; the file is closed once they are read."""
        yield RawChunk(1, [list(self.headers)])
        self._file.seek(0)
        try:
            while True:
                try:
                    yield pickle.load(self._file)
                except EOFError:
                    return
        finally:
            self._file.close()

    def table(self, name: str, detail: str) -> Table:
        """The rows as a table: headers on row 1, the first record on row 2."""
        return Table(Path(name), self.chunks(), header_row=1,
                     detail=f"{detail}, {self.rows:,} rows, SHA-256 {self.digest[:12]}",
                     total_rows=self.rows + 1)


def _line(cells: list[str]) -> bytes:
    """One row, framed unambiguously (a value holding a comma or newline cannot fake two)."""
    return json.dumps(cells, ensure_ascii=False).encode("utf-8") + b"\n"


def record_values(rows: Iterable[Mapping[str, object]], columns: Sequence[str] | None
                  ) -> tuple[list[str], Iterator[Sequence[object]]]:
    """The headers (``columns``, else the first record's keys) and each record's values in
    their order; a record with a key outside them is refused, a missing key is an empty cell."""
    iterator = iter(rows)
    first: Mapping[str, object] | None = None
    if columns is None:
        first = next(iterator, None)
        if first is None:
            raise InputError("rows: there are no records; nothing to import")
        columns = list(first)
    keys = list(columns)
    known = frozenset(keys)

    def values() -> Iterator[Sequence[object]]:
        records = iterator if first is None else _chained(first, iterator)
        for number, record in enumerate(records, 2):
            if not isinstance(record, Mapping):
                raise InputError(f"rows: row {number} is a {type(record).__name__}, not a dict "
                                 "of column name to value")
            extra = record.keys() - known
            if extra:
                raise InputError(f"rows: row {number} has the key {sorted(map(str, extra))[0]!r}, "
                                 "which the first record does not have; give every record the "
                                 "same keys, or pass columns=[...]")
            yield [record.get(key) for key in keys]

    return [str(key) for key in keys], values()


def _chained(first: Mapping[str, object],
             rest: Iterator[Mapping[str, object]]) -> Iterator[Mapping[str, object]]:
    yield first
    yield from rest
