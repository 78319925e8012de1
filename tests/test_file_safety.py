"""Never overwrite what is not ours, never write through a symbolic link (issue 12 part 6)."""

import errno
import os
import stat
from pathlib import Path

import pytest
from openpyxl import Workbook

from importer.results.files import create_fresh, open_private
from importer.results.writer import is_results_file
from tests.conftest import PLAIN_MAPPING, read_results, write_csv

EXPORT = "Customer ID,First Name,Last Name,Email,Zip\n1,Ann,Lee,ann@example.com,02134\n"
SECRET = "root:secret:0:0\n"


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    mapping = tmp_path / "m.yaml"
    mapping.write_text(PLAIN_MAPPING, encoding="utf-8")
    return write_csv(tmp_path / "export.csv", EXPORT), mapping


@pytest.fixture
def victim(tmp_path: Path) -> Path:
    """A file some link points at: it must come out of every run unchanged, mode included."""
    path = tmp_path / "elsewhere" / "passwd"
    path.parent.mkdir()
    path.write_text(SECRET)
    path.chmod(0o644)
    return path


def untouched(path: Path) -> bool:
    return path.read_text() == SECRET and stat.S_IMODE(path.stat().st_mode) == 0o644


def test_an_unrelated_file_at_results_is_refused_unless_overwrite(cli, files, tmp_path) -> None:
    export, mapping = files
    other = tmp_path / "other.csv"
    other.write_text("name,amount\nrent,1200\n")
    refused = cli("run", export, "--mapping", mapping, "--dry-run", "--results", other)
    assert (refused.code, refused.out) == (2, "")
    assert refused.err == (f"routera-import: error: --results {other}: already exists and is "
                           "not a routera-import results file; choose another path, or pass "
                           "--overwrite to replace it\n")
    assert other.read_text() == "name,amount\nrent,1200\n"
    replaced = cli("run", export, "--mapping", mapping, "--dry-run", "--results", other,
                   "--overwrite")
    assert replaced.code == 0
    assert [r["status"] for r in read_results(other)] == ["ready"]


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".xlsx"])
def test_our_own_results_and_empty_files_are_replaced(cli, files, tmp_path, suffix) -> None:
    export, mapping = files
    results = tmp_path / f"r{suffix}"
    results.write_bytes(b"")
    for _ in range(2):
        assert cli("run", export, "--mapping", mapping, "--dry-run",
                   "--results", results).code == 0
        assert is_results_file(results)


def test_an_errors_file_with_fixes_is_not_taken_for_results(cli, files, tmp_path) -> None:
    export, mapping = files
    fixes = tmp_path / "fixes.csv"
    fixes.write_text("row,status,error_code,error,Customer ID,Email\n3,invalid,x,y,2,bo@x.org\n")
    refused = cli("run", export, "--mapping", mapping, "--dry-run", "--results", fixes)
    assert refused.code == 2 and "not a routera-import results file" in refused.err
    assert fixes.read_text().endswith("bo@x.org\n")


def test_foreign_workbooks_and_json_are_not_results(tmp_path: Path) -> None:
    book = Workbook()
    book.active.append(["row", "status"])
    book.save(tmp_path / "budget.xlsx")
    (tmp_path / "data.jsonl").write_text('{"row": 1, "status": "paid"}\n')
    (tmp_path / "bin.csv").write_bytes(b"\xff\xfe\x00garbage")
    assert not any(is_results_file(tmp_path / name)
                   for name in ("budget.xlsx", "data.jsonl", "bin.csv"))


@pytest.mark.parametrize("link", ["r.csv", "r.csv.lock", "r.csv.journal"])
def test_a_link_at_a_path_we_write_is_refused_and_its_target_untouched(
        cli, files, sandbox, victim, tmp_path, link) -> None:
    export, mapping = files
    (tmp_path / link).symlink_to(victim)
    result = cli("run", export, "--mapping", mapping, "--api-url", sandbox.url,
                 "--results", tmp_path / "r.csv", "--overwrite")
    assert (result.code, result.out) == (2, "")
    assert "is a symbolic link" in result.err and len(result.err.splitlines()) == 1
    assert untouched(victim)
    assert sandbox.stats == {}


@pytest.mark.parametrize("link", [".r.xlsx.partial", "r.xlsx.journal.tmp", ".s.json.partial"])
def test_links_at_temporary_paths_are_replaced_not_followed(cli, files, sandbox, victim,
                                                           tmp_path, link) -> None:
    export, mapping = files
    (tmp_path / link).symlink_to(victim)
    result = cli("run", export, "--mapping", mapping, "--api-url", sandbox.url,
                 "--results", tmp_path / "r.xlsx", "--summary-json", tmp_path / "s.json")
    assert result.code == 0
    assert untouched(victim)
    assert is_results_file(tmp_path / "r.xlsx")


def test_a_link_that_appears_after_the_check_is_not_followed(victim, tmp_path) -> None:
    link = tmp_path / "late.csv"
    link.symlink_to(victim)
    with pytest.raises(OSError) as raised:
        open_private(link, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    assert raised.value.errno in (errno.ELOOP, errno.EMLINK)
    os.close(create_fresh(link))
    assert not link.is_symlink() and untouched(victim)
    assert stat.S_IMODE(link.stat().st_mode) == 0o600


def test_our_results_are_recognised_when_the_first_block_ends_mid_character(tmp_path) -> None:
    from importer.results.files import HEAD_BYTES, first_row

    results = tmp_path / "r.csv"
    header = "\ufeffrow,status,id,http_status,error,error_code\n"
    filler = "x" * (HEAD_BYTES - len(header.encode()) - 1)
    results.write_text(header + filler + "ë\n", encoding="utf-8")
    assert first_row(results)[:2] == ["row", "status"]


def test_summary_json_never_replaces_a_file_we_did_not_write(cli, files, tmp_path) -> None:
    """R3-3: ``--summary-json export.csv`` used to replace the export itself with JSON."""
    export, mapping = files
    refused = cli("run", export, "--mapping", mapping, "--dry-run", "--summary-json", export)
    assert refused.code == 2
    assert refused.err == (f"routera-import: error: --summary-json {export}: already exists and "
                           "is not a routera-import summary file; choose another path, or pass "
                           "--overwrite to replace it\n")
    assert export.read_text(encoding="utf-8") == EXPORT
    assert not (tmp_path / "export.results.csv").exists()
    summary = tmp_path / "s.json"
    for _ in range(2):  # our own summary is replaced night after night
        assert cli("run", export, "--mapping", mapping, "--dry-run", "--summary-json",
                   summary).code == 0
    other = tmp_path / "other.json"
    other.write_text('{"name": "not ours"}')
    assert cli("run", export, "--mapping", mapping, "--dry-run", "--summary-json", other,
               "--overwrite").code == 0
    assert '"exit_code": 0' in other.read_text(encoding="utf-8")
