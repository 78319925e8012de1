"""Workbooks saved by LibreOffice (tests/fixtures/sheets, made from fixtures/specs/sheets.json
by ``make_fixtures.py sheets``): the three formats send the same values for the same sheet, as a
person sees it."""

from pathlib import Path

import pytest

from importer.readers import ReadOptions, open_table
from importer.readers.table import Table
from tests.conftest import read_results

SHEETS = Path(__file__).parent / "fixtures" / "sheets"
FORMATS = ["xlsx", "ods", "xls"]


def _rows(table: Table) -> list[list[str]]:
    return [cells for batch in table.batches() for cells in batch.cells]


@pytest.mark.parametrize("suffix", FORMATS)
def test_a_range_merged_down_gives_its_value_to_every_row(suffix: str) -> None:
    table = open_table(SHEETS / f"merged.{suffix}", ReadOptions())
    assert _rows(table) == [
        ["Ada", "Lovelace", "ada@example.com", "Acme Corp"],
        ["Grace", "Hopper", "grace@example.com", "Acme Corp"],
        ["Alan", "Turing", "alan@example.com", "Acme Corp"],
        ["Katherine", "Johnson", "kj@example.com", "NASA"],
        # Merged across two columns: one value shown, so it stays in its first column.
        ["Mary", "", "mary@example.com", "Globex"],
    ]


def test_a_merged_header_does_not_spill_into_the_data(tmp_path: Path) -> None:
    import openpyxl

    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["Name", "Email"])
    sheet.append(["", "a@x.io"])
    sheet.append(["Bob", "b@x.io"])
    sheet.merge_cells("A1:A2")
    book.save(tmp_path / "h.xlsx")
    assert _rows(open_table(tmp_path / "h.xlsx", ReadOptions())) == [["", "a@x.io"],
                                                                     ["Bob", "b@x.io"]]


SHOWN = [
    ["Ada", "ada@example.com", "02134", "TRUE", "5", "16:17:36", "295:12:00"],
    ["Grace", "grace@example.com", "00501", "FALSE", "19.5", "09:05:00", "0:45:00"],
]


@pytest.mark.parametrize("suffix", FORMATS)
def test_the_three_formats_send_what_the_sheet_shows(suffix: str) -> None:
    """Zip formatted 00000, booleans, 5 formatted 0.00 (sent as 5, not as 0.05), a time of day
    shown 4:17 PM (sent as ISO 16:17:36), an elapsed time shown 295:12."""
    rows = _rows(open_table(SHEETS / f"formats.{suffix}", ReadOptions()))
    expected = [list(row) for row in SHOWN]
    if suffix == "ods":
        expected[1][6] = "00:45:00"  # ODS cannot tell an elapsed 0:45 from a time of day
    assert rows == expected


@pytest.mark.parametrize("suffix", FORMATS)
def test_a_locale_tag_in_a_zero_padded_format_changes_no_digit(suffix: str) -> None:
    """``[$-409]00000`` (a format picked for English (US)) shows 02134 as ``00000`` does."""
    assert _rows(open_table(SHEETS / f"locale-formats.{suffix}", ReadOptions())) == [
        ["Ann", "ann@example.com", "02134", "012-34-5678"],
        ["Bob", "bob@example.com", "00501", "123-45-6789"],
    ]


def test_ods_time_values_as_they_show() -> None:
    from importer.readers.ods_cells import _time_text

    assert _time_text(b"PT16H17M36S") == "16:17:36"
    assert _time_text(b"PT295H12M00S") == "295:12:00"
    assert _time_text(b"PT296296H17M36S") == "16:17:36"  # a date-time shown as 4:17 PM
    assert _time_text(b"-PT1H0M0S") == "-1:00:00"
    assert _time_text(b"P1DT2H") == ""


def test_a_decimal_format_is_not_mistaken_for_zero_padding() -> None:
    from importer.readers.xlsx_cells import padded_pattern, render

    assert not padded_pattern("0.00")
    assert not padded_pattern("#,##0")
    assert render(2134, "00000") == "02134"
    assert render(123456789, "00000-0000") == "12345-6789"


SHEET_MAPPING = ("version: 1\ncustom_fields: [notes]\nfields:\n  external_id: Customer ID\n"
                 "  first_name: First Name\n"
                 "  email: Email\n  notes: Notes\n")


@pytest.mark.parametrize("suffix", FORMATS)
def test_data_on_the_second_sheet_is_found_and_hidden_rows_are_reported(
        suffix: str, cli, tmp_path: Path) -> None:
    """"Read me" first, a hidden sheet with the same headers (never searched), then the data
    with rows 3 and 5 hidden by a filter and the mapped column D hidden."""
    mapping = tmp_path / "m.yaml"
    mapping.write_text(SHEET_MAPPING, encoding="utf-8")
    result = cli("run", SHEETS / f"sheets.{suffix}", "--mapping", mapping, "--dry-run",
                 "--results", tmp_path / "r.csv")
    assert result.code == 0, result.err
    assert "found the mapped columns on sheet 'Contacts', not on the first sheet 'Read me'" \
        in result.out
    assert "rows 3, 5 are hidden in the sheet (a filter?): imported like the others" in result.out
    assert "column D ('Notes') is hidden in the sheet and imported as mapped" in result.out
    rows = read_results(tmp_path / "r.csv")
    assert [(r["row"], r["first_name"]) for r in rows] == [
        ("2", "Ada"), ("3", "Grace"), ("4", "Alan"), ("5", "Katherine")]


def test_skip_hidden_rows_leaves_them_out(cli, tmp_path: Path) -> None:
    mapping = tmp_path / "m.yaml"
    mapping.write_text(SHEET_MAPPING, encoding="utf-8")
    result = cli("run", SHEETS / "sheets.xlsx", "--mapping", mapping, "--dry-run",
                 "--sheet", "Contacts", "--skip-hidden-rows", "--results", tmp_path / "r.csv")
    assert result.code == 0, result.err
    assert "rows 3, 5 are hidden in the sheet (a filter?): left out (--skip-hidden-rows)" \
        in result.out
    assert [r["first_name"] for r in read_results(tmp_path / "r.csv")] == ["Ada", "Alan"]


def test_headers_on_no_sheet_name_the_sheets(cli, tmp_path: Path) -> None:
    mapping = tmp_path / "m.yaml"
    mapping.write_text("version: 1\nfields:\n  email: E-mail Address\n", encoding="utf-8")
    result = cli("run", SHEETS / "sheets.xlsx", "--mapping", mapping, "--dry-run",
                 "--results", tmp_path / "r.csv")
    assert result.code == 2
    assert "(sheet 'Read me'; no other visible sheet has the mapped columns either)" \
        in result.err


def test_headers_on_two_sheets_are_refused_naming_both(cli, tmp_path: Path) -> None:
    import openpyxl

    book = openpyxl.Workbook()
    book.active.title = "Read me"
    book.active.append(["How to use this file"])
    for name in ("2023", "2024"):
        sheet = book.create_sheet(name)
        sheet.append(["Email"])
        sheet.append([f"a@{name}.io"])
    book.save(tmp_path / "two.xlsx")
    mapping = tmp_path / "m.yaml"
    mapping.write_text("version: 1\nfields:\n  email: Email\n", encoding="utf-8")
    result = cli("run", tmp_path / "two.xlsx", "--mapping", mapping, "--dry-run",
                 "--results", tmp_path / "r.csv")
    assert result.code == 2
    assert "the mapped columns are on several sheets of two.xlsx ('2023', '2024'); choose one " \
        "with --sheet" in result.err


def test_init_drafts_the_sheet_that_has_the_columns(cli) -> None:
    result = cli("init", SHEETS / "sheets.ods")
    assert result.code == 0, result.err
    assert "sheet: Contacts\n" in result.out
    assert "  first_name: First Name" in result.out


def test_an_empty_settings_part_nobody_reads_is_not_damage() -> None:
    """LibreOffice 5.1 and OpenOffice 4.0 write an empty Configurations2/accelerator/current.xml
    (this fixture is merged.ods with that part added)."""
    table = open_table(SHEETS / "merged-oo4-empty-part.ods", ReadOptions())
    assert _rows(table)[1] == ["Grace", "Hopper", "grace@example.com", "Acme Corp"]


def test_old_xls_text_stored_as_utf16_is_read_as_meant_and_other_nuls_refused() -> None:
    from importer.errors import InputError
    from importer.readers.workbook import _without_nuls

    cells = ["F\x00o\x00r\x00m\x00u\x00l\x00a\x00", "plain", "A\x00"]
    _without_nuls(Path("old.xls"), cells, 1, 0)
    assert cells == ["Formula", "plain", "A"]
    with pytest.raises(InputError, match=r"old.xls: cell B7 holds NUL characters"):
        _without_nuls(Path("old.xls"), ["ok", "ab\x00\x00cd"], 7, 0)


def test_an_excel_95_workbook_is_named_as_such(tmp_path: Path) -> None:
    """LibreOffice cannot save Excel 95, so only the part that tells it apart is written: an
    OLE file whose sheets are in a stream named Book, not Workbook."""
    from importer.errors import InputError

    path = tmp_path / "old.xls"
    path.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(504)
                     + "Book\x00".encode("utf-16-le") + bytes(512))
    with pytest.raises(InputError, match=r"is an Excel 5\.0/95 workbook .* save it as XLSX"):
        open_table(path, ReadOptions())


def test_date_cells_no_calendar_shows_make_the_row_invalid() -> None:
    """Saved by LibreOffice from a sheet whose column B is formatted yyyy-mm-dd: 0, 45000,
    2958465 (9999-12-31), 2958466, 3000000, -1, 0.5."""
    table = open_table(SHEETS / "edge-dates.xlsx", ReadOptions())
    flagged = {}
    for batch in table.batches():
        for (index, _), problem in batch.cell_problems.items():
            flagged[batch.rows[index]] = problem
    assert sorted(flagged) == [2, 5, 6, 7, 8]
    assert all(p.code == "not-a-date" for p in flagged.values())
    assert "cell B5 is formatted as a date but holds 2958466" in flagged[5].message


@pytest.mark.parametrize("suffix", ["xlsx", "xls"])
def test_xlsx_and_xls_report_the_same_date_serials_no_calendar_shows(suffix: str) -> None:
    """An Excel user's cells formatted yyyy-mm-dd (specs/sheets.json, date-serials) saved by
    LibreOffice: 0, 2958466, 3000000, -1 and 0.5 would be sent as 00:00:00 or a bare serial;
    a time of day (C2, formatted hh:mm:ss) is not a date."""
    table = open_table(SHEETS / f"date-serials.{suffix}", ReadOptions())
    flagged = {}
    for batch in table.batches():
        for (index, column), problem in batch.cell_problems.items():
            flagged[(batch.rows[index], column)] = problem.message
    assert sorted(flagged) == [(2, 1), (5, 1), (6, 1), (7, 1), (8, 1)]
    assert flagged[(7, 1)].startswith("cell B7 is formatted as a date but holds -1, which is")
    assert "holds 0.5," in flagged[(8, 1)]


def test_xls_date_serials_no_calendar_shows_are_not_sent(cli, sandbox, tmp_path: Path) -> None:
    mapping = tmp_path / "m.yaml"
    mapping.write_text("version: 1\ncustom_fields: [signup_date]\nfields:\n"
                       "  first_name: First Name\n  signup_date: Joined\n", encoding="utf-8")
    result = cli("run", SHEETS / "date-serials.xls", "--mapping", mapping, "--api-url",
                 sandbox.url, "--results", tmp_path / "r.csv")
    assert result.code == 0, result.err
    assert sorted((r["first_name"], r["signup_date"]) for r in sandbox.store.records()) == [
        ("Bob", "2023-03-15"), ("Cid", "9999-12-31")]
    assert [r["error_code"] for r in read_results(tmp_path / "r.csv")] == [
        "not-a-date", "", "", "not-a-date", "not-a-date", "not-a-date", "not-a-date"]


def test_an_xls_in_the_1904_date_system_ends_at_its_own_9999_12_31() -> None:
    """Saved by LibreOffice in the 1904 date system (specs/workbooks.json): 2957003 is
    9999-12-31 there and is sent; 2957004 is past it. Serials under 1 are 1904-01-01 there,
    but calamine reads them as times of day (00:00:00), so they are reported too."""
    table = open_table(SHEETS / "date-serials-1904.xls", ReadOptions())
    rows = [(cells[0], cells[1], [p.code for (i, _), p in batch.cell_problems.items()
                                  if i == index])
            for batch in table.batches() for index, cells in enumerate(batch.cells)]
    assert rows == [
        ("Ann", "00:00:00", ["not-a-date"]), ("Bob", "1904-01-02", []),
        ("Cid", "2021-09-23", []), ("Dee", "9999-12-31", []),
        ("Eve", "2957004", ["not-a-date"]), ("Fay", "00:00:00", ["not-a-date"]),
        ("Gus", "12:00:00", ["not-a-date"]),
    ]


def test_edge_date_rows_are_not_sent(cli, sandbox, tmp_path: Path) -> None:
    mapping = tmp_path / "m.yaml"
    mapping.write_text("version: 1\ncustom_fields: [signup_date]\nfields:\n  first_name: Name\n"
                       "  signup_date: Joined\n",
                       encoding="utf-8")
    result = cli("run", SHEETS / "edge-dates.xlsx", "--mapping", mapping, "--api-url",
                 sandbox.url, "--results", tmp_path / "r.csv")
    assert result.code == 0, result.err
    assert sorted(r["signup_date"] for r in sandbox.store.records()) == ["2023-03-15",
                                                                         "9999-12-31"]


def test_the_hidden_empty_rest_of_an_ods_sheet_costs_nothing() -> None:
    """Hiding every row below the data writes one row repeated a million times."""
    from importer.readers.ods_cells import _scan

    xml = (b'<table:table table:name="S"><table:table-row><table:table-cell/></table:table-row>'
           b'<table:table-row table:visibility="collapse"><table:table-cell/></table:table-row>'
           b'<table:table-row table:number-rows-repeated="1048574" '
           b'table:visibility="collapse"><table:table-cell/></table:table-row></table:table>')
    assert _scan(xml, xml.index(b">") + 1).hidden_rows == {1}


@pytest.mark.parametrize("suffix", FORMATS)
def test_formula_errors_are_never_sent_as_empty_values(suffix: str, cli, sandbox,
                                                        tmp_path: Path) -> None:
    """An Excel user's failing formulas saved by LibreOffice (see specs/sheets.json): calamine
    reads each error cell as empty, but the person saw #N/A, #DIV/0!, ...: the row is invalid
    (`cell-error`) naming the cell and the error, and nothing is sent in its place. A text that
    only looks like an error is sent; an error in a column the mapping does not use is not
    the row's problem. A row whose every cell failed (a lookup) is such a row, not an empty
    one."""
    mapping = tmp_path / "m.yaml"
    mapping.write_text("version: 1\ncustom_fields: [notes]\nfields:\n  first_name: First Name\n"
                       "  email: Email\n  notes: Score\n", encoding="utf-8")
    result = cli("run", SHEETS / f"formula-errors.{suffix}", "--mapping", mapping,
                 "--api-url", sandbox.url, "--results", tmp_path / "r.csv")
    assert result.code == 0, result.err
    rows = {r["row"]: r for r in read_results(tmp_path / "r.csv")}
    errors = {"2": "#N/A", "3": "#DIV/0!", "4": "#VALUE!", "5": "#REF!", "6": "#NAME?",
              "7": "Err:502" if suffix == "ods" else "#VALUE!", "11": "#N/A"}
    for number, shown in errors.items():
        assert rows[number]["status"] == "invalid"
        assert rows[number]["error_code"] == "cell-error"
        assert f"shows {shown}, a formula error" in rows[number]["error"]
    assert {n: r["status"] for n, r in rows.items() if n not in errors} == {
        "8": "created", "9": "created", "10": "created"}
    stored = sorted((r["first_name"], r.get("notes")) for r in sandbox.store.records())
    assert stored == [("Gus", "#N/A"), ("Hal", None), ("Ivy", "7")]
    [errors_file] = tmp_path.glob("r.errors.*")
    to_fix = open_table(errors_file, ReadOptions())
    score = to_fix.headers.index("Score")
    assert [(cells[0], cells[score]) for batch in to_fix.batches() for cells in batch.cells] == [
        (number, shown) for number, shown in errors.items()]  # the error where the cell was
