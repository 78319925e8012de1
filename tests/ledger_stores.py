"""Shared checks for every ledger store: the SQLite and the PostgreSQL tests run the same ones."""

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from importer.ledger import open_store
from importer.ledger.fingerprints import fields_print, key_values
from importer.ledger.store import CREATED, EXISTING, UNKNOWN, Entry, LedgerStore, Selection

Opener = Callable[[], LedgerStore]


@pytest.fixture(params=["sqlite", "postgres"])
def opener(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Opener]:
    """Opens another connection to one ledger; every store opened is closed at the end."""
    location = (str(tmp_path / "ledger.sqlite3") if request.param == "sqlite"
                else request.getfixturevalue("postgres_url"))
    opened: list[LedgerStore] = []

    def open_one() -> LedgerStore:
        opened.append(open_store(location))
        return opened[-1]

    yield open_one
    for store in opened:
        store.close()


EMAILS = ["ada@example.com", "ADA@example.com", "bob@example.com", ""]
EXTERNAL = ["x1", "x2", ""]


def entry(fields: dict[str, str], answer: str = CREATED, *, replaces: bool = False,
          file: str = "a.csv", row: int = 2, record_id: str = "r1") -> Entry:
    from importer.ledger.fingerprints import field_prints

    return Entry(key_values(fields), fields_print(fields), field_prints(fields), record_id,
                 answer, "2026-11-20T02:30:00Z", file, row, replaces=replaces)


def check_unknown_facts_only_get_more_certain(store: LedgerStore, destination: int) -> None:
    """An outcome-unknown fact is upgraded by a later 201 (fresh or carried over from a journal),
    and never overwrites a settled answer."""
    maybe = {"first_name": "May", "last_name": "Be"}
    store.record(destination, [entry(maybe, UNKNOWN, record_id="")])
    key = entry(maybe).lookup_keys()[0]
    assert store.lookup(destination, [key])[key].answer == UNKNOWN
    store.record(destination, [entry(maybe, CREATED, record_id="r9")])
    assert (store.lookup(destination, [key])[key].answer,
            store.lookup(destination, [key])[key].record_id) == (CREATED, "r9")
    store.record(destination, [entry(maybe, UNKNOWN, record_id="")])
    assert store.lookup(destination, [key])[key].record_id == "r9", "nothing downgrades"


def model_machine(open_store: Callable[[], LedgerStore],
                  examples: int = 25) -> type[RuleBasedStateMachine]:
    """A stateful test: random records and forgets against a dict model of the key rules."""

    class LedgerModel(RuleBasedStateMachine):
        @initialize()
        def start(self) -> None:
            self.store = open_store()
            self.destination = self.store.destination_number("https://api/x", "t", "d-model",
                                                             create=True) or 0
            self.store.forget(self.destination, Selection())
            self.keys: dict[str, int] = {}
            self.entries: dict[int, Entry] = {}

        @rule(email=st.sampled_from(EMAILS), external=st.sampled_from(EXTERNAL),
              name=st.sampled_from(["Ada", "Bob"]), answer=st.sampled_from([CREATED, EXISTING]),
              replaces=st.booleans())
        def record(self, email: str, external: str, name: str, answer: str,
                   replaces: bool) -> None:
            fields = {k: v for k, v in (("email", email), ("external_id", external),
                                        ("first_name", name)) if v}
            new = entry(fields, answer, replaces=replaces and answer == CREATED)
            self.store.record(self.destination, [new])
            for key in new.lookup_keys():
                if new.replaces or key not in self.keys:
                    self.keys[key] = new.id
            self.entries[new.id] = new

        @rule(email=st.sampled_from(EMAILS[:3]))
        def forget_key(self, email: str) -> None:
            self.store.forget(self.destination, Selection(key=email))
            gone = {i for i, e in self.entries.items() if e.keys[0] == email.casefold()}
            self.keys = {k: i for k, i in self.keys.items() if i not in gone}

        @invariant()
        def lookups_match_the_model(self) -> None:
            if not hasattr(self, "store"):
                return
            wanted = [*sorted(self.keys), "email:nobody@example.com"]
            found = self.store.lookup(self.destination, wanted)
            assert {k: f.entry for k, f in found.items()} == self.keys
            held = set(self.keys.values())
            assert self.store.count(self.destination, Selection()) == len(held)

        def teardown(self) -> None:
            if hasattr(self, "store"):
                self.store.close()

    LedgerModel.TestCase.settings = settings(
        max_examples=examples, stateful_step_count=12, deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
    return LedgerModel
