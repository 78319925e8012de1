"""Repeats, stops and long-lived processes (issue 9, scenarios 1, 2, 12, 13, 14 and 15).

Rows that repeat an earlier row's key wait for the row carrying it; a stop must reach every
wait; a library caller must not collect threads; a broken stderr must not cost the results.
"""

import os
import random
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from importer import RunOptions, run_import
from importer.rows.status import Status
from importer.runs.stopping import Stop
from importer.sending.client import Timeouts
from importer.sending.repeats import Decision, Repeats
from tests.conftest import TOKEN, read_results
from tests.rawapi import Behaviour, raw_api

ROOT = Path(__file__).resolve().parent.parent
ENV = {"ROUTERA_API_TOKEN": TOKEN}


def options(tmp_path: Path, url: str, **extra: object) -> RunOptions:
    settings: dict[str, object] = {
        "input": tmp_path / "in.csv", "mapping": tmp_path / "m.yaml",
        "results": tmp_path / "r.csv", "api_url": url, "no_ledger": True, **extra}
    return RunOptions(**settings)  # type: ignore[arg-type]


# Scenario 1: a substitute settles only the repeats that share the key it carries.

def test_a_substitute_settles_only_repeats_of_its_own_key(tmp_path: Path) -> None:
    (tmp_path / "m.yaml").write_text("version: 1\nfields:\n  external_id: Id\n"
                                     "  first_name: Name\n  email: Email\n")
    (tmp_path / "in.csv").write_text(
        "Id,Name,Email\nE1,Bad,a@x.io\n,Ada,a@x.io\nE1,Eve,b@x.io\nE2,Fay,f@x.io\n"
        "E1,Gil,c@x.io\n", encoding="utf-8")

    def answer(fields: dict[str, str]) -> Behaviour:
        if fields["first_name"] == "Bad":
            return Behaviour(store=False, status=400, body={"error": "no"})
        return Behaviour()

    with raw_api(answer) as (api, url):
        summary = run_import(options(tmp_path, url, concurrency=1), environ=ENV)
    rows = {r["first_name"]: r for r in read_results(tmp_path / "r.csv")}
    assert (rows["Bad"]["status"], rows["Ada"]["status"]) == ("rejected", "created")
    assert rows["Eve"]["status"] == "created", "row 4 repeats E1, which Ada does not carry"
    assert (rows["Gil"]["status"], rows["Gil"]["error"]) == (
        "duplicate", "same external_id as row 4")
    assert sorted(r["first_name"] for r in api.records) == ["Ada", "Eve", "Fay"]
    assert summary.exit_code == 0


# Scenario 12: a carrier's outcome and the arrival of a repeat never race.

def test_the_state_machine_of_one_key() -> None:
    repeats: Repeats[str] = Repeats()
    repeats.sending(2)
    assert repeats.follow(3, (2, "email"), "r3") == (Decision.WAIT, 2)
    assert repeats.follow(4, (2, "email"), "r4") == (Decision.WAIT, 2)
    assert repeats.settle(2, Status.REJECTED, keyed=True, stopping=False) == [
        ("r3", Decision.SEND, 3)]
    assert repeats.follow(5, (2, "email"), "r5") == (Decision.WAIT, 3)
    assert repeats.settle(3, Status.CREATED, keyed=True, stopping=False) == [
        ("r4", Decision.DUPLICATE, 3), ("r5", Decision.DUPLICATE, 3)]
    assert repeats.follow(6, (2, "email"), "r6") == (Decision.DUPLICATE, 3)
    assert repeats.follow(7, (2, "external_id"), "r7") == (Decision.SEND, 7)


@pytest.mark.parametrize("seed", range(5))
def test_racing_carriers_and_repeats_decide_every_repeat_once(seed: int) -> None:
    """Repeats arrive on one thread while carriers settle on others; for each key at most one
    row is in flight at a time, and every repeat is decided exactly once."""
    rng = random.Random(seed)
    repeats: Repeats[int] = Repeats()
    decided: dict[int, list[Decision]] = {}
    in_flight: dict[tuple[int, str], int] = {}
    lock = threading.Lock()
    work: list[tuple[int, tuple[int, str]]] = []
    done = threading.Event()

    def carry(row: int, key: tuple[int, str]) -> None:
        with lock:
            assert in_flight.get(key) is None, f"two carriers of {key}"
            in_flight[key] = row
            work.append((row, key))

    def settler() -> None:
        while not done.is_set() or work:
            with lock:
                item = work.pop(rng.randrange(len(work))) if work else None
            if item is None:
                time.sleep(0.0005)
                continue
            row, key = item
            with lock:
                in_flight[key] = None  # type: ignore[assignment]
            status = Status.CREATED if rng.random() < 0.3 else Status.FAILED
            for follower, decision, _ in repeats.settle(row, status, keyed=True,
                                                        stopping=False):
                with lock:
                    decided.setdefault(follower, []).append(decision)
                if decision is Decision.SEND:
                    carry(follower, key)

    threads = [threading.Thread(target=settler) for _ in range(3)]
    for thread in threads:
        thread.start()
    row = 1000
    for first in range(10):
        key = (first, "email")
        repeats.sending(first)
        carry(first, key)
        for _ in range(30):
            row += 1
            decision, _ = repeats.follow(row, key, row)
            if decision is not Decision.WAIT:
                with lock:
                    decided.setdefault(row, []).append(decision)
            if decision is Decision.SEND:
                carry(row, key)
    done.set()
    for thread in threads:
        thread.join()
    assert sorted(decided) == list(range(1001, row + 1))
    assert all(len(d) == 1 for d in decided.values())


# Scenario 13: only rows with a key are ever remembered.

def test_rows_without_a_key_or_in_a_stopped_run_are_not_remembered() -> None:
    repeats: Repeats[int] = Repeats()
    for row in range(10_000):
        repeats.settle(row, Status.FAILED, keyed=False, stopping=False)
        repeats.sending(row + 100_000)
        repeats.settle(row + 100_000, Status.SKIPPED, keyed=True, stopping=True)
        repeats.settle(row + 200_000, Status.INVALID, keyed=True, stopping=False)
    assert len(repeats) == 10_000, "only the keyed rows that failed in a running import"


# Scenario 2: a stop reaches every wait.

def pairs(tmp_path: Path, rows: int) -> None:
    """Rows in pairs sharing an email: every second row waits for the one before it."""
    (tmp_path / "m.yaml").write_text("version: 1\nfields:\n  first_name: Name\n  email: Email\n")
    with (tmp_path / "in.csv").open("w", encoding="utf-8") as f:
        f.write("Name,Email\n")
        f.writelines(f"P{n},p{n // 2}@x.io\n" for n in range(rows))


@pytest.mark.parametrize(("rows", "concurrency"), [(20, 2), (30_000, 4)])
def test_a_stop_while_the_reader_waits_for_busy_workers(tmp_path: Path, rows: int,
                                                       concurrency: int) -> None:
    pairs(tmp_path, rows)
    stop = Stop()
    with raw_api(lambda fields: Behaviour(delay=1.0)) as (api, url):
        threading.Timer(1.5, stop.request).start()
        started = time.monotonic()
        summary = run_import(options(tmp_path, url, concurrency=concurrency,
                                     timeouts=Timeouts(2, 2)), stop=stop, environ=ENV)
        elapsed = time.monotonic() - started
    results = read_results(tmp_path / "r.csv")
    assert sorted(int(r["row"]) for r in results) == list(range(2, rows + 2))
    assert summary.exit_code == 3
    assert elapsed < 1.5 + 4 + 10, "stopped within the request deadline (plus reading)"
    sent = {f["first_name"] for f in api.received}
    for r in results:
        assert (r["status"] == "skipped") == (r["first_name"] not in sent
                                              and r["status"] != "duplicate"), r


def test_a_second_stop_cuts_requests_in_flight(tmp_path: Path) -> None:
    pairs(tmp_path, 10)
    stop = Stop()
    with raw_api(lambda fields: Behaviour(delay=5.0)) as (_, url):
        threading.Timer(0.5, stop.request).start()
        threading.Timer(0.8, stop.request).start()
        started = time.monotonic()
        summary = run_import(options(tmp_path, url, concurrency=2, timeouts=Timeouts(5, 20)),
                             stop=stop, environ=ENV)
        assert time.monotonic() - started < 4
    statuses = {r["status"] for r in read_results(tmp_path / "r.csv")}
    assert summary.exit_code == 3 and statuses <= {"skipped", "failed", "duplicate"}


# Scenario 14: no thread outlives its run.

def test_run_import_leaves_no_thread_behind(tmp_path: Path) -> None:
    pairs(tmp_path, 30)
    with raw_api(lambda fields: Behaviour()) as (_, url):
        run_import(options(tmp_path, url), environ=ENV)
        before = {t.ident for t in threading.enumerate()}
        for _ in range(3):
            run_import(options(tmp_path, url, concurrency=4), environ=ENV)
        after = {t.name for t in threading.enumerate() if t.ident not in before}
    assert after == set()


# Scenario 15: stderr a broken pipe is not a results failure.

def test_a_broken_stderr_does_not_stop_the_run(tmp_path: Path) -> None:
    pairs(tmp_path, 40)
    read, write = os.pipe()
    os.close(read)
    with raw_api(lambda fields: Behaviour()) as (api, url):
        process = subprocess.run(
            [sys.executable, "-m", "importer", "run", tmp_path / "in.csv", "--mapping",
             tmp_path / "m.yaml", "--api-url", url, "--results", tmp_path / "r.csv",
             "--no-ledger"], stderr=write, stdout=subprocess.PIPE, text=True, timeout=120,
            env={**os.environ, **ENV, "PYTHONPATH": str(ROOT)}, check=False)
    os.close(write)
    assert process.returncode == 0, process.stdout
    assert "created          20" in process.stdout
    assert len(read_results(tmp_path / "r.csv")) == 40 and len(api.records) == 20
