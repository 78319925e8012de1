"""Workbooks locked only with Excel's default password are read; real passwords are refused.

The readable fixtures ``workbook-simple-default-password.{xls,xlsx}`` and
``workbook-simple-protected-structure.xls`` were saved by LibreOffice (specs/workbooks.json);
test_fixture_corpus.py checks they read and send exactly what ``workbook-simple.xlsx`` does.
Agile encryption (what Excel 2010 and later write) is made here with msoffcrypto-tool, since
LibreOffice saves only the standard one headless.
"""

import io
from pathlib import Path

import msoffcrypto
import olefile
import pytest

from importer.errors import InputError
from importer.readers import ReadOptions, open_table
from importer.readers.protection import MAX_SPIN_COUNT
from tests.conftest import read_results

FIXTURES = Path(__file__).parent / "fixtures"
READABLE = FIXTURES / "readable"
HOSTILE = FIXTURES / "hostile"
SHEETS = FIXTURES / "sheets"
LOCKED = "the workbook is password-protected; save a copy without a password and import that"


def _cells(path: Path) -> list[list[str]]:
    return [cells for batch in open_table(path, ReadOptions()).batches() for cells in batch.cells]


def _agile(plain: Path, password: str, target: Path) -> Path:
    with plain.open("rb") as source:
        locked = io.BytesIO()
        msoffcrypto.OfficeFile(source).encrypt(password, locked)
    target.write_bytes(locked.getvalue())
    return target


def test_agile_encryption_with_the_default_password_reads_as_the_plain_workbook(
        tmp_path: Path) -> None:
    plain = READABLE / "workbook-simple.xlsx"
    locked = _agile(plain, "VelvetSweatshop", tmp_path / "agile.xlsx")
    table = open_table(locked, ReadOptions())
    assert "opened with Excel's default password" in table.detail
    assert [c for b in table.batches() for c in b.cells] == _cells(plain)


@pytest.mark.parametrize("name", ["password.xls", "password.xlsx", "password.ods"])
def test_a_real_password_is_refused_with_the_same_line(name: str) -> None:
    with pytest.raises(InputError) as refused:
        open_table(HOSTILE / name, ReadOptions())
    assert str(refused.value) == f"{HOSTILE / name}: {LOCKED}"


def test_agile_encryption_with_another_password_is_refused(tmp_path: Path) -> None:
    locked = _agile(READABLE / "workbook-simple.xlsx", "secret", tmp_path / "secret.xlsx")
    with pytest.raises(InputError, match=LOCKED):
        open_table(locked, ReadOptions())


def test_a_file_asking_for_an_endless_key_derivation_is_refused_at_once(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The spin count comes from the file; a hostile one must not keep the run hashing (the
    key is not even derived)."""
    from msoffcrypto.method.ecma376_agile import ECMA376Agile

    derived = []
    monkeypatch.setattr(ECMA376Agile, "makekey_from_password",
                        lambda *args: derived.append(args))
    locked = _agile(READABLE / "workbook-simple.xlsx", "VelvetSweatshop", tmp_path / "spin.xlsx")
    with olefile.OleFileIO(str(locked), write_mode=True) as ole:
        info = ole.openstream("EncryptionInfo").read()
        assert b'spinCount="100000"' in info
        ole.write_stream("EncryptionInfo", info.replace(b'spinCount="100000"',
                                                        b'spinCount="999999"'))
    assert MAX_SPIN_COUNT < 999_999
    with pytest.raises(InputError, match=LOCKED):
        open_table(locked, ReadOptions())
    assert derived == []


def test_a_decrypted_workbook_passes_the_zip_bomb_check_too(tmp_path: Path) -> None:
    locked = _agile(HOSTILE / "zip-bomb.xlsx", "VelvetSweatshop", tmp_path / "bomb.xlsx")
    with pytest.raises(InputError, match="the shape of a zip bomb") as refused:
        open_table(locked, ReadOptions())
    assert str(refused.value).startswith(f"{locked}: xl/worksheets/sheet1.xml unpacks to ")


def test_the_summary_says_the_default_password_opened_it(cli, sandbox, tmp_path: Path) -> None:
    """End to end through the CLI: the XLS Calc encrypts when its structure is protected is
    read, and its formula error is still reported (xlrd reads the decrypted bytes too)."""
    mapping = tmp_path / "m.yaml"
    mapping.write_text("version: 1\ncustom_fields: [notes]\nfields:\n  email: Email\n"
                       "  first_name: First Name\n  notes: Score\n", encoding="utf-8")
    path = SHEETS / "formula-error-protected-structure.xls"
    result = cli("run", path, "--mapping", mapping, "--api-url", sandbox.url,
                 "--results", tmp_path / "r.csv")
    assert result.code == 0, result.err
    assert ("(XLS, opened with Excel's default password (no password is asked), "
            "sheet 'Contacts', headers on row 1)") in result.out
    rows = read_results(tmp_path / "r.csv")
    assert [(r["status"], r["error_code"]) for r in rows] == [("invalid", "cell-error"),
                                                              ("created", "")]
    assert "cell C2 shows #N/A" in rows[0]["error"]
    assert [(r["first_name"], r["notes"]) for r in sandbox.store.records()] == [("Bob", "7")]
