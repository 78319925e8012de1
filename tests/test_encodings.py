# ruff: noqa: RUF001
"""Legacy encodings: files written byte by byte in the encoding a real program uses.

Each file below is the text encoded with the codec the exporting program writes (Excel's
"CSV" on a Polish or Russian Windows, "CSV (MS-DOS)", "CSV (Macintosh)", ...); reading it must
give back the text exactly, or refuse with the candidates named, never a wrong guess.
"""

from pathlib import Path

import pytest

from importer.errors import InputError, MappingError
from importer.mapping.spec import load_mapping
from importer.readers import ReadOptions, describe, open_table
from importer.readers.encodings import normalise_encoding
from tests.conftest import TOKEN, read_results

POLISH = [["Imię", "Nazwisko", "E-mail"], ["Łukasz", "Wiśniewski", "lukasz@example.pl"],
          ["Żaneta", "Kowalczyk", "zaneta@example.pl"], ["Małgorzata", "Żółć", "m@example.pl"],
          ["Józef", "Gąsiorowski", "jozef@example.pl"]]
RUSSIAN = [["Имя", "Фамилия", "Email"], ["Иван", "Петров", "ivan@example.ru"],
           ["Ольга", "Сидорова", "olga@example.ru"], ["Юрий", "Яковлев", "yuri@example.ru"]]
FRENCH = [["Prénom", "Nom", "Email"], ["Hélène", "Lefèvre", "helene@example.fr"],
          ["François", "Dupré", "francois@example.fr"], ["Jérôme", "Crème", "j@example.fr"]]
GERMAN = [["Vorname", "Nachname", "Email"], ["Jürgen", "Müller", "juergen@example.de"],
          ["Renée", "Weiß", "renee@example.de"], ["Günther", "Öztürk", "g@example.de"]]
FRENCH_SHORT = [["Prénom", "Nom"], ["Hélène", "Lefèvre"]]
CZECH = [["Jméno", "Příjmení"], ["Jiří", "Dvořák"], ["Šárka", "Nováková"], ["Tomáš", "Černý"]]
TURKISH = [["Ad", "Soyad"], ["Şükrü", "Yılmaz"], ["Ayşe", "Öztürk"], ["İsmail", "Doğan"]]
GREEK = [["Όνομα", "Επώνυμο"], ["Γιώργος", "Παπαδόπουλος"], ["Μαρία", "Κωνσταντίνου"]]
LITHUANIAN = [["Vardas", "Pavardė"], ["Jonas", "Kazlauskas"], ["Žydrūnė", "Šimkutė"],
              ["Ąžuolas", "Petraitis"]]

CASES = {
    "polish-cp1250": ("cp1250", ";", POLISH, "Łukasz"),
    "russian-cp1251": ("cp1251", ",", RUSSIAN, "Иван"),
    "russian-koi8-r": ("koi8_r", ",", RUSSIAN, "Иван"),
    "french-ms-dos-cp850": ("cp850", ";", FRENCH, "Hélène"),
    "german-mac-roman": ("mac_roman", ",", GERMAN, "Jürgen"),
    "german-cp1252": ("cp1252", ";", GERMAN, "Jürgen"),
    "french-cp1252": ("cp1252", ";", FRENCH, "Hélène"),
    "short-french-cp1252": ("cp1252", ",", FRENCH_SHORT, "Hélène"),
    "czech-cp1250": ("cp1250", ",", CZECH, "Dvořák"),
    "turkish-cp1254": ("cp1254", ",", TURKISH, "Şükrü"),
    "greek-cp1253": ("cp1253", ",", GREEK, "Γιώργος"),
    "lithuanian-cp1257": ("cp1257", ",", LITHUANIAN, "Žydrūnė"),
    "russian-dos-cp866": ("cp866", ",", RUSSIAN, "Иван"),
}


def _write(path: Path, rows: list[list[str]], encoding: str, delimiter: str = ",") -> Path:
    text = "".join(delimiter.join(row) + "\r\n" for row in rows)
    path.write_bytes(text.encode(encoding))
    return path


def _cells(path: Path, **options: str) -> list[list[str]]:
    table = open_table(path, ReadOptions(**options))
    return [table.headers] + [cells for batch in table.batches() for cells in batch.cells]


@pytest.mark.parametrize("case", CASES, ids=str)
def test_legacy_file_reads_back_exactly_and_names_its_encoding(case: str,
                                                               tmp_path: Path) -> None:
    encoding, delimiter, rows, word = CASES[case]
    path = _write(tmp_path / "export.csv", rows, encoding, delimiter)
    table = open_table(path, ReadOptions())
    assert [table.headers] + [c for b in table.batches() for c in b.cells] == rows
    line = describe(table)
    assert f"({encoding}, read as " in line
    assert f'"{word}"' in line


def test_two_plausible_readings_are_refused_naming_both_with_their_words(tmp_path: Path) -> None:
    """Croatian "Maček" in cp1250 is "Maèek" in cp1252: both could be a name."""
    path = _write(tmp_path / "export.csv", [["Ime", "Prezime"], ["Ivan", "Maček"]], "cp1250")
    with pytest.raises(InputError) as caught:
        open_table(path, ReadOptions())
    message = str(caught.value)
    assert "more than one legacy encoding reads it plausibly" in message
    assert "cp1250 (Maček)" in message
    assert "cp1252 (Maèek)" in message
    assert "pass --encoding" in message
    assert _cells(path, encoding="cp1250")[1] == ["Ivan", "Maček"]


def test_bytes_no_encoding_reads_as_text_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "export.csv"
    path.write_bytes(b"Email,Name\na@x.io,\x81\xb0\x8d\xdb\x8f\n")
    with pytest.raises(InputError, match="no single-byte encoding reads it as plausible text"):
        open_table(path, ReadOptions())


def test_a_polish_file_is_never_read_as_cp1252(tmp_path: Path) -> None:
    """The issue's measurement: "£ukasz Wiœniewski" was created, exit 0."""
    path = _write(tmp_path / "export.csv", POLISH[:2], "cp1250")
    assert _cells(path)[1][:2] == ["Łukasz", "Wiśniewski"]


@pytest.mark.parametrize(("name", "codec"), [
    ("MS-DOS", "cp850"), ("x-mac-roman", "mac-roman"), ("latin1", "iso8859-1"),
    ("Windows-1250", "cp1250"), ("macintosh", "mac-roman"), ("UTF-8", "utf-8"),
])
def test_usual_encoding_names_are_understood(name: str, codec: str) -> None:
    assert normalise_encoding(name) == codec


def test_explicit_alias_reads_the_file(tmp_path: Path) -> None:
    path = _write(tmp_path / "export.csv", FRENCH, "cp850", ";")
    assert _cells(path, encoding="MS-DOS") == FRENCH


def test_unknown_encoding_is_one_clear_error(tmp_path: Path) -> None:
    path = _write(tmp_path / "export.csv", FRENCH, "cp850", ";")
    with pytest.raises(InputError, match="unknown encoding 'klingon'"):
        open_table(path, ReadOptions(encoding="klingon"))


def test_mapping_sets_encoding_and_delimiter_for_nightly_exports(cli, sandbox,
                                                                 tmp_path: Path) -> None:
    """An ambiguous file that arrives every night: the mapping settles it once."""
    export = _write(tmp_path / "export.csv", [["Ime", "Prezime", "Email"],
                                              ["Ivan", "Maček", "ivan@example.hr"]],
                    "cp1250", "|")
    mapping = tmp_path / "m.yaml"
    mapping.write_text("version: 1\nencoding: Windows-1250\ndelimiter: pipe\nfields:\n"
                       "  first_name: Ime\n  last_name: Prezime\n  email: Email\n",
                       encoding="utf-8")
    result = cli("run", export, "--mapping", mapping, "--api-url", sandbox.url,
                 "--results", tmp_path / "r.csv")
    assert result.code == 0, result.err
    assert '(cp1250, read as "Maček", pipe-separated' in result.out
    [record] = sandbox.store.records()
    assert record["last_name"] == "Maček"
    assert [r["status"] for r in read_results(tmp_path / "r.csv")] == ["created"]
    assert TOKEN not in result.out


@pytest.mark.parametrize(("line", "message"), [
    ("encoding: klingon", "line 2: unknown encoding 'klingon'"),
    ("delimiter: ':'", "line 2: delimiter must be one of , ; tab |"),
])
def test_mapping_refuses_unknown_encoding_or_delimiter(line: str, message: str,
                                                       tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_text(f"version: 1\n{line}\nfields:\n  email: Email\n", encoding="utf-8")
    with pytest.raises(MappingError, match=message):
        load_mapping(path)


def test_dry_run_shows_the_encoding_and_words_before_anything_is_sent(cli,
                                                                      tmp_path: Path) -> None:
    export = _write(tmp_path / "export.csv", RUSSIAN, "cp1251")
    mapping = tmp_path / "m.yaml"
    mapping.write_text("version: 1\nfields:\n  first_name: Имя\n  email: Email\n",
                       encoding="utf-8")
    result = cli("run", export, "--mapping", mapping, "--dry-run", "--results",
                 tmp_path / "r.csv")
    assert result.code == 0, result.err
    assert '(cp1251, read as "Имя", "Фамилия", "Иван"' in result.out


def test_excel_csv_macintosh_with_cr_line_ends(tmp_path: Path) -> None:
    """Found by attacking the reader: classic Mac files end lines with CR alone."""
    path = tmp_path / "mac.csv"
    path.write_bytes("\r".join(",".join(row) for row in GERMAN).encode("mac_roman") + b"\r")
    assert _cells(path) == GERMAN


def test_cp1252_file_whose_only_legacy_bytes_are_punctuation(tmp_path: Path) -> None:
    """Found by attacking the reader: "5 €" must not make cp1251's "5 Ђ" a rival."""
    rows = [["First Name", "Email", "Notes"], ["Ada", "a@x.io", "“VIP” – call back"],
            ["Bob", "b@x.io", "costs 5 €"], ["Cy", "c@x.io", "it’s fine"]]
    path = _write(tmp_path / "e.csv", rows, "cp1252")
    assert _cells(path) == rows
