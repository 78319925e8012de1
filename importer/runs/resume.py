"""What an earlier run into the same results file means for this one.

Every run reads the journal left by the previous run into the same results file. When the
input, mapping and endpoint are unchanged, row numbers still name the same records, and:

- with ``--resume``, final outcomes (created, duplicate, invalid, rejected) are kept, not sent;
- in any run, a row without a key the API deduplicates on (email, external_id, website_url) is
  never sent twice: if an earlier run created it, it is reported as a duplicate of that record;
  if an earlier run sent it and recorded no answer, it stays ``outcome-unknown`` unless
  ``--retry-unknown`` is given;
- rows with such a key are sent again when not kept: a repeat is answered with 409.
"""

from dataclasses import dataclass, field
from pathlib import Path

from importer.errors import ResumeError
from importer.rows.outcomes import FINAL, Outcome, Status
from importer.rows.problems import Code
from importer.runs.journal import Prior

FINGERPRINT_NAMES = {
    "input": "the input file",
    "mapping": "the mapping file",
    "endpoint": "the API endpoint",
    "sheet": "the sheet",
    "header_row": "the header row",
    "encoding": "the encoding",
    "delimiter": "the delimiter",
}


@dataclass
class Plan:
    """Per-row decisions drawn from an earlier run's journal (empty for a fresh run)."""

    outcomes: dict[int, Outcome] = field(default_factory=dict)
    unknown_rows: set[int] = field(default_factory=set)
    keep_final: bool = False
    retry_unknown: bool = False
    discarded: bool = False
    """An earlier journal exists but describes other rows: keep it aside, do not overwrite it."""
    resend_rejected: bool = False
    """The earlier run was stopped by the breaker: its rejections came from a mapping (or an
    account) that is being fixed, so rejected rows are sent again instead of kept."""

    def carried(self) -> list[Outcome]:
        """Earlier outcomes the new journal must still know about."""
        return [self.outcomes[row] for row in sorted(self.outcomes)]

    def unknown(self) -> set[int]:
        return set(self.unknown_rows)

    def maybe_sent(self, row: int) -> bool:
        """An earlier attempt may have created this row (sent, answer never recorded)."""
        earlier = self.outcomes.get(row)
        return row in self.unknown_rows or (
            earlier is not None and earlier.code == Code.OUTCOME_UNKNOWN)

    def settled(self, row: int, keyed: bool) -> Outcome | None:
        """The row's outcome without sending it, or None when it must be sent."""
        earlier = self.outcomes.get(row)
        if self.keep_final and earlier is not None and earlier.status in FINAL and not (
                self.resend_rejected and earlier.status in RETHOUGHT):
            return earlier
        if keyed:
            return None
        if earlier is not None and _created(earlier):
            return Outcome.problem(row, Code.CREATED_BY_EARLIER_RUN, record_id=earlier.id,
                                   record=earlier.id)
        if self.maybe_sent(row) and not self.retry_unknown:
            return Outcome.problem(row, Code.OUTCOME_UNKNOWN, reason=(
                "an earlier run sent this row but recorded no answer; check the CRM, then use "
                "--retry-unknown to send it again"))
        return None


RETHOUGHT = frozenset({Status.REJECTED, Status.INVALID})
"""Outcomes that depend on the mapping, re-decided after a breaker stop."""


def _created(outcome: Outcome) -> bool:
    return outcome.status == Status.CREATED or outcome.code == Code.CREATED_BY_EARLIER_RUN


def plan_for(prior: Prior | None, fingerprint: dict[str, object], journal: Path, *,
             resume: bool, force: bool, retry_unknown: bool) -> tuple[Plan, str]:
    """The plan for this run, and a note for the summary (empty when nothing to say).

    A changed mapping does not change which record a row number names, so a rerun still
    protects the keyless rows an earlier run created; only ``--resume`` refuses it, because
    the earlier outcomes (invalid, rejected) may no longer hold. After a run the breaker
    stopped, that change is the expected fix: ``--resume`` accepts it without ``--force`` and
    sends the rejected rows again (created rows stay created).
    """
    if prior is None:
        note = "nothing to resume: no earlier run of these results was found" if resume else ""
        return Plan(retry_unknown=retry_unknown), note
    changed = [FINGERPRINT_NAMES.get(k, k) for k in FINGERPRINT_NAMES
               if prior.fingerprint.get(k) != fingerprint.get(k)]
    after_breaker = resume and prior.breaker
    blocking = [name for name in changed
                if not (after_breaker and name == FINGERPRINT_NAMES["mapping"])]
    if blocking and resume and not force:
        raise ResumeError(
            f"cannot resume: {', '.join(blocking)} changed since {journal.name} was written; "
            "run without --resume to import it as a new run (rows the earlier run created are "
            "still recognised while the input is the same), or pass --force to keep the earlier "
            "outcomes anyway")
    rows_moved = [name for name in changed if name != FINGERPRINT_NAMES["mapping"]]
    if rows_moved and not resume:
        return Plan(retry_unknown=retry_unknown, discarded=True), (
            f"the earlier results were for other rows ({', '.join(rows_moved)} changed); "
            f"starting fresh (the earlier journal is kept as {journal.name}.previous)")
    plan = Plan(dict(prior.outcomes), set(prior.unknown), keep_final=resume,
                retry_unknown=retry_unknown, resend_rejected=after_breaker)
    done = sum(1 for o in prior.outcomes.values() if o.status in FINAL)
    if after_breaker:
        again = sum(1 for o in prior.outcomes.values() if o.status in RETHOUGHT)
        return plan, (f"resumed after the breaker stopped the earlier run: "
                      f"{done - again:,} rows kept, the {again:,} rejected rows are sent again"
                      + (" with the changed mapping" if FINGERPRINT_NAMES["mapping"] in changed
                         else ""))
    if resume:
        return plan, f"resumed: {done:,} rows kept from the earlier run"
    return plan, ""
