"""One run per results file at a time.

The lock is an ``flock`` on ``<results>.lock``: the kernel releases it when the process dies,
so a run killed with SIGKILL never leaves a stale lock behind that blocks the next night. The
file itself stays (deleting it would let two runs lock two different files of the same name).
"""

import fcntl
import os
from pathlib import Path
from types import TracebackType

from importer.errors import LockedError


class ResultsLock:
    """Held for the whole run; a second run on the same results file is refused at once."""

    def __init__(self, results: Path) -> None:
        self.path = results.with_name(results.name + ".lock")
        self._fd: int | None = None

    def __enter__(self) -> "ResultsLock":
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            holder = os.read(fd, 64).decode(errors="replace").strip() or "another process"
            os.close(fd)
            raise LockedError(f"{self.path.with_suffix('')}: another run (pid {holder}) is "
                              "writing these results right now; wait for it to finish or "
                              "use a different --results path") from exc
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._fd = fd
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
