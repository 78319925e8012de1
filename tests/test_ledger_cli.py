"""``routera-import ledger``: list, show, export and forget, as an ops person uses them."""

import csv
from pathlib import Path

import pytest

from tests.conftest import PLAIN_MAPPING, TOKEN, read_results
from tests.test_ledger import write_export


@pytest.fixture
def imported(cli, sandbox, tmp_path: Path) -> Path:
    """Ten rows imported from contacts.csv (two of them keyless)."""
    (tmp_path / "m.yaml").write_text(PLAIN_MAPPING, encoding="utf-8")
    export = tmp_path / "contacts.csv"
    write_export(export, range(10))
    assert cli("run", export, "--mapping", tmp_path / "m.yaml", "--api-url", sandbox.url,
               "--results", tmp_path / "r1.csv").code == 0
    return export


def ledger(cli, sandbox, *args: object):
    return cli("ledger", *args[:1], "--api-url", sandbox.url, *args[1:])


def test_list_names_destinations_without_the_token(cli, sandbox, imported: Path,
                                                   private_ledger: Path) -> None:
    result = cli("ledger", "list")
    assert result.code == 0
    assert result.lines[0] == f"ledger {private_ledger}"
    assert result.lines[1].startswith(f"    1  {sandbox.url}/contacts  token ")
    assert result.lines[1].endswith("10 entries")
    assert TOKEN not in result.out


def test_show_counts_entries_by_file(cli, sandbox, imported: Path) -> None:
    result = ledger(cli, sandbox, "show")
    assert result.code == 0
    assert f"  {sandbox.url}/contacts (destination 1): 10 entries" in result.lines
    assert result.lines[2].startswith("         10  contacts.csv  (imported ")


def test_show_lists_runs_in_progress_and_runs_that_died(cli, sandbox, imported: Path,
                                                       private_ledger: Path) -> None:
    from importer.ledger import open_store
    from importer.ledger.fingerprints import field_prints, fields_print
    from importer.ledger.store import Claim

    fields = {"first_name": "Ann"}
    claim = Claim(fields_print(fields), field_prints(fields), "night.csv", 2, 1, "2026-11-27")
    store = open_store(str(private_ledger))
    try:
        store.start_run(1, 77, "/srv/night.results.csv")
        assert store.claim(1, 77, claim, take_over_unknown=False).claimed
        running = ledger(cli, sandbox, "show").lines[-1]
        assert running.startswith("  run running now: pid ")
        assert running.endswith("results /srv/night.results.csv, 1 rows without a key claimed")
    finally:
        store.close()
    assert ledger(cli, sandbox, "show").lines[-1].startswith(
        "  run ended without finishing (its claimed rows count as outcome unknown; resume its "
        "results file to settle them)")


def test_export_writes_every_entry_as_csv(cli, sandbox, imported: Path, tmp_path: Path) -> None:
    out = tmp_path / "ledger.csv"
    assert ledger(cli, sandbox, "export", "--output", out).code == 0
    with out.open(encoding="utf-8-sig", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 10
    assert {r["answer"] for r in rows} == {"created"}
    assert rows[1]["email"] == "p1@example.com" and rows[1]["row"] == "3"
    ids = {r["id"] for r in read_results(tmp_path / "r1.csv")}
    assert {r["id"] for r in rows} == ids
    one = ledger(cli, sandbox, "export", "--key", "C00003")
    assert len(one.lines) == 2 and "C00003" in one.lines[1]


def test_forget_asks_first_and_then_the_row_is_sent_again(cli, sandbox, imported: Path,
                                                          tmp_path: Path) -> None:
    refused = ledger(cli, sandbox, "forget", "--key", "P3@example.com")
    assert refused.code == 2
    assert refused.err == ("routera-import: error: not forgotten: 1 entries of "
                           f"{sandbox.url}/contacts with key P3@example.com (confirm, or pass "
                           "--yes in scripts)\n")
    done = ledger(cli, sandbox, "forget", "--key", "P3@example.com", "--yes")
    assert done.code == 0 and done.out == f"forgot 1 entries of {sandbox.url}/contacts\n"
    sandbox.store._db.execute("DELETE FROM contacts WHERE external_id = 'C00003'")
    assert cli("run", imported, "--mapping", tmp_path / "m.yaml", "--api-url", sandbox.url,
               "--results", tmp_path / "r2.csv").code == 0
    rows = read_results(tmp_path / "r2.csv")
    assert [r["row"] for r in rows if r["status"] == "created"] == ["5"]
    assert len([r for r in rows if r["error_code"] == "imported-earlier"]) == 9


def test_forget_by_file_and_all(cli, sandbox, imported: Path) -> None:
    assert ledger(cli, sandbox, "forget", "--file", "other.csv", "--yes").out.startswith(
        "nothing to forget: 0 entries")
    assert ledger(cli, sandbox, "forget", "--file", "contacts.csv", "--yes").out == (
        f"forgot 10 entries of {sandbox.url}/contacts\n")
    assert ledger(cli, sandbox, "forget", "--all", "--yes").out.startswith("nothing to forget")
    both = ledger(cli, sandbox, "forget", "--all", "--file", "x.csv", "--yes")
    assert both.code == 2 and "exactly one of --all, --file NAME or --key VALUE" in both.err


def test_unknown_destinations_and_a_missing_token_are_one_line(cli, sandbox, imported: Path,
                                                               monkeypatch) -> None:
    other = cli("ledger", "show", "--api-url", "https://crm.example.com")
    assert other.code == 2
    assert "holds nothing for https://crm.example.com/contacts with this token" in other.err
    assert cli("ledger", "show", "--destination", "7").code == 2
    assert cli("ledger", "show", "--destination", "1").code == 0
    monkeypatch.delenv("ROUTERA_API_TOKEN")
    missing = cli("ledger", "show", "--api-url", sandbox.url)
    assert missing.code == 2 and "ROUTERA_API_TOKEN is not set" in missing.err


def test_export_never_replaces_a_file_it_did_not_write(cli, sandbox, imported: Path,
                                                       tmp_path: Path) -> None:
    """R3-3: ``ledger export --output`` used to replace any file, the export being imported too."""
    victim = tmp_path / "contacts.csv"
    victim.write_text("First Name,Email\nAda,ada@example.com\n", encoding="utf-8")
    refused = ledger(cli, sandbox, "export", "--output", victim)
    assert refused.code == 2
    assert "is not a routera-import ledger export file" in refused.err
    assert victim.read_text(encoding="utf-8") == "First Name,Email\nAda,ada@example.com\n"
    out = tmp_path / "ledger.csv"
    assert ledger(cli, sandbox, "export", "--output", out).code == 0
    assert ledger(cli, sandbox, "export", "--output", out).code == 0
    assert ledger(cli, sandbox, "export", "--output", victim, "--overwrite").code == 0
