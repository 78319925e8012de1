"""Sending one row until it has an outcome: retries, backoff, and the ambiguity rules.

The rule that keeps records from being created twice: after an attempt that may have reached
the server (a read timeout, a connection dropped after sending), the row is only sent again if
it carries a key the API deduplicates on, so a repeat is answered with 409 rather than a second
record. A row without such a key ends as ``outcome-unknown`` for a person to check.
"""

import random
import threading
from collections.abc import Callable
from dataclasses import dataclass

from urllib3.exceptions import InvalidHeader
from urllib3.util import Retry

from importer.client import Attempt, ContactsClient, Kind
from importer.outcomes import Outcome, Status
from importer.problems import Code
from importer.throttle import Throttle

RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
STOP_STATUSES = frozenset({401, 403, 404, 405})
PAUSE_ALL_FROM = 2.0
_RETRY_AFTER = Retry(respect_retry_after_header=True)


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently to retry; delays in seconds."""

    max_retries: int = 5
    base_delay: float = 0.5
    max_delay: float = 30.0
    max_retry_after: float = 120.0

    def backoff(self, retry: int) -> float:
        """Exponential backoff with full jitter, so workers do not retry in lockstep."""
        return random.uniform(0, min(self.max_delay, self.base_delay * 2**retry))

    def retry_after(self, header: str | None) -> float | None:
        """Retry-After in seconds (or an HTTP date), bounded; None when absent or nonsense."""
        if not header:
            return None
        try:
            seconds = _RETRY_AFTER.parse_retry_after(header.strip())
        except (InvalidHeader, ValueError, OverflowError):
            return None
        return min(max(seconds, 0.0), self.max_retry_after)


@dataclass(frozen=True, slots=True)
class Delivered:
    """A row's outcome, and whether the whole run must stop (bad token, wrong URL)."""

    outcome: Outcome
    stop_reason: str = ""


class Delivery:
    """Delivers rows for all workers; shares the client, the throttle and the stop flag."""

    def __init__(self, client: ContactsClient, policy: RetryPolicy, throttle: Throttle,
                 stop: threading.Event) -> None:
        self.client = client
        self.policy = policy
        self.throttle = throttle
        self.stop = stop

    def deliver(self, row: int, fields: dict[str, str], *, keyed: bool, maybe_sent: bool,
                on_send: Callable[[], None]) -> Delivered:
        """Send ``fields`` until the API gives a definite answer, or retries run out.

        ``maybe_sent`` says an earlier run may already have created this row; ``on_send`` is
        called once, just before the first request leaves, so it can be journaled.
        """
        retries = 0
        first = True
        while True:
            if not self.throttle.acquire(self.stop):
                return Delivered(self.stopped(row, keyed, maybe_sent))
            if first:
                on_send()
                first = False
            attempt = self.client.create(fields)
            decided = self._decide(row, attempt, keyed, maybe_sent)
            if decided is not None:
                return decided
            maybe_sent = maybe_sent or attempt.kind == Kind.AMBIGUOUS
            if retries >= self.policy.max_retries:
                return Delivered(self._gave_up(row, attempt, keyed, maybe_sent))
            delay = self._delay(attempt, retries)
            retries += 1
            if self.stop.wait(delay):
                return Delivered(self._gave_up(row, attempt, keyed, maybe_sent, stopped=True))

    def _decide(self, row: int, attempt: Attempt, keyed: bool,
                maybe_sent: bool) -> Delivered | None:
        """A final answer for this row, or None to try again."""
        if attempt.kind == Kind.HOPELESS:
            return Delivered(Outcome(row, Status.FAILED, code=Code.NETWORK_ERROR,
                                     error=attempt.message), stop_reason=attempt.message)
        if attempt.kind == Kind.AMBIGUOUS:
            return None if keyed else Delivered(self._unknown(row, attempt))
        if attempt.kind == Kind.NOT_SENT:
            return None
        return self._answered(row, attempt, maybe_sent)

    def _answered(self, row: int, attempt: Attempt, maybe_sent: bool) -> Delivered | None:
        status = attempt.status or 0
        if 200 <= status < 300:
            self.throttle.accepted()
            return Delivered(Outcome(row, Status.CREATED, attempt.record_id, status))
        if status == 409:
            self.throttle.accepted()
            if maybe_sent:
                return Delivered(Outcome(
                    row, Status.DUPLICATE, attempt.record_id, status,
                    Code.CREATED_BY_EARLIER_ATTEMPT,
                    "already exists: an earlier attempt probably created it (its answer was "
                    "lost); check it once"))
            return Delivered(Outcome(row, Status.DUPLICATE, attempt.record_id, status,
                                     Code.ALREADY_EXISTS, attempt.message or "already exists"))
        if status in STOP_STATUSES:
            return Delivered(self._refused(row, attempt), stop_reason=_stop_reason(attempt))
        if status in RETRY_STATUSES:
            if status == 429:
                self.throttle.throttled()
            return None
        if 400 <= status < 500:
            return Delivered(Outcome(row, Status.REJECTED, "", status, Code.SERVER_REJECTED,
                                     attempt.message or f"rejected with HTTP {status}"))
        return Delivered(Outcome(row, Status.FAILED, "", status, Code.SERVER_ERROR,
                                 attempt.message or f"unexpected HTTP {status}"))

    def _delay(self, attempt: Attempt, retries: int) -> float:
        """Backoff, or the server's Retry-After when it gives one.

        Every 429 already lowered the shared rate (``Throttle.throttled``); a Retry-After of
        ``PAUSE_ALL_FROM`` seconds or more also holds every worker, because the server is
        asking for a real pause (a quota, maintenance), not just a slower pace.
        """
        asked = self.policy.retry_after(attempt.retry_after)
        if asked is None or attempt.status not in (429, 503):
            return self.policy.backoff(retries)
        if asked >= PAUSE_ALL_FROM:
            self.throttle.pause(asked)
        return asked + random.uniform(0, 0.1)

    def _unknown(self, row: int, attempt: Attempt) -> Outcome:
        return Outcome(row, Status.FAILED, "", None, Code.OUTCOME_UNKNOWN,
                       f"outcome unknown: check before re-sending ({attempt.message}; the row has "
                       "no email, external_id or website_url for the API to recognise a repeat)")

    def _gave_up(self, row: int, attempt: Attempt, keyed: bool, maybe_sent: bool,
                 stopped: bool = False) -> Outcome:
        tail = "; the run was stopped before the next retry" if stopped else (
            f" (after {self.policy.max_retries} retries)")
        if maybe_sent and keyed:
            return Outcome(row, Status.FAILED, "", attempt.status, Code.OUTCOME_UNKNOWN,
                           f"outcome unknown: {attempt.message}{tail}; safe to re-send (the API "
                           "recognises this row's key)")
        code = {429: Code.RATE_LIMITED}.get(attempt.status or 0, Code.SERVER_ERROR)
        if attempt.status is None:
            code = Code.NETWORK_ERROR
        message = attempt.message or f"HTTP {attempt.status}"
        return Outcome(row, Status.FAILED, "", attempt.status, code, f"{message}{tail}")

    def _refused(self, row: int, attempt: Attempt) -> Outcome:
        code = Code.AUTH_FAILED if attempt.status in (401, 403) else Code.SERVER_REJECTED
        return Outcome(row, Status.FAILED, "", attempt.status, code, _stop_reason(attempt))

    def stopped(self, row: int, keyed: bool, maybe_sent: bool) -> Outcome:
        """The outcome of a row the run stopped before (re)sending."""
        if maybe_sent:
            advice = "safe to re-send" if keyed else "check before re-sending"
            return Outcome(row, Status.FAILED, "", None, Code.OUTCOME_UNKNOWN,
                           f"outcome unknown: an earlier attempt may have created it; {advice}")
        return Outcome(row, Status.SKIPPED, code=Code.NOT_SENT,
                       error="not sent: the run was stopped")


def _stop_reason(attempt: Attempt) -> str:
    status = attempt.status
    if status in (401, 403):
        word = "Unauthorized" if status == 401 else "Forbidden"
        return (f"the API refused the token (HTTP {status} {word}): check ROUTERA_API_TOKEN"
                + (f" ({attempt.message})" if attempt.message else ""))
    if status in (404, 405):
        return (f"the API has no such endpoint (HTTP {status}): check --api-url and the "
                "mapping's object")
    return attempt.message
