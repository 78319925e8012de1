"""The run summary: one structure (``RunSummary.to_dict``) that the terminal, the
``--summary-json`` file and the XLSX results' Summary sheet are all rendered from, so the
three say the same things under the same names."""

import json
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TypedDict

from importer.rows.outcomes import Status
from importer.rows.problems import Code
from importer.runs.exits import ExitCode


class SummaryFacts(TypedDict):
    """The one structure every rendering of a summary is made from (the JSON's keys)."""

    input: str
    results: str
    read_as: str
    mapping: str
    sent_to: str
    dry_run: bool
    started: str
    finished: str
    duration_seconds: float
    rows: int
    counts: dict[str, int]
    empty_rows: int
    rows_above_header: int
    notes: list[str]
    previews: list[dict[str, object]]
    stop_reason: str
    rejected_alert: str
    exit_code: int
    errors_file: str | None
    errors_rows: int
    error_codes: dict[str, int]


@dataclass
class RunSummary:
    """What happened, for the CLI to render and a scheduler to act on."""

    input: Path
    results: Path
    counts: dict[Status, int]
    started: datetime
    finished: datetime
    source: str = ""
    empty_rows: int = 0
    rows_above_header: int = 0
    notes: list[str] = field(default_factory=list)
    stop_reason: str = ""
    dry_run: bool = False
    strict: bool = False
    api: str = ""
    previews: list[dict[str, object]] = field(default_factory=list)
    mapping: Path | None = None
    errors: Path | None = None
    """The file of rows to fix and re-import, when there are any."""
    errors_rows: int = 0
    error_codes: dict[str, int] = field(default_factory=dict)
    rejected_alert: str = ""
    """Set when the run completed but every row the API answered (or more than
    ``--max-rejected`` percent of them) was rejected: the exit code is then not 0."""

    @property
    def rows(self) -> int:
        return sum(self.counts.values())

    @property
    def duration(self) -> float:
        return (self.finished - self.started).total_seconds()

    def to_dict(self) -> SummaryFacts:
        """The summary as JSON-ready data: ``--summary-json`` writes it as it is, and the
        other renderings below take every fact from it."""
        return {
            "input": str(self.input), "results": str(self.results), "read_as": self.source,
            "mapping": "" if self.mapping is None else str(self.mapping),
            "sent_to": self.api, "dry_run": self.dry_run,
            "started": self.started.isoformat(timespec="seconds"),
            "finished": self.finished.isoformat(timespec="seconds"),
            "duration_seconds": round(self.duration, 3), "rows": self.rows,
            "counts": {str(status): self.counts.get(status, 0) for status in Status},
            "empty_rows": self.empty_rows, "rows_above_header": self.rows_above_header,
            "notes": self.notes, "previews": self.previews, "stop_reason": self.stop_reason,
            "rejected_alert": self.rejected_alert, "exit_code": int(self.exit_code),
            "errors_file": str(self.errors) if self.errors else None,
            "errors_rows": self.errors_rows,
            "error_codes": dict(sorted(self.error_codes.items())),
        }

    @property
    def exit_code(self) -> ExitCode:
        """0 all rows settled, 1 some failed or skipped or the API rejected (nearly) all it
        answered (or, with --strict, invalid or rejected), 3 the run was stopped (the breaker,
        bad token, signal)."""
        if self.stop_reason:
            return ExitCode.STOPPED
        if self.counts[Status.FAILED] or self.counts[Status.SKIPPED] or self.rejected_alert:
            return ExitCode.ROWS
        if self.strict and (self.counts[Status.INVALID] or self.counts[Status.REJECTED]):
            return ExitCode.ROWS
        return ExitCode.OK


def summary_sheet(summary: RunSummary) -> dict[str, str]:
    """The XLSX Summary sheet: the same names as the JSON, counts one per row, all as text."""
    sheet: dict[str, str] = {}
    facts = summary.to_dict()
    for name, value in facts.items():
        if name == "counts":
            sheet.update({status: str(count) for status, count in facts["counts"].items()})
        elif isinstance(value, list):
            sheet[name] = "; ".join(v if isinstance(v, str) else _json(v) for v in value)
        elif value is None:
            sheet[name] = ""
        else:
            sheet[name] = _json(value) if isinstance(value, bool | dict) else str(value)
    return sheet


def summary_text(summary: RunSummary, prog: str) -> str:
    """The summary a person reads at the end of a run (only the counts that are not zero)."""
    facts = summary.to_dict()
    rows, seconds = facts["rows"], facts["duration_seconds"]
    lines = [f"{prog}: {Path(facts['input']).name} -> {facts['results']}",
             f"  read      {facts['read_as']}",
             f"  sent to   {facts['sent_to']}"]
    lines += [f"  {status:<9} {count:>9,}" for status, count in facts["counts"].items() if count]
    rate = rows / seconds if seconds > 0 else 0.0
    lines.append(f"  rows      {rows:>9,} in {seconds:.1f} s ({rate:,.0f} rows/s)")
    skipped = [f"{count:,} {words}" for count, words in
               ((facts["empty_rows"], "empty rows"),
                (facts["rows_above_header"], "rows above the header")) if count]
    if skipped:
        lines.append(f"  not data  {', '.join(skipped)}")
    if facts["errors_file"]:
        lines.append(f"  to fix    {facts['errors_rows']:>9,} rows in {facts['errors_file']}: "
                     "fix them there and run that file with the same mapping")
    unknown = facts["error_codes"].get(str(Code.OUTCOME_UNKNOWN), 0)
    if unknown and not facts["dry_run"]:
        lines.append(f"  to check  {unknown:>9,} rows may have been created (outcome-unknown; not "
                     "in the errors file): check them in the CRM; --resume re-sends those with an "
                     "email, external_id or website_url, add --retry-unknown to re-send the "
                     "others you found missing")
    lines += [f"  note: {note}" for note in facts["notes"]]
    lines += [f"  preview row {preview['row']}: {_json(preview['body'])}"
              for preview in facts["previews"]]
    if facts["stop_reason"]:
        lines.append(f"  STOPPED: {facts['stop_reason']}; rerun with --resume to continue")
    lines.append(f"  exit      {facts['exit_code']}")
    return "\n".join(lines)


def _json(value: object) -> str:
    return json.dumps(value, ensure_ascii=False)

