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
import random
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path

from importer.ledger.sql import SCHEMA_VERSION_QUERY, SQLITE, SqlStore, Statements
from importer.ledger.store import SCHEMA_VERSION, LedgerError
from importer.results.files import LOCKS_UNSUPPORTED, NOFOLLOW, descriptor_locks, open_private

BUSY_TIMEOUT = 60.0
MMAP_BYTES = 1 << 30
"""Lookups read the file through a memory map: a million-entry ledger is read at memory speed
instead of one system call per page."""
CACHE_KIB = 65_536


class SqliteStore(SqlStore):
    """A ledger in one SQLite file, shared safely by concurrent runs on this machine."""

    sql = Statements(SQLITE)

    def __init__(self, path: Path) -> None:
        self.location = str(path)
        self._lock = threading.Lock()
        self._runs = path.with_name(path.name + ".runs")
        self._run_locks: dict[int, int] = {}
        try:
            _create_private(path)
            self._db = self._opened(path)
            self._identity = _identity(path)
        except (sqlite3.Error, OSError) as exc:
            raise LedgerError(f"ledger {path}: cannot be opened ({_reason(exc)}); fix the path "
                              "or choose another with --ledger PATH") from exc
        self._path = path

    def _opened(self, path: Path) -> sqlite3.Connection:
        """Connect and set the file up, trying again while another run is doing the same.

        Two runs opening a new ledger at once race to switch it to WAL; the loser gets "database
        is locked" at once, without SQLite's busy wait, so the wait is done here."""
        deadline = time.monotonic() + BUSY_TIMEOUT
        while True:
            db = sqlite3.connect(path, timeout=BUSY_TIMEOUT, isolation_level=None,
                                 check_same_thread=False)
            try:
                self._set_up(db)
                return db
            except sqlite3.OperationalError as exc:
                db.close()
                if not _busy(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(random.uniform(0.01, 0.1))
            except BaseException:
                db.close()
                raise

    def _set_up(self, db: sqlite3.Connection) -> None:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute(f"PRAGMA mmap_size={MMAP_BYTES}")
        db.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
        with self._lock:
            db.executescript(f"BEGIN IMMEDIATE; {self.sql.create()} COMMIT;")
        row = db.execute(SCHEMA_VERSION_QUERY).fetchone()
        if row is None or row[0] != str(SCHEMA_VERSION):
            raise sqlite3.DatabaseError(
                f"schema version {row and row[0]}, not {SCHEMA_VERSION}: written by another "
                "version of routera-import; move the file aside")

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        with _Guard(self._lock, self.location, self._usable):
            yield self._db

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One transaction that takes the write lock at once, so it waits instead of failing."""
        with self._read() as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:  # SQLite may have rolled back itself (a read-only file)
                    with suppress(sqlite3.Error):
                        db.execute("ROLLBACK")
                raise

    def _array(self, values: Sequence[object]) -> object:
        return _json(values)

    def close(self) -> None:
        """Close the database; the locks of runs still open here end as if the process had
        ended (their claims count as outcome unknown), which is what closing without
        ``end_run`` means."""
        for fd in self._run_locks.values():
            os.close(fd)
        self._run_locks.clear()
        super().close()

    def beat(self, run: int) -> None:
        """Also checks the file is still the one opened: a ledger deleted or replaced under a
        run (a clean-up job, "reset the state" by hand) would take every fact it writes with
        it, and the next night would start from an empty ledger."""
        try:
            same = _identity(self._path) == self._identity
        except OSError:
            same = False
        if not same:
            raise LedgerError(f"ledger {self.location}: the file was deleted or replaced while "
                              "this run used it; restore it, or, if it is lost, resume the "
                              "results files of the nights it held with --force one after "
                              "another (each hands its outcomes to the new ledger) before any "
                              "other run")
        super().beat(run)

    def _run_lock(self, run: int) -> Path:
        return self._runs / f"{run:016x}.lock"

    def _take_run_lock(self, run: int) -> None:
        """A locked file per run beside the ledger: the operating system ends the lock with the
        process, however it ends, so a run killed with SIGKILL is known dead at once."""
        try:
            self._runs.mkdir(mode=0o700, exist_ok=True)
            fd = open_private(self._run_lock(run), os.O_RDWR | os.O_CREAT)
        except OSError as exc:
            raise LedgerError(f"ledger {self.location}: cannot create {self._runs} "
                              f"({_reason(exc)}); fix the folder's permissions") from exc
        try:
            descriptor_locks()[0](fd, blocking=False)
        except OSError as exc:
            if exc.errno not in LOCKS_UNSUPPORTED:
                os.close(fd)
                raise LedgerError(f"ledger {self.location}: cannot lock "
                                  f"{self._run_lock(run)} ({_reason(exc)})") from exc
        self._run_locks[run] = fd

    def _holds_run_lock(self, run: int) -> bool | None:
        """A run's lock file outlives a killed run (only its lock ends), so a missing file says
        nothing (a clean-up job may have removed the folder): the heartbeat decides then."""
        try:
            fd = os.open(self._run_lock(run), os.O_RDWR | NOFOLLOW)
        except OSError:
            return None
        lock, unlock = descriptor_locks()
        try:
            if not lock(fd, blocking=False):
                return True
            unlock(fd)
            return False
        except OSError:
            return None
        finally:
            os.close(fd)

    def _end_run_lock(self, run: int) -> None:
        fd = self._run_locks.pop(run, None)
        if fd is None:
            return
        self._clear_dead_lock(run)
        with suppress(OSError):
            descriptor_locks()[1](fd)
        os.close(fd)

    def _clear_dead_lock(self, run: int) -> None:
        with suppress(OSError):
            self._run_lock(run).unlink()


class _Guard:
    """Serialises this process's use of the connection and turns SQLite errors into
    ``LedgerError`` (one line naming the file)."""

    def __init__(self, lock: threading.Lock, location: str, usable: Callable[[], None]) -> None:
        self._lock = lock
        self._location = location
        self._usable = usable

    def __enter__(self) -> None:
        self._lock.acquire()
        try:
            self._usable()
        except BaseException:
            self._lock.release()
            raise

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: object) -> None:
        self._lock.release()
        if isinstance(exc, sqlite3.Error):
            raise LedgerError(f"ledger {self._location}: {_reason(exc)}") from exc


def _create_private(path: Path) -> None:
    """The ledger names people (emails): its folder and file are readable by their owner only."""
    if not path.parent.exists():
        path.parent.mkdir(parents=True, mode=0o700)
    if not path.exists():
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))


def _identity(path: Path) -> tuple[int, int]:
    found = path.stat()
    return found.st_dev, found.st_ino


def _busy(exc: sqlite3.OperationalError) -> bool:
    text = str(exc)
    return "locked" in text or "busy" in text


def _json(values: Sequence[object]) -> str:
    return json.dumps(list(values), ensure_ascii=False)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError):
        return exc.strerror or str(exc)
    return str(exc)
