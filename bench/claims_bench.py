"""Benchmark the claims keyless rows take in the ledger before they are sent.

A claim is the ledger's one synchronous write: one short transaction per keyless row, before
its request leaves. This measures what it costs where it costs most, an export of keyless rows
only, sent at concurrency 16 to a sandbox that answers in 50 ms. Side by side, each in its own
importer and sandbox process with a fresh ledger:

1. ``--no-ledger`` (no claims): the alternative;
2. the SQLite ledger (every row claimed, then settled);
3. the PostgreSQL ledger (``--postgres``; a throwaway server from the machine's binaries);
4. two runs of the same export at once sharing one SQLite ledger: each row is sent by one of
   them and waited for by the other, so together they take about the time of one run, and the
   server must have created every row exactly once.

Timings are reported, never asserted. Usage: python bench/claims_bench.py [--quick] [--postgres]
"""

import argparse
import csv
import subprocess
import sys
import time
from contextlib import ExitStack
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(1, str(BENCH_DIR.parent))  # after bench/ itself: `bench` is bench/bench.py

from bench_processes import child_env  # noqa: E402
from ledger_bench import (  # noqa: E402
    Folders,
    fresh_folders,
    importer,
    report,
    throwaway_postgres,
)

from bench import MAPPING, PYTHON, SandboxProcess  # noqa: E402

CONCURRENCY = "16"
LATENCY = "0.05"


def write_keyless(path: Path, rows: int) -> None:
    """Rows with a name and nothing the API could deduplicate on."""
    with path.open("w", encoding="utf-8", newline="") as f:
        out = csv.writer(f)
        out.writerow(["Customer ID", "First Name", "Last Name", "Email", "Phone", "Company",
                      "Zip", "Signup Date", "Notes"])
        for i in range(rows):
            out.writerow(["", f"Keyless{i}", "Person", "", "", "", "", "", ""])


def sandbox(folders: Folders, label: str, stack: ExitStack) -> SandboxProcess:
    api = SandboxProcess(label, folders, "--latency", LATENCY)  # type: ignore[arg-type]
    api.__enter__()
    stack.callback(api.__exit__)
    return api


def one_run(folders: Folders, label: str, export: Path, mapping: Path, stack: ExitStack,
            *flags: str) -> tuple[float, dict[str, int]]:
    api = sandbox(folders, label, stack)
    wall, _ = importer(folders, label, export, mapping, "--api-url", api.url,
                       "--concurrency", CONCURRENCY, *flags)
    return wall, api.stats()


def two_at_once(folders: Folders, export: Path, mapping: Path,
                stack: ExitStack) -> tuple[float, dict[str, int]]:
    """Both runs start together on the same export and ledger; wall time until both end."""
    api = sandbox(folders, "two-at-once", stack)
    ledger = str(folders.data / "shared.sqlite3")
    started = time.perf_counter()
    runs = [subprocess.Popen(
        [PYTHON, "-m", "importer", "run", str(export), "--mapping", str(mapping), "--quiet",
         "--results", str(folders.data / f"twin{n}.results.csv"), "--api-url", api.url,
         "--concurrency", CONCURRENCY, "--ledger", ledger],
        env=child_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) for n in (1, 2)]
    for run in runs:
        _, err = run.communicate()
        if run.returncode != 0:
            raise SystemExit(f"BROKEN: a twin run exited {run.returncode}: {err[-500:]!r}")
    return time.perf_counter() - started, api.stats()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="600 rows (a smoke test)")
    parser.add_argument("--postgres", action="store_true",
                        help="also measure a PostgreSQL ledger (starts a throwaway server)")
    parser.add_argument("--out", type=Path, default=BENCH_DIR / "out" / "claims")
    args = parser.parse_args(argv)
    rows = 600 if args.quick else 3000
    folders = fresh_folders(args.out)
    mapping, export = folders.data / "mapping.yaml", folders.data / "keyless.csv"
    mapping.write_text(MAPPING, encoding="utf-8")
    write_keyless(export, rows)
    with ExitStack() as stack:
        lines = measure(folders, export, mapping, rows, stack, args.postgres)
    report(args.out, folders, lines)
    return 0


def measure(folders: Folders, export: Path, mapping: Path, rows: int, stack: ExitStack,
            postgres: bool) -> list[tuple[str, str]]:
    lines = [("keyless rows, concurrency / server latency", f"{rows:,}, {CONCURRENCY} / "
              f"{float(LATENCY) * 1000:.0f} ms")]
    base, stats = one_run(folders, "no-ledger", export, mapping, stack, "--no-ledger",
                          "--ledger", str(folders.data / "unused.sqlite3"))
    lines.append(("--no-ledger (no claims)", _rate(base, rows, stats)))
    wall, stats = one_run(folders, "sqlite", export, mapping, stack, "--ledger",
                          str(folders.data / "ledger.sqlite3"))
    lines += [("SQLite ledger (every row claimed)", _rate(wall, rows, stats)),
              ("  / --no-ledger", f"{wall / base:.2f}x  (target: about 1)")]
    if postgres:
        url = throwaway_postgres(stack, "claims_bench")
        wall, stats = one_run(folders, "postgres", export, mapping, stack, "--ledger", url)
        lines += [("PostgreSQL ledger (every row claimed)", _rate(wall, rows, stats)),
                  ("  / --no-ledger", f"{wall / base:.2f}x  (target: about 1)")]
    wall, stats = two_at_once(folders, export, mapping, stack)
    lines += [("two runs of it at once, one SQLite ledger", f"{wall:.1f} s for both; server "
               f"answered {stats} (created once each: {stats.get('201', 0) == rows})"),
              ("  / --no-ledger", f"{wall / base:.2f}x  (both runs together)")]
    return lines


def _rate(wall: float, rows: int, stats: dict[str, int]) -> str:
    return f"{wall:.1f} s, {rows / wall:,.0f} rows/s; server answered {stats}"


if __name__ == "__main__":
    sys.exit(main())
