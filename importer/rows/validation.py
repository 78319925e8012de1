"""Row checks that decide, before anything is sent, which rows cannot or must not be sent.

Checks record ``RowProblem``s on the batch; the first problem of a row is the one reported.
Duplicates within the file are found here, in row order, rather than left to the API: that way
the earlier row is always the one sent, whatever order concurrent requests finish in. Only rows
that will be sent register their keys, so a repeat of an invalid row is still sent.
"""

import re
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from importer.mapping.binding import MappedBatch
from importer.rows.hidden import check_hidden_values
from importer.rows.keyindex import KeyIndex, fingerprints
from importer.rows.problems import Code, RowProblem

DEDUPLICATED_KEYS = ("email", "external_id", "website_url")
EMAIL = re.compile(
    r"^(?!\.)(?!.*\.\.)[^@\s,;:<>()\[\]\"\\]+(?<!\.)"
    r"@(?=.{1,253}$)(?:[^@\s,;:<>()\[\]\"\\.]+\.)+(?!\d+$)[^@\s,;:<>()\[\]\"\\.]{2,}$"
)


def dedupe_key(name: str, value: str) -> str:
    """How the API compares a key: emails ignore case, the other keys are exact."""
    return value.casefold() if name == "email" else value


def has_dedupe_key(fields: dict[str, str]) -> bool:
    """Whether the API would answer 409 to a repeat of this row, making a re-send safe."""
    return any(fields.get(name) for name in DEDUPLICATED_KEYS)


class Validator:
    """Checks batches in row order; remembers keys seen so far to find in-file duplicates."""

    def __init__(self, required_any: Iterable[str], columns: dict[str, str]) -> None:
        self.required_any = tuple(required_any)
        self.columns = columns
        self._seen = {name: KeyIndex() for name in DEDUPLICATED_KEYS}

    def check(self, batch: MappedBatch) -> None:
        self._check_identity(batch)
        check_hidden_values(batch)
        self._check_email(batch)
        self._check_duplicates(batch)

    def _check_identity(self, batch: MappedBatch) -> None:
        present = [batch.values[name] for name in self.required_any if name in batch.values]
        for index, has_one in enumerate(map(any, zip(*present, strict=True))):
            if not has_one:
                batch.problems.setdefault(index, Code.MISSING_IDENTITY.problem(
                    fields=self._described(self.required_any)))

    def _check_email(self, batch: MappedBatch) -> None:
        emails = batch.values.get("email")
        if emails is None:
            return
        for index, email in enumerate(emails):
            if email is not None and not (len(email) <= 254 and EMAIL.match(email)):
                batch.problems.setdefault(index, Code.INVALID_EMAIL.problem("email", email=email))

    def _check_duplicates(self, batch: MappedBatch) -> None:
        """Only rows whose key repeats (earlier in the file or in this batch) are walked one by
        one, in row order, because a repeat never registers its keys; all others are unique and
        are registered at once."""
        rows = np.array(batch.rows, dtype=np.int32)
        eligible = np.ones(len(rows), dtype=bool)
        eligible[list(batch.problems)] = False
        keys = [self._keys(name, batch, eligible) for name in DEDUPLICATED_KEYS
                if name in batch.values]
        suspects = np.zeros(len(rows), dtype=bool)
        for key in keys:
            suspects |= key.suspects
        for index in np.flatnonzero(suspects).tolist():
            problem = _repeat(keys, index, batch.rows[index])
            if problem:
                batch.problems[index] = problem
                eligible[index] = False
        for key in keys:
            fresh = eligible & (key.prints != 0)
            unique_prints, first = np.unique(key.prints[fresh], return_index=True)
            self._seen[key.name].add(unique_prints, rows[fresh][first])

    def _keys(self, name: str, batch: MappedBatch, eligible: np.ndarray) -> "_KeyColumn":
        values = batch.values[name]
        if name == "email":
            text = [dedupe_key(name, v) if v else "" for v in values]
        else:
            text = [v or "" for v in values]
        prints = fingerprints(text)
        earlier = self._seen[name].first_rows(prints)
        candidates = eligible & (prints != 0)
        _, inverse, counts = np.unique(prints[candidates], return_inverse=True,
                                       return_counts=True)
        repeated = np.zeros(len(prints), dtype=bool)
        repeated[np.flatnonzero(candidates)[counts[inverse] > 1]] = True
        suspects = candidates & ((earlier > 0) | repeated)
        return _KeyColumn(name, prints, earlier, suspects, {})

    def _described(self, names: tuple[str, ...]) -> str:
        parts = []
        for name in names:
            column = self.columns.get(name)
            parts.append(f"{name} (column {column!r})" if column else name)
        return ", ".join(parts)


@dataclass
class _KeyColumn:
    """One deduplicated field of a batch: fingerprints, rows seen before, rows to walk."""

    name: str
    prints: np.ndarray
    earlier: np.ndarray
    suspects: np.ndarray
    walked: dict[int, int]


def _repeat(keys: list[_KeyColumn], index: int, row: int) -> RowProblem | None:
    """In row order: the first key of this row seen before makes it a duplicate; otherwise its
    keys are remembered for the rows after it."""
    prints = [(key, int(key.prints[index])) for key in keys if key.prints[index]]
    for key, fingerprint in prints:
        first = int(key.earlier[index]) or key.walked.get(fingerprint)
        if first:
            return Code.DUPLICATE_IN_FILE.problem(key.name, first, key=key.name, first=first)
    for key, fingerprint in prints:
        key.walked[fingerprint] = row
    return None
