"""A local stand-in for the contacts API, for trying the importer and for tests.

It implements the documented contract (201 with a flat record, 400, 401, 409 on an active
record with the same email, external_id or website_url) over real HTTP, stores records in
SQLite so a rerun sees earlier records, and can inject the faults production APIs show:
latency, rate limiting with Retry-After (a fixed window, a sliding window or a token bucket
with any burst: see ``sandbox_limiters``), 500s, connections dropped after the record was
stored, and answers slower than the client's timeout.
"""

import json
import os
import random
import sqlite3
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any

from importer.errors import ConfigError
from importer.mapping.fields import SERVER_SET_FIELDS, STANDARD_FIELDS
from importer.sandbox_limiters import Limiter, limiter

SYSTEM_FIELDS = SERVER_SET_FIELDS
DEFAULT_CUSTOM_FIELDS = ("lead_source", "postal_code", "notes", "signup_date", "customer_tier",
                         "source_system")
IDENTITY = ("email", "first_name", "last_name")
UNIQUE = ("email", "external_id", "website_url")
MAX_BODY = 1 << 20


@dataclass(frozen=True)
class Faults:
    """Misbehaviour to inject; rates are probabilities per create request."""

    latency: float = 0.0
    rate_limit: float | None = None
    rate_limit_shape: str | None = None
    rate_limit_burst: float | None = None
    fail_rate: float = 0.0
    drop_rate: float = 0.0
    slow_rate: float = 0.0
    slow_seconds: float = 5.0
    seed: int | None = None


class Store:
    """Contacts in SQLite; one lock makes check-then-insert atomic across request threads."""

    def __init__(self, path: Path) -> None:
        try:
            os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
            self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
            self._setup()
        except (OSError, sqlite3.Error) as exc:
            raise ConfigError(f"sandbox database {path}: cannot be used ({exc}); choose another "
                              "path with --sandbox-db / --db") from exc
        self._lock = threading.Lock()

    def _setup(self) -> None:
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS contacts (id TEXT PRIMARY KEY, "
                         "email_key TEXT, external_id TEXT, website_url TEXT, "
                         "archived INTEGER NOT NULL DEFAULT 0, record TEXT NOT NULL)")
        for name in ("email_key", "external_id", "website_url"):
            self._db.execute(f"CREATE INDEX IF NOT EXISTS by_{name} ON contacts ({name})")

    def create(self, fields: dict[str, str]) -> tuple[dict[str, Any] | None, str, str]:
        """The new record, or (None, clashing key, existing id)."""
        keys = {"email_key": (fields.get("email") or "").casefold() or None,
                "external_id": fields.get("external_id") or None,
                "website_url": fields.get("website_url") or None}
        with self._lock:
            for column, value in keys.items():
                if value is None:
                    continue
                found = self._db.execute(f"SELECT id FROM contacts WHERE {column} = ? AND "
                                         "archived = 0 LIMIT 1", (value,)).fetchone()
                if found:
                    return None, column.replace("email_key", "email"), found[0]
            record = _record(fields)
            self._db.execute("INSERT INTO contacts VALUES (?, ?, ?, ?, 0, ?)",
                             (record["id"], *keys.values(), json.dumps(record)))
        return record, "", ""

    def records(self) -> list[dict[str, Any]]:
        with self._lock:
            rows = self._db.execute("SELECT record FROM contacts ORDER BY rowid").fetchall()
        return [json.loads(r[0]) for r in rows]

    def forget_all(self) -> None:
        """Delete every record, as if the CRM lost them (tests of what resume trusts)."""
        with self._lock:
            self._db.execute("DELETE FROM contacts")

    def close(self) -> None:
        with self._lock:
            self._db.close()


def _record(fields: dict[str, str]) -> dict[str, Any]:
    now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    record: dict[str, Any] = {"id": str(uuid.uuid4()), "external_id": None, "created_at": now,
                              "updated_at": now, "archived": False, "first_name": None,
                              "last_name": None, "email": None, "contact_owner": None}
    record.update(fields)
    return record


def _limiter(faults: Faults) -> Limiter | None:
    """The limiter ``--rate-limit`` asks for: a sliding window unless a shape or burst is given.

    A burst alone means a token bucket; a burst with a window shape is refused, since windows
    have no burst to set.
    """
    shape, burst = faults.rate_limit_shape, faults.rate_limit_burst
    if burst is not None and shape not in (None, "token-bucket"):
        raise ConfigError(f"--rate-limit-burst applies only to --rate-limit-shape token-bucket, "
                          f"not {shape}; drop one of the two")
    if not faults.rate_limit:
        if shape or burst is not None:
            raise ConfigError("--rate-limit-shape and --rate-limit-burst need --rate-limit N")
        return None
    shape = shape or ("token-bucket" if burst is not None else "sliding-window")
    try:
        return limiter(shape, faults.rate_limit, burst)
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256

    def __init__(self, address: tuple[str, int], store: Store, token: str, faults: Faults,
                 fields: tuple[str, ...]) -> None:
        super().__init__(address, _Handler)
        self.store = store
        self.token = token
        self.faults = faults
        self.allowed = set(STANDARD_FIELDS) | set(fields)
        self.limiter = _limiter(faults)
        self.random = random.Random(faults.seed)
        self.lock = threading.Lock()
        self.stats: dict[int, int] = {}

    def count(self, status: int) -> None:
        with self.lock:
            self.stats[status] = self.stats.get(status, 0) + 1

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients hanging up (deadlines, Ctrl-C) are normal here, not worth a traceback."""

    def roll(self, rate: float) -> bool:
        if rate <= 0:
            return False
        with self.lock:
            return self.random.random() < rate


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the sandbox runs inside the importer, which never prints from the library."""

    def do_GET(self) -> None:
        if not self._authorised():
            return
        path = self.path.split("?")[0].rstrip("/")
        if path == "/__stats":
            self._send(200, {str(k): v for k, v in dict(self.server.stats).items()}, count=False)
        elif path == "/contacts":
            self._send(200, {"data": self.server.store.records()}, count=False)
        else:
            self._send(404, {"error": "not found"})

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            self.close_connection = True
            self._send(413, {"error": "request body too large"})
            return
        body = self.rfile.read(length)
        if self.path.rstrip("/") != "/contacts":
            self._send(404, {"error": f"no such endpoint: {self.path}"})
            return
        if not self._authorised():
            return
        faults = self.server.faults
        limiter = self.server.limiter
        admitted = limiter is None or limiter.admit(time.monotonic())
        if faults.latency:
            time.sleep(faults.latency)
        if not admitted:
            self._send(429, {"error": "rate limit exceeded"}, {"Retry-After": "1"})
            return
        if self.server.roll(faults.fail_rate):
            self._send(500, {"error": "internal server error (injected)"})
            return
        self._create(body)

    def _create(self, body: bytes) -> None:
        fields, error = self._fields(body)
        if error:
            self._send(400, {"error": error})
            return
        record, clash, existing = self.server.store.create(fields)
        if record is None:
            self._send(409, {"error": f"duplicate: an active contact with this {clash} exists",
                             "field": clash, "id": existing})
            return
        faults = self.server.faults
        if self.server.roll(faults.drop_rate):
            self._drop()
            return
        if self.server.roll(faults.slow_rate):
            time.sleep(faults.slow_seconds)
        self._send(201, record)

    def _fields(self, body: bytes) -> tuple[dict[str, str], str]:
        try:
            data = json.loads(body)
        except ValueError:
            return {}, "invalid JSON body"
        if not isinstance(data, dict) or not isinstance(data.get("fields"), dict):
            return {}, "the body must be a JSON object with a 'fields' object"
        fields = data["fields"]
        for name, value in fields.items():
            if name in SYSTEM_FIELDS:
                return {}, f"field '{name}' is set by the server and cannot be written"
            if name not in self.server.allowed:
                return {}, f"unknown field '{name}'"
            if not isinstance(value, str):
                return {}, f"field '{name}' must be a string"
        if not any(fields.get(name) for name in IDENTITY):
            return {}, "validation failed: one of email, first_name or last_name is required"
        return fields, ""

    def _authorised(self) -> bool:
        if self.headers.get("Authorization") == f"Bearer {self.server.token}":
            return True
        self._send(401, {"error": "missing account context"})
        return False

    def _drop(self) -> None:
        """Store, then hang up without answering: the client cannot know it worked."""
        self.close_connection = True
        self.wfile.flush()
        self.connection.shutdown(2)
        self.server.count(0)

    def _send(self, status: int, payload: dict[str, Any],
              headers: dict[str, str] | None = None, count: bool = True) -> None:
        data = json.dumps(payload, ensure_ascii=False).encode("utf-8")
        if count:
            self.server.count(status)
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)


class Sandbox:
    """The sandbox API on a background thread: ``with Sandbox(db, token) as api: api.url``."""

    def __init__(self, db: Path, *, token: str, host: str = "127.0.0.1", port: int = 0,
                 faults: Faults | None = None,
                 fields: tuple[str, ...] = DEFAULT_CUSTOM_FIELDS) -> None:
        self.token = token
        _limiter(faults or Faults())
        self.store = Store(db)
        try:
            self.server = _Server((host, port), self.store, token, faults or Faults(), fields)
        except OSError as exc:
            self.store.close()
            raise ConfigError(f"the sandbox cannot listen on {host}:{port} "
                              f"({exc.strerror or exc}); choose another --port") from exc
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,),
                                       name="sandbox", daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host.decode() if isinstance(host, bytes) else host}:{port}"

    @property
    def stats(self) -> dict[int, int]:
        """Answers given, by HTTP status (0: connections dropped on purpose)."""
        return dict(self.server.stats)

    def __enter__(self) -> "Sandbox":
        self.thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.store.close()
