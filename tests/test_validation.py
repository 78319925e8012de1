"""Row checks: identity, email, and duplicates within the file across any distance."""

import numpy as np
import pytest

from importer.mapping.binding import MappedBatch
from importer.rows.keyindex import KeyIndex, fingerprints
from importer.rows.validation import Validator


def batch(start: int, **columns: list[str | None]) -> MappedBatch:
    size = len(next(iter(columns.values())))
    return MappedBatch(list(range(start, start + size)), dict(columns))


def codes(mapped: MappedBatch) -> dict[int, tuple[str, str]]:
    return {mapped.rows[i]: (str(p.code), p.message) for i, p in mapped.problems.items()}


def test_identity_and_email() -> None:
    validator = Validator(("email", "first_name", "last_name"), {"email": "E-mail"})
    mapped = batch(2, email=["a@x.io", None, "bob@", "a@x.io; b@y.io"],
                   first_name=[None, None, "Bob", "Al"])
    validator.check(mapped)
    assert codes(mapped) == {
        3: ("missing-identity", "no value for any of email (column 'E-mail'), first_name, "
                                "last_name; the API needs at least one of them"),
        4: ("invalid-email", "email 'bob@' is not an email address"),
        5: ("invalid-email", "email 'a@x.io; b@y.io' is not an email address"),
    }


def test_duplicates_are_found_across_batches_and_only_sent_rows_register_keys() -> None:
    validator = Validator(("email",), {})
    first = batch(2, email=["A@x.io", "bad@", "c@x.io"], external_id=["1", "2", "3"])
    validator.check(first)
    second = batch(10_002, email=["a@X.IO", "bad@x.io", "d@x.io", "d@x.io", "e@x.io"],
                   external_id=["9", "2", "3", "4", "4"])
    validator.check(second)
    assert codes(first) == {3: ("invalid-email", "email 'bad@' is not an email address")}
    assert codes(second) == {
        10002: ("duplicate-in-file", "same email as row 2"),
        10004: ("duplicate-in-file", "same external_id as row 4"),
        10006: ("duplicate-in-file", "same external_id as row 10005"),
    }


def test_a_duplicate_does_not_claim_its_other_keys() -> None:
    validator = Validator(("email",), {})
    mapped = batch(2, email=["a@x.io", "a@x.io", "b@x.io"], external_id=["1", "2", "2"])
    validator.check(mapped)
    assert codes(mapped) == {3: ("duplicate-in-file", "same email as row 2")}


@pytest.mark.parametrize("batches", [1, 7, 300])
def test_key_index_remembers_the_first_row_through_merges(batches: int) -> None:
    index = KeyIndex()
    for b in range(batches):
        keys = fingerprints([f"k{b}-{i}" for i in range(1000)])
        assert not index.first_rows(keys).any()
        index.add(keys, np.arange(1000, dtype=np.int32) + b * 1000 + 2)
    probe = [f"k{b}-{i}" for b in (0, batches - 1) for i in (0, 999)] + ["never"]
    last = (batches - 1) * 1000
    assert index.first_rows(fingerprints(probe)).tolist() == [2, 1001, last + 2, last + 1001, 0]
    assert len(index) == batches * 1000
