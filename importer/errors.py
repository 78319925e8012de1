"""Failures that stop a whole run.

Problems with a single row are data (see ``problems``), never exceptions. These exceptions are
for the cases where nothing sensible can be sent: the message is one complete line, naming the
file, row or key and what to do, because the CLI prints it as it is.
"""


class ImporterError(Exception):
    """A failure that stops the run before anything is sent; the CLI reports it with exit code 2."""


class InputError(ImporterError):
    """The input file cannot be read as a table of rows."""


class MappingError(ImporterError):
    """The mapping file is malformed, or does not fit the input's headers."""


class ConfigError(ImporterError):
    """An argument or environment setting cannot be used (bad URL, missing token, bad path)."""


class ResumeError(ImporterError):
    """Earlier results cannot be continued safely (changed input, damaged journal)."""


class LockedError(ImporterError):
    """Another run is writing the same results file right now."""


class LedgerError(ImporterError):
    """The import ledger cannot be opened, read or written (a bad path, an unreachable
    database). Before sending it refuses the run; during a run it stops it instead."""
