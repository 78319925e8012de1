"""What earlier runs into the same results file mean for this one, set up in one place.

``start`` reads the journal (or, with ``--resume --force`` and no journal, the earlier results
file), decides the plan and opens this run's journal. Every run reads what earlier runs into
the same results file established. When the input, mapping and endpoint are unchanged, row
numbers still name the same records, and:

- with ``--resume``, final outcomes (created, duplicate, invalid, rejected) are kept, not sent;
- in any run, a row any earlier run created is reported as a duplicate of that record and
  not sent, whether or not it has a key the API deduplicates on (email, external_id,
  website_url) now: the mapping may have gained the key since, and the record created then
  lacks it, so the API could not recognise a repeat;
- a row without such a key that any earlier run may have created without an answer saying so
  stays ``outcome-unknown`` unless ``--retry-unknown`` is given;
- other rows with such a key are sent again when not kept: a repeat is answered with 409.
"""

from dataclasses import dataclass, field
from pathlib import Path

from importer.errors import ResumeError
from importer.results.files import sync_folder
from importer.results.writer import read_outcomes
from importer.rows.outcomes import FINAL, Outcome
from importer.rows.problems import Code
from importer.rows.status import Status
from importer.runs.journal import Journal, Prior, journal_path, load_prior

SENT = frozenset({Status.CREATED, Status.REJECTED, Status.FAILED, Status.SKIPPED})
"""Statuses only a run that sent rows writes."""

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
    """Per-row decisions drawn from earlier runs (empty for a fresh run)."""

    facts: Prior = field(default_factory=lambda: Prior({}))
    keep_final: bool = False
    retry_unknown: bool = False
    discarded: bool = False
    """An earlier journal exists but describes other rows: keep it aside, do not overwrite it."""
    resend_rejected: bool = False
    """The earlier run was stopped by the breaker: its rejections came from a mapping (or an
    account) that is being fixed, so rejected rows are sent again instead of kept."""

    def maybe_sent(self, row: int) -> bool:
        """An earlier attempt may have created this row (sent, no answer saying so)."""
        return row in self.facts.unknown

    def settled(self, row: int, keyed: bool) -> Outcome | None:
        """The row's outcome without sending it, or None when it must be sent."""
        earlier = self.facts.outcomes.get(row)
        if self.keep_final and earlier is not None and earlier.status in FINAL and not (
                self.resend_rejected and earlier.status in RETHOUGHT):
            return earlier
        created = self.facts.created.get(row)
        if created is not None:
            return Outcome.problem(row, Code.CREATED_BY_EARLIER_RUN, record_id=created,
                                   record=created)
        if keyed:
            return None
        if self.maybe_sent(row) and not self.retry_unknown:
            return Outcome.problem(row, Code.OUTCOME_UNKNOWN, reason=(
                "an earlier run sent this row but recorded no answer; check the CRM, then use "
                "--retry-unknown to send it again"))
        return None


RETHOUGHT = frozenset({Status.REJECTED, Status.INVALID})
"""Outcomes that depend on the mapping, re-decided after a breaker stop."""


def start(results: Path, fingerprint: dict[str, object], *, resume: bool, force: bool,
          retry_unknown: bool) -> tuple[Plan, Journal, str]:
    """This run's plan and journal, and a note for the summary (empty when nothing to say).

    The journal is created before the results file, so a results file without a journal never
    comes from a run that sent something.
    """
    path = journal_path(results)
    prior = load_prior(path)
    if prior is None and resume and results.exists():
        prior = _prior_from_results(results, path, fingerprint, force=force)
    plan, note = plan_for(prior, fingerprint, path, resume=resume, force=force,
                          retry_unknown=retry_unknown)
    if plan.discarded:
        path.replace(path.with_name(path.name + ".previous"))
        sync_folder(path)
    return plan, Journal(path, fingerprint, plan.facts), note


def shows_sent_rows(results: Path) -> bool:
    """Whether a results file records rows that were sent (a real run's, not a dry run's).
    One that cannot be read is treated as a real run's: it must not be overwritten."""
    if results.stat().st_size == 0:
        return False
    try:
        outcomes = read_outcomes(results)
    except ResumeError:
        return True
    return any(o.http_status is not None or o.status in SENT for o in outcomes.values())


def _prior_from_results(results: Path, journal: Path, fingerprint: dict[str, object], *,
                        force: bool) -> Prior | None:
    """Resume from the results file alone: allowed only with --force, because without the
    journal nobody can tell whether the input changed or which rows were sent unanswered.
    Results that show nothing was ever sent (a dry run's) are simply ignored."""
    outcomes = read_outcomes(results)
    if not any(o.http_status is not None or o.status in SENT for o in outcomes.values()):
        return None
    if not force:
        raise ResumeError(f"cannot resume: {journal.name} (the journal of the earlier run) "
                          "is missing, so a changed input or rows sent without an answer "
                          f"cannot be detected; pass --force to resume from {results.name} "
                          "alone")
    return Prior.from_outcomes(fingerprint, outcomes)


def _same_ledger(before: dict[str, object], now: dict[str, object], journal: Path) -> None:
    """A resume keeps the rows its earlier run settled from the ledger only by asking the
    ledger again: another ledger (a different --ledger, or one deleted and created anew) does
    not know them, and the keyless ones would be created a second time."""
    if before.get("ledger") and now.get("ledger") and before["ledger"] != now["ledger"]:
        raise ResumeError(
            f"cannot resume: {journal.name} was written with the import ledger "
            f"{before.get('ledger_at')}, and this run uses another ({now.get('ledger_at')}); "
            "resume with --ledger pointing at that one, or, if it is lost, pass --force to "
            "resume anyway (rows that only it knew are then sent again)")


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
    if resume and not force:
        _same_ledger(prior.fingerprint, fingerprint, journal)
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
    plan = Plan(prior, keep_final=resume, retry_unknown=retry_unknown,
                resend_rejected=after_breaker)
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
