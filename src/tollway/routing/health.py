"""Passive deployment health, load counts and retry budgets.

No probes: a deployment that fails `failures_to_cool` times in a row (errors,
429s, timeouts) cools down for `cooldown_s` and is tried only after every
healthy one. A retry budget per model caps fallback attempts at a fraction of
the traffic, so a failing upstream cannot multiply the load on the others.
"""

from __future__ import annotations

import time
from collections import defaultdict


class DeploymentHealth:
    """Consecutive failures, cool-downs and in-flight counts per deployment id."""

    def __init__(self, *, failures_to_cool: int = 3, cooldown_s: float = 30.0) -> None:
        self.failures_to_cool = failures_to_cool
        self.cooldown_s = cooldown_s
        self._failures: dict[str, int] = defaultdict(int)
        self._cool_until: dict[str, float] = {}
        self.in_flight: dict[str, int] = defaultdict(int)

    def cooling(self, deployment_id: str, now: float | None = None) -> bool:
        until = self._cool_until.get(deployment_id)
        if until is None:
            return False
        if (now if now is not None else time.monotonic()) >= until:
            del self._cool_until[deployment_id]
            self._failures[deployment_id] = 0
            return False
        return True

    def succeeded(self, deployment_id: str) -> None:
        self._failures[deployment_id] = 0
        self._cool_until.pop(deployment_id, None)

    def failed(self, deployment_id: str, now: float | None = None) -> None:
        self._failures[deployment_id] += 1
        if self._failures[deployment_id] >= self.failures_to_cool:
            self._cool_until[deployment_id] = (
                now if now is not None else time.monotonic()
            ) + self.cooldown_s

    def started(self, deployment_id: str) -> None:
        self.in_flight[deployment_id] += 1

    def finished(self, deployment_id: str) -> None:
        if self.in_flight[deployment_id] > 0:
            self.in_flight[deployment_id] -= 1


class RetryBudget:
    """A token bucket: each request earns `ratio` of a retry, each retry spends one.

    `min_per_s` retries per second are always allowed so low-traffic models
    still fail over; the bucket holds at most `cap` retries.
    """

    def __init__(self, ratio: float = 0.2, min_per_s: float = 5.0, cap: float = 100.0) -> None:
        self.ratio = ratio
        self.min_per_s = min_per_s
        self.cap = cap
        self._tokens = min_per_s
        self._last = time.monotonic()

    def deposit(self) -> None:
        self._tokens = min(self.cap, self._tokens + self.ratio)

    def try_spend(self, now: float | None = None) -> bool:
        now = now if now is not None else time.monotonic()
        self._tokens = min(self.cap, self._tokens + (now - self._last) * self.min_per_s)
        self._last = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False
