"""The terminal, --summary-json and the XLSX Summary sheet are rendered from one structure,
so they cannot drift apart (as ``read_as`` and ``read as`` once did)."""

import json
from pathlib import Path

import openpyxl

from tests.conftest import write_csv


def test_the_three_renderings_say_the_same_things(cli, tmp_path: Path) -> None:
    export = write_csv(tmp_path / "e.csv", "First Name,Email\nAda,a@x.io\nBob,bob@\n\n")
    mapping = tmp_path / "m.yaml"
    mapping.write_text("version: 1\nfields:\n  first_name: First Name\n  email: Email\n")
    result = cli("run", export, "--mapping", mapping, "--dry-run", "--preview", "1",
                 "--results", tmp_path / "r.xlsx", "--summary-json", tmp_path / "s.json")
    facts = json.loads((tmp_path / "s.json").read_text(encoding="utf-8"))
    sheet = dict(openpyxl.load_workbook(tmp_path / "r.xlsx")["Summary"].iter_rows(
        values_only=True))
    counts = facts.pop("counts")
    assert set(sheet) == set(facts) | set(counts)
    for name in ("input", "results", "read_as", "mapping", "sent_to", "started", "rows",
                 "exit_code"):
        assert sheet[name] == str(facts[name]), name
    assert {status: int(sheet[status]) for status in counts} == counts
    assert (counts["ready"], counts["invalid"], facts["empty_rows"]) == (1, 1, 1)
    assert facts["mapping"] == str(mapping) and facts["exit_code"] == result.code == 0
    out = result.out
    assert f"  read      {facts['read_as']}" in out and f"  sent to   {facts['sent_to']}" in out
    assert "  ready             1" in out and "  invalid           1" in out
    assert "  not data  1 empty rows" in out
    assert 'preview row 2: {"fields": {"first_name": "Ada", "email": "a@x.io"}}' in out
    assert out.rstrip().endswith("  exit      0")
