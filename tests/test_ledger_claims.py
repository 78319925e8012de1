"""Claims on keyless rows across runs, on SQLite and on a real PostgreSQL server.

Each "run" here has its own store (its own connection, as separate processes would). A run that
dies is a store closed without ``end_run``: its lock ends, as when the process is killed.
"""

from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, initialize, invariant, rule

from importer.ledger import open_store
from importer.ledger.fingerprints import field_prints, fields_print
from importer.ledger.store import CREATED, UNKNOWN, Claim, LedgerStore
from tests.ledger_stores import Opener, entry


def destination(store: LedgerStore) -> int:
    number = store.destination_number("https://api/contacts", "t", "digest", create=True)
    assert number is not None
    return number


def keyless(name: str, row: int = 2, occurrence: int = 1) -> tuple[dict[str, str], Claim]:
    fields = {"first_name": name, "last_name": "Keyless"}
    return fields, Claim(fields_print(fields), field_prints(fields), "night.csv", row,
                         occurrence, "2026-11-27T02:00:00Z")


def started(opener: Opener, run: int) -> tuple[LedgerStore, int]:
    store = opener()
    dest = destination(store)
    store.start_run(dest, run, f"results-{run}.csv")
    return store, dest


def test_a_claim_held_by_a_live_run_makes_others_wait_then_gives_its_outcome(opener) -> None:
    first, dest = started(opener, 1)
    second, _ = started(opener, 2)
    fields, claim = keyless("Ada")
    assert first.claim(dest, 1, claim, take_over_unknown=False).claimed
    assert second.claim(dest, 2, claim, take_over_unknown=False).holder == 1
    assert second.alive(1)
    first.record(dest, [entry(fields, CREATED, record_id="c1")], run=1, settled=[claim.key])
    found = second.claim(dest, 2, claim, take_over_unknown=False).found
    assert found is not None and (found.answer, found.record_id) == (CREATED, "c1")


def test_a_released_claim_lets_the_next_run_send_the_row(opener) -> None:
    """Nothing was created (the API refused the row, or it was never sent): no entry, and the
    claim ends, so another run may send it."""
    first, dest = started(opener, 1)
    second, _ = started(opener, 2)
    _, claim = keyless("Bo")
    assert first.claim(dest, 1, claim, take_over_unknown=False).claimed
    first.record(dest, [], run=1, settled=[claim.key])
    assert second.claim(dest, 2, claim, take_over_unknown=False).claimed


def test_a_dead_runs_claims_become_outcome_unknown(opener) -> None:
    first, dest = started(opener, 1)
    second, _ = started(opener, 2)
    _, claim = keyless("Cy")
    assert first.claim(dest, 1, claim, take_over_unknown=False).claimed
    first.close()
    assert not second.alive(1)
    assert second.reap(1) == 1
    found = second.claim(dest, 2, claim, take_over_unknown=False).found
    assert found is not None and (found.answer, found.file, found.row) == \
        (UNKNOWN, "night.csv", 2)
    assert second.claim(dest, 2, claim, take_over_unknown=found.entry).claimed, \
        "--retry-unknown"


def test_a_new_run_reaps_the_runs_that_died(opener) -> None:
    first, dest = started(opener, 1)
    _, claim = keyless("Di")
    assert first.claim(dest, 1, claim, take_over_unknown=False).claimed
    first.close()
    second, _ = started(opener, 2)
    found = second.lookup(dest, [claim.key])
    assert found[claim.key].answer == UNKNOWN


def test_a_run_that_ends_turns_its_unsettled_claims_into_unknowns(opener) -> None:
    first, dest = started(opener, 1)
    second, _ = started(opener, 2)
    _, claim = keyless("Ed")
    assert first.claim(dest, 1, claim, take_over_unknown=False).claimed
    first.end_run(1)
    assert second.lookup(dest, [claim.key])[claim.key].answer == UNKNOWN
    assert not second.alive(1)


def test_identical_rows_are_claimed_by_occurrence(opener) -> None:
    """The n-th row with the same fields in one export is the n-th in another: two runs of a
    cumulative export claim the same keys, and no claim covers two rows of one run."""
    first, dest = started(opener, 1)
    second, _ = started(opener, 2)
    _, once = keyless("Fa", row=2)
    _, twice = keyless("Fa", row=3, occurrence=2)
    assert first.claim(dest, 1, once, take_over_unknown=False).claimed
    assert first.claim(dest, 1, twice, take_over_unknown=False).claimed
    assert second.claim(dest, 2, twice, take_over_unknown=False).holder == 1


def test_a_silent_run_is_dead_even_if_its_lock_seems_held(opener) -> None:
    """A host cut off from the network may keep its PostgreSQL session for hours: the
    heartbeat decides then."""
    first, _ = started(opener, 1)
    second, _ = started(opener, 2)
    with second._write() as db:  # type: ignore[attr-defined]
        db.execute("UPDATE ledger_runs SET beat = beat - 3600000 WHERE id = 1")
    assert not second.alive(1)
    first.beat(1)
    assert second.alive(1)


def test_a_version_2_ledger_is_upgraded_in_place(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "old.sqlite3"
    open_store(str(path)).close()
    with sqlite3.connect(path) as db:
        db.execute("DROP TABLE ledger_claims")
        db.execute("DROP TABLE ledger_runs")
        db.execute("UPDATE ledger_meta SET value = '2' WHERE name = 'schema'")
    store = open_store(str(path))
    try:
        store.start_run(destination(store), 5, "r.csv")
        store.end_run(5)
    finally:
        store.close()
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT value FROM ledger_meta").fetchone() == ("3",)


class ClaimsModel(RuleBasedStateMachine):
    """Runs come and go (some die mid-send) while sending the same keyless rows; the server
    stores a record whenever a request that reached it was not refused. However the steps
    interleave, no row is ever stored twice, and no two live runs hold one row's claim."""

    runs = Bundle("runs")
    opener: Opener
    examples = 0
    """Counts the examples, so each has people of its own in the one ledger they share."""

    @initialize()
    def start(self) -> None:
        self.stores: dict[int, LedgerStore] = {}
        self.sending: dict[int, set[int]] = {}
        self.stored: dict[int, int] = {}
        self.dest = 0
        ClaimsModel.examples += 1
        self.next_run = ClaimsModel.examples * 1000
        self.people = f"e{ClaimsModel.examples}-"

    @rule(target=runs)
    def begin_run(self) -> int:
        run, self.next_run = self.next_run, self.next_run + 1
        store = type(self).opener()
        self.dest = destination(store)
        store.start_run(self.dest, run, f"r{run}.csv")
        self.stores[run], self.sending[run] = store, set()
        return run

    @rule(run=runs, row=st.integers(0, 3))
    def send(self, run: int, row: int) -> None:
        if run not in self.stores or row in self.sending[run]:
            return
        store = self.stores[run]
        claim = keyless(self.people + str(row), row)[1]
        answer = store.claim(self.dest, run, claim, take_over_unknown=False)
        if answer.holder is not None and not store.alive(answer.holder):
            store.reap(answer.holder)
        elif answer.claimed:
            self.sending[run].add(row)

    @rule(run=runs, row=st.integers(0, 3), result=st.sampled_from(["201", "400", "lost"]))
    def answer(self, run: int, row: int, result: str) -> None:
        if run not in self.stores or row not in self.sending[run]:
            return
        self.sending[run].discard(row)
        fields, claim = keyless(self.people + str(row), row)
        if result != "400":
            self.stored[row] = self.stored.get(row, 0) + 1
        entries = {"201": [entry(fields, CREATED, record_id=f"c{row}")], "400": [],
                   "lost": [entry(fields, UNKNOWN, record_id="")]}[result]
        self.stores[run].record(self.dest, entries, run=run, settled=[claim.key])

    @rule(run=runs, reached=st.booleans())
    def die(self, run: int, reached: bool) -> None:
        """Killed mid-send: the requests in flight may or may not have reached the server."""
        if run not in self.stores:
            return
        for row in self.sending.pop(run):
            self.stored[row] = self.stored.get(row, 0) + reached
        self.stores.pop(run).close()

    @invariant()
    def nothing_is_stored_twice(self) -> None:
        assert all(count <= 1 for count in getattr(self, "stored", {}).values())

    @invariant()
    def one_live_sender_per_row(self) -> None:
        rows = [row for sending in getattr(self, "sending", {}).values() for row in sending]
        assert len(rows) == len(set(rows))

    def teardown(self) -> None:
        for store in getattr(self, "stores", {}).values():
            store.close()


@pytest.mark.parametrize("examples", [30, pytest.param(400, marks=pytest.mark.slow)])
def test_claims_model(opener, examples: int, request: pytest.FixtureRequest) -> None:
    """A fast search in every run (fewer examples on PostgreSQL, whose connections cost more;
    the model is the same); ``pytest -m slow tests/test_ledger_claims.py`` searches longer."""
    ClaimsModel.opener = staticmethod(opener)  # type: ignore[assignment]
    if request.node.callspec.params["opener"] == "postgres" and examples == 30:
        examples = 12
    ClaimsModel.TestCase.settings = settings(
        max_examples=examples, stateful_step_count=25, deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
    ClaimsModel.TestCase("runTest").runTest()
