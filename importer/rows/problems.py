"""Row problems: why a row was not sent, or not created, as data rather than exceptions.

Each code is a stable, public kebab-case name: it appears in the results file's ``error_code``
column, so an ops person can filter on it in Excel. Like frictionless-py's error classes, one
definition carries every fact about a code: the status a row with it ends in, a short label,
what it means, what to do, and the template its messages are made from. The README's
troubleshooting table is checked against these definitions (``tests/test_problem_codes.py``).
"""

import string
from dataclasses import dataclass
from enum import StrEnum

from importer.rows.status import Status


class Code(StrEnum):
    """Every row error code the importer writes, each with its facts."""

    status: Status
    label: str
    description: str
    action: str
    template: str

    def __new__(cls, value: str, status: Status, label: str, description: str, action: str,
                template: str) -> "Code":
        member = str.__new__(cls, value)
        member._value_ = value
        member.status = status
        member.label = label
        member.description = description
        member.action = action
        member.template = template
        return member

    MISSING_IDENTITY = (
        "missing-identity", Status.INVALID, "No identity",
        "none of `required_any` (email, first name, last name) has a value",
        "fill one in, or fix the mapping's columns",
        "no value for any of {fields}; the API needs at least one of them")
    INVALID_EMAIL = (
        "invalid-email", Status.INVALID, "Invalid email",
        "the email is not an address (`bob@`, `a@x.com; b@y.com`)",
        "correct it in the file",
        "email {email!r} is not an email address")
    RAGGED_ROW = (
        "ragged-row", Status.INVALID, "Ragged row",
        "the row has more cells than there are headers (an unquoted delimiter?)",
        "quote the value or remove the stray delimiter",
        "row {row_number} has {cells} cells but there are {headers} headers, so its values "
        "cannot be matched to columns (an unquoted delimiter inside a value?); fix the row in "
        "the file")
    NUMBER_TOO_LONG = (
        "number-too-long", Status.INVALID, "Number too long",
        "a number with more than 15 digits, which the spreadsheet already rounded",
        "format the column as Text and re-enter the values",
        "cell {cell} holds the number {number}: more than {digits} digits, which a spreadsheet "
        "cannot store exactly, so it is not sent rounded; format that column as Text and enter "
        "the values again")
    CELL_ERROR = (
        "cell-error", Status.INVALID, "Formula error",
        "an XLSX, XLS or ODS cell shows a formula error (`#N/A`, `#DIV/0!`, `Err:502`)",
        "fix the formula or clear the cell",
        "cell {cell} shows {error}, a formula error; fix the formula or clear the cell")
    NOT_A_CONTACT = (
        "not-a-contact", Status.INVALID, "Not a contact",
        "the row is a repeated header, a section title, a total/count line or a footer (see "
        "[Reading exports](#reading-exports))",
        "nothing; if it is a real contact, fill in a second cell or move it above the empty row",
        "row {row_number} {looks_like}, not a contact, so it was not sent")
    NOT_A_DATE = (
        "not-a-date", Status.INVALID, "Not a date",
        "an XLSX or XLS cell formatted as a date holds a serial no calendar shows: 0 or less "
        "(Excel shows 1900-01-00) or past 9999-12-31 (Excel shows #####)",
        "enter the date, or clear the cell",
        "cell {cell} is formatted as a date but holds {serial}, which is no calendar date "
        "(Excel shows 0 as 1900-01-00 and dates past 9999-12-31 as #####); enter the date or "
        "clear the cell")
    INVISIBLE_CHARACTER = (
        "invisible-character", Status.INVALID, "Invisible character",
        "an email, external_id or website_url holds a character no one can see (zero-width "
        "space or joiner, soft hyphen, BOM, bidi mark), often pasted from a web page",
        "retype the value in the file (the message says where the character is)",
        "{field_name} {value!r} holds an invisible character ({character}) after {before!r}; "
        "it would be stored and never match the value people type, so the row was not sent: "
        "retype the value in the file")
    CONTROL_CHARACTER = (
        "control-character", Status.INVALID, "Control character",
        "a value holds a control character no spreadsheet shows (U+0001 to U+001F other than "
        "tab and line breaks, U+007F to U+009F): the export lost characters, usually text its "
        "encoding cannot hold (Cyrillic saved as Windows-1252)",
        "export the file again as UTF-8 (or fix the value in the file)",
        "{field_name} {value!r} holds the control character {character}, which no spreadsheet "
        "shows: the export lost characters (text its encoding cannot hold?), so the row was not "
        "sent; export the file again as UTF-8")
    NUMBER_MANGLED = (
        "number-mangled", Status.INVALID, "Number mangled",
        "a phone or id shows scientific notation (`4.47701E+11`): a spreadsheet rounded it "
        "before the export",
        "format the column as Text in the original file and export again",
        "{field_name} {value!r} is a number in scientific notation: a spreadsheet already "
        "rounded it, so its last digits are lost; format the column as Text in the original "
        "file (or open the CSV with the column set to Text) and export again")
    INVALID_VALUE = (
        "invalid-value", Status.INVALID, "Invalid value",
        "a transform could not read the value (a date in another format, a value missing from "
        "a `map`)",
        "fix the value or the mapping's transform",
        "{field_name}: {reason}")
    DUPLICATE_IN_FILE = (
        "duplicate-in-file", Status.DUPLICATE, "Duplicate in file",
        "an earlier row of the file has the same email, external_id or website_url",
        "nothing, or merge the two rows",
        "same {key} as row {first}")
    ALREADY_EXISTS = (
        "already-exists", Status.DUPLICATE, "Already exists",
        "the API answered 409: an active record with that key exists",
        "nothing",
        "{reason}")
    CREATED_BY_EARLIER_ATTEMPT = (
        "created-by-earlier-attempt", Status.DUPLICATE, "Created by an earlier attempt",
        "409 after an attempt whose answer was lost: almost certainly our own record",
        "check it once",
        "already exists: an earlier attempt probably created it (its answer was lost); "
        "check it once")
    CREATED_BY_EARLIER_RUN = (
        "created-by-earlier-run", Status.DUPLICATE, "Created by an earlier run",
        "an earlier run into these results created this row (the journal knows it; not sent, "
        "key or not)",
        "nothing",
        "created by an earlier run of this import (id {record}); not sent again")
    IMPORTED_EARLIER = (
        "imported-earlier", Status.DUPLICATE, "Imported earlier",
        "the ledger holds this row: an earlier run created it (or found it existing, 409); "
        "`id` is the record, `error` says when and from which file and row. Not sent",
        "nothing; after deleting the record in the CRM see "
        "[the ledger](#the-import-ledger-what-earlier-runs-imported)",
        "{where}; not sent again")
    CHANGED_SINCE_IMPORT = (
        "changed-since-import", Status.DUPLICATE, "Changed since import",
        "the ledger holds this row's key, but the fields differ from what was sent then; "
        "`error` names the changed fields. Not sent (the API cannot update a record)",
        "update the record in the CRM by hand (its `id` is given)",
        "{where}; changed since: {fields}; not sent (the API cannot update a record): update "
        "it in the CRM")
    SERVER_REJECTED = (
        "server-rejected", Status.REJECTED, "Rejected by the API",
        "the API answered 400 (or another 4xx); its message is in `error`",
        "fix the value or the mapping's field names",
        "{reason}")
    SERVER_ERROR = (
        "server-error", Status.FAILED, "Server error",
        "still refused (408, 503, a 409 that is not a duplicate) after all retries",
        "rerun with `--resume` later",
        "{reason}")
    RATE_LIMITED = (
        "rate-limited", Status.FAILED, "Rate limited",
        "still 429 after all retries",
        "lower `--rate-limit` or `--concurrency`, then `--resume`",
        "{reason}")
    NETWORK_ERROR = (
        "network-error", Status.FAILED, "Network error",
        "no connection, or TLS failed",
        "check the network and `--api-url`, then `--resume`",
        "{reason}")
    OUTCOME_UNKNOWN = (
        "outcome-unknown", Status.FAILED, "Outcome unknown",
        "the request may have created the record but its answer was lost",
        "check the CRM; `--resume` re-sends it only if it has an email/external_id/website_url, "
        "or with `--retry-unknown`",
        "outcome unknown: {reason}")
    AUTH_FAILED = (
        "auth-failed", Status.FAILED, "Token refused",
        "401/403: the token was refused; the run stopped",
        "fix `ROUTERA_API_TOKEN`, then `--resume`",
        "{reason}")
    WRONG_ENDPOINT = (
        "wrong-endpoint", Status.FAILED, "Wrong endpoint",
        "404 or 405: the URL is not the contacts API; the run stopped (after a redirect the "
        "row is `outcome-unknown`)",
        "fix `--api-url` (or the mapping's `object`), then `--resume`",
        "{reason}")
    NOT_SENT = (
        "not-sent", Status.SKIPPED, "Not sent",
        "the run stopped before sending this row",
        "`--resume`",
        "not sent: {reason}")

    def message(self, **params: object) -> str:
        """This code's message with the row's particulars filled into its template."""
        return self.template.format(**params)

    def params(self) -> frozenset[str]:
        """The names its template expects."""
        return frozenset(name for _, name, _, _ in string.Formatter().parse(self.template)
                         if name)

    def problem(self, field: str | None = None, earlier: int = 0,
                **params: object) -> "RowProblem":
        """A row problem of this kind; ``params`` fill the message template."""
        return RowProblem(self, self.message(**params), field, earlier)


_BY_TEXT: dict[str, Code] = {code.value: code for code in Code}


def code_of(text: str) -> Code | str:
    """A code read back from a file; one from a newer version stays as text."""
    return _BY_TEXT.get(text, text)


@dataclass(frozen=True, slots=True)
class RowProblem:
    """One reason a row cannot be sent as it is; ``field`` names the API field when there is one,
    ``earlier`` the row a duplicate repeats."""

    code: Code
    message: str
    field: str | None = None
    earlier: int = 0
