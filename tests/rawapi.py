"""A scripted contacts API over real HTTP that misbehaves exactly as a test tells it to.

Each create request is answered by a ``Behaviour`` the test chooses from the request's fields:
store the record or not, then answer with any status, cut the body short, drop the connection,
trickle the answer past the deadline, or send an oversized body. Storing is honest about keys:
a record whose email, external_id or website_url is already stored is answered with a 409
duplicate and not stored again, whatever the behaviour says.
"""

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

KEYS = ("email", "external_id", "website_url")


@dataclass(frozen=True)
class Behaviour:
    store: bool = True
    status: int = 201
    body: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    mode: str = "normal"
    delay: float = 0.0
    """Seconds to wait before answering (latency)."""
    """normal, cut (body shorter than its Content-Length), drop (no answer at all), trickle
    (one byte every 0.3 s), oversize (a 70 KB body), garbled (invalid JSON)."""


def key_of(name: str, value: str) -> str:
    return value.casefold() if name == "email" else value


class RawApi:
    def __init__(self, answer: Callable[[dict[str, str]], Behaviour]) -> None:
        self.answer = answer
        self.records: list[dict[str, str]] = []
        self.received: list[dict[str, str]] = []
        self.lock = threading.Lock()

    def stored(self, fields: dict[str, str]) -> tuple[bool, str]:
        """(created, id): store unless a key clashes, then report the existing id."""
        with self.lock:
            self.received.append(fields)
            for record in self.records:
                if any(fields.get(k) and key_of(k, fields[k]) == key_of(k, record.get(k, ""))
                       for k in KEYS):
                    return False, record["id"]
            record = {**fields, "id": f"c-{len(self.records) + 1}"}
            self.records.append(record)
            return True, record["id"]

    def note(self, fields: dict[str, str]) -> None:
        with self.lock:
            self.received.append(fields)


def _handler(api: RawApi) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        def do_POST(self) -> None:
            fields = json.loads(self.rfile.read(int(self.headers["Content-Length"])))["fields"]
            behaviour = api.answer(fields)
            if behaviour.delay:
                time.sleep(behaviour.delay)
            status, body = behaviour.status, behaviour.body
            if behaviour.store:
                created, record_id = api.stored(fields)
                if not created:
                    status, body = 409, {"error": "duplicate: a record with this key exists",
                                         "id": record_id}
                    behaviour = Behaviour(status=409)
                elif body is None:
                    body = {"id": record_id, **fields}
            else:
                api.note(fields)
            self._answer(behaviour, status, body or {"error": f"HTTP {status}"})

        def _answer(self, behaviour: Behaviour, status: int, body: dict[str, Any]) -> None:
            mode = behaviour.mode
            if mode == "drop":
                self.connection.shutdown(socket.SHUT_RDWR)
                self.close_connection = True
                return
            data = json.dumps(body).encode()
            if mode == "oversize":
                data = json.dumps({**body, "padding": "x" * 70_000}).encode()
            if mode == "garbled":
                data = data[: len(data) // 2]
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            length = len(data) + (50 if mode == "cut" else 0)
            self.send_header("Content-Length", str(length))
            for name, value in behaviour.headers.items():
                self.send_header(name, value)
            self.end_headers()
            if mode == "trickle":
                for byte in data:
                    self.wfile.write(bytes([byte]))
                    self.wfile.flush()
                    time.sleep(0.3)
                return
            self.wfile.write(data)
            if mode == "cut":
                self.wfile.flush()
                self.connection.shutdown(socket.SHUT_RDWR)
                self.close_connection = True

    return Handler


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: object, client_address: object) -> None:
        """A client that hung up (a deadline, a stop) is part of the tests, not an error."""


@contextmanager
def raw_api(answer: Callable[[dict[str, str]], Behaviour]) -> Iterator[tuple[RawApi, str]]:
    """The API and its base URL; shut down on leaving."""
    api = RawApi(answer)
    server = _QuietServer(("127.0.0.1", 0), _handler(api))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield api, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
