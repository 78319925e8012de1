"""Opening the files a run writes: never through a link, never over a stranger's file.

A nightly job often runs as root in a shared folder. If the results, errors, journal or lock
path is a symbolic link, following it would let whoever planted the link have us truncate and
chmod any file on the machine, so such a path is refused, and every open adds ``O_NOFOLLOW``
(where the platform has it) to close the gap between that check and the open. Temporary files
are created afresh with ``O_EXCL``, which never follows a link, and then renamed over the
target, which replaces a link instead of writing through it.

A path that already holds a file is replaced only when the file is one this tool wrote (its
header says so) or is empty: ``--results other.csv`` must not silently destroy an unrelated
spreadsheet. ``--overwrite`` says the person means it.

The files hold personal data, so they are readable by their owner only where the platform has
POSIX permissions; on Windows they inherit the folder's access rules (a user's own folders are
private to that user by default).
"""

import contextlib
import csv
import errno
import io
import json
import os
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

from importer.errors import ConfigError

NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
BINARY = getattr(os, "O_BINARY", 0)
HEAD_BYTES = 8192
SYNC_EVERY = 1.0
"""Seconds between fsyncs of a file written row by row (results, journal): a power cut loses
at most this much, and the disk is not asked to flush for every row."""
Recognise = Callable[[Path], bool]
LOCKS_UNSUPPORTED = (errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOLCK)
"""What a file system that cannot lock (some network shares) answers to a lock request."""


def named_format(path: Path, option: str, formats: tuple[str, ...]) -> str:
    """The file's format from its suffix, or one line naming the option and the known suffixes."""
    suffix = path.suffix.lower()
    if suffix not in formats:
        raise ConfigError(f"{option} {path}: unknown format {suffix or '(none)'}; end the name "
                          f"with {', '.join(formats)}")
    return suffix


def refuse_link(path: Path, what: str) -> None:
    """One clear line instead of writing through a symbolic link."""
    if path.is_symlink():
        raise ConfigError(f"{what} {path}: is a symbolic link; refusing to write through it "
                          "(it could point at any file); give the real path or remove the link")


def refuse_stranger(path: Path, what: str, kind: str, ours: Recognise, overwrite: bool) -> None:
    """Refuse to replace an existing file this tool did not write, unless ``overwrite``.

    ``what`` names the option (``--results``), ``kind`` the file (``results``)."""
    refuse_link(path, what)
    if not path.exists():
        return
    if path.is_dir():
        raise ConfigError(f"{what} {path}: is a folder; give a file path")
    if overwrite or path.stat().st_size == 0 or ours(path):
        return
    raise ConfigError(f"{what} {path}: already exists and is not a routera-import {kind} "
                      "file; choose another path, or pass --overwrite to replace it")


def open_private(path: Path, flags: int) -> int:
    """``os.open`` that never follows a link and leaves the file readable by its owner only
    (also when the file existed before with wider permissions)."""
    fd = os.open(path, flags | NOFOLLOW | BINARY, 0o600)
    try:
        make_private(fd)
    except OSError:
        os.close(fd)
        raise
    return fd


def create_fresh(path: Path) -> int:
    """A new, empty, owner-only file for writing (a temporary to be renamed over a target):
    whatever was at the path before, a link included, is removed, never written through."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | NOFOLLOW | BINARY, 0o600)
    make_private(fd)
    return fd


@contextlib.contextmanager
def written_whole(path: Path, temporary: Path | None = None) -> Iterator[BinaryIO]:
    """Write ``path`` whole or not at all: into a fresh owner-only temporary beside it
    (``.<name>.partial`` unless given), flushed to disk, then renamed over ``path``. A reader
    never sees half a file, a failure leaves ``path`` as it was, and a link at either path is
    replaced, never written through."""
    temporary = temporary or partial_path(path)
    with open(create_fresh(temporary), "wb") as stream:
        yield stream
        stream.flush()
        os.fsync(stream.fileno())
    os.replace(temporary, path)


def sync_folder(path: Path) -> None:
    """Make a rename or a new file in ``path``'s folder survive a power cut."""
    try:
        fd = os.open(path.parent, os.O_RDONLY)
    except OSError:
        return
    try:
        with contextlib.suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)


def partial_path(path: Path) -> Path:
    """The temporary sibling a file is written into before it replaces ``path``."""
    return path.with_name(f".{path.name}.partial")


class SyncClock:
    """Says when a file written row by row is due an fsync: at most every ``SYNC_EVERY``."""

    def __init__(self) -> None:
        self._last = time.monotonic()

    def due(self) -> bool:
        now = time.monotonic()
        if now - self._last < SYNC_EVERY:
            return False
        self._last = now
        return True


def make_private(fd: int) -> None:
    """Owner read/write only, where the platform has POSIX permissions (not on Windows)."""
    if hasattr(os, "fchmod"):
        os.fchmod(fd, 0o600)


def is_link_error(exc: OSError) -> bool:
    """``O_NOFOLLOW`` met a link that appeared after the check (ELOOP, or EMLINK on BSDs)."""
    return exc.errno in (errno.ELOOP, errno.EMLINK)


def first_row(path: Path) -> list[str]:
    """The first non-empty row of a CSV or JSON Lines file we may have written (for
    recognising it); an unreadable or binary file gives an empty row."""
    try:
        with path.open("rb") as stream:
            head = stream.read(HEAD_BYTES)
        text = head.decode("utf-8-sig", errors="replace")  # the read may end mid-character
    except OSError:
        return []
    for line in io.StringIO(text, newline=""):
        if line.strip():
            if line.lstrip().startswith("{"):
                return _json_keys(line)
            return next(csv.reader([line]), [])
    return []


def xlsx_first_row(path: Path, sheet: str | None = None) -> list[str]:
    """The first non-empty row of a workbook's sheet (the first sheet unless named)."""
    try:
        from openpyxl import load_workbook

        book = load_workbook(path, read_only=True)
        try:
            if sheet is not None and sheet not in book.sheetnames:
                return []
            rows = book[sheet or book.sheetnames[0]].iter_rows(values_only=True, max_row=64)
            for row in rows:
                cells = ["" if v is None else str(v) for v in row]
                if any(cells):
                    return cells
        finally:
            book.close()
    except Exception:  # a damaged or foreign file is simply not ours
        return []
    return []


def _json_keys(line: str) -> list[str]:
    try:
        record = json.loads(line)
    except ValueError:
        return []
    return list(record) if isinstance(record, dict) else []


def descriptor_locks() -> tuple[Callable[..., bool], Callable[[int], None]]:
    """filelock's descriptor lock and unlock (``flock`` on POSIX, ``LockFileEx`` on Windows),
    imported when first needed: the import costs about 45 ms, which ``import importer`` and the
    CLI's argument errors need not pay. Both kinds of lock end with the process that holds them,
    so a run killed with SIGKILL never leaves one behind."""
    with warnings.catch_warnings():
        # A POSIX Python without fcntl (WASI, Emscripten) makes filelock warn about its soft-lock
        # fallback, which is not used here: callers say what happens instead.
        warnings.simplefilter("ignore", UserWarning)
        from filelock import lock_descriptor, unlock_descriptor
    return lock_descriptor, unlock_descriptor
