"""The token never appears in any output, whatever goes wrong; TLS and http rules hold."""

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import openpyxl
import pytest

from tests.conftest import TOKEN


class EchoHandler(BaseHTTPRequestHandler):
    """Answers in turn 201, 400, 409, 500, 401, each echoing the Authorization header."""

    protocol_version = "HTTP/1.1"
    statuses: ClassVar[list[int]] = [201, 400, 409, 500, 500, 500, 401]
    lock = threading.Lock()

    def log_message(self, *args: object) -> None:
        pass

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        with self.lock:
            status = self.statuses.pop(0) if self.statuses else 401
        body = json.dumps({"id": "x1", "error": f"echo {self.headers['Authorization']}"}).encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Echo", self.headers["Authorization"])
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def echo() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), EchoHandler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def everything_written(folder: Path) -> str:
    return "".join(p.read_bytes().decode("utf-8", "replace") for p in folder.rglob("*")
                   if p.is_file())


def test_an_echoing_server_cannot_leak_the_token(cli, echo, tmp_path: Path) -> None:
    export = tmp_path / "in.csv"
    export.write_text("Email\n" + "".join(f"p{i}@x.io\n" for i in range(8)), encoding="utf-8")
    mapping = tmp_path / "m.yaml"
    mapping.write_text("version: 1\nfields:\n  email: Email\n", encoding="utf-8")
    result = cli("run", export, "--mapping", mapping, "--api-url", echo, "--concurrency", "1",
                 "--max-retries", "0", "--results", tmp_path / "r.csv")
    assert result.code == 3
    written = everything_written(tmp_path) + result.out + result.err
    assert "echo Bearer [token]" in written
    assert TOKEN not in written


@pytest.mark.parametrize("case", ["bad-mapping", "bad-input", "bad-url", "locked-results"])
def test_error_paths_never_print_the_token(cli, tmp_path: Path, monkeypatch, case: str) -> None:
    monkeypatch.setenv("ROUTERA_API_URL", "https://crm.example.test")
    export = tmp_path / f"{TOKEN}.csv"
    export.write_text("Email\na@x.io\n", encoding="utf-8")
    mapping = tmp_path / "m.yaml"
    mapping.write_text("version: 1\nfields:\n  email: Email\n", encoding="utf-8")
    args = ["run", export, "--mapping", mapping, "--results", tmp_path / "r.csv"]
    if case == "bad-mapping":
        mapping.write_text(f"version: 1\nfields:\n  email: {TOKEN}\n", encoding="utf-8")
    elif case == "bad-input":
        export.write_bytes(b"\x00\x01binary")
    elif case == "bad-url":
        args += ["--api-url", f"http://{TOKEN}.example.test"]
    else:
        from importer.runs.lock import ResultsLock

        with ResultsLock(tmp_path / "r.csv"):
            result = cli(*args)
        assert result.code == 2 and TOKEN not in result.err
        return
    result = cli(*args)
    assert result.code == 2
    assert "[token]" in result.err
    assert TOKEN not in result.out + result.err


def test_xlsx_results_store_formulas_as_text(cli, sandbox, tmp_path: Path) -> None:
    export = tmp_path / "in.csv"
    export.write_text('First Name,Email\n"=HYPERLINK(""http://evil"")",\n@SUM(1),a@x.io\n',
                      encoding="utf-8")
    mapping = tmp_path / "m.yaml"
    mapping.write_text("version: 1\nfields:\n  first_name: First Name\n  email: Email\n")
    result = cli("run", export, "--mapping", mapping, "--api-url", sandbox.url,
                 "--results", tmp_path / "r.xlsx")
    assert result.code == 0
    sheet = openpyxl.load_workbook(tmp_path / "r.xlsx")["Results"]
    cells = [(c.value, c.data_type) for c in sheet["I"][1:]]
    assert cells == [('=HYPERLINK("http://evil")', "s"), ("@SUM(1)", "s")]
