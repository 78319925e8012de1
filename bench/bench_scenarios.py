"""Benchmark scenarios: one function per target of the performance issue, each adding its
lines to the report. Part of bench/bench.py."""

import importlib.util
import re
import statistics
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from bench_data import (
    BENCH_DIR,
    MAPPING,
    NAIVE_SKIPPED,
    PYTHON,
    contact_rows,
    write_csvs,
    write_xlsx,
)
from bench_processes import (
    Broken,
    Run,
    SandboxProcess,
    check_run,
    run_measured,
    status_counts,
)
from bench_report import (
    Bench,
)

# ---------------------------------------------------------------------------- scenarios


def prepare_data(bench: Bench) -> None:
    """Generate every input up front (deterministic), so no phase competes with generation;
    the workbook (openpyxl, the slow part) is written by a second process meanwhile."""
    cfg = bench.config
    bench.mapping.write_text(MAPPING, encoding="utf-8")
    sizes = {cfg.latency_rows, cfg.naive_rows, cfg.limited_rows, cfg.big_rows, cfg.small_rows}
    with ProcessPoolExecutor(1) as pool:
        workbook = pool.submit(write_xlsx, xlsx_path(bench, cfg.xlsx_rows), cfg.xlsx_rows)
        write_csvs(contact_rows(max(sizes)), {n: csv_path(bench, n) for n in sizes})
        workbook.result()


def csv_path(bench: Bench, rows: int) -> Path:
    return bench.data / f"contacts_{rows}.csv"


def xlsx_path(bench: Bench, rows: int) -> Path:
    return bench.data / f"contacts_{rows}.xlsx"


def scenario_latency(bench: Bench) -> None:
    """1 + 4: a slow API (fixed latency per request) bounds throughput at concurrency/latency."""
    cfg = bench.config
    rows = cfg.latency_rows
    with SandboxProcess("latency", bench, "--latency", str(cfg.latency)) as api:
        run, results = bench.importer("latency importer", csv_path(bench, rows), rows,
                                      "--api-url", api.url, "--concurrency", str(cfg.concurrency))
        run.server = api.stats()
    run.server_cpu = api.cpu
    check_run(run, results, "created")
    requests = sum(run.server.values())
    floor = 0.9 * cfg.ceiling
    bench.values.update(latency_rate=run.rate, latency_cpu=run.cpu, latency_rows=rows)
    bench.add("1.1", f"latency {cfg.latency * 1000:g} ms, concurrency {cfg.concurrency}: "
              "requests/s (server count / importer wall)", f"{requests / run.wall:,.1f} req/s",
              f">= {floor:,.0f} (90% of {cfg.ceiling:,.0f})", requests / run.wall >= floor)
    bench.add("1.2", f"  importer rows/s ({rows:,} rows)", f"{run.rate:,.1f} rows/s")
    own = own_rate(run.stdout)
    if own:
        bench.add("1.2b", "  the same, by the importer's own summary (no interpreter start-up)",
                  own)
    if run.server.get("201", 0) != rows:
        raise Broken(f"latency importer: server created {run.server} for {rows} rows")


def own_rate(summary: str) -> str:
    """``rows/s`` as the importer's summary line states it, timed from inside the process."""
    found = re.search(r"rows\s+[\d,]+ in ([\d.]+) s \(([\d,]+) rows/s\)", summary)
    return f"{found[2]} rows/s in {found[1]} s" if found else ""


def pandas_available() -> bool:
    """CI installs only the ``test`` extra; the naive baseline needs the ``bench`` one."""
    return importlib.util.find_spec("pandas") is not None


def scenario_naive(bench: Bench) -> None:
    """1: the sequential pandas + requests.post script, on its own fresh sandbox."""
    cfg = bench.config
    if not pandas_available():
        bench.add("1.3", "  naive baseline rows/s", NAIVE_SKIPPED)
        bench.add("1.4", "  importer rows/s / naive rows/s", "skipped", ">= 14x")
        bench.notes.append(NAIVE_SKIPPED)
        return
    rows = cfg.naive_rows
    with SandboxProcess("naive", bench, "--latency", str(cfg.latency)) as api:
        argv = [PYTHON, str(BENCH_DIR / "naive.py"), str(csv_path(bench, rows)), api.url]
        run = run_measured("latency naive", argv, bench.logs, rows)
        run.server = api.stats()
    run.server_cpu = api.cpu
    bench.runs.append(run)
    check_run(run, None, "created")
    if run.server.get("201", 0) != rows or f"{rows} of {rows} rows created" not in run.stdout:
        raise Broken(f"naive baseline: {run.stdout.strip()!r}, server {run.server}")
    bench.add("1.3", f"  naive baseline rows/s ({rows:,}-row slice, sequential)",
              f"{run.rate:,.1f} rows/s")
    bench.notes.append(f"naive baseline ran on the first {rows:,} rows of the same data (its "
                       f"per-row rate is constant); the importer on {cfg.latency_rows:,}")
    importer_rate = bench.values.get("latency_rate")
    if importer_rate:
        ratio = importer_rate / run.rate
        bench.add("1.4", "  importer rows/s / naive rows/s", f"{ratio:,.1f}x", ">= 14x",
                  ratio >= 14)


def scenario_rate_limited(bench: Bench, capped: bool) -> None:
    """2: a server that answers 429 beyond a rate; with the cap, and adapting without it."""
    cfg = bench.config
    rows = cfg.limited_rows
    label = "rate-limit capped" if capped else "rate-limit adaptive"
    flags = ["--concurrency", str(cfg.concurrency)]
    if capped:
        flags += ["--rate-limit", f"{cfg.rate_limit:g}"]
    with SandboxProcess(label.replace(" ", "-"), bench, "--rate-limit",
                        f"{cfg.rate_limit:g}", "--latency", str(cfg.limited_latency)) as api:
        run, results = bench.importer(label, csv_path(bench, rows), rows, "--api-url", api.url,
                                      *flags)
        run.server = api.stats()
    run.server_cpu = api.cpu
    accepted = run.server.get("201", 0)
    share = run.server.get("429", 0) / max(1, sum(run.server.values()))
    lost = _lost_rows(run, results, rows)
    if capped:
        bench.add("2.1", f"rate-limited server {cfg.rate_limit:g}/s, --rate-limit "
                  f"{cfg.rate_limit:g}: accepted (201)/s", f"{accepted / run.wall:,.1f}/s",
                  ">= 90", accepted / run.wall >= 90)
        bench.add("2.2", "  share of requests answered 429", f"{share:.1%}", "<= 2%",
                  share <= 0.02)
    else:
        bench.add("2.3", f"rate-limited server {cfg.rate_limit:g}/s, no --rate-limit: "
                  "accepted (201)/s", f"{accepted / run.wall:,.1f}/s", ">= 70",
                  accepted / run.wall >= 70)
        bench.add("2.4", "  share of requests answered 429", f"{share:.1%}")
        bench.add("2.5", "  rows not created", f"{lost:,}", "0", lost == 0)
    check_run(run, results, "created")


def _lost_rows(run: Run, results: Path, rows: int) -> int:
    """Rows that did not end ``created`` (an unreadable results file loses them all)."""
    try:
        return rows - status_counts(results)["created"]
    except (OSError, ValueError, StopIteration):
        return rows


def scenario_dry_runs(bench: Bench) -> None:
    """3: the local pipeline alone (read, map, validate, write results), and its memory."""
    cfg = bench.config
    big = _dry_run(bench, f"dry-run csv {cfg.big_rows}", csv_path(bench, cfg.big_rows),
                   cfg.big_rows)
    small = _dry_run(bench, f"dry-run csv {cfg.small_rows}", csv_path(bench, cfg.small_rows),
                     cfg.small_rows)
    bench.add("3.1", f"dry run CSV {cfg.big_rows:,} rows x 9 columns: rows/s",
              f"{big.rate:,.0f} rows/s", ">= 150,000", big.rate >= 150_000)
    bench.add("3.2", "  peak RSS", f"{big.max_rss_mb:,.1f} MB", "< 300 MB",
              big.max_rss_mb < 300)
    bench.add("3.3", f"dry run CSV {cfg.small_rows:,} rows: rows/s, peak RSS",
              f"{small.rate:,.0f} rows/s, {small.max_rss_mb:,.1f} MB")
    ratio = big.max_rss_mb / small.max_rss_mb
    bench.add("3.4", f"  peak RSS {cfg.big_rows:,} rows / {cfg.small_rows:,} rows",
              f"{ratio:.2f}x", "<= 1.5x", ratio <= 1.5)


def scenario_xlsx(bench: Bench) -> None:
    """3: the workbook reader (calamine) on a numbers-and-dates sheet."""
    cfg = bench.config
    run = _dry_run(bench, f"dry-run xlsx {cfg.xlsx_rows}", xlsx_path(bench, cfg.xlsx_rows),
                   cfg.xlsx_rows)
    bench.add("3.5", f"dry run XLSX {cfg.xlsx_rows:,} rows: rows/s",
              f"{run.rate:,.0f} rows/s", ">= 30,000", run.rate >= 30_000)


def _dry_run(bench: Bench, label: str, source: Path, rows: int) -> Run:
    run, results = bench.importer(label, source, rows, "--dry-run")
    check_run(run, results, "ready")
    return run


def scenario_client_cost(bench: Bench) -> None:
    """4: the importer's own CPU per posted row, with and without interpreter start-up."""
    cfg = bench.config
    startup = [run_measured(f"startup {n}", [PYTHON, "-m", "importer", "--version"], bench.logs)
               for n in range(cfg.startup_samples)]
    for run in startup:
        check_run(run, None, "")
    bench.runs.extend(startup)
    start_cpu = statistics.median(r.cpu for r in startup)
    cpu, rows = bench.values.get("latency_cpu"), bench.values.get("latency_rows")
    if cpu is None or not rows:
        raise Broken("client cost: the latency scenario did not produce a run to measure")
    per_row = cpu / rows * 1000
    without = max(0.0, cpu - start_cpu) / rows * 1000
    bench.add("4.1", f"importer CPU per posted row (scenario 1, {rows:,} rows, user+sys)",
              f"{per_row:.3f} ms/row", "< 1 ms", per_row < 1)
    bench.add("4.2", "  without start-up CPU", f"{without:.3f} ms/row", "< 1 ms", without < 1)
    bench.add("4.3", f"  importer start-up CPU (--version, median of {len(startup)})",
              f"{start_cpu * 1000:,.0f} ms")
