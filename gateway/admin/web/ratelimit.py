"""A token bucket per client address, on an injected clock (seconds as a float).

>>> t = [0.0]
>>> rl = RateLimiter(capacity=2, per_seconds=60, seconds=lambda: t[0])
>>> [rl.allow("1.2.3.4") for _ in range(3)], rl.allow("5.6.7.8")
([True, True, False], True)
>>> t[0] = 30.0; rl.allow("1.2.3.4")
True
"""

from __future__ import annotations

import threading
from typing import Callable


class RateLimiter:
    """At most ``capacity`` requests at once per key, refilled at ``capacity / per_seconds`` per second.

    In-process: several gateway processes each keep their own buckets.
    """

    def __init__(self, *, capacity: int, per_seconds: float, seconds: Callable[[], float],
                 max_keys: int = 100_000) -> None:
        self.capacity, self.rate = float(capacity), capacity / per_seconds
        self.seconds, self.max_keys = seconds, max_keys
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def allow(self, key: str) -> bool:
        now = self.seconds()
        with self._lock:
            tokens, last = self._buckets.get(key, (self.capacity, now))
            tokens = min(self.capacity, tokens + (now - last) * self.rate)
            if len(self._buckets) >= self.max_keys and key not in self._buckets:
                self._forget_full(now)
            if tokens < 1.0:
                self._buckets[key] = (tokens, now)
                return False
            self._buckets[key] = (tokens - 1.0, now)
            return True

    def _forget_full(self, now: float) -> None:
        for k, (tokens, last) in list(self._buckets.items()):
            if tokens + (now - last) * self.rate >= self.capacity:
                del self._buckets[k]
