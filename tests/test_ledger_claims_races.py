"""Review of the claims on keyless rows: interleavings the first tests did not reach.

Each "run" has its own store (its own connection, as separate processes would). A run taken
for dead while alive is the case that matters: a suspended laptop (Ctrl-Z), a host cut off from
PostgreSQL for more than ``STALE_AFTER``, a lock file removed by a clean-up job. Its claims are
reaped, and from then on nothing it claims may let it send a row another run sends too.
"""

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from importer.ledger import RunLedger, open_store
from importer.ledger.fingerprints import destination as ledger_destination
from importer.ledger.fingerprints import field_prints, fields_print
from importer.ledger.sqlite import SqliteStore
from importer.ledger.store import (
    CREATED,
    STALE_AFTER,
    UNKNOWN,
    Claim,
    ClaimAnswer,
    Entry,
    LedgerError,
    LedgerStore,
    Selection,
)
from importer.rows.outcomes import Outcome
from importer.rows.problems import Code
from tests.conftest import PLAIN_MAPPING, read_results
from tests.ledger_stores import Opener, entry

WHERE = ledger_destination("https://api.routera.io/contacts", "t")


def keyless(name: str, row: int = 2) -> tuple[dict[str, str], Claim]:
    fields = {"first_name": name, "last_name": "Keyless"}
    return fields, Claim(fields_print(fields), field_prints(fields), "night.csv", row, 1,
                         "2026-11-27T02:00:00Z")


def started(opener: Opener, run: int) -> tuple[LedgerStore, int]:
    store = opener()
    dest = store.destination_number(WHERE.endpoint, WHERE.token_print, WHERE.digest,
                                    create=True)
    assert dest is not None
    store.start_run(dest, run, f"results-{run}.csv")
    return store, dest


def silence(store: LedgerStore, run: int) -> None:
    """The run gave no sign of life for longer than ``STALE_AFTER`` (its process was stopped)."""
    with store._write() as db:  # type: ignore[attr-defined]
        db.execute(f"UPDATE ledger_runs SET beat = beat - {int(STALE_AFTER * 2000)} "
                   f"WHERE id = {run}")


def take_for_dead(store: LedgerStore, run: int) -> None:
    """What makes other runs take a living run for dead: silence past ``STALE_AFTER`` on
    PostgreSQL (a host cut off from it), its lock file removed on SQLite (a clean-up job)."""
    silence(store, run)
    if isinstance(store, SqliteStore):
        store._run_lock(run).unlink()


def may_send(store: LedgerStore, dest: int, run: int, claim: Claim, *,
             take_over_unknown: bool = False) -> bool:
    """What a run's worker does (``RunLedger.claim`` without the waiting): True when it may
    send the row. A store that refuses the claim outright stops the run: False."""
    for _ in range(5):
        try:
            held = store.lookup(dest, [claim.key]).get(claim.key)
            over = held.entry if take_over_unknown and held is not None else 0
            answer = store.claim(dest, run, claim, take_over_unknown=over)
        except LedgerError:
            return False
        if answer.claimed or answer.found is not None:
            return answer.claimed
        if answer.holder is not None:
            if store.alive(answer.holder):
                return False
            store.reap(answer.holder)
    raise AssertionError("the claim never settled")


def test_a_run_taken_for_dead_cannot_claim_rows_any_more(opener: Opener) -> None:
    """Run 1 is taken for dead while alive (``take_for_dead``); run 2 starts and reaps it.
    Run 1 goes on, but its runs row is gone, so its new claims protect nothing: the next run that
    meets one reaps it at once. With --retry-unknown that run takes the reaped claim over
    and sends the row that run 1 is sending at that very moment: created twice."""
    sleeper, dest = started(opener, 1)
    _, before = keyless("Ada")
    _, after = keyless("Bo", row=3)
    assert may_send(sleeper, dest, 1, before)
    take_for_dead(sleeper, 1)
    retrying, _ = started(opener, 2)  # start_run reaps run 1
    assert retrying.lookup(dest, [before.key])[before.key].answer == UNKNOWN
    first = may_send(sleeper, dest, 1, after)
    second = may_send(retrying, dest, 2, after, take_over_unknown=True)
    assert not (first and second), "both runs send the same keyless row"


def test_a_claim_committed_while_its_run_is_being_reaped_is_not_dropped(
        postgres_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """PostgreSQL, READ COMMITTED: ``_settle_run`` reads the run's claims, writes their
    outcome-unknown entries, then deletes *every* claim of the run. A claim the (living) run
    commits between the read and the delete is deleted without any entry, so a third run,
    without --retry-unknown, claims the row and sends it while the first run sends it."""
    sleeper, dest = started(lambda: open_store(postgres_url), 1)
    reaper, _ = started(lambda: open_store(postgres_url), 2)
    third, _ = started(lambda: open_store(postgres_url), 3)
    try:
        _, before = keyless("Cy")
        _, during = keyless("Di", row=3)
        assert may_send(sleeper, dest, 1, before)
        silence(reaper, 1)
        answers: list[bool] = []
        claiming = threading.Thread(
            target=lambda: answers.append(may_send(sleeper, dest, 1, during)))
        insert = reaper._insert  # type: ignore[attr-defined]

        def insert_while_the_run_claims(db: object, destination: int, entries: object) -> int:
            """Between the reaper's read of the claims and its delete, run 1 claims a row."""
            if not claiming.is_alive() and not answers:
                claiming.start()
                claiming.join(1.0)
            return int(insert(db, destination, entries))

        monkeypatch.setattr(reaper, "_insert", insert_while_the_run_claims)
        assert not reaper.alive(1)
        reaper.reap(1)
        claiming.join(10)
        assert answers, "run 1's claim never returned"
        assert not (answers[0] and may_send(third, dest, 3, during)), \
            "both runs send the same keyless row"
    finally:
        for store in (sleeper, reaper, third):
            store.close()


def test_retry_unknown_does_not_take_over_an_outcome_lost_while_it_waited(
        opener: Opener) -> None:
    """--retry-unknown is for the outcome-unknown rows the person checked in the CRM before
    the run. A run waiting for another run's claim learns an outcome that is unknown *now*
    (that run's answer was lost, or it died while sending): nobody checked that one, and the
    record may exist, so sending it is a second record when the first request landed."""
    holder, dest = started(opener, 1)
    fields, claim = keyless("Ed")
    assert may_send(holder, dest, 1, claim)
    store = opener()
    ledger = RunLedger(store, WHERE, "west.csv", consult=True, on_error=print,
                       retry_unknown=True)
    stop = threading.Event()
    got: list[Outcome | None] = []
    try:
        assert ledger.check([2], [fields]) == [None]
        waiting = threading.Thread(target=lambda: got.append(ledger.claim(2, fields, stop)))
        waiting.start()
        waiting.join(0.6)
        assert waiting.is_alive(), "the run waits while the other run holds the claim"
        lost = {"first_name": "Ed", "last_name": "Keyless"}
        holder.record(dest, [_unknown(lost)], run=1, settled=[claim.key])
        waiting.join(10)
        stop.set()
        waiting.join(10)
    finally:
        ledger.close()
    assert got and got[0] is not None and got[0].code == Code.OUTCOME_UNKNOWN, \
        "the waiting run sends a row whose first request may have created it"


def _unknown(fields: dict[str, str]) -> Entry:
    return entry(fields, UNKNOWN, record_id="", file="night.csv")



def test_a_row_another_run_was_sending_is_not_journaled_as_sent_by_this_one(
        cli: Callable[..., Any], sandbox: Any, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A row settled by the ledger is not journaled (``SendingSink._send_or_settle``): the
    journal is what *this* results file's runs sent, and a resumed run asks the ledger again.
    A row settled by a claim it waited for is journaled, though: a may-exist answer becomes
    "an earlier run sent this row but recorded no answer" in this results file for good, so
    after the other night is resumed and the ledger holds the record, resuming this file still
    says outcome-unknown (and blames itself) instead of imported-earlier with the id."""
    monkeypatch.setenv("ROUTERA_LEDGER", str(tmp_path / "ledger.sqlite3"))
    mapping = tmp_path / "m.yaml"
    mapping.write_text(PLAIN_MAPPING, encoding="utf-8")
    export = tmp_path / "e.csv"
    export.write_text("Customer ID,First Name,Last Name,Email,Zip\n,Zoë,Keyless,,01234\n",
                      encoding="utf-8")

    def run(results: str, *flags: str) -> Any:
        return cli("run", export, "--mapping", mapping, "--api-url", sandbox.url, "--quiet",
                   "--results", tmp_path / results, *flags)

    assert run("learn.csv").code == 0  # the row's exact fields and the destination
    other = open_store(str(tmp_path / "ledger.sqlite3"))
    try:
        dest = other.destinations()[0].number
        printed = str(next(iter(other.entries(dest, Selection())))[8])
        other.forget(dest, Selection())
        other.start_run(dest, 77, "other-night.csv")
        claim = Claim(printed, {}, "other.csv", 2, 1, "2026-11-27T02:00:00Z")
        assert other.claim(dest, 77, claim, take_over_unknown=False).claimed

        def answer_lost() -> None:
            time.sleep(1.0)
            other.record(dest, [_entry(printed, UNKNOWN, "")], run=77, settled=[claim.key])

        losing = threading.Thread(target=answer_lost)
        losing.start()
        assert run("night2.csv").code == 1
        losing.join()
        (row,) = read_results(tmp_path / "night2.csv")
        assert row["error_code"] == "outcome-unknown", row
        other.record(dest, [_entry(printed, CREATED, "c-77")])  # the other night is resumed
        other.end_run(77)
    finally:
        other.close()
    run("night2.csv", "--resume")
    (row,) = read_results(tmp_path / "night2.csv")
    assert (row["error_code"], row["id"]) == ("imported-earlier", "c-77"), row["error"]


def _entry(printed: str, answer: str, record_id: str) -> Entry:
    return Entry(("", "", ""), printed, {}, record_id, answer, "2026-11-27T02:00:00Z",
                 "other.csv", 2)


def test_retry_unknown_does_not_take_over_an_unknown_renewed_since_it_looked(
        opener: Opener) -> None:
    """Residual window of --retry-unknown: two such runs of overlapping exports at once. Run
    2 reads its batch and will send the row (the person found it missing in the CRM); before
    its worker gets there, run 1 takes the same outcome-unknown over, sends it, and loses the
    answer. Run 2 never meets run 1's claim, and the key still holds the same unknown entry
    (an unknown does not replace an unknown), so run 2 sends the row a second time although
    run 1's request may have created it."""
    first, dest = started(opener, 1)
    fields, claim = keyless("Gu")
    first.record(dest, [_unknown(fields)])  # from an older night; checked: missing
    ledger = RunLedger(opener(), WHERE, "west.csv", consult=True, on_error=print,
                       retry_unknown=True)
    try:
        assert ledger.check([2], [fields]) == [None], "to be sent again"
        assert may_send(first, dest, 1, claim, take_over_unknown=True)
        lost = entry(fields, UNKNOWN, record_id="", file="east.csv", replaces=True)
        first.record(dest, [lost], run=1, settled=[claim.key])  # as RunLedger.record does
        got = ledger.claim(2, fields, threading.Event())
    finally:
        ledger.close()
    assert got is not None and got.code == Code.OUTCOME_UNKNOWN, \
        "sent although the run before it may have created the record a moment ago"


def test_a_lost_answer_on_a_claimed_row_renews_the_unknown(opener: Opener) -> None:
    """The outcome-unknown a --retry-unknown run leaves (its answer was lost again) is a new
    fact: a new entry holds the key, so other runs that saw the old one do not take it over."""
    first, dest = started(opener, 1)
    fields, claim = keyless("Hu")
    first.record(dest, [_unknown(fields)])
    old = first.lookup(dest, [claim.key])[claim.key].entry
    store = opener()
    ledger = RunLedger(store, WHERE, "east.csv", consult=True, on_error=print,
                       retry_unknown=True)
    try:
        assert ledger.check([2], [fields]) == [None]
        assert ledger.claim(2, fields, threading.Event()) is None, "taken over"
        ledger.record(fields, Outcome.problem(2, Code.OUTCOME_UNKNOWN, reason="lost"),
                      fresh=True)
    finally:
        ledger.close()
    now = first.lookup(dest, [claim.key])[claim.key]
    assert (now.answer, now.file) == (UNKNOWN, "east.csv") and now.entry != old
    first.record(dest, [entry(fields, CREATED, record_id="c1", replaces=True)])
    first.record(dest, [entry(fields, UNKNOWN, record_id="", replaces=True)])
    assert first.lookup(dest, [claim.key])[claim.key].record_id == "c1", "nothing downgrades"


def test_a_run_taken_for_dead_stops_at_once_and_a_writer_bug_stops_the_run(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Trying a claim again cannot help a run that was reaped: it stops at its first refused
    claim. An unexpected error in the ledger's writer thread stops the run with one line,
    instead of killing the thread with a traceback."""
    location = str(tmp_path / "ledger.sqlite3")
    errors: list[str] = []
    store = open_store(location)
    ledger = RunLedger(store, ledger_destination("https://api/contacts", "t"), "night.csv",
                       consult=True, on_error=errors.append)
    attempts = []
    real = store.claim
    monkeypatch.setattr(store, "claim", lambda *a, **k: attempts.append(1) or real(*a, **k))
    fields = {"first_name": "Eve"}
    ledger.check([2], [fields])
    take_for_dead(store, ledger.run)
    other = open_store(location)
    assert not other.alive(ledger.run)
    other.reap(ledger.run)
    assert ledger.claim(2, fields, threading.Event()) is None
    assert len(attempts) == 1
    assert errors and "another run took this one for dead" in errors[0]
    other.close()

    errors.clear()
    second = RunLedger(open_store(location), ledger_destination("https://api/contacts", "t"),
                       "night.csv", consult=True, on_error=errors.append)
    monkeypatch.setattr(second.store, "record", lambda *a, **k: 1 / 0)
    second.record(fields, Outcome.created(3, "c1", 201), fresh=True)
    second.close()
    second.store.close()
    assert errors == ["internal error while writing the ledger (ZeroDivisionError: division by "
                      "zero); please report this"]
    store.close()


def test_a_ledger_locked_by_another_session_stops_the_run_instead_of_hanging(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """R4-1: a SQLite ledger held by a shell left in a transaction (or a backup). A claim that
    waited out the busy timeout is not tried again, and closing the run does not wait for the
    ledger once more: the run stops in one line, and its lock ends with the process."""
    import sqlite3

    from importer.ledger import ledger as ledger_module
    from importer.ledger import sqlite as sqlite_module

    monkeypatch.setattr(sqlite_module, "BUSY_TIMEOUT", 0.3)
    monkeypatch.setattr(ledger_module, "SLOW_FAILURE", 0.2)
    location = tmp_path / "ledger.sqlite3"
    errors: list[str] = []
    run = RunLedger(open_store(str(location)), ledger_destination("https://api/contacts", "t"),
                    "night.csv", consult=True, on_error=errors.append)
    store = run.store
    calls: list[str] = []
    for name in ("claim", "end_run"):
        real = getattr(store, name)
        monkeypatch.setattr(store, name, lambda *a, _real=real, _name=name, **k:
                            calls.append(_name) or _real(*a, **k))
    holder = sqlite3.connect(location, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        fields = {"first_name": "Fay"}
        run.check([2], [fields])
        assert run.claim(2, fields, threading.Event()) is None
        run.close()
    finally:
        holder.execute("ROLLBACK")
        holder.close()
        store.close()
    assert calls == ["claim"]
    assert len(errors) == 1 and errors[0].startswith("cannot claim row 2 in the ledger: ")
    assert "locked" in errors[0]


def test_a_postgres_ledger_waits_for_locks_as_long_as_sqlite_does(postgres_url: str) -> None:
    from importer.ledger.postgres import LOCK_TIMEOUT

    store = open_store(postgres_url)
    try:
        with store._read() as db:  # type: ignore[attr-defined]
            shown = db.execute("SHOW lock_timeout").fetchone()[0]
    finally:
        store.close()
    assert (LOCK_TIMEOUT, shown) == ("60s", "1min")


def test_a_missing_lock_file_proves_nothing_the_heartbeat_decides(tmp_path: Path) -> None:
    """R4-4: a clean-up job removes ledger.sqlite3.runs/; the runs are alive and say so."""
    import shutil

    location = str(tmp_path / "ledger.sqlite3")
    first, _ = started(lambda: open_store(location), 1)
    second, _ = started(lambda: open_store(location), 2)
    shutil.rmtree(tmp_path / "ledger.sqlite3.runs")
    try:
        assert second.alive(1)
        silence(second, 1)
        assert not second.alive(1)
    finally:
        first.close()
        second.close()


def test_a_failed_write_reports_its_cause_not_the_rollback(tmp_path: Path) -> None:
    """R4-5: SQLite rolls a transaction back itself when its file turns read-only; the error
    named the ROLLBACK that followed ("no transaction is active") instead of the cause."""
    import sqlite3

    store = open_store(str(tmp_path / "ledger.sqlite3"))
    try:
        with pytest.raises(LedgerError, match="attempt to write a readonly database"), \
                store._write() as db:  # type: ignore[attr-defined]
            db.execute("ROLLBACK")
            raise sqlite3.OperationalError("attempt to write a readonly database")
    finally:
        store.close()


def test_a_ledger_deleted_under_a_run_stops_it(tmp_path: Path) -> None:
    """R4-4: the facts a run writes into a deleted ledger file are lost with it."""
    location = tmp_path / "ledger.sqlite3"
    store, _ = started(lambda: open_store(str(location)), 1)
    try:
        store.beat(1)
        location.unlink()
        with pytest.raises(LedgerError, match="the file was deleted or replaced while this run"):
            store.beat(1)
    finally:
        store.close()


def test_a_ledger_given_up_fails_every_later_call_at_once(opener: Opener) -> None:
    """R4-1: after one call waited out another session's lock and the run gave the ledger up,
    the calls queued behind the connection (other workers' claims, the writer) must not each
    wait out the same lock again."""
    store, dest = started(opener, 1)
    store.abandon("ledger test: database is locked")
    with pytest.raises(LedgerError, match=r"given up \(ledger test: database is locked\)"):
        store.lookup(dest, ["email:ada@example.com"])


def test_a_claim_asked_after_the_stop_takes_nothing(opener: Opener) -> None:
    """R4-1 with SIGTERM: the claims queued behind a connection that waits for a locked ledger
    must not each wait out the lock once the run is told to stop."""
    store, dest = started(opener, 1)
    stop = threading.Event()
    stop.set()
    _, claim = keyless("Gus")
    assert store.claim(dest, 1, claim, take_over_unknown=0, stop=stop) == ClaimAnswer()
    assert store.claim(dest, 1, claim, take_over_unknown=0).claimed
