"""Sending one row until it has an outcome: retries, backoff, and the ambiguity rule.

The rule that keeps records from being created twice. Once a request may have reached the
server, every failure is **ambiguous** unless the answer proves that nothing was done:

- proof that nothing was done (a *refusal*): 408, 429 and 503, a 409 that is not a duplicate
  (a lock, a concurrent change), and the other 4xx the API uses to refuse a row (400, 422...);
  and of course a connection that was never made;
- everything else is ambiguous: 500, 502, 504 and every other 5xx (a 524 from a CDN), a TLS
  error after connecting, a 2xx whose body was cut, late or too large, a dropped connection, a
  read timeout, the overall deadline, and a redirect (3xx: a server may store the record and
  answer 303; the run stops all the same, since the URL looks wrong).

After a refusal any row is retried. After an ambiguous failure a row with a key the API
deduplicates on (email, external_id, website_url) is re-sent, and the 409 that follows settles
it (``duplicate``, ``created-by-earlier-attempt``); a row without such a key is never re-sent:
it ends ``failed`` with ``outcome-unknown``, and that mark survives every later run (see
``runs.journal``). A row that *may* have been created earlier (in this run or an earlier one)
never ends with a plain failure code: it ends ``outcome-unknown``.
"""

import random
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass

from urllib3.exceptions import InvalidHeader
from urllib3.util import Retry

from importer.rows.outcomes import Outcome
from importer.rows.problems import Code
from importer.sending.client import Attempt, Kind, Sender
from importer.sending.throttle import Throttle

REFUSAL_STATUSES = frozenset({408, 429, 503})
"""The server says it did not do the work and asks to be tried again."""
AUTH_STATUSES = frozenset({401, 403})
WRONG_ENDPOINT_STATUSES = frozenset({404, 405})
PAUSE_ALL_FROM = 2.0
UNREACHABLE_ROWS = 10
_RETRY_AFTER = Retry(respect_retry_after_header=True)
_DUPLICATE_WORDS = re.compile(r"duplicat|already|exist|unique|taken|in use", re.I)
_NOT_A_DUPLICATE = re.compile(
    r"retry|try again|lock|concurren|in progress|busy|temporar|version|modified|stale", re.I)


def is_duplicate_answer(attempt: Attempt) -> bool:
    """Whether a 409 says "a record with this key exists" rather than "try again".

    The contract leaves a 409's body open. A body that gives the existing record's id or uses
    the words of a duplicate ("duplicate", "already exists", "unique", "taken") is one; a body
    that talks about locks, retries or concurrent changes contradicts it (even when it names a
    field: "the lock on email is held, retry"); an empty or unrecognised body is taken as the
    documented meaning, a duplicate.
    """
    if attempt.record_id or _DUPLICATE_WORDS.search(attempt.message):
        return True
    return not _NOT_A_DUPLICATE.search(attempt.message)


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


def is_ambiguous(attempt: Attempt) -> bool:
    """The request may have been processed although no answer proves what happened."""
    if attempt.kind == Kind.AMBIGUOUS:
        return True
    if attempt.kind == Kind.FATAL:
        return attempt.reached
    if attempt.kind != Kind.ANSWERED or attempt.status is None:
        return False
    status = attempt.status
    return not 200 <= status < 500 and status not in REFUSAL_STATUSES


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
                on_send: Callable[[], None], paced: bool = False) -> Delivered:
        """Send ``fields`` until the API gives a definite answer, or retries run out.

        ``maybe_sent`` says an earlier run may already have created this row; ``on_send`` is
        called once, just before the first request leaves, so it can be journaled (it raises
        when it cannot be, and then nothing is sent). ``paced``: the caller has waited for the
        first request's turn (``Throttle.acquire``) already.
        """
        retries = 0
        first = True
        while True:
            if not paced and not self.throttle.acquire(self.stop):
                return Delivered(self.stopped(row, keyed, maybe_sent))
            paced = False
            if first:
                on_send()
                first = False
            attempt = self.client.create(fields)
            maybe_sent = maybe_sent or is_ambiguous(attempt)
            decided = self._decide(row, attempt, keyed, maybe_sent)
            if decided is not None:
                return decided
            if retries >= self.policy.max_retries:
                return self._gave_up_for_good(row, attempt, keyed, maybe_sent)
            delay = self._delay(attempt, retries)
            retries += 1
            if self.stop.wait(delay):
                return Delivered(self._gave_up(row, attempt, keyed, maybe_sent, stopped=True))

    def _decide(self, row: int, attempt: Attempt, keyed: bool,
                maybe_sent: bool) -> Delivered | None:
        """A final answer for this row, or None to try again."""
        if attempt.kind != Kind.NOT_SENT:
            with self._lock:
                self._unreachable = 0
        if attempt.kind == Kind.FATAL:
            return _stopping(row, Code.NETWORK_ERROR, attempt, keyed, maybe_sent)
        if is_ambiguous(attempt):
            return None if keyed else Delivered(self._unknown(row, attempt))
        if attempt.kind == Kind.NOT_SENT:
            return None
        return self._answered(row, attempt, keyed, maybe_sent)

    def _answered(self, row: int, attempt: Attempt, keyed: bool,
                  maybe_sent: bool) -> Delivered | None:
        """An answer that is not ambiguous: a success, a duplicate, or a refusal."""
        status = attempt.status or 0
        if 200 <= status < 300:
            return self._success(row, attempt, keyed, maybe_sent)
        if status == 409:
            return self._conflict(row, attempt, keyed, maybe_sent)
        if status in AUTH_STATUSES:
            return _stopping(row, Code.AUTH_FAILED, attempt, keyed, maybe_sent)
        if 300 <= status < 400:
            return _redirected(row, attempt, keyed)
        if status in WRONG_ENDPOINT_STATUSES:
            return _stopping(row, Code.WRONG_ENDPOINT, attempt, keyed, maybe_sent)
        if status in REFUSAL_STATUSES:
            if status == 429:
                self.throttle.throttled(self.policy.retry_after(attempt.retry_after))
            return None
        reason = attempt.message or f"rejected with HTTP {status}"
        return Delivered(Outcome.problem(row, Code.SERVER_REJECTED, http_status=status,
                                         reason=reason))

    def _conflict(self, row: int, attempt: Attempt, keyed: bool,
                  maybe_sent: bool) -> Delivered | None:
        """A 409 settles a row only when it can be the dedupe answer: the row has a key the
        API deduplicates on and the body does not contradict "duplicate". Otherwise it is a
        refusal (nothing was stored), tried again."""
        if not (keyed and is_duplicate_answer(attempt)):
            return None
        self.throttle.accepted()
        if maybe_sent:
            return Delivered(Outcome.problem(row, Code.CREATED_BY_EARLIER_ATTEMPT,
                                             record_id=attempt.record_id,
                                             http_status=attempt.status))
        return Delivered(Outcome.problem(row, Code.ALREADY_EXISTS, record_id=attempt.record_id,
                                         http_status=attempt.status,
                                         reason=attempt.message or "already exists"))

    def _success(self, row: int, attempt: Attempt, keyed: bool, maybe_sent: bool) -> Delivered:
        """201 with the new record's id; a complete 2xx without an id is not this API."""
        self.throttle.accepted()
        if attempt.record_id:
            return Delivered(Outcome.created(row, attempt.record_id, attempt.status))
        reason = (f"the API answered HTTP {attempt.status} without a record id, so it is "
                  "probably not the contacts API; check --api-url")
        return Delivered(_unknown_outcome(row, attempt.status, reason, keyed), stop_reason=reason)

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
        return Outcome.problem(row, Code.OUTCOME_UNKNOWN, http_status=attempt.status, reason=(
            f"check before re-sending ({attempt.message or f'HTTP {attempt.status}'}; the row "
            "has no email, external_id or website_url for the API to recognise a repeat)"))

    def _gave_up(self, row: int, attempt: Attempt, keyed: bool, maybe_sent: bool,
                 stopped: bool = False) -> Outcome:
        tail = "; the run was stopped before the next retry" if stopped else (
            f" (after {self.policy.max_retries} retries)")
        message = f"{attempt.message or f'HTTP {attempt.status}'}{tail}"
        if maybe_sent:
            return _unknown_outcome(row, attempt.status, message, keyed)
        code = {429: Code.RATE_LIMITED}.get(attempt.status or 0, Code.SERVER_ERROR)
        if attempt.status is None:
            code = Code.NETWORK_ERROR
        return Outcome.problem(row, code, http_status=attempt.status, reason=message)

    def stopped(self, row: int, keyed: bool, maybe_sent: bool) -> Outcome:
        """The outcome of a row the run stopped before (re)sending."""
        if maybe_sent:
            return _unknown_outcome(row, None, "an earlier attempt may have created it", keyed)
        return Outcome.problem(row, Code.NOT_SENT, reason="the run was stopped")


def _unknown_outcome(row: int, http_status: int | None, reason: str, keyed: bool) -> Outcome:
    """A row that may exist on the server: never a plain failure, whatever came after."""
    advice = ("safe to re-send (the API recognises this row's key)" if keyed
              else "check before re-sending")
    return Outcome.problem(row, Code.OUTCOME_UNKNOWN, http_status=http_status,
                           reason=f"{reason}; {advice}")


def _stopping(row: int, code: Code, attempt: Attempt, keyed: bool,
              maybe_sent: bool) -> Delivered:
    """A failure that stops the whole run (refused token, wrong URL, TLS); a row that may have
    been created by an earlier attempt keeps that mark."""
    reason = _stop_reason(attempt)
    if maybe_sent:
        return Delivered(_unknown_outcome(row, attempt.status, reason, keyed), stop_reason=reason)
    return Delivered(Outcome.problem(row, code, http_status=attempt.status, reason=reason),
                     stop_reason=reason)


def _redirected(row: int, attempt: Attempt, keyed: bool) -> Delivered:
    """A redirect after a POST stops the run (the URL looks wrong), but it does not prove
    that nothing was stored: a server may store the record and answer 303 "see the new
    record there". So the row may exist, like after any ambiguous answer: ``outcome-unknown``
    (a keyed row is re-sent by ``--resume`` and a 409 settles it; a keyless one is not)."""
    reason = _stop_reason(attempt)
    return Delivered(_unknown_outcome(row, attempt.status, reason, keyed), stop_reason=reason)


def _stop_reason(attempt: Attempt) -> str:
    status = attempt.status
    if status in AUTH_STATUSES:
        word = "Unauthorized" if status == 401 else "Forbidden"
        return (f"the API refused the token (HTTP {status} {word}): check ROUTERA_API_TOKEN"
                + (f" ({attempt.message})" if attempt.message else ""))
    if status in WRONG_ENDPOINT_STATUSES:
        return (f"the API has no such endpoint (HTTP {status}): check --api-url and the "
                "mapping's object")
    return attempt.message
