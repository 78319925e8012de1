"""Retries and the ambiguity rule: a row is only re-sent when a repeat cannot create it twice."""

import threading

import pytest

from importer.rows.outcomes import Status
from importer.rows.problems import Code
from importer.sending.client import Attempt, Kind, Sender
from importer.sending.delivery import Delivery, RetryPolicy
from importer.sending.throttle import Throttle


class Scripted(Sender):
    """A sender that answers with the given attempts, in order, and counts requests;
    ``then_stop`` is set after each answer, as a Ctrl-C arriving while it was in flight."""

    def __init__(self, *attempts: Attempt, then_stop: threading.Event | None = None) -> None:
        self.attempts = list(attempts)
        self.sent = 0
        self.then_stop = then_stop

    def create(self, fields: dict[str, str]) -> Attempt:
        self.sent += 1
        if self.then_stop is not None:
            self.then_stop.set()
        return self.attempts.pop(0)


class RecordingThrottle(Throttle):
    def __init__(self, limit: float | None = None) -> None:
        super().__init__(limit)
        self.pauses: list[float] = []

    def pause(self, seconds: float) -> None:
        self.pauses.append(seconds)


def deliver(client: Scripted, *, keyed: bool = True, retries: int = 3,
            throttle: Throttle | None = None, maybe_sent: bool = False):
    delivery = Delivery(client, RetryPolicy(retries, base_delay=0.001, max_retry_after=0.01),
                        throttle or Throttle(None), threading.Event())
    journaled = []
    delivered = delivery.deliver(7, {"email": "a@x.io"}, keyed=keyed, maybe_sent=maybe_sent,
                                 on_send=lambda: journaled.append(7))
    assert journaled == [7]
    return delivered


def answered(status: int, retry_after: str | None = None, record_id: str = "") -> Attempt:
    record_id = record_id or ("c-1" if 200 <= status < 300 else "")
    return Attempt(Kind.ANSWERED, status, record_id, f"HTTP {status} message", retry_after)


AMBIGUOUS = Attempt(Kind.AMBIGUOUS, message="connection lost after sending")
NOT_SENT = Attempt(Kind.NOT_SENT, message="could not connect")


def test_created_after_retryable_errors() -> None:
    client = Scripted(answered(503), NOT_SENT, answered(500), answered(201, record_id="c-9"))
    outcome = deliver(client).outcome
    assert (outcome.status, outcome.id, outcome.http_status) == (Status.CREATED, "c-9", 201)
    assert client.sent == 4


def test_a_keyed_row_is_resent_after_an_ambiguous_failure_and_409_means_we_made_it() -> None:
    client = Scripted(AMBIGUOUS, answered(409))
    outcome = deliver(client, keyed=True).outcome
    assert (outcome.status, outcome.code) == (Status.DUPLICATE, Code.CREATED_BY_EARLIER_ATTEMPT)
    assert "earlier attempt probably created it" in outcome.error


def test_a_keyless_row_is_never_resent_after_an_ambiguous_failure() -> None:
    client = Scripted(AMBIGUOUS, answered(201))
    outcome = deliver(client, keyed=False).outcome
    assert client.sent == 1
    assert (outcome.status, outcome.code) == (Status.FAILED, Code.OUTCOME_UNKNOWN)
    assert outcome.error.startswith("outcome unknown: check before re-sending")


def test_plain_409_is_a_duplicate() -> None:
    outcome = deliver(Scripted(answered(409, record_id="c-1"))).outcome
    assert (outcome.status, outcome.code, outcome.id) == (Status.DUPLICATE, Code.ALREADY_EXISTS,
                                                          "c-1")


def test_400_is_rejected_without_retry() -> None:
    client = Scripted(answered(400))
    outcome = deliver(client).outcome
    assert (outcome.status, outcome.code, outcome.error) == (
        Status.REJECTED, Code.SERVER_REJECTED, "HTTP 400 message")
    assert client.sent == 1


def test_retries_run_out() -> None:
    client = Scripted(*[answered(503)] * 4)
    outcome = deliver(client, retries=3).outcome
    assert (outcome.status, outcome.code, outcome.http_status) == (
        Status.FAILED, Code.SERVER_ERROR, 503)
    assert outcome.error == "HTTP 503 message (after 3 retries)"
    assert client.sent == 4


def test_429_slows_every_worker_and_is_retried() -> None:
    throttle = RecordingThrottle(50.0)
    refusals = [answered(429, "1")] * 3
    outcome = deliver(Scripted(*refusals, answered(201)), throttle=throttle).outcome
    assert outcome.status == Status.CREATED
    assert throttle.rate < 50.0, "the shared rate dropped for every worker (3 429s: not stray)"


@pytest.mark.parametrize(("retry_after", "pauses"), [("7", [7.0]), ("1", []), (None, [])])
def test_only_a_long_retry_after_pauses_every_worker(retry_after: str | None,
                                                     pauses: list[float]) -> None:
    throttle = RecordingThrottle()
    stop = threading.Event()
    delivery = Delivery(Scripted(answered(429, retry_after), then_stop=stop), RetryPolicy(),
                        throttle, stop)
    outcome = delivery.deliver(7, {}, keyed=True, maybe_sent=False, on_send=lambda: None).outcome
    assert throttle.pauses == pauses
    assert (outcome.code, outcome.http_status) == (Code.RATE_LIMITED, 429)
    assert outcome.error.endswith("the run was stopped before the next retry")


@pytest.mark.parametrize("gateway", [502, 504])
def test_a_gateway_error_is_ambiguous(gateway: int) -> None:
    keyless = Scripted(answered(gateway), answered(201))
    assert deliver(keyless, keyed=False).outcome.code == Code.OUTCOME_UNKNOWN
    assert keyless.sent == 1
    keyed = deliver(Scripted(answered(gateway), answered(409)), keyed=True).outcome
    assert (keyed.status, keyed.code) == (Status.DUPLICATE, Code.CREATED_BY_EARLIER_ATTEMPT)


def test_a_keyless_row_is_retried_after_refusals_408_429_503() -> None:
    client = Scripted(answered(408), answered(429), answered(503), answered(201, record_id="c-2"))
    assert deliver(client, keyed=False, retries=5).outcome.id == "c-2"


@pytest.mark.parametrize(("attempt", "reason"), [
    (answered(200, record_id="-"), "the API answered HTTP 200 without a record id"),
    (answered(404), "the API has no such endpoint (HTTP 404)"),
])
def test_an_answer_from_something_else_stops_the_run(attempt: Attempt, reason: str) -> None:
    if attempt.record_id == "-":
        attempt = Attempt(Kind.ANSWERED, 200, "", "<html>", None)
    delivered = deliver(Scripted(attempt))
    assert delivered.stop_reason.startswith(reason)
    assert delivered.outcome.status == Status.FAILED


@pytest.mark.parametrize("status", [300, 301, 302, 303, 307, 308])
def test_a_redirect_stops_the_run_but_the_row_may_exist(status: int) -> None:
    """A server may store the record and then redirect: not a refusal (F2)."""
    keyless = deliver(Scripted(answered(status)), keyed=False)
    assert keyless.stop_reason.startswith(f"HTTP {status} message")
    assert (keyless.outcome.status, keyless.outcome.code) == (Status.FAILED,
                                                              Code.OUTCOME_UNKNOWN)
    keyed = deliver(Scripted(answered(status)), keyed=True).outcome
    assert keyed.code == Code.OUTCOME_UNKNOWN and "safe to re-send" in keyed.error


def test_rows_that_cannot_connect_stop_the_run_after_a_while() -> None:
    delivery = Delivery(Scripted(*[NOT_SENT] * 40), RetryPolicy(1, base_delay=0.001),
                        Throttle(None), threading.Event())
    reasons = [delivery.deliver(n, {}, keyed=True, maybe_sent=False, on_send=lambda: None)
               .stop_reason for n in range(10)]
    assert reasons[:9] == [""] * 9
    assert reasons[9].startswith("cannot reach the API: 10 rows in a row could not connect")


def test_unauthorised_stops_the_run() -> None:
    delivered = deliver(Scripted(answered(401)))
    assert delivered.outcome.code == Code.AUTH_FAILED
    assert delivered.stop_reason.startswith("the API refused the token (HTTP 401 Unauthorized)")


def test_retry_after_is_parsed_and_bounded() -> None:
    policy = RetryPolicy(max_retry_after=120)
    assert policy.retry_after("3") == 3
    assert policy.retry_after("999999") == 120
    assert policy.retry_after("soon") is None
    assert policy.retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0
    assert policy.retry_after(None) is None
