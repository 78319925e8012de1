"""Real exports (written by LibreOffice or shaped like Excel's) and hostile files, by folder.

Each fixture has a ``.expected.json`` beside it: for readable files it is reviewed by hand, not
generated. The files are made from ``fixtures/specs/`` by ``fixtures/make_fixtures.py``.
"""

import json
from pathlib import Path

import pytest

from importer.readers import ReadOptions, open_table
from importer.sandbox import Sandbox
from tests.conftest import TOKEN, read_results

FIXTURES = Path(__file__).parent / "fixtures"
READABLE = sorted((FIXTURES / "readable").glob("*.expected.json"))
HOSTILE = sorted((FIXTURES / "hostile").glob("*.expected.json"))


def _subject(expected: Path) -> Path:
    return expected.with_name(expected.name.removesuffix(".expected.json"))


def _read(path: Path, options: dict) -> tuple[list[str], dict[int, list[str]], set[int], int]:
    table = open_table(path, ReadOptions(**options))
    rows, ragged = {}, set()
    for batch in table.batches():
        for index, (row, cells) in enumerate(zip(batch.rows, batch.cells, strict=True)):
            rows[row] = [c.strip() for c in cells]
            if index in batch.problems:
                ragged.add(row)
    return table.headers, rows, ragged, table.stats.empty_rows


@pytest.mark.parametrize("expected", READABLE, ids=lambda p: _subject(p).name)
def test_readable_export_gives_what_a_person_sees(expected: Path) -> None:
    spec = json.loads(expected.read_text(encoding="utf-8"))
    headers, rows, ragged, empty = _read(_subject(expected), spec["options"])
    assert headers == spec["headers"]
    want = {r["row"]: r for r in spec["rows"]}
    assert sorted(rows) == sorted(want)
    for number, row in want.items():
        if row.get("ragged"):
            assert number in ragged
        else:
            cells = row.get("cells") or [row["values"][h] for h in headers]
            assert rows[number] == cells, f"row {number}"
    assert empty == spec["empty_rows_skipped"]


@pytest.mark.parametrize("expected", [p for p in READABLE if "duplicate" not in p.name],
                         ids=lambda p: _subject(p).name)
def test_every_created_record_holds_exactly_the_cells(expected: Path, cli,
                                                      tmp_path: Path) -> None:
    """Each header maps to a field col_<n>; the stored record must equal the sheet's cells."""
    spec = json.loads(expected.read_text(encoding="utf-8"))
    headers = spec["headers"]
    names = [f"col_{i}" for i in range(len(headers))]
    lines = ["version: 1", f"custom_fields: [{', '.join(names)}]", "fields:",
             "  first_name: {value: fixture}"]
    lines += [f"  {name}: {json.dumps(header)}" for name, header in zip(names, headers,
                                                                          strict=True)]
    options = spec["options"]
    if options["sheet"]:
        lines.append(f"sheet: {options['sheet']}")
    (tmp_path / "m.yaml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    with Sandbox(tmp_path / "db", token=TOKEN, fields=tuple(names)) as api:
        args = ["run", _subject(expected), "--mapping", tmp_path / "m.yaml", "--api-url", api.url,
                "--results", tmp_path / "r.csv"]
        if options["header_row"]:
            args += ["--header-row", options["header_row"]]
        result = cli(*args)
        stored = api.store.records()
    results = {int(r["row"]): r for r in read_results(tmp_path / "r.csv")}
    by_id = {r["id"]: r for r in stored}
    for row in spec["rows"]:
        outcome = results[row["row"]]
        if row.get("ragged"):
            assert outcome["error_code"] == "ragged-row"
            continue
        assert outcome["status"] == "created", outcome
        record = by_id[outcome["id"]]
        sent = {h: record.get(n) or "" for h, n in zip(headers, names, strict=True)}
        assert sent == row["values"], f"row {row['row']}"
    assert result.code == 0


@pytest.mark.parametrize("expected", HOSTILE, ids=lambda p: _subject(p).name)
def test_hostile_file_is_refused_with_one_line_and_nothing_sent(expected: Path, cli, sandbox,
                                                                tmp_path: Path) -> None:
    spec = json.loads(expected.read_text(encoding="utf-8"))
    path = _subject(expected)
    mapping_file = tmp_path / "mapping.yaml"
    mapping_file.write_text("version: 1\nfields:\n  email: Email\n", encoding="utf-8")
    result = cli("run", path, "--mapping", mapping_file, "--api-url", sandbox.url,
                 "--results", tmp_path / "out.csv")
    if spec["problem"] == "no-data-rows":
        assert result.code == 0
        assert "nothing to do" in result.out
    else:
        assert result.code == 2, result.out
        assert result.err.count("\n") == 1
        assert result.err.startswith(f"routera-import: error: {path}: ")
        assert "Traceback" not in result.err
    assert sandbox.stats == {}
    assert sandbox.store.records() == []
