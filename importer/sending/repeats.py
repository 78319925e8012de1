"""The sending state of each key, owned by one object: who carries it, and who waits for whom.

In-file duplicates are found before sending (``rows.validation``), so results never depend on
timing: a later row that repeats an earlier row's email, external_id or website_url is a
*repeat* of that key. If the row carrying the key succeeds (``created`` or ``duplicate``),
its repeats are duplicates of it. If it comes to nothing (rejected, failed, skipped), its
first repeat (often the corrected copy) is sent in its place and becomes the key's carrier;
the other repeats wait for that one, and so on.

A key is named by the first row that had it and the field (``(earlier, field)``), which is
exactly what the validator reports for a repeat. A substitute settles only the repeats of the
key it was sent for: a row repeating another key of the rejected row is sent on its own, and
the API's 409 decides if the two keys meet on the server.

Each key moves through one small state machine, under one lock:

    (no state) --first repeat arrives--> CARRIED (carrier in flight, repeats wait)
    CARRIED --carrier succeeds--> SETTLED (later repeats: duplicates of the carrier)
    CARRIED --carrier fails--> CARRIED by the first waiting repeat, or OPEN when none waits
    OPEN --next repeat arrives--> CARRIED by that repeat (it is sent)

Memory: only rows with a key can carry one, and a row is remembered only while in flight or
when it failed outside a stopped run (a stopped run skips every repeat anyway), so a run that
fails or skips a million rows does not keep a million entries.
"""

import threading
from dataclasses import dataclass, field
from enum import Enum
from typing import Generic, TypeVar

from importer.rows.status import Status

SUCCESS = frozenset({Status.CREATED, Status.DUPLICATE})
Job = TypeVar("Job")
Key = tuple[int, str]


class Decision(Enum):
    """What to do with a repeat now."""

    SEND = "send"
    """Send it: the key's carrier came to nothing, this row now carries the key."""
    DUPLICATE = "duplicate"
    """A duplicate of ``carrier``, which succeeded."""
    WAIT = "wait"
    """Hold it: the key's carrier is in flight; ``settle`` will return it."""


@dataclass
class _KeyState(Generic[Job]):
    carrier: int
    in_flight: bool
    succeeded: bool = False
    waiting: list[tuple[int, Job]] = field(default_factory=list)


class Repeats(Generic[Job]):
    """The state of every key that has (or may get) repeats; safe for every thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._in_flight: set[int] = set()
        self._failed: set[int] = set()
        self._keys: dict[Key, _KeyState[Job]] = {}
        self._carried_by: dict[int, list[Key]] = {}

    def sending(self, row: int) -> None:
        """A row with a key goes to the API: until it settles, its repeats wait."""
        with self._lock:
            self._in_flight.add(row)

    def follow(self, row: int, key: Key, job: Job) -> tuple[Decision, int]:
        """A repeat of ``key`` arrives: the decision, and the carrier it concerns."""
        with self._lock:
            state = self._keys.get(key)
            if state is None:
                earlier = key[0]
                if earlier not in self._in_flight and earlier not in self._failed:
                    return Decision.DUPLICATE, earlier
                state = _KeyState(earlier, in_flight=earlier in self._in_flight)
                self._keys[key] = state
                if state.in_flight:
                    self._carried_by.setdefault(earlier, []).append(key)
            if state.in_flight:
                state.waiting.append((row, job))
                return Decision.WAIT, state.carrier
            if state.succeeded:
                return Decision.DUPLICATE, state.carrier
            self._carry(state, key, row)
            return Decision.SEND, row

    def settle(self, row: int, status: Status, *, keyed: bool,
               stopping: bool) -> list[tuple[Job, Decision, int]]:
        """``row`` has its final outcome: what now happens to the repeats waiting for it.

        The one place a carrier's outcome reaches its repeats, decided atomically with any
        ``follow`` racing it: a repeat is either handed back here or decided by ``follow``
        after this, never both and never neither. Only a row with a key (``keyed``) can be
        the first of a key, so only such a row is remembered when it fails.
        """
        succeeded = status in SUCCESS
        with self._lock:
            self._in_flight.discard(row)
            if not succeeded and keyed and not stopping:
                self._failed.add(row)
            actions: list[tuple[Job, Decision, int]] = []
            for key in self._carried_by.pop(row, []):
                state = self._keys[key]
                state.in_flight = False
                state.succeeded = succeeded
                waiting, state.waiting = sorted(state.waiting, key=lambda w: w[0]), []
                if succeeded:
                    actions += [(job, Decision.DUPLICATE, row) for _, job in waiting]
                    if key[0] == row:
                        del self._keys[key]
                elif waiting:
                    (first, job), *rest = waiting
                    self._carry(state, key, first)
                    state.waiting = rest
                    actions.append((job, Decision.SEND, first))
            return actions

    def _carry(self, state: _KeyState[Job], key: Key, row: int) -> None:
        state.carrier = row
        state.in_flight = True
        state.succeeded = False
        self._in_flight.add(row)
        self._carried_by.setdefault(row, []).append(key)

    def __len__(self) -> int:
        """Rows and keys remembered (for memory tests)."""
        with self._lock:
            return len(self._in_flight) + len(self._failed) + len(self._keys)
