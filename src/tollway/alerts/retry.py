"""Retry policy for alert delivery: exponential backoff with jitter, capped."""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How many attempts a sink gets, and how long to wait between them."""

    max_attempts: int = 5
    initial_backoff_s: float = 0.5
    max_backoff_s: float = 30.0

    def delay(self, attempt: int, rng: random.Random, retry_after_s: float | None = None) -> float:
        """Seconds to wait after failed attempt `attempt` (1-based).

        A receiver's Retry-After wins over the computed backoff (still capped, so a
        hostile or confused receiver cannot park a delivery for hours). Otherwise the
        delay doubles per attempt, with "equal jitter" in [base/2, base] so retries
        from many alerts to one recovering receiver do not arrive in lockstep.
        """
        if retry_after_s is not None:
            return max(0.0, min(retry_after_s, self.max_backoff_s))
        base = min(self.max_backoff_s, self.initial_backoff_s * 2 ** (attempt - 1))
        return base / 2 + rng.random() * base / 2
