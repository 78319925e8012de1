"""What happened to each row: the records the results file is made of."""

from dataclasses import dataclass

from importer.rows.problems import Code, RowProblem, code_of
from importer.rows.status import Status

__all__ = ["FINAL", "IDENTITY_FIELDS", "Outcome", "Status"]

IDENTITY_FIELDS = ("external_id", "email", "first_name", "last_name")
ERRORS_COLUMNS = ("row", "status", "error_code", "error")
"""The columns an errors file puts before a row's original cells (skipped when binding)."""
NO_IDENTITY = ("", "", "", "")

FINAL = frozenset({Status.CREATED, Status.DUPLICATE, Status.INVALID, Status.REJECTED})
"""Outcomes that a resumed run keeps instead of sending the row again."""


@dataclass(slots=True)
class Outcome:
    """One line of the results file. Build one with a named constructor: ``created``,
    ``ready``, ``problem`` (its status comes from the code) or ``from_problem``."""

    row: int
    status: Status
    id: str = ""
    http_status: int | None = None
    code: Code | str = ""
    error: str = ""
    identity: tuple[str, ...] = NO_IDENTITY

    @classmethod
    def created(cls, row: int, record_id: str, http_status: int | None) -> "Outcome":
        """The API created the record and answered with its id."""
        return cls(row, Status.CREATED, record_id, http_status)

    @classmethod
    def ready(cls, row: int, identity: tuple[str, ...]) -> "Outcome":
        """A dry run's valid row: it would be sent."""
        return cls(row, Status.READY, identity=identity)

    @classmethod
    def problem(cls, row: int, code: Code, *, record_id: str = "",
                http_status: int | None = None, **params: object) -> "Outcome":
        """A row that was not created; the code decides its status, ``params`` its message."""
        return cls(row, code.status, record_id, http_status, code, code.message(**params))

    @classmethod
    def from_problem(cls, row: int, problem: RowProblem, identity: tuple[str, ...]) -> "Outcome":
        """Invalid (or in-file duplicate) rows: decided locally, never sent."""
        return cls(row, problem.code.status, code=problem.code, error=problem.message,
                   identity=identity)

    @classmethod
    def from_record(cls, record: dict[str, object]) -> "Outcome":
        """From a journal line or a results file row (the same names, as text or numbers)."""
        def text(name: str) -> str:
            value = record.get(name)
            return "" if value is None else str(value)

        http = text("http_status")
        return cls(int(text("row")), Status(text("status")), text("id"),
                   int(http) if http else None, code_of(text("error_code")), text("error"))
