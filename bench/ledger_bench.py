"""Benchmark the import ledger: a cumulative export whose rows are mostly imported already.

The issue's target: a 1,000,000-row export of which 990,000 rows are in the ledger finishes in
about the time of a dry run plus 10,000 requests; deciding from the ledger costs less per row
than the dry run does. Measured from the outside, as ``bench.py`` does: each importer and
sandbox is its own process, times are wall-clock around the process, request counts come from
the server (``GET /__stats``). Side by side:

1. the dry run of the whole export (reading, mapping, validating, writing results);
2. the run with the ledger (990,000 rows answered by it, 10,000 sent);
3. the 10,000 new rows alone, sent without a ledger (the "plus 10,000 requests");
4. without the ledger: every row is sent and the known ones answered 409; measured on a slice
   and extrapolated to the whole export (sending 990,000 rows for real would take hours).

The ledger is filled beforehand exactly as runs would have filled it (the same mapping, the
same fingerprints), straight into the store. ``--postgres`` also runs (2) with the ledger in a
throwaway PostgreSQL server started from the machine's binaries. Timings are reported, never
asserted. Usage: python bench/ledger_bench.py [--quick] [--postgres] [--out DIR]
"""

import argparse
import shutil
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(1, str(BENCH_DIR.parent))  # after bench/ itself: `bench` is bench/bench.py

from bench import (  # noqa: E402 (bench/bench.py, beside this file)
    MAPPING,
    PYTHON,
    TOKEN,
    SandboxProcess,
    contact_rows,
    run_measured,
    write_csvs,
)
from importer.ledger import destination, open_store  # noqa: E402
from importer.ledger.fingerprints import field_prints, fields_print, key_values  # noqa: E402
from importer.ledger.store import CREATED, Entry  # noqa: E402
from importer.mapping.binding import MappedBatch, bind  # noqa: E402
from importer.mapping.spec import load_mapping  # noqa: E402
from importer.readers import ReadOptions, open_table  # noqa: E402
from importer.rows.validation import Validator  # noqa: E402

FILL_BATCH = 20_000
CONCURRENCY = "16"


@dataclass(frozen=True)
class Sizes:
    rows: int
    known: int
    slice: int

    @property
    def new(self) -> int:
        return self.rows - self.known


@dataclass
class Folders:
    """What ``SandboxProcess`` needs of bench.py's ``Bench``: where data and logs go."""

    data: Path
    logs: Path


def mapped_batches(source: Path, mapping: Path) -> Iterator[MappedBatch]:
    """The export's batches as a run maps and validates them."""
    spec = load_mapping(mapping)
    table = open_table(source, ReadOptions().with_defaults(spec.sheet, spec.header_row))
    bound, _ = bind(spec, table)
    validator = Validator(spec.required_any, {})
    for batch in table.batches():
        mapped = bound.apply(batch)
        validator.check(mapped)
        yield mapped


def fill(location: str, endpoint: str, source: Path, mapping: Path, known: int) -> float:
    """Record the first ``known`` rows as an earlier night's run would have; returns seconds."""
    started = time.perf_counter()
    store = open_store(location)
    where = destination(endpoint, TOKEN)
    number = store.destination_number(where.endpoint, where.token_print, where.digest,
                                      create=True)
    assert number is not None
    pending: list[Entry] = []
    for mapped in mapped_batches(source, mapping):
        for index, row in enumerate(mapped.rows):
            if row - 1 > known or index in mapped.problems:
                continue
            fields = mapped.fields(index)
            pending.append(Entry(key_values(fields), fields_print(fields), field_prints(fields),
                                 f"earlier-{row}", CREATED, "2026-11-20T02:30:00Z",
                                 "contacts-2026-11-20.csv", row))
            if len(pending) >= FILL_BATCH:
                store.record(number, pending)
                pending = []
    store.record(number, pending)
    store.close()
    return time.perf_counter() - started


def importer(folders: Folders, label: str, source: Path, mapping: Path,
             *flags: str) -> tuple[float, str]:
    """One importer process; its wall time and its summary, or a BROKEN line."""
    results = folders.data / f"{label}.results.csv"
    argv = [PYTHON, "-m", "importer", "run", str(source), "--mapping", str(mapping), "--quiet",
            "--results", str(results), *flags]
    run = run_measured(label, argv, folders.logs)
    if run.exit_code != 0:
        raise SystemExit(f"BROKEN: {label} exited {run.exit_code}: {run.stderr[-500:]}")
    return run.wall, run.stdout


def sandbox_run(folders: Folders, label: str, source: Path, mapping: Path,
                *flags: str) -> tuple[float, dict[str, int], SandboxProcess]:
    api = SandboxProcess(label, folders)  # type: ignore[arg-type]
    api.__enter__()
    wall, _ = importer(folders, label, source, mapping, "--api-url", api.url,
                       "--concurrency", CONCURRENCY, *flags)
    return wall, api.stats(), api


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="20,000 rows (a smoke test)")
    parser.add_argument("--postgres", action="store_true",
                        help="also measure the ledger in a throwaway PostgreSQL server")
    parser.add_argument("--out", type=Path, default=BENCH_DIR / "out" / "ledger")
    args = parser.parse_args(argv)
    sizes = Sizes(20_000, 19_800, 2_000) if args.quick else Sizes(1_000_000, 990_000, 10_000)
    folders = fresh_folders(args.out)
    with ExitStack() as stack:
        lines = measure(sizes, folders, stack, args.postgres)
    report(args.out, folders, lines)
    return 0


def fresh_folders(out: Path) -> Folders:
    """Empty data and log folders under ``out``."""
    folders = Folders(out / "data", out / "logs")
    for folder in (folders.data, folders.logs):
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
    return folders


def report(out: Path, folders: Folders, lines: list[tuple[str, str]]) -> None:
    """Print the lines as a table, keep it in ``out/report.txt``, delete the data."""
    width = max(len(name) for name, _ in lines)
    text = "\n".join(f"{name:<{width}}  {value}" for name, value in lines) + "\n"
    print(text, end="")
    (out / "report.txt").write_text(text, encoding="utf-8")
    shutil.rmtree(folders.data, ignore_errors=True)


def throwaway_postgres(stack: ExitStack, name: str) -> str:
    """A database ``name`` in a PostgreSQL server that lives as long as ``stack``."""
    import psycopg

    from tests.postgres_server import running_postgres

    base = stack.enter_context(running_postgres())
    with psycopg.connect(f"{base}/postgres", autocommit=True) as db:
        db.execute(f"CREATE DATABASE {name}")
    return f"{base}/{name}"


def measure(sizes: Sizes, folders: Folders, stack: ExitStack,
            postgres: bool) -> list[tuple[str, str]]:
    data = folders.data
    mapping = data / "mapping.yaml"
    mapping.write_text(MAPPING, encoding="utf-8")
    export, new, part = data / "all.csv", data / "new.csv", data / "slice.csv"
    write_csvs(contact_rows(sizes.rows), {sizes.rows: export})
    rows = list(contact_rows(sizes.rows))
    write_csvs(iter(rows[sizes.known:]), {sizes.new: new})
    write_csvs(iter(rows[:sizes.slice]), {sizes.slice: part})
    del rows
    lines: list[tuple[str, str]] = [("rows in the export / already in the ledger",
                                     f"{sizes.rows:,} / {sizes.known:,}")]

    dry, _ = importer(folders, "dry-run", export, mapping, "--dry-run")
    lines.append(("dry run, no ledger", _timing(dry, sizes.rows)))

    alone, stats, api = sandbox_run(folders, "new-rows-alone", new, mapping, "--ledger",
                                     str(data / "empty.sqlite3"))
    stack.callback(api.__exit__)
    lines.append((f"the {sizes.new:,} new rows alone (no ledger)",
                   f"{alone:.1f} s, server answered {stats}"))

    ledger_db = str(data / "ledger.sqlite3")
    target = SandboxProcess("with-ledger", folders)  # type: ignore[arg-type]
    target.__enter__()
    stack.callback(target.__exit__)
    seconds = fill(ledger_db, f"{target.url}/contacts", export, mapping, sizes.known)
    lines.append(("filling the SQLite ledger (setup, not part of a run)", f"{seconds:.1f} s"))
    ledger_wall, _ = importer(folders, "with-ledger", export, mapping, "--api-url", target.url,
                              "--concurrency", CONCURRENCY, "--ledger", ledger_db)
    lines += _ledger_lines("SQLite", ledger_wall, target.stats(), dry, alone, sizes)

    if postgres:
        lines += _postgres(folders, export, mapping, sizes, dry, alone, stack)

    lines += _without_ledger(folders, part, mapping, sizes, alone, stack)
    return lines


def _ledger_lines(kind: str, wall: float, stats: dict[str, int], dry: float, alone: float,
                  sizes: Sizes) -> list[tuple[str, str]]:
    decided = max(wall - dry - alone, 0.0)
    return [
        (f"with the {kind} ledger", f"{_timing(wall, sizes.rows)}; server answered {stats}"),
        ("  / (dry run + new rows alone)", f"{wall / (dry + alone):.2f}x  (target: about 1)"),
        ("  ledger cost per row (wall - dry - alone) / rows",
         f"{decided / sizes.rows * 1e6:.1f} us  vs dry run {dry / sizes.rows * 1e6:.1f} us/row "
         "(target: less)"),
    ]


def _postgres(folders: Folders, export: Path, mapping: Path, sizes: Sizes, dry: float,
              alone: float, stack: ExitStack) -> list[tuple[str, str]]:
    url = throwaway_postgres(stack, "ledger_bench")
    target = SandboxProcess("with-postgres-ledger", folders)  # type: ignore[arg-type]
    target.__enter__()
    stack.callback(target.__exit__)
    seconds = fill(url, f"{target.url}/contacts", export, mapping, sizes.known)
    wall, _ = importer(folders, "with-postgres-ledger", export, mapping, "--api-url",
                       target.url, "--concurrency", CONCURRENCY, "--ledger", url)
    return [("filling the PostgreSQL ledger (setup)", f"{seconds:.1f} s"),
            *_ledger_lines("PostgreSQL", wall, target.stats(), dry, alone, sizes)]


def _without_ledger(folders: Folders, part: Path, mapping: Path, sizes: Sizes, alone: float,
                    stack: ExitStack) -> list[tuple[str, str]]:
    """The slice is created once, then sent again with --no-ledger: every row answered 409."""
    api = SandboxProcess("without-ledger", folders)  # type: ignore[arg-type]
    api.__enter__()
    stack.callback(api.__exit__)
    scratch = str(folders.data / "scratch.sqlite3")
    importer(folders, "slice-first", part, mapping, "--api-url", api.url, "--concurrency",
             CONCURRENCY, "--ledger", scratch)
    wall, _ = importer(folders, "slice-again", part, mapping, "--api-url", api.url,
                       "--concurrency", CONCURRENCY, "--ledger", scratch, "--no-ledger")
    rate = sizes.slice / wall
    whole = sizes.known / rate + alone
    stats = api.stats()
    return [(f"without the ledger: {sizes.slice:,} known rows sent again",
             f"{wall:.1f} s, {rate:,.0f} rows/s; server answered {stats} (the second run's "
             f"201s: keyless rows created twice)"),
            ("  the whole export without the ledger (extrapolated)",
             f"{whole:,.0f} s ({whole / 3600:.1f} h)")]


def _timing(wall: float, rows: int) -> str:
    return f"{wall:.1f} s, {rows / wall:,.0f} rows/s"


if __name__ == "__main__":
    raise SystemExit(main())
