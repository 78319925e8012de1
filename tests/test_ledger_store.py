"""The SQLite ledger store on its own: keys, 409 combinations, replacement, forgetting."""

import os
import sqlite3
import stat
import threading
from pathlib import Path

import pytest

from importer.ledger import LedgerError, default_location, open_store
from importer.ledger.fingerprints import changed_fields, destination, field_prints
from importer.ledger.sqlite import SqliteStore
from importer.ledger.store import CREATED, EXISTING, Selection
from tests.ledger_stores import check_unknown_facts_only_get_more_certain, entry, model_machine


@pytest.fixture
def store(tmp_path: Path):
    opened = SqliteStore(tmp_path / "ledger.sqlite3")
    yield opened
    opened.close()


def number(store, name: str = "https://api.routera.io/contacts") -> int:
    where = destination(name, "secret-token")
    found = store.destination_number(where.endpoint, where.token_print, where.digest,
                                     create=True)
    assert found is not None
    return found


def test_a_created_record_is_found_by_each_key_email_ignoring_case(store) -> None:
    dest = number(store)
    assert store.record(dest, [entry({"email": "Ada@Example.com", "external_id": "x1"})]) == 1
    found = store.lookup(dest, ["email:ada@example.com", "external_id:x1", "email:bob@x.org"])
    assert set(found) == {"email:ada@example.com", "external_id:x1"}
    assert found["external_id:x1"].record_id == "r1"
    assert found["external_id:x1"].file == "a.csv"


def test_a_409_with_several_keys_is_found_only_by_all_of_them(store) -> None:
    """The 409 says some key is taken, not which: a row sharing one key may still be new."""
    dest = number(store)
    e = entry({"email": "ada@example.com", "external_id": "x1"}, EXISTING)
    store.record(dest, [e])
    assert store.lookup(dest, ["email:ada@example.com", "external_id:x1"]) == {}
    assert list(store.lookup(dest, e.lookup_keys())) == e.lookup_keys()


def test_a_keyless_record_is_found_by_its_exact_fields_only(store) -> None:
    dest = number(store)
    e = entry({"first_name": "Ada", "last_name": "Lovelace"})
    store.record(dest, [e])
    assert e.lookup_keys()[0].startswith("fields:")
    assert list(store.lookup(dest, e.lookup_keys())) == e.lookup_keys()
    other = entry({"first_name": "Ada", "last_name": "Byron"})
    assert store.lookup(dest, other.lookup_keys()) == {}


def test_keys_already_held_are_kept_unless_a_fresh_201_replaces_them(store) -> None:
    dest = number(store)
    store.record(dest, [entry({"email": "ada@example.com"}, record_id="old")])
    assert store.record(dest, [entry({"email": "ada@example.com"}, record_id="again")]) == 0
    assert store.lookup(dest, ["email:ada@example.com"])["email:ada@example.com"].record_id \
        == "old"
    store.record(dest, [entry({"email": "ada@example.com"}, record_id="new", replaces=True)])
    assert store.lookup(dest, ["email:ada@example.com"])["email:ada@example.com"].record_id \
        == "new"
    assert store.count(dest, Selection()) == 1, "the replaced entry is gone"


def test_destinations_are_separate_and_hold_no_token(store, tmp_path: Path) -> None:
    a, b = number(store, "https://a/contacts"), number(store, "https://b/contacts")
    store.record(a, [entry({"email": "ada@example.com"})])
    assert store.lookup(b, ["email:ada@example.com"]) == {}
    assert [(d.endpoint, d.entries) for d in store.destinations()] == [
        ("https://a/contacts", 1), ("https://b/contacts", 0)]
    assert b"secret-token" not in (tmp_path / "ledger.sqlite3").read_bytes()


def test_forget_by_file_and_by_key(store) -> None:
    dest = number(store)
    store.record(dest, [entry({"email": "ada@example.com"}, file="a.csv"),
                        entry({"email": "bob@example.com", "external_id": "x2"}, file="b.csv"),
                        entry({"external_id": "x3"}, file="b.csv")])
    assert store.forget(dest, Selection(key="ADA@example.com")) == 1
    assert store.lookup(dest, ["email:ada@example.com"]) == {}
    assert store.count(dest, Selection(file="b.csv")) == 2
    assert store.forget(dest, Selection(file="b.csv")) == 2
    assert store.lookup(dest, ["external_id:x2", "email:bob@example.com", "external_id:x3"]) == {}
    assert store.count(dest, Selection()) == 0


def test_changed_fields_are_named() -> None:
    before = field_prints({"email": "a@x.org", "phone": "1", "city": "Oslo"})
    assert changed_fields(before, {"email": "a@x.org", "phone": "2", "company": "ACME"}) == [
        "city", "company", "phone"]


def test_the_file_is_private_and_in_wal_mode(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "ledger.sqlite3"
    SqliteStore(path).close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_an_unusable_path_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "dir.sqlite3").mkdir()
    with pytest.raises(LedgerError, match=r"ledger .*dir.sqlite3: cannot be opened"):
        open_store(str(tmp_path / "dir.sqlite3"))
    (tmp_path / "junk").write_bytes(b"not a database at all" * 100)
    with pytest.raises(LedgerError, match="cannot be opened"):
        open_store(str(tmp_path / "junk"))


def test_default_location_is_the_state_folder_unless_set() -> None:
    assert default_location({"ROUTERA_LEDGER": "/tmp/x.sqlite3"}) == "/tmp/x.sqlite3"
    home = default_location({})
    assert home.endswith(os.path.join("routera-import", "ledger.sqlite3"))


def test_concurrent_writers_lose_nothing(tmp_path: Path) -> None:
    """Two connections (as two runs would) writing batches at once: no 'database is locked'."""
    path = tmp_path / "ledger.sqlite3"
    stores = [SqliteStore(path), SqliteStore(path)]
    dest = number(stores[0])
    errors: list[BaseException] = []

    def write(store: SqliteStore, start: int) -> None:
        try:
            for batch in range(20):
                store.record(dest, [entry({"email": f"p{start + batch * 50 + i}@x.org"})
                                    for i in range(50)])
                store.lookup(dest, [f"email:p{start + i}@x.org" for i in range(200)])
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(s, n * 1000)) for n, s in enumerate(stores)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert stores[0].count(dest, Selection()) == 2000
    for store in stores:
        store.close()


def test_created_and_existing_answers_are_kept_apart() -> None:
    assert entry({"email": "a@x.org"}, CREATED).lookup_keys() == ["email:a@x.org"]
    assert entry({"email": "a@x.org"}, EXISTING).lookup_keys() == ["email:a@x.org"]


TestSqliteModel = model_machine(
    lambda: SqliteStore(Path(os.environ["ROUTERA_LEDGER"]))).TestCase


def test_a_run_finds_rows_by_any_key_and_409s_by_all_of_them(store) -> None:
    """The first lookup asks only each row's first key; rows not found ask with the others."""
    from importer.ledger.ledger import RunLedger

    where = destination("https://api.routera.io/contacts", "secret-token")
    dest = number(store)
    store.record(dest, [entry({"external_id": "x1", "first_name": "Ada"}, record_id="r-x1"),
                        entry({"email": "bob@example.com", "external_id": "x2"}, EXISTING,
                              record_id="")])
    ledger = RunLedger(store, where, "b.csv", consult=True, on_error=print)
    try:
        found = ledger.check([2, 3, 4, 5], [
            {"email": "new@example.com", "external_id": "x1", "first_name": "Ada"},
            {"email": "BOB@example.com", "external_id": "x2"},
            {"email": "bob@example.com"},
            {"external_id": "x1", "first_name": "Ada"}])
    finally:
        ledger.close()
    assert [o and (o.code, o.id) for o in found] == [
        ("changed-since-import", "r-x1"), ("changed-since-import", ""), None,
        ("imported-earlier", "r-x1")]
    assert found[0] is not None and "changed since: email;" in found[0].error
    assert found[1] is not None and found[1].error.startswith("found existing (HTTP 409) on ")
    assert "changed since: email;" in found[1].error, "the key matches ignoring case; the "\
        "value sent does not"


def test_an_unknown_outcome_is_upgraded_by_a_201_and_never_downgrades_one(store) -> None:
    check_unknown_facts_only_get_more_certain(store, number(store))


def test_a_jwt_destination_is_its_account_and_other_tokens_are_their_whole_print() -> None:
    import base64
    import json

    def jwt(claims: dict[str, object], header: object = None) -> str:
        def part(value: object) -> str:
            return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")
        return f"{part(header or {'alg': 'HS256'})}.{part(claims)}.sig{len(str(claims))}"

    url = "https://api.routera.io/contacts"
    base = {"iss": "https://auth/", "sub": "u1", "tenant_id": "t1"}
    first = destination(url, jwt({**base, "exp": 1}))
    assert destination(url, jwt({**base, "exp": 2, "jti": "x"})) == first
    assert destination(url, jwt({**base, "sub": "u2"})) == first, "the tenant, not the user"
    assert destination(url, jwt({**base, "tenant_id": "t2"})) != first
    assert destination(url, jwt({**base, "iss": "https://other/"})) != first
    assert first.token_print.startswith("jwt:") and "t1" not in first.token_print
    by_subject = destination(url, jwt({"iss": "https://auth/", "sub": "u1", "exp": 1}))
    assert destination(url, jwt({"iss": "https://auth/", "sub": "u1", "exp": 9})) == by_subject
    assert destination(url, jwt({"iss": "https://auth/", "sub": "u2"})) != by_subject
    for opaque in ("secret-token", "a.b.c", jwt({"exp": 1}), jwt(base, header=["x"]),
                   jwt(base, header={"typ": "JWT"})):
        printed = destination(url, opaque).token_print
        assert not printed.startswith("jwt:") and len(printed) == 16
    assert destination(url, "tok-1") != destination(url, "tok-2")


def test_a_record_this_run_created_never_answers_for_another_of_its_rows(store) -> None:
    """The second "John Smith" of a run, checked after the first one's 201 is written, is
    still sent: it is the second occurrence, and only a second record would answer for it."""
    from importer.ledger.ledger import RunLedger
    from importer.rows.outcomes import Outcome

    john = {"first_name": "John", "last_name": "Smith"}
    ledger = RunLedger(store, destination("https://api.routera.io/contacts", "t"), "big.csv",
                       consult=True, on_error=print)
    try:
        assert ledger.check([12], [john]) == [None]
        ledger.record(john, Outcome.created(12, "r12", 201), fresh=True)
        ledger._flush_now()
        assert ledger.check([4602], [john]) == [None]
        ledger.record(john, Outcome.created(4602, "r4602", 201), fresh=True)
    finally:
        ledger.close()
    again = RunLedger(store, destination("https://api.routera.io/contacts", "t"), "big.csv",
                      consult=True, on_error=print)
    try:
        found = again.check([12, 4602, 5000], [john, john, john])
    finally:
        again.close()
    assert [o and o.id for o in found] == ["r12", "r4602", None]
