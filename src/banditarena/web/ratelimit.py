"""Rate limits: token buckets keyed by session or client address, and a throttle for repeated failures.

Both count what they refuse (``refused``, ``refused_by_key``), are thread-safe, and keep a bounded number of
keys (the least recently seen are forgotten first).
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass


class RateLimiter:
    """Token bucket per key: ``burst`` requests at once, refilled at ``rate_per_s``.

    ``allow(key)`` takes one token and says whether there was one; a refusal is counted.
    """

    def __init__(self, rate_per_s: float, burst: int, *, name: str = "requests", max_keys: int = 100_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if rate_per_s <= 0 or burst < 1:
            raise ValueError("rate_per_s must be > 0 and burst >= 1")
        self.rate, self.burst, self.name = float(rate_per_s), float(burst), name
        self.max_keys, self.clock = int(max_keys), clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()
        self.refused = 0
        self.refused_by_key: dict[str, int] = {}

    def _level(self, key: str, now: float) -> float:
        tokens, last = self._buckets.get(key, (self.burst, now))
        return min(self.burst, tokens + (now - last) * self.rate)

    def allow(self, key: str, cost: float = 1.0) -> bool:
        with self._lock:
            now = self.clock()
            tokens = self._level(key, now)
            ok = tokens >= cost
            self._buckets[key] = (tokens - cost if ok else tokens, now)
            self._buckets.move_to_end(key)
            while len(self._buckets) > self.max_keys:
                self._buckets.popitem(last=False)
            if not ok:
                self.refused += 1
                self.refused_by_key[key] = self.refused_by_key.get(key, 0) + 1
                if len(self.refused_by_key) > self.max_keys:
                    self.refused_by_key.pop(next(iter(self.refused_by_key)))
            return ok

    def retry_after(self, key: str, cost: float = 1.0) -> float:
        """Seconds until ``allow(key)`` would succeed."""
        with self._lock:
            tokens = self._level(key, self.clock())
        return max(0.0, (cost - tokens) / self.rate)


class FailureThrottle:
    """Repeated failures slow down: after ``free`` failures of a key (within ``window_s`` of each other),
    every further attempt must wait ``base_s * 2 ** (failures - free)`` seconds (at most ``max_s``) after
    the last failure. ``wait_s(key) > 0`` means refuse now (and counts the refusal); a success resets."""

    def __init__(self, free: int = 5, base_s: float = 1.0, max_s: float = 900.0, window_s: float = 3600.0, *,
                 max_keys: int = 100_000, clock: Callable[[], float] = time.monotonic) -> None:
        self.free, self.base_s, self.max_s, self.window_s = int(free), float(base_s), float(max_s), float(window_s)
        self.max_keys, self.clock = int(max_keys), clock
        self._fails: OrderedDict[str, tuple[int, float]] = OrderedDict()
        self._lock = threading.Lock()
        self.refused = 0
        self.failures = 0

    def _delay(self, n: int) -> float:
        if n < self.free:
            return 0.0
        return min(self.max_s, self.base_s * math.pow(2.0, n - self.free))

    def wait_s(self, key: str) -> float:
        """Seconds the next attempt of ``key`` must still wait (0: go ahead). A positive answer is counted."""
        with self._lock:
            n, last = self._fails.get(key, (0, 0.0))
            now = self.clock()
            if n and now - last > self.window_s:
                self._fails.pop(key, None)
                return 0.0
            wait = last + self._delay(n) - now if n else 0.0
            if wait > 0:
                self.refused += 1
                return wait
            return 0.0

    def failure(self, key: str) -> None:
        with self._lock:
            n, _ = self._fails.get(key, (0, 0.0))
            self._fails[key] = (n + 1, self.clock())
            self._fails.move_to_end(key)
            self.failures += 1
            while len(self._fails) > self.max_keys:
                self._fails.popitem(last=False)

    def success(self, key: str) -> None:
        with self._lock:
            self._fails.pop(key, None)


@dataclass
class RateLimit:
    """One action's limits: a bucket per session (or signed-in subject) and one per client address.

    Addresses are shared (a classroom behind one router), so the address bucket is the generous one.
    """

    name: str
    per_session: RateLimiter | None = None
    per_address: RateLimiter | None = None

    @classmethod
    def of(cls, name: str, session: tuple[float, int] | None, address: tuple[float, int] | None) -> RateLimit:
        """``RateLimit.of("answers", (1.0, 10), (20.0, 200))``: (rate per second, burst) for each key."""
        return cls(name, RateLimiter(*session, name=f"{name}/session") if session else None,
                   RateLimiter(*address, name=f"{name}/address") if address else None)

    def check(self, session_key: str, address: str) -> float:
        """0 if allowed (tokens taken), else the seconds to wait."""
        for limiter, key in ((self.per_session, session_key), (self.per_address, address)):
            if limiter is not None and not limiter.allow(key):
                return max(limiter.retry_after(key), 1.0)
        return 0.0

    @property
    def refused(self) -> int:
        return sum(x.refused for x in (self.per_session, self.per_address) if x is not None)
