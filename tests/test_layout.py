"""Rows a person sees are not contacts (titles, repeated headers, totals, footers) are never sent.

Both sides of the rule: the lines a report or a stacked table adds are ``invalid`` with the
``not-a-contact`` code; a lone real contact ("Cher", only a first name) is still created.
"""

from pathlib import Path

import pytest

from importer.readers import ReadOptions, open_table
from importer.readers.table import CHUNK_ROWS
from tests.conftest import read_results

SHEETS = Path(__file__).parent / "fixtures" / "sheets"
MAPPING = ("version: 1\nfields:\n  first_name: First Name\n  last_name: Last Name\n"
           "  email: Email\n")


def _marked(path: Path) -> dict[int, str]:
    """Row number -> the not-a-contact message ("" for a contact)."""
    table = open_table(path, ReadOptions())
    out = {}
    for batch in table.batches():
        for index, row in enumerate(batch.rows):
            problem = batch.problems.get(index)
            out[row] = problem.message if problem and problem.code == "not-a-contact" else ""
    return out


@pytest.mark.parametrize("suffix", ["xlsx", "ods", "xls"])
def test_stacked_tables_saved_by_libreoffice_send_only_the_contacts(suffix: str, cli, sandbox,
                                                                    tmp_path: Path) -> None:
    mapping = tmp_path / "m.yaml"
    mapping.write_text(MAPPING, encoding="utf-8")
    result = cli("run", SHEETS / f"stacked.{suffix}", "--mapping", mapping, "--api-url",
                 sandbox.url, "--results", tmp_path / "r.csv")
    assert result.code == 0, result.err
    rows = {int(r["row"]): r for r in read_results(tmp_path / "r.csv")}
    created = sorted(r for r, o in rows.items() if o["status"] == "created")
    assert created == [2, 3, 4, 9, 10]
    assert sorted(r["first_name"] for r in sandbox.store.records()) == [
        "Ada", "Alan", "Cher", "Grace", "Katherine"]
    not_contacts = {r: o for r, o in rows.items() if o["error_code"] == "not-a-contact"}
    assert sorted(not_contacts) == [5, 7, 8, 11, 13, 14]
    assert all(o["status"] == "invalid" for o in not_contacts.values())
    assert "a total or count line" in not_contacts[5]["error"]
    assert "'Q2 webinar leads' above a repeated header row: a section title" in \
        not_contacts[7]["error"]
    assert "repeats the header row" in not_contacts[8]["error"]
    assert "a footer" in not_contacts[14]["error"]
    assert "6 rows of the file are not contacts" in result.out


def test_salesforce_footer_with_first_name_first_is_not_created(tmp_path: Path) -> None:
    path = tmp_path / "report.csv"
    path.write_text(
        '"First Name","Last Name","Email"\n"Ada","Lovelace","ada@x.io"\n"Bob","Ng","bob@x.io"\n'
        '\n\n"Confidential Information - Do Not Distribute"\n'
        '"Copyright (c) 2000-2024 salesforce.com, inc. All rights reserved."\n',
        encoding="utf-8")
    marked = _marked(path)
    assert [r for r, m in marked.items() if m] == [6, 7]
    assert "in a block after the data, set off by an empty row: a footer" in marked[7]


@pytest.mark.parametrize(("text", "contacts"), [
    # Cher in the middle of the data, and a one-cell row at the end NOT set off by an empty row.
    ("First Name,Last Name,Email\nAda,L,a@x.io\nCher,,\nBob,N,b@x.io\nPrince,,\n", 4),
    # One-cell rows after an empty row, followed again by full rows: not a footer.
    ("First Name,Last Name,Email\nAda,L,a@x.io\n\nCher,,\nMadonna,,\nBob,N,b@x.io\n", 4),
    # A single-column export: every row has one cell, so nothing is a footer.
    ("Email\na@x.io\nb@x.io\n\nc@x.io\n", 3),
    # Words that only start like a total.
    ("First Name,Last Name,Email\nCount,Dracula,d@x.io\nTotally,Real,t@x.io\nSum,41,s@x.io\n", 3),
    # A one-cell row above an ordinary row is a contact, not a section title.
    ("First Name,Last Name,Email\nAda,L,a@x.io\nCher,,\nBob,N,b@x.io\n", 3),
])
def test_lone_real_contacts_stay_contacts(text: str, contacts: int, tmp_path: Path) -> None:
    path = tmp_path / "e.csv"
    path.write_text(text, encoding="utf-8")
    marked = _marked(path)
    assert [m for m in marked.values() if m] == []
    assert len(marked) == contacts


def test_total_lines_in_many_shapes(tmp_path: Path) -> None:
    path = tmp_path / "e.csv"
    path.write_text("First Name,Last Name,Amount\nAda,L,5\nTotal,,5\nSubtotal:,,5\n"
                    "Grand Total (2 records),,\"1,234.50\"\n,Sum,10\nBob,N,3\n",
                    encoding="utf-8")
    marked = _marked(path)
    assert [r for r, m in marked.items() if m] == [3, 4, 5, 6]


def test_a_german_report_total_with_euro_amounts(tmp_path: Path) -> None:
    """Found by attacking the reader: "Summe;;;;1.334,51 €" was only missing-identity."""
    path = tmp_path / "e.csv"
    path.write_text("Kundennummer;Vorname;E-Mail;Umsatz\n000101;Jürgen;j@x.de;1.234,56 €\n"
                    "Summe;;;1.334,51 €\nGesamt;;;EUR 1.334,51\n", encoding="utf-8")
    assert [r for r, m in _marked(path).items() if m] == [3, 4]


def test_a_repeated_header_in_another_case_is_still_the_header(tmp_path: Path) -> None:
    path = tmp_path / "e.csv"
    path.write_text("First Name,Email\nAda,a@x.io\nFIRST NAME , email\nBob,b@x.io\n",
                    encoding="utf-8")
    assert [r for r, m in _marked(path).items() if m] == [3]


def test_title_and_footer_across_the_boundary_between_batches(tmp_path: Path) -> None:
    """Rows travel in batches of CHUNK_ROWS; a title and its header, or a footer, may be split."""
    lines = ["First Name,Last Name,Email"]
    lines += [f"P{i},L,p{i}@x.io" for i in range(CHUNK_ROWS - 2)]
    lines += ["Second table", "First Name,Last Name,Email"]
    lines += [f"Q{i},L,q{i}@x.io" for i in range(CHUNK_ROWS - 4)]
    lines += ["", "Footer one", "Footer two", "Footer three"]
    path = tmp_path / "e.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    marked = _marked(path)
    flagged = [r for r, m in marked.items() if m]
    assert flagged == [CHUNK_ROWS, CHUNK_ROWS + 1, len(lines) - 2, len(lines) - 1, len(lines)]
