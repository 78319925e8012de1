"""How fast all workers together may send: a shared rate, and pauses the server asks for.

One throttle is shared by every worker, so a 429 seen by one slows the whole run, and
``--rate-limit`` caps the sum of all workers rather than each one. Without a cap the rate is
unlimited until the server first pushes back. From then on it adapts: a 429 sets the rate just
under what the server accepted in the last second (its limit, as far as we can see), and
successes probe upwards slowly, so a run settles under the server's limit instead of bursting
into it again after every pause.
"""

import threading
import time
from collections import deque

BELOW_LIMIT = 0.9
PROBE_PER_SECOND = 1.0
MIN_RATE = 0.5
WINDOW = 1.0


class Throttle:
    """Spaces requests evenly at the current rate and holds them all during a pause."""

    def __init__(self, limit: float | None = None, *, adaptive: bool = True) -> None:
        self.limit = limit
        self.adaptive = adaptive
        self.rate = limit
        self._next = 0.0
        self._paused_until = 0.0
        self._last_decrease = 0.0
        self._accepted: deque[float] = deque()
        self._lock = threading.Lock()

    def acquire(self, stop: threading.Event) -> bool:
        """Wait for a slot; False when the run is stopping instead."""
        while True:
            with self._lock:
                now = time.monotonic()
                wait = max(self._paused_until, self._next) - now
                if wait <= 0:
                    if self.rate:
                        self._next = max(self._next, now) + 1.0 / self.rate
                    return True
            if stop.wait(min(wait, 0.25)):
                return False

    def pause(self, seconds: float) -> None:
        """The server asked everyone to wait (429 or 503 with Retry-After)."""
        with self._lock:
            self._paused_until = max(self._paused_until, time.monotonic() + seconds)

    def throttled(self) -> None:
        """The server refused a request for being too fast: slow everyone down, once a second."""
        if not self.adaptive:
            return
        with self._lock:
            now = time.monotonic()
            if now - self._last_decrease < WINDOW:
                return
            self._last_decrease = now
            accepted = self._accepted_rate(now)
            ceiling = accepted if accepted >= 2 else (self.rate or 10.0)
            self.rate = max(MIN_RATE, ceiling * BELOW_LIMIT)
            if self.limit:
                self.rate = min(self.rate, self.limit)

    def accepted(self) -> None:
        """A request went through: remember it, and probe slowly towards a higher rate."""
        with self._lock:
            now = time.monotonic()
            self._accepted.append(now)
            self._accepted_rate(now)
            if self.adaptive and self.rate:
                rate = self.rate + PROBE_PER_SECOND / self.rate
                self.rate = min(rate, self.limit) if self.limit else rate

    def _accepted_rate(self, now: float) -> float:
        """Requests the server accepted during the last second."""
        while self._accepted and now - self._accepted[0] > WINDOW:
            self._accepted.popleft()
        return float(len(self._accepted))
