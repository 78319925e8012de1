"""What happened to each row: the records the results file is made of."""

from dataclasses import dataclass
from enum import StrEnum

from importer.rows.problems import Code, RowProblem, code_of

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
    def from_record(cls, record: dict[str, object]) -> "Outcome":
        """From a journal line or a results file row (the same names, as text or numbers)."""
        def text(name: str) -> str:
            value = record.get(name)
            return "" if value is None else str(value)

        http = text("http_status")
        return cls(int(text("row")), Status(text("status")), text("id"),
                   int(http) if http else None, code_of(text("error_code")), text("error"))

    @classmethod
    def from_problem(cls, row: int, problem: RowProblem, identity: tuple[str, ...]) -> "Outcome":
        """Invalid (or in-file duplicate) rows: decided locally, never sent."""
        status = Status.DUPLICATE if problem.code == Code.DUPLICATE_IN_FILE else Status.INVALID
        return cls(row, status, code=problem.code, error=problem.message, identity=identity)
