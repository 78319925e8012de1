"""Broken and malicious inputs built at test time (too big or too odd to commit).

Each ends with exit 2, one line naming the file and the problem, and nothing sent.
"""

import zipfile
from pathlib import Path

import pytest


def _long_line(path: Path) -> str:
    path.write_text("Email\n" + "a" * 9_000_000, encoding="utf-8")
    return "holds a line longer than 8,388,608 characters"


def _huge_cell(path: Path) -> str:
    path.write_text('Email,Name\n"' + "a\n" * 600_000 + '",x\n', encoding="utf-8")
    return "a cell holds more than 1,048,576 characters"


def _wide(path: Path) -> str:
    path.write_text(",".join(f"c{i}" for i in range(10_000)) + "\nx\n", encoding="utf-8")
    return "the header row has 10,000 columns, more than the 2,000 a contact export can have"


def _folder(path: Path) -> str:
    path.mkdir()
    return "is a folder, not a file"


def _missing(path: Path) -> str:
    return "no such file; check the path"


def _not_utf8_or_1252(path: Path) -> str:
    path.write_bytes(b"Email,Name\na@x.io,\x81\xb0\x8d\xdb\x8f\n")
    return "no single-byte encoding reads it as plausible text"


def _late_nul(path: Path) -> str:
    path.write_bytes(b"Email\n" + b"a@x.io\n" * 20_000 + b"b@x\x00.io\n")
    return "contains NUL bytes, so it is binary or damaged"


def _html_as_xls(path: Path) -> str:
    path.write_text("<html><body><table><tr><td>Email</td></tr></table></body></html>")
    return "is an HTML page"


def _pdf(path: Path) -> str:
    path.write_bytes(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n")
    return "is a PDF document, not a spreadsheet export"


def _lying_zip(path: Path) -> str:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("xl/workbook.xml", "<workbook>" + "x" * 5_000_000 + "</workbook>")
    data = bytearray(path.read_bytes())
    data[data.rfind(b"xl/workbook.xml") - 22:data.rfind(b"xl/workbook.xml") - 18] = (
        (100).to_bytes(4, "little"))
    path.write_bytes(bytes(data))
    return "the workbook is damaged"


def _corrupt_deflate(path: Path) -> str:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("xl/workbook.xml", "<workbook>" + "x" * 50_000 + "</workbook>")
    data = bytearray(path.read_bytes())
    start = data.find(b"xl/workbook.xml") + len("xl/workbook.xml") + 20
    data[start:start + 40] = bytes(b ^ 0x5A for b in data[start:start + 40])
    path.write_bytes(bytes(data))
    return "the workbook is damaged"


def _cut_part(path: Path) -> str:
    """The central directory says the part's compressed data runs past the end of the file."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("xl/workbook.xml", "<workbook>" + "".join(
            f"<s>{i * 7919 % 100003}</s>" for i in range(100_000)) + "</workbook>")
    data = bytearray(path.read_bytes())
    central = data.rfind(b"xl/workbook.xml") - 46
    data[central + 20:central + 24] = (0x7FFFFFFF).to_bytes(4, "little")
    path.write_bytes(bytes(data))
    return "the workbook is damaged"


CASES = {
    "long-line.csv": _long_line, "huge-cell.csv": _huge_cell, "wide.csv": _wide,
    "folder.csv": _folder, "missing.csv": _missing, "legacy.csv": _not_utf8_or_1252,
    "late-nul.csv": _late_nul, "report.xls": _html_as_xls, "scan.csv": _pdf,
    "lying-sizes.xlsx": _lying_zip, "corrupt-deflate.xlsx": _corrupt_deflate,
    "cut-part.xlsx": _cut_part,
}


def _unclosed_quote(path: Path) -> str:
    path.write_text('Email,Name\na@x.io,"Ada\nb@x.io,Bob\nc@x.io,Cy\n', encoding="utf-8")
    return "line 2: a quoted cell opens on this line and is never closed"


def _mostly_utf8(path: Path) -> str:
    path.write_bytes("Email,Name\na@x.io,Zoë\nb@x.io,N".encode() + b"\xfa\xf1ez\n")
    return "line 3 holds bytes that are not UTF-8, while the text before it is UTF-8"


CASES.update({"unclosed-quote.csv": _unclosed_quote, "mostly-utf8.csv": _mostly_utf8})


@pytest.mark.parametrize("name", CASES)
def test_hostile_input(name: str, cli, sandbox, tmp_path: Path) -> None:
    path = tmp_path / name
    problem = CASES[name](path)
    mapping = tmp_path / "m.yaml"
    mapping.write_text("version: 1\nfields:\n  email: Email\n", encoding="utf-8")
    result = cli("run", path, "--mapping", mapping, "--api-url", sandbox.url,
                 "--results", tmp_path / "out.csv")
    assert result.code == 2
    assert result.out == ""
    assert result.err.startswith(f"routera-import: error: {path}: ")
    assert problem in result.err
    assert result.err.count("\n") == 1
    assert sandbox.stats == {}
