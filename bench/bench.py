"""Benchmark routera-import against the targets of the performance issue, as a user runs it.

Everything is measured from the outside: the sandbox API and the importer run as separate
processes started exactly as a person would start them, rows/s is rows over the wall time of
the importer process (interpreter start-up included), CPU and peak memory come from the kernel's
accounting of that process (``os.wait4``), and request counts come from the server
(``GET /__stats``), not from the importer's own summary. Timings are reported, never asserted:
the machine is shared and noisy. The exit code is non-zero only when something broke (a crash,
a row that did not end ``created``/``ready``), never because a target was missed.

Usage: python bench/bench.py [--quick] [--out DIR] [--keep-data]   (see bench/README.md)
"""

import argparse
import contextlib
import csv
import datetime as dt
import importlib.util
import json
import os
import platform
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import traceback
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
PYTHON = sys.executable
TOKEN = "bench-token-7c1d9e2f4a6b"
SEED = 20240611
NAIVE_SKIPPED = "naive baseline skipped: pandas not installed (pip install -e '.[bench]')"
HEADERS = ["Customer ID", "First Name", "Last Name", "Email", "Phone", "Company", "Zip",
           "Signup Date", "Notes"]
MAPPING = """\
version: 1
fields:
  external_id: Customer ID
  first_name: First Name
  last_name: Last Name
  email:
    column: Email
    transform: [trim, lower]
  phone: Phone
  company: Company
  postal_code: Zip
  signup_date: Signup Date
  notes: Notes
  lead_source:
    value: routera-bench
custom_fields: [postal_code, signup_date, notes, lead_source]
"""
RUN_TIMEOUT = 600.0
WIDEST_VALUE = 40


# ---------------------------------------------------------------------------- configuration


@dataclass(frozen=True)
class Config:
    """Sizes and server settings; ``quick`` shrinks them for a CI smoke, not for the targets."""

    quick: bool
    latency_rows: int = 2_000
    naive_rows: int = 300
    concurrency: int = 16
    latency: float = 0.05
    limited_rows: int = 2_000
    rate_limit: float = 100.0
    limited_latency: float = 0.02
    big_rows: int = 1_000_000
    small_rows: int = 100_000
    xlsx_rows: int = 100_000
    startup_samples: int = 3

    @classmethod
    def make(cls, quick: bool) -> "Config":
        if not quick:
            return cls(quick=False)
        return cls(quick=True, latency_rows=300, naive_rows=30, limited_rows=150,
                   big_rows=20_000, small_rows=2_000, xlsx_rows=2_000, startup_samples=1)

    @property
    def ceiling(self) -> float:
        """Requests/s that ``concurrency`` workers can reach when each answer takes ``latency``."""
        return self.concurrency / self.latency


# ---------------------------------------------------------------------------- test data

# (first name, last name, ASCII slug for the email): the scripts and diacritics real CRMs hold.
NAMES = [
    ("Zoë", "Adams", "zoe.adams"), ("José", "Núñez", "jose.nunez"),
    ("Søren", "Møller", "soren.moller"), ("Łukasz", "Wiśniewski", "lukasz.wisniewski"),
    ("Mária", "Horváth", "maria.horvath"), ("Björk", "Guðmundsdóttir", "bjork.g"),
    ("François", "Lefèvre", "francois.lefevre"), ("Jürgen", "Groß", "juergen.gross"),
    ("Ayşe", "Yılmaz", "ayse.yilmaz"),  # noqa: RUF001 (Turkish dotless i, on purpose) ("Thị Hoa", "Nguyễn", "hoa.nguyen"),
    ("太郎", "山田", "taro.yamada"), ("美咲", "佐藤", "misaki.sato"),
    ("Мария", "Иванова", "maria.ivanova"), ("Дмитрий", "Соколов", "dmitry.sokolov"),
    ("محمد", "الأحمد", "mohammed.alahmad"), ("Γιώργος", "Παπαδόπουλος", "giorgos.p"),
    ("अनीता", "शर्मा", "anita.sharma"), ("민준", "김", "minjun.kim"),
    ("Siobhán", "O'Brien", "siobhan.obrien"), ("Anna-Lena", "von der Heide", "annalena.heide"),
    ("Mary", "Smith, Jr.", "mary.smith"), ("Null", "Null", "null.null"),
    ("Ada", "Lovelace", "ada.lovelace"), ("  Bob ", " Miller  ", "bob.miller"),
    ("Chloé", "", "chloe"), ("", "Okonkwo", "okonkwo"),
]
DOMAINS = ["example.com", "Example.ES", "example.co.uk", "mail.example.de", "EXAMPLE.org",
           "example.jp", "xn--bcher-kva.example"]
COMPANIES = ["Acme Corp", "Acme, Inc.", 'The "Blue" Bakery', "Telefónica", "Mærsk", "Initech",
             "株式会社サンプル", "", "", "Smith & Sons", "-minus Ltd",
             "ООО Ромашка"]  # noqa: RUF001 (Cyrillic, on purpose)
ZIPS = ["02134", "00501", "8000", "28001", "00-950", "SW1A 1AA", "100-0001", "01067", "75008"]
NOTES = ["", "", "", "", "", "VIP", "prefers email, not phone", 'said "call me after 5"',
         "first line\nsecond line", "NA", "null", "N/A", "nan", "  padded  ", "=1+1"]


def _phone(rng: random.Random, i: int) -> str:
    """Phones as people type them, one in seven missing; a bare number becomes a numeric cell
    in the workbook."""
    kind = rng.randrange(7)
    tail = f"{i % 10_000:04d}"
    return ["", f"+1 415 555 {tail}", f"(415) 555-{tail}", f"0049 30 1234{tail}",
            f"+44 20 7946 {tail}", f"41555{50000 + i % 50_000}", f"+81-3-1234-{tail}"][kind]


def _email(rng: random.Random, slug: str, i: int) -> str:
    """Unique per row, sometimes in capitals or padded with spaces (the mapping trims and
    lowercases)."""
    address = f"{slug}.{i}@{DOMAINS[i % len(DOMAINS)]}"
    style = rng.randrange(20)
    if style < 3:
        return address.title()
    if style == 3:
        return f"  {address} "
    if style == 4:
        return address.upper()
    return address


def contact_rows(count: int, seed: int = SEED) -> Iterator[list[str]]:
    """``count`` messy but valid contact rows, the same for every run with the same seed.

    Every row is sendable and unique (so every row must end ``created``): each has a name or an
    email, emails and customer ids carry the row's index, and about 2% have no key the API can
    deduplicate on (no id, no email).
    """
    rng = random.Random(seed)
    epoch = dt.date(2015, 1, 1).toordinal()
    for i in range(1, count + 1):
        first, last, slug = NAMES[rng.randrange(len(NAMES))]
        keyless = rng.random() < 0.02 and (first.strip() or last.strip())
        signup = "" if rng.random() < 0.1 else dt.date.fromordinal(
            epoch + rng.randrange(3650)).isoformat()
        zip_code = ZIPS[rng.randrange(len(ZIPS))] if rng.random() < 0.3 else (
            f"{rng.randrange(100_000):05d}")
        yield ["" if keyless else f"{i:07d}", first, last,
               "" if keyless else _email(rng, slug, i), _phone(rng, i),
               COMPANIES[rng.randrange(len(COMPANIES))], zip_code, signup,
               NOTES[rng.randrange(len(NOTES))]]


def write_csvs(rows: Iterator[list[str]], paths: dict[int, Path]) -> None:
    """Write the first ``n`` rows to ``paths[n]`` for every size in one pass over the data."""
    sizes = sorted(paths)
    files = {n: paths[n].open("w", encoding="utf-8", newline="") for n in sizes}
    try:
        writers = {n: csv.writer(files[n]) for n in sizes}
        for writer in writers.values():
            writer.writerow(HEADERS)
        for index, row in enumerate(rows):
            for n in sizes:
                if index < n:
                    writers[n].writerow(row)
    finally:
        for f in files.values():
            f.close()


def workbook_cells(row: list[str]) -> list[object]:
    """A CSV row as a spreadsheet holds it: numeric ids and bare phone numbers are numbers, the
    signup date is a date, zip codes stay text (their leading zeros matter)."""
    cid, first, last, email, phone, company, zip_code, signup, notes = row
    return [int(cid) if cid else None, first, last, email,
            int(phone) if phone.isdigit() else phone, company, zip_code,
            dt.date.fromisoformat(signup) if signup else None, notes]


def write_xlsx(path: Path, count: int) -> float:
    """A workbook of ``count`` rows written with openpyxl's streaming writer; returns seconds."""
    from openpyxl import Workbook

    started = time.perf_counter()
    book = Workbook(write_only=True)
    sheet = book.create_sheet("Contacts")
    sheet.append(HEADERS)
    for row in contact_rows(count):
        sheet.append(workbook_cells(row))
    book.save(path)
    return time.perf_counter() - started


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


# ---------------------------------------------------------------------------- report model


@dataclass
class Line:
    """One measurement of the report table."""

    key: str
    name: str
    value: str
    target: str = "-"
    met: bool | None = None


@dataclass
class Bench:
    """Collects measurements, process runs, phase times and breakages while scenarios run."""

    config: Config
    out: Path
    lines: list[Line] = field(default_factory=list)
    runs: list[Run] = field(default_factory=list)
    phases: list[tuple[str, float]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    broken: list[str] = field(default_factory=list)
    values: dict[str, float] = field(default_factory=dict)

    @property
    def data(self) -> Path:
        return self.out / "data"

    @property
    def logs(self) -> Path:
        return self.out / "logs"

    @property
    def mapping(self) -> Path:
        return self.data / "mapping.yaml"

    def add(self, key: str, name: str, value: str, target: str = "-",
            met: bool | None = None) -> None:
        self.lines.append(Line(key, name, value, target, met))

    def importer(self, label: str, source: Path, rows: int, *flags: str) -> tuple[Run, Path]:
        """``python -m importer run`` exactly as a user types it, with a results file."""
        results = self.data / f"{label.replace(' ', '_')}.results.csv"
        for leftover in results.parent.glob(results.name + "*"):
            leftover.unlink()
        argv = [PYTHON, "-m", "importer", "run", str(source), "--mapping", str(self.mapping),
                "--quiet", "--results", str(results), *flags]
        run = run_measured(label, argv, self.logs, rows)
        self.runs.append(run)
        return run, results

    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[None]:
        """Time a phase; a failure inside it is recorded and the next phase still runs."""
        started = time.perf_counter()
        try:
            yield
        except Broken as exc:
            self.broken.append(str(exc))
        except Exception:
            self.broken.append(f"{name}: crashed:\n{traceback.format_exc()}")
        finally:
            self.phases.append((name, time.perf_counter() - started))


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


# ---------------------------------------------------------------------------- report


def machine() -> list[str]:
    """What the numbers were measured on, and how busy the machine was at the start."""
    model = "unknown CPU"
    with contextlib.suppress(OSError), open("/proc/cpuinfo", encoding="utf-8") as f:
        model = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")),
                     model)
    ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return [
        f"machine   {model}, {os.cpu_count()} cores, {ram:.1f} GiB RAM, "
        f"{platform.system()} {platform.release()} {platform.machine()}; load at start {load}",
        f"python    {platform.python_version()} ({PYTHON})",
        f"importer  {importer_version()}",
        f"date      {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M UTC}",
    ]


def importer_version() -> str:
    """The version and commit measured, flagging uncommitted changes under importer/ (read-only
    git: another person may be editing the code while this runs)."""
    try:
        from importer import __version__
    except ImportError:
        __version__ = "?"

    def git(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["git", "--no-optional-locks", *args], cwd=REPO, text=True,
                              capture_output=True, check=False)

    try:
        commit = git("rev-parse", "--short", "HEAD").stdout.strip()
        dirty = git("diff", "--quiet", "HEAD", "--", "importer").returncode == 1
    except OSError:
        return f"routera-import {__version__}"
    suffix = " + uncommitted changes in importer/" if dirty else ""
    return f"routera-import {__version__}, git {commit or '?'}{suffix}"


def render(bench: Bench, total: float) -> str:
    cfg = bench.config
    title = "routera-import benchmark (quick mode)" if cfg.quick else "routera-import benchmark"
    out = [title, *machine()]
    if cfg.quick:
        out.append("QUICK MODE: sizes shrunk for a CI smoke test; the numbers are NOT meaningful "
                   "for the targets (met shown as yes*/no*)")
    out += ["", *_table(["id", "measurement", "value", "target", "met"],
                        [[ln.key, ln.name, ln.value, ln.target, _met(ln.met, cfg.quick)]
                         for ln in bench.lines], {2: WIDEST_VALUE})]
    out += ["", "processes (wall, CPU and peak RSS of each child from os.wait4; server CPU: the "
            "whole sandbox process; server answers from GET /__stats)"]
    out += _table(["run", "rows", "wall s", "rows/s", "CPU s", "peak RSS MB", "exit",
                   "server CPU s", "server answers"], [_run_cells(r) for r in bench.runs])
    phases = ", ".join(f"{name} {seconds:.1f} s" for name, seconds in bench.phases)
    out += ["", f"phases    {phases}", f"total     {total:.1f} s"]
    out += [f"note      {note}" for note in bench.notes]
    out += [f"BROKEN    {problem}" for problem in bench.broken]
    return "\n".join(out) + "\n"


def _met(met: bool | None, quick: bool) -> str:
    if met is None:
        return "-"
    return ("yes" if met else "no") + ("*" if quick else "")


def _run_cells(run: Run) -> list[str]:
    answers = " ".join(f"{k}:{v}" for k, v in sorted(run.server.items()))
    return [run.label, f"{run.rows:,}", f"{run.wall:.2f}",
            f"{run.rate:,.0f}" if run.rows else "-", f"{run.cpu:.2f}", f"{run.max_rss_mb:.1f}",
            str(run.exit_code), "-" if run.server_cpu is None else f"{run.server_cpu:.2f}",
            answers or "-"]


def _table(header: list[str], rows: list[list[str]],
           limits: dict[int, int] | None = None) -> list[str]:
    """Columns padded to their widest cell; the last column is left ragged. A cell longer than
    its column's limit (a sentence saying why a value is missing) overflows instead of
    widening the whole column."""
    limits = limits or {}
    widths = [max(len(r[i]) for r in [header, *rows] if len(r[i]) <= limits.get(i, 1000))
              for i in range(len(header) - 1)]
    return ["  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=False)) + "  " + r[-1]
            for r in [header, *rows]]


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
