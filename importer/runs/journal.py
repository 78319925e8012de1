"""The journal: a crash-safe record of which rows went to the network and what came back.

It sits next to the results file (``<results>.journal``). A row is journaled just before its
first request leaves and again when its outcome is known, so after a crash, a kill or a power
cut the next run knows which rows may exist on the server although no answer was recorded.
Only rows that were sent are journaled; everything else is decided again from the input.

Durability. A send record is on disk (fsynced) before its request leaves: ``sending`` returns
only once a sync covering its line has finished. Syncs are shared (group commit): while one
fsync runs, the send records of the other workers pile up and the next fsync covers them all,
so the cost is one fsync per batch of requests rather than per request. A line that cannot be
written whole (disk full) is cut off again and the journal refuses every later write, so a
torn send record always means that its request did not leave. Outcome lines are synced with
the next send record, and at least once a second; losing one only makes its row look "sent,
no answer", which is the cautious reading. Renames are made durable by syncing the folder.

Facts are monotonic. Besides each row's latest outcome, a journal knows two facts that no
later outcome clears: "was created (id)" and "may have been sent" (a send record without an
answer, or an ``outcome-unknown`` outcome). Every new journal starts by restating them, so they
survive every later run, whatever the later runs saw (a 409, a refusal, a stop).
"""

import contextlib
import hashlib
import json
import os
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from importer.errors import ResumeError
from importer.results.files import BINARY, NOFOLLOW, SyncClock, sync_folder, written_whole
from importer.rows.outcomes import Outcome
from importer.rows.problems import Code
from importer.rows.status import Status

VERSION = 1


class JournalError(OSError):
    """The journal cannot be written, so the run must stop before sending rows unrecorded."""


def journal_path(results: Path) -> Path:
    return results.with_name(results.name + ".journal")


def file_digest(path: Path) -> str:
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


@dataclass
class Prior:
    """What earlier runs into the same results file established.

    ``outcomes`` are each row's latest outcome (what ``--resume`` keeps); ``created`` and
    ``unknown`` are the monotonic facts: rows created (with their id) and rows that may have
    been created without an answer saying so, in any earlier run.
    """

    fingerprint: dict[str, object]
    outcomes: dict[int, Outcome] = field(default_factory=dict)
    unknown: set[int] = field(default_factory=set)
    breaker: bool = False
    """The run that wrote it was stopped by the breaker for systematic rejections."""
    created: dict[int, str] = field(default_factory=dict)

    def learn(self, outcome: Outcome) -> None:
        """Take in a row's outcome: it becomes the latest, and adds to the facts."""
        self.outcomes[outcome.row] = outcome
        if outcome.code == Code.OUTCOME_UNKNOWN:
            self.unknown.add(outcome.row)
        if (outcome.status == Status.CREATED or outcome.code == Code.CREATED_BY_EARLIER_RUN) \
                and outcome.id:
            self.created[outcome.row] = outcome.id

    @classmethod
    def from_outcomes(cls, fingerprint: dict[str, object],
                      outcomes: dict[int, Outcome]) -> "Prior":
        """From a results file alone (no journal): the facts its outcomes show."""
        prior = cls(fingerprint)
        for outcome in outcomes.values():
            prior.learn(outcome)
        return prior


def load_prior(path: Path) -> Prior | None:
    """Read a journal; a torn last line (a crash mid-write) is dropped, other damage refused."""
    try:
        with path.open("rb") as f:
            lines = f.read().split(b"\n")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ResumeError(f"{path}: cannot be read ({exc.strerror or exc})") from exc
    records = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except ValueError as exc:
            if number == len(lines):
                break
            raise ResumeError(f"{path} line {number}: damaged; move the journal aside to start "
                              "over (rows it recorded may then be sent again)") from exc
    if not records or records[0].get("journal") != VERSION:
        raise ResumeError(f"{path}: not a routera-import journal; move it aside")
    return _replay(records)


def _replay(records: list[dict[str, Any]]) -> Prior:
    """Facts in the order they were written. A send record without an outcome after it is a
    row that may have been created; an outcome after it (decided knowing every earlier fact,
    so ``outcome-unknown`` whenever the row may exist) settles that one send."""
    prior = Prior(records[0].get("fingerprint", {}))
    pending: set[int] = set()
    for record in records[1:]:
        if "send" in record:
            pending.add(int(record["send"]))
        elif "unknown" in record:
            prior.unknown.add(int(record["unknown"]))
        elif "created" in record:
            prior.created[int(record["created"])] = str(record.get("id") or "")
        elif "end" in record:
            prior.breaker = bool(record.get("breaker"))
        elif "row" in record:
            outcome = Outcome.from_record(record)
            pending.discard(outcome.row)
            prior.learn(outcome)
    prior.unknown |= pending
    return prior


class Journal:
    """Appends journal lines; safe to call from every worker thread."""

    def __init__(self, path: Path, fingerprint: dict[str, object], prior: Prior) -> None:
        """Start a fresh journal restating what earlier runs established (written atomically,
        then the folder synced, so the rename itself survives a power cut)."""
        self.path = path
        self._cond = threading.Condition(threading.Lock())
        self._sync = SyncClock()
        self._written = 0
        self._synced = 0
        self._syncing = False
        self._broken: OSError | None = None
        self.syncs = 0
        lines: list[dict[str, Any]] = [
            {"journal": VERSION, "fingerprint": fingerprint, "started": _now()}]
        lines += [_record(prior.outcomes[row]) for row in sorted(prior.outcomes)]
        lines += [{"created": row, "id": prior.created[row]} for row in sorted(prior.created)]
        lines += [{"unknown": row} for row in sorted(prior.unknown)]
        temporary = path.with_name(path.name + ".tmp")
        with written_whole(path, temporary) as stream:
            stream.write(b"".join(_line(x) for x in lines))
        sync_folder(path)
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | NOFOLLOW | BINARY)
        self._size = os.fstat(self._fd).st_size

    def sending(self, row: int) -> None:
        """Record that ``row``'s request is about to leave; returns once that is on disk."""
        self._sync_through(self._write({"send": row}))

    def outcome(self, outcome: Outcome) -> None:
        self._write(_record(outcome))

    def close(self, complete: bool, breaker: bool = False) -> None:
        """``breaker``: the run was stopped for systematic rejections, so a resume may come
        with a fixed mapping (see ``importer.runs.resume``)."""
        try:
            end: dict[str, Any] = {"end": _now(), "complete": complete}
            if breaker:
                end["breaker"] = True
            self._sync_through(self._write(end))
        finally:
            os.close(self._fd)

    def _write(self, record: dict[str, Any]) -> int:
        """Append one whole line, or none: returns the line's number for ``_sync_through``."""
        data = _line(record)
        with self._cond:
            self._check()
            try:
                _write_all(self._fd, data)
            except OSError as exc:
                self._break(exc)
                self._check()
            self._size += len(data)
            self._written += 1
            if not self._syncing and self._sync.due():
                self._fsync_locked()
            return self._written

    def _sync_through(self, line: int) -> None:
        """Wait until line number ``line`` is on disk, syncing for everyone who waits."""
        with self._cond:
            while self._synced < line:
                self._check()
                if self._syncing:
                    self._cond.wait()
                    continue
                self._fsync_locked()
            self._check()

    def _fsync_locked(self) -> None:
        """One fsync covering every line written so far; other threads keep appending (and
        queue behind it) meanwhile."""
        self._syncing = True
        target = self._written
        self._cond.release()
        error: OSError | None = None
        try:
            os.fsync(self._fd)
        except OSError as exc:
            error = exc
        finally:
            self._cond.acquire()
            self._syncing = False
            self.syncs += 1
            if error is None:
                self._synced = max(self._synced, target)
            else:
                self._break(error)
            self._cond.notify_all()

    def _break(self, exc: OSError) -> None:
        """A failed write or sync: cut off any torn line and refuse everything from now on."""
        if self._broken is None:
            self._broken = exc
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, self._size)

    def _check(self) -> None:
        exc = self._broken
        if exc is not None:
            raise JournalError(exc.errno, f"cannot write the journal {self.path} "
                               f"({exc.strerror or exc}); stopped so that no row is sent "
                               "without a record")


def _write_all(fd: int, data: bytes) -> None:
    """``os.write`` may write part of the data (a nearly full disk): write the rest, or fail."""
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        if written <= 0:
            raise OSError(28, "No space left on device")
        view = view[written:]


def _record(outcome: Outcome) -> dict[str, Any]:
    return {"row": outcome.row, "status": str(outcome.status), "id": outcome.id,
            "http_status": outcome.http_status, "error_code": str(outcome.code),
            "error": outcome.error}


def _line(record: dict[str, Any]) -> bytes:
    return json.dumps(record, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
