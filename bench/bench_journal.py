"""Benchmark scenario 5: what making every send record durable before its request leaves
costs (issue 9, scenario 16). Part of bench/bench.py."""

import sys
import threading
import time
from pathlib import Path
from types import ModuleType

from bench_data import REPO
from bench_report import Bench


def scenario_group_commit(bench: Bench) -> None:
    """Sixteen threads (a run at ``--concurrency 16``) journal send records as fast as they
    can, once with the real group commit and once with fsync made free; the difference is the
    cost of durability, per request and in requests per second, to set against 50 ms of
    latency. The journal lives in ``--out``, so the numbers are those of that disk.
    """
    sys.path.insert(0, str(REPO))
    import importer.runs.journal as journal_module

    sends = 100 if bench.config.quick else 400
    real = _journal_load(journal_module, bench.out / "group-commit.journal", sends)
    fsync = journal_module.os.fsync
    try:
        journal_module.os.fsync = lambda fd: None
        free = _journal_load(journal_module, bench.out / "no-sync.journal", sends)
    finally:
        journal_module.os.fsync = fsync
    total = 16 * sends
    bench.add("5.1", f"send records made durable, 16 threads x {sends:,} (group commit)",
              f"{total / real[0]:,.0f} records/s, {real[1]:,} fsyncs "
              f"({total / max(real[1], 1):,.1f} records per fsync)",
              ">= 3,200/s (10x scenario 1's ceiling)", total / real[0] >= 3200)
    bench.add("5.2", "  the same with fsync made free (no durability)",
              f"{total / free[0]:,.0f} records/s")
    bench.add("5.3", "  wait per send record before its request leaves (p50 / p99)",
              f"{real[2] * 1000:.2f} / {real[3] * 1000:.2f} ms")


def _journal_load(module: ModuleType, path: Path,
                  sends: int) -> tuple[float, int, float, float]:
    """Wall seconds, fsyncs, and median / p99 wait of ``sending`` for 16 busy threads."""
    journal = module.Journal(path, {}, module.Prior({}))
    waits: list[float] = []
    lock = threading.Lock()

    def worker(first: int) -> None:
        mine = []
        for row in range(first, first + sends):
            started = time.perf_counter()
            journal.sending(row)
            mine.append(time.perf_counter() - started)
        with lock:
            waits.extend(mine)

    threads = [threading.Thread(target=worker, args=(n * sends,)) for n in range(16)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
    journal.close(complete=True)
    path.unlink()
    waits.sort()
    return wall, journal.syncs, waits[len(waits) // 2], waits[int(len(waits) * 0.99)]
