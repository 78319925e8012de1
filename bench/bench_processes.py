"""Benchmark processes: the importer and the sandbox started as a person would, measured by the
kernel (``os.wait4``), and the checks that a run did not break. Part of bench/bench.py."""

import contextlib
import csv
import json
import os
import signal
import socket
import subprocess
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from bench_data import (
    PYTHON,
    REPO,
    RUN_TIMEOUT,
    TOKEN,
)

if TYPE_CHECKING:
    from bench_report import Bench


# ---------------------------------------------------------------------------- processes


@dataclass
class Run:
    """One finished child process, with the kernel's accounting of it."""

    label: str
    argv: list[str]
    wall: float
    user: float
    sys: float
    max_rss_mb: float
    exit_code: int
    stdout: str
    stderr: str
    context_switches: int = 0
    rows: int = 0
    server: dict[str, int] = field(default_factory=dict)
    server_cpu: float | None = None

    @property
    def cpu(self) -> float:
        return self.user + self.sys

    @property
    def rate(self) -> float:
        return self.rows / self.wall if self.wall > 0 else 0.0


def child_env() -> dict[str, str]:
    """The user's environment with the sandbox token, no proxy between us and loopback, and
    this checkout first on the path (the code measured is the working tree's)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    env["ROUTERA_API_TOKEN"] = TOKEN
    env.pop("ROUTERA_API_URL", None)
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    return env


def run_measured(label: str, argv: Sequence[str], logs: Path, rows: int = 0) -> Run:
    """Run ``argv`` to completion; wall time around it, CPU and peak RSS from ``os.wait4``.

    ``os.wait4`` reports exactly this child's rusage, unlike ``RUSAGE_CHILDREN``, which also
    counts sandboxes reaped in between. A watchdog kills a hung child so the bench ends.
    """
    name = label.replace(" ", "_").replace(":", "").replace("/", "_")
    out_path, err_path = logs / f"{name}.out", logs / f"{name}.err"
    with out_path.open("wb") as out, err_path.open("wb") as err:
        started = time.perf_counter()
        proc = subprocess.Popen(list(argv), stdout=out, stderr=err, env=child_env(), cwd=logs)
        watchdog = threading.Timer(RUN_TIMEOUT, _kill, (proc.pid,))
        watchdog.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            watchdog.cancel()
        wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    return Run(label, list(argv), wall, usage.ru_utime, usage.ru_stime, usage.ru_maxrss / 1024,
               proc.returncode, out_path.read_text("utf-8", "replace"),
               err_path.read_text("utf-8", "replace"), usage.ru_nvcsw + usage.ru_nivcsw, rows)


def _kill(pid: int) -> None:
    """Only ever a child this script started, by its pid."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def free_port() -> int:
    """A port that was free a moment ago; losing it to another process is handled by retrying
    (the sandbox then exits with "choose another --port")."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class SandboxProcess:
    """``routera-import sandbox`` in its own process, on a free port, with a fresh database.

    A separate process, so the server's CPU is not charged to the importer and its GIL does not
    slow the importer's threads (as ``run --sandbox`` would).
    """

    def __init__(self, label: str, bench: "Bench", *faults: str) -> None:
        self.label = label
        self.db = bench.data / f"{label}.sandbox.db"
        self.logs = bench.logs
        self.faults = list(faults)
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0
        self.cpu = 0.0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> "SandboxProcess":
        for leftover in self.db.parent.glob(self.db.name + "*"):
            leftover.unlink()
        for _ in range(5):
            if self._start():
                return self
        raise RuntimeError(f"sandbox {self.label} did not start; see {self._log_path()}")

    def _log_path(self) -> Path:
        return self.logs / f"{self.label}.sandbox.log"

    def _start(self) -> bool:
        """Start on a free port and wait until it accepts connections; False if it lost the
        port to someone else (then the caller retries with another)."""
        self.port = free_port()
        argv = [PYTHON, "-m", "importer", "sandbox", "--port", str(self.port),
                "--db", str(self.db), *self.faults]
        with self._log_path().open("ab") as log:
            self.proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                                         env=child_env(), cwd=self.logs)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            with contextlib.suppress(OSError), socket.create_connection(
                    ("127.0.0.1", self.port), timeout=0.5):
                return True
            time.sleep(0.05)
        self._stop()
        return False

    def stats(self) -> dict[str, int]:
        """Answers the server gave, by HTTP status, as ``GET /__stats`` reports them."""
        request = urllib.request.Request(f"{self.url}/__stats",
                                         headers={"Authorization": f"Bearer {TOKEN}"})
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(request, timeout=10) as response:
            return {k: int(v) for k, v in json.load(response).items()}

    def __exit__(self, *exc_info: object) -> None:
        self._stop()

    def _stop(self) -> None:
        """SIGTERM (the sandbox stops cleanly on it), then SIGKILL if it does not; keeps its CPU."""
        proc = self.proc
        if proc is None or proc.returncode is not None:
            return
        proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                proc.returncode = os.waitstatus_to_exitcode(status)
                self.cpu = usage.ru_utime + usage.ru_stime
                return
            time.sleep(0.05)
        _kill(proc.pid)
        proc.wait()


# ---------------------------------------------------------------------------- checks


class Broken(Exception):
    """Something the benchmark cannot report as a number: a crash, a lost row."""


def status_counts(results: Path) -> Counter[str]:
    """Rows per status in a results CSV."""
    with results.open(encoding="utf-8-sig", newline="") as f:
        reader = csv.reader(f)
        column = next(reader).index("status")
        return Counter(row[column] for row in reader)


def check_run(run: Run, results: Path | None, expected: str) -> Counter[str]:
    """The importer exited 0 and every one of ``run.rows`` rows ended ``expected``."""
    if run.exit_code != 0:
        tail = (run.stderr.strip() or run.stdout.strip())[-600:]
        raise Broken(f"{run.label}: exit code {run.exit_code}: {tail}")
    if results is None:
        return Counter()
    counts = status_counts(results)
    if counts[expected] != run.rows or sum(counts.values()) != run.rows:
        raise Broken(f"{run.label}: {run.rows:,} rows in, results {dict(counts)} "
                     f"(every row should be {expected})")
    return counts
