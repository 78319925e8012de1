"""import_rows and import_frame: rows in memory get exactly a file's guarantees.

The same invariants as ``test_reliability`` (every row once, nothing doubled, every record
exact) are checked against the sandbox, with faults; values follow the strict rules of
``importer.readers.records``, checked value by value and as properties.
"""

import datetime as dt
import decimal
import math
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from importer import (
    InputError,
    MappingError,
    ResumeError,
    Status,
    import_frame,
    import_rows,
    results_frame,
)
from importer.readers.records import Unusable, value_text
from tests.conftest import PLAIN_MAPPING, TOKEN, dump, read_results, records
from tests.test_reliability import check_invariants, make_export

ROOT = Path(__file__).resolve().parent.parent
MAPPING = PLAIN_MAPPING.replace("[postal_code]", "[postal_code, notes, signup_date]") + (
    "  phone: Phone\n  notes: Notes\n  signup_date: Signed up\n")


@pytest.fixture
def env() -> dict[str, str]:
    """The environment with the token; its ROUTERA_LEDGER is the test's private ledger."""
    return {**os.environ, "ROUTERA_API_TOKEN": TOKEN}


@pytest.fixture
def mapping(tmp_path: Path) -> Path:
    path = tmp_path / "m.yaml"
    path.write_text(MAPPING, encoding="utf-8")
    return path


def test_a_frame_reaches_the_api_exactly_as_it_was(sandbox, env, mapping: Path,
                                                   tmp_path: Path) -> None:
    frame = pd.DataFrame({
        "Customer ID": pd.array([2134, None, 7], dtype="Int64"),
        "First Name": ["Null", "Zoë", None],
        "Last Name": ["  padded ", "NA", "x"],  # trimmed, as a file's cells are
        "Email": ["a@x.io", float("nan"), "c@x.io"],
        "Zip": ["02134", "nan", "00000"],
        "Phone": [4915112345678.0, float("nan"), 123.0],
        "Notes": [1.5, 0.1 + 0.2, 12.0],
        "Signed up": pd.to_datetime(["2024-01-02 03:04:05", None, "2024-12-31 00:00:00"]),
    })
    summary = import_frame(frame, mapping=mapping, results=tmp_path / "r.csv",
                           api_url=sandbox.url, environ=env)
    assert summary.exit_code == 0 and summary.counts[Status.CREATED] == 3
    assert sorted(records(sandbox), key=dump) == sorted([
        {"external_id": "2134", "first_name": "Null", "last_name": "padded",
         "email": "a@x.io", "postal_code": "02134", "phone": "4915112345678", "notes": "1.5",
         "signup_date": "2024-01-02T03:04:05"},
        {"first_name": "Zoë", "last_name": "NA", "postal_code": "nan", "notes": "0.3"},
        {"external_id": "7", "last_name": "x", "email": "c@x.io", "postal_code": "00000",
         "phone": "123", "notes": "12", "signup_date": "2024-12-31T00:00:00"},
    ], key=dump)
    assert [r["row"] for r in read_results(tmp_path / "r.csv")] == ["2", "3", "4"]


def test_floats_that_cannot_be_identifiers_make_the_row_invalid(sandbox, env, mapping: Path,
                                                                tmp_path: Path) -> None:
    frame = pd.DataFrame({"Customer ID": [1.0e19, 12.5, 3.0], "Email": ["a@x.io", "b@x.io",
                                                                         "c@x.io"],
                          "Notes": [1.0e19, 12.5, 3.0]})
    summary = import_frame(frame, mapping=_mapping(tmp_path, "external_id: Customer ID",
                                                   "email: Email", "notes: Notes"),
                           results=tmp_path / "r.csv", api_url=sandbox.url, environ=env)
    rows = read_results(tmp_path / "r.csv")
    assert [(r["status"], r["error_code"]) for r in rows] == [
        ("invalid", "invalid-value"), ("invalid", "invalid-value"), ("created", "")]
    assert "has more than 15 digits, so it is not exact" in rows[0]["error"]
    assert rows[1]["error"].startswith("external_id: column 'Customer ID': the number 12.5 has "
                                       "a fraction, so it is not an identifier")
    assert records(sandbox) == [{"external_id": "3", "email": "c@x.io", "notes": "3"}]
    assert summary.counts[Status.INVALID] == 2


def test_a_fraction_is_fine_where_no_identifier_is_expected(sandbox, env, tmp_path: Path) -> None:
    import_rows([{"Email": "a@x.io", "Notes": 12.5}], results=tmp_path / "r.csv",
                mapping=_mapping(tmp_path, "email: Email", "notes: Notes"),
                api_url=sandbox.url, environ=env)
    assert records(sandbox) == [{"email": "a@x.io", "notes": "12.5"}]


def test_faulty_server_rows_in_memory_every_row_once_and_nothing_doubled(
        make_sandbox, env, tmp_path: Path) -> None:
    """A one-pass generator through a faulty server, then a resume from a list of the same
    rows: every row once, nothing doubled, every record exact (timeouts under a loaded machine
    may leave keyed rows unknown after the first run; the resume settles them)."""
    api = make_sandbox(fail_rate=0.1, drop_rate=0.04, slow_rate=0.03, slow_seconds=1.2, seed=3)
    rows, expected = _rows(tmp_path, 150)
    (tmp_path / "m.yaml").write_text(PLAIN_MAPPING, encoding="utf-8")
    options = {"mapping": tmp_path / "m.yaml", "results": tmp_path / "r.csv",
               "api_url": api.url, "environ": env, "concurrency": 16,
               "timeouts": _timeouts(0.6)}
    first = import_rows(iter(rows), **options)
    assert first.rows == 150, first
    assert api.stats[500] and api.stats[0], "the faults were injected"
    options["timeouts"] = _timeouts(30.0)  # settle what load or faults left open
    again = import_rows(rows, resume=True, **options)
    assert "resumed:" in " ".join(again.notes), again
    counts = check_invariants(tmp_path / "r.csv", api, expected)
    assert again.exit_code == (1 if counts[("failed", "outcome-unknown")] else 0), again


def test_resume_knows_the_data_by_its_content(sandbox, env, tmp_path: Path) -> None:
    rows, _ = _rows(tmp_path, 6)
    (tmp_path / "m.yaml").write_text(PLAIN_MAPPING, encoding="utf-8")
    options = {"mapping": tmp_path / "m.yaml", "results": tmp_path / "r.csv",
               "api_url": sandbox.url, "environ": env}
    assert import_rows(rows, **options).exit_code == 0
    same = import_frame(pd.DataFrame(rows), resume=True, **options)
    assert same.notes == ["resumed: 6 rows kept from the earlier run"]
    changed = [dict(row) for row in rows]
    changed[3]["First Name"] = "Changed"
    with pytest.raises(ResumeError, match="cannot resume: the input file changed"):
        import_rows(changed, resume=True, **options)
    with pytest.raises(ResumeError, match="cannot resume: the input file changed"):
        import_rows(list(reversed(rows)), resume=True, **options)
    assert len(sandbox.store.records()) == 6


def test_the_mapping_is_checked_before_a_row_is_read(tmp_path: Path) -> None:
    def untouchable() -> Iterator[dict[str, object]]:
        raise AssertionError("read")
        yield {}

    with pytest.raises(MappingError, match="'E-mail', which is not in"):
        import_rows(untouchable(), columns=["Email"], dry_run=True, results=tmp_path / "r.csv",
                    mapping=_mapping(tmp_path, "email: E-mail"))


def test_a_record_with_an_unknown_key_stops_before_anything_is_sent(sandbox, env,
                                                                    tmp_path: Path) -> None:
    rows = [{"Email": "a@x.io"}, {"Email": "b@x.io", "Emial": "typo@x.io"}]
    with pytest.raises(InputError, match="row 3 has the key 'Emial', which the first record"):
        import_rows(rows, mapping=_mapping(tmp_path, "email: Email"), api_url=sandbox.url,
                    results=tmp_path / "r.csv", environ=env)
    assert sandbox.stats == {}


def test_records_may_use_keys_that_are_not_text(tmp_path: Path) -> None:
    rows = [{1: "a@x.io", 2: None}, {2: "B"}]
    import_rows(rows, mapping=_mapping(tmp_path, "email: '1'", "first_name: '2'"),
                results=tmp_path / "r.csv", dry_run=True, preview=2)
    assert [r["status"] for r in read_results(tmp_path / "r.csv")] == ["ready", "ready"]


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".xlsx"])
def test_results_read_back_as_a_frame(tmp_path: Path, suffix: str) -> None:
    rows = [{"Email": "=1+1@x.io", "Name": "Ann"}, {"Email": "bad", "Name": "Bob"}]
    import_rows(rows, mapping=_mapping(tmp_path, "email: Email", "first_name: Name"),
                results=tmp_path / f"r{suffix}", dry_run=True)
    frame = results_frame(tmp_path / f"r{suffix}")
    assert frame["row"].tolist() == [2, 3]
    assert frame["status"].tolist() == ["ready", "invalid"]
    assert frame["email"].tolist() == ["=1+1@x.io", "bad"]
    assert frame["http_status"].isna().all() and frame["id"].tolist() == ["", ""]


def test_file_imports_never_load_pandas(tmp_path: Path) -> None:
    path = tmp_path / "e.csv"
    make_export(path, 3)
    (tmp_path / "m.yaml").write_text(PLAIN_MAPPING, encoding="utf-8")
    code = ("import sys; from importer.cli import main; "
            f"main(['run', {str(path)!r}, '--mapping', {str(tmp_path / 'm.yaml')!r}, "
            f"'--dry-run', '--quiet', '--results', {str(tmp_path / 'r.csv')!r}]); "
            "assert 'pandas' not in sys.modules, 'pandas was imported'")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, capture_output=True)


@pytest.mark.parametrize(("value", "text"), [
    (None, ""), (float("nan"), ""), (pd.NA, ""), (pd.NaT, ""), ("", ""), ("007", "007"),
    (" a ", " a "), (True, "TRUE"), (10**20, "100000000000000000000"), (-3.0, "-3"),
    (0.1 + 0.2, "0.3"), (np.float32(0.1), "0.1"), (np.float16(1.5), "1.5"),
    (decimal.Decimal("1.50"), "1.50"), (decimal.Decimal("2E+3"), "2000"),
    (dt.date(2024, 2, 29), "2024-02-29"), (dt.time(7, 5), "07:05:00"),
    (pd.Timestamp("2024-01-02 03:04:05.123456789"), "2024-01-02T03:04:05.123456789"),
])
def test_value_text(value: object, text: str) -> None:
    assert value_text(value)[0] == text


@pytest.mark.parametrize("value", [[1], b"x", {"a": 1}, float("inf"), 1.0e15, object(),
                                   decimal.Decimal("-Infinity")])
def test_values_no_field_can_take(value: object) -> None:
    with pytest.raises(Unusable):
        value_text(value)


@given(st.integers())
def test_integers_are_their_digits(value: int) -> None:
    assert value_text(value) == (str(value), "")


@given(st.text())
def test_strings_pass_as_they_are(value: str) -> None:
    assert value_text(value) == (value, "")


@given(st.floats(allow_nan=False, allow_infinity=False).filter(lambda f: abs(f) < 1e15))
def test_a_float_is_sent_as_shown_and_only_whole_ones_can_be_identifiers(value: float) -> None:
    text, not_an_id = value_text(value)
    assert "e" not in text.lower() and "nan" not in text
    assert math.isclose(float(text), float(f"{value:.15g}"), rel_tol=1e-15, abs_tol=0)
    assert (not_an_id == "") == value.is_integer()


def _mapping(tmp_path: Path, *lines: str) -> Path:
    path = tmp_path / "mapping.yaml"
    path.write_text("version: 1\ncustom_fields: [notes]\nfields:\n"
                    + "".join(f"  {line}\n" for line in lines),
                    encoding="utf-8")
    return path


def _rows(tmp_path: Path, count: int) -> tuple[list[dict[str, object]],
                                              dict[str, dict[str, str]]]:
    """The rows of ``make_export``'s CSV as dicts (so both inputs are checked the same way)."""
    import csv

    path = tmp_path / "source.csv"
    expected = make_export(path, count)
    with path.open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f)), expected


def _timeouts(seconds: float):
    from importer.sending.client import Timeouts

    return Timeouts(seconds, seconds)


def test_options_that_only_make_sense_for_files_are_refused(tmp_path: Path) -> None:
    from importer import ConfigError

    with pytest.raises(ConfigError, match="sheet applies only to files"):
        import_rows([{"Email": "a@x.io"}], mapping=_mapping(tmp_path, "email: Email"),
                    results=tmp_path / "r.csv", dry_run=True, sheet="Contacts")
