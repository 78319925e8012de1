"""How fast all workers together may send: a shared rate, and pauses the server asks for.

One throttle is shared by every worker, so a 429 seen by one slows the whole run, and
``--rate-limit`` caps the sum of all workers rather than each one. Without a cap the rate is
unlimited until the server first pushes back. From then on it adapts: a 429 sets the rate just
under what the server accepted in the last second (its limit, as far as we can see), and
successes probe upwards slowly, so a run settles under the server's limit instead of bursting
into it again after every pause. After a decrease the rate climbs back to just under that
limit within a couple of seconds, and only then probes above it slowly.
"""

import threading
import time
from collections import deque

BELOW_LIMIT = 0.9
CRUISE = 0.97
RECOVERY_SECONDS = 2.0
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
        self._ceiling: float | None = None
        self._accepted: deque[float] = deque()
        self._lock = threading.Lock()

    def acquire(self, stop: threading.Event) -> bool:
        """Wait for a slot; False when the run is stopping instead.

        Each caller reserves its own moment, so a waiting worker wakes once, when its turn
        comes, rather than every waiting worker waking for every request sent.
        """
        while True:
            with self._lock:
                now = time.monotonic()
                slot = max(self._next, now, self._paused_until)
                if self.rate:
                    self._next = slot + 1.0 / self.rate
            if slot > now and stop.wait(slot - now):
                return False
            if self._paused_until <= slot:
                return True

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
            self._ceiling = accepted if accepted >= 2 else (self.rate or 10.0)
            self.rate = max(MIN_RATE, self._ceiling * BELOW_LIMIT)
            if self.limit:
                self.rate = min(self.rate, self.limit)

    def accepted(self) -> None:
        """A request went through: remember it, and probe slowly towards a higher rate."""
        with self._lock:
            now = time.monotonic()
            self._accepted.append(now)
            self._accepted_rate(now)
            if self.adaptive and self.rate:
                self.rate = self._raised(self.rate)

    def _raised(self, rate: float) -> float:
        """One success's worth of increase: back to cruising speed fast, then a slow probe."""
        cruise = (self._ceiling or 0.0) * CRUISE
        if rate < cruise:
            rate += (cruise - rate) / (RECOVERY_SECONDS * rate)
        else:
            rate += PROBE_PER_SECOND / rate
        return min(rate, self.limit) if self.limit else rate

    def _accepted_rate(self, now: float) -> float:
        """Requests the server accepted during the last second."""
        while self._accepted and now - self._accepted[0] > WINDOW:
            self._accepted.popleft()
        return float(len(self._accepted))
