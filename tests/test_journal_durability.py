"""The journal as the memory of every run (issue 9, scenarios 9, 10, 11 and 16).

A send record on disk before its request leaves, a torn one meaning the request never left,
facts that no later run clears, and results that a dry run never overwrites.
"""

import json
import os
import stat
import threading
import time
from pathlib import Path

import pytest

import importer.results.files as files_module
import importer.runs.journal as journal_module
from importer.rows.outcomes import Outcome
from importer.rows.problems import Code
from importer.runs.journal import Journal, Prior, journal_path, load_prior
from tests.conftest import read_results
from tests.rawapi import Behaviour, raw_api

MAPPING = "version: 1\nfields:\n  first_name: Name\n  email: Email\n"


def export(tmp_path: Path, rows: int, keyless_every: int = 3) -> Path:
    lines = ["Name,Email"] + [f"P{n},{'' if n % keyless_every == 0 else f'p{n}@x.io'}"
                              for n in range(2, rows + 2)]
    path = tmp_path / "in.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    (tmp_path / "m.yaml").write_text(MAPPING, encoding="utf-8")
    return path


def run(cli, tmp_path: Path, url: str, *extra: object, mapping: str = "m.yaml"):
    """A run whose memory is the journal alone (the import ledger would answer first)."""
    return cli("run", tmp_path / "in.csv", "--mapping", tmp_path / mapping, "--api-url", url,
               "--results", tmp_path / "r.csv", "--max-retries", "1", "--no-ledger", *extra)


def sent_names(api) -> list[str]:
    return [f["first_name"] for f in api.received]


# Scenario 9: a send record that is not completely written means the request does not leave.

class TornSendLine:
    """``os`` for the journal, except that one send record is written only halfway before the
    disk is full."""

    def __init__(self, after: int) -> None:
        self.after = after
        self.sends = 0
        self.torn_row: int | None = None

    def __getattr__(self, name: str) -> object:
        return getattr(os, name)

    def write(self, fd: int, data: bytes | memoryview) -> int:
        data = bytes(data)
        if self.torn_row is not None:
            raise OSError(28, "No space left on device")
        if data.startswith(b'{"send"'):
            self.sends += 1
            if self.sends == self.after:
                self.torn_row = json.loads(data)["send"]
                return os.write(fd, data[: len(data) // 2])
        return os.write(fd, data)


@pytest.mark.parametrize("after", [1, 7])
def test_a_torn_send_record_means_the_request_never_left(cli, tmp_path: Path, monkeypatch,
                                                          after: int) -> None:
    export(tmp_path, 30)
    disk = TornSendLine(after)
    monkeypatch.setattr(journal_module, "os", disk)
    with raw_api(lambda fields: Behaviour()) as (api, url):
        result = run(cli, tmp_path, url, "--concurrency", "4")
        assert result.code == 3 and "No space left on device" in result.out
        assert disk.torn_row is not None
        assert f"P{disk.torn_row}" not in sent_names(api)
        lines = (tmp_path / "r.csv.journal").read_bytes().splitlines()
        assert all(json.loads(line) for line in lines), "the torn line was cut off again"
        monkeypatch.setattr(journal_module, "os", os)
        assert run(cli, tmp_path, url, "--resume").code in (0, 1)
    assert sent_names(api).count(f"P{disk.torn_row}") == 1
    assert len(api.records) == len({r["first_name"] for r in api.records})
    assert len(read_results(tmp_path / "r.csv")) == 30


# Scenario 10: facts are monotonic.

def test_created_is_remembered_through_a_409_and_a_mapping_that_drops_the_key(
        cli, tmp_path: Path) -> None:
    export(tmp_path, 1)
    (tmp_path / "keyless.yaml").write_text("version: 1\nfields:\n  first_name: Name\n")
    with raw_api(lambda fields: Behaviour()) as (api, url):
        assert run(cli, tmp_path, url).code == 0
        second = read_results(tmp_path / "r.csv")[0]
        assert run(cli, tmp_path, url).code == 0
        assert read_results(tmp_path / "r.csv")[0]["error_code"] == "created-by-earlier-run"
        assert run(cli, tmp_path, url, mapping="keyless.yaml").code == 0
        third = read_results(tmp_path / "r.csv")[0]
        assert run(cli, tmp_path, url, mapping="keyless.yaml").code == 0
        fourth = read_results(tmp_path / "r.csv")[0]
    assert sent_names(api) == ["P2"]
    assert (third["status"], third["error_code"], third["id"]) == (
        "duplicate", "created-by-earlier-run", second["id"])
    assert fourth == third


def test_replay_keeps_facts_whatever_came_later(tmp_path: Path) -> None:
    path = tmp_path / "r.csv.journal"
    journal = Journal(path, {"input": "x"}, Prior({}))
    for line in [{"send": 2}, Outcome.created(2, "c-1", 201),
                 Outcome.problem(2, Code.ALREADY_EXISTS, http_status=409, reason="exists"),
                 {"send": 3}, Outcome.problem(3, Code.OUTCOME_UNKNOWN, reason="cut"),
                 {"send": 3}, Outcome.problem(3, Code.SERVER_ERROR, reason="503"),
                 {"send": 4}, Outcome.problem(4, Code.RATE_LIMITED, reason="429"),
                 {"send": 5}]:
        if isinstance(line, dict):
            journal.sending(line["send"])
        else:
            journal.outcome(line)
    journal.close(complete=False)
    prior = load_prior(path)
    assert prior is not None
    assert (prior.created, prior.unknown) == ({2: "c-1"}, {3, 5})
    assert prior.outcomes[2].code == Code.ALREADY_EXISTS
    restated = tmp_path / "next.journal"
    Journal(restated, prior.fingerprint, prior).close(complete=True)
    again = load_prior(restated)
    assert again is not None and (again.created, again.unknown) == (prior.created, prior.unknown)


# Scenario 11: a dry run never overwrites a real run's results.

def test_a_dry_run_keeps_clear_of_real_results_even_without_their_journal(
        cli, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    export(tmp_path, 6)
    real = tmp_path / "in.results.csv"
    with raw_api(lambda fields: Behaviour()) as (api, url):
        base = ("run", tmp_path / "in.csv", "--mapping", tmp_path / "m.yaml", "--api-url", url,
                "--no-ledger")
        assert cli(*base).code == 0
        journal_path(real).unlink()
        before = real.read_bytes()
        dry = cli(*base, "--dry-run")
        assert dry.code == 0 and "in.dry-run.csv" in dry.out
        assert real.read_bytes() == before
        assert cli(*base, "--resume", "--force").code == 0
    assert len(api.received) == 6, "nothing was sent again"
    assert {r["status"] for r in read_results(real)} == {"created"}


def test_a_dry_run_may_replace_an_earlier_dry_run(cli, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    export(tmp_path, 3)
    base = ("run", tmp_path / "in.csv", "--mapping", tmp_path / "m.yaml", "--dry-run")
    assert cli(*base).code == 0 and cli(*base).code == 0
    assert not (tmp_path / "in.dry-run.csv").exists()


# Scenario 16: send records are durable before the request leaves; group commit; folder sync.

class SyncWatch:
    """``os`` for the journal that remembers how much of each file an fsync made durable."""

    def __init__(self, delay: float = 0.0) -> None:
        self.durable: dict[int, int] = {}
        self.folders = 0
        self.syncs = 0
        self.delay = delay

    def __getattr__(self, name: str) -> object:
        return getattr(os, name)

    def fsync(self, fd: int) -> None:
        info = os.fstat(fd)
        time.sleep(self.delay)
        os.fsync(fd)
        self.syncs += 1
        if stat.S_ISDIR(info.st_mode):
            self.folders += 1
        else:
            self.durable[info.st_ino] = info.st_size


def test_every_request_leaves_after_its_send_record_is_synced(cli, tmp_path: Path,
                                                              monkeypatch) -> None:
    export(tmp_path, 40)
    watch = SyncWatch()
    monkeypatch.setattr(journal_module, "os", watch)
    monkeypatch.setattr(files_module, "os", watch)  # where the folder sync lives
    journal = tmp_path / "r.csv.journal"
    late: list[str] = []

    def answer(fields: dict[str, str]) -> Behaviour:
        row = int(fields["first_name"][1:])
        durable = watch.durable.get(journal.stat().st_ino, 0)
        if f'{{"send":{row}}}'.encode() not in journal.read_bytes()[:durable]:
            late.append(fields["first_name"])
        return Behaviour()

    with raw_api(answer) as (_, url):
        assert run(cli, tmp_path, url, "--concurrency", "8").code == 0
    assert late == []
    assert watch.folders >= 1, "the journal's rename was made durable"


def test_group_commit_shares_syncs_between_workers(tmp_path: Path, monkeypatch) -> None:
    watch = SyncWatch(delay=0.01)
    monkeypatch.setattr(journal_module, "os", watch)
    journal = Journal(tmp_path / "j", {}, Prior({}))
    start = watch.syncs

    def send(first: int) -> None:
        for row in range(first, first + 10):
            journal.sending(row)

    threads = [threading.Thread(target=send, args=(n * 100,)) for n in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    journal.close(complete=True)
    assert watch.syncs - start < 160 / 3, "one fsync covers the send records of many workers"
    prior = load_prior(tmp_path / "j")
    assert prior is not None and len(prior.unknown) == 160
