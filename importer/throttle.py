"""How fast all workers together may send: a shared rate, and pauses the server asks for.

One throttle is shared by every worker, so a 429 seen by one slows the whole run, and
``--rate-limit`` caps the sum of all workers rather than each one. Without a cap the rate is
unlimited until the server first pushes back; from then on it adapts (additive increase,
multiplicative decrease), so a run settles just under the server's limit instead of bursting
into it again after every pause.
"""

import threading
import time

DECREASE = 0.75
INCREASE_PER_SECOND = 4.0
MIN_RATE = 0.5


class Throttle:
    """Spaces requests evenly at the current rate and holds them all during a pause."""

    def __init__(self, limit: float | None = None, *, adaptive: bool = True) -> None:
        self.limit = limit
        self.adaptive = adaptive
        self.rate = limit
        self._next = 0.0
        self._paused_until = 0.0
        self._last_decrease = 0.0
        self._lock = threading.Lock()
        self._sent_times: list[float] = []

    def acquire(self, stop: threading.Event) -> bool:
        """Wait for a slot; False when the run is stopping instead."""
        while True:
            with self._lock:
                now = time.monotonic()
                wait = max(self._paused_until, self._next) - now
                if wait <= 0:
                    self._take(now)
                    return True
            if stop.wait(min(wait, 0.25)):
                return False

    def _take(self, now: float) -> None:
        if self.rate:
            self._next = max(self._next, now) + 1.0 / self.rate
        self._sent_times.append(now)
        if len(self._sent_times) > 256:
            del self._sent_times[:128]

    def pause(self, seconds: float) -> None:
        """The server asked everyone to wait (429 or 503 with Retry-After)."""
        with self._lock:
            self._paused_until = max(self._paused_until, time.monotonic() + seconds)

    def throttled(self) -> None:
        """The server refused a request for being too fast: slow everyone down."""
        if not self.adaptive:
            return
        with self._lock:
            now = time.monotonic()
            if now - self._last_decrease < 1.0:
                return
            self._last_decrease = now
            known = [x for x in (self.rate, self._observed_rate(), self.limit) if x]
            self.rate = max(MIN_RATE, min(known, default=10.0) * DECREASE)

    def accepted(self) -> None:
        """A request went through: creep back towards the cap (or the server's limit)."""
        if not (self.adaptive and self.rate):
            return
        with self._lock:
            rate = self.rate + INCREASE_PER_SECOND / self.rate
            self.rate = min(rate, self.limit) if self.limit else rate

    def _observed_rate(self) -> float | None:
        """Requests per second over the last second of sending."""
        now = time.monotonic()
        recent = [t for t in self._sent_times if now - t <= 1.0]
        return float(len(recent)) if len(recent) >= 2 else None
