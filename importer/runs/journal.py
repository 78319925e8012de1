"""The journal: a crash-safe record of which rows went to the network and what came back.

It sits next to the results file (``<results>.journal``). A row is journaled just before its
first request leaves and again when its outcome is known, each line written straight to the
file, so after a crash or kill the next run knows which rows may exist on the server although
no answer was recorded. Only rows that were sent are journaled; everything else is decided
again, identically, from the input.
"""

import hashlib
import json
import os
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from importer.errors import ResumeError
from importer.results.files import BINARY, NOFOLLOW, SyncClock, written_whole
from importer.rows.outcomes import Outcome

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
    """What an earlier run into the same results file recorded."""

    fingerprint: dict[str, object]
    outcomes: dict[int, Outcome] = field(default_factory=dict)
    unknown: set[int] = field(default_factory=set)
    breaker: bool = False
    """The run that wrote it was stopped by the breaker for systematic rejections."""


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
    prior = Prior(records[0].get("fingerprint", {}))
    for record in records[1:]:
        if "send" in record:
            prior.unknown.add(record["send"])
        elif "end" in record:
            prior.breaker = bool(record.get("breaker"))
        elif "row" in record:
            outcome = Outcome.from_record(record)
            prior.outcomes[outcome.row] = outcome
            prior.unknown.discard(outcome.row)
    return prior


class Journal:
    """Appends journal lines; safe to call from every worker thread."""

    def __init__(self, path: Path, fingerprint: dict[str, object],
                 carried: list[Outcome], unknown: set[int]) -> None:
        """Start a fresh journal holding what an earlier run established (written atomically)."""
        self.path = path
        self._lock = threading.Lock()
        self._sync = SyncClock()
        lines = [{"journal": VERSION, "fingerprint": fingerprint, "started": _now()}]
        lines += [_record(o) for o in carried]
        lines += [{"send": row} for row in sorted(unknown)]
        temporary = path.with_name(path.name + ".tmp")
        with written_whole(path, temporary) as stream:
            stream.write(b"".join(_line(x) for x in lines))
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | NOFOLLOW | BINARY)

    def sending(self, row: int) -> None:
        self._write({"send": row})

    def outcome(self, outcome: Outcome) -> None:
        self._write(_record(outcome))

    def close(self, complete: bool, breaker: bool = False) -> None:
        """``breaker``: the run was stopped for systematic rejections, so a resume may come
        with a fixed mapping (see ``importer.runs.resume``)."""
        try:
            end: dict[str, Any] = {"end": _now(), "complete": complete}
            if breaker:
                end["breaker"] = True
            self._write(end)
            with self._lock:
                os.fsync(self._fd)
        finally:
            os.close(self._fd)

    def _write(self, record: dict[str, Any]) -> None:
        data = _line(record)
        with self._lock:
            try:
                os.write(self._fd, data)
                if self._sync.due():
                    os.fsync(self._fd)
            except OSError as exc:
                raise JournalError(exc.errno, f"cannot write the journal {self.path} "
                                   f"({exc.strerror or exc}); stopped so that no row is sent "
                                   "without a record") from exc


def _record(outcome: Outcome) -> dict[str, Any]:
    return {"row": outcome.row, "status": str(outcome.status), "id": outcome.id,
            "http_status": outcome.http_status, "error_code": str(outcome.code),
            "error": outcome.error}


def _line(record: dict[str, Any]) -> bytes:
    return json.dumps(record, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
