"""A mapping bound to one file's headers, applied to whole batches of rows at a time.

Binding happens before anything is sent, so a missing or ambiguous column stops the run with
the headers that do exist. Applying works column by column (one list per field per batch)
because that keeps per-row Python work to a few list comprehensions.
"""

import json
import re
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

from importer.errors import MappingError
from importer.mapping.spec import ColumnMapping, FieldSpec, template_parts
from importer.readers import Table
from importer.readers.table import SourceBatch
from importer.rows.outcomes import ERRORS_COLUMNS
from importer.rows.problems import Code, RowProblem

Column = list[str | None]
MAX_LISTED_HEADERS = 25


@dataclass(slots=True)
class MappedBatch:
    """Rows as API fields: ``values[field][i]`` is row ``i``'s value, ``None`` when it has none."""

    rows: list[int]
    values: dict[str, Column]
    problems: dict[int, RowProblem] = field(default_factory=dict)

    def fields(self, index: int) -> dict[str, str]:
        """The request's ``fields`` for one row: fields without a value are left out."""
        return {name: value for name, column in self.values.items()
                if (value := column[index]) is not None}


@dataclass(frozen=True)
class _BoundField:
    spec: FieldSpec
    read: Callable[[SourceBatch], Column]
    columns: tuple[int, ...]


class BoundMapping:
    """A mapping whose column names have been resolved to positions in one table."""

    def __init__(self, mapping: ColumnMapping, headers: list[str], labels: Callable[[int], str],
                 source: str) -> None:
        self.mapping = mapping
        self.headers = headers
        self.label = labels
        self._index = _HeaderIndex(mapping, headers, labels, source)
        self._fields = [self._bind(spec) for spec in mapping.fields]
        self.columns_used = sorted({c for f in self._fields for c in f.columns})
        self.column_of = {f.spec.name: f.columns[0] for f in self._fields
                          if f.spec.columns and f.columns}
        self.fields_of: dict[int, list[str]] = defaultdict(list)
        """The fields each column feeds (a column can feed several, through templates)."""
        for bound in self._fields:
            for column in bound.columns:
                self.fields_of[column].append(bound.spec.name)

    def _bind(self, spec: FieldSpec) -> _BoundField:
        if spec.value is not None:
            constant = spec.value.strip() or None
            return _BoundField(spec, lambda batch: [constant] * len(batch.rows), ())
        if spec.template is not None:
            literals, names = template_parts(spec.template)
            positions = tuple(self._index.find(spec, (name,)) for name in names)
            return _BoundField(spec, _template_reader(literals, positions), positions)
        position = self._index.find(spec, spec.columns)
        return _BoundField(spec, _column_reader(position), (position,))

    def apply(self, batch: SourceBatch) -> MappedBatch:
        """Map one batch; problems found by the reader in mapped cells make their rows invalid."""
        mapped = MappedBatch(batch.rows, {}, dict(batch.problems))
        for (index, column), problem in batch.cell_problems.items():
            if column in self.columns_used:
                mapped.problems.setdefault(index, problem)
        for bound in self._fields:
            mapped.values[bound.spec.name] = _finish(bound.spec, bound.read(batch), mapped)
        return mapped


def bind(mapping: ColumnMapping, table: Table) -> tuple[BoundMapping, str | None]:
    """Resolve the mapping against the table's headers.

    When the header row was not given and the mapping's columns are not on the first row,
    the first rows below are searched (a title block above the header is common). When no
    sheet was named and the first visible sheet does not have them either ("Read me" first),
    every other visible sheet is searched: the one sheet that has them is used. Either way a
    note says where the headers were found.
    """
    try:
        return _bind_rows(mapping, table)
    except MappingError as first_error:
        found = []
        for open_sheet in table.other_sheets:
            other = open_sheet()
            try:
                found.append((other, *_bind_rows(mapping, other)))
            except MappingError:
                continue
        if not found:
            if table.other_sheets:
                raise MappingError(f"{first_error} (sheet {table.sheet!r}; no other visible "
                                   "sheet has the mapped columns either)") from None
            raise first_error from None
        if len(found) > 1:
            names = ", ".join(repr(other.sheet) for other, _, _ in found)
            raise MappingError(f"{mapping.path}: the mapped columns are on several sheets of "
                               f"{table.path.name} ({names}); choose one with --sheet or "
                               "sheet: in the mapping") from None
        other, bound, note = found[0]
        first_sheet = table.sheet
        table.adopt(other)
        where = (f"found the mapped columns on sheet {other.sheet!r}, not on the first sheet "
                 f"{first_sheet!r}, so that sheet is read; set sheet: {other.sheet} in the "
                 "mapping to make it explicit")
        return bound, f"{where}; {note}" if note else where


def _bind_rows(mapping: ColumnMapping, table: Table) -> tuple[BoundMapping, str | None]:
    """Bind to the header row, or to the first row near the top that has the columns."""
    try:
        return BoundMapping(mapping, table.headers, table.column_label, table.path.name), None
    except MappingError as first_error:
        if table.header_row_explicit:
            raise
        for number, headers in table.candidate_header_rows():
            try:
                bound = BoundMapping(mapping, headers, table.column_label, table.path.name)
            except MappingError:
                continue
            table.use_header_row(number)
            return bound, (f"found the mapped columns on row {number}, so that row is the "
                           f"header; set header_row: {number} in the mapping to make it explicit")
        raise first_error from None


class _HeaderIndex:
    """Finds columns: exact name after trimming, then ignoring case and whitespace.

    An errors file of an earlier run (see ``importer.results.errors_file``) starts with four
    columns of its own (``row``, ``status``, ``error_code``, ``error``); they are skipped, so
    the same mapping imports the fixed rows even when the export has a ``Status`` column too.
    """

    def __init__(self, mapping: ColumnMapping, headers: list[str], labels: Callable[[int], str],
                 source: str) -> None:
        self.mapping = mapping
        self.source = source
        self.headers = headers
        self.labels = labels
        self.exact: dict[str, list[int]] = defaultdict(list)
        self.loose: dict[str, list[int]] = defaultdict(list)
        skip = len(ERRORS_COLUMNS) if tuple(headers[:len(ERRORS_COLUMNS)]) == ERRORS_COLUMNS else 0
        for i, header in enumerate(headers):
            if header and i >= skip:
                self.exact[header].append(i)
                self.loose[_loose(header)].append(i)

    def find(self, spec: FieldSpec, names: tuple[str, ...]) -> int:
        for name in names:
            matches = self.exact.get(name) or self.loose.get(_loose(name))
            if not matches:
                continue
            if len(matches) > 1:
                where = " and ".join(self.labels(i) for i in matches)
                raise self.error(spec, f"column {name!r} appears {len(matches)} times in "
                                 f"{self.source} (columns {where}); rename one of them in the file")
            return matches[0]
        for name in names:
            header = self._commented_out(name)
            if header is not None:
                quoted = f"{spec.name}: {json.dumps(header, ensure_ascii=False)}"
                raise self.error(spec, f"field {spec.name!r} maps column {name!r}, which is not "
                                 f"in {self.source}, but {header!r} is: YAML reads ' #' as the "
                                 f"start of a comment, so quote it: {quoted}")
        listed = [h for h in self.headers if h][:MAX_LISTED_HEADERS]
        more = ", ..." if len([h for h in self.headers if h]) > MAX_LISTED_HEADERS else ""
        wanted = " or ".join(repr(n) for n in names)
        raise self.error(spec, f"field {spec.name!r} maps column {wanted}, which is not in "
                         f"{self.source}; its headers are: {', '.join(listed)}{more}")

    def _commented_out(self, name: str) -> str | None:
        """A header that is ``name`` plus `` #...``: an unquoted ``Account #`` in the mapping
        reaches us as ``Account``, the rest taken for a comment."""
        pattern = re.compile(re.escape(name) + r"[ \t]+#.*", re.S)
        return next((h for h in self.headers if pattern.fullmatch(h)), None)

    def error(self, spec: FieldSpec, message: str) -> MappingError:
        return MappingError(f"{self.mapping.path} line {spec.line}: {message}")


def _loose(name: str) -> str:
    return "".join(name.split()).casefold()


def _column_reader(position: int) -> Callable[[SourceBatch], Column]:
    def read(batch: SourceBatch) -> Column:
        return [cells[position].strip() or None for cells in batch.cells]

    return read


def _template_reader(literals: list[str],
                     positions: tuple[int, ...]) -> Callable[[SourceBatch], Column]:
    """Columns joined by the template's text; an empty column takes the text before it along
    (``"{First} {Last}"`` with no last name gives ``First``, not ``First ``). Cell values are
    never changed inside."""
    def render(cells: list[str]) -> str | None:
        parts = [cells[p].strip() for p in positions]
        if not any(parts):
            return None
        joined = [literals[0]]
        for index, part in enumerate(parts):
            if part:
                joined += [literals[index] if index and len(joined) > 1 else "", part]
        joined.append(literals[-1])
        return "".join(joined).strip() or None

    def read(batch: SourceBatch) -> Column:
        return [render(cells) for cells in batch.cells]

    return read


def _finish(spec: FieldSpec, values: Column, batch: MappedBatch) -> Column:
    """Transforms, in order, on present values; then the default where nothing is left."""
    for transform in spec.transforms:
        try:
            values = [None if v is None else (transform(v) or None) for v in values]
        except ValueError:
            values = _transform_each(spec, transform, values, batch)
    if spec.default is not None:
        values = [spec.default if v is None else v for v in values]
    return values


def _transform_each(spec: FieldSpec, transform: Callable[[str], str | None], values: Column,
                    batch: MappedBatch) -> Column:
    """The slow path, taken only when some value fails: record which rows and why."""
    out: Column = []
    for index, value in enumerate(values):
        try:
            out.append(None if value is None else (transform(value) or None))
        except ValueError as exc:
            out.append(None)
            batch.problems.setdefault(index, Code.INVALID_VALUE.problem(
                spec.name, field_name=spec.name, reason=exc))
    return out
