"""One run per results file at a time, on Linux, macOS and Windows.

The lock is taken on ``<results>.lock`` with ``filelock.lock_descriptor``: ``flock`` on POSIX,
``LockFileEx`` on Windows. Both are released by the operating system when the process dies, so a
run killed with SIGKILL (or ended from the Task Manager) never leaves a stale lock behind that
blocks the next night. The file itself stays (deleting it would let two runs lock two different
files of the same name). We open the file ourselves, so a link planted at the lock path is never
followed, and the holder's pid can be written into it for the refusal message.

On a file system that cannot lock at all (some network shares), the run goes ahead without the
lock and says so in its summary, rather than refusing to run anywhere such a share is used.
"""

import os
from pathlib import Path
from types import TracebackType

from importer.errors import ConfigError, LockedError
from importer.results.files import (
    LOCKS_UNSUPPORTED,
    descriptor_locks,
    is_link_error,
    open_private,
    refuse_link,
)


class ResultsLock:
    """Held for the whole run; a second run on the same results file is refused at once."""

    def __init__(self, results: Path) -> None:
        self.path = results.with_name(results.name + ".lock")
        self.note = ""
        self._fd: int | None = None

    def __enter__(self) -> "ResultsLock":
        refuse_link(self.path, "lock file")
        try:
            fd = open_private(self.path, os.O_RDWR | os.O_CREAT)
        except OSError as exc:
            what = ("is a symbolic link; refusing to follow it" if is_link_error(exc)
                    else f"cannot be created ({exc.strerror or exc})")
            raise ConfigError(f"lock file {self.path}: {what}; choose another --results "
                              "folder") from exc
        lock_descriptor, _ = descriptor_locks()
        try:
            locked = lock_descriptor(fd, blocking=False)
        except OSError as exc:
            if exc.errno not in LOCKS_UNSUPPORTED:
                os.close(fd)
                raise
            self.note = (f"this file system cannot lock {self.path.name}; make sure no other "
                         "run writes the same results at the same time")
            locked = True
        if not locked:
            holder = _holder(fd)
            os.close(fd)
            raise LockedError(f"{self.path.with_suffix('')}: another run (pid {holder}) is "
                              "writing these results right now; wait for it to finish or "
                              "use a different --results path")
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, str(os.getpid()).encode())
        self._fd = fd
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        if self._fd is not None:
            if not self.note:
                descriptor_locks()[1](self._fd)
            os.close(self._fd)
            self._fd = None


def _holder(fd: int) -> str:
    """The pid the holder wrote; Windows forbids reading a locked byte, so it may be unknown."""
    try:
        return os.read(fd, 64).decode(errors="replace").strip() or "another process"
    except OSError:
        return "another process"
