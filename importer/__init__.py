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

from typing import TYPE_CHECKING as _TYPE_CHECKING

if _TYPE_CHECKING:
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

_HOMES = {
    "importer.errors": ("ConfigError", "ImporterError", "InputError", "LedgerError",
                        "LockedError", "MappingError", "ResumeError"),
    "importer.results.frame": ("results_frame",),
    "importer.rows.outcomes": ("Status",),
    "importer.runs.records": ("import_frame", "import_rows"),
    "importer.runs.reporting": ("Progress", "RunStart"),
    "importer.runs.runner": ("RunOptions", "run_import"),
    "importer.runs.stopping": ("Stop",),
    "importer.runs.summary": ("RunSummary",),
}
_HOME_OF = {name: module for module, names in _HOMES.items() for name in names}


def __getattr__(name: str) -> object:
    """Public names load on first use, so the console script can watch signals before numpy,
    requests and the readers are imported (see ``importer._entry``)."""
    module = _HOME_OF.get(name)
    if module is None:
        raise AttributeError(f"module 'importer' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_HOME_OF))


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
