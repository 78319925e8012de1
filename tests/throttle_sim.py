"""A simulated run: workers, network and a rate-limited server on one simulated clock.

Drives the throttle's :class:`RateControl` exactly as the worker threads do (reserve a slot,
wait for it, re-reserve if a pause began meanwhile, report each answer with the time its
request left) against the sandbox's own limiters, with random network delays. Nothing sleeps:
a run of minutes of simulated time takes a fraction of a second, and the same seed gives the
same run.
"""

import heapq
import random
from dataclasses import dataclass, field

from importer.sandbox_limiters import limiter
from importer.sending.throttle import RateControl


@dataclass(frozen=True)
class Scenario:
    """One run: the server's limiter and the client's settings; times in seconds."""

    shape: str
    limit: float
    burst: float | None = None
    rows: int = 2000
    concurrency: int = 16
    latency: float = 0.01
    jitter: float = 0.002
    retry_after: float = 1.0
    client_limit: float | None = None
    stall_every: float = 0.0
    stall_for: float = 0.1
    seed: int = 0


@dataclass
class Outcome:
    """What the server saw: when it accepted each request, how many it refused."""

    accepted: list[float] = field(default_factory=list)
    refused: int = 0
    most_refusals_for_one_row: int = 0
    finished: float = 0.0

    @property
    def requests(self) -> int:
        return len(self.accepted) + self.refused

    @property
    def refused_share(self) -> float:
        return self.refused / self.requests if self.requests else 0.0

    def rate_between(self, start: float, end: float) -> float:
        """Requests the server accepted per second in [start, end)."""
        return sum(start <= t < end for t in self.accepted) / (end - start)


def simulate(scenario: Scenario, control: RateControl | None = None) -> Outcome:
    """Send ``scenario.rows`` rows through ``control`` to the scenario's limiter."""
    rng = random.Random(scenario.seed)
    server = limiter(scenario.shape, scenario.limit, scenario.burst)
    control = control or RateControl(scenario.client_limit)
    outcome = Outcome()
    events: list[tuple[float, int, str, int, float]] = []
    counter = 0
    refusals = [0] * scenario.concurrency
    waiting = scenario.rows

    def push(when: float, kind: str, worker: int, sent: float = 0.0) -> None:
        nonlocal counter
        counter += 1
        heapq.heappush(events, (when, counter, kind, worker, sent))

    def one_way() -> float:
        return scenario.latency / 2 + rng.uniform(0, scenario.jitter)

    stalls = _stalls(scenario, random.Random(scenario.seed + 1))

    def awake(when: float) -> float:
        """When the client can act: a stall (GC, a busy core) holds every worker until it ends."""
        for start, end in stalls:
            if start <= when < end:
                return end
            if start > when:
                break
        return when

    for worker in range(min(scenario.concurrency, waiting)):
        push(0.0, "ready", worker)
    waiting -= min(scenario.concurrency, waiting)
    while events:
        now, _, kind, worker, sent = heapq.heappop(events)
        if kind == "ready":
            slot = control.reserve(now)
            push(awake(slot), "wake", worker, sent=slot)
        elif kind == "wake":
            if control.admits(sent, now):
                push(now + one_way(), "arrive", worker, sent=now)
            else:
                push(now, "ready", worker)
        elif kind == "arrive":
            push(now + one_way(), "ok" if server.admit(now) else "429", worker, sent)
        elif kind == "ok":
            now = awake(now)
            control.accepted(now, sent)
            outcome.accepted.append(now)
            outcome.finished = now
            refusals[worker] = 0
            if waiting:
                waiting -= 1
                push(now, "ready", worker)
        else:
            now = awake(now)
            control.throttled(now, sent, scenario.retry_after)
            outcome.refused += 1
            refusals[worker] += 1
            outcome.most_refusals_for_one_row = max(outcome.most_refusals_for_one_row,
                                                    refusals[worker])
            push(awake(now + scenario.retry_after + rng.uniform(0, 0.1)), "ready", worker)
    return outcome


def _stalls(scenario: Scenario, rng: random.Random) -> list[tuple[float, float]]:
    """Moments the client process does nothing, on average every ``stall_every`` seconds."""
    if not scenario.stall_every:
        return []
    stalls, now = [], 0.0
    horizon = 10 * scenario.rows / scenario.limit + 100
    while now < horizon:
        now += rng.expovariate(1 / scenario.stall_every)
        length = rng.uniform(0, scenario.stall_for)
        stalls.append((now, now + length))
        now += length
    return stalls
