"""Every value reaches the API exactly as the person saw it in the spreadsheet."""

import datetime as dt
from pathlib import Path

import openpyxl
import pytest

from importer.mapping.binding import bind
from importer.mapping.spec import load_mapping
from importer.readers import ReadOptions, open_table
from importer.rows.validation import Validator
from tests.conftest import PLAIN_MAPPING as FIELDS


def mapped(path: Path, tmp_path: Path, mapping: str = FIELDS, **options: object):
    """(row number, fields, problem code) for every data row, as the runner would see them."""
    mapping_path = tmp_path / "m.yaml"
    mapping_path.write_text(mapping, encoding="utf-8")
    spec = load_mapping(mapping_path)
    table = open_table(path, ReadOptions(**options))
    bound, _ = bind(spec, table)
    validator = Validator(spec.required_any, {})
    out = []
    for batch in table.batches():
        m = bound.apply(batch)
        validator.check(m)
        for i, row in enumerate(m.rows):
            problem = m.problems.get(i)
            out.append((row, m.fields(i), problem.code if problem else None))
    return out


def test_csv_cells_stay_text(tmp_path: Path) -> None:
    path = tmp_path / "c.csv"
    path.write_text("Customer ID,First Name,Last Name,Email,Zip\n"
                    "000457,NA,Null,a@example.com,02134\n"
                    "1e5,None,nan,b@example.com,00501\n"
                    "123,N/A,null,c@example.com,1.0\n", encoding="utf-8")
    assert [fields for _, fields, _ in mapped(path, tmp_path)] == [
        {"external_id": "000457", "first_name": "NA", "last_name": "Null",
         "email": "a@example.com", "postal_code": "02134"},
        {"external_id": "1e5", "first_name": "None", "last_name": "nan",
         "email": "b@example.com", "postal_code": "00501"},
        {"external_id": "123", "first_name": "N/A", "last_name": "null",
         "email": "c@example.com", "postal_code": "1.0"},
    ]


def test_blank_cells_are_left_out_and_values_trimmed(tmp_path: Path) -> None:
    path = tmp_path / "c.csv"
    path.write_text("Customer ID,First Name,Last Name,Email,Zip\n"
                    "  7  ,  Ada ,,   ,\t\n", encoding="utf-8")
    assert mapped(path, tmp_path) == [(2, {"external_id": "7", "first_name": "Ada"}, None)]


def test_bom_never_reaches_a_header(tmp_path: Path) -> None:
    path = tmp_path / "c.csv"
    path.write_bytes("\ufeffCustomer ID,First Name,Last Name,Email,Zip\r\n1,Zoë,,,\r\n"
                     .encode("utf-8"))
    assert mapped(path, tmp_path) == [(2, {"external_id": "1", "first_name": "Zoë"}, None)]


def test_quoted_newlines_are_one_row_and_row_numbers_follow_the_sheet(tmp_path: Path) -> None:
    path = tmp_path / "c.csv"
    path.write_text('Customer ID,First Name,Last Name,Email,Zip\n'
                    '1,"Ada\nKing","O""Brien",,\n'
                    '\n'
                    '2,Grace,,,\n', encoding="utf-8")
    assert mapped(path, tmp_path) == [
        (2, {"external_id": "1", "first_name": "Ada\nKing", "last_name": 'O"Brien'}, None),
        (4, {"external_id": "2", "first_name": "Grace"}, None),
    ]


def test_header_on_row_three(tmp_path: Path) -> None:
    path = tmp_path / "c.csv"
    path.write_text("Contacts export\nGenerated 2024-03-01\n"
                    "Customer ID,First Name,Last Name,Email,Zip\n1,Ada,,,\n", encoding="utf-8")
    assert mapped(path, tmp_path, header_row=3) == [
        (4, {"external_id": "1", "first_name": "Ada"}, None)]


def test_header_found_below_a_title_block_when_not_given(tmp_path: Path) -> None:
    path = tmp_path / "c.csv"
    path.write_text("Contacts export\n\nCustomer ID,First Name,Last Name,Email,Zip\n1,Ada,,,\n",
                    encoding="utf-8")
    assert mapped(path, tmp_path) == [(4, {"external_id": "1", "first_name": "Ada"}, None)]


def _workbook(path: Path, rows: list[list[object]], title_rows: int = 0) -> Path:
    book = openpyxl.Workbook()
    sheet = book.active
    for _ in range(title_rows):
        sheet.append(["Contacts export"])
    for row in rows:
        sheet.append(row)
    book.save(path)
    return path


def test_xlsx_numbers_dates_and_text(tmp_path: Path) -> None:
    path = _workbook(tmp_path / "w.xlsx", [
        ["Customer ID", "First Name", "Last Name", "Email", "Zip", "Signed up"],
        [1001, "Ada", dt.date(2024, 3, 1), "ada@example.com", "02134",
         dt.datetime(2024, 3, 1, 9, 30)],
        [4155550123, "Grace", 19.99, None, 2134, None],
    ])
    mapping = FIELDS.replace("[postal_code]", "[postal_code, signup_date]") + (
        "  signup_date: Signed up\n")
    assert [f for _, f, _ in mapped(path, tmp_path, mapping)] == [
        {"external_id": "1001", "first_name": "Ada", "last_name": "2024-03-01",
         "email": "ada@example.com", "postal_code": "02134",
         "signup_date": "2024-03-01T09:30:00"},
        {"external_id": "4155550123", "first_name": "Grace", "last_name": "19.99",
         "postal_code": "2134"},
    ]


def test_xlsx_long_numbers_are_invalid_not_rounded(tmp_path: Path) -> None:
    path = _workbook(tmp_path / "w.xlsx", [
        ["Customer ID", "First Name", "Last Name", "Email", "Zip", "Unused"],
        [1234567890123456789, "Ada", None, None, None, None],
        [1, "Grace", None, None, None, 1234567890123456789],
    ])
    rows = mapped(path, tmp_path)
    assert rows[0][0] == 2 and rows[0][2] == "number-too-long"
    assert rows[1] == (3, {"external_id": "1", "first_name": "Grace"}, None)


def test_xlsx_row_numbers_count_the_title_block(tmp_path: Path) -> None:
    path = _workbook(tmp_path / "w.xlsx", [
        ["Customer ID", "First Name", "Last Name", "Email", "Zip"],
        [1, "Ada", None, None, None],
        [None] * 5,
        [2, "Grace", None, None, None],
    ], title_rows=2)
    assert [(row, f["first_name"]) for row, f, _ in mapped(path, tmp_path, header_row=3)] == [
        (4, "Ada"), (6, "Grace")]


@pytest.mark.parametrize(("raw", "sent"), [
    ("Zoë", "Zoë"), ("山田", "山田"), ("=1+1", "=1+1"), ("O'Brien", "O'Brien"),
    ("TRUE", "TRUE"), ("0", "0"), ("-5", "-5"), ("1,234", "1,234"),
])
def test_text_values_are_sent_verbatim(tmp_path: Path, raw: str, sent: str) -> None:
    path = tmp_path / "c.tsv"
    path.write_text(f"Customer ID\tFirst Name\tLast Name\tEmail\tZip\n1\t{raw}\t\t\t\n",
                    encoding="utf-8")
    assert mapped(path, tmp_path)[0][1]["first_name"] == sent


def test_excel_sep_hint_sets_the_delimiter_and_is_not_a_row(tmp_path: Path) -> None:
    path = tmp_path / "c.csv"
    path.write_bytes("\ufeffsep=;\r\nCustomer ID;First Name;Last Name;Email;Zip\r\n"
                     "1,5;Zoë;;;\r\n".encode("utf-8"))
    assert mapped(path, tmp_path) == [(2, {"external_id": "1,5", "first_name": "Zoë"}, None)]


def test_xlsx_zero_padded_formats_show_their_leading_zeros(tmp_path: Path) -> None:
    path = _workbook(tmp_path / "w.xlsx", [
        ["Customer ID", "First Name", "Last Name", "Email", "Zip"],
        [457, "Ada", 123456789, None, 2134],
        [1234567, "Bob", 5.5, None, "00501"],
    ])
    book = openpyxl.load_workbook(path)
    for row in book.active.iter_rows(min_row=2):
        row[0].number_format = '"C-"000000'
        row[2].number_format = "000-00-0000"
        row[4].number_format = "00000"
    book.save(path)
    assert [f for _, f, _ in mapped(path, tmp_path)] == [
        {"external_id": "C-000457", "first_name": "Ada", "last_name": "123-45-6789",
         "postal_code": "02134"},
        {"external_id": "C-1234567", "first_name": "Bob", "last_name": "5.5",
         "postal_code": "00501"},
    ]


def test_xlsx_formula_errors_make_the_row_invalid_only_in_mapped_columns(tmp_path: Path) -> None:
    """The error's text stays in its cell (the results and the errors file show it), and the
    row is never sent."""
    path = _workbook(tmp_path / "w.xlsx", [
        ["Customer ID", "First Name", "Last Name", "Email", "Zip", "Unused"],
        [1, "Ada", None, None, None, "#DIV/0!"],
        [2, "#N/A", None, None, None, None],
    ])
    book = openpyxl.load_workbook(path)
    book.active["F2"].data_type = "e"
    book.active["B3"].data_type = "e"
    book.save(path)
    assert mapped(path, tmp_path) == [
        (2, {"external_id": "1", "first_name": "Ada"}, None),
        (3, {"external_id": "2", "first_name": "#N/A"}, "cell-error"),
    ]
