"""routera-import: load spreadsheet exports into the Routera CRM, every row exactly once.

The supported library surface is what ``__all__`` lists; every other module is private and may
change without notice. Exceptions that stop a run before anything is sent::

    ImporterError           a person must act; the CLI exits 2
    ├── InputError          the input cannot be read as a table of rows
    ├── MappingError        the mapping file is malformed or does not fit the headers
    ├── ConfigError         an argument or environment setting cannot be used
    ├── ResumeError         earlier results cannot be continued safely
    ├── LockedError         another run is writing the same results file
    └── LedgerError         the import ledger cannot be opened (during a run: the run stops)

Row problems are never exceptions: they are outcomes in the results (see ``Status``).
"""

__version__ = "0.1.0"

from importer.errors import (
    ConfigError,
    ImporterError,
    InputError,
    LedgerError,
    LockedError,
    MappingError,
    ResumeError,
)
from importer.results.frame import results_frame
from importer.rows.outcomes import Status
from importer.runs.records import import_frame, import_rows
from importer.runs.reporting import Progress, RunStart
from importer.runs.runner import RunOptions, run_import
from importer.runs.stopping import Stop
from importer.runs.summary import RunSummary

__all__ = [
    "ConfigError",
    "ImporterError",
    "InputError",
    "LedgerError",
    "LockedError",
    "MappingError",
    "Progress",
    "ResumeError",
    "RunOptions",
    "RunStart",
    "RunSummary",
    "Status",
    "Stop",
    "__version__",
    "import_frame",
    "import_rows",
    "results_frame",
    "run_import",
]
