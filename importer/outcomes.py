"""What happened to each row: the records the results file is made of."""

from dataclasses import dataclass
from enum import StrEnum

from importer.problems import Code, RowProblem

IDENTITY_FIELDS = ("external_id", "email", "first_name", "last_name")


class Status(StrEnum):
    """A row's final state; a public contract (results files, summaries, exit codes)."""

    CREATED = "created"
    DUPLICATE = "duplicate"
    INVALID = "invalid"
    REJECTED = "rejected"
    FAILED = "failed"
    SKIPPED = "skipped"
    READY = "ready"


FINAL = frozenset({Status.CREATED, Status.DUPLICATE, Status.INVALID, Status.REJECTED})
"""Outcomes that a resumed run keeps instead of sending the row again."""


@dataclass(slots=True)
class Outcome:
    """One line of the results file."""

    row: int
    status: Status
    id: str = ""
    http_status: int | None = None
    code: Code | str = ""
    error: str = ""
    identity: tuple[str, ...] = ("", "", "", "")

    @classmethod
    def from_problem(cls, row: int, problem: RowProblem, identity: tuple[str, ...]) -> "Outcome":
        """Invalid (or in-file duplicate) rows: decided locally, never sent."""
        status = Status.DUPLICATE if problem.code == Code.DUPLICATE_IN_FILE else Status.INVALID
        return cls(row, status, code=problem.code, error=problem.message, identity=identity)
