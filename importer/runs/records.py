"""Imports whose input is data in memory: ``import_rows`` for any iterable of dicts and
``import_frame`` for a pandas DataFrame.

Both go through the very pipeline a file does (mapping, validation, journal and resume, results,
exit code); only the reading differs (``importer.readers.records``). Row numbers are what a
spreadsheet of the data would show: the column names are row 1, the first record is row 2, so
the record at position ``i`` (0-based) is row ``i + 2`` in the results.
"""

import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import requests

from importer.errors import ConfigError
from importer.mapping.binding import BoundMapping
from importer.mapping.spec import load_mapping
from importer.readers.records import RecordSpool, record_values
from importer.readers.table import column_letter
from importer.runs.reporting import Progress, RunStart
from importer.runs.runner import RunHooks, RunOptions, run_table
from importer.runs.summary import RunSummary

if TYPE_CHECKING:
    import pandas as pd

FILE_ONLY = frozenset({"input", "sheet", "header_row", "encoding", "delimiter"})


def import_rows(
    rows: Iterable[Mapping[str, object]],
    *,
    mapping: str | Path,
    results: str | Path,
    columns: Sequence[str] | None = None,
    name: str = "rows",
    stop: threading.Event | None = None,
    on_progress: Callable[[Progress], None] | None = None,
    session: requests.Session | None = None,
    environ: Mapping[str, str] | None = None,
    on_start: Callable[[RunStart], None] | None = None,
    **settings: Any,
) -> RunSummary:
    """Import records given as dicts of column name to value, with a file's guarantees.

    The column names are ``columns``, or the first record's keys; a later record with another
    key stops the import (nothing is guessed), a missing key is an empty cell. ``settings`` are
    any other ``RunOptions`` fields (``dry_run``, ``sandbox``, ``api_url``, ``resume``, ...).
    ``rows`` is read once, so a generator or a database cursor is fine.
    """
    options = _options(name, mapping, results, settings)
    headers, values = record_values(rows, columns)
    hooks = RunHooks(stop, on_progress, session, environ, on_start)
    return _import(options, headers, values, "records in memory", hooks)


def import_frame(
    frame: "pd.DataFrame",
    *,
    mapping: str | Path,
    results: str | Path,
    name: str = "DataFrame",
    stop: threading.Event | None = None,
    on_progress: Callable[[Progress], None] | None = None,
    session: requests.Session | None = None,
    environ: Mapping[str, str] | None = None,
    on_start: Callable[[RunStart], None] | None = None,
    **settings: Any,
) -> RunSummary:
    """Import a pandas DataFrame's rows (its index is not sent), with a file's guarantees.

    Column names are the headers the mapping refers to. Values follow the strict rules of
    ``importer.readers.records``: missing values are empty cells, never ``nan``.
    """
    options = _options(name, mapping, results, settings)
    headers = [str(column) for column in frame.columns]
    values: Iterator[Sequence[object]] = frame.itertuples(index=False, name=None)
    hooks = RunHooks(stop, on_progress, session, environ, on_start)
    return _import(options, headers, values, "a pandas DataFrame", hooks)


def _options(name: str, mapping: str | Path, results: str | Path,
             settings: dict[str, Any]) -> RunOptions:
    refused = sorted(FILE_ONLY & settings.keys())
    if refused:
        raise ConfigError(f"{refused[0]} applies only to files; rows in memory have their "
                          "column names as headers")
    return RunOptions(input=Path(name), mapping=Path(mapping), results=Path(results), **settings)


def _import(options: RunOptions, headers: list[str], values: Iterable[Sequence[object]],
            detail: str, hooks: RunHooks) -> RunSummary:
    """Bind the mapping to the headers before reading a single row, so a mapping that does not
    fit fails at once; then spool the rows (taking their digest) and run them as a table."""
    started = datetime.now(UTC)
    mapping = load_mapping(options.mapping)
    bound = BoundMapping(mapping, headers, column_letter, options.input.name)
    spool = RecordSpool(headers, values, lambda column: bound.fields_of.get(column, []))
    table = spool.table(options.input.name, detail)
    return run_table(options, mapping, table, lambda: spool.digest, started=started,
                     hooks=hooks)
