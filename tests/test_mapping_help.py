"""Mapping help (issue 12 part 4): real export headers, similarity with a confidence, and the
unquoted ``#`` that YAML takes for a comment."""

from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from importer.mapping.draft import _confidence, _text, draft
from tests.conftest import write_csv


@pytest.mark.parametrize(("header", "field"), [
    ("Country/Region", "country"),          # HubSpot
    ("Mailing City", "city"),               # Salesforce
    ("Mailing Country", "country"),
    ("Account Name", "company"),
    ("Email Address", "email"),             # Mailchimp
    ("First Name", "first_name"),
    ("Last Name", "last_name"),
    ("Member No", "external_id"),
])
def test_real_export_headers_match_a_field(header: str, field: str) -> None:
    result = draft([header])
    assert result.fields == [(field, header)]
    assert (result.matches[field].confidence, result.unmatched) == (100, [])


@pytest.mark.parametrize("header", ["Mailing Zip/Postal Code", "Postcode", "ZIP", "PLZ", "CP",
                                    "Zip Code"])
def test_postal_codes_match_the_custom_field_when_the_account_has_it(header: str) -> None:
    assert draft([header], ("postal_code",)).fields == [("postal_code", header)]
    without = draft([header])
    assert (without.fields, without.unmatched) == ([], [header])
    assert without.hints == {header: "postal_code"}


@pytest.mark.parametrize(("header", "field", "low", "high"), [
    ("Frist Name", "first_name", 85, 95),
    ("E-mail Adress", "email", 90, 99),
    ("Last Nme", "last_name", 90, 99),
    ("Phne", "phone", 80, 95),
])
def test_near_misses_are_matched_with_their_confidence(header: str, field: str, low: int,
                                                       high: int) -> None:
    result = draft([header])
    assert result.fields == [(field, header)]
    assert low <= result.matches[field].confidence <= high


@pytest.mark.parametrize("header", ["Lifecycle Stage", "Salutation", "OPTIN_TIME",
                                   "MEMBER_RATING", "Notes", "Lead Status", "Tags", "ID2"])
def test_unrelated_headers_stay_unmatched(header: str) -> None:
    assert draft([header]).unmatched == [header]


def test_init_shows_confidence_and_check_mapping_accepts_it(cli, tmp_path: Path) -> None:
    export = write_csv(tmp_path / "sf.csv",
                       "Account #,Frist Name,Last Name,Email Address,Mailing City,"
                       "Mailing Country,Mailing Zip/Postal Code,Lifecycle Stage\n"
                       "A-1,Ann,Lee,ann@example.com,Oslo,Norway,0150,lead\n")
    result = cli("init", export, "--fields", "postal_code")
    assert result.code == 0
    assert result.lines[3:13] == [
        "fields:",
        '  external_id: "Account #"  # 87% similar to \'accountid\': check it',
        "  first_name: Frist Name  # 88% similar to 'firstname': check it",
        "  last_name: Last Name  # 100% same name",
        "  email:  # 100% synonym",
        "    column: Email Address",
        "    transform: [trim, lower]",
        "  city: Mailing City  # 100% synonym",
        "  country: Mailing Country  # 100% synonym",
        "  postal_code: Mailing Zip/Postal Code  # 100% synonym",
    ]
    mapping = tmp_path / "m.yaml"
    mapping.write_text(result.out, encoding="utf-8")
    check = cli("check-mapping", mapping, export)
    assert check.code == 0, check.err
    assert "  not imported: Lifecycle Stage" in check.lines


def test_an_unquoted_hash_in_a_column_name_says_quote_it(cli, tmp_path: Path) -> None:
    export = write_csv(tmp_path / "e.csv", "Account # (old),Email\n1,a@example.com\n")
    mapping = tmp_path / "m.yaml"
    mapping.write_text("version: 1\nfields:\n  external_id: Account # (old)\n  email: Email\n")
    for command in (("check-mapping", mapping, export),
                    ("run", export, "--mapping", mapping, "--dry-run",
                     "--results", tmp_path / "r.csv")):
        result = cli(*command)
        assert (result.code, result.out) == (2, "")
        assert result.err == (
            f"routera-import: error: {mapping} line 3: field 'external_id' maps column "
            "'Account', which is not in e.csv, but 'Account # (old)' is: YAML reads ' #' as "
            "the start of a comment, so quote it: external_id: \"Account # (old)\"\n")
    mapping.write_text('version: 1\nfields:\n  external_id: "Account # (old)"\n  email: Email\n')
    assert cli("check-mapping", mapping, export).code == 0


HEADERS = st.lists(st.one_of(
    st.sampled_from(["Email", "E-mail", "First Name", "Frist Name", "Surname", "Account #",
                     "Mailing City", "City", "Country/Region", "ZIP", "Phone", "Mobile",
                     "Notes", "id", "Name", "Full Name", "Company", ""]),
    st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12)),
    max_size=12, unique=True)


@settings(max_examples=60, deadline=None)
@given(HEADERS)
def test_any_headers_give_a_mapping_that_reads_back(headers: list[str]) -> None:
    """Each header and each field used once, and the YAML keeps every header exactly."""
    result = draft(headers, ("postal_code",))
    names = [name for name, _ in result.fields]
    used = [header for _, header in result.fields]
    assert len(set(names)) == len(names) and len(set(used)) == len(used)
    assert set(used) | set(result.unmatched) | {result.split_name or ""} >= {h for h in headers
                                                                             if h}
    for name, header in result.fields:
        line = f"{name}: {_text(header)}{_confidence(result.matches[name])}"
        assert yaml.safe_load(line) == {name: header}
