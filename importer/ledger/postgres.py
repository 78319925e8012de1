"""The ledger in PostgreSQL, for nightly runs that land on whichever host is free.

The tables and their rules are the SQLite store's (see ``store``); PostgreSQL's unique index on
(destination, key) and ``ON CONFLICT`` make concurrent runs from several hosts agree on which
entry holds a key. Every method is one short transaction on one connection, shared by the
run's threads under a lock. The URL's password never appears in a message.
"""

import threading
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from importer.ledger.sql import POSTGRES, SCHEMA_VERSION_QUERY, SqlStore, Statements
from importer.ledger.store import SCHEMA_VERSION, LedgerError

try:
    import psycopg
except ImportError:  # pragma: no cover - depends on the installed extras
    psycopg = None  # type: ignore[assignment]

SCHEMA_LOCK = 7_301_113
CONNECT_TIMEOUT = 10
LOCK_TIMEOUT = "60s"
"""How long a statement waits for a lock another session holds (a table locked by hand, a
backup) before it fails, as SQLite's busy timeout: a run stops then, instead of hanging."""
KEEPALIVE_IDLE = 30
"""Seconds of silence before TCP keepalives start (then 3 probes 10 s apart): a server or
network that vanishes is noticed in about a minute, not after the system's two hours."""


class PostgresStore(SqlStore):
    """A ledger in a PostgreSQL database, shared by runs on any number of hosts."""

    sql = Statements(POSTGRES)

    def __init__(self, url: str) -> None:
        self.location = redacted(url)
        self._lock = threading.Lock()
        if psycopg is None:
            raise LedgerError(f"ledger {self.location}: PostgreSQL needs the postgres extra; "
                              "install it with pip install 'routera-import[postgres]'")
        try:
            self._db = psycopg.connect(url, autocommit=True, connect_timeout=CONNECT_TIMEOUT,
                                       options=f"-c lock_timeout={LOCK_TIMEOUT}", keepalives=1,
                                       keepalives_idle=KEEPALIVE_IDLE, keepalives_interval=10,
                                       keepalives_count=3)
        except psycopg.Error as exc:
            raise LedgerError(f"ledger {self.location}: cannot connect ({_reason(exc)}); check "
                              "the URL, the server and the password (in the URL or PGPASSWORD)"
                              ) from exc
        with self._read() as db:
            db.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
            db.execute(self.sql.create())
            row = db.execute(SCHEMA_VERSION_QUERY).fetchone()
            if row is None or row[0] != str(SCHEMA_VERSION):
                raise LedgerError(f"ledger {self.location}: schema version {row and row[0]}, not "
                                  f"{SCHEMA_VERSION}: written by another version of "
                                  "routera-import; use another database or schema")

    def _read(self) -> "_Transaction":
        return _Transaction(self._lock, self._db, self.location, self._usable)

    _write = _read
    """Every method is one transaction already: writing needs nothing more."""

    def _array(self, values: Sequence[object]) -> object:
        return list(values)

    def _take_run_lock(self, run: int) -> None:
        """A session-level advisory lock: the server ends it when the run's connection ends,
        so a run killed on any host is known dead as soon as its connection is gone."""
        with self._read() as db:
            db.execute("SELECT pg_advisory_lock(%s)", (run,))

    def _holds_run_lock(self, run: int) -> bool | None:
        with self._read() as db:
            row = db.execute("SELECT pg_try_advisory_lock_shared(%s)", (run,)).fetchone()
            if row is not None and row[0]:
                db.execute("SELECT pg_advisory_unlock_shared(%s)", (run,))
        return row is None or not row[0]

    def _end_run_lock(self, run: int) -> None:
        with self._read() as db:
            db.execute("SELECT pg_advisory_unlock(%s)", (run,))

    def _clear_dead_lock(self, run: int) -> None:
        """A dead session's advisory lock is gone with it."""


class _Transaction:
    """One transaction under the connection lock; database errors become ``LedgerError``."""

    def __init__(self, lock: threading.Lock, db: Any, location: str,
                 usable: Callable[[], None]) -> None:
        self._lock = lock
        self._db = db
        self._location = location
        self._usable = usable
        self._inner: Any = None

    def __enter__(self) -> Any:
        self._lock.acquire()
        try:
            self._usable()
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
