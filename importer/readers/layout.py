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
NUMBER = re.compile(r"[-+(]?[$€£]?\s*[\d.,' ]*\d[\d.,' ]*\)?%?\s*")
SHOWN_CHARS = 60


class Layout:
    """Marks the rows of each batch that are not contacts; holds back two batches so that a
    title and its header, or a footer, can span the boundary between batches."""

    def __init__(self, headers: list[str], stats: ReadStats) -> None:
        self.keys = [h.casefold() for h in headers]
        self.first = next((i for i, k in enumerate(self.keys) if k), 0)
        self.named = sum(1 for k in self.keys if k)
        self.stats = stats

    def mark(self, batches: Iterator[SourceBatch]) -> Iterator[SourceBatch]:
        held: list[SourceBatch] = []
        for batch in batches:
            self._mark_rows(batch)
            held.append(batch)
            self._mark_titles(held)
            if len(held) > 2:
                yield held.pop(0)
        self._mark_footer(held)
        yield from held

    def _mark_rows(self, batch: SourceBatch) -> None:
        first, key = self.first, self.keys[self.first]
        for index, cells in enumerate(batch.cells):
            if index in batch.problems:
                continue
            if key and cells[first].strip().casefold() == key and self._repeats_header(cells):
                self._flag(batch, index, "repeats the header row (a second table below the "
                           "first?)")
            elif _looks_like_total(cells):
                self._flag(batch, index, f"reads {_shown(cells)}: a total or count line")

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

    def _mark_titles(self, held: list[SourceBatch]) -> None:
        """A one-cell row right above a repeated header (looked up across held batches)."""
        rows = [(b, i) for b in held for i in range(len(b.rows))]
        for position in range(1, len(rows)):
            batch, index = rows[position]
            problem = batch.problems.get(index)
            if problem is None or "repeats the header" not in problem.message:
                continue
            above, above_index = rows[position - 1]
            if above_index not in above.problems and _filled(above.cells[above_index]) == 1:
                self._flag(above, above_index, f"holds only {_shown(above.cells[above_index])} "
                           "above a repeated header row: a section title")

    def _mark_footer(self, held: list[SourceBatch]) -> None:
        if self.named < 2:
            return
        rows = [(b, i) for b in held for i in range(len(b.rows))]
        start = len(rows)
        while start > 0 and len(rows) - start < MAX_FOOTER_ROWS:
            batch, index = rows[start - 1]
            if _filled(batch.cells[index]) != 1:
                break
            start -= 1
        if start == len(rows) or start == 0:
            return
        (before, before_index), (first, first_index) = rows[start - 1], rows[start]
        set_off = first.rows[first_index] - before.rows[before_index] > 1
        if not set_off or _filled(before.cells[before_index]) < 2:
            return
        for batch, index in rows[start:]:
            if index not in batch.problems:
                self._flag(batch, index, f"holds only {_shown(batch.cells[index])} in a block "
                           "after the data, set off by an empty row: a footer")

    def _flag(self, batch: SourceBatch, index: int, what: str) -> None:
        self.stats.not_contacts += 1
        batch.problems[index] = Code.NOT_A_CONTACT.problem(row_number=batch.rows[index],
                                                           looks_like=what)


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
