"""The ledger's SQL and the store methods built on it, written once for SQLite and PostgreSQL.

Both stores run the same statements over the same tables (see ``store``). They differ only in
the placeholder (``?`` or ``%s``), in how one parameter carries a list (a JSON array read by
``json_each``, or a native array matched by ``= ANY``) and in how an insert skips a row that is
already there; ``Dialect`` names those differences and ``Statements`` builds every statement
from them. ``SqlStore`` holds the methods whose logic is the same for both, so a store keeps only
what is its database's own: connecting, locking and transactions, pragmas, the list parameter.
"""

import json
import os
import secrets
import socket
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

from importer.ledger.store import (
    KEY_COLUMNS,
    SCHEMA_VERSION,
    STALE_AFTER,
    UNKNOWN,
    UPGRADE_UNKNOWN,
    Claim,
    ClaimAnswer,
    DestinationInfo,
    Entry,
    Found,
    LedgerError,
    RunInfo,
    Selection,
    TakenForDead,
    entry_row,
    key_rows,
    now_iso,
    parse_prints,
)

ORDER = "ORDER BY substr(e.imported_at, 1, 10), e.file, e.row"
HELD = "EXISTS (SELECT 1 FROM ledger_keys AS k WHERE k.entry = e.id)"
EXPORT = ("SELECT e.email, e.external_id, e.website_url, e.record_id, e.answer, e.imported_at, "
          "e.file, e.row, e.fields_print FROM ledger_entries AS e")
RENEW_UNKNOWN = f"WHERE excluded.answer <> '{UNKNOWN}' OR ledger_keys.answer = '{UNKNOWN}'"
"""When an entry that replaces (``Entry.replaces``) takes a key over: a 201 always; a fresh
outcome-unknown only from another outcome-unknown, as a new fact (nothing downgrades)."""
SCHEMA_VERSION_QUERY = "SELECT value FROM ledger_meta WHERE name = 'schema'"
LEDGER_ID_QUERY = "SELECT value FROM ledger_meta WHERE name = 'id'"
DESTINATIONS = (f"SELECT d.number, d.endpoint, d.token_print, (SELECT count(*) FROM "
                f"ledger_entries AS e WHERE e.destination = d.number AND {HELD}) "
                "FROM ledger_destinations AS d ORDER BY d.number")


@dataclass(frozen=True, slots=True)
class Dialect:
    """What differs between the databases' SQL, and nothing else."""

    mark: str
    """The parameter placeholder."""
    one_of: str
    """``{}`` matched against a list parameter (``mark`` stands in ``{}``'s place)."""
    insert_or_skip: tuple[str, str]
    """What goes before and after ``table VALUES (...)`` so an existing row is left alone."""
    big_integer: str
    """The column type of entry ids (62 random bits) and destination numbers."""
    numbered: str
    """A primary key the database numbers itself."""
    keyed_table: str
    """What follows the keys table's columns (SQLite stores it in its primary key's order)."""
    now_ms: str
    """The database's clock in milliseconds since 1970: runs on several hosts judge each other's
    heartbeats by one clock."""
    key_share: str
    """What makes a read of a run's row hold it until the transaction ends, so that reaping the
    run waits for a claim being taken (SQLite's write transactions run one at a time)."""


SQLITE = Dialect("?", "{} IN (SELECT value FROM json_each(?))",
                 ("INSERT OR IGNORE INTO", ""), "INTEGER", "INTEGER PRIMARY KEY", " WITHOUT ROWID",
                 "CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)", "")
POSTGRES = Dialect("%s", "{} = ANY(%s)", ("INSERT INTO", " ON CONFLICT DO NOTHING"), "BIGINT",
                   "BIGSERIAL PRIMARY KEY", "",
                   "CAST(extract(epoch FROM clock_timestamp()) * 1000 AS BIGINT)",
                   " FOR KEY SHARE")
CLAIM_COLUMNS = ("destination", "key", "run", "fields_print", "field_prints", "file", "row",
                 "occurrence", "claimed_at")


class Statements:
    """Every statement the stores run, in one dialect."""

    def __init__(self, dialect: Dialect) -> None:
        self.dialect = dialect
        mark = dialect.mark
        self.lookup = ("SELECT k.key, k.entry, k.record_id, k.fields_print, k.answer, "
                       "k.imported_at, k.file, k.row FROM ledger_keys AS k WHERE "
                       f"k.destination = {mark} AND {self.one_of('k.key')}")
        self.insert_entry = self._insert_or_skip("ledger_entries", 12)
        self.add_destination = self._insert_or_skip(
            "ledger_destinations (digest, endpoint, token_print)", 3)
        self.destination = f"SELECT number FROM ledger_destinations WHERE digest = {mark}"
        upsert_key = (f"INSERT INTO ledger_keys VALUES ({self._marks(len(KEY_COLUMNS))}) "
                      "ON CONFLICT (destination, key) DO UPDATE SET "
                      + ", ".join(f"{c} = excluded.{c}" for c in KEY_COLUMNS[2:]))
        self.keep_key = f"{upsert_key} {UPGRADE_UNKNOWN}"
        self.replace_key = f"{upsert_key} {RENEW_UNKNOWN}"
        self.held_by = (f"SELECT entry FROM ledger_keys WHERE destination = {mark} AND "
                        f"{self.one_of('key')}")
        self.field_prints = ("SELECT id, field_prints FROM ledger_entries WHERE "
                             f"{self.one_of('id')}")
        self.delete_unheld = (f"DELETE FROM ledger_entries AS e WHERE {self.one_of('e.id')} "
                              f"AND NOT {HELD}")
        self.count_ids = f"SELECT count(*) FROM ledger_entries WHERE {self.one_of('id')}"
        self._claims(mark, dialect.now_ms, dialect.key_share)
        self.schema = self._schema()

    def _claims(self, mark: str, now: str, key_share: str) -> None:
        """The statements of claims and of the runs that hold them."""
        self.add_run = f"INSERT INTO ledger_runs VALUES ({self._marks(6)}, {now})"
        self.run_row = f"SELECT id FROM ledger_runs WHERE id = {mark}{key_share}"
        self.beat = f"UPDATE ledger_runs SET beat = {now} WHERE id = {mark}"
        self.run_age = f"SELECT {now} - beat FROM ledger_runs WHERE id = {mark}"
        self.runs_of = f"SELECT id FROM ledger_runs WHERE destination = {mark} AND id <> {mark}"
        self.insert_claim = self._insert_or_skip("ledger_claims", len(CLAIM_COLUMNS))
        self.claim_holder = (f"SELECT run FROM ledger_claims WHERE destination = {mark} AND "
                             f"key = {mark}")
        self.drop_claim = (f"DELETE FROM ledger_claims WHERE destination = {mark} AND "
                           f"key = {mark} AND run = {mark}")
        self.settle_claims = (f"DELETE FROM ledger_claims WHERE destination = {mark} AND "
                              f"run = {mark} AND {self.one_of('key')}")
        self.run_claims = (f"SELECT {', '.join(CLAIM_COLUMNS)} FROM ledger_claims "
                           f"WHERE run = {mark}")
        self.drop_run_claims = f"DELETE FROM ledger_claims WHERE run = {mark}"
        self.drop_run = f"DELETE FROM ledger_runs WHERE id = {mark}"
        self.runs = ("SELECT r.id, r.host, r.pid, r.results, r.started_at, (SELECT count(*) FROM "
                     "ledger_claims AS c WHERE c.run = r.id) FROM ledger_runs AS r WHERE "
                     f"r.destination = {mark} ORDER BY r.started_at")

    def _schema(self) -> str:
        """The tables, created where missing, and the schema version of a new ledger."""
        big, keyed, (before, after) = (self.dialect.big_integer, self.dialect.keyed_table,
                                       self.dialect.insert_or_skip)
        return f"""
CREATE TABLE IF NOT EXISTS ledger_meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS ledger_destinations (
    number {self.dialect.numbered}, digest TEXT NOT NULL UNIQUE, endpoint TEXT NOT NULL,
    token_print TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS ledger_entries (
    id {big} PRIMARY KEY, destination {big} NOT NULL, email TEXT NOT NULL,
    external_id TEXT NOT NULL, website_url TEXT NOT NULL, fields_print TEXT NOT NULL,
    field_prints TEXT NOT NULL, record_id TEXT NOT NULL, answer TEXT NOT NULL,
    imported_at TEXT NOT NULL, file TEXT NOT NULL, row INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS ledger_entries_file ON ledger_entries (destination, file);
CREATE TABLE IF NOT EXISTS ledger_keys (
    destination {big} NOT NULL, key TEXT NOT NULL, entry {big} NOT NULL,
    record_id TEXT NOT NULL, fields_print TEXT NOT NULL, answer TEXT NOT NULL,
    imported_at TEXT NOT NULL,
    file TEXT NOT NULL, row INTEGER NOT NULL, PRIMARY KEY (destination, key)){keyed};
CREATE INDEX IF NOT EXISTS ledger_keys_entry ON ledger_keys (entry);
CREATE TABLE IF NOT EXISTS ledger_runs (
    id {big} PRIMARY KEY, destination {big} NOT NULL, host TEXT NOT NULL, pid {big} NOT NULL,
    results TEXT NOT NULL, started_at TEXT NOT NULL, beat {big} NOT NULL);
CREATE TABLE IF NOT EXISTS ledger_claims (
    destination {big} NOT NULL, key TEXT NOT NULL, run {big} NOT NULL,
    fields_print TEXT NOT NULL, field_prints TEXT NOT NULL, file TEXT NOT NULL,
    row INTEGER NOT NULL, occurrence INTEGER NOT NULL, claimed_at TEXT NOT NULL,
    PRIMARY KEY (destination, key)){keyed};
CREATE INDEX IF NOT EXISTS ledger_claims_run ON ledger_claims (run);
UPDATE ledger_meta SET value = '{SCHEMA_VERSION}' WHERE name = 'schema' AND value = '2';
{before} ledger_meta VALUES ('schema', '{SCHEMA_VERSION}'){after};
{before} ledger_meta VALUES ('id', '{{ledger_id}}'){after};
"""

    def create(self) -> str:
        """The schema script, naming a ledger it creates with a random id (kept if it exists)."""
        return self.schema.replace("{ledger_id}", secrets.token_hex(16))

    def one_of(self, column: str) -> str:
        """``column`` matched against one list parameter."""
        return self.dialect.one_of.format(column)

    def _marks(self, count: int) -> str:
        return ", ".join([self.dialect.mark] * count)

    def _insert_or_skip(self, table: str, count: int) -> str:
        before, after = self.dialect.insert_or_skip
        return f"{before} {table} VALUES ({self._marks(count)}){after}"

    def where(self, destination: int, selection: Selection) -> tuple[str, list[object]]:
        """The condition on entries ``e`` that ``selection`` names, and its parameters."""
        mark = self.dialect.mark
        clauses: list[str] = [f"e.destination = {mark}"]
        params: list[object] = [destination]
        if selection.file is not None:
            clauses.append(f"e.file = {mark}")
            params.append(selection.file)
        if selection.key is not None:
            clauses.append(f"(e.email = {mark} OR e.external_id = {mark} "
                           f"OR e.website_url = {mark})")
            params += [selection.key.casefold(), selection.key, selection.key]
        return " AND ".join(clauses), params


class SqlStore(ABC):
    """The ``LedgerStore`` methods that are the same SQL whatever the database.

    A subclass says how to read (``_read``), how to write in one transaction (``_write``; both
    yield something with ``execute`` and ``cursor``, and turn database errors into
    ``LedgerError``) and how a list travels as one parameter (``_array``).
    """

    location: str
    sql: Statements
    _lock: threading.Lock
    """Serialises this process's threads on the one connection."""
    _db: Any
    abandoned = ""
    """Why the run gave the ledger up (``abandon``); every call then fails at once."""
    _waiting = threading.local()
    """The stop flag of the claim this thread is making, if any."""

    def abandon(self, reason: str) -> None:
        """The run stops because the ledger failed: the calls queued behind the connection
        lock fail at once instead of each waiting out the same lock (60 s apiece)."""
        self.abandoned = reason

    def _usable(self) -> None:
        """Called with the connection lock held, before any statement."""
        if self.abandoned:
            raise LedgerError(f"ledger {self.location}: given up ({self.abandoned})")
        stop = getattr(self._waiting, "stop", None)
        if stop is not None and stop.is_set():
            raise _Stopping


    @abstractmethod
    def _read(self) -> AbstractContextManager[Any]:
        ...

    @abstractmethod
    def _write(self) -> AbstractContextManager[Any]:
        ...

    @abstractmethod
    def _array(self, values: Sequence[object]) -> object:
        ...

    def identity(self) -> str:
        """The random id this ledger was given when it was created: a journal written with
        one ledger is not resumed with another (see ``runs.resume``)."""
        with self._read() as db:
            row = db.execute(LEDGER_ID_QUERY).fetchone()
        return "" if row is None else str(row[0])

    def destination_number(self, endpoint: str, token_print: str, digest: str, *,
                           create: bool) -> int | None:
        with self._write() if create else self._read() as db:
            if create:
                db.execute(self.sql.add_destination, (digest, endpoint, token_print))
            row = db.execute(self.sql.destination, (digest,)).fetchone()
        return None if row is None else int(row[0])

    def lookup(self, destination: int, keys: Sequence[str]) -> dict[str, Found]:
        if not keys:
            return {}
        with self._read() as db:
            rows = db.execute(self.sql.lookup, (destination, self._array(keys))).fetchall()
        return {row[0]: Found(*row[1:]) for row in rows}

    def field_prints(self, entries: Sequence[int]) -> dict[int, dict[str, str]]:
        if not entries:
            return {}
        with self._read() as db:
            rows = db.execute(self.sql.field_prints, (self._array(entries),)).fetchall()
        return {int(row[0]): parse_prints(row[1]) for row in rows}

    def record(self, destination: int, entries: Sequence[Entry], *, run: int = 0,
               settled: Sequence[str] = ()) -> int:
        if not entries and not settled:
            return 0
        with self._write() as db:
            kept = self._insert(db, destination, entries)
            if settled:
                db.execute(self.sql.settle_claims, (destination, run, self._array(settled)))
        return kept

    def _insert(self, db: Any, destination: int, entries: Sequence[Entry]) -> int:
        """Entries and their keys, in the caller's transaction; how many are held after it."""
        if not entries:
            return 0
        ids = [entry.id for entry in entries]
        replacing = key_rows(destination, entries, replacing=True)
        before = self._held_by(db, destination, [str(row[1]) for row in replacing])
        cursor = db.cursor()
        cursor.executemany(self.sql.insert_entry, [entry_row(destination, e) for e in entries])
        cursor.executemany(self.sql.keep_key, key_rows(destination, entries, replacing=False))
        cursor.executemany(self.sql.replace_key, replacing)
        db.execute(self.sql.delete_unheld, (self._array(list(set(ids) | before)),))
        kept = db.execute(self.sql.count_ids, (self._array(ids),)).fetchone()
        return int(kept[0]) if kept else 0

    def _held_by(self, db: Any, destination: int, keys: list[str]) -> set[int]:
        """The entries that hold any of ``keys`` now (they may lose them to a fresh 201)."""
        if not keys:
            return set()
        rows = db.execute(self.sql.held_by, (destination, self._array(keys)))
        return {int(row[0]) for row in rows}

    @abstractmethod
    def _take_run_lock(self, run: int) -> None:
        """Hold the lock that says ``run`` is alive until ``_end_run_lock`` or the process ends."""

    @abstractmethod
    def _holds_run_lock(self, run: int) -> bool | None:
        """Whether some process holds ``run``'s lock; None when this store cannot tell."""

    @abstractmethod
    def _end_run_lock(self, run: int) -> None:
        """Let go of this process's lock for ``run``."""

    @abstractmethod
    def _clear_dead_lock(self, run: int) -> None:
        """Remove what a dead run's lock left behind, if anything."""

    def start_run(self, destination: int, run: int, results: str) -> None:
        self._take_run_lock(run)
        with self._write() as db:
            db.execute(self.sql.add_run, (run, destination, socket.gethostname(), os.getpid(),
                                          results, now_iso()))
            others = [int(row[0]) for row in
                      db.execute(self.sql.runs_of, (destination, run)).fetchall()]
        for other in others:
            if not self.alive(other):
                self.reap(other)

    def beat(self, run: int) -> None:
        with self._write() as db:
            db.execute(self.sql.beat, (run,))

    def claim(self, destination: int, run: int, claim: Claim, *, take_over_unknown: int,
              stop: threading.Event | None = None) -> ClaimAnswer:
        """Insert the claim first, then look for an entry: a run that settles the key commits
        its entry and drops its claim at once, so one of the two is always seen.

        The run's row is read first and held: a run another run took for dead (and reaped)
        claims nothing more, since nobody would turn that claim into outcome unknown. A claim
        that waited for the connection while the run was told to stop (``stop``) is not taken:
        it would only wait for the same lock again (nothing claimed: try again)."""
        self._waiting.stop = stop
        try:
            return self._claim(destination, run, claim, take_over_unknown)
        except _Stopping:
            return ClaimAnswer()
        finally:
            self._waiting.stop = None

    def _claim(self, destination: int, run: int, claim: Claim,
               take_over_unknown: int) -> ClaimAnswer:
        key = claim.key
        with self._write() as db:
            if db.execute(self.sql.run_row, (run,)).fetchone() is None:
                raise TakenForDead(f"ledger {self.location}: another run took this one for dead "
                                  f"(no sign of life for {STALE_AFTER / 60:.0f} minutes, or its "
                                  "lock was gone), so its claims count as outcome unknown; it "
                                  "cannot claim rows any more")
            inserted = db.execute(self.sql.insert_claim, self._claim_row(destination, run, claim)
                                  ).rowcount == 1
            held = db.execute(self.sql.lookup, (destination, self._array([key]))).fetchone()
            if held is not None and not (held[4] == UNKNOWN
                                         and int(held[1]) == take_over_unknown):
                if inserted:
                    db.execute(self.sql.drop_claim, (destination, key, run))
                return ClaimAnswer(found=Found(*held[1:]))
            if inserted:
                return ClaimAnswer(claimed=True)
            holder = db.execute(self.sql.claim_holder, (destination, key)).fetchone()
        if holder is None:
            return ClaimAnswer()
        return ClaimAnswer(claimed=True) if int(holder[0]) == run \
            else ClaimAnswer(holder=int(holder[0]))

    def _claim_row(self, destination: int, run: int, claim: Claim) -> tuple[object, ...]:
        prints = json.dumps(claim.field_prints, sort_keys=True, separators=(",", ":"))
        return (destination, claim.key, run, claim.fields_print, prints, claim.file, claim.row,
                claim.occurrence, claim.claimed_at)

    def alive(self, run: int) -> bool:
        with self._read() as db:
            age = db.execute(self.sql.run_age, (run,)).fetchone()
        if age is None or int(age[0]) > STALE_AFTER * 1000:
            return False
        return self._holds_run_lock(run) is not False

    def reap(self, run: int) -> int:
        count = self._settle_run(run)
        self._clear_dead_lock(run)
        return count

    def end_run(self, run: int) -> None:
        try:
            self._settle_run(run)
        finally:
            self._end_run_lock(run)

    def _settle_run(self, run: int) -> int:
        """A run is over: its claims become outcome-unknown entries where the key is not held
        already, and the run and its claims are gone, all in one transaction.

        The run's row goes first: it waits for a claim the run is taking (``claim`` holds the
        row), and no claim can follow, so the claims read next are all the claims deleted."""
        with self._write() as db:
            db.execute(self.sql.drop_run, (run,))
            rows = db.execute(self.sql.run_claims, (run,)).fetchall()
            for destination in {int(row[0]) for row in rows}:
                self._insert(db, destination, [_claim(row).unknown() for row in rows
                                               if int(row[0]) == destination])
            db.execute(self.sql.drop_run_claims, (run,))
        return len(rows)

    def runs(self, destination: int) -> list[RunInfo]:
        with self._read() as db:
            rows = db.execute(self.sql.runs, (destination,)).fetchall()
        return [RunInfo(str(r[1]), int(r[2]), str(r[3]), str(r[4]), int(r[5]),
                        self.alive(int(r[0]))) for r in rows]

    def destinations(self) -> list[DestinationInfo]:
        with self._read() as db:
            rows = db.execute(DESTINATIONS).fetchall()
        return [DestinationInfo(int(r[0]), r[1], r[2], int(r[3])) for r in rows]

    def entries(self, destination: int, selection: Selection) -> Iterator[tuple[object, ...]]:
        where, params = self.sql.where(destination, selection)
        with self._read() as db:
            rows = db.execute(f"{EXPORT} WHERE {where} AND {HELD} {ORDER}", params).fetchall()
        yield from rows

    def count(self, destination: int, selection: Selection) -> int:
        where, params = self.sql.where(destination, selection)
        with self._read() as db:
            row = db.execute(_count(where), params).fetchone()
        return int(row[0]) if row else 0

    def forget(self, destination: int, selection: Selection) -> int:
        where, params = self.sql.where(destination, selection)
        with self._write() as db:
            row = db.execute(_count(where), params).fetchone()
            db.execute("DELETE FROM ledger_keys WHERE entry IN (SELECT e.id FROM "
                       f"ledger_entries AS e WHERE {where})", params)
            db.execute(f"DELETE FROM ledger_entries AS e WHERE {where}", params)
        return int(row[0]) if row else 0

    def close(self) -> None:
        with self._lock:
            self._db.close()


class _Stopping(Exception):
    """A claim the run no longer needs (it is stopping), found before any statement."""


def _claim(row: Sequence[Any]) -> Claim:
    """A claims-table row (``CLAIM_COLUMNS``) as a ``Claim``."""
    return Claim(row[3], parse_prints(row[4]), row[5], int(row[6]), int(row[7]), row[8])


def _count(where: str) -> str:
    return f"SELECT count(*) FROM ledger_entries AS e WHERE {where} AND {HELD}"
