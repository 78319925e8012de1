"""The sandbox's rate limiters: the shapes real APIs and gateways use, on an injected clock.

Each limiter is told the time, so the same code serves the sandbox (``time.monotonic``) and the
throttle's tests (a simulated clock). A refused request costs nothing: it is not counted
against the limit, as in nginx's ``limit_req`` and most API gateways.

- ``fixed-window``: at most ``limit`` requests per calendar second (a counter reset every
  second). A client may send ``limit`` requests at the end of one second and ``limit`` more at
  the start of the next.
- ``sliding-window``: at most ``limit`` requests in any interval of one second (a log of the
  accepted requests' times).
- ``token-bucket``: tokens refill at ``limit`` per second up to ``burst``; each request takes
  one. With a burst of 1 two requests less than ``1/limit`` apart are refused however low the
  average rate (nginx ``limit_req`` without ``burst``).
"""

import math
import threading
from collections import deque
from typing import Protocol

__all__ = ["SHAPES", "FixedWindow", "Limiter", "SlidingWindow", "TokenBucket", "limiter"]

SHAPES = ("sliding-window", "fixed-window", "token-bucket")


class Limiter(Protocol):
    """Admits or refuses one request at time ``now`` (seconds, any monotonic origin)."""

    def admit(self, now: float) -> bool: ...


class FixedWindow:
    """``limit`` requests per window, the count reset when the window's second changes."""

    def __init__(self, limit: float, window: float = 1.0) -> None:
        self.limit = limit
        self.window = window
        self._current = -1
        self._count = 0
        self._lock = threading.Lock()

    def admit(self, now: float) -> bool:
        with self._lock:
            index = math.floor(now / self.window)
            if index != self._current:
                self._current, self._count = index, 0
            if self._count >= self.limit:
                return False
            self._count += 1
            return True


class SlidingWindow:
    """At most ``limit`` accepted requests within any ``window`` seconds."""

    def __init__(self, limit: float, window: float = 1.0) -> None:
        self.limit = limit
        self.window = window
        self._times: deque[float] = deque()
        self._lock = threading.Lock()

    def admit(self, now: float) -> bool:
        with self._lock:
            while self._times and now - self._times[0] >= self.window:
                self._times.popleft()
            if len(self._times) >= self.limit:
                return False
            self._times.append(now)
            return True


class TokenBucket:
    """Refills ``rate`` tokens per second up to ``burst``; starts full."""

    def __init__(self, rate: float, burst: float) -> None:
        self.rate = rate
        self.burst = max(1.0, burst)
        self._tokens = self.burst
        self._last: float | None = None
        self._lock = threading.Lock()

    def admit(self, now: float) -> bool:
        with self._lock:
            if self._last is not None:
                elapsed = max(0.0, now - self._last)
                self._tokens = min(self.burst, self._tokens + elapsed * self.rate)
            self._last = now
            if self._tokens < 1.0 - 1e-9:
                return False
            self._tokens -= 1.0
            return True


def limiter(shape: str, limit: float, burst: float | None = None) -> Limiter:
    """The limiter of that shape; ``burst`` only shapes a token bucket (default: ``limit``)."""
    if shape == "fixed-window":
        return FixedWindow(limit)
    if shape == "sliding-window":
        return SlidingWindow(limit)
    if shape == "token-bucket":
        return TokenBucket(limit, burst if burst is not None else limit)
    raise ValueError(f"unknown limiter shape {shape!r}; use one of {', '.join(SHAPES)}")
