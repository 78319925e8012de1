"""Shared test helpers: a sandbox API on loopback and a CLI runner that captures output."""

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from importer.cli import main
from importer.sandbox import Faults, Sandbox
from tests.ledger_stores import opener  # noqa: F401 (a fixture)
from tests.postgres_server import postgres_server, postgres_url  # noqa: F401 (fixtures)

TOKEN = "test-token-1f2e3d4c5b6a"
PLAIN_MAPPING = """\
version: 1
custom_fields: [postal_code]
fields:
  external_id: Customer ID
  first_name: First Name
  last_name: Last Name
  email: Email
  postal_code: Zip
"""
"""Five columns as they are: for reading and reliability tests."""
MAPPING = PLAIN_MAPPING.replace("  email: Email\n", "  email:\n    column: Email\n"
                                "    transform: [trim, lower]\n  phone: Phone\n")
"""The same plus a phone and a lower-cased email: for the command-line tests."""


@dataclass
class Result:
    code: int
    out: str
    err: str

    @property
    def lines(self) -> list[str]:
        return self.out.splitlines()


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch):
    """Run the CLI in-process with ROUTERA_API_TOKEN set; returns exit code and output."""
    monkeypatch.setenv("ROUTERA_API_TOKEN", TOKEN)
    monkeypatch.delenv("ROUTERA_API_URL", raising=False)

    def run(*args: object) -> Result:
        code = main([str(a) for a in args])
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return run


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[Sandbox]:
    with Sandbox(tmp_path / "sandbox.db", token=TOKEN) as api:
        yield api


@pytest.fixture
def make_sandbox(tmp_path: Path):
    """A sandbox with injected faults; closed at the end of the test."""
    opened: list[Sandbox] = []

    def make(**faults: object) -> Sandbox:
        api = Sandbox(tmp_path / f"sandbox{len(opened)}.db", token=TOKEN,
                      faults=Faults(**faults)).__enter__()
        opened.append(api)
        return api

    yield make
    for api in opened:
        api.__exit__(None, None, None)


@pytest.fixture
def mapping_file(tmp_path: Path) -> Path:
    path = tmp_path / "mapping.yaml"
    path.write_text(MAPPING, encoding="utf-8")
    return path


def write_csv(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


def read_results(path: Path) -> list[dict[str, str]]:
    import csv

    with path.open(encoding="utf-8-sig", newline="") as f:
        return list(csv.DictReader(f))


def records(api: Sandbox) -> list[dict[str, object]]:
    """What the server stored, without the fields it generates."""
    generated = {"id", "created_at", "updated_at", "archived", "contact_owner"}
    return [{k: v for k, v in r.items() if k not in generated and v is not None}
            for r in api.store.records()]


def dump(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


@pytest.fixture
def scripted_api():
    """A tiny API whose answer to each create request is decided by ``answer(fields)``."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    servers = []

    def start(answer) -> str:
        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                fields = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                status, body = answer(fields["fields"])
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture(autouse=True)
def private_ledger(tmp_path_factory: pytest.TempPathFactory,
                   monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own ledger, so no test sees what another (or the user) imported;
    a test that passes its own environment to ``run_import`` gets a private state folder."""
    folder = tmp_path_factory.mktemp("ledger")
    monkeypatch.setenv("ROUTERA_LEDGER", str(folder / "ledger.sqlite3"))
    monkeypatch.setenv("XDG_STATE_HOME", str(folder / "state"))
    return folder / "ledger.sqlite3"

