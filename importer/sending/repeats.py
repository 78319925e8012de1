"""Rows that repeat an earlier row's key wait for that row's outcome before giving up.

In-file duplicates are found before sending, so results never depend on timing. But if the
earlier row then fails or is rejected, its later repeat (often the corrected copy) must not be
dropped as a "duplicate" of a record that does not exist: it is sent in its place. A repeat of
a row still in flight waits for it; the worker that finishes the earlier row settles or sends
its followers, in row order.
"""

import threading
from dataclasses import dataclass, field
from typing import Any

from importer.rows.outcomes import Status

SUCCESS = frozenset({Status.CREATED, Status.DUPLICATE})


@dataclass
class Followers:
    """Which sent rows are in flight or came to nothing, and who is waiting for whom."""

    _in_flight: set[int] = field(default_factory=set)
    _unsuccessful: set[int] = field(default_factory=set)
    _leader: dict[int, int] = field(default_factory=dict)
    _waiting: dict[int, list[Any]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def sending(self, row: int) -> None:
        with self._lock:
            self._in_flight.add(row)

    def follow(self, earlier: int, row: int, job: Any) -> str:
        """``"send"``, ``"duplicate"`` or ``"waiting"`` for a row repeating row ``earlier``."""
        with self._lock:
            leader = self._leader.get(earlier, earlier)
            if leader in self._in_flight:
                self._waiting.setdefault(leader, []).append(job)
                return "waiting"
            if leader in self._unsuccessful:
                self._leader[earlier] = row
                self._in_flight.add(row)
                return "send"
            return "duplicate"

    def promote(self, first: Any, rest: list[Any]) -> None:
        """``first`` is sent in place of the row it repeated; ``rest`` now wait for it."""
        with self._lock:
            assert first.repeats is not None
            self._leader[first.repeats.earlier] = first.row
            self._in_flight.add(first.row)
            self._waiting.setdefault(first.row, []).extend(rest)

    def finished(self, row: int, status: Status) -> tuple[bool, list[Any]]:
        """Whether ``row`` ended successfully, and the rows that were waiting for it."""
        with self._lock:
            self._in_flight.discard(row)
            if status not in SUCCESS:
                self._unsuccessful.add(row)
            return status in SUCCESS, self._waiting.pop(row, [])
