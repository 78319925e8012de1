"""How fast all workers together may send: a shared rate that finds the server's limit.

One throttle is shared by every worker, so a 429 seen by one slows the whole run, and
``--rate-limit`` caps the sum of all workers rather than each one. Requests leave at evenly
spaced moments (pacing), never in bursts: a server that counts with a token bucket with a
small burst refuses two requests that arrive close together even when the average is fine. A
worker that wakes up late for its moment (the process was busy) takes a new one rather than
sending at once, so a stall is not followed by a burst.

Without a cap the rate is unlimited until the server first answers 429. That one pauses every
worker for its Retry-After (the server said so, and a window filled by the unpaced start needs
it), and the rate starts from what the server *accepted* over the last second. From then on:

- **Measure, not guess.** A limiter of any shape (fixed window, sliding window, token bucket
  with any burst) accepts its limit per second from a client that sends faster, so when the
  server accepted clearly less than was sent over the last second (``significant``), what it
  accepted is the limit. When it refused only a few, the rate actually sent is the estimate
  (the workers may not achieve the configured rate), but never below a rate ``proven`` by
  holding it for ``hold_for`` seconds, so a few refusals cannot ratchet the rate down. The
  new rate is ``backoff`` times the estimate, and every worker holds for ``settle`` seconds so
  that a refusing server is not sent a clump of requests that all come back 429.
- **Once per round.** A 429 counts only when its request left after the last change of rate,
  at least ``decrease_gap`` after it (the requests in flight knew nothing of it), and when
  at least ``min_refused`` and more than ``tolerated`` of the last second's answers were
  429s: isolated 429s come from jitter and stalls. Nor does it count while the server,
  within a window of the last change, accepted clearly more than the current rate: its
  limiter still remembers the rate before (a sliding window for a whole window).
- **Probe.** After a calm interval (sending, not paused, no 429 beyond stray ones) with the
  workers using it, the rate first jumps back to ``backoff`` times the estimate, then climbs
  multiplicatively, each step twice the last (``first_step`` doubling to ``max_step``), so a
  low first estimate is left behind in seconds. Once the estimate is *confirmed* (measured a
  couple of windows after the first 429, or given by ``--rate-limit``), the calm interval is
  a whole window (a fixed window shows an overshoot only at its end), the rate stops at
  ``hold_at`` of the estimate for ``hold_for`` seconds and probes above it only in small
  steps (``confirmed_max_step``): every overshoot costs 429s, and each refused row waits out
  its Retry-After.

The rules live in :class:`RateControl`, which is told the time rather than reading a clock, so
tests drive it through simulated servers deterministically (``tests/throttle_sim.py``).
:class:`Throttle` wraps it for the worker threads. All tunables are data, in
:class:`ThrottlePolicy`.
"""

import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum

__all__ = ["Phase", "RateControl", "Throttle", "ThrottlePolicy"]


@dataclass(frozen=True)
class ThrottlePolicy:
    """Tunables of the adaptive rate; times in seconds, rates in requests per second."""

    window: float = 1.0
    backoff: float = 0.9
    probe_after: float = 1.0
    search_probe_after: float = 0.5
    first_step: float = 0.02
    max_step: float = 0.5
    confirmed_max_step: float = 0.08
    hold_at: float = 0.97
    hold_for: float = 5.0
    decrease_gap: float = 0.2
    tolerated: float = 0.02
    min_refused: int = 3
    significant: float = 0.05
    late_slack: float = 0.25
    default_pause: float = 1.0
    settle: float = 0.1
    min_rate: float = 0.5
    max_rate: float = 100_000.0
    min_span: float = 0.05
    min_answers: int = 10

    def first_rate(self, accepted: float, round_trip: float) -> float:
        """After the first 429: what the server accepted in the last window, but at least one
        worker sending request after request (the first 429 may come before any answer)."""
        return max(accepted, 1.0 / max(round_trip, 1.0 / self.max_rate)) * self.backoff

    def probe_interval(self, confirmed: bool) -> float:
        """Calm time before a raise: a whole window near a measured limit (a fixed window shows
        an overshoot only at its end), half of one while still looking for the limit."""
        return self.probe_after if confirmed else self.search_probe_after

    def step(self, previous: float, confirmed: bool) -> float:
        """The next upward step: the first small, each following one twice the last.

        Above a limit measured in steady sending the steps stay small: a token bucket's burst
        hides an overshoot for a while, so big steps would pile one on another.
        """
        largest = self.confirmed_max_step if confirmed else self.max_step
        return self.first_step if previous <= 0 else min(largest, previous * 2)

    def target(self, rate: float, sent: float, accepted: float, proven: float,
               answers: int) -> float:
        """The server's limit as it looks after a 429 that counts (rates per second over
        the last window: ``sent`` by the workers, ``accepted`` by the server).

        When the server accepted clearly less than was sent, it is over-sent, and what it
        accepted *is* its limit. Otherwise the refusals were few (jitter, a stall), and the
        rate actually sent is the best guess (the configured rate may be more than the
        workers achieve), but not below a rate ``proven`` by holding it for ``hold_for``
        seconds: without that floor, every few refusals would ratchet the rate down. Fewer
        than ``min_answers`` answers prove nothing either way.
        """
        if answers >= self.min_answers and sent > accepted * (1.0 + self.significant):
            return min(rate, accepted)
        return min(rate, max(sent, proven))


class Phase(Enum):
    """Unlimited until the first 429, then searching for the limit, then holding under it."""

    UNLIMITED = "unlimited"
    SEARCH = "search"
    STEADY = "steady"


@dataclass
class RateControl:
    """The adaptive rate as a pure state machine: every method takes the current time.

    ``rate`` is None while unlimited. ``limit`` (``--rate-limit``) caps it; ``adaptive`` False
    keeps exactly that cap. ``estimate`` is the server's limit as last measured; it is
    *confirmed* once measured in steady sending, a full window after the first 429.
    """

    limit: float | None = None
    adaptive: bool = True
    policy: ThrottlePolicy = field(default_factory=ThrottlePolicy)
    rate: float | None = None
    estimate: float = 0.0
    phase: Phase = Phase.UNLIMITED
    paused_until: float = 0.0
    _next: float = 0.0
    _changed_at: float = -math.inf
    _searching_since: float = 0.0
    _step: float = 0.0
    _last_sent: float = -math.inf
    _last_refused: float = -math.inf
    _proven: float = 0.0
    _started: float | None = None
    _measured_from: float = -math.inf
    _answers: deque[tuple[float, bool]] = field(default_factory=deque)
    _sent: deque[float] = field(default_factory=deque)

    def __post_init__(self) -> None:
        self.rate = self.limit
        if self.limit and self.adaptive:
            self.phase, self.estimate = Phase.STEADY, self.limit

    def reserve(self, now: float) -> float:
        """The moment the caller may send: evenly spaced at the current rate, after any pause."""
        if self._started is None:
            self._started = now
        slot = max(self._next, now, self.paused_until)
        if self.rate:
            slot = max(slot, self._last_sent + (1.0 - self.policy.late_slack) / self.rate)
            self._next = slot + 1.0 / self.rate
        return slot

    def admits(self, slot: float, now: float) -> bool:
        """Whether a reserved slot still stands at ``now``.

        A pause that began since cancels it, and so does waking up late (the process was
        busy elsewhere) too close to the request sent last: several late workers sending at
        once would be a burst, which a limiter with a small burst refuses, so such a worker
        takes a new slot instead.
        """
        if self.paused_until > slot:
            return False
        if not self.rate:
            self._sent.append(now)
            return True
        spacing, slack = 1.0 / self.rate, self.policy.late_slack
        late = now - slot > slack * spacing
        if late and now - self._last_sent < (1.0 - slack) * spacing:
            return False
        self._last_sent = max(self._last_sent, now)
        self._sent.append(now)
        return True

    def pause(self, now: float, seconds: float) -> None:
        """Hold every worker for ``seconds``; rates are measured afresh from its end."""
        self._hold(now, seconds)
        self._measured_from = self.paused_until
        self._answers.clear()
        self._sent.clear()

    def _hold(self, now: float, seconds: float) -> None:
        self.paused_until = max(self.paused_until, now + seconds)
        self._next = max(self._next, self.paused_until)

    def accepted(self, now: float, sent: float) -> None:
        """An answer other than 429: after a calm interval, raise the rate.

        Calm means no 429 while more than ``tolerated`` of the answers were refused: the
        stray 429s of a jittery network must not keep the rate from climbing back.
        """
        self._answered(now, True)
        if (self.adaptive and self.rate is not None and self._busy(now)
                and self._calm(now) >= self.policy.probe_interval(self._confirmed)):
            self._raise(now)

    def throttled(self, now: float, sent: float, retry_after: float | None = None) -> None:
        """A 429: the first one pauses everyone; later ones lower the rate once per round."""
        self._answered(now, False)
        if self._refusing():
            self._last_refused = now
        if not self.adaptive:
            return
        if self.phase is Phase.UNLIMITED:
            self.phase, self._searching_since = Phase.SEARCH, now
            first = self.policy.first_rate(self.accepted_rate(now), now - sent)
            self.pause(now, retry_after or self.policy.default_pause)
            self._change(now, first)
            return
        if not self._counts(now, sent):
            return
        assert self.rate is not None
        self._prove(now)
        sent, accepted = self._sent_rate(now), self.accepted_rate(now)
        self.estimate = self.policy.target(self.rate, sent, accepted, self._proven,
                                           len(self._answers))
        self._proven = min(self._proven, self.estimate)
        if now - self._searching_since >= 2 * self.policy.window:
            self.phase = Phase.STEADY
        self._step = 0.0
        self._change(now, self.estimate * self.policy.backoff)
        self._hold(now, self.policy.settle)

    def accepted_rate(self, now: float) -> float:
        """Answers accepted per second over the last window (or since the last pause)."""
        self._forget(now)
        return sum(1 for _, ok in self._answers if ok) / self._span(now)

    def refused_share(self) -> float:
        """Of the answers in the last window, the share that were 429s."""
        if not self._answers:
            return 0.0
        return sum(1 for _, ok in self._answers if not ok) / len(self._answers)

    @property
    def _confirmed(self) -> bool:
        return self.phase is Phase.STEADY

    def _calm(self, now: float) -> float:
        """Seconds of sending at the current rate without more than stray 429s.

        A pause is not calm: nobody sent during it, so it says nothing about the rate. Counted
        as calm, the first 429's Retry-After raised the rate the moment sending resumed, at
        the unmeasured first rate (four times a token bucket's limit, say); the 429s that
        answered the resumed burst then did not count (sent before that raise), the rate stayed
        far too high, every worker ended up waiting out a Retry-After, and the limit measured
        from the clump they came back in was a third of the real one.
        """
        return now - max(self._changed_at, self._last_refused, self.paused_until)

    def _counts(self, now: float, sent: float) -> bool:
        """A 429 lowers the rate only when it answers the current rate (its request left after
        the last change, and not just after it) and refusals are not rare (isolated 429s come
        from jitter and stalls; lowering the rate for each would ratchet it down)."""
        return (sent >= self._changed_at and now - self._changed_at >= self.policy.decrease_gap
                and self._refusing() and not self._echoes_an_earlier_rate(now))

    def _echoes_an_earlier_rate(self, now: float) -> bool:
        """Whether the last window still holds the rate before the last change, and the server
        accepted clearly more than the current rate in it: its 429s then answer that earlier
        rate (a sliding window remembers a whole window of it), not the current one."""
        assert self.rate is not None
        return (now - self._changed_at < self.policy.window
                and self.accepted_rate(now) > self.rate * (1.0 + self.policy.significant))

    def _refusing(self) -> bool:
        """More than stray refusals: ``min_refused`` 429s, over ``tolerated`` of the answers."""
        refused = sum(1 for _, ok in self._answers if not ok)
        return refused >= self.policy.min_refused and self.refused_share() >= (
            self.policy.tolerated)

    def _answered(self, now: float, ok: bool) -> None:
        self._answers.append((now, ok))
        self._forget(now)

    def _busy(self, now: float) -> bool:
        """Whether the workers use the rate: raising a rate nobody uses proves nothing."""
        assert self.rate is not None
        return self._sent_rate(now) >= self.rate * 0.6

    def _sent_rate(self, now: float) -> float:
        self._forget(now)
        return len(self._sent) / self._span(now)

    def _span(self, now: float) -> float:
        """The window, or the time since sending began or a pause ended when that is shorter."""
        began = max(self._measured_from, self._started if self._started is not None else now)
        return max(self.policy.min_span, min(self.policy.window, now - began))

    def _raise(self, now: float) -> None:
        """Back to just under the estimate at once, then up towards it, then beyond.

        Under a confirmed estimate the steps stop at ``hold_at`` of it, and the rate stays
        there ``hold_for`` seconds before probing above: the limit is most likely right
        there, and every overshoot costs a clump of 429s (a fixed window refuses the whole
        tail of its second, and each refused row waits out its Retry-After).
        """
        assert self.rate is not None
        before, estimate, policy = self.rate, self.estimate, self.policy
        holding = estimate * policy.hold_at
        if before < estimate * policy.backoff:
            rate, self._step = estimate * policy.backoff, 0.0
        elif self._confirmed and before < holding:
            self._step = policy.step(self._step, True)
            rate = min(holding, before * (1.0 + self._step))
        elif self._confirmed and before < estimate:
            if now - self._changed_at < policy.hold_for:
                return
            rate, self._step = estimate * (1.0 + policy.first_step), 0.0
        else:
            self._step = policy.step(self._step, self._confirmed)
            rate = before * (1.0 + self._step)
        self._change(now, rate)

    def _prove(self, now: float) -> None:
        """A rate held ``hold_for`` seconds (while the workers used it) is proven safe."""
        assert self.rate is not None
        if now - self._changed_at >= self.policy.hold_for and self._busy(now):
            self._proven = max(self._proven, self.rate)

    def _change(self, now: float, rate: float) -> None:
        if self.rate is not None:
            self._prove(now)
        rate = min(max(rate, self.policy.min_rate), self.policy.max_rate)
        rate = min(rate, self.limit) if self.limit else rate
        if rate != self.rate:
            self.rate = rate
            self._changed_at = max(now, self._changed_at)

    def _forget(self, now: float) -> None:
        while self._answers and now - self._answers[0][0] > self.policy.window:
            self._answers.popleft()
        while self._sent and now - self._sent[0] > self.policy.window:
            self._sent.popleft()


class Throttle:
    """The shared rate for the worker threads: waits for slots, hears every answer.

    Each worker remembers (thread-locally) when its last request left, so a 429 can be told
    apart from one answering a request sent before the last decrease.
    """

    def __init__(self, limit: float | None = None, *, adaptive: bool = True,
                 policy: ThrottlePolicy | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.control = RateControl(limit, adaptive, policy or ThrottlePolicy())
        self.clock = clock
        self._lock = threading.Lock()
        self._local = threading.local()

    @property
    def rate(self) -> float | None:
        """Requests per second now allowed (None: unlimited)."""
        return self.control.rate

    @rate.setter
    def rate(self, value: float | None) -> None:
        self.control.rate = value

    def acquire(self, stop: threading.Event) -> bool:
        """Wait for a slot; False when the run is stopping instead.

        Each caller reserves its own moment, so a waiting worker wakes once, when its turn
        comes, rather than every waiting worker waking for every request sent.
        """
        while True:
            with self._lock:
                now = self.clock()
                slot = self.control.reserve(now)
            if slot > now and stop.wait(slot - now):
                return False
            with self._lock:
                now = self.clock()
                if self.control.admits(slot, now):
                    self._local.sent = now
                    return True

    def pause(self, seconds: float) -> None:
        """The server asked everyone to wait (429 or 503 with a long Retry-After)."""
        with self._lock:
            self.control.pause(self.clock(), seconds)

    def throttled(self, retry_after: float | None = None) -> None:
        """The server refused a request for being too fast."""
        with self._lock:
            now = self.clock()
            self.control.throttled(now, self._sent(now), retry_after)

    def accepted(self) -> None:
        """The server answered (and so counted) a request."""
        with self._lock:
            now = self.clock()
            self.control.accepted(now, self._sent(now))

    def _sent(self, now: float) -> float:
        sent = getattr(self._local, "sent", None)
        return now if sent is None else float(sent)
