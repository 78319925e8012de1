"""The PostgreSQL ledger store: the same rules as SQLite, against a real server."""

import threading

import pytest

from importer.ledger import LedgerError, open_store
from importer.ledger.postgres import PostgresStore, redacted
from importer.ledger.store import EXISTING, Selection
from tests.ledger_stores import check_unknown_facts_only_get_more_certain, entry, model_machine


@pytest.fixture
def store(postgres_url: str):
    opened = open_store(postgres_url)
    assert isinstance(opened, PostgresStore)
    yield opened
    opened.close()


def number(store) -> int:
    found = store.destination_number("https://api/contacts", "t", "digest", create=True)
    assert found is not None
    return found


def test_keys_replacement_and_forgetting(store) -> None:
    dest = number(store)
    store.record(dest, [entry({"email": "Ada@example.com", "external_id": "x1"},
                              record_id="old")])
    found = store.lookup(dest, ["email:ada@example.com", "external_id:x1"])
    assert {f.record_id for f in found.values()} == {"old"}
    store.record(dest, [entry({"email": "ada@example.com"}, record_id="new", replaces=True)])
    assert store.lookup(dest, ["email:ada@example.com"])["email:ada@example.com"].record_id \
        == "new"
    assert store.count(dest, Selection()) == 2, "the old entry still holds external_id:x1"
    existing = entry({"email": "bob@example.com", "external_id": "x2"}, EXISTING, file="b.csv")
    store.record(dest, [existing])
    assert store.lookup(dest, ["email:bob@example.com"]) == {}
    assert list(store.lookup(dest, existing.lookup_keys())) == existing.lookup_keys()
    assert store.forget(dest, Selection(file="b.csv")) == 1
    assert store.forget(dest, Selection(key="x1")) == 1
    assert [d.entries for d in store.destinations()] == [1]


def test_concurrent_writers_from_two_connections(postgres_url: str) -> None:
    stores = [open_store(postgres_url), open_store(postgres_url)]
    dest = number(stores[0])
    errors: list[BaseException] = []

    def write(store, start: int) -> None:
        try:
            for batch in range(10):
                store.record(dest, [entry({"email": f"p{(start + batch * 40 + i) % 600}@x.org"})
                                    for i in range(40)])
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(s, n * 200)) for n, s in enumerate(stores)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert stores[0].count(dest, Selection()) == 600, "overlapping keys are held once"
    for store in stores:
        store.close()


def test_an_unreachable_server_is_one_line_without_the_password() -> None:
    with pytest.raises(LedgerError) as error:
        open_store("postgresql://app:s3cret@127.0.0.1:9/ledger")
    assert "s3cret" not in str(error.value)
    assert "cannot connect" in str(error.value)
    assert redacted("postgresql://app:s3cret@db:5432/x") == "postgresql://app:***@db:5432/x"


class TestPostgresModel:
    """The stateful model test of ``ledger_stores``, on PostgreSQL."""

    def test_model(self, postgres_url: str) -> None:
        model_machine(lambda: open_store(postgres_url), examples=8).TestCase("runTest").runTest()


def test_an_unknown_outcome_is_upgraded_by_a_201_and_never_downgrades_one(store) -> None:
    check_unknown_facts_only_get_more_certain(store, number(store))
