"""Row problems: why a row was not sent, or not created, as data rather than exceptions.

Each code is a stable, public kebab-case name: it appears in the results file's ``error_code``
column and the README explains each one, so an ops person can filter on it in Excel.
"""

from dataclasses import dataclass
from enum import StrEnum


class Code(StrEnum):
    """Every row error code the importer writes; the README's troubleshooting table lists them."""

    MISSING_IDENTITY = "missing-identity"
    INVALID_EMAIL = "invalid-email"
    RAGGED_ROW = "ragged-row"
    NUMBER_TOO_LONG = "number-too-long"
    CELL_ERROR = "cell-error"
    INVALID_VALUE = "invalid-value"
    DUPLICATE_IN_FILE = "duplicate-in-file"
    ALREADY_EXISTS = "already-exists"
    CREATED_BY_EARLIER_ATTEMPT = "created-by-earlier-attempt"
    CREATED_BY_EARLIER_RUN = "created-by-earlier-run"
    SERVER_REJECTED = "server-rejected"
    SERVER_ERROR = "server-error"
    RATE_LIMITED = "rate-limited"
    NETWORK_ERROR = "network-error"
    OUTCOME_UNKNOWN = "outcome-unknown"
    AUTH_FAILED = "auth-failed"
    WRONG_ENDPOINT = "wrong-endpoint"
    NOT_SENT = "not-sent"


def code_of(text: str) -> Code | str:
    """A code read back from a file; one from a newer version stays as text."""
    try:
        return Code(text)
    except ValueError:
        return text


@dataclass(frozen=True, slots=True)
class RowProblem:
    """One reason a row cannot be sent as it is; ``field`` names the API field when there is one,
    ``earlier`` the row a duplicate repeats."""

    code: Code
    message: str
    field: str | None = None
    earlier: int = 0
