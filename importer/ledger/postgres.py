"""The ledger in PostgreSQL, for nightly runs that land on whichever host is free.

The tables and their rules are the SQLite store's (see ``store``); PostgreSQL's unique index on
(destination, key) and ``ON CONFLICT`` make concurrent runs from several hosts agree on which
entry holds a key. Every method is one short transaction on one connection, shared by the
run's threads under a lock. The URL's password never appears in a message.
"""

import threading
from collections.abc import Iterator, Sequence
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit, urlunsplit

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

try:
    import psycopg
except ImportError:  # pragma: no cover - depends on the installed extras
    psycopg = None  # type: ignore[assignment]

SCHEMA_LOCK = 7_301_113
CONNECT_TIMEOUT = 10
SCHEMA = """
CREATE TABLE IF NOT EXISTS ledger_meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS ledger_destinations (
    number BIGSERIAL PRIMARY KEY, digest TEXT NOT NULL UNIQUE, endpoint TEXT NOT NULL,
    token_print TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS ledger_entries (
    id BIGINT PRIMARY KEY, destination BIGINT NOT NULL, email TEXT NOT NULL,
    external_id TEXT NOT NULL, website_url TEXT NOT NULL, fields_print TEXT NOT NULL,
    field_prints TEXT NOT NULL, record_id TEXT NOT NULL, answer TEXT NOT NULL,
    imported_at TEXT NOT NULL, file TEXT NOT NULL, row INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS ledger_entries_file ON ledger_entries (destination, file);
CREATE TABLE IF NOT EXISTS ledger_keys (
    destination BIGINT NOT NULL, key TEXT NOT NULL, entry BIGINT NOT NULL,
    record_id TEXT NOT NULL, fields_print TEXT NOT NULL, answer TEXT NOT NULL,
    imported_at TEXT NOT NULL,
    file TEXT NOT NULL, row INTEGER NOT NULL, PRIMARY KEY (destination, key));
CREATE INDEX IF NOT EXISTS ledger_keys_entry ON ledger_keys (entry);
INSERT INTO ledger_meta VALUES ('schema', '2') ON CONFLICT DO NOTHING;
"""
LOOKUP = """
SELECT k.key, k.entry, k.record_id, k.fields_print, k.answer, k.imported_at, k.file, k.row
FROM ledger_keys AS k WHERE k.destination = %s AND k.key = ANY(%s)
"""
INSERT_ENTRY = ("INSERT INTO ledger_entries VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, "
                "%s) ON CONFLICT DO NOTHING")
KEEP_KEY = ("INSERT INTO ledger_keys VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) "
            "ON CONFLICT (destination, key) DO UPDATE SET "
            + ", ".join(f"{c} = excluded.{c}" for c in KEY_COLUMNS[2:])
            + " " + UPGRADE_UNKNOWN)
REPLACE_KEY = ("INSERT INTO ledger_keys VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) "
               "ON CONFLICT (destination, key) DO UPDATE SET "
               + ", ".join(f"{c} = excluded.{c}" for c in KEY_COLUMNS[2:]))
ORDER = "ORDER BY substr(e.imported_at, 1, 10), e.file, e.row"
HELD = "EXISTS (SELECT 1 FROM ledger_keys AS k WHERE k.entry = e.id)"
EXPORT = ("SELECT e.email, e.external_id, e.website_url, e.record_id, e.answer, e.imported_at, "
          "e.file, e.row, e.fields_print FROM ledger_entries AS e")


class PostgresStore:
    """A ledger in a PostgreSQL database, shared by runs on any number of hosts."""

    def __init__(self, url: str) -> None:
        self.location = redacted(url)
        self._lock = threading.Lock()
        if psycopg is None:
            raise LedgerError(f"ledger {self.location}: PostgreSQL needs the postgres extra; "
                              "install it with pip install 'routera-import[postgres]'")
        try:
            self._db = psycopg.connect(url, autocommit=True, connect_timeout=CONNECT_TIMEOUT)
        except psycopg.Error as exc:
            raise LedgerError(f"ledger {self.location}: cannot connect ({_reason(exc)}); check "
                              "the URL, the server and the password (in the URL or PGPASSWORD)"
                              ) from exc
        with self._transaction() as db:
            db.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
            db.execute(SCHEMA)
            row = db.execute("SELECT value FROM ledger_meta WHERE name = 'schema'").fetchone()
            if row is None or row[0] != str(SCHEMA_VERSION):
                raise LedgerError(f"ledger {self.location}: schema version {row and row[0]}, not "
                                  f"{SCHEMA_VERSION}: written by another version of "
                                  "routera-import; use another database or schema")

    def _transaction(self) -> "_Transaction":
        return _Transaction(self._lock, self._db, self.location)

    def destination_number(self, endpoint: str, token_print: str, digest: str, *,
                           create: bool) -> int | None:
        with self._transaction() as db:
            if create:
                db.execute("INSERT INTO ledger_destinations (digest, endpoint, token_print) "
                           "VALUES (%s, %s, %s) ON CONFLICT DO NOTHING",
                           (digest, endpoint, token_print))
            row = db.execute("SELECT number FROM ledger_destinations WHERE digest = %s",
                             (digest,)).fetchone()
        return None if row is None else int(row[0])

    def lookup(self, destination: int, keys: Sequence[str]) -> dict[str, Found]:
        if not keys:
            return {}
        with self._transaction() as db:
            rows = db.execute(LOOKUP, (destination, list(keys))).fetchall()
        return {row[0]: Found(*row[1:]) for row in rows}

    def field_prints(self, entries: Sequence[int]) -> dict[int, dict[str, str]]:
        if not entries:
            return {}
        with self._transaction() as db:
            rows = db.execute("SELECT id, field_prints FROM ledger_entries WHERE id = ANY(%s)",
                              (list(entries),)).fetchall()
        return {int(row[0]): parse_prints(row[1]) for row in rows}

    def record(self, destination: int, entries: Sequence[Entry]) -> int:
        if not entries:
            return 0
        ids = [entry.id for entry in entries]
        replacing = key_rows(destination, entries, replacing=True)
        with self._transaction() as db:
            before = {int(row[0]) for row in db.execute(
                "SELECT entry FROM ledger_keys WHERE destination = %s AND key = ANY(%s)",
                (destination, [str(row[1]) for row in replacing]))} if replacing else set()
            cursor = db.cursor()
            cursor.executemany(INSERT_ENTRY, [entry_row(destination, e) for e in entries])
            cursor.executemany(KEEP_KEY, key_rows(destination, entries, replacing=False))
            cursor.executemany(REPLACE_KEY, replacing)
            db.execute(f"DELETE FROM ledger_entries AS e WHERE e.id = ANY(%s) AND NOT {HELD}",
                       (list(set(ids) | before),))
            kept = db.execute("SELECT count(*) FROM ledger_entries WHERE id = ANY(%s)",
                              (ids,)).fetchone()
        return int(kept[0]) if kept else 0

    def destinations(self) -> list[DestinationInfo]:
        with self._transaction() as db:
            rows = db.execute(
                f"SELECT d.number, d.endpoint, d.token_print, (SELECT count(*) FROM "
                f"ledger_entries AS e WHERE e.destination = d.number AND {HELD}) "
                "FROM ledger_destinations AS d ORDER BY d.number").fetchall()
        return [DestinationInfo(int(r[0]), r[1], r[2], int(r[3])) for r in rows]

    def entries(self, destination: int, selection: Selection) -> Iterator[tuple[object, ...]]:
        where, params = _where(destination, selection)
        with self._transaction() as db:
            rows = db.execute(f"{EXPORT} WHERE {where} AND {HELD} "
                              f"{ORDER}", params).fetchall()
        yield from rows

    def count(self, destination: int, selection: Selection) -> int:
        where, params = _where(destination, selection)
        with self._transaction() as db:
            row = db.execute(f"SELECT count(*) FROM ledger_entries AS e WHERE {where} AND "
                             f"{HELD}", params).fetchone()
        return int(row[0]) if row else 0

    def forget(self, destination: int, selection: Selection) -> int:
        where, params = _where(destination, selection)
        with self._transaction() as db:
            row = db.execute(f"SELECT count(*) FROM ledger_entries AS e WHERE {where} AND "
                             f"{HELD}", params).fetchone()
            db.execute(f"DELETE FROM ledger_keys WHERE entry IN (SELECT e.id FROM "
                       f"ledger_entries AS e WHERE {where})", params)
            db.execute(f"DELETE FROM ledger_entries AS e WHERE {where}", params)
        return int(row[0]) if row else 0

    def close(self) -> None:
        with self._lock:
            self._db.close()


class _Transaction:
    """One transaction under the connection lock; database errors become ``LedgerError``."""

    def __init__(self, lock: threading.Lock, db: Any, location: str) -> None:
        self._lock = lock
        self._db = db
        self._location = location
        self._inner: Any = None

    def __enter__(self) -> Any:
        self._lock.acquire()
        try:
            self._inner = self._db.transaction()
            self._inner.__enter__()
        except BaseException as exc:
            self._lock.release()
            if psycopg is not None and isinstance(exc, psycopg.Error):
                raise LedgerError(f"ledger {self._location}: {_reason(exc)}") from exc
            raise
        return self._db

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        try:
            self._inner.__exit__(kind, exc, tb)
        except BaseException as error:
            exc = error
        finally:
            self._lock.release()
        if psycopg is not None and isinstance(exc, psycopg.Error):
            raise LedgerError(f"ledger {self._location}: {_reason(exc)}") from exc


def _where(destination: int, selection: Selection) -> tuple[str, list[object]]:
    clauses: list[str] = ["e.destination = %s"]
    params: list[object] = [destination]
    if selection.file is not None:
        clauses.append("e.file = %s")
        params.append(selection.file)
    if selection.key is not None:
        clauses.append("(e.email = %s OR e.external_id = %s OR e.website_url = %s)")
        params += [selection.key.casefold(), selection.key, selection.key]
    return " AND ".join(clauses), params


def redacted(url: str) -> str:
    """The URL without its password, for messages."""
    try:
        parts = urlsplit(url)
        if parts.password is None:
            return url
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
        return urlunsplit(parts._replace(netloc=f"{parts.username}:***@{host}{port}"))
    except ValueError:
        return "postgresql://(unreadable URL)"


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
