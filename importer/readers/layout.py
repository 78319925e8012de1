"""Rows that a person sees are not contacts: repeated headers, section titles, totals, footers.

Reports and stacked tables put such lines between or after the data rows; sent as contacts they
become records named "Total: 6" or "Copyright (c) 2000-2024 salesforce.com". The rules, in the
README's words:

- a row whose filled cells all equal the headers of their columns repeats the header row;
- a row with a single filled cell directly above such a repeated header is a section title;
- a row whose first filled cell reads Total, Subtotal, Grand total, Count or Sum (alone, or
  followed by ``:``, ``(`` or a number) and whose other filled cells are numbers is a total line;
- after the last row with two or more filled cells, set off by an empty row, a block of at most
  ``MAX_FOOTER_ROWS`` rows with one filled cell each, up to the end, is a footer.

A lone row with one filled cell anywhere else ("Cher", with only a first name) is a contact.
Such rows are never sent: they become ``invalid`` rows with the ``not-a-contact`` code.
"""

import re
from collections.abc import Iterator

from importer.readers.table import ReadStats, SourceBatch, clean_header
from importer.rows.problems import Code

MAX_FOOTER_ROWS = 20
TOTAL = re.compile(r"\s*(?:grand\s+|sub-?\s*)?(?:totals?|count|sum|summe|gesamt|insgesamt)"
                   r"\s*(?::|\(|\d|$)", re.IGNORECASE)
CURRENCY = r"(?:[$€£¥₹]|[A-Z]{3}|kr|zł|Kč|Ft|\u0440\u0443\u0431\.?)?"
NUMBER = re.compile(rf"\s*[-+(]?{CURRENCY}\s*-?[\d.,'\u00a0\u202f ]*\d[\d.,'\u00a0\u202f ]*"
                    rf"\)?%?\s*{CURRENCY}\s*")
"""A number as reports show amounts: ``1.334,51 €``, ``$1,234.50``, ``(12)``, ``15%``, ``EUR 9``."""
SHOWN_CHARS = 60
TOTAL_STARTS = frozenset("TtSsCcGgIi")
"""First letters of the words a total line starts with (Total, Sum, Count, Grand, Gesamt...)."""


class Layout:
    """Marks the rows of each batch that are not contacts.

    Rows still stream: only a batch's trailing one-cell rows (a possible title or footer) are
    carried over to the next batch, so a title and its header, or a footer, may span the
    boundary between batches; every other row is passed on as soon as its batch is read.
    """

    def __init__(self, headers: list[str], stats: ReadStats) -> None:
        self.keys = [h.casefold() for h in headers]
        self.first = next((i for i, k in enumerate(self.keys) if k), 0)
        self.named = sum(1 for k in self.keys if k)
        self.stats = stats
        self.before: tuple[int, int] | None = None

    def mark(self, batches: Iterator[SourceBatch]) -> Iterator[SourceBatch]:
        """The batches, marked; the carried tail is checked for a footer at the end."""
        carry: SourceBatch | None = None
        for batch in batches:
            self._mark_rows(batch)
            if carry is not None:
                batch = join(carry, batch)
            self._mark_titles(batch)
            head, carry = _split(batch, self._tail_start(batch))
            if head.rows:
                self.before = (head.rows[-1], _filled(head.cells[-1]))
                yield head
        if carry is not None and carry.rows:
            self._mark_footer(carry)
            yield carry

    def _tail_start(self, batch: SourceBatch) -> int:
        """Where the trailing one-cell rows begin; a run too long for a footer keeps only its
        last row (it may still be a title)."""
        end = len(batch.rows)
        if self.named < 2:
            return end
        start = end
        while start > 0 and _filled(batch.cells[start - 1]) == 1:
            start -= 1
            if end - start > MAX_FOOTER_ROWS:
                return end - 1
        return start

    def _mark_rows(self, batch: SourceBatch) -> None:
        """Whole columns are filtered first (comprehensions run in C loops); only rows whose
        first cells could be a header or a total are looked at one by one."""
        first, key = self.first, self.keys[self.first]
        cells = batch.cells
        if key:
            for index in [i for i, row in enumerate(cells)
                          if row[first].strip().casefold() == key]:
                if index not in batch.problems and self._repeats_header(cells[index]):
                    self._flag(batch, index, "repeats the header row (a second table below "
                               "the first?)")
        starts = [row[0] for row in cells]
        for index in [i for i, start in enumerate(starts)
                      if start[:1] in TOTAL_STARTS or not start or start[:1].isspace()]:
            if index not in batch.problems and _looks_like_total(cells[index]):
                self._flag(batch, index, f"reads {_shown(cells[index])}: a total or count line")

    def _repeats_header(self, cells: list[str]) -> bool:
        matched = 0
        for cell, key in zip(cells, self.keys, strict=False):
            text = clean_header(cell).casefold()
            if not text:
                continue
            if text != key:
                return False
            matched += 1
        return matched >= min(2, self.named)

    def _mark_titles(self, batch: SourceBatch) -> None:
        """A one-cell row right above a repeated header."""
        for index in range(1, len(batch.rows)):
            problem = batch.problems.get(index)
            if problem is None or "repeats the header" not in problem.message:
                continue
            above = index - 1
            if above not in batch.problems and _filled(batch.cells[above]) == 1:
                self._flag(batch, above, f"holds only {_shown(batch.cells[above])} above a "
                           "repeated header row: a section title")

    def _mark_footer(self, tail: SourceBatch) -> None:
        """The carried tail is a footer when it is set off from a row of two or more cells."""
        if self.named < 2 or self.before is None or len(tail.rows) > MAX_FOOTER_ROWS:
            return
        row_before, filled_before = self.before
        if filled_before < 2 or tail.rows[0] - row_before < 2:
            return
        for index, cells in enumerate(tail.cells):
            if index not in tail.problems:
                self._flag(tail, index, f"holds only {_shown(cells)} in a block after the "
                           "data, set off by an empty row: a footer")

    def _flag(self, batch: SourceBatch, index: int, what: str) -> None:
        self.stats.not_contacts += 1
        batch.problems[index] = Code.NOT_A_CONTACT.problem(row_number=batch.rows[index],
                                                           looks_like=what)


def _split(batch: SourceBatch, at: int) -> tuple[SourceBatch, SourceBatch | None]:
    """The rows before ``at``, and the rest (None when there is no rest)."""
    if at >= len(batch.rows):
        return batch, None
    head = SourceBatch(batch.rows[:at], batch.cells[:at])
    tail = SourceBatch(batch.rows[at:], batch.cells[at:])
    for index, problem in batch.problems.items():
        if index < at:
            head.problems[index] = problem
        else:
            tail.problems[index - at] = problem
    for (index, column), problem in batch.cell_problems.items():
        if index < at:
            head.cell_problems[(index, column)] = problem
        else:
            tail.cell_problems[(index - at, column)] = problem
    return head, tail


def join(first: SourceBatch, second: SourceBatch) -> SourceBatch:
    """One batch of the rows of both, in order (also for callers that want a whole table)."""
    shift = len(first.rows)
    joined = SourceBatch(first.rows + second.rows, first.cells + second.cells,
                         dict(first.problems), dict(first.cell_problems))
    joined.problems.update({index + shift: p for index, p in second.problems.items()})
    joined.cell_problems.update({(index + shift, column): p
                                 for (index, column), p in second.cell_problems.items()})
    return joined


def _looks_like_total(cells: list[str]) -> bool:
    """Cheap first: almost every row fails the pattern on its first cell."""
    first = cells[0] if cells[0] and not cells[0].isspace() else _first_filled(cells)
    if not TOTAL.match(first):
        return False
    rest = [c for c in cells if c and not c.isspace()][1:]
    return all(NUMBER.fullmatch(c) for c in rest) and "@" not in first


def _first_filled(cells: list[str]) -> str:
    for cell in cells:
        if cell and not cell.isspace():
            return cell
    return ""


def _filled(cells: list[str]) -> int:
    return sum(1 for cell in cells if cell and not cell.isspace())


def _shown(cells: list[str]) -> str:
    text = _first_filled(cells).strip()
    return repr(text if len(text) <= SHOWN_CHARS else text[:SHOWN_CHARS] + "...")
