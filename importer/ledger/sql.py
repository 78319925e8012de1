"""The ledger's SQL and the store methods built on it, written once for SQLite and PostgreSQL.

Both stores run the same statements over the same tables (see ``store``). They differ only in
the placeholder (``?`` or ``%s``), in how one parameter carries a list (a JSON array read by
``json_each``, or a native array matched by ``= ANY``) and in how an insert skips a row that is
already there; ``Dialect`` names those differences and ``Statements`` builds every statement
from them. ``SqlStore`` holds the methods whose logic is the same for both, so a store keeps only
what is its database's own: connecting, locking and transactions, pragmas, the list parameter.
"""

import threading
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

from importer.ledger.store import (
    KEY_COLUMNS,
    SCHEMA_VERSION,
    UPGRADE_UNKNOWN,
    DestinationInfo,
    Entry,
    Found,
    Selection,
    entry_row,
    key_rows,
    parse_prints,
)

ORDER = "ORDER BY substr(e.imported_at, 1, 10), e.file, e.row"
HELD = "EXISTS (SELECT 1 FROM ledger_keys AS k WHERE k.entry = e.id)"
EXPORT = ("SELECT e.email, e.external_id, e.website_url, e.record_id, e.answer, e.imported_at, "
          "e.file, e.row, e.fields_print FROM ledger_entries AS e")
SCHEMA_VERSION_QUERY = "SELECT value FROM ledger_meta WHERE name = 'schema'"
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


SQLITE = Dialect("?", "{} IN (SELECT value FROM json_each(?))",
                 ("INSERT OR IGNORE INTO", ""), "INTEGER", "INTEGER PRIMARY KEY", " WITHOUT ROWID")
POSTGRES = Dialect("%s", "{} = ANY(%s)", ("INSERT INTO", " ON CONFLICT DO NOTHING"), "BIGINT",
                   "BIGSERIAL PRIMARY KEY", "")


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
        self.replace_key = upsert_key
        self.held_by = (f"SELECT entry FROM ledger_keys WHERE destination = {mark} AND "
                        f"{self.one_of('key')}")
        self.field_prints = ("SELECT id, field_prints FROM ledger_entries WHERE "
                             f"{self.one_of('id')}")
        self.delete_unheld = (f"DELETE FROM ledger_entries AS e WHERE {self.one_of('e.id')} "
                              f"AND NOT {HELD}")
        self.count_ids = f"SELECT count(*) FROM ledger_entries WHERE {self.one_of('id')}"
        self.schema = self._schema()

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
{before} ledger_meta VALUES ('schema', '{SCHEMA_VERSION}'){after};
"""

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

    @abstractmethod
    def _read(self) -> AbstractContextManager[Any]:
        ...

    @abstractmethod
    def _write(self) -> AbstractContextManager[Any]:
        ...

    @abstractmethod
    def _array(self, values: Sequence[object]) -> object:
        ...

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

    def record(self, destination: int, entries: Sequence[Entry]) -> int:
        if not entries:
            return 0
        ids = [entry.id for entry in entries]
        replacing = key_rows(destination, entries, replacing=True)
        with self._write() as db:
            before = self._held_by(db, destination, [str(row[1]) for row in replacing])
            cursor = db.cursor()
            cursor.executemany(self.sql.insert_entry,
                               [entry_row(destination, e) for e in entries])
            cursor.executemany(self.sql.keep_key,
                               key_rows(destination, entries, replacing=False))
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


def _count(where: str) -> str:
    return f"SELECT count(*) FROM ledger_entries AS e WHERE {where} AND {HELD}"
