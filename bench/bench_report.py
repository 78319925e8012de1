"""Benchmark report: what scenarios collect while they run, and the table printed side by side
with the targets. Part of bench/bench.py."""

import contextlib
import datetime as dt
import os
import platform
import subprocess
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from bench_data import (
    PYTHON,
    REPO,
    WIDEST_VALUE,
    Config,
)
from bench_processes import (
    Broken,
    Run,
    run_measured,
)

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
