"""The file to fix and re-import (issue 12 part 3): original cells plus the reason, and a rerun
of that file with the same mapping imports exactly the fixed rows."""

import csv
import io
import json
import os
import stat
from pathlib import Path

import pytest
from openpyxl import Workbook, load_workbook

from importer.results.errors_file import ErrorsFile
from importer.rows.outcomes import Outcome, Status
from tests.conftest import read_results, records, write_csv

MAPPING = """\
version: 1
custom_fields: [postal_code, customer_tier]
fields:
  external_id: Customer ID
  first_name: First Name
  last_name: Last Name
  email: Email
  postal_code: Zip
  customer_tier: Status
"""
EXPORT = (
    "Customer ID,First Name,Last Name,Email,Zip,Status,Notes\n"
    "1,Ann,Lee,ann@example.com,02134,gold,kept as is\n"
    "2,Bo,,bo@,00501,=1+1,\" spaces , quotes \"\"x\"\" \"\n"
    "3,,,,,silver,no identity\n"
    "4,Cy,Li,cy@example.com,,,\n"
    "5,Ann again,,ANN@example.com,,,\"two\nlines\"\n"
)


def read_csv(path: Path) -> list[list[str]]:
    return list(csv.reader(io.StringIO(path.read_text(encoding="utf-8-sig"), newline="")))


@pytest.fixture
def export(tmp_path: Path) -> tuple[Path, Path]:
    mapping = tmp_path / "m.yaml"
    mapping.write_text(MAPPING, encoding="utf-8")
    return write_csv(tmp_path / "export.csv", EXPORT), mapping


def test_rows_to_fix_keep_their_cells_and_the_fixed_file_reimports(cli, sandbox, export,
                                                                   tmp_path) -> None:
    path, mapping = export
    first = cli("run", path, "--mapping", mapping, "--api-url", sandbox.url,
                "--results", tmp_path / "export.results.csv", "--summary-json", tmp_path / "s.json")
    assert first.code == 0
    errors = tmp_path / "export.errors.csv"
    assert f"  to fix            2 rows in {errors}: fix them there and run that file " \
           "with the same mapping" in first.out
    rows = read_csv(errors)
    assert rows == [
        ["row", "status", "error_code", "error", "Customer ID", "First Name", "Last Name",
         "Email", "Zip", "Status", "Notes"],
        ["3", "invalid", "invalid-email", "email 'bo@' is not an email address",
         "2", "Bo", "", "bo@", "00501", "=1+1", ' spaces , quotes "x" '],
        ["4", "invalid", "missing-identity", rows[2][3], "3", "", "", "", "", "silver",
         "no identity"],
    ]
    assert stat.S_IMODE(errors.stat().st_mode) == 0o600
    summary = json.loads((tmp_path / "s.json").read_text())
    assert summary["errors_file"] == str(errors)
    assert summary["error_codes"] == {"duplicate-in-file": 1, "invalid-email": 1,
                                      "missing-identity": 1}
    errors.write_text(errors.read_text(encoding="utf-8-sig").replace(",bo@,", ",bo@x.org,"),
                      encoding="utf-8-sig")
    before = len(records(sandbox))
    again = cli("run", errors, "--mapping", mapping, "--api-url", sandbox.url,
                "--results", tmp_path / "again.csv")
    assert again.code == 0
    assert [r["status"] for r in read_results(tmp_path / "again.csv")] == [
        "created", "invalid"]
    new = [r for r in records(sandbox)][before:]
    assert new == [{"external_id": "2", "first_name": "Bo", "email": "bo@x.org",
                    "postal_code": "00501", "customer_tier": "=1+1"}]
    still = read_csv(tmp_path / "again.errors.csv")
    assert still[0][:5] == ["row", "status", "error_code", "error", "Customer ID"]
    assert still[1][:5] == ["3", "invalid", "missing-identity", still[1][3], "3"]


def test_server_rejections_are_in_the_file_with_the_error_neutralised(cli, scripted_api,
                                                                      export, tmp_path) -> None:
    path, mapping = export

    def answer(fields: dict[str, str]) -> tuple[int, dict[str, object]]:
        if fields.get("external_id") == "4":
            return 400, {"error": "=HYPERLINK(\"http://evil\") is not a valid tier"}
        return 201, {"id": "id-" + fields.get("external_id", "")}

    url = scripted_api(answer)
    result = cli("run", path, "--mapping", mapping, "--api-url", url, "--results",
                 tmp_path / "r.csv", "--errors", tmp_path / "fix.csv")
    assert result.code == 0
    rows = read_csv(tmp_path / "fix.csv")
    assert [r[:3] for r in rows[1:]] == [["3", "invalid", "invalid-email"],
                                        ["4", "invalid", "missing-identity"],
                                        ["5", "rejected", "server-rejected"]]
    assert rows[3][3].startswith("'=HYPERLINK(")
    assert rows[3][4:] == ["4", "Cy", "Li", "cy@example.com", "", "", ""]


def test_workbook_input_gives_a_text_only_workbook_that_reimports(cli, sandbox,
                                                                  tmp_path) -> None:
    book = Workbook()
    sheet = book.active
    sheet.title = "Contacts"
    sheet.append(["Contacts export"])
    sheet.append([])
    sheet.append(["Customer ID", "First Name", "Email", "Zip"])
    sheet.append(["A1", "Ann", "ann@example.com", "02134"])
    sheet.append(["A2", "Bo", "bo@", "=1+1"])
    sheet["D5"].data_type = "s"
    sheet.append([7, "  Cy ", "cy@", "0042"])
    book.save(tmp_path / "export.xlsx")
    mapping = tmp_path / "m.yaml"
    mapping.write_text("version: 1\nsheet: Contacts\nheader_row: 3\n"
                       "custom_fields: [postal_code]\nfields:\n"
                       "  external_id: Customer ID\n  first_name: First Name\n"
                       "  email: Email\n  postal_code: Zip\n", encoding="utf-8")
    assert cli("run", tmp_path / "export.xlsx", "--mapping", mapping, "--api-url", sandbox.url,
               "--results", tmp_path / "r.csv").code == 0
    errors = tmp_path / "r.errors.xlsx"
    written = load_workbook(errors)
    assert written.sheetnames == ["Contacts"]
    cells = [row for row in written["Contacts"].iter_rows() if any(c.value for c in row)]
    assert [[c.value for c in row] for row in cells] == [
        ["row", "status", "error_code", "error", "Customer ID", "First Name", "Email", "Zip"],
        ["5", "invalid", "invalid-email", "email 'bo@' is not an email address",
         "A2", "Bo", "bo@", "=1+1"],
        ["6", "invalid", "invalid-email", "email 'cy@' is not an email address",
         "7", "  Cy ", "cy@", "0042"],
    ]
    assert {c.data_type for row in cells for c in row} == {"s"}
    assert cells[0][0].row == 3
    sheet = written["Contacts"]
    sheet["G4"].value = "bo@example.com"
    written.save(errors)
    again = cli("run", errors, "--mapping", mapping, "--api-url", sandbox.url,
                "--results", tmp_path / "again.csv")
    assert again.code == 0, again.err
    assert [r["status"] for r in read_results(tmp_path / "again.csv")] == ["created", "invalid"]
    assert records(sandbox)[-1] == {"external_id": "A2", "first_name": "Bo",
                                    "email": "bo@example.com", "postal_code": "=1+1"}


def test_no_errors_file_when_every_row_is_fine(cli, sandbox, tmp_path) -> None:
    mapping = tmp_path / "m.yaml"
    mapping.write_text("version: 1\nfields:\n  first_name: First Name\n  email: Email\n")
    path = write_csv(tmp_path / "ok.csv", "First Name,Email\nAnn,a@example.com\n")
    stale = tmp_path / "r.errors.csv"
    stale.write_text("row,status,error_code,error,First Name,Email\n2,invalid,x,y,Ann,a@\n")
    result = cli("run", path, "--mapping", mapping, "--api-url", sandbox.url,
                 "--results", tmp_path / "r.csv", "--summary-json", tmp_path / "s.json")
    assert result.code == 0
    assert not stale.exists()
    assert "note: removed r.errors.csv: an earlier run's rows to fix, none left now" in result.out
    assert "  to fix " not in result.out
    assert json.loads((tmp_path / "s.json").read_text())["errors_file"] is None
    assert sorted(p.name for p in tmp_path.iterdir() if "errors" in p.name) == []


def test_a_foreign_file_or_a_link_at_errors_is_refused(cli, sandbox, export, tmp_path) -> None:
    path, mapping = export
    foreign = tmp_path / "notes.csv"
    foreign.write_text("my,own\nfile,here\n")
    refused = cli("run", path, "--mapping", mapping, "--api-url", sandbox.url,
                  "--results", tmp_path / "r.csv", "--errors", foreign)
    assert (refused.code, foreign.read_text()) == (2, "my,own\nfile,here\n")
    assert "--errors" in refused.err and "not a routera-import errors file" in refused.err
    link = tmp_path / "link.csv"
    link.symlink_to(foreign)
    linked = cli("run", path, "--mapping", mapping, "--api-url", sandbox.url,
                 "--results", tmp_path / "r.csv", "--errors", link, "--overwrite")
    assert linked.code == 2 and "is a symbolic link" in linked.err
    assert foreign.read_text() == "my,own\nfile,here\n"
    assert sandbox.stats == {}


def test_held_cells_are_released_as_rows_are_written(tmp_path: Path) -> None:
    """Flat memory: a batch's cells are kept only until its last row is written."""
    errors = ErrorsFile(tmp_path / "e.csv", ["A", "B"])
    errors.hold(0, [["a0", "b0"], ["a1", "b1"]])
    errors.hold(2, [["a2", "b2"]])
    rejected = Outcome(0, Status.REJECTED, code="server-rejected", error="@SUM(1)")
    errors.written(0, [Outcome(0, Status.CREATED), rejected])
    assert len(errors._held) == 1
    errors.written(2, [Outcome(0, Status.FAILED, code="server-error", error="+x")])
    assert len(errors._held) == 0
    assert errors.close() == ""
    assert read_csv(tmp_path / "e.csv")[1:] == [
        ["0", "rejected", "server-rejected", "'@SUM(1)", "a1", "b1"],
        ["0", "failed", "server-error", "'+x", "a2", "b2"]]
    assert not (tmp_path / ".e.csv.partial").exists()
    assert os.stat(tmp_path / "e.csv").st_mode & 0o077 == 0


def test_a_misaligned_row_keeps_every_cell_to_fix(cli, tmp_path: Path) -> None:
    """An unquoted comma shifts a row: all its cells go to the errors file, none dropped."""
    mapping = tmp_path / "m.yaml"
    mapping.write_text("version: 1\nfields:\n  first_name: Name\n  email: Email\n")
    path = write_csv(tmp_path / "e.csv", "Name,Email\nAnn,a@example.com\n"
                     "Lee, Bo,bo@example.com,extra\n")
    assert cli("run", path, "--mapping", mapping, "--dry-run",
               "--results", tmp_path / "r.csv").code == 0
    assert read_csv(tmp_path / "r.errors.csv")[1][1:] == [
        "invalid", "ragged-row", read_csv(tmp_path / "r.errors.csv")[1][3],
        "Lee", " Bo", "bo@example.com", "extra"]


def test_an_encoding_and_delimiter_the_mapping_fixes_are_kept(cli, scripted_api,
                                                              tmp_path: Path) -> None:
    mapping = tmp_path / "m.yaml"
    mapping.write_text('version: 1\nencoding: cp1252\ndelimiter: ";"\nfields:\n'
                       "  first_name: Prénom\n  email: Courriel\n", encoding="utf-8")
    path = tmp_path / "e.csv"
    path.write_bytes("Prénom;Courriel\nZoë;zoe@example.com\nRené;rene@\nAnn;ann@example.com\n"
                     "Bea;bea@example.com\n".encode("cp1252"))
    url = scripted_api(lambda fields: (400, {"error": "≠ refusé"}) if fields["first_name"] == "Zoë"
                       else (201, {"id": fields["first_name"]}))
    assert cli("run", path, "--mapping", mapping, "--api-url", url,
               "--results", tmp_path / "r.csv").code == 0
    text = (tmp_path / "r.errors.csv").read_bytes().decode("cp1252")
    assert text.splitlines() == [
        "row;status;error_code;error;Prénom;Courriel",
        "2;rejected;server-rejected;? refusé;Zoë;zoe@example.com",
        "3;invalid;invalid-email;email 'rene@' is not an email address;René;rene@"]
    fixed = text.replace("rene@\r\n", "rene@example.com\r\n").encode("cp1252")
    (tmp_path / "r.errors.csv").write_bytes(fixed)
    ok = scripted_api(lambda fields: (201, {"id": fields["first_name"]}))
    again = cli("run", tmp_path / "r.errors.csv", "--mapping", mapping, "--api-url", ok,
                "--results", tmp_path / "again.csv")
    assert again.code == 0, again.err
    assert [(r["status"], r["first_name"]) for r in read_results(tmp_path / "again.csv")] == [
        ("created", "Zoë"), ("created", "René")]


def test_a_csv_input_can_ask_for_an_xlsx_errors_file_that_keeps_zeros(cli, sandbox, export,
                                                                       tmp_path) -> None:
    path, mapping = export
    assert cli("run", path, "--mapping", mapping, "--api-url", sandbox.url, "--results",
               tmp_path / "r.csv", "--errors", tmp_path / "fix.xlsx").code == 0
    book = load_workbook(tmp_path / "fix.xlsx")
    sheet = book["Errors"]
    assert [c.value for c in sheet[2]][4:9] == ["2", "Bo", None, "bo@", "00501"]
    assert {c.data_type for row in sheet.iter_rows() for c in row if c.value} == {"s"}
    sheet["H2"].value = "bo@x.org"
    book.save(tmp_path / "fix.xlsx")
    again = cli("run", tmp_path / "fix.xlsx", "--mapping", mapping, "--api-url", sandbox.url,
                "--results", tmp_path / "again.csv")
    assert again.code == 0, again.err
    assert records(sandbox)[-1]["postal_code"] == "00501"


@pytest.mark.parametrize("ledger", ["ledger", "--no-ledger"])
def test_rows_with_an_unknown_outcome_are_not_offered_to_fix_and_reimport(
        cli, make_sandbox, tmp_path: Path, ledger: str) -> None:
    """R2-3: a row that may have been created is not in the errors file (running that file
    would create it again), and the summary names it apart with what to do."""
    from tests.conftest import PLAIN_MAPPING

    mapping = tmp_path / "m.yaml"
    mapping.write_text(PLAIN_MAPPING, encoding="utf-8")
    path = write_csv(tmp_path / "export.csv", "Customer ID,First Name,Last Name,Email,Zip\n"
                     ",Ann,Lee,,\n2,Bo,Ek,bo@,00501\n,Cy,Do,,\n")
    api = make_sandbox(drop_rate=1.0, seed=1)
    flags = [] if ledger == "ledger" else [ledger]
    first = cli("run", path, "--mapping", mapping, "--api-url", api.url, "--results",
                tmp_path / "export.results.csv", *flags)
    assert first.code == 1
    assert [r["error_code"] for r in read_results(tmp_path / "export.results.csv")] == [
        "outcome-unknown", "invalid-email", "outcome-unknown"]
    errors = tmp_path / "export.errors.csv"
    assert [row[:3] for row in read_csv(errors)[1:]] == [["3", "invalid", "invalid-email"]]
    assert f"  to fix            1 rows in {errors}:" in first.out
    assert ("  to check          2 rows may have been created (outcome-unknown; not in the "
            "errors file): check them in the CRM;") in first.out
    assert len(api.store.records()) == 2
    again = cli("run", errors, "--mapping", mapping, "--api-url", api.url, "--results",
                tmp_path / "again.csv", *flags)
    assert again.code == 0
    assert len(api.store.records()) == 2, "running the errors file creates nothing twice"
