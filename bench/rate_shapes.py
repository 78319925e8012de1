"""The adaptive rate against every limiter shape, measured for real over loopback.

For each shape (fixed window, sliding window, token bucket with a burst of 1, 10 and 100) at
100 requests/s, a fresh ``python -m importer sandbox`` process answers 429 with
``Retry-After: 1`` beyond the limit, and ``python -m importer run`` sends the rows at
concurrency 16, once without ``--rate-limit`` (the throttle must find the limit) and once with
``--rate-limit 100`` (the cap set explicitly). Rates are 201 answers (from the server's
``GET /__stats``) per second of importer wall time, interpreter start-up included; they are
printed, never asserted.

Usage: python bench/rate_shapes.py [--rows N] [--limit N] [--quick]
"""

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TOKEN = "bench-rate-shapes-token"
SHAPES = [("fixed-window", None), ("sliding-window", None), ("token-bucket", 1),
          ("token-bucket", 10), ("token-bucket", 100)]
SETTLED_AFTER = 5.0
MAPPING = "version: 1\nfields:\n  email: Email\n  first_name: First Name\n"


@dataclass(frozen=True)
class Measured:
    """One importer run against one sandbox."""

    created: int
    refused: int
    wall: float
    exit_code: int
    held: float

    def rate(self) -> float:
        return self.created / self.wall if self.wall else 0.0

    def refused_share(self) -> float:
        total = self.created + self.refused
        return self.refused / total if total else 0.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def env() -> dict[str, str]:
    return {**os.environ, "ROUTERA_API_TOKEN": TOKEN, "PYTHONPATH": str(REPO)}


def stats(url: str) -> dict[str, int]:
    request = urllib.request.Request(f"{url}/__stats",
                                     headers={"Authorization": f"Bearer {TOKEN}"})
    with urllib.request.urlopen(request, timeout=5) as answer:
        return {k: int(v) for k, v in json.load(answer).items()}


def wait_until_up(url: str, server: subprocess.Popen[bytes]) -> None:
    for _ in range(200):
        if server.poll() is not None:
            raise SystemExit(f"sandbox exited with {server.returncode}")
        try:
            stats(url)
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit("sandbox did not start")


def measure(folder: Path, name: str, shape: str, burst: int | None, limit: float, rows: int,
            client_limit: float | None) -> Measured:
    """One fresh sandbox, one importer run; the server's counts."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server_args = [sys.executable, "-m", "importer", "sandbox", "--port", str(port),
                   "--db", str(folder / f"{name}.db"), "--rate-limit", str(limit),
                   "--rate-limit-shape", shape, "--latency", "0.02"]
    if burst is not None:
        server_args += ["--rate-limit-burst", str(burst)]
    server = subprocess.Popen(server_args, env=env(), stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        wait_until_up(url, server)
        run_args = [sys.executable, "-m", "importer", "run", str(folder / f"rows{rows}.csv"),
                    "--mapping", str(folder / "mapping.yaml"), "--api-url", url,
                    "--concurrency", "16", "--quiet", "--results",
                    str(folder / f"{name}.results.csv"),
                    "--ledger", str(folder / f"{name}.ledger.sqlite3")]
        if client_limit:
            run_args += ["--rate-limit", str(client_limit)]
        started = time.perf_counter()
        importer = subprocess.Popen(run_args, env=env(), stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL)
        samples = poll(url, importer, started)
        wall = time.perf_counter() - started
        counts = stats(url)
    finally:
        server.terminate()
        server.wait(timeout=10)
    return Measured(counts.get("201", 0), counts.get("429", 0), wall,
                    importer.returncode, held(samples, SETTLED_AFTER))


def poll(url: str, importer: subprocess.Popen[bytes], started: float) -> list[tuple[float, int]]:
    """The server's count of 201s every quarter second while the importer runs."""
    samples: list[tuple[float, int]] = []
    while importer.poll() is None:
        samples.append((time.perf_counter() - started, stats(url).get("201", 0)))
        time.sleep(0.25)
    return samples


def held(samples: list[tuple[float, int]], after: float) -> float:
    """201s per second from ``after`` seconds into the run until its last second."""
    window = [(t, n) for t, n in samples if t >= after]
    if len(window) < 2:
        return 0.0
    end = [(t, n) for t, n in window if t <= samples[-1][0] - 1.0] or window
    (t0, n0), (t1, n1) = window[0], end[-1]
    return (n1 - n0) / (t1 - t0) if t1 > t0 else 0.0


def write_inputs(folder: Path, rows: int) -> None:
    (folder / "mapping.yaml").write_text(MAPPING, encoding="utf-8")
    lines = ["Email,First Name"] + [f"person{n}@example.com,Name {n}" for n in range(rows)]
    (folder / f"rows{rows}.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--limit", type=float, default=100.0)
    parser.add_argument("--quick", action="store_true", help="200 rows: a smoke run only")
    args = parser.parse_args()
    rows = 200 if args.quick else args.rows
    print(f"{rows} rows, concurrency 16, server latency 20 ms, limit {args.limit:g}/s with "
          "Retry-After: 1. whole: 201s per second of importer wall time (start-up included); "
          f"held: 201s per second from {SETTLED_AFTER:g} s into the run to its last second")
    print(f"{'':<24}{'without --rate-limit (adaptive)':^34}  "
          f"{'with --rate-limit ' + format(args.limit, 'g'):^34}")
    print(f"{'server limiter':<24}" + f"{'whole/s':>9}{'held/s':>8}{'held %':>8}{'429 %':>9}  " * 2)
    broken = 0
    with tempfile.TemporaryDirectory() as temporary:
        folder = Path(temporary)
        write_inputs(folder, rows)
        for shape, burst in SHAPES:
            label = shape + (f", burst {burst}" if burst is not None else "")
            base = f"{shape}-{burst}"
            adaptive = measure(folder, f"{base}-a", shape, burst, args.limit, rows, None)
            capped = measure(folder, f"{base}-c", shape, burst, args.limit, rows, args.limit)
            for run in (adaptive, capped):
                broken += run.exit_code != 0 or run.created != rows
            print(f"{label:<24}" + "".join(
                f"{run.rate():>9.1f}{run.held:>8.1f}{run.held / args.limit:>8.0%}"
                f"{run.refused_share():>9.1%}  " for run in (adaptive, capped)), flush=True)
    if broken:
        print(f"BROKEN: {broken} runs did not create every row or exited non-zero")
    return 1 if broken else 0


if __name__ == "__main__":
    raise SystemExit(main())
