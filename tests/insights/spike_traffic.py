"""Synthetic per-user traffic for the spike detector tests: seasonal, bursty, seeded."""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from tollway.insights.spikes import (
    EntityKey,
    SpikeDetector,
    SpikeEvent,
)

FIVE = 300_000
HOUR = 3_600_000
DAY = 24 * HOUR
WEEK = 7 * DAY
T0 = 1_767_571_200_000  # Monday 2026-01-05 00:00 UTC
TOKENS, COST = "weighted_tokens", "cost_usd"


# -- synthetic traffic ---------------------------------------------------------------


def _shape_of(slot: int) -> float:
    """Activity of a 5-minute slot of the week (0 = Monday 00:00), 1.0 = a working hour."""
    day, hour = divmod(slot // 12, 24)
    if day >= 5:
        return 0.06 if 10 <= hour < 18 else 0.01
    if 9 <= hour < 18:
        if day == 0 and hour == 10:
            return 2.0  # the weekly Monday-morning peak
        return 0.6 if hour == 12 else 1.0
    return 0.2 if hour == 8 or 18 <= hour < 22 else 0.01


SHAPE = [_shape_of(slot) for slot in range(2016)]


def poisson(rng: random.Random, lam: float) -> int:
    if lam > 50:
        return max(0, round(rng.gauss(lam, math.sqrt(lam))))
    limit, k, p = math.exp(-lam), 0, rng.random()
    while p > limit:
        k += 1
        p *= rng.random()
    return k


Multiplier = Callable[["SimUser", int], float]  # a user's traffic factor at a time


@dataclass
class SimUser:
    uid: str
    team: str
    level: float  # tokens per 5 minutes in a working hour
    size: float  # mean tokens per request
    price: float = 5e-6  # dollars per token
    growth: float = 0.0  # per week
    seed: int = 0
    rng: random.Random = field(init=False)
    rates: list[float] = field(init=False)  # requests per bucket, by 5-minute slot of the week

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        self.rates = [self.level / self.size * a for a in SHAPE]

    @property
    def key(self) -> EntityKey:
        return ("user", self.uid, self.team)

    def trace(self, start: int, buckets: int, mult: Multiplier | None = None) -> list[float]:
        """Tokens used in each of `buckets` 5-minute buckets from `start`."""
        rng, rates, scale = self.rng, self.rates, self.size / 0.8
        first = (start - T0) // FIVE
        out = []
        for b in range(buckets):
            lam = rates[(first + b) % 2016]
            if mult is not None:
                lam *= mult(self, start + b * FIVE)
            if self.growth:
                lam *= (1.0 + self.growth) ** ((first + b) * FIVE / WEEK)
            # Nights and weekends (rate < 0.05) take a single draw, without a call.
            n = (rng.random() < lam) if lam < 0.05 else poisson(rng, lam)
            # n requests of gamma(0.8) sizes: bursty, as real request sizes are
            out.append(rng.gammavariate(0.8 * n, scale) if n else 0.0)
        return out


def population(n: int, seed: int, *, teams: int = 10) -> list[SimUser]:
    """Users of very different sizes: working-hour level log-normal around 80k tokens per
    5 minutes, requests of ~15k tokens, prices from $2 to $12 per million tokens."""
    rng = random.Random(seed)
    return [
        SimUser(
            f"u{i}",
            f"team{i % teams}",
            level=math.exp(rng.gauss(math.log(80_000), 0.8)),
            size=15_000 * math.exp(rng.gauss(0, 0.4)),
            price=rng.uniform(2, 12) / 1e6,
            seed=rng.randrange(2**32),
        )
        for i in range(n)
    ]


def simulate(
    users: Sequence[SimUser],
    buckets: int,
    *,
    five: SpikeDetector | None,
    hourly: SpikeDetector | None,
    mult: Multiplier | None = None,
    start: int = T0,
) -> tuple[list[SpikeEvent], list[SpikeEvent]]:
    """Feed `buckets` 5-minute buckets (tokens, and cost when configured) to `five`, their
    hourly sums to `hourly`; returns both detectors' events."""
    five_cost = five is not None and COST in five.config.metrics
    rows = {u.key: {TOKENS: 0.0, COST: 0.0} for u in users}
    feeds = [(rows[u.key], u.trace(start, buckets, mult), u.price) for u in users]
    five_events: list[SpikeEvent] = []
    hourly_events: list[SpikeEvent] = []
    for b in range(buckets):
        t = start + b * FIVE
        if five is not None:
            for row, trace, price in feeds:
                row[TOKENS] = trace[b]
                if five_cost:
                    row[COST] = trace[b] * price
            five_events += five.observe(t, rows)
        if hourly is not None and (t + FIVE) % HOUR == 0:
            for row, trace, price in feeds:
                row[TOKENS] = total = sum(trace[b - 11 : b + 1])
                row[COST] = total * price
            hourly_events += hourly.observe(t + FIVE - HOUR, rows)
    return five_events, hourly_events


def opened(events: Iterable[SpikeEvent], kind: str = "user") -> list[SpikeEvent]:
    return [e for e in events if e.type == "opened" and e.entity[0] == kind]
