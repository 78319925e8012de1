"""What ``routera-import ledger`` does: list destinations, show, export and forget entries.

The CLI only parses and renders; choosing the destination, counting before a confirmation and
writing the CSV happen here. A destination is named the way a run names it (API URL and object
with the token's fingerprint, or a sandbox database), or by its number from ``list``.
"""

import csv
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from importer.errors import ConfigError
from importer.ledger.fingerprints import ACCOUNT_ENV, destination
from importer.ledger.store import (
    EXPORT_COLUMNS,
    DestinationInfo,
    LedgerStore,
    RunInfo,
    Selection,
)
from importer.results.writer import FORMULA_PREFIXES
from importer.sending.client import DEFAULT_API_URL, Target, check_base_url
from importer.sending.destination import TOKEN_ENV, URL_ENV, sandbox_name

__all__ = ["Chosen", "LedgerView", "choose", "export_csv", "view"]


@dataclass(frozen=True)
class Chosen:
    """The destination a ``ledger`` command acts on."""

    number: int
    endpoint: str


@dataclass(frozen=True)
class LedgerView:
    """What ``ledger show`` prints: totals and the files entries came from."""

    chosen: Chosen
    entries: int
    files: list[tuple[str, int, str, str]]
    """(file, entries, first imported, last imported), most recent first."""
    runs: list[RunInfo]
    """Runs registered now: running, or dead and not reaped yet."""


def choose(store: LedgerStore, environ: Mapping[str, str], *, number: int | None,
           api_url: str | None, object_name: str, sandbox_db: Path | None) -> Chosen:
    """The destination by number, by sandbox database, or by API URL and token."""
    if number is not None:
        return _by_number(store.destinations(), number, store.location)
    if sandbox_db is not None:
        endpoint, token, account = sandbox_name(sandbox_db, object_name), "", ""
    else:
        token = environ.get(TOKEN_ENV, "").strip()
        account = environ.get(ACCOUNT_ENV, "").strip()
        if not token and not account:
            raise ConfigError(f"{TOKEN_ENV} is not set: the ledger keeps each account's entries "
                              "apart by the token's fingerprint; export it, or pick a "
                              "destination with --destination N from 'routera-import ledger "
                              "list'")
        url = check_base_url(api_url or environ.get(URL_ENV) or DEFAULT_API_URL)
        endpoint = Target(url, token, object_name).identity
    where = destination(endpoint, token, account)
    found = store.destination_number(where.endpoint, where.token_print, where.digest,
                                     create=False)
    if found is None:
        raise ConfigError(f"the ledger {store.location} holds nothing for {endpoint} with this "
                          "token; 'routera-import ledger list' shows what it holds")
    return Chosen(found, endpoint)


def _by_number(known: list[DestinationInfo], number: int, location: str) -> Chosen:
    for info in known:
        if info.number == number:
            return Chosen(info.number, info.endpoint)
    raise ConfigError(f"the ledger {location} has no destination {number}; 'routera-import "
                      "ledger list' shows its destinations")


def view(store: LedgerStore, chosen: Chosen) -> LedgerView:
    files: dict[str, list[str]] = {}
    counts: dict[str, int] = {}
    for row in store.entries(chosen.number, Selection()):
        name, when = str(row[6]), str(row[5])
        span = files.setdefault(name, [when, when])
        span[0], span[1] = min(span[0], when), max(span[1], when)
        counts[name] = counts.get(name, 0) + 1
    listed = sorted(((name, counts[name], span[0], span[1]) for name, span in files.items()),
                    key=lambda item: item[3], reverse=True)
    return LedgerView(chosen, sum(counts.values()), listed, store.runs(chosen.number))


def export_csv(store: LedgerStore, chosen: Chosen, selection: Selection, out: TextIO) -> int:
    """Write the selected entries as CSV (a header, then one line per entry); returns how many.

    Cells that Excel would run as a formula get a leading ``'``, as in the results file."""
    writer = csv.writer(out)
    writer.writerow(EXPORT_COLUMNS)
    written = 0
    for row in store.entries(chosen.number, selection):
        writer.writerow(["'" + cell if isinstance(cell, str) and cell.startswith(FORMULA_PREFIXES)
                         else cell for cell in row])
        written += 1
    return written
