"""Sending one row until it has an outcome: retries, backoff, and the ambiguity rules.

The rule that keeps records from being created twice: after an attempt that may have reached
the server (a read timeout, a connection dropped after sending, a gateway's 502 or 504), the row
is only sent again if it carries a key the API deduplicates on, so a repeat is answered with 409
rather than a second record. A row without such a key ends as ``outcome-unknown`` for a person
to check. 408, 429, 500 and 503 are the API itself saying it did not do the work, so any row is
retried after them.
"""

import random
import threading
from collections.abc import Callable
from dataclasses import dataclass

from urllib3.exceptions import InvalidHeader
from urllib3.util import Retry

from importer.rows.outcomes import Outcome
from importer.rows.problems import Code
from importer.sending.client import Attempt, Kind, Sender
from importer.sending.throttle import Throttle

RETRY_STATUSES = frozenset({408, 429, 500, 503})
GATEWAY_STATUSES = frozenset({502, 504})
WRONG_ENDPOINT_STATUSES = frozenset({404, 405})
PAUSE_ALL_FROM = 2.0
UNREACHABLE_ROWS = 10
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

    def __init__(self, client: Sender, policy: RetryPolicy, throttle: Throttle,
                 stop: threading.Event) -> None:
        self.client = client
        self.policy = policy
        self.throttle = throttle
        self.stop = stop
        self._unreachable = 0
        self._lock = threading.Lock()

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
            maybe_sent = maybe_sent or _ambiguous(attempt)
            if retries >= self.policy.max_retries:
                return self._gave_up_for_good(row, attempt, keyed, maybe_sent)
            delay = self._delay(attempt, retries)
            retries += 1
            if self.stop.wait(delay):
                return Delivered(self._gave_up(row, attempt, keyed, maybe_sent, stopped=True))

    def _decide(self, row: int, attempt: Attempt, keyed: bool,
                maybe_sent: bool) -> Delivered | None:
        """A final answer for this row, or None to try again."""
        if attempt.kind == Kind.FATAL:
            return Delivered(Outcome.problem(row, Code.NETWORK_ERROR, reason=attempt.message),
                             stop_reason=attempt.message)
        if attempt.kind != Kind.NOT_SENT:
            with self._lock:
                self._unreachable = 0
        if _ambiguous(attempt):
            return None if keyed else Delivered(self._unknown(row, attempt))
        if attempt.kind == Kind.NOT_SENT:
            return None
        return self._answered(row, attempt, maybe_sent)

    def _answered(self, row: int, attempt: Attempt, maybe_sent: bool) -> Delivered | None:
        status = attempt.status or 0
        if 200 <= status < 300:
            return self._success(row, attempt)
        if status == 409:
            self.throttle.accepted()
            if maybe_sent:
                return Delivered(Outcome.problem(row, Code.CREATED_BY_EARLIER_ATTEMPT,
                                                 record_id=attempt.record_id, http_status=status))
            return Delivered(Outcome.problem(row, Code.ALREADY_EXISTS, record_id=attempt.record_id,
                                             http_status=status,
                                             reason=attempt.message or "already exists"))
        if status in (401, 403):
            return _stopping(row, Code.AUTH_FAILED, attempt)
        if status in WRONG_ENDPOINT_STATUSES or 300 <= status < 400:
            return _stopping(row, Code.WRONG_ENDPOINT, attempt)
        if status in RETRY_STATUSES:
            if status == 429:
                self.throttle.throttled()
            return None
        if 400 <= status < 500:
            reason = attempt.message or f"rejected with HTTP {status}"
            return Delivered(Outcome.problem(row, Code.SERVER_REJECTED, http_status=status,
                                             reason=reason))
        return Delivered(Outcome.problem(row, Code.SERVER_ERROR, http_status=status,
                                         reason=attempt.message or f"unexpected HTTP {status}"))

    def _success(self, row: int, attempt: Attempt) -> Delivered:
        """201 with the new record's id; a 2xx without an id is not this API."""
        self.throttle.accepted()
        if attempt.record_id:
            return Delivered(Outcome.created(row, attempt.record_id, attempt.status))
        reason = (f"the API answered HTTP {attempt.status} without a record id, so it is "
                  "probably not the contacts API; check --api-url")
        return Delivered(Outcome.problem(row, Code.OUTCOME_UNKNOWN, http_status=attempt.status,
                                         reason=reason), stop_reason=reason)

    def _gave_up_for_good(self, row: int, attempt: Attempt, keyed: bool,
                          maybe_sent: bool) -> Delivered:
        """Retries ran out; when row after row cannot even connect, stop the run."""
        outcome = self._gave_up(row, attempt, keyed, maybe_sent)
        if attempt.kind != Kind.NOT_SENT:
            return Delivered(outcome)
        with self._lock:
            self._unreachable += 1
            unreachable = self._unreachable
        if unreachable < UNREACHABLE_ROWS:
            return Delivered(outcome)
        return Delivered(outcome, stop_reason=(
            f"cannot reach the API: {UNREACHABLE_ROWS} rows in a row could not connect "
            f"({attempt.message}); check the network and --api-url"))

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
        return Outcome.problem(row, Code.OUTCOME_UNKNOWN, reason=(
            f"check before re-sending ({attempt.message}; the row has no email, external_id or "
            "website_url for the API to recognise a repeat)"))

    def _gave_up(self, row: int, attempt: Attempt, keyed: bool, maybe_sent: bool,
                 stopped: bool = False) -> Outcome:
        tail = "; the run was stopped before the next retry" if stopped else (
            f" (after {self.policy.max_retries} retries)")
        if maybe_sent and keyed:
            return Outcome.problem(row, Code.OUTCOME_UNKNOWN, http_status=attempt.status, reason=(
                f"{attempt.message}{tail}; safe to re-send (the API recognises this row's key)"))
        code = {429: Code.RATE_LIMITED}.get(attempt.status or 0, Code.SERVER_ERROR)
        if attempt.status is None:
            code = Code.NETWORK_ERROR
        message = attempt.message or f"HTTP {attempt.status}"
        return Outcome.problem(row, code, http_status=attempt.status, reason=f"{message}{tail}")

    def stopped(self, row: int, keyed: bool, maybe_sent: bool) -> Outcome:
        """The outcome of a row the run stopped before (re)sending."""
        if maybe_sent:
            advice = "safe to re-send" if keyed else "check before re-sending"
            return Outcome.problem(row, Code.OUTCOME_UNKNOWN,
                                   reason=f"an earlier attempt may have created it; {advice}")
        return Outcome.problem(row, Code.NOT_SENT, reason="the run was stopped")


def _ambiguous(attempt: Attempt) -> bool:
    """The request may have been processed although no definite answer came back."""
    return attempt.kind == Kind.AMBIGUOUS or attempt.status in GATEWAY_STATUSES


def _stopping(row: int, code: Code, attempt: Attempt) -> Delivered:
    """A failure that stops the whole run (refused token, wrong URL)."""
    reason = _stop_reason(attempt)
    return Delivered(Outcome.problem(row, code, http_status=attempt.status, reason=reason),
                     stop_reason=reason)


def _stop_reason(attempt: Attempt) -> str:
    status = attempt.status
    if status in (401, 403):
        word = "Unauthorized" if status == 401 else "Forbidden"
        return (f"the API refused the token (HTTP {status} {word}): check ROUTERA_API_TOKEN"
                + (f" ({attempt.message})" if attempt.message else ""))
    if status in WRONG_ENDPOINT_STATUSES:
        return (f"the API has no such endpoint (HTTP {status}): check --api-url and the "
                "mapping's object")
    return attempt.message
