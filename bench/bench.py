"""Benchmark routera-import against the targets of the performance issue, as a user runs it.

Everything is measured from the outside: the sandbox API and the importer run as separate
processes started exactly as a person would start them, rows/s is rows over the wall time of
the importer process (interpreter start-up included), CPU and peak memory come from the kernel's
accounting of that process (``os.wait4``), and request counts come from the server
(``GET /__stats``), not from the importer's own summary. Timings are reported, never asserted:
the machine is shared and noisy. The exit code is non-zero only when something broke (a crash,
a row that did not end ``created``/``ready``), never because a target was missed.

Usage: python bench/bench.py [--quick] [--out DIR] [--keep-data]   (see bench/README.md)
The parts: bench_data.py (inputs), bench_processes.py (measured processes), bench_scenarios.py
(one function per target), bench_report.py (the report); this file runs them in order.
"""

import argparse
import json
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path

from bench_data import (  # noqa: F401 (bench/ledger_bench.py imports them from bench)
    BENCH_DIR,
    MAPPING,
    PYTHON,
    TOKEN,
    Config,
    contact_rows,
    write_csvs,
)
from bench_journal import scenario_group_commit
from bench_processes import (  # noqa: F401 (bench/ledger_bench.py imports them from bench)
    SandboxProcess,
    run_measured,
)
from bench_report import (
    Bench,
    render,
)
from bench_scenarios import (
    prepare_data,
    scenario_client_cost,
    scenario_dry_runs,
    scenario_latency,
    scenario_naive,
    scenario_rate_limited,
    scenario_xlsx,
)

# ---------------------------------------------------------------------------- main


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="tiny sizes (~10 s) for a CI smoke test; not meaningful for targets")
    parser.add_argument("--out", type=Path, default=BENCH_DIR / "out",
                        help="folder for data, results, logs and the report (default: bench/out)")
    parser.add_argument("--keep-data", action="store_true",
                        help="keep the generated inputs and results files (large in a full run)")
    return parser.parse_args(argv)


def scenarios(bench: Bench) -> list[tuple[str, Callable[[], None]]]:
    return [
        ("data", lambda: prepare_data(bench)),
        ("latency importer", lambda: scenario_latency(bench)),
        ("latency naive", lambda: scenario_naive(bench)),
        ("rate-limit capped", lambda: scenario_rate_limited(bench, capped=True)),
        ("rate-limit adaptive", lambda: scenario_rate_limited(bench, capped=False)),
        ("dry runs csv", lambda: scenario_dry_runs(bench)),
        ("dry run xlsx", lambda: scenario_xlsx(bench)),
        ("client cost", lambda: scenario_client_cost(bench)),
        ("group commit", lambda: scenario_group_commit(bench)),
    ]


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    bench = Bench(Config.make(args.quick), args.out.resolve())
    for folder in (bench.data, bench.logs):
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
    started = time.perf_counter()
    for name, step in scenarios(bench):
        print(f"[bench] {name} ...", file=sys.stderr, flush=True)
        with bench.phase(name):
            step()
        if name == "data" and bench.broken:
            break
    report = render(bench, time.perf_counter() - started)
    print(report, end="", flush=True)
    save(bench, report, args.keep_data)
    return 1 if bench.broken else 0


def save(bench: Bench, report: str, keep_data: bool) -> None:
    """The report as text and JSON next to the logs; inputs and results go unless kept."""
    (bench.out / "report.txt").write_text(report, encoding="utf-8")
    runs = [{**asdict(r), "stdout": r.stdout[-2000:], "stderr": r.stderr[-2000:]}
            for r in bench.runs]
    data = {"config": asdict(bench.config), "lines": [asdict(ln) for ln in bench.lines],
            "runs": runs, "phases": bench.phases, "notes": bench.notes, "broken": bench.broken}
    (bench.out / "report.json").write_text(json.dumps(data, indent=2, ensure_ascii=False),
                                           encoding="utf-8")
    if not keep_data:
        shutil.rmtree(bench.data, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
