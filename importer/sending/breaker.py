"""A breaker for systematic rejections: stop sending when the API refuses rows for one reason.

A mapping with a field the account does not have (``emial``, or a custom field that exists in
staging only) makes the API refuse every row with the same 400. Sending the other 49,980 rows
of the night teaches nothing and hides the problem behind a long results file, so the breaker
watches the rows the API answered (created, 409 duplicate, or rejected) and trips:

- at the start: when the first ``FIRST_ROWS`` rows answered were all rejected for the same
  reason (the same field, or the same message), none accepted;
- later: when more than ``max_rejected`` percent of the last ``WINDOW`` rows answered were
  rejected (checked from the ``MIN_ANSWERED``-th answer on).

``max_rejected`` of 100 or more turns the breaker off. Failed rows (5xx, network) are not
answers about the data and are not counted. The breaker only decides; the run stops itself.
It is fed through ``Watched``, a results sink wrapped around the writer the workers use, so the
sending code needs no knowledge of it.
"""

import json
import re
import threading
from collections import Counter, deque
from collections.abc import Callable, Collection
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Protocol

from importer.mapping.fields import did_you_mean
from importer.rows.outcomes import Outcome
from importer.rows.status import Status

FIRST_ROWS = 20
WINDOW = 200
MIN_ANSWERED = 50
DEFAULT_MAX_REJECTED = 50.0
ACCEPTED = frozenset({Status.CREATED, Status.DUPLICATE})

_QUOTED_FIELD = re.compile(r"""\bfields?\b\s*[:=]?\s*(['"`])([^'"`\s]{1,100})\1""", re.I)
_COLON_FIELD = re.compile(r"\bfields?\s*:\s*([A-Za-z_][\w.-]{0,99})", re.I)
_UNKNOWN = re.compile(r"unknown|not found|no such|does not exist|doesn't exist|not exist"
                      r"|unrecogni[sz]ed|not a (?:known|valid) field|not allowed|undefined",
                      re.I)
_FORBIDDEN = re.compile(r"set by the server|read[- ]?only|forbidden|cannot be (?:written|set)"
                        r"|not writable|system field|immutable", re.I)
_NUMBERS = re.compile(r"\d+")


class Kind(StrEnum):
    """What a rejection says about the mapping."""

    UNKNOWN_FIELD = "unknown field"
    FORBIDDEN_FIELD = "forbidden field"
    INVALID_FIELD = "invalid value"
    OTHER = "other"


@dataclass(frozen=True)
class Reason:
    """Why the API rejected a row, reduced to what repeats from row to row."""

    kind: Kind
    field: str | None
    message: str

    @property
    def key(self) -> tuple[str, str]:
        """Rows rejected for the same field (or, with no field named, with the same message
        apart from numbers) share a key."""
        if self.field is not None:
            return (self.kind, self.field)
        return (self.kind, _NUMBERS.sub("#", self.message.casefold()))


def reason_of(message: str) -> Reason:
    """Read the field and the kind of problem out of an API's rejection message.

    The contract does not fix the wording, so this looks for the common shapes: ``unknown
    field 'emial'``, ``field "id" is read-only``, ``Field: phone ...``, and a JSON object with
    one key per field (``{"emial": ["Unknown field."]}``).
    """
    text = message.strip()
    field = _field_in(text)
    if field is None:
        return Reason(Kind.OTHER, None, text)
    if _FORBIDDEN.search(text):
        return Reason(Kind.FORBIDDEN_FIELD, field, text)
    if _UNKNOWN.search(text):
        return Reason(Kind.UNKNOWN_FIELD, field, text)
    return Reason(Kind.INVALID_FIELD, field, text)


def _field_in(text: str) -> str | None:
    found = _QUOTED_FIELD.search(text)
    if found:
        return found[2]
    found = _COLON_FIELD.search(text)
    if found:
        return found[1]
    try:
        data = json.loads(text)
    except ValueError:
        return None
    if isinstance(data, dict) and len(data) == 1:
        (name,) = data
        return str(name)
    return None


class Breaker:
    """Fed every answered row's outcome (from any thread); says once when to stop, and at the
    end whether the run as a whole should alert."""

    def __init__(self, max_rejected: float = DEFAULT_MAX_REJECTED,
                 known_fields: Collection[str] = (), *, first_rows: int = FIRST_ROWS,
                 window: int = WINDOW, min_answered: int = MIN_ANSWERED) -> None:
        self.max_rejected = max_rejected
        self.known_fields = tuple(known_fields)
        self.first_rows = first_rows
        self.min_answered = min_answered
        self.accepted = 0
        self.rejected = 0
        self.tripped = ""
        self._first: list[Reason] = []
        self._first_open = True
        self._recent: deque[bool] = deque(maxlen=window)
        self._reasons: Counter[tuple[str, str]] = Counter()
        self._examples: dict[tuple[str, str], Reason] = {}
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self.max_rejected < 100

    def record(self, outcome: Outcome) -> str | None:
        """The reason to stop, the first time there is one; None otherwise."""
        if outcome.http_status is None or outcome.status not in ACCEPTED | {Status.REJECTED}:
            return None
        with self._lock:
            rejected = outcome.status == Status.REJECTED
            self._count(outcome, rejected)
            if self.tripped or not self.enabled:
                return None
            self.tripped = self._first_rows_verdict() or self._share_verdict()
            return self.tripped or None

    def _count(self, outcome: Outcome, rejected: bool) -> None:
        self._recent.append(rejected)
        if not rejected:
            self.accepted += 1
            self._first_open = False
            return
        self.rejected += 1
        reason = reason_of(outcome.error)
        self._reasons[reason.key] += 1
        self._examples.setdefault(reason.key, reason)
        if self._first_open:
            self._first.append(reason)

    def _first_rows_verdict(self) -> str:
        if not self._first_open or len(self._first) < self.first_rows:
            return ""
        self._first_open = False
        keys = {reason.key for reason in self._first}
        if len(keys) != 1:
            return ""
        return (f"the API rejected the first {len(self._first)} rows it answered, all with "
                f"{_quoted(self._first[0].message)}: {self._advice(self._first[0])}")

    def _share_verdict(self) -> str:
        if self.accepted + self.rejected < self.min_answered:
            return ""
        share = 100 * sum(self._recent) / len(self._recent)
        if share <= self.max_rejected:
            return ""
        return (f"{share:.0f}% of the last {len(self._recent)} rows the API answered were "
                f"rejected (more than --max-rejected {self.max_rejected:g}%); most often "
                f"{self._most_common()}")

    def _most_common(self) -> str:
        key, count = self._reasons.most_common(1)[0]
        reason = self._examples[key]
        return f"{_quoted(reason.message)} ({count:,} rows): {self._advice(reason)}"

    def _advice(self, reason: Reason) -> str:
        """What to fix, in one clause."""
        name = reason.field
        if name is None:
            return ("fix the mapping or the data (check-mapping shows which column feeds "
                    "which field)")
        if reason.kind == Kind.UNKNOWN_FIELD:
            return (f"the account has no field {name!r}{did_you_mean(name, self.known_fields)}"
                    "; correct or remove it in the mapping (or create it in the account)")
        if reason.kind == Kind.FORBIDDEN_FIELD:
            return f"the API does not let {name!r} be written; remove it from the mapping"
        return (f"the values sent for {name!r} are refused; fix the column or transform that "
                f"feeds {name!r} in the mapping, or the data")

    def verdict(self) -> str:
        """At the end of a run: why it should not exit 0 although nothing stopped it."""
        with self._lock:
            answered = self.accepted + self.rejected
            if self.tripped or not self.rejected:
                return ""
            if not self.accepted:
                return (f"every row the API answered was rejected ({self.rejected:,} rows); "
                        f"most often {self._most_common()}")
            share = 100 * self.rejected / answered
            if self.enabled and share > self.max_rejected:
                return (f"{share:.0f}% of the rows the API answered were rejected (more than "
                        f"--max-rejected {self.max_rejected:g}%); most often "
                        f"{self._most_common()}")
            return ""


class _Sink(Protocol):
    path: Path

    def add(self, outcomes: list[tuple[int, Outcome]]) -> None: ...


class Watched:
    """A results sink that shows every outcome to the breaker on its way to ``sink``;
    ``on_trip`` is called once, with the reason, when the breaker trips."""

    def __init__(self, sink: _Sink, breaker: Breaker,
                 on_trip: Callable[[str], None]) -> None:
        self.sink = sink
        self.path = sink.path
        self.breaker = breaker
        self.on_trip = on_trip

    def add(self, outcomes: list[tuple[int, Outcome]]) -> None:
        for _, outcome in outcomes:
            reason = self.breaker.record(outcome)
            if reason:
                self.on_trip(reason)
        self.sink.add(outcomes)


def _quoted(message: str) -> str:
    short = message if len(message) <= 120 else message[:119] + "…"
    return json.dumps(short, ensure_ascii=False)
