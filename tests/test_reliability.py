"""Unattended nights: faults, retries, rate limits, kills, signals, resume and locks.

Whatever happens, the invariants are the same: every data row appears once in the results,
no record is created twice, and every stored record holds exactly the row's values.
"""

import csv
import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from importer.runs.journal import journal_path
from importer.runs.lock import ResultsLock
from tests.conftest import PLAIN_MAPPING, TOKEN, read_results

ROOT = Path(__file__).resolve().parent.parent


def make_export(path: Path, rows: int, seed: int = 7) -> dict[str, dict[str, str]]:
    """A CSV where every 5th row has no key the API deduplicates on; returns rows by name."""
    rng = random.Random(seed)
    expected = {}
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["Customer ID", "First Name", "Last Name", "Email", "Zip"])
        for i in range(rows):
            keyless = i % 5 == 0
            row = {"external_id": "" if keyless else f"{i:06d}", "first_name": f"Zoë{i}",
                   "last_name": f"Núñez{i}", "email": "" if keyless else f"p{i}@example.com",
                   "postal_code": f"{rng.randint(0, 99999):05d}"}
            writer.writerow(row.values())
            expected[row["first_name"]] = {k: v for k, v in row.items() if v}
    return expected


def check_invariants(results: Path, api, expected: dict[str, dict[str, str]]) -> Counter:
    """Every row once, nothing doubled, every record exact; returns (status, code) counts."""
    rows = read_results(results)
    assert sorted(int(r["row"]) for r in rows) == list(range(2, len(expected) + 2))
    stored = api.store.records()
    names = Counter(r["first_name"] for r in stored)
    assert [n for n, c in names.items() if c > 1] == []
    for record in stored:
        fields = {k: v for k, v in record.items() if k in expected[record["first_name"]] or
                  (v is not None and k not in ("id", "created_at", "updated_at", "archived",
                                               "contact_owner"))}
        assert fields == expected[record["first_name"]]
    ids = {r["first_name"]: r["id"] for r in stored}
    by_name = {r["first_name"]: r for r in rows}
    for name, row in by_name.items():
        keyed = "email" in expected[name]
        if row["status"] == "created":
            assert row["id"] == ids[name]
        elif keyed:
            assert row["status"] == "duplicate" and name in ids, row
        else:
            assert (row["status"], row["error_code"]) == ("failed", "outcome-unknown"), row
    return Counter((r["status"], r["error_code"]) for r in rows)


@pytest.fixture
def export(tmp_path: Path):
    (tmp_path / "m.yaml").write_text(PLAIN_MAPPING, encoding="utf-8")

    def make(rows: int) -> tuple[Path, dict[str, dict[str, str]]]:
        path = tmp_path / "export.csv"
        return path, make_export(path, rows)

    return make


def test_faulty_server_ends_with_every_row_once_and_nothing_doubled(cli, make_sandbox, export,
                                                                    tmp_path: Path) -> None:
    api = make_sandbox(fail_rate=0.1, drop_rate=0.04, slow_rate=0.03, slow_seconds=1.2, seed=3)
    path, expected = export(300)
    result = cli("run", path, "--mapping", tmp_path / "m.yaml", "--api-url", api.url,
                 "--timeout", "0.4,0.4", "--concurrency", "16", "--results", tmp_path / "r.csv")
    counts = check_invariants(tmp_path / "r.csv", api, expected)
    assert api.stats[500] and api.stats[0], "the faults were injected"
    assert counts[("duplicate", "created-by-earlier-attempt")] > 0
    assert result.code == (1 if counts[("failed", "outcome-unknown")] else 0)


def test_429_with_retry_after_loses_nothing(cli, make_sandbox, export, tmp_path: Path) -> None:
    api = make_sandbox(rate_limit=40)
    path, expected = export(120)
    result = cli("run", path, "--mapping", tmp_path / "m.yaml", "--api-url", api.url,
                 "--concurrency", "16", "--results", tmp_path / "r.csv")
    assert result.code == 0
    assert api.stats[429] > 0
    assert check_invariants(tmp_path / "r.csv", api, expected) == {("created", ""): 120}


def test_client_rate_limit_stays_under_the_servers(cli, make_sandbox, export,
                                                   tmp_path: Path) -> None:
    api = make_sandbox(rate_limit=30)
    path, _ = export(45)
    result = cli("run", path, "--mapping", tmp_path / "m.yaml", "--api-url", api.url,
                 "--concurrency", "16", "--rate-limit", "25", "--results", tmp_path / "r.csv")
    assert result.code == 0
    assert api.stats == {201: 45}


def test_32_workers_without_pool_warnings_or_proxy_leaks(cli, sandbox, export, tmp_path: Path,
                                                         monkeypatch) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    monkeypatch.setenv("http_proxy", "http://127.0.0.1:9")
    monkeypatch.setenv("ALL_PROXY", "http://127.0.0.1:9")
    path, expected = export(200)
    result = cli("run", path, "--mapping", tmp_path / "m.yaml", "--api-url", sandbox.url,
                 "--concurrency", "32", "--results", tmp_path / "r.csv")
    assert result.code == 0
    assert "connection pool" not in result.err.lower()  # urllib3: "Connection pool is full"
    assert check_invariants(tmp_path / "r.csv", sandbox, expected) == {("created", ""): 200}


def _importer(*args: object) -> subprocess.Popen:
    env = {**os.environ, "ROUTERA_API_TOKEN": TOKEN, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-m", "importer", *map(str, args)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_killed_three_times_then_resumed(make_sandbox, export, tmp_path: Path) -> None:
    api = make_sandbox(latency=0.01, drop_rate=0.02, seed=5)
    path, expected = export(400)
    args = ("run", path, "--mapping", tmp_path / "m.yaml", "--api-url", api.url,
            "--concurrency", "4", "--results", tmp_path / "r.csv", "--resume", "--quiet")
    rng = random.Random(11)
    for _ in range(3):
        process = _importer(*args)
        time.sleep(rng.uniform(0.6, 1.2))
        process.send_signal(signal.SIGKILL)
        process.wait()
    finished = _importer(*args)
    out, err = finished.communicate(timeout=120)
    assert finished.returncode in (0, 1), out + err
    assert "Traceback" not in err
    check_invariants(tmp_path / "r.csv", api, expected)


def test_sigterm_skips_unsent_rows_and_resume_finishes(make_sandbox, export,
                                                       tmp_path: Path) -> None:
    api = make_sandbox(latency=0.05)
    path, expected = export(150)
    args = ("run", path, "--mapping", tmp_path / "m.yaml", "--api-url", api.url,
            "--concurrency", "2", "--results", tmp_path / "r.csv")
    process = _importer(*args)
    assert process.stderr is not None
    for line in process.stderr:  # the header comes once the signal handlers are set
        if "sent to" in line:
            break
    time.sleep(0.5)
    process.send_signal(signal.SIGTERM)
    out, _ = process.communicate(timeout=30)
    assert process.returncode == 3
    assert "STOPPED: interrupted (Ctrl-C or SIGTERM) before every row was sent" in out
    statuses = Counter(r["status"] for r in read_results(tmp_path / "r.csv"))
    assert statuses["skipped"] > 0 and statuses["created"] > 0
    assert sum(statuses.values()) == 150
    finished = _importer(*args, "--resume")
    finished.communicate(timeout=60)
    assert finished.returncode == 0
    assert check_invariants(tmp_path / "r.csv", api, expected) == {("created", ""): 150}


def test_resume_refuses_a_changed_input_unless_forced(cli, sandbox, export,
                                                      tmp_path: Path) -> None:
    path, _ = export(5)
    base = ("run", path, "--mapping", tmp_path / "m.yaml", "--api-url", sandbox.url,
            "--results", tmp_path / "r.csv")
    assert cli(*base).code == 0
    path.write_text(path.read_text(encoding="utf-8") + ",Late,,,\n", encoding="utf-8")
    refused = cli(*base, "--resume")
    assert refused.code == 2
    assert refused.err == (
        "routera-import: error: cannot resume: the input file changed since r.csv.journal was "
        "written; run without --resume to import it as a new run (rows the earlier run created "
        "are still recognised while the input is the same), or pass --force to keep the "
        "earlier outcomes anyway\n")
    forced = cli(*base, "--resume", "--force")
    assert forced.code == 0
    assert [r["status"] for r in read_results(tmp_path / "r.csv")] == ["created"] * 6


def test_a_second_run_on_the_same_results_is_refused(cli, sandbox, export,
                                                     tmp_path: Path) -> None:
    path, _ = export(3)
    with ResultsLock(tmp_path / "r.csv"):
        result = cli("run", path, "--mapping", tmp_path / "m.yaml", "--api-url", sandbox.url,
                     "--results", tmp_path / "r.csv")
    assert result.code == 2
    assert "another run (pid " in result.err
    assert sandbox.stats == {}


def test_unknown_keyless_rows_are_not_resent_until_asked(cli, sandbox, export,
                                                         tmp_path: Path) -> None:
    """The journal's rules alone: the ledger (which would answer for row 3) is not consulted."""
    path, _ = export(3)
    base = ("run", path, "--mapping", tmp_path / "m.yaml", "--api-url", sandbox.url,
            "--results", tmp_path / "r.csv", "--no-ledger")
    assert cli(*base).code == 0
    journal = journal_path(tmp_path / "r.csv")
    lines = journal.read_text(encoding="utf-8").splitlines()
    kept = [line for line in lines if not line.startswith(('{"row":2,', '{"row":3,', '{"end"'))]
    journal.write_text("\n".join(kept) + '\n{"send":2}\n{"row":3,"sta', encoding="utf-8")
    sandbox.store.forget_all()
    again = cli(*base, "--resume")
    assert again.code == 1
    rows = read_results(tmp_path / "r.csv")
    assert [(r["row"], r["status"], r["error_code"]) for r in rows] == [
        ("2", "failed", "outcome-unknown"), ("3", "created", ""), ("4", "created", "")]
    assert len(sandbox.store.records()) == 1, "row 3's torn outcome was dropped, so resent"
    assert cli(*base, "--resume", "--retry-unknown").code == 0
    assert len(sandbox.store.records()) == 2


def test_a_trickling_server_is_cut_off_by_the_deadline(cli, tmp_path: Path, export) -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def trickle() -> None:
        conn, _ = listener.accept()
        conn.recv(65536)
        for byte in b"HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\n{}":
            if stop.wait(0.2):
                break
            conn.send(bytes([byte]))
        conn.close()

    thread = threading.Thread(target=trickle, daemon=True)
    thread.start()
    path = tmp_path / "one.csv"
    path.write_text("First Name\nAda\n", encoding="utf-8")
    (tmp_path / "one.yaml").write_text("version: 1\nfields:\n  first_name: First Name\n")
    started = time.monotonic()
    result = cli("run", path, "--mapping", tmp_path / "one.yaml", "--api-url",
                 f"http://127.0.0.1:{listener.getsockname()[1]}", "--timeout", "0.5,0.5",
                 "--results", tmp_path / "r.csv")
    stop.set()
    assert time.monotonic() - started < 5
    rows = read_results(tmp_path / "r.csv")
    assert (rows[0]["status"], rows[0]["error_code"]) == ("failed", "outcome-unknown")
    assert "no complete answer within 1 s (deadline)" in rows[0]["error"]
    assert result.code == 1


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".xlsx"])
def test_resume_from_the_results_file_alone_needs_force(cli, sandbox, export, tmp_path: Path,
                                                        suffix: str) -> None:
    """The journal's rules alone; with the ledger even the torn row is not sent again
    (``test_ledger.py``)."""
    path, _ = export(5)
    results = tmp_path / f"r{suffix}"
    base = ("run", path, "--mapping", tmp_path / "m.yaml", "--api-url", sandbox.url,
            "--results", results, "--no-ledger")
    assert cli(*base).code == 0
    journal_path(results).unlink()
    if suffix != ".xlsx":
        text = results.read_text(encoding="utf-8")
        results.write_text(text[: text.rstrip("\n").rfind("\n") + 12], encoding="utf-8")
    refused = cli(*base, "--resume")
    assert refused.code == 2
    assert "is missing, so a changed input or rows sent without an answer cannot be detected; "\
           f"pass --force to resume from r{suffix} alone" in refused.err
    sent_before = sum(sandbox.stats.values())
    resumed = cli(*base, "--resume", "--force")
    assert resumed.code == 0
    resent = sum(sandbox.stats.values()) - sent_before
    assert resent == (0 if suffix == ".xlsx" else 1), "only the torn last row is sent again"
    assert len(sandbox.store.records()) == 5
    if suffix == ".csv":
        assert [r["status"] for r in read_results(results)] == ["created"] * 4 + ["duplicate"]


def test_a_repeat_of_a_rejected_row_is_sent_in_its_place(cli, scripted_api,
                                                         tmp_path: Path) -> None:
    created: list[dict[str, str]] = []

    def answer(fields: dict[str, str]) -> tuple[int, dict]:
        if fields.get("first_name") == "Bad":
            return 400, {"error": "first_name is not allowed"}
        created.append(fields)
        return 201, {"id": f"c-{len(created)}"}

    url = scripted_api(answer)
    path = tmp_path / "in.csv"
    path.write_text("First Name,Email\nBad,ada@x.io\nAda,ADA@x.io\nAda again,ada@x.io\n"
                    "Grace,grace@x.io\nGrace 2,grace@x.io\n", encoding="utf-8")
    (tmp_path / "m.yaml").write_text("version: 1\nfields:\n  first_name: First Name\n"
                                     "  email: {column: Email, transform: [lower]}\n")
    result = cli("run", path, "--mapping", tmp_path / "m.yaml", "--api-url", url,
                 "--concurrency", "1", "--results", tmp_path / "r.csv")
    rows = read_results(tmp_path / "r.csv")
    assert [(r["row"], r["status"], r["error"]) for r in rows] == [
        ("2", "rejected", "first_name is not allowed"),
        ("3", "created", ""),
        ("4", "duplicate", "same email as row 3"),
        ("5", "created", ""),
        ("6", "duplicate", "same email as row 5"),
    ]
    assert [f["first_name"] for f in created] == ["Ada", "Grace"]
    assert result.code == 0


def test_an_unreadable_line_after_sending_began_stops_the_run(cli, sandbox, tmp_path: Path,
                                                              export) -> None:
    path, _ = export(5000)
    with path.open("a", encoding="utf-8") as f:
        f.write('9999999,Big,"' + "x" * 1_100_000 + '",big@x.io,00000\n')
    result = cli("run", path, "--mapping", tmp_path / "m.yaml", "--api-url", sandbox.url,
                 "--results", tmp_path / "r.csv", "--summary-json", tmp_path / "s.json")
    assert result.code == 3
    assert "a cell holds more than 1,048,576 characters" in result.out
    assert "the rows above it were sent, the rest were not read" in result.out
    summary = json.loads((tmp_path / "s.json").read_text())
    assert summary["exit_code"] == 3
    assert summary["rows"] == len(read_results(tmp_path / "r.csv")) >= 4095


def test_a_journal_that_cannot_be_written_stops_the_run_without_hanging(
        cli, sandbox, export, tmp_path: Path, monkeypatch) -> None:
    import importer.runs.journal

    calls = {"n": 0}

    class DiskFillsUp:
        def __getattr__(self, name: str) -> object:
            return getattr(os, name)

        def write(self, fd: int, data: bytes) -> int:
            calls["n"] += 1
            if calls["n"] > 40:
                raise OSError(28, "No space left on device")
            return os.write(fd, data)

    monkeypatch.setattr(importer.runs.journal, "os", DiskFillsUp())
    path, _ = export(300)
    started = time.monotonic()
    result = cli("run", path, "--mapping", tmp_path / "m.yaml", "--api-url", sandbox.url,
                 "--results", tmp_path / "r.csv")
    assert time.monotonic() - started < 30
    assert result.code == 3
    assert "cannot write the journal" in result.out and "No space left on device" in result.out
    assert len(read_results(tmp_path / "r.csv")) == 300


@pytest.mark.parametrize(("base", "reason"), [
    ("{url}/v9", "the API has no such endpoint (HTTP 404): check --api-url"),
    ("http://127.0.0.1:9", "cannot reach the API: 10 rows in a row could not connect"),
])
def test_the_wrong_api_stops_the_run(cli, sandbox, export, tmp_path: Path, base: str,
                                     reason: str) -> None:
    path, _ = export(30)
    result = cli("run", path, "--mapping", tmp_path / "m.yaml",
                 "--api-url", base.format(url=sandbox.url), "--max-retries", "0",
                 "--concurrency", "2", "--results", tmp_path / "r.csv")
    assert result.code == 3
    assert f"  STOPPED: {reason}" in "\n".join(result.lines)
    assert len(read_results(tmp_path / "r.csv")) == 30


def test_a_rerun_with_an_edited_mapping_still_recognises_keyless_rows(cli, sandbox, export,
                                                                     tmp_path: Path) -> None:
    """The journal's rules alone (with the ledger, keyed rows are changed-since-import)."""
    path, _ = export(10)
    base = ("run", path, "--mapping", tmp_path / "m.yaml", "--api-url", sandbox.url,
            "--results", tmp_path / "r.csv", "--no-ledger")
    assert cli(*base).code == 0
    mapping = tmp_path / "m.yaml"
    mapping.write_text("# tweaked\n" + mapping.read_text() + "  phone: {value: '+1'}\n")
    assert cli(*base).code == 0
    assert len(sandbox.store.records()) == 10
    rows = read_results(tmp_path / "r.csv")
    assert {(r["status"], r["error_code"]) for r in rows} == {
        ("duplicate", "created-by-earlier-run")}
    path.write_text(path.read_text(encoding="utf-8") + ",Late,,,\n", encoding="utf-8")
    new = cli(*base)
    assert "starting fresh (the earlier journal is kept as r.csv.journal.previous)" in new.out
    assert (tmp_path / "r.csv.journal.previous").exists()


@pytest.mark.parametrize("ledger", [False, True])
def test_a_rerun_whose_mapping_gained_the_email_does_not_send_created_rows_again(
        cli, sandbox, tmp_path: Path, ledger: bool) -> None:
    """F4: run 1 leaves the Email column out, so its records have no email; run 2 maps it.
    The rows now have a key, but the API cannot recognise a repeat (the stored records lack
    it): the journal's "created (id)" must win, or every row is stored twice."""
    path = tmp_path / "export.csv"
    path.write_text("First Name,Email\nAnn,ann@example.com\nBob,bob@example.com\n"
                    "Cy,cy@example.com\n", encoding="utf-8")
    mapping = tmp_path / "m.yaml"
    mapping.write_text("version: 1\nfields:\n  first_name: First Name\n", encoding="utf-8")
    base = ("run", path, "--mapping", mapping, "--api-url", sandbox.url,
            "--results", tmp_path / "r.csv", *(() if ledger else ("--no-ledger",)))
    assert cli(*base).code == 0
    first = {r["row"]: r["id"] for r in read_results(tmp_path / "r.csv")}
    mapping.write_text(mapping.read_text() + "  email: Email\n", encoding="utf-8")
    assert cli(*base).code == 0
    assert len(sandbox.store.records()) == 3
    rows = read_results(tmp_path / "r.csv")
    assert [(r["status"], r["error_code"]) for r in rows] == [
        ("duplicate", "created-by-earlier-run")] * 3
    assert {r["row"]: r["id"] for r in rows} == first


def _stop_after_start(process: subprocess.Popen, seconds: float, sig: int) -> None:
    assert process.stderr is not None
    for line in process.stderr:  # the header comes once the signal handlers are set
        if "sent to" in line:
            break
    time.sleep(seconds)
    process.send_signal(sig)


def test_a_resume_killed_mid_way_leaves_every_earlier_outcome_in_the_results(
        make_sandbox, export, tmp_path: Path) -> None:
    """F5: the results file of a resume killed with -9 still holds the earlier run's rows
    (with their ids); the next resume replaces it whole."""
    api = make_sandbox(latency=0.05)
    path, expected = export(150)
    results = tmp_path / "r.csv"
    args = ("run", path, "--mapping", tmp_path / "m.yaml", "--api-url", api.url,
            "--concurrency", "1", "--results", results)
    first = _importer(*args)
    _stop_after_start(first, 0.5, signal.SIGTERM)
    first.communicate(timeout=30)
    before = results.read_bytes()
    assert Counter(r["status"] for r in read_results(results))["skipped"] > 50
    resumed = _importer(*args, "--resume")
    _stop_after_start(resumed, 1.0, signal.SIGKILL)
    resumed.communicate(timeout=30)
    assert results.read_bytes() == before
    partial = tmp_path / ".r.csv.partial"
    assert partial.exists() and partial.stat().st_mode & 0o777 == 0o600
    finished = _importer(*args, "--resume")
    finished.communicate(timeout=60)
    assert not partial.exists()
    assert results.stat().st_mode & 0o777 == 0o600
    counts = check_invariants(results, api, expected)  # a keyed row cut by the kill: 409
    assert set(counts) <= {("created", ""), ("duplicate", "created-by-earlier-attempt"),
                           ("failed", "outcome-unknown")}
    # a keyless row cut by the kill stays outcome-unknown, which exits 1
    assert finished.returncode == (1 if counts[("failed", "outcome-unknown")] else 0)
