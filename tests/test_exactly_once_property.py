"""A search for counter-examples to "exactly once" (issue 9): Hypothesis drives whole imports
against a scripted in-process API and crashes the importer at random points.

The API is honest about its refusals (a 429, 408, 503, 400 or a non-duplicate 409 stores
nothing) and about its keys (a second record with the same email is answered with 409), and
misbehaves in every other way a network can: it stores a record and then answers any 5xx,
drops the connection, times out, cuts or bloats the body, or breaks TLS. A crash abandons the
run at a request (before or after the server stored it): the journal and the results are put
back to what was on disk at that moment, and nothing else leaves.

After every run: every row is in the results once (a crashed run's results are a prefix
without repeats); no row's record is on the server twice; no row is reported ``created`` (or
created by an earlier run) that the server does not hold under that id; a row once reported
``outcome-unknown`` without a key is never sent again without ``--retry-unknown``. At the end,
resumed runs against a well-behaved API converge: every row ends settled, or unknown without
a key. ``pytest -m slow tests/test_exactly_once_property.py`` runs a much longer search
(``ROUTERA_SEARCH_EXAMPLES`` examples, 400 by default).
"""

import json
import os
import shutil
import tempfile
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
import urllib3
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)
from requests.structures import CaseInsensitiveDict

from importer import RunOptions, run_import
from importer.runs.journal import load_prior
from importer.sending.deadlines import _attach
from importer.sending.delivery import RetryPolicy
from tests.conftest import TOKEN, read_results

URL = "https://api.example.test"
STORED_THEN = [500, 502, 504, 520, 524, 599]
"""Statuses an API may answer after it stored the record."""


@dataclass(frozen=True)
class Fault:
    kind: str
    status: int = 0
    retry_after: str | None = None


FAULTS = st.one_of(
    st.builds(Fault, st.just("ok")),
    st.builds(Fault, st.just("stored-then"), st.sampled_from(STORED_THEN)),
    st.builds(Fault, st.sampled_from(["stored-drop", "stored-timeout", "stored-cut",
                                      "stored-bloat", "stored-garbled", "stored-tls"])),
    st.builds(Fault, st.sampled_from(["refused-drop", "unreachable", "lock-409"])),
    st.builds(Fault, st.just("refused"), st.sampled_from([408, 429, 503]),
              st.sampled_from([None, "0", "1"])),
)


class _Raw:
    """A response body that reads as given, or fails the way a cut connection does."""

    def __init__(self, body: bytes, error: Exception | None) -> None:
        self.body = body
        self.error = error

    def read(self, amt: int | None = None, decode_content: bool = True) -> bytes:
        if self.error is not None:
            raise self.error
        return self.body[:amt]

    def close(self) -> None:
        pass


class _Connection:
    routera_watch = None


@dataclass
class ScriptedApi:
    """The server: records, a log of requests, the faults of the next requests, a crash."""

    records: dict[str, dict[str, str]] = field(default_factory=dict)
    faults: list[Fault] = field(default_factory=list)
    sent: list[str] = field(default_factory=list)
    crash_at: int | None = None
    crash_stores: bool = False
    dead: bool = False
    snapshot: dict[str, bytes | None] = field(default_factory=dict)
    files: list[Path] = field(default_factory=list)
    forbidden: set[str] = field(default_factory=set)
    violations: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(self, fields: dict[str, str]) -> requests.Response:
        token = fields["first_name"]
        with self.lock:
            if self.dead:
                raise _not_sent()
            self.sent.append(token)
            if token in self.forbidden:
                self.violations.append(f"{token} was sent again after outcome-unknown")
            if self.crash_at is not None and len(self.sent) >= self.crash_at:
                if self.crash_stores:
                    self._store(fields)
                self._crash()
                raise _not_sent()
            fault = self.faults.pop(0) if self.faults else Fault("ok")
            return self._misbehave(fault, fields)

    def _misbehave(self, fault: Fault, fields: dict[str, str]) -> requests.Response:
        kind = fault.kind
        if fields["first_name"].startswith("Bad"):
            return _response(400, {"error": "first_name is not allowed"})
        if kind == "unreachable":
            raise _not_sent()
        if kind == "refused-drop":
            raise requests.exceptions.ConnectionError(urllib3.exceptions.ProtocolError(
                "Connection aborted.", ConnectionResetError(104, "reset by peer")))
        if kind == "refused":
            headers = {"Retry-After": fault.retry_after} if fault.retry_after else {}
            return _response(fault.status, {"error": "busy"}, headers)
        if kind == "lock-409":
            return _response(409, {"error": "conflict: a concurrent request holds the lock, "
                                            "retry"})
        existing = self._existing(fields)
        if existing is not None:
            return _response(409, {"error": "duplicate: email already exists", "id": existing})
        record_id = self._store(fields)
        created = _response(201, {"id": record_id, **fields})
        if kind == "ok":
            return created
        if kind == "stored-then":
            return _response(fault.status, {"error": "upstream"})
        if kind == "stored-drop":
            raise requests.exceptions.ConnectionError(urllib3.exceptions.ProtocolError(
                "Connection aborted.", ConnectionResetError(104, "reset by peer")))
        if kind == "stored-timeout":
            raise requests.exceptions.ReadTimeout("read timed out")
        if kind == "stored-cut":
            created.raw = _Raw(b"", urllib3.exceptions.ProtocolError("IncompleteRead(10 bytes)"))
        elif kind == "stored-bloat":
            created.raw = _Raw(b'{"id": "' + b"x" * 70_000 + b'"}', None)
        elif kind == "stored-garbled":
            created.raw = _Raw(b'{"id": "c-', None)
        elif kind == "stored-tls":
            _attach(_Connection())  # type: ignore[arg-type]
            raise requests.exceptions.SSLError("[SSL: DECRYPTION_FAILED_OR_BAD_RECORD_MAC]")
        return created

    def _existing(self, fields: dict[str, str]) -> str | None:
        email = fields.get("email", "").casefold()
        for record_id, record in self.records.items():
            if email and record.get("email", "").casefold() == email:
                return record_id
        return None

    def _store(self, fields: dict[str, str]) -> str:
        existing = self._existing(fields)
        if existing is not None:
            return existing
        record_id = f"c-{len(self.records) + 1}"
        self.records[record_id] = dict(fields)
        return record_id

    def _crash(self) -> None:
        """The process dies now: what is on disk is what the next run finds."""
        self.dead = True
        self.snapshot = {str(p): p.read_bytes() if p.exists() else None for p in self.files}

    def restore(self) -> None:
        for name, data in self.snapshot.items():
            path = Path(name)
            if data is None:
                path.unlink(missing_ok=True)
            else:
                path.write_bytes(data)


def _response(status: int, body: dict[str, Any],
              headers: dict[str, str] | None = None) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response.headers = CaseInsensitiveDict({"Content-Type": "application/json",
                                            **(headers or {})})
    response.raw = _Raw(json.dumps(body).encode(), None)
    return response


def _not_sent() -> requests.exceptions.ConnectionError:
    return requests.exceptions.ConnectionError(urllib3.exceptions.MaxRetryError(
        None, "/contacts", urllib3.exceptions.NewConnectionError(None, "Connection refused")))


class _Adapter(requests.adapters.BaseAdapter):
    def __init__(self, api: ScriptedApi) -> None:
        super().__init__()
        self.api = api

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        body = request.body if isinstance(request.body, bytes) else b"{}"
        return self.api.answer(json.loads(body)["fields"])

    def close(self) -> None:
        pass


ROWS = st.lists(st.tuples(st.one_of(st.none(), st.integers(0, 4)), st.booleans()),
                min_size=2, max_size=9)
"""Each row: an email chosen from five (so some rows repeat others) or none, and whether the
API rejects it (400)."""


class DeliveryMachine(RuleBasedStateMachine):
    """Runs, crashes and resumes one import of a small export against one scripted API."""

    def __init__(self) -> None:
        super().__init__()
        self.folder = Path(tempfile.mkdtemp(prefix="exactly-once-"))
        self.api = ScriptedApi()
        self.results = self.folder / "r.csv"
        self.api.files = [self.results, self.folder / "r.csv.journal"]
        self.keyless: set[str] = set()
        self.keyed: set[str] = set()
        self.risked: set[str] = set()
        self.crashed = False
        self.rows = 0
        self.runs = 0
        self.names: list[str] = []
        self.log: list[str] = []

    @initialize(rows=ROWS)
    def export(self, rows: list[tuple[int | None, bool]]) -> None:
        lines = ["Name,Email"]
        for n, (email, bad) in enumerate(rows):
            name = f"{'Bad' if bad else 'R'}{n}"
            lines.append(f"{name},{'' if email is None else f'e{email}@x.io'}")
            (self.keyless if email is None else self.keyed).add(name)
        self.rows = len(rows)
        self.names = [line.split(",")[0] for line in lines[1:]]
        (self.folder / "in.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
        (self.folder / "m.yaml").write_text(
            "version: 1\nfields:\n  first_name: Name\n  email: Email\n", encoding="utf-8")

    def _run(self, *, resume: bool, retry_unknown: bool, concurrency: int) -> None:
        session = requests.Session()
        session.mount("https://", _Adapter(self.api))
        options = RunOptions(input=self.folder / "in.csv", mapping=self.folder / "m.yaml",
                             results=self.results, api_url=URL, concurrency=concurrency,
                             max_retries=2, resume=resume, force=True,
                             retry_unknown=retry_unknown, no_ledger=True,
                             ledger=str(self.folder / "ledger.sqlite3"))
        if retry_unknown:
            self.risked |= self.api.forbidden | self._unknown_in_journal()
            self.api.forbidden = set()
        self.log.append(f"run resume={resume} retry_unknown={retry_unknown} "
                        f"concurrency={concurrency} faults={self.api.faults} "
                        f"crash_at={self.api.crash_at} stores={self.api.crash_stores} "
                        f"sent_before={len(self.api.sent)}")
        run_import(options, session=session, environ={"ROUTERA_API_TOKEN": TOKEN})
        self.runs += 1
        outcomes = [(r["first_name"], r["status"], r["error_code"]) for r in self._results()]
        self.log.append(f"  -> {outcomes}")
        self.crashed = self.api.dead
        if self.api.dead:
            self.api.restore()
        self.api.dead = False
        self.api.crash_at = None
        self.api.faults = []
        self._learn_unknown_rows()

    def _unknown_in_journal(self) -> set[str]:
        """Rows the journal holds as "may have been created": --retry-unknown may send these
        again, and so may create them twice (the user's explicit choice)."""
        prior = load_prior(self.folder / "r.csv.journal")
        return set() if prior is None else {self.names[row - 2] for row in prior.unknown}

    def _learn_unknown_rows(self) -> None:
        for row in self._results():
            if (row["status"], row["error_code"]) == ("failed", "outcome-unknown") \
                    and row["first_name"] in self.keyless:
                self.api.forbidden.add(row["first_name"])

    def _results(self) -> list[dict[str, str]]:
        return read_results(self.results) if self.results.exists() else []

    @rule(faults=st.lists(FAULTS, max_size=8), resume=st.booleans(),
          retry_unknown=st.sampled_from([False, False, False, True]),
          concurrency=st.sampled_from([1, 3]),
          crash=st.one_of(st.none(), st.tuples(st.integers(1, 8), st.booleans())))
    def run(self, faults: list[Fault], resume: bool, retry_unknown: bool, concurrency: int,
            crash: tuple[int, bool] | None) -> None:
        self.api.faults = list(faults)
        if crash is not None:
            self.api.crash_at = len(self.api.sent) + crash[0]
            self.api.crash_stores = crash[1]
        self._run(resume=resume, retry_unknown=retry_unknown, concurrency=concurrency)

    @invariant()
    def nothing_twice_and_nothing_made_up(self) -> None:
        if not self.runs:
            return
        assert self.api.violations == []
        tokens = Counter(r["first_name"] for r in self.api.records.values())
        twice = [t for t, c in tokens.items() if c > 1 and t not in self.risked]
        assert twice == [], (twice, self.log, self.api.sent)
        rows = self._results()
        numbers = [int(r["row"]) for r in rows]
        assert numbers == sorted(set(numbers)), "every row at most once, in order"
        if not self.crashed:
            assert numbers == list(range(2, self.rows + 2)), "every row exactly once"
        for row in rows:
            if row["status"] == "created" or row["error_code"] == "created-by-earlier-run":
                record = self.api.records.get(row["id"])
                assert record is not None and record["first_name"] == row["first_name"], row

    def teardown(self) -> None:
        try:
            if self.rows:
                self._converge()
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)

    def _converge(self) -> None:
        """Resumed runs against a well-behaved API settle every row (unknown, without a key,
        stays unknown), and every keyed row's record exists once."""
        for _ in range(2):
            self._run(resume=True, retry_unknown=False, concurrency=2)
        self.nothing_twice_and_nothing_made_up()
        stored = {r["first_name"] for r in self.api.records.values()}
        emails = {r["email"] for r in self.api.records.values() if r.get("email")}
        for row in self._results():
            name, status, code = row["first_name"], row["status"], row["error_code"]
            if name.startswith("Bad"):
                assert status == "rejected" or code == "duplicate-in-file" or (
                    name in self.keyless and code == "outcome-unknown"), row
            elif name in self.keyless:
                assert status == "created" or code in ("created-by-earlier-run",
                                                       "outcome-unknown"), row
                assert code == "outcome-unknown" or name in stored, row
            else:
                assert status in ("created", "duplicate"), row
                assert row["email"] in emails, row


@contextmanager
def quick_retries() -> Iterator[None]:
    """Backoff and Retry-After of nothing, so a search spends its time on runs, not sleeps."""
    backoff, retry_after = RetryPolicy.backoff, RetryPolicy.retry_after
    RetryPolicy.backoff = lambda self, retry: 0.0  # type: ignore[method-assign]
    RetryPolicy.retry_after = (  # type: ignore[method-assign]
        lambda self, header: 0.0 if header else None)
    try:
        yield
    finally:
        RetryPolicy.backoff = backoff  # type: ignore[method-assign]
        RetryPolicy.retry_after = retry_after  # type: ignore[method-assign]


def _search(examples: int, steps: int) -> None:
    with quick_retries():
        run_state_machine_as_test(DeliveryMachine, settings=settings(
            max_examples=examples, stateful_step_count=steps, deadline=None,
            suppress_health_check=list(HealthCheck)))


def test_exactly_once_under_faults_and_crashes() -> None:
    _search(examples=12, steps=4)


@pytest.mark.slow
def test_exactly_once_long_search() -> None:
    _search(examples=int(os.environ.get("ROUTERA_SEARCH_EXAMPLES", "400")), steps=10)
