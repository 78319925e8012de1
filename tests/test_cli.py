"""The command line end to end, over real loopback HTTP against the sandbox API."""

import os
import stat
from pathlib import Path

import pytest

from tests.conftest import TOKEN, dump, read_results, records, write_csv

EXPORT = """\
Customer ID,First Name,Last Name,Email,Phone,Zip
000457,Zoë,Null,ZOE@example.com,=1+1,02134
000458,NA,None, jose@example.es ,,00501

000459,,,,,
000460,Bob,,bob@,,
000461,Zoe,,zoe@EXAMPLE.com,,
,Walk-in,,,,1e5
"""


@pytest.fixture
def export(tmp_path: Path) -> Path:
    return write_csv(tmp_path / "export.csv", EXPORT)


def run(cli, export: Path, mapping: Path, *extra: object):
    return cli("run", export, "--mapping", mapping, "--results",
               export.with_name("out.csv"), *extra)


def test_import_creates_exact_records_and_accounts_for_every_row(cli, sandbox, export,
                                                                  mapping_file) -> None:
    result = run(cli, export, mapping_file, "--api-url", sandbox.url)
    assert result.code == 0
    assert sorted(records(sandbox), key=dump) == sorted([
        {"external_id": "000457", "first_name": "Zoë", "last_name": "Null",
         "email": "zoe@example.com", "phone": "=1+1", "postal_code": "02134"},
        {"external_id": "000458", "first_name": "NA", "last_name": "None",
         "email": "jose@example.es", "postal_code": "00501"},
        {"first_name": "Walk-in", "postal_code": "1e5"},
    ], key=dump)
    rows = read_results(export.with_name("out.csv"))
    assert [(r["row"], r["status"], r["error_code"]) for r in rows] == [
        ("2", "created", ""), ("3", "created", ""), ("5", "invalid", "missing-identity"),
        ("6", "invalid", "invalid-email"), ("7", "duplicate", "duplicate-in-file"),
        ("8", "created", ""),
    ]
    stored = {r["email"] or r["first_name"]: r["id"] for r in sandbox.store.records()}
    assert {r["email"] or r["first_name"]: r["id"] for r in rows if r["status"] == "created"
            } == stored
    assert rows[0]["email"] == "zoe@example.com"
    assert rows[3]["error"] == "email 'bob@' is not an email address"
    assert rows[4]["error"] == "same email as row 2"


def test_summary_counts_every_row(cli, sandbox, export, mapping_file) -> None:
    result = run(cli, export, mapping_file, "--api-url", sandbox.url)
    assert result.lines[0] == f"routera-import: export.csv -> {export.with_name('out.csv')}"
    assert "  read      export.csv (utf-8, comma-separated, headers on row 1)" in result.lines
    assert f"  sent to   {sandbox.url}" in result.lines
    assert "  created           3" in result.lines
    assert "  invalid           2" in result.lines
    assert "  duplicate         1" in result.lines
    assert "  not data  1 empty rows" in result.lines
    assert result.lines[-1] == "  exit      0"


@pytest.mark.parametrize("flags", [(), ("--no-ledger",)])
def test_rerun_reports_earlier_rows_as_duplicates_and_creates_nothing(
        cli, sandbox, export, mapping_file, flags: tuple[str, ...]) -> None:
    """Rows this results file's journal says an earlier run created are settled by it (it
    decides first, keyed or not), with or without the ledger: nothing is sent."""
    run(cli, export, mapping_file, "--api-url", sandbox.url)
    sent = sum(sandbox.stats.values())
    result = run(cli, export, mapping_file, "--api-url", sandbox.url, *flags)
    assert result.code == 0
    assert len(sandbox.store.records()) == 3
    assert sum(sandbox.stats.values()) - sent == 0
    rows = read_results(export.with_name("out.csv"))
    assert [(r["status"], r["error_code"]) for r in rows if r["row"] in ("2", "3", "8")] == [
        ("duplicate", "created-by-earlier-run")] * 3
    assert all(r["id"] for r in rows if r["row"] in ("2", "3", "8"))


def test_dry_run_sends_nothing(cli, sandbox, export, mapping_file) -> None:
    result = run(cli, export, mapping_file, "--api-url", sandbox.url, "--dry-run",
                 "--preview", "1")
    assert result.code == 0
    assert sandbox.stats == {}
    assert [r["status"] for r in read_results(export.with_name("out.csv"))] == [
        "ready", "ready", "invalid", "invalid", "duplicate", "ready"]
    assert ('  preview row 2: {"fields": {"external_id": "000457", "first_name": "Zoë", '
            '"last_name": "Null", "email": "zoe@example.com", "phone": "=1+1", '
            '"postal_code": "02134"}}') in result.lines


def test_a_refused_token_stops_the_run(cli, sandbox, export, mapping_file, monkeypatch) -> None:
    monkeypatch.setenv("ROUTERA_API_TOKEN", "wrong-token-value")
    result = run(cli, export, mapping_file, "--api-url", sandbox.url, "--concurrency", "1")
    assert result.code == 3
    assert sandbox.store.records() == []
    assert sandbox.stats == {401: 1}
    statuses = [r["status"] for r in read_results(export.with_name("out.csv"))]
    assert statuses == ["failed", "skipped", "invalid", "invalid", "skipped", "skipped"]
    assert ("  STOPPED: the API refused the token (HTTP 401 Unauthorized): check "
            "ROUTERA_API_TOKEN (missing account context); rerun with --resume to continue"
            ) in result.lines


def test_sandbox_run_says_so(cli, export, mapping_file, tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = run(cli, export, mapping_file, "--sandbox")
    assert result.code == 0
    assert any(line.startswith("  sent to   SANDBOX at http://127.0.0.1:") and
               line.endswith("(database .routera-sandbox.db), not the real API")
               for line in result.lines)


@pytest.mark.parametrize(("args", "env", "message"), [
    (["--api-url", "http://crm.example.com"], {},
     "refusing plain http:// for crm.example.com: the token would cross the network "
     "unencrypted; use https://"),
    ([], {"ROUTERA_API_TOKEN": ""},
     "ROUTERA_API_TOKEN is not set; export the API token first (or try --sandbox or --dry-run)"),
    (["--results", "out.txt"], {},
     "--results out.txt: unknown format .txt; end the name with .csv, .xlsx, .jsonl"),
])
def test_bad_settings_exit_2_with_one_line(cli, export, mapping_file, monkeypatch, args, env,
                                           message) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    result = cli("run", export, "--mapping", mapping_file, *args)
    assert (result.code, result.out) == (2, "")
    assert result.err == f"routera-import: error: {message}\n"


def test_results_are_private_and_safe_to_open_in_excel(cli, sandbox, tmp_path) -> None:
    mapping_file = tmp_path / "names.yaml"
    mapping_file.write_text("version: 1\nfields:\n  first_name: First Name\n"
                            "  last_name: Last Name\n  email: Email\n")
    export = write_csv(tmp_path / "export.csv", "First Name,Last Name,Email\n"
                       '"=HYPERLINK(""http://x"")",+1,@a\n-2,\tTab,\n')
    out = tmp_path / "out.csv"
    out.write_text("row,status,id,http_status,error,error_code\n2,created,old,201,,\n")
    out.chmod(0o644)
    assert run(cli, export, mapping_file, "--api-url", sandbox.url).code == 0
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o600
    rows = read_results(out)
    assert [(r["first_name"], r["last_name"], r["email"], r["error"]) for r in rows] == [
        ("\'=HYPERLINK(\"http://x\")", "\'+1", "\'@a", "email \'@a\' is not an email address"),
        ("\'-2", "Tab", "", ""),
    ]
    assert [r["first_name"] for r in sandbox.store.records()] == ["-2"]


def test_the_token_never_appears_in_any_output(cli, sandbox, export, mapping_file,
                                               monkeypatch) -> None:
    outputs = [run(cli, export, mapping_file, "--api-url", sandbox.url)]
    monkeypatch.setenv("ROUTERA_API_TOKEN", TOKEN + "x")
    outputs.append(run(cli, export, mapping_file, "--api-url", sandbox.url))
    written = "".join(p.read_text(encoding="utf-8-sig") for p in export.parent.glob("out.csv*")
                      if p.is_file())
    everything = written + "".join(r.out + r.err for r in outputs)
    assert TOKEN not in everything
