"""Row checks that decide, before anything is sent, which rows cannot or must not be sent.

Checks record ``RowProblem``s on the batch; the first problem of a row is the one reported.
Duplicates within the file are found here, in row order, rather than left to the API: that way
the earlier row is always the one sent, whatever order concurrent requests finish in.
"""

import re
from collections.abc import Iterable

from importer.binding import MappedBatch
from importer.problems import Code, RowProblem

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
        self._seen: dict[str, dict[str, int]] = {name: {} for name in DEDUPLICATED_KEYS}

    def check(self, batch: MappedBatch) -> None:
        self._check_identity(batch)
        self._check_email(batch)
        self._check_duplicates(batch)

    def _check_identity(self, batch: MappedBatch) -> None:
        present = [batch.values[name] for name in self.required_any if name in batch.values]
        for index in range(len(batch.rows)):
            if not any(column[index] for column in present):
                batch.problems.setdefault(index, RowProblem(
                    Code.MISSING_IDENTITY,
                    f"no value for any of {self._described(self.required_any)}; the API needs "
                    "at least one of them",
                ))

    def _check_email(self, batch: MappedBatch) -> None:
        emails = batch.values.get("email")
        if emails is None:
            return
        for index, email in enumerate(emails):
            if email is not None and not (len(email) <= 254 and EMAIL.match(email)):
                batch.problems.setdefault(index, RowProblem(
                    Code.INVALID_EMAIL, f"email {email!r} is not an email address", "email"))

    def _check_duplicates(self, batch: MappedBatch) -> None:
        keys = [(name, batch.values[name]) for name in DEDUPLICATED_KEYS if name in batch.values]
        for index, row in enumerate(batch.rows):
            if index in batch.problems:
                continue
            problem = self._repeat(keys, index)
            if problem:
                batch.problems[index] = problem
                continue
            for name, column in keys:
                if column[index]:
                    self._seen[name][dedupe_key(name, column[index])] = row

    def _repeat(self, keys: list[tuple[str, list[str | None]]], index: int) -> RowProblem | None:
        for name, column in keys:
            value = column[index]
            earlier = value and self._seen[name].get(dedupe_key(name, value))
            if earlier:
                return RowProblem(Code.DUPLICATE_IN_FILE, f"same {name} as row {earlier}", name)
        return None

    def _described(self, names: tuple[str, ...]) -> str:
        parts = []
        for name in names:
            column = self.columns.get(name)
            parts.append(f"{name} (column {column!r})" if column else name)
        return ", ".join(parts)
