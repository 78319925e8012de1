"""The ledger in a SQLite file: the default, in the user's state folder.

Several runs (on different results files) may use the same file at once. WAL lets lookups read
while another run writes; writes are short batched transactions that take the write lock at
once (``BEGIN IMMEDIATE``) and wait for it up to ``BUSY_TIMEOUT`` seconds instead of failing.
``synchronous=NORMAL`` in WAL mode keeps every committed batch across a crash of the process;
only a power cut can lose the last batches, which the journal still holds (see the package
docstring).
"""

import json
import os
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

from importer.ledger.store import (
    KEY_COLUMNS,
    SCHEMA_VERSION,
    UPGRADE_UNKNOWN,
    DestinationInfo,
    Entry,
    Found,
    LedgerError,
    Selection,
    entry_row,
    key_rows,
    parse_prints,
)

BUSY_TIMEOUT = 60.0
MMAP_BYTES = 1 << 30
"""Lookups read the file through a memory map: a million-entry ledger is read at memory speed
instead of one system call per page."""
CACHE_KIB = 65_536
SCHEMA = """
CREATE TABLE IF NOT EXISTS ledger_meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS ledger_destinations (
    number INTEGER PRIMARY KEY, digest TEXT NOT NULL UNIQUE, endpoint TEXT NOT NULL,
    token_print TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS ledger_entries (
    id INTEGER PRIMARY KEY, destination INTEGER NOT NULL, email TEXT NOT NULL,
    external_id TEXT NOT NULL, website_url TEXT NOT NULL, fields_print TEXT NOT NULL,
    field_prints TEXT NOT NULL, record_id TEXT NOT NULL, answer TEXT NOT NULL,
    imported_at TEXT NOT NULL, file TEXT NOT NULL, row INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS ledger_entries_file ON ledger_entries (destination, file);
CREATE TABLE IF NOT EXISTS ledger_keys (
    destination INTEGER NOT NULL, key TEXT NOT NULL, entry INTEGER NOT NULL,
    record_id TEXT NOT NULL, fields_print TEXT NOT NULL, answer TEXT NOT NULL,
    imported_at TEXT NOT NULL,
    file TEXT NOT NULL, row INTEGER NOT NULL, PRIMARY KEY (destination, key)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS ledger_keys_entry ON ledger_keys (entry);
INSERT OR IGNORE INTO ledger_meta VALUES ('schema', '2');
"""
LOOKUP = """
SELECT k.key, k.entry, k.record_id, k.fields_print, k.answer, k.imported_at, k.file, k.row
FROM ledger_keys AS k WHERE k.destination = ? AND k.key IN (SELECT value FROM json_each(?))
"""
INSERT_ENTRY = "INSERT OR IGNORE INTO ledger_entries VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
KEEP_KEY = ("INSERT INTO ledger_keys VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (destination, key) DO UPDATE SET "
            + ", ".join(f"{c} = excluded.{c}" for c in KEY_COLUMNS[2:])
            + " " + UPGRADE_UNKNOWN)
REPLACE_KEY = ("INSERT INTO ledger_keys VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
               "ON CONFLICT (destination, key) DO UPDATE SET "
               + ", ".join(f"{c} = excluded.{c}" for c in KEY_COLUMNS[2:]))
ORDER = "ORDER BY substr(e.imported_at, 1, 10), e.file, e.row"
HELD = "EXISTS (SELECT 1 FROM ledger_keys AS k WHERE k.entry = e.id)"
EXPORT = ("SELECT e.email, e.external_id, e.website_url, e.record_id, e.answer, e.imported_at, "
          "e.file, e.row, e.fields_print FROM ledger_entries AS e")


class SqliteStore:
    """A ledger in one SQLite file, shared safely by concurrent runs on this machine."""

    def __init__(self, path: Path) -> None:
        self.location = str(path)
        self._lock = threading.Lock()
        try:
            _create_private(path)
            self._db = sqlite3.connect(path, timeout=BUSY_TIMEOUT, isolation_level=None,
                                       check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute(f"PRAGMA mmap_size={MMAP_BYTES}")
            self._db.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
            with self._transaction():
                self._db.executescript(f"BEGIN IMMEDIATE; {SCHEMA} COMMIT;")
            self._check_version()
        except (sqlite3.Error, OSError) as exc:
            raise LedgerError(f"ledger {path}: cannot be opened ({_reason(exc)}); fix the path "
                              "or choose another with --ledger PATH") from exc

    def _check_version(self) -> None:
        row = self._db.execute("SELECT value FROM ledger_meta WHERE name = 'schema'").fetchone()
        if row is None or row[0] != str(SCHEMA_VERSION):
            raise sqlite3.DatabaseError(
                f"schema version {row and row[0]}, not {SCHEMA_VERSION}: written by another "
                "version of routera-import; move the file aside")

    def _transaction(self) -> "_Guard":
        return _Guard(self._lock, self.location)

    def destination_number(self, endpoint: str, token_print: str, digest: str, *,
                           create: bool) -> int | None:
        with self._transaction():
            if create:
                self._db.execute("BEGIN IMMEDIATE")
                self._db.execute("INSERT OR IGNORE INTO ledger_destinations (digest, endpoint, "
                                 "token_print) VALUES (?, ?, ?)", (digest, endpoint, token_print))
                self._db.execute("COMMIT")
            row = self._db.execute("SELECT number FROM ledger_destinations WHERE digest = ?",
                                   (digest,)).fetchone()
        return None if row is None else int(row[0])

    def lookup(self, destination: int, keys: Sequence[str]) -> dict[str, Found]:
        if not keys:
            return {}
        with self._transaction():
            rows = self._db.execute(LOOKUP, (destination, _json(keys))).fetchall()
        return {row[0]: Found(*row[1:]) for row in rows}

    def field_prints(self, entries: Sequence[int]) -> dict[int, dict[str, str]]:
        if not entries:
            return {}
        marks = ",".join("?" * len(entries))
        with self._transaction():
            rows = self._db.execute(f"SELECT id, field_prints FROM ledger_entries WHERE id IN "
                                    f"({marks})", list(entries)).fetchall()
        return {int(row[0]): parse_prints(row[1]) for row in rows}

    def record(self, destination: int, entries: Sequence[Entry]) -> int:
        if not entries:
            return 0
        ids = [entry.id for entry in entries]
        replacing = key_rows(destination, entries, replacing=True)
        with self._transaction():
            self._db.execute("BEGIN IMMEDIATE")
            try:
                before = self._held_by(destination, [str(row[1]) for row in replacing])
                self._db.executemany(INSERT_ENTRY, [entry_row(destination, e) for e in entries])
                self._db.executemany(KEEP_KEY, key_rows(destination, entries, replacing=False))
                self._db.executemany(REPLACE_KEY, replacing)
                self._db.execute(
                    f"DELETE FROM ledger_entries AS e WHERE e.id IN (SELECT value FROM "
                    f"json_each(?)) AND NOT {HELD}", (_json(list(set(ids) | before)),))
                kept = self._db.execute("SELECT count(*) FROM ledger_entries WHERE id IN "
                                        "(SELECT value FROM json_each(?))",
                                        (_json(ids),)).fetchone()[0]
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return int(kept)

    def _held_by(self, destination: int, keys: list[str]) -> set[int]:
        if not keys:
            return set()
        rows = self._db.execute("SELECT entry FROM ledger_keys WHERE destination = ? AND key IN "
                                "(SELECT value FROM json_each(?))", (destination, _json(keys)))
        return {int(row[0]) for row in rows}

    def destinations(self) -> list[DestinationInfo]:
        with self._transaction():
            rows = self._db.execute(
                f"SELECT d.number, d.endpoint, d.token_print, (SELECT count(*) FROM "
                f"ledger_entries AS e WHERE e.destination = d.number AND {HELD}) "
                "FROM ledger_destinations AS d ORDER BY d.number").fetchall()
        return [DestinationInfo(*row) for row in rows]

    def entries(self, destination: int, selection: Selection) -> Iterator[tuple[object, ...]]:
        where, params = _where(destination, selection)
        with self._transaction():
            rows = self._db.execute(f"{EXPORT} WHERE {where} AND {HELD} "
                                    f"{ORDER}", params).fetchall()
        yield from rows

    def count(self, destination: int, selection: Selection) -> int:
        where, params = _where(destination, selection)
        with self._transaction():
            row = self._db.execute(f"SELECT count(*) FROM ledger_entries AS e WHERE {where} "
                                   f"AND {HELD}", params).fetchone()
        return int(row[0])

    def forget(self, destination: int, selection: Selection) -> int:
        where, params = _where(destination, selection)
        with self._transaction():
            self._db.execute("BEGIN IMMEDIATE")
            try:
                count = self._db.execute(f"SELECT count(*) FROM ledger_entries AS e WHERE "
                                         f"{where} AND {HELD}", params).fetchone()[0]
                self._db.execute(f"DELETE FROM ledger_keys WHERE entry IN (SELECT e.id FROM "
                                 f"ledger_entries AS e WHERE {where})", params)
                self._db.execute(f"DELETE FROM ledger_entries AS e WHERE {where}", params)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return int(count)

    def close(self) -> None:
        with self._lock:
            self._db.close()


class _Guard:
    """Serialises this process's use of the connection and turns SQLite errors into
    ``LedgerError`` (one line naming the file)."""

    def __init__(self, lock: threading.Lock, location: str) -> None:
        self._lock = lock
        self._location = location

    def __enter__(self) -> None:
        self._lock.acquire()

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: object) -> None:
        self._lock.release()
        if isinstance(exc, sqlite3.Error):
            raise LedgerError(f"ledger {self._location}: {_reason(exc)}") from exc


def _where(destination: int, selection: Selection) -> tuple[str, list[object]]:
    clauses: list[str] = ["e.destination = ?"]
    params: list[object] = [destination]
    if selection.file is not None:
        clauses.append("e.file = ?")
        params.append(selection.file)
    if selection.key is not None:
        clauses.append("(e.email = ? OR e.external_id = ? OR e.website_url = ?)")
        params += [selection.key.casefold(), selection.key, selection.key]
    return " AND ".join(clauses), params


def _create_private(path: Path) -> None:
    """The ledger names people (emails): its folder and file are readable by their owner only."""
    if not path.parent.exists():
        path.parent.mkdir(parents=True, mode=0o700)
    if not path.exists():
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))


def _json(values: Sequence[object]) -> str:
    return json.dumps(list(values), ensure_ascii=False)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError):
        return exc.strerror or str(exc)
    return str(exc)
