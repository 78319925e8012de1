"""Benchmark inputs: the constants, the sizes per mode, the deterministic contact rows and the
files made of them (CSV, XLSX). Part of bench/bench.py."""

import csv
import datetime as dt
import random
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
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
