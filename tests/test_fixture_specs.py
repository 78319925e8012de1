"""The committed fixtures are what their specs make (tests/fixtures/specs, make_fixtures.py).

A spec edited without rebuilding, or a fixture edited by hand, fails here, so each fact keeps
one source. Only files made without LibreOffice are rebuilt and compared byte for byte
(LibreOffice stamps its save time into every workbook); for the rest, the spec and the folder
must name the same files, and every readable file must have a reviewed ``.expected.json``.
"""

from pathlib import Path

from tests.fixtures.generators import FIXTURES, hostile, load_spec, text_exports, workbooks


def test_text_exports_are_what_their_rows_and_encodings_make(tmp_path: Path) -> None:
    for made in text_exports.build(tmp_path):
        committed = FIXTURES / "readable" / made.name
        assert made.read_bytes() == committed.read_bytes(), made.name


def test_hostile_files_expectations_and_readme_are_what_their_cases_make() -> None:
    spec = load_spec("hostile.json")
    folder = FIXTURES / "hostile"
    for case in spec["cases"]:
        name = case["file"]
        expected = (folder / f"{name}.expected.json").read_text(encoding="utf-8")
        assert expected == hostile.json_text(hostile.expected(case, spec["password"])), name
        if case["made_by"]["kind"] in hostile.REPRODUCIBLE:
            assert (folder / name).read_bytes() == hostile.make(case["made_by"], folder), name
    assert (folder / "README.md").read_text(encoding="utf-8") == hostile.readme(spec)


def test_every_fixture_folder_holds_exactly_what_the_specs_name() -> None:
    books = load_spec("workbooks.json").values()
    saved = {path for book in books for path in workbooks.saved_paths(book)}
    readable = {f"readable/{e['file']}" for e in load_spec("text-exports.json")}
    readable |= {path for path in saved if path.startswith("readable/")}
    hostile_files = {f"hostile/{case['file']}" for case in load_spec("hostile.json")["cases"]}
    expected = {f"{path}.expected.json" for path in readable | hostile_files}

    def present(folder: str) -> set[str]:
        return {f"{folder}/{p.name}" for p in (FIXTURES / folder).iterdir()}

    assert present("readable") == readable | {p for p in expected if p.startswith("readable/")}
    assert present("hostile") == hostile_files | {"hostile/README.md"} | {
        p for p in expected if p.startswith("hostile/")}
    made_by_libreoffice = {f"hostile/{c['file']}" for c in load_spec("hostile.json")["cases"]
                           if c["made_by"]["kind"] == "libreoffice"}
    assert made_by_libreoffice <= saved
