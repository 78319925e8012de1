"""The import ledger: which records this tool created or found existing, per destination.

Journal and ledger are two layers with one direction between them, not two truths:

- The **journal** (``<results>.journal``) is the per-run crash record. It is written before a
  request leaves and when its answer comes back, and it alone decides ``--resume`` and
  everything about rows of the same results file. It may hold rows whose outcome is unknown.
- The **ledger** holds only settled facts: a 201 (the record was created, with its id) or a
  409 (a record with the row's key exists). It receives them after the journal has them, and is
  consulted before a row is queued, for rows the journal of this results file does not settle.

- **Claims** are the ledger's one write before a request leaves: a keyless row is claimed so
  that no other run, on any host, sends it at the same time. A claim is not an outcome; it
  ends with the row's outcome in one transaction, and a dead run's claims become
  outcome-unknown facts (see ``store.Claim``).

Which wins: for a row of the same results file, the journal (a resumed row keeps its journal
outcome). For every other row, the ledger: a row it holds is not sent. The ledger is written in
batches a fraction of a second after the journal; if a run dies in between, the next
``--resume`` of that results file hands the journal's settled outcomes to the ledger again, so
nothing is lost from it. ``--no-ledger`` stops consulting it (every row is sent), but what the
run creates is still recorded, so the ledger stays true after records deleted in the CRM are
created again.

Stores: a SQLite file in the user's state folder by default (``sqlite``), or PostgreSQL for
runs on several hosts (``postgres``, the ``routera-import[postgres]`` extra).
"""

import os
from collections.abc import Mapping
from pathlib import Path

from importer.ledger.fingerprints import Destination, destination
from importer.ledger.ledger import LedgerCounts, RunLedger
from importer.ledger.store import DestinationInfo, LedgerError, LedgerStore, Selection

LEDGER_ENV = "ROUTERA_LEDGER"
APP_NAME = "routera-import"
POSTGRES_SCHEMES = ("postgresql://", "postgres://")

__all__ = [
    "LEDGER_ENV",
    "Destination",
    "DestinationInfo",
    "LedgerCounts",
    "LedgerError",
    "LedgerStore",
    "RunLedger",
    "Selection",
    "default_location",
    "destination",
    "open_store",
]


def default_location(environ: Mapping[str, str] | None = None) -> str:
    """``$ROUTERA_LEDGER``, else ``ledger.sqlite3`` in the user's state folder."""
    environ = os.environ if environ is None else environ
    configured = environ.get(LEDGER_ENV, "").strip()
    if configured:
        return configured
    import platformdirs

    return str(platformdirs.user_state_path(APP_NAME, appauthor=False) / "ledger.sqlite3")


def open_store(location: str) -> LedgerStore:
    """The store at ``location``: a ``postgresql://`` URL or a SQLite file path."""
    if location.startswith(POSTGRES_SCHEMES):
        from importer.ledger.postgres import PostgresStore

        return PostgresStore(location)
    from importer.ledger.sqlite import SqliteStore

    return SqliteStore(Path(location).expanduser())
