"""What every ledger store offers, whatever holds it (a SQLite file, a PostgreSQL database).

Both stores keep the same three tables: destinations, entries (one per record this tool created
or found existing) and keys (lookup key -> entry). A key points to one entry; an entry no key
points to any more is deleted. Entries are written in short batched transactions; a key that
is already held is kept, except by a fresh 201, which proves the earlier record is gone (it was
deleted in the CRM) and so replaces it.
"""

import json
import secrets
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

from importer.errors import LedgerError
from importer.ledger.fingerprints import combined_key, fields_key, single_keys

CREATED = "created"
EXISTING = "existing"
UNKNOWN = "unknown"
"""A keyless row whose request may have created a record (its answer was lost): not a record
the ledger can name, but a fact that keeps later runs from sending the row blindly. A later 201
or 409 for the same key upgrades it; nothing downgrades a settled key to it."""
HEARTBEAT = 10.0
"""Seconds between a run's signs of life in the ledger (``LedgerStore.beat``)."""
STALE_AFTER = 300.0
"""A run silent this long is dead even if its lock seems held: a PostgreSQL server may keep the
session of a host that vanished from the network for hours."""
SCHEMA_VERSION = 3
"""3 added the claims keyless rows take before they are sent, and the runs that hold them; a
version 2 ledger is upgraded in place when a run opens it (see ``sql``)."""

__all__ = [
    "CREATED",
    "EXISTING",
    "EXPORT_COLUMNS",
    "HEARTBEAT",
    "KEY_COLUMNS",
    "SCHEMA_VERSION",
    "STALE_AFTER",
    "UNKNOWN",
    "UPGRADE_UNKNOWN",
    "Claim",
    "ClaimAnswer",
    "DestinationInfo",
    "Entry",
    "Found",
    "LedgerError",
    "LedgerStore",
    "RunInfo",
    "Selection",
    "TakenForDead",
    "entry_row",
    "key_rows",
    "now_iso",
    "parse_prints",
]


class TakenForDead(LedgerError):
    """Another run took this one for dead and reaped it: its claims are outcome-unknown facts
    now, so it must not claim (or send) another keyless row. Trying again cannot help."""


def now_iso() -> str:
    """The time entries, claims and runs are stamped with: UTC, to the second."""
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class Entry:
    """One record this tool created (201) or found existing (409), as the ledger keeps it."""

    keys: tuple[str, str, str]
    fields_print: str
    field_prints: dict[str, str]
    record_id: str
    answer: str
    imported_at: str
    file: str
    row: int
    replaces: bool = False
    """A fresh 201: take over keys held by older entries (their records were deleted). Or a
    keyless row's fresh outcome-unknown (its claimed request, or its dead run's claim): a new
    fact replacing an older unknown, which a --retry-unknown run that saw the old one must not
    take over."""
    occurrence: int = 1
    """For a keyless row: which occurrence of the same fields in its file it was."""
    id: int = field(default_factory=lambda: secrets.randbits(62))

    def lookup_keys(self) -> list[str]:
        """The keys under which this entry is found again.

        A created record holds every one of its keys; a 409 only proves that some key of the
        row is taken, so with several keys the entry is found by their combination only.
        """
        singles = single_keys(self.keys)
        if not singles:
            return [fields_key(self.fields_print, self.occurrence)]
        if self.answer == CREATED or len(singles) == 1:
            return singles
        return [combined_key(self.keys)]


@dataclass(frozen=True, slots=True)
class Found:
    """What a lookup returns for a key: enough to report the row without a second query."""

    entry: int
    record_id: str
    fields_print: str
    answer: str
    imported_at: str
    file: str
    row: int


@dataclass(frozen=True, slots=True)
class Claim:
    """A keyless row a run is about to send: held in the ledger until its outcome is recorded.

    The API cannot recognise a keyless row, so two runs sending the same one would create two
    records. The first run to claim the row's key sends it; another run waits until the claim
    is settled (then the row is imported earlier, or it may exist) or released (nothing was
    created: it may send it). A run that dies leaves its claims behind; they then count as
    outcome unknown, since its requests may have been answered after it died.
    """

    fields_print: str
    field_prints: dict[str, str]
    file: str
    row: int
    occurrence: int
    claimed_at: str

    @property
    def key(self) -> str:
        return fields_key(self.fields_print, self.occurrence)

    def unknown(self) -> Entry:
        """What a dead run's claim becomes: an outcome-unknown entry (the record may exist)."""
        return Entry(("", "", ""), self.fields_print, self.field_prints, "", UNKNOWN,
                     self.claimed_at, self.file, self.row, replaces=True,
                     occurrence=self.occurrence)


@dataclass(frozen=True, slots=True)
class ClaimAnswer:
    """What a claim attempt found: the row is this run's to send (``claimed``), or the ledger
    holds it already (``found``), or another run holds a claim on it (``holder``). None of the
    three means the key changed hands during the attempt: try again."""

    claimed: bool = False
    found: Found | None = None
    holder: int | None = None


@dataclass(frozen=True, slots=True)
class RunInfo:
    """A run registered in the ledger, as ``ledger show`` lists it."""

    host: str
    pid: int
    results: str
    started_at: str
    claims: int
    alive: bool


@dataclass(frozen=True, slots=True)
class DestinationInfo:
    """A destination the ledger holds entries for, as ``ledger list`` shows it."""

    number: int
    endpoint: str
    token_print: str
    entries: int


@dataclass(frozen=True, slots=True)
class Selection:
    """Which entries of a destination ``forget`` and ``export`` act on: all, or a file, or a key
    (an email, external_id or website_url value)."""

    file: str | None = None
    key: str | None = None


class LedgerStore(Protocol):
    """The storage behind a ledger; every method is one short transaction and thread-safe."""

    location: str
    """Where the ledger is, for messages (never a password)."""

    def identity(self) -> str:
        """The ledger's own random id, given when it was created."""
        ...

    def destination_number(self, endpoint: str, token_print: str, digest: str, *,
                           create: bool) -> int | None:
        """The destination's number, registering it when ``create``; None when unknown."""
        ...

    def lookup(self, destination: int, keys: Sequence[str]) -> dict[str, Found]:
        """The entries held under any of ``keys``, by key."""
        ...

    def field_prints(self, entries: Sequence[int]) -> dict[int, dict[str, str]]:
        """Per-field fingerprints of the given entries (only needed when fields changed)."""
        ...

    def record(self, destination: int, entries: Sequence[Entry], *, run: int = 0,
               settled: Sequence[str] = ()) -> int:
        """Add entries in one transaction; returns how many are new (not already held).

        ``settled`` are keys ``run`` claimed whose rows now have an outcome: their claims end in
        the same transaction, so another run always sees the claim or the entry."""
        ...

    def start_run(self, destination: int, run: int, results: str) -> None:
        """Register a run (``run`` is a random id) and take its liveness lock, which ends with
        the process however it ends; runs of the destination that died are reaped first."""
        ...

    def beat(self, run: int) -> None:
        """The run is alive (for stores whose lock cannot tell across a network split)."""
        ...

    def claim(self, destination: int, run: int, claim: Claim, *, take_over_unknown: int,
              stop: threading.Event | None = None) -> ClaimAnswer:
        """Claim a keyless row's key for ``run`` in one transaction (see ``Claim``).

        ``take_over_unknown`` is the outcome-unknown entry the row may be sent over
        (``--retry-unknown``: the one the run's lookup saw), else 0."""
        ...

    def alive(self, run: int) -> bool:
        """Whether the run holding a claim is still running."""
        ...

    def reap(self, run: int) -> int:
        """Turn a dead run's claims into outcome-unknown entries; returns how many."""
        ...

    def end_run(self, run: int) -> None:
        """The run is over: its claims left unsettled become outcome unknown, its lock ends."""
        ...

    def runs(self, destination: int) -> list[RunInfo]:
        """The runs registered for the destination, oldest first: running now, or dead and not
        reaped yet (their claims count as outcome unknown once a run reaps them)."""
        ...

    def abandon(self, reason: str) -> None:
        """Make every later call fail at once (the run stops because the ledger failed)."""
        ...

    def destinations(self) -> list[DestinationInfo]:
        ...

    def entries(self, destination: int, selection: Selection) -> Iterator[tuple[object, ...]]:
        """Held entries as rows of ``EXPORT_COLUMNS``: by day imported, then file and row."""
        ...

    def count(self, destination: int, selection: Selection) -> int:
        ...

    def forget(self, destination: int, selection: Selection) -> int:
        """Delete the selected entries and their keys; returns how many were deleted."""
        ...

    def close(self) -> None:
        ...


EXPORT_COLUMNS = ("email", "external_id", "website_url", "id", "answer", "imported_at", "file",
                  "row", "fields_print")


UPGRADE_UNKNOWN = (f"WHERE ledger_keys.answer = '{UNKNOWN}' "
                   f"AND excluded.answer <> '{UNKNOWN}'")
"""The condition under which a key already held is overwritten by one that does not replace:
only an outcome-unknown fact, by a settled answer (facts only ever get more certain)."""


KEY_COLUMNS = ("destination", "key", "entry", "record_id", "fields_print", "answer",
               "imported_at", "file", "row")
"""A key row repeats what a lookup reports about its entry, so deciding a row reads one index
entry instead of two (the entries table is only read to name changed fields)."""


def key_rows(destination: int, entries: Sequence[Entry],
             replacing: bool) -> list[tuple[object, ...]]:
    """Rows of ``KEY_COLUMNS`` for the entries that do (or do not) replace older ones."""
    return [(destination, key, entry.id, entry.record_id, entry.fields_print, entry.answer,
             entry.imported_at, entry.file, entry.row)
            for entry in entries if entry.replaces == replacing for key in entry.lookup_keys()]


def entry_row(destination: int, entry: Entry) -> tuple[object, ...]:
    """The entries-table row of ``entry``; per-field prints as compact JSON."""
    prints = json.dumps(entry.field_prints, sort_keys=True, separators=(",", ":"))
    email, external_id, website_url = entry.keys
    return (entry.id, destination, email, external_id, website_url, entry.fields_print, prints,
            entry.record_id, entry.answer, entry.imported_at, entry.file, entry.row)


def parse_prints(text: str) -> dict[str, str]:
    """The per-field prints as stored; anything unreadable counts as "every field changed"."""
    try:
        prints = json.loads(text)
    except ValueError:
        return {}
    return {str(k): str(v) for k, v in prints.items()} if isinstance(prints, dict) else {}
