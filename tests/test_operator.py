"""Operator experience: init, check-mapping, results formats, summaries, progress, help."""

import io
import json
from pathlib import Path

import openpyxl
import pytest

from importer.progress import ProgressDisplay
from importer.rows.outcomes import Status
from importer.runs.runner import Progress
from tests.conftest import read_results, records, write_csv

SIX = "Customer ID,First Name,Last Name,E-mail Address,Phone,Company\n"


def test_init_maps_the_six_usual_headers_without_edits(cli, sandbox, tmp_path: Path) -> None:
    export = write_csv(tmp_path / "export.csv",
                       SIX + "000457,Zoë,Null, ZOE@Example.com ,+1 555 0100,Acme\n")
    result = cli("init", export)
    assert result.code == 0
    assert result.out == (
        "# Mapping written by `routera-import init` from export.csv.\n"
        "# Check it, then: routera-import check-mapping THIS_FILE export.csv\n"
        "version: 1\n"
        "fields:\n"
        "  external_id: Customer ID  # 100% synonym\n"
        "  first_name: First Name  # 100% same name\n"
        "  last_name: Last Name  # 100% same name\n"
        "  email:  # 100% synonym\n"
        "    column: E-mail Address\n"
        "    transform: [trim, lower]\n"
        "  phone: Phone  # 100% same name\n"
        "  company: Company  # 100% same name\n"
        "required_any: [email, first_name, last_name]\n")
    mapping = tmp_path / "m.yaml"
    mapping.write_text(result.out, encoding="utf-8")
    assert cli("run", export, "--mapping", mapping, "--api-url", sandbox.url,
               "--results", tmp_path / "r.csv").code == 0
    assert records(sandbox) == [{"external_id": "000457", "first_name": "Zoë",
                                 "last_name": "Null", "email": "zoe@example.com",
                                 "phone": "+1 555 0100", "company": "Acme"}]


@pytest.mark.parametrize(("headers", "expected", "unmatched"), [
    ("Record ID,First Name,Last Name,Email,Phone Number,Company Name,Job Title,City,"
     "Country/Region,Website URL,Lifecycle Stage",
     {"external_id": "Record ID", "first_name": "First Name", "last_name": "Last Name",
      "email": "Email", "phone": "Phone Number", "company": "Company Name",
      "job_title": "Job Title", "city": "City", "website_url": "Website URL",
      "country": "Country/Region"},
     ["Lifecycle Stage"]),
    ("Contact ID,Salutation,Given name,Surname,Mobile,Organisation,Title,Mailing City",
     {"external_id": "Contact ID", "first_name": "Given name", "last_name": "Surname",
      "phone": "Mobile", "company": "Organisation", "job_title": "Title",
      "city": "Mailing City"},
     ["Salutation"]),
    ("Kundennummer;Vorname;Nachname;E-Mail-Adresse;Telefon;Firma;Ort;Land",
     {"external_id": "Kundennummer", "first_name": "Vorname", "last_name": "Nachname",
      "email": "E-Mail-Adresse", "phone": "Telefon", "company": "Firma", "city": "Ort",
      "country": "Land"}, []),
    ("Email Address,Full Name,MEMBER_RATING,OPTIN_TIME,lead source",
     {"email": "Email Address"}, ["MEMBER_RATING", "OPTIN_TIME"]),
])
def test_init_on_real_looking_exports(cli, tmp_path: Path, headers: str,
                                      expected: dict[str, str], unmatched: list[str]) -> None:
    export = write_csv(tmp_path / "export.csv", headers + "\n" + "x," * 3 + "\n")
    result = cli("init", export, "--fields", "lead_source")
    assert result.code == 0
    mapping = tmp_path / "m.yaml"
    mapping.write_text(result.out, encoding="utf-8")
    check = cli("check-mapping", mapping, export)
    assert check.code == 0, check.err
    for name, header in expected.items():
        assert any(line.startswith(f"  {name} ") and f"<- column {header!r}" in line
                   for line in check.lines), (name, check.out)
    listed = [line.removeprefix("#   ") for line in result.lines if line.startswith("#   ")]
    assert listed == unmatched
    if "Full Name" in headers:
        assert "    transform: [{split_name: first}]" in result.lines
        assert "  lead_source: lead source  # 100% same name" in result.lines


def test_init_finds_the_header_below_a_title_block(cli, tmp_path: Path) -> None:
    export = write_csv(tmp_path / "e.csv", "Contacts export\n\n" + SIX + "1,A,B,a@x.io,1,C\n")
    assert "header_row: 3" in cli("init", export).lines


def test_check_mapping_reports_problems_with_exit_2(cli, tmp_path: Path) -> None:
    mapping = tmp_path / "m.yaml"
    mapping.write_text("version: 1\nfields:\n  email: {column: Mail, transfrom: [lower]}\n")
    result = cli("check-mapping", mapping)
    assert (result.code, result.out) == (2, "")
    assert result.err == (f"routera-import: error: {mapping} line 3: unknown key 'transfrom' in "
                          "field 'email' (did you mean 'transform'?)\n")


def _export(tmp_path: Path) -> tuple[Path, Path]:
    export = write_csv(tmp_path / "e.csv", "First Name,Email\nAda,ada@x.io\nBob,bob@\n"
                       "=cmd,c@x.io\n")
    mapping = tmp_path / "m.yaml"
    mapping.write_text("version: 1\nfields:\n  first_name: First Name\n  email: Email\n")
    return export, mapping


def test_xlsx_results_open_with_every_row_and_a_summary(cli, sandbox, tmp_path: Path) -> None:
    export, mapping = _export(tmp_path)
    result = cli("run", export, "--mapping", mapping, "--api-url", sandbox.url,
                 "--results", tmp_path / "r.xlsx")
    assert result.code == 0
    book = openpyxl.load_workbook(tmp_path / "r.xlsx")
    assert book.sheetnames == ["Results", "Summary"]
    sheet = book["Results"]
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0] == ("row", "status", "id", "http_status", "error", "error_code",
                       "external_id", "email", "first_name", "last_name")
    assert [(r[0], r[1], r[5], r[8]) for r in rows[1:]] == [
        (2, "created", None, "Ada"), (3, "invalid", "invalid-email", "Bob"),
        (4, "created", None, "=cmd")]
    assert sheet.freeze_panes == "A2"
    assert sheet.auto_filter.ref == "A1:J4"
    assert sheet["A1"].font.bold
    assert sheet["B3"].fill.fgColor.rgb.endswith("FFEB9C")
    summary = dict(book["Summary"].iter_rows(values_only=True))
    assert summary["input"] == str(export)
    assert summary["mapping"] == str(mapping)
    assert (summary["created"], summary["invalid"]) == ("2", "1")
    assert summary["started"] <= summary["finished"]


def test_jsonl_results_and_summary_json(cli, sandbox, tmp_path: Path) -> None:
    export, mapping = _export(tmp_path)
    result = cli("run", export, "--mapping", mapping, "--api-url", sandbox.url,
                 "--results", tmp_path / "r.jsonl", "--summary-json", tmp_path / "s.json")
    assert result.code == 0
    lines = [json.loads(line) for line in (tmp_path / "r.jsonl").read_text().splitlines()]
    assert [(x["row"], x["status"], x["first_name"]) for x in lines] == [
        (2, "created", "Ada"), (3, "invalid", "Bob"), (4, "created", "=cmd")]
    summary = json.loads((tmp_path / "s.json").read_text())
    assert summary["counts"] == {"created": 2, "duplicate": 0, "invalid": 1, "rejected": 0,
                                 "failed": 0, "skipped": 0, "ready": 0}
    assert (summary["rows"], summary["exit_code"]) == (3, 0)


def test_strict_makes_invalid_rows_exit_1(cli, tmp_path: Path) -> None:
    export, mapping = _export(tmp_path)
    result = cli("run", export, "--mapping", mapping, "--dry-run", "--strict",
                 "--results", tmp_path / "r.csv")
    assert result.code == 1
    assert [r["status"] for r in read_results(tmp_path / "r.csv")] == [
        "ready", "invalid", "ready"]


def test_progress_without_a_terminal_is_a_plain_line() -> None:
    stream = io.StringIO()
    display = ProgressDisplay(stream, quiet=False)
    display(Progress(0, {}, 0.0, 2000))
    display(Progress(1500, {Status.CREATED: 1400, Status.INVALID: 100}, 5.0, 2000))
    first, second = stream.getvalue().splitlines()
    assert first.endswith(" 0 of ~2,000 rows done (none yet), ? rows/s, ETA ?")
    assert second.endswith(
        " 1,500 of ~2,000 rows done (created 1,400, invalid 100), 300 rows/s, ETA 0:02")
    assert "\r" not in stream.getvalue()
    quiet = io.StringIO()
    ProgressDisplay(quiet, quiet=True)(Progress(1, {}, 1.0, None))
    assert quiet.getvalue() == ""


@pytest.mark.parametrize(("command", "expected"), [
    ([], ["run", "init", "check-mapping", "sandbox", "exit codes"]),
    (["run"], ["--mapping", "--resume", "--rate-limit", "--dry-run", "--summary-json",
               "exit codes"]),
    (["init"], ["--fields", "synonyms", "example:"]),
    (["check-mapping"], ["MAPPING", "INPUT", "exit codes"]),
    (["sandbox"], ["--fail-rate", "--drop-rate", "--latency", "ROUTERA_API_TOKEN"]),
])
def test_every_command_has_useful_help(capsys, command: list[str], expected: list[str]) -> None:
    from importer.cli import main

    with pytest.raises(SystemExit) as done:
        main([*command, "--help"])
    assert done.value.code == 0
    out = " ".join(capsys.readouterr().out.split())
    assert [word for word in expected if word not in out] == []


def test_a_dry_run_keeps_clear_of_a_real_runs_results(cli, sandbox, tmp_path: Path,
                                                       monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    export, mapping = _export(tmp_path)
    assert cli("run", export, "--mapping", mapping, "--api-url", sandbox.url).code == 0
    real = (tmp_path / "e.results.csv").read_text(encoding="utf-8")
    dry = cli("run", export, "--mapping", mapping, "--dry-run")
    assert dry.code == 0
    assert ("  note: e.results.csv holds a real run's results, so this dry run wrote "
            "e.dry-run.csv instead") in dry.lines
    assert (tmp_path / "e.results.csv").read_text(encoding="utf-8") == real
    assert [r["status"] for r in read_results(tmp_path / "e.dry-run.csv")] == [
        "ready", "invalid", "ready"]
    explicit = cli("run", export, "--mapping", mapping, "--dry-run", "--results",
                   tmp_path / "e.results.csv")
    assert explicit.code == 2
    assert "holds the results of a real run" in explicit.err


def test_an_interrupted_dry_run_says_so(tmp_path: Path) -> None:
    from importer.runs.runner import RunOptions, run_import
    from importer.runs.stopping import Stop

    export, mapping = _export(tmp_path)
    stop = Stop()
    stop.request()
    summary = run_import(RunOptions(export, mapping, results=tmp_path / "r.csv",
                                    dry_run=True), stop=stop)
    assert summary.exit_code == 3
    assert summary.stop_reason.startswith("interrupted")


def test_summary_json_also_tells_a_scheduler_about_refused_runs(cli, tmp_path: Path) -> None:
    _, mapping = _export(tmp_path)
    (tmp_path / "s.json").write_text('{"exit_code": 0}')
    result = cli("run", tmp_path / "missing.csv", "--mapping", mapping, "--dry-run",
                 "--summary-json", tmp_path / "s.json")
    assert result.code == 2
    summary = json.loads((tmp_path / "s.json").read_text())
    assert summary["exit_code"] == 2
    assert summary["error"].endswith("missing.csv: no such file; check the path")


def test_xlsx_results_keep_control_characters_visible(cli, tmp_path: Path) -> None:
    export = write_csv(tmp_path / "e.csv", "First Name,Email\nA\x0bB,a@x.io\n")
    mapping = tmp_path / "m.yaml"
    mapping.write_text("version: 1\nfields:\n  first_name: First Name\n  email: Email\n")
    result = cli("run", export, "--mapping", mapping, "--dry-run", "--results",
                 tmp_path / "r.xlsx")
    assert result.code == 0
    sheet = openpyxl.load_workbook(tmp_path / "r.xlsx")["Results"]
    assert sheet["I2"].value == "A\\x0bB"
