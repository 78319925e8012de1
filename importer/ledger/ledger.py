"""One run's use of the ledger: a lookup before rows are queued, a claim before a keyless row
is sent, a record after 201 and 409.

``check`` decides a whole read batch with one query, so deciding costs less per row than
mapping it. ``record`` only queues: a background thread writes the queue every
``FLUSH_EVERY`` seconds in one short transaction, so the ledger never slows the sending. A
write that keeps failing stops the run (``on_error``), like a journal that cannot be written.

``claim`` is the one synchronous write: the API cannot recognise a keyless row, so the run
that sends one must say so before the request leaves, or another run sending the same export
at the same time would create it a second time (see ``store.Claim``).
"""

import secrets
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from importer.ledger.fingerprints import (
    KEY_FIELDS,
    Destination,
    changed_fields,
    combined_key,
    field_prints,
    fields_key,
    fields_print,
    key_values,
    single_keys,
)
from importer.ledger.store import (
    CREATED,
    EXISTING,
    HEARTBEAT,
    UNKNOWN,
    Claim,
    ClaimAnswer,
    Entry,
    Found,
    LedgerError,
    LedgerStore,
    TakenForDead,
    now_iso,
)
from importer.rows.outcomes import Outcome, Status
from importer.rows.problems import Code

FLUSH_EVERY = 0.2
WRITE_ATTEMPTS = 4
RETRY_DELAY = 0.5
SLOW_FAILURE = 10.0
"""A ledger call that failed after this many seconds has waited already (for a lock another
session holds: SQLite's busy timeout, PostgreSQL's lock_timeout): trying again only makes the
run hang longer before it stops, so it is not retried."""
CLAIM_POLL = 0.2
"""Seconds between looks at a key another run is sending, until it settles or that run dies."""
RECORDED_DUPLICATES = frozenset({Code.ALREADY_EXISTS, Code.CREATED_BY_EARLIER_ATTEMPT,
                                 Code.CREATED_BY_EARLIER_RUN})


@dataclass
class LedgerCounts:
    """What the ledger did in this run, for the summary."""

    imported_earlier: int = 0
    changed: int = 0
    recorded: int = 0
    may_exist: int = 0
    waited: int = 0
    """Keyless rows another run was sending at the same moment: this run waited for its
    outcome instead of sending them too."""

    def used(self, outcome: Outcome) -> None:
        """Count an outcome ``check`` gave that the run reported."""
        if outcome.code == Code.OUTCOME_UNKNOWN:
            self.may_exist += 1
            return
        self.imported_earlier += 1
        self.changed += outcome.code == Code.CHANGED_SINCE_IMPORT

    def note(self) -> str:
        """One line for the summary; empty when the ledger changed nothing."""
        lines = []
        if self.imported_earlier:
            changed = f" ({self.changed:,} changed since: see changed-since-import)" \
                if self.changed else ""
            lines.append(f"{self.imported_earlier:,} rows imported earlier (the ledger holds "
                         f"them) were not sent{changed}")
        if self.may_exist:
            lines.append(f"{self.may_exist:,} rows an earlier run may have created (outcome "
                         "unknown) were not sent: check them in the CRM, then rerun with "
                         "--retry-unknown to send those that are missing")
        if self.waited:
            lines.append(f"{self.waited:,} of these rows (without email, external_id or "
                         "website_url) were being sent by another run at the same moment: this "
                         "run waited for their outcome instead of sending them too")
        return "; ".join(lines)


class RunLedger:
    """The ledger as one run sees it: one destination, one input file."""

    def __init__(self, store: LedgerStore, destination: Destination, source: str, *,
                 consult: bool, on_error: Callable[[str], None],
                 retry_unknown: bool = False, results: str = "") -> None:
        self.store = store
        self.source = source
        self.consult = consult
        self.retry_unknown = retry_unknown
        self.on_error = on_error
        self.counts = LedgerCounts()
        number = store.destination_number(destination.endpoint, destination.token_print,
                                          destination.digest, create=True)
        assert number is not None
        self.destination = number
        self._pending: list[Entry] = []
        self._settled: list[str] = []
        self._claimed: dict[int, str] = {}
        self._retrying: dict[int, int] = {}
        """Rows ``--retry-unknown`` lets through, and the outcome-unknown entry each one had
        when its batch was looked up: the only fact the person can have checked in the CRM."""
        self._seen: dict[int, int] = {}
        self._occurrence: dict[int, int] = {}
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._failed = ""
        self.run = secrets.randbits(62)
        store.start_run(self.destination, self.run, results)
        self._ended = False
        self._beaten = time.monotonic()
        self._writer = threading.Thread(target=self._write_loop, name="ledger-writer",
                                        daemon=True)
        self._writer.start()

    def check(self, rows: Sequence[int],
              fields: Sequence[Mapping[str, str]]) -> list[Outcome | None]:
        """For each row, its outcome when the ledger holds it (not to be sent), else None.

        A keyless row an earlier run may have created (its outcome was unknown) comes back
        ``outcome-unknown`` naming that run, unless ``--retry-unknown`` asks to send it.

        Keyless rows are counted as they come (``_count``): the n-th row of this run with the
        same fields is found only by the n-th such record, so a record this run creates never
        answers for another row of it, and no record answers for two rows.

        Two queries per batch: each row's first key (email, else external_id, else website_url,
        else its exact fields) finds nearly every row imported before, since a created record
        holds all its keys; only the rows not found ask again with their other keys.
        """
        if not rows:
            return []
        keys = [key_values(row_fields) for row_fields in fields]
        prints = ["" if any(k) else fields_print(f) for k, f in zip(keys, fields, strict=True)]
        occurrences = self._count(rows, prints)
        if not self.consult:
            return [None] * len(rows)
        first = [_first_key(k, p, n) for k, p, n in zip(keys, prints, occurrences, strict=True)]
        found = self.store.lookup(self.destination, first)
        hits = [found.get(key) for key in first]
        others = {index: _other_keys(keys[index]) for index, hit in enumerate(hits)
                  if hit is None and not prints[index]}
        more = self.store.lookup(self.destination, [k for ks in others.values() for k in ks])
        for index, candidates in others.items():
            hits[index] = next((more[k] for k in candidates if k in more), None)
        if not found and not more:
            return [None] * len(rows)
        return self._outcomes(rows, fields, hits, prints)

    def _count(self, rows: Sequence[int], prints: Sequence[str]) -> list[int]:
        """Which occurrence of its fields in this run each keyless row is (0 for keyed rows).

        Costs one dict entry per distinct keyless row (its print as a 64-bit number); rows
        after the first occurrence are remembered by row number, for ``record``."""
        occurrences = []
        for row, printed in zip(rows, prints, strict=True):
            if not printed:
                occurrences.append(0)
                continue
            number = int(printed[:16], 16)
            occurrence = self._seen.get(number, 0) + 1
            self._seen[number] = occurrence
            if occurrence > 1:
                self._occurrence[row] = occurrence
            occurrences.append(occurrence)
        return occurrences

    def _outcomes(self, rows: Sequence[int], fields: Sequence[Mapping[str, str]],
                  hits: list[Found | None], prints: list[str]) -> list[Outcome | None]:
        changed: dict[int, Found] = {}
        for index, hit in enumerate(hits):
            if hit is not None and (prints[index] or fields_print(fields[index])) \
                    != hit.fields_print:
                changed[index] = hit
        before = self.store.field_prints([hit.entry for hit in changed.values()])
        outcomes: list[Outcome | None] = []
        for index, hit in enumerate(hits):
            if hit is None:
                outcomes.append(None)
            elif hit.answer == UNKNOWN and self.retry_unknown:
                self._retrying[rows[index]] = hit.entry
                outcomes.append(None)
            elif hit.answer == UNKNOWN:
                outcomes.append(_may_exist(rows[index], hit))
            elif index in changed:
                names = changed_fields(before.get(hit.entry, {}), fields[index])
                outcomes.append(_changed(rows[index], hit, names))
            else:
                outcomes.append(_imported_earlier(rows[index], hit))
        return outcomes

    def record(self, fields: Mapping[str, str], outcome: Outcome, *, fresh: bool) -> None:
        """Queue a settled outcome: 201s and 409s, ``fresh`` from this run's requests, or
        carried over from the journal of an earlier run (which never replace entries); and
        the outcome-unknown of a keyless row, which fences it off in later runs."""
        answer = _answer(outcome, fields)
        with self._lock:
            claimed = self._claimed.pop(outcome.row, None) if fresh else None
            if claimed is not None:
                self._settled.append(claimed)
            if answer:
                self._pending.append(Entry(
                    key_values(fields), fields_print(fields), field_prints(fields), outcome.id,
                    answer, now_iso(), self.source, outcome.row,
                    replaces=fresh and (outcome.status == Status.CREATED
                                        or (claimed is not None and answer == UNKNOWN)),
                    occurrence=self._occurrence.get(outcome.row, 1)))

    def claim(self, row: int, fields: Mapping[str, str], stop: threading.Event) -> Outcome | None:
        """Before a keyless row is sent: None when this run may send it (or is stopping, which
        the caller checks), else the row's outcome without sending it.

        While another live run holds the row's claim, this one waits for that run's outcome
        (watching ``stop``): imported earlier if it created the record, may-exist if its answer
        was lost, or this run's to send if nothing was created. A run that died while holding
        the claim is reaped: its claims become outcome unknown.

        ``--retry-unknown`` takes over only the outcome-unknown entry ``check`` saw: one that
        arose since (another run's answer was lost, or it died while sending, which renews
        the entry) or from a claim this run met is new, nobody checked it in the CRM, and the
        record may exist.
        """
        if not self.consult or self._failed:
            return None
        claim = Claim(fields_print(fields), field_prints(fields), self.source, row,
                      self._occurrence.get(row, 1), now_iso())
        waited = failures = 0
        met = False
        seen = self._retrying.pop(row, 0)
        while not (stop.is_set() or self._failed):
            asked = time.monotonic()
            try:
                answer = self._claim_once(claim, 0 if met else seen, stop)
            except LedgerError as exc:
                failures += 1
                if not _worth_retrying(exc, time.monotonic() - asked, failures):
                    self._fail(f"cannot claim row {row} in the ledger: {exc}")
                    return None
                stop.wait(RETRY_DELAY * 2 ** (failures - 1))
                continue
            if answer.claimed:
                return None
            if answer.found is not None:
                return self._held(row, answer.found, bool(waited))
            met = True  # another run's claim: an outcome-unknown that follows is new
            waited += answer.holder is not None
            stop.wait(CLAIM_POLL if answer.holder is not None else 0)
        return None

    def _claim_once(self, claim: Claim, take_over_unknown: int,
                    stop: threading.Event) -> ClaimAnswer:
        """One attempt; a claim held by a dead run is reaped at once, so the caller tries
        again without waiting (and then finds the row outcome-unknown)."""
        answer = self.store.claim(self.destination, self.run, claim,
                                  take_over_unknown=take_over_unknown, stop=stop)
        if answer.claimed:
            with self._lock:
                self._claimed[claim.row] = claim.key
        elif answer.holder is not None and not self.store.alive(answer.holder):
            self.store.reap(answer.holder)
            return ClaimAnswer()
        return answer

    def _held(self, row: int, hit: Found, waited: bool) -> Outcome:
        """The outcome of a keyless row the ledger holds (its fields are its key: unchanged)."""
        outcome = _may_exist(row, hit) if hit.answer == UNKNOWN else _imported_earlier(row, hit)
        with self._lock:
            self.counts.used(outcome)
            self.counts.waited += waited
        return outcome

    def close(self) -> None:
        """Write what is queued, then end the run in the ledger (claims it still holds become
        outcome unknown); a failure is reported through ``on_error``. Safe to call again (the
        run closes it; ``run_import`` makes sure, whatever happened)."""
        self._closed.set()
        self._writer.join()
        self._flush_now()
        if self._ended or self._failed:
            return  # a broken ledger would only keep the run waiting: the lock ends with it
        self._ended = True
        try:
            self.store.end_run(self.run)
        except LedgerError as exc:
            self._fail(f"cannot end the run in the ledger: {exc}; its claims count as outcome "
                       "unknown once this process ends")

    def _write_loop(self) -> None:
        while not self._closed.wait(FLUSH_EVERY):
            self._flush_now()
            self._beat()

    def _beat(self) -> None:
        """Tell other runs this one is alive, every ``HEARTBEAT`` seconds."""
        if time.monotonic() - self._beaten < HEARTBEAT or self._failed:
            return
        self._beaten = time.monotonic()
        try:
            self.store.beat(self.run)
        except LedgerError as exc:
            self._fail(f"cannot write the ledger: {exc}")

    def _fail(self, message: str) -> None:
        """The ledger failed for good: stop the run, and let no other call wait for it."""
        if not self._failed:
            self._failed = message
            self.store.abandon(message)
            self.on_error(message)

    def _flush_now(self) -> None:
        with self._lock:
            batch, self._pending = self._pending, []
            settled, self._settled = self._settled, []
        if not (batch or settled) or self._failed:
            return
        for attempt in range(1, WRITE_ATTEMPTS + 1):
            asked = time.monotonic()
            try:
                self.counts.recorded += self.store.record(self.destination, batch, run=self.run,
                                                          settled=settled)
                return
            except LedgerError as exc:
                if not _worth_retrying(exc, time.monotonic() - asked, attempt):
                    self._fail(f"cannot write the ledger: {exc} (the journal holds every "
                               "outcome, and resuming hands them to the ledger)")
                    return
                time.sleep(RETRY_DELAY * 2 ** (attempt - 1))
            except Exception as exc:
                self._fail(f"internal error while writing the ledger ({type(exc).__name__}: "
                           f"{exc}); please report this")
                return


def _worth_retrying(exc: LedgerError, took: float, attempts: int) -> bool:
    """A quick, passing failure (a deadlock the database broke, a dropped connection) is
    tried again; not one that waited out a lock, nor a run taken for dead, nor the last."""
    return attempts < WRITE_ATTEMPTS and took < SLOW_FAILURE \
        and not isinstance(exc, TakenForDead)


def _first_key(keys: tuple[str, str, str], printed: str, occurrence: int) -> str:
    """The one key most rows are found by: the first of email, external_id, website_url."""
    for name, value in zip(KEY_FIELDS, keys, strict=True):
        if value:
            return f"{name}:{value}"
    return fields_key(printed, occurrence)


def _other_keys(keys: tuple[str, str, str]) -> list[str]:
    """A keyed row's remaining lookup keys: its other single keys and their combination."""
    others = single_keys(keys)[1:]
    combined = combined_key(keys)
    return [*others, combined] if combined else others


def _answer(outcome: Outcome, fields: Mapping[str, str]) -> str:
    if outcome.code == Code.OUTCOME_UNKNOWN:
        return "" if any(key_values(fields)) else UNKNOWN
    if outcome.status == Status.CREATED:
        return CREATED
    if outcome.status == Status.DUPLICATE and outcome.code in RECORDED_DUPLICATES:
        return CREATED if outcome.code == Code.CREATED_BY_EARLIER_RUN else EXISTING
    return ""


def _where(hit: Found) -> str:
    verb = "imported" if hit.answer == CREATED else "found existing (HTTP 409)"
    return f"{verb} on {hit.imported_at[:10]} from {hit.file} row {hit.row}"


def _may_exist(row: int, hit: Found) -> Outcome:
    return Outcome.problem(row, Code.OUTCOME_UNKNOWN, reason=(
        f"a run on {hit.imported_at[:10]} from {hit.file} row {hit.row} sent the same fields "
        "and its outcome is unknown (no answer, or the run ended while sending), so the record "
        "may exist; not sent again: check the CRM, then use --retry-unknown to send it"))


def _imported_earlier(row: int, hit: Found) -> Outcome:
    return Outcome.problem(row, Code.IMPORTED_EARLIER, record_id=hit.record_id,
                           where=_where(hit))


def _changed(row: int, hit: Found, names: list[str]) -> Outcome:
    return Outcome.problem(row, Code.CHANGED_SINCE_IMPORT, record_id=hit.record_id,
                           where=_where(hit), fields=", ".join(names) or "some fields")
