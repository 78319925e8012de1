"""The ledger in whole runs: reruns into new results files, cumulative exports, concurrent
runs, crashes between the journal and the ledger, and --no-ledger. Every scenario runs on the
SQLite ledger and on a real PostgreSQL server."""

import csv
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from importer.ledger import ledger as ledger_module
from importer.ledger import open_store
from importer.ledger.store import LedgerError
from tests.conftest import PLAIN_MAPPING, TOKEN, read_results

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(params=["sqlite", "postgres"])
def ledger(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """Where this test's ledger is: ``ROUTERA_LEDGER`` points every run there."""
    location = (str(tmp_path / "ledger.sqlite3") if request.param == "sqlite"
                else request.getfixturevalue("postgres_url"))
    monkeypatch.setenv("ROUTERA_LEDGER", location)
    return location


def write_export(path: Path, numbers: range, keyless: bool = True,
                 phone: str = "") -> dict[int, dict[str, str]]:
    """Rows numbered ``i``; every 5th has no email or external_id (when ``keyless``)."""
    rows = {}
    with path.open("w", newline="", encoding="utf-8") as f:
        out = csv.writer(f)
        out.writerow(["Customer ID", "First Name", "Last Name", "Email", "Zip"])
        for i in numbers:
            bare = keyless and i % 5 == 0
            row = ["" if bare else f"C{i:05d}", f"Zoë{i}", f"Núñez{i}{phone}",
                   "" if bare else f"P{i}@Example.com", f"{i % 100000:05d}"]
            out.writerow(row)
            rows[i] = dict(zip(["external_id", "first_name", "last_name", "email", "postal_code"],
                               row, strict=True))
    return rows


@pytest.fixture
def mapping(tmp_path: Path) -> Path:
    path = tmp_path / "m.yaml"
    path.write_text(PLAIN_MAPPING, encoding="utf-8")
    return path


def run(cli, export: Path, mapping: Path, api, results: str, *flags: object):
    return cli("run", export, "--mapping", mapping, "--api-url", api.url,
               "--results", export.with_name(results), *flags)


def forget_the_run(cli, api) -> None:
    """The ledger loses what the run recorded, as when its process died before the writes."""
    assert cli("ledger", "forget", "--api-url", api.url, "--all", "--yes").code == 0


def sent(api) -> int:
    return sum(api.stats.values())


def test_a_rerun_into_a_new_results_file_sends_nothing_and_reports_ids(
        cli, sandbox, tmp_path: Path, mapping: Path, ledger: str) -> None:
    export = tmp_path / "contacts-2026-11-20.csv"
    write_export(export, range(300))
    assert run(cli, export, mapping, sandbox, "night1.csv").code == 0
    first = {r["row"]: r["id"] for r in read_results(tmp_path / "night1.csv")}
    before = sent(sandbox)
    again = run(cli, export, mapping, sandbox, "night2.csv")
    assert again.code == 0
    assert sent(sandbox) == before, "nothing sent, keyless rows included"
    assert len(sandbox.store.records()) == 300
    rows = read_results(tmp_path / "night2.csv")
    assert {(r["status"], r["error_code"]) for r in rows} == {("duplicate", "imported-earlier")}
    assert {r["row"]: r["id"] for r in rows} == first
    assert rows[15]["error"] == ("imported on " + rows[15]["error"][12:22] +
                                 " from contacts-2026-11-20.csv row 17; not sent again")
    assert "note: 300 rows imported earlier (the ledger holds them) were not sent" in again.out


def test_a_cumulative_export_sends_only_its_new_rows(cli, sandbox, tmp_path: Path,
                                                     mapping: Path, ledger: str) -> None:
    export = tmp_path / "all-contacts.csv"
    write_export(export, range(200))
    assert run(cli, export, mapping, sandbox, "monday.csv").code == 0
    write_export(export, range(230))
    before = sent(sandbox)
    assert run(cli, export, mapping, sandbox, "tuesday.csv").code == 0
    assert sent(sandbox) - before == 30
    counts = Counter((r["status"], r["error_code"]) for r in read_results(
        tmp_path / "tuesday.csv"))
    assert counts == {("duplicate", "imported-earlier"): 200, ("created", ""): 30}
    assert len(sandbox.store.records()) == 230


def test_a_changed_row_is_not_sent_and_names_the_changed_fields(cli, sandbox, tmp_path: Path,
                                                                mapping: Path,
                                                                ledger: str) -> None:
    export = tmp_path / "e.csv"
    write_export(export, range(1, 4), keyless=False)
    assert run(cli, export, mapping, sandbox, "a.csv").code == 0
    write_export(export, range(1, 4), keyless=False, phone="-Smith")
    before = sent(sandbox)
    assert run(cli, export, mapping, sandbox, "b.csv").code == 0
    assert sent(sandbox) == before
    row = read_results(tmp_path / "b.csv")[0]
    assert (row["status"], row["error_code"]) == ("duplicate", "changed-since-import")
    assert "changed since: last_name;" in row["error"] and row["id"]


def test_no_ledger_sends_everything_and_recreated_records_replace_old_ids(
        cli, sandbox, tmp_path: Path, mapping: Path, ledger: str) -> None:
    """After records were deleted in the CRM: --no-ledger creates them again, and the ledger
    then holds the new ids."""
    export = tmp_path / "e.csv"
    write_export(export, range(10))
    assert run(cli, export, mapping, sandbox, "a.csv").code == 0
    sandbox.store._db.execute("DELETE FROM contacts")
    before = sent(sandbox)
    assert run(cli, export, mapping, sandbox, "b.csv", "--no-ledger").code == 0
    assert sent(sandbox) - before == 10
    new_ids = {r["row"]: r["id"] for r in read_results(tmp_path / "b.csv")}
    assert run(cli, export, mapping, sandbox, "c.csv").code == 0
    rows = read_results(tmp_path / "c.csv")
    assert {r["row"]: r["id"] for r in rows} == new_ids
    assert {r["error_code"] for r in rows} == {"imported-earlier"}


def test_409_answers_are_recorded_so_the_next_night_does_not_ask(
        cli, sandbox, tmp_path: Path, mapping: Path, ledger: str) -> None:
    export = tmp_path / "e.csv"
    write_export(export, range(1, 6), keyless=False)
    assert run(cli, export, mapping, sandbox, "a.csv", "--ledger",
               tmp_path / "elsewhere.sqlite3").code == 0
    assert run(cli, export, mapping, sandbox, "b.csv").code == 0
    assert {r["error_code"] for r in read_results(tmp_path / "b.csv")} == {"already-exists"}
    before = sent(sandbox)
    assert run(cli, export, mapping, sandbox, "c.csv").code == 0
    assert sent(sandbox) == before
    assert {r["error"][:27] for r in read_results(tmp_path / "c.csv")} == {
        "found existing (HTTP 409) o"}


def test_a_crash_between_journal_and_ledger_is_repaired_by_resume(
        cli, sandbox, tmp_path: Path, mapping: Path, ledger: str) -> None:
    """The ledger lost a run's entries (as if the process died before its last write): the
    journal still has them, and --resume hands them to the ledger without sending."""
    export = tmp_path / "e.csv"
    write_export(export, range(50))
    assert run(cli, export, mapping, sandbox, "a.csv").code == 0
    forget_the_run(cli, sandbox)
    before = sent(sandbox)
    assert run(cli, export, mapping, sandbox, "a.csv", "--resume").code == 0
    assert sent(sandbox) == before
    assert run(cli, export, mapping, sandbox, "b.csv").code == 0
    assert sent(sandbox) == before, "keyless rows are recognised from the re-offered entries"
    assert {r["error_code"] for r in read_results(tmp_path / "b.csv")} == {"imported-earlier"}


def _importer(*args: object) -> subprocess.Popen[str]:
    env = {**os.environ, "ROUTERA_API_TOKEN": TOKEN, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-m", "importer", *map(str, args)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_two_concurrent_runs_share_the_ledger(cli, make_sandbox, tmp_path: Path, mapping: Path,
                                              ledger: str) -> None:
    """Two nights of a cumulative export at once into one ledger (R3-1): both start at row 0,
    so they send the same rows, keyless ones included, at the same moment. Each row is created
    once: a keyless row is claimed before it is sent, and the other run waits for its outcome.
    Then the whole export into a new results file sends nothing and reports every id."""
    api = make_sandbox(latency=0.01)
    first, second = tmp_path / "east.csv", tmp_path / "west.csv"
    write_export(first, range(0, 100))
    write_export(second, range(0, 150))
    runs = [_importer("run", path, "--mapping", mapping, "--api-url", api.url, "--quiet",
                      "--results", path.with_suffix(".results.csv"), "--concurrency", "4")
            for path in (first, second)]
    for process in runs:
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0, out + err
    names = Counter(r["first_name"] for r in api.store.records())
    assert len(names) == 150 and set(names.values()) == {1}, names.most_common(3)
    everything = tmp_path / "everything.csv"
    write_export(everything, range(0, 150))
    created = {r["id"] for path in (first, second)
               for r in read_results(path.with_suffix(".results.csv")) if r["status"] == "created"}
    before = sent(api)
    assert run(cli, everything, mapping, api, "all.csv").code == 0
    assert sent(api) == before
    rows = read_results(tmp_path / "all.csv")
    assert {r["error_code"] for r in rows} == {"imported-earlier"}
    assert {r["id"] for r in rows} == created


def test_rows_a_killed_run_was_sending_are_not_sent_by_the_next_night(
        cli, make_sandbox, tmp_path: Path, mapping: Path, ledger: str) -> None:
    """R3-2: night 1 is killed (SIGKILL) while keyless rows are on the wire (the API stores
    them, then answers slowly); night 2 sends the same export into a new results file without
    resuming night 1. The rows night 1 had claimed may exist: night 2 reports them
    outcome-unknown instead of creating them again, and sends every other row once."""
    import signal
    import time

    api = make_sandbox(slow_rate=1.0, slow_seconds=1.0)
    export = tmp_path / "e.csv"
    write_export(export, range(0, 40))
    night1 = _importer("run", export, "--mapping", mapping, "--api-url", api.url, "--quiet",
                       "--results", tmp_path / "night1.csv", "--concurrency", "4")
    deadline = time.monotonic() + 60
    while len(api.store.records()) < 6 and time.monotonic() < deadline:
        time.sleep(0.05)
    night1.send_signal(signal.SIGKILL)
    night1.communicate(timeout=30)
    api.server.faults = type(api.server.faults)()
    result = run(cli, export, mapping, api, "night2.csv")
    names = Counter(r["first_name"] for r in api.store.records())
    assert set(names.values()) == {1}, names.most_common(3)
    rows = read_results(tmp_path / "night2.csv")
    unknown = [r for r in rows if r["error_code"] == "outcome-unknown"]
    assert result.code == 1 and unknown, result.out
    assert all(r["email"] == "" for r in unknown), "keyed rows are settled by the API's 409"
    assert all("the run ended while sending" in r["error"] for r in unknown)
    assert len(names) + sum(r["first_name"] not in names for r in unknown) == 40


def test_a_ledger_that_cannot_be_written_stops_the_run(cli, sandbox, tmp_path: Path,
                                                       mapping: Path, ledger: str,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(self: object, destination: int, entries: object, **settled: object) -> int:
        raise LedgerError("ledger test: disk I/O error")

    monkeypatch.setattr(ledger_module, "RETRY_DELAY", 0.0)
    store = type(open_store(ledger))
    monkeypatch.setattr(store, "record", broken)
    export = tmp_path / "e.csv"
    write_export(export, range(5))
    result = run(cli, export, mapping, sandbox, "a.csv")
    assert result.code == 3
    assert ("STOPPED: cannot write the ledger: ledger test: disk I/O error (the journal holds "
            "every outcome, and resuming hands them to the ledger); rerun with --resume to "
            "continue") in result.out


def test_rows_are_claimed_when_their_turn_to_be_sent_comes_not_while_they_wait(
        make_sandbox, tmp_path: Path, mapping: Path, ledger: str) -> None:
    """At 2 requests/s and concurrency 8, six keyless rows wait for their turn; a claim says
    the request may leave at any moment (a kill turns it into "may exist"), so no more rows are
    claimed at once than the rate lets leave while the API answers (0.2 s here)."""
    import time

    api = make_sandbox(latency=0.2)
    export = tmp_path / "e.csv"
    with export.open("w", encoding="utf-8", newline="") as f:
        f.write("Customer ID,First Name,Last Name,Email,Zip\n"
                + "".join(f",Ann{i},Keyless,,\n" for i in range(6)))
    process = _importer("run", export, "--mapping", mapping, "--api-url", api.url, "--quiet",
                        "--results", tmp_path / "r.csv", "--concurrency", "8",
                        "--rate-limit", "2")
    watcher = open_store(ledger)
    most = 0
    try:
        while process.poll() is None:
            with watcher._read() as db:  # type: ignore[attr-defined]
                most = max(most, db.execute("SELECT count(*) FROM ledger_claims").fetchone()[0])
            time.sleep(0.02)
    finally:
        watcher.close()
    out, err = process.communicate(timeout=60)
    assert process.returncode == 0, out + err
    assert len(api.store.records()) == 6
    assert 1 <= most <= 2, f"{most} rows claimed at once"


def test_results_written_with_one_ledger_are_not_resumed_with_another(
        cli, sandbox, tmp_path: Path, mapping: Path, ledger: str) -> None:
    """R4-7: a resume keeps the rows its earlier run found in the ledger by asking the ledger
    again; another one (a different --ledger, one deleted and created anew) does not know them,
    so the keyless ones would be created twice. It is refused; --force resumes anyway."""
    export = tmp_path / "e.csv"
    write_export(export, range(10))
    assert run(cli, export, mapping, sandbox, "first.csv").code == 0
    assert run(cli, export, mapping, sandbox, "a.csv").code == 0
    before = sent(sandbox)
    other = tmp_path / "other.sqlite3"
    refused = run(cli, export, mapping, sandbox, "a.csv", "--resume", "--ledger", other)
    assert refused.code == 2 and sent(sandbox) == before
    assert refused.err.count("\n") == 1 and "was written with the import ledger" in refused.err
    assert run(cli, export, mapping, sandbox, "a.csv", "--resume").code == 0
    assert sent(sandbox) == before
    forced = run(cli, export, mapping, sandbox, "a.csv", "--resume", "--force", "--ledger", other)
    assert forced.code == 0


def test_a_claim_that_fails_once_is_tried_again_and_one_that_keeps_failing_stops_the_run(
        cli, sandbox, tmp_path: Path, mapping: Path, ledger: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A keyless row must be claimed before it is sent: a passing failure (a lock timeout, a
    deadlock the database broke) costs a retry; a ledger that stays broken stops the run
    (exit 3) with the row not sent, never sent unclaimed."""
    store = type(open_store(ledger))
    real = store.claim
    failures = iter([True, False] + [False] * 100)

    def flaky(self, *args: object, **kwargs: object):
        if next(failures):
            raise LedgerError("ledger test: deadlock detected")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(ledger_module, "RETRY_DELAY", 0.0)
    monkeypatch.setattr(store, "claim", flaky)
    export = tmp_path / "e.csv"
    write_export(export, range(5))
    assert run(cli, export, mapping, sandbox, "a.csv").code == 0
    assert len(sandbox.store.records()) == 5

    def broken(self, *args: object, **kwargs: object):
        raise LedgerError("ledger test: disk I/O error")

    monkeypatch.setattr(store, "claim", broken)
    write_export(export, range(10, 15))
    result = run(cli, export, mapping, sandbox, "b.csv")
    assert result.code == 3
    assert "STOPPED: cannot claim row 2 in the ledger: ledger test: disk I/O error" in result.out
    rows = {r["row"]: r["status"] for r in read_results(tmp_path / "b.csv")}
    assert rows["2"] == "skipped"
    assert "Zoë10" not in {r["first_name"] for r in sandbox.store.records()}, "not sent"


def test_an_unusable_ledger_refuses_the_run_before_sending(cli, sandbox, tmp_path: Path,
                                                           mapping: Path) -> None:
    export = tmp_path / "e.csv"
    write_export(export, range(5))
    (tmp_path / "folder").mkdir()
    result = run(cli, export, mapping, sandbox, "a.csv", "--ledger", tmp_path / "folder")
    assert result.code == 2
    assert result.err.startswith("routera-import: error: ledger ")
    assert sent(sandbox) == 0


def test_a_dry_run_does_not_touch_the_ledger(cli, sandbox, tmp_path: Path, mapping: Path,
                                             private_ledger: Path) -> None:
    export = tmp_path / "e.csv"
    write_export(export, range(5))
    assert run(cli, export, mapping, sandbox, "a.csv", "--dry-run").code == 0
    assert not private_ledger.exists()


def test_rows_the_ledger_settles_are_not_journaled_and_resume_asks_it_again(
        cli, sandbox, tmp_path: Path, mapping: Path, ledger: str) -> None:
    export = tmp_path / "e.csv"
    write_export(export, range(20))
    assert run(cli, export, mapping, sandbox, "a.csv").code == 0
    assert run(cli, export, mapping, sandbox, "b.csv").code == 0
    journal = (tmp_path / "b.csv.journal").read_text(encoding="utf-8")
    assert '"row":' not in journal, "nothing was sent, so nothing is journaled"
    before = sent(sandbox)
    assert run(cli, export, mapping, sandbox, "b.csv", "--resume").code == 0
    assert sent(sandbox) == before
    rows = read_results(tmp_path / "b.csv")
    assert len(rows) == 20 and {r["error_code"] for r in rows} == {"imported-earlier"}


def test_an_unknown_outcome_fences_the_row_in_later_runs_until_retry_unknown(
        cli, make_sandbox, tmp_path: Path, mapping: Path, ledger: str) -> None:
    """R2-6: a keyless row that may exist (its answer was lost) is not sent by the next night's
    run into its own results file; --retry-unknown sends it, and the 201 then settles it."""
    from importer.sandbox import Faults

    api = make_sandbox(drop_rate=1.0, seed=1)
    export = tmp_path / "contacts-2026-11-20.csv"
    write_export(export, range(10))
    assert run(cli, export, mapping, api, "night1.csv").code == 1
    unknown = [r for r in read_results(tmp_path / "night1.csv")
               if r["error_code"] == "outcome-unknown"]
    assert [r["row"] for r in unknown] == ["2", "7"], "the keyless rows"
    api.server.faults = Faults()
    before = sent(api)
    night2 = run(cli, export, mapping, api, "night2.csv", "--resume")
    assert night2.code == 1, "still failed: someone must check the CRM"
    assert sent(api) == before, "rows that may exist are not sent again"
    rows = {r["row"]: r for r in read_results(tmp_path / "night2.csv")}
    assert (rows["2"]["status"], rows["2"]["error_code"]) == ("failed", "outcome-unknown")
    assert "from contacts-2026-11-20.csv row 2 sent the same fields" in rows["2"]["error"]
    assert "--retry-unknown" in rows["2"]["error"]
    assert "2 rows an earlier run may have created (outcome unknown) were not sent" in night2.out
    assert run(cli, export, mapping, api, "night3.csv", "--retry-unknown").code == 0
    assert sent(api) - before == 2
    assert run(cli, export, mapping, api, "night4.csv").code == 0
    assert {r["error_code"] for r in read_results(tmp_path / "night4.csv")} == {
        "imported-earlier"}, "the 201 upgraded the unknown fact"


def _jwt(claims: dict[str, object], signature: str = "c2lnbmF0dXJl") -> str:
    import base64
    import json

    def part(value: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")

    return f"{part({'alg': 'RS256', 'typ': 'JWT'})}.{part(claims)}.{signature}"


def test_a_renewed_jwt_for_the_same_account_keeps_the_ledger(
        cli, sandbox, tmp_path: Path, mapping: Path, ledger: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """R2-1: the destination is the account a JWT speaks for, not the token itself."""
    account = {"iss": "https://auth.routera.io/", "sub": "svc-nightly", "org_id": "acme-42"}
    export = tmp_path / "e.csv"
    write_export(export, range(10))
    for night, (issued, signature) in enumerate([(1, "c2lnMQ"), (2, "c2lnMg")], start=1):
        token = _jwt({**account, "iat": issued, "exp": issued + 3600, "jti": f"n{issued}"},
                     signature)
        sandbox.server.token = token
        monkeypatch.setenv("ROUTERA_API_TOKEN", token)
        before = sent(sandbox)
        assert run(cli, export, mapping, sandbox, f"night{night}.csv").code == 0
    assert sent(sandbox) == before, "the renewed token found the first night's entries"
    assert {r["error_code"] for r in read_results(tmp_path / "night2.csv")} == {
        "imported-earlier"}
    assert len(sandbox.store.records()) == 10
    listing = cli("ledger", "list").out
    assert "token jwt:" in listing and "acme-42" not in listing and signature not in listing


def _people(path: Path, names: list[str]) -> None:
    """An export of keyless rows: just a first and last name each."""
    with path.open("w", newline="", encoding="utf-8") as f:
        out = csv.writer(f)
        out.writerow(["Customer ID", "First Name", "Last Name", "Email", "Zip"])
        out.writerows(["", *name.split(), "", ""] for name in names)


def test_identical_keyless_rows_are_different_people_in_any_batch_and_across_nights(
        cli, sandbox, tmp_path: Path, mapping: Path, ledger: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """R2-2: the n-th "John Smith" of a file matches only the n-th one recorded before; a
    record created by this run never answers for another of its rows."""
    monkeypatch.setattr("importer.readers.text.CHUNK_ROWS", 3)
    export = tmp_path / "people.csv"
    _people(export, ["John Smith", "Ann Lee", "Bo Ek", "Cy Do", "John Smith"])
    assert run(cli, export, mapping, sandbox, "monday.csv").code == 0
    monday = read_results(tmp_path / "monday.csv")
    assert [r["status"] for r in monday] == ["created"] * 5, "rows 2 and 6 in other batches"
    assert len({r["id"] for r in monday}) == 5
    _people(export, ["John Smith", "Ann Lee", "Bo Ek", "Cy Do", "John Smith", "John Smith"])
    before = sent(sandbox)
    assert run(cli, export, mapping, sandbox, "tuesday.csv").code == 0
    assert sent(sandbox) - before == 1, "only the third John Smith is new"
    tuesday = read_results(tmp_path / "tuesday.csv")
    assert [r["error_code"] for r in tuesday] == ["imported-earlier"] * 5 + [""]
    assert [r["id"] for r in tuesday[:5]] == [r["id"] for r in monday]
    assert len({r["id"] for r in tuesday}) == 6, "no two rows report the same record"
    assert len(sandbox.store.records()) == 6


def test_a_named_account_keeps_the_ledger_across_renewed_opaque_tokens(
        cli, sandbox, tmp_path: Path, mapping: Path, ledger: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """R2-1 for opaque tokens: ROUTERA_LEDGER_ACCOUNT names the account instead of the token."""
    monkeypatch.setenv("ROUTERA_LEDGER_ACCOUNT", "acme-production")
    export = tmp_path / "e.csv"
    write_export(export, range(10))
    for night, token in enumerate(["opaque-night-1", "opaque-night-2"], start=1):
        sandbox.server.token = token
        monkeypatch.setenv("ROUTERA_API_TOKEN", token)
        before = sent(sandbox)
        assert run(cli, export, mapping, sandbox, f"night{night}.csv").code == 0
    assert sent(sandbox) == before
    assert len(sandbox.store.records()) == 10
    monkeypatch.delenv("ROUTERA_API_TOKEN")
    shown = cli("ledger", "show", "--api-url", sandbox.url)
    assert shown.code == 0 and "e.csv" in shown.out
    assert "acme-production" not in cli("ledger", "list").out


def test_a_keyless_row_sent_before_a_crash_is_fenced_once_resume_finds_it(
        cli, sandbox, tmp_path: Path, mapping: Path, ledger: str) -> None:
    """R2-6 after a crash: the journal shows row 2 sent with no answer (and the ledger lost
    it); --resume reports it outcome-unknown and hands that to the ledger, so the next night
    does not send it either."""
    from importer.runs.journal import journal_path

    export = tmp_path / "e.csv"
    write_export(export, range(5))
    assert run(cli, export, mapping, sandbox, "night1.csv").code == 0
    forget_the_run(cli, sandbox)
    journal = journal_path(tmp_path / "night1.csv")
    lines = journal.read_text(encoding="utf-8").splitlines()
    kept = [line for line in lines if not line.startswith(('{"row":2,', '{"end"'))]
    journal.write_text("\n".join(kept) + '\n{"send":2}\n', encoding="utf-8")
    assert run(cli, export, mapping, sandbox, "night1.csv", "--resume").code == 1
    before = sent(sandbox)
    assert run(cli, export, mapping, sandbox, "night2.csv").code == 1
    assert sent(sandbox) == before
    row = read_results(tmp_path / "night2.csv")[0]
    assert (row["row"], row["error_code"]) == ("2", "outcome-unknown")
    assert "from e.csv row 2 sent the same fields" in row["error"]
