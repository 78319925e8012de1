"""Values no one can see: invisible characters in keys, ``="02134"`` cells, mangled numbers."""

from pathlib import Path

import pytest

from importer.sandbox import Sandbox
from tests.conftest import TOKEN, read_results

MAPPING = ("version: 1\ncustom_fields: [postal_code, notes]\nfields:\n"
           "  first_name: Name\n  email: Email\n  external_id: Id\n"
           "  phone: Phone\n  postal_code: Zip\n  notes: Notes\n")
FIELDS = ("phone", "postal_code", "notes")


def _run(cli, tmp_path: Path, text: str) -> tuple[dict[int, dict[str, str]], list[dict]]:
    export = tmp_path / "e.csv"
    export.write_text(text, encoding="utf-8")
    mapping = tmp_path / "m.yaml"
    mapping.write_text(MAPPING, encoding="utf-8")
    with Sandbox(tmp_path / "db", token=TOKEN, fields=FIELDS) as api:
        result = cli("run", export, "--mapping", mapping, "--api-url", api.url, "--results",
                     tmp_path / "r.csv")
        records = api.store.records()
    assert result.code == 0, result.err
    return {int(r["row"]): r for r in read_results(tmp_path / "r.csv")}, records


@pytest.mark.parametrize(("column", "value", "character"), [
    ("Email", "erin.green\u200b@example.com", "U+200B zero width space"),
    ("Email", "\ufefferin@example.com", "U+FEFF zero width no-break space"),
    ("Email", "erin@exam\u00adple.com", "U+00AD soft hyphen"),
    ("Id", "A-\u200e1001", "U+200E left-to-right mark"),
    ("Id", "A-1001\u2060", "U+2060 word joiner"),
])
def test_invisible_character_in_a_key_makes_the_row_invalid(column: str, value: str,
                                                            character: str, cli,
                                                            tmp_path: Path) -> None:
    values = {"Name": "Erin", "Email": "erin.green@example.com", "Id": "A-1001"}
    values[column] = value
    text = "Name,Email,Id,Phone,Zip,Notes\n" + ",".join(values.values()) + ",,,\n"
    rows, records = _run(cli, tmp_path, text)
    assert rows[2]["status"] == "invalid"
    assert rows[2]["error_code"] == "invisible-character"
    assert character in rows[2]["error"]
    assert records == []


def test_text_an_export_lost_makes_the_row_invalid_wherever_it_is(cli, tmp_path: Path) -> None:
    """LibreOffice saving "Ана Петрова" to a Windows-1252 CSV writes the low byte of each letter:
    "\x10=0", "\x1f5B@>20". No spreadsheet shows those controls, and the name is already lost;
    tabs and line breaks inside cells are fine."""
    rows, records = _run(cli, tmp_path, 'Name,Email,Id,Phone,Zip,Notes\n'
                         '\x10=0,,,,01001,keyless\n'
                         'Bea,b@x.io,,,,"two\tcolumns\nand two lines"\n'
                         'Cy,c@x.io,,,,bell\x07\n')
    assert [(r["status"], r["error_code"]) for r in rows.values()] == [
        ("invalid", "control-character"), ("created", ""), ("invalid", "control-character")]
    assert "first_name '\\x10=0' holds the control character U+0010" in rows[2]["error"]
    assert "notes 'bell\\x07' holds the control character U+0007" in rows[4]["error"]
    assert [r["first_name"] for r in records] == ["Bea"]


def test_names_keep_the_joiners_their_script_needs(cli, tmp_path: Path) -> None:
    """Persian "Mehrnoosh" with a zero-width non-joiner, Hindi with a zero-width joiner."""
    persian, hindi = "مهر\u200cنوش", "क्\u200dष"
    rows, records = _run(cli, tmp_path, "Name,Email,Id,Phone,Zip,Notes\n"
                         f"{persian},m@example.com,,,,\n{hindi},h@example.com,,,,\n")
    assert [r["status"] for r in rows.values()] == ["created", "created"]
    assert sorted(r["first_name"] for r in records) == sorted([persian, hindi])


def test_keep_as_text_cells_are_sent_as_excel_shows_them(cli, tmp_path: Path) -> None:
    rows, records = _run(cli, tmp_path, 'Name,Email,Id,Phone,Zip,Notes\n'
                         'Ada,a@x.io,="000457",,="02134",\n'
                         '"Bob",b@x.io,,,"=""00501""","=""say """"hi"""""""\n'
                         'Cy,c@x.io,,,,=SUM(A1)\n')
    assert [r["status"] for r in rows.values()] == ["created"] * 3
    by_name = {r["first_name"]: r for r in records}
    assert by_name["Ada"]["postal_code"] == "02134"
    assert by_name["Ada"]["external_id"] == "000457"
    assert by_name["Bob"]["postal_code"] == "00501"
    assert by_name["Bob"]["notes"] == 'say "hi"'
    assert by_name["Cy"]["notes"] == "=SUM(A1)"


def test_scientific_notation_in_a_phone_or_id_is_number_mangled(cli, tmp_path: Path) -> None:
    rows, records = _run(cli, tmp_path, "Name,Email,Id,Phone,Zip,Notes\n"
                         "Ada,a@x.io,,4.47701E+11,,\n"
                         "Bob,b@x.io,1.23457e+14,,,\n"
                         "Cy,c@x.io,,+44 7701 234567,,1E5 is fine in notes\n"
                         "Di,d@x.io,,,,2.5E+3\n")
    assert rows[2]["error_code"] == rows[3]["error_code"] == "number-mangled"
    assert "phone '4.47701E+11' is a number in scientific notation" in rows[2]["error"]
    assert "format the column as Text" in rows[2]["error"]
    assert rows[4]["status"] == rows[5]["status"] == "created"
    assert sorted(r["first_name"] for r in records) == ["Cy", "Di"]
