"""Spike detector: seasonal baseline, k-of-m alerts with hysteresis, cold start, team rollup.

Synthetic traffic (seeded): per user and 5-minute bucket a Poisson number of requests
whose rate follows weekday/weekend and working-hour seasonality (with a Monday 10:00
peak), each request's size gamma-distributed (shape 0.8: bursty), optional weekly growth,
holidays and injected spikes. Hourly detectors get the sums of the 5-minute buckets.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

import pytest

from tests.insights.spike_traffic import (
    COST,
    DAY,
    FIVE,
    HOUR,
    T0,
    TOKENS,
    WEEK,
    SimUser,
    opened,
    population,
    simulate,
)
from tollway.insights.spikes import (
    MetricLimits,
    SpikeConfig,
    SpikeDetector,
    SpikeEvent,
    score,
)

# -- ordinary traffic: the false-alert rate ------------------------------------------

WARM_WEEKS, MEASURED_WEEKS, USERS = 4, 4, 100


@pytest.fixture(scope="module")
def ordinary() -> tuple[list[SpikeEvent], list[SpikeEvent]]:
    """100 bursty users, 4 weeks of warm-up then 4 measured weeks, both widths."""
    users = population(USERS, seed=11)
    # 5-minute cost would double the run's time (its measured rate is noted below).
    five = SpikeDetector(SpikeConfig.five_minute(metrics={TOKENS: MetricLimits(200_000.0)}))
    hourly = SpikeDetector(SpikeConfig.hourly())
    events = simulate(users, (WARM_WEEKS + MEASURED_WEEKS) * 2016, five=five, hourly=hourly)
    measured = T0 + WARM_WEEKS * WEEK
    return (
        [e for e in events[0] if e.bucket_start_ms >= measured],
        [e for e in events[1] if e.bucket_start_ms >= measured],
    )


def test_false_alert_rate_on_ordinary_seasonal_traffic(
    ordinary: tuple[list[SpikeEvent], list[SpikeEvent]],
) -> None:
    # Measured, alerts per 100 user-days, 5-minute tokens over seeds 11-18: 0.11-0.25 with
    # the default 2 hits of 2 buckets (0.14-0.61 with 2 of 3); hourly 0. Nearly all are a
    # mid-volume user's two big requests in consecutive buckets.
    user_days = USERS * MEASURED_WEEKS * 7
    five, hourly = ordinary
    rates = {
        (width, metric): 100 * sum(1 for e in opened(events) if e.metric == metric) / user_days
        for width, events in (("5m", five), ("1h", hourly))
        for metric in (TOKENS, COST)
    }
    assert all(rate <= 0.5 for rate in rates.values()), rates
    assert not opened(five + hourly, "team")


# -- seasonality, growth and holidays ------------------------------------------------

HOLIDAY = T0 + 5 * WEEK + 2 * DAY  # a Wednesday


@pytest.fixture(scope="module")
def seasonal() -> tuple[list[SpikeEvent], list[SpikeEvent]]:
    """Steady users (many requests per bucket): a tripled Monday 10:00 peak, 20 %/week
    growth, a quiet holiday; a control user gets a sixfold 10:00 peak on one Tuesday.
    Returns the user alerts opened after the warm-up, 5-minute and hourly."""
    rng = random.Random(5)

    def user(uid: str, growth: float = 0.0) -> SimUser:
        level = rng.uniform(150_000, 300_000)
        return SimUser(uid, "ops", level, 4_000, 8e-6, growth, rng.randrange(2**32))

    users = [user(f"peak{i}") for i in range(4)] + [user(f"grow{i}", 0.2) for i in range(4)]
    users.append(user("control"))
    control_peak = T0 + 6 * WEEK + DAY + 10 * HOUR  # Tuesday of week 6, 10:00

    def mult(u: SimUser, t: int) -> float:
        if HOLIDAY <= t < HOLIDAY + DAY:
            return 0.05
        if u.uid.startswith("peak") and (t - T0) % WEEK // HOUR == 10:
            return 3.0  # Monday 10:00, every week
        return 6.0 if u.uid == "control" and control_peak <= t < control_peak + HOUR else 1.0

    five = SpikeDetector(SpikeConfig.five_minute())
    hourly = SpikeDetector(SpikeConfig.hourly())
    events = simulate(users, 8 * 2016, five=five, hourly=hourly, mult=mult)
    measured = T0 + WARM_WEEKS * WEEK
    return (
        [e for e in opened(events[0]) if e.bucket_start_ms >= measured],
        [e for e in opened(events[1]) if e.bucket_start_ms >= measured],
    )


def test_weekly_peaks_growth_and_holidays_do_not_alert(
    seasonal: tuple[list[SpikeEvent], list[SpikeEvent]],
) -> None:
    for events in seasonal:
        assert [e.alert_id for e in events if e.entity[1] != "control"] == []


def test_the_same_peak_off_season_alerts(
    seasonal: tuple[list[SpikeEvent], list[SpikeEvent]],
) -> None:
    control_peak = T0 + 6 * WEEK + DAY + 10 * HOUR
    five, hourly = ([e for e in events if e.entity[1] == "control"] for events in seasonal)
    assert [(e.metric, e.bucket_start_ms) for e in five] == [
        (TOKENS, control_peak + FIVE),
        (COST, control_peak + FIVE),
    ]
    assert hourly == []  # one hourly bucket is a blip: k-of-m needs two


# -- injected spikes: latency, blips, steps ------------------------------------------

ONSET_WEEK = 3


@dataclass
class Injected:
    users: list[SimUser]
    onset: dict[str, int]
    kind: dict[str, str]
    five: list[SpikeEvent]
    hourly: list[SpikeEvent]

    def first_alert(self, uid: str, events: list[SpikeEvent]) -> int | None:
        """Buckets from onset to the first alert at or after it."""
        later = [e.bucket_start_ms for e in opened(events) if e.entity[1] == uid]
        later = [t for t in later if t >= self.onset[uid]]
        return (later[0] - self.onset[uid]) // FIVE if later else None


@pytest.fixture(scope="module")
def injected() -> Injected:
    """60 users, each with its own seed and onset on a weekday of week 3 between 9:00 and
    15:00: 30 get x5 for 3 hours, 15 x10 for 20 minutes, 15 a lasting x5 step. Their
    levels put a x5 excess well above the floors even in the lunch dip (a spike whose
    excess only just clears a floor is hit-or-miss bucket by bucket, so slower)."""
    rng = random.Random(3)
    users, onset, kind = [], {}, {}
    for i in range(60):
        u = SimUser(f"s{i}", f"team{i % 6}", rng.uniform(150_000, 400_000), 10_000, 8e-6)
        u.rng = random.Random(rng.randrange(2**32))
        users.append(u)
        day = rng.randrange(5)
        onset[u.uid] = T0 + ONSET_WEEK * WEEK + day * DAY + 9 * HOUR + rng.randrange(72) * FIVE
        kind[u.uid] = "x5" if i < 30 else "x10" if i < 45 else "step"
    shapes = {"x5": (5.0, 3 * HOUR), "x10": (10.0, 20 * 60_000), "step": (5.0, WEEK)}

    def mult(u: SimUser, t: int) -> float:
        factor, length = shapes[kind[u.uid]]
        return factor if onset[u.uid] <= t < onset[u.uid] + length else 1.0

    five = SpikeDetector(SpikeConfig.five_minute(metrics={TOKENS: MetricLimits(200_000.0)}))
    hourly = SpikeDetector(SpikeConfig.hourly())
    buckets = (ONSET_WEEK * 7 + 5) * 288
    events = simulate(users, buckets, five=five, hourly=hourly, mult=mult)
    return Injected(users, onset, kind, *events)


def test_x5_spike_alerts_within_two_buckets_of_onset(injected: Injected) -> None:
    latencies = [
        injected.first_alert(u.uid, injected.five)
        for u in injected.users
        if injected.kind[u.uid] == "x5"
    ]
    # Measured: 1 bucket (the onset bucket and the next make 2 of 2) for most, 2 for the rest.
    assert all(lat is not None and lat <= 2 for lat in latencies), latencies
    assert sum(lat == 1 for lat in latencies) >= 0.8 * len(latencies)


def test_a_20_minute_x10_burst_alerts_at_5_minutes_but_not_hourly(injected: Injected) -> None:
    for u in injected.users:
        if injected.kind[u.uid] == "x10":
            lat = injected.first_alert(u.uid, injected.five)
            assert lat is not None and lat <= 2, (u.uid, lat)
            assert injected.first_alert(u.uid, injected.hourly) is None


def test_a_step_change_alerts_once_without_flapping(injected: Injected) -> None:
    for u in injected.users:
        if injected.kind[u.uid] == "step":
            lat = injected.first_alert(u.uid, injected.five)
            assert lat is not None and lat <= 2, (u.uid, lat)
            start = injected.onset[u.uid]
            first_hours = [
                e
                for e in opened(injected.five)
                if e.entity[1] == u.uid and start <= e.bucket_start_ms < start + 6 * HOUR
            ]
            assert len(first_hours) == 1


def test_no_alert_before_the_onset(injected: Injected) -> None:
    warm = T0 + 2 * WEEK  # seasonal baselines from here on
    early = [
        e.alert_id
        for e in opened(injected.five + injected.hourly)
        if warm <= e.bucket_start_ms < injected.onset[e.entity[1]]
    ]
    assert early == []


def test_evidence_is_complete_and_consistent(injected: Injected) -> None:
    cfg = SpikeConfig.five_minute()
    events = [e for e in injected.five if e.evidence is not None]
    assert {e.type for e in events} >= {"opened", "resolved"}
    for e in events:
        ev = e.evidence
        assert ev is not None
        assert ev.bucket_start_ms == e.bucket_start_ms
        assert math.isclose(ev.actual - ev.expected, ev.excess, rel_tol=1e-9, abs_tol=1e-6)
        assert ev.lower <= ev.expected <= ev.upper
        assert math.isclose(ev.score, score(ev.actual, ev.expected, ev.mad), rel_tol=1e-9)
        assert ev.source in ("seasonal", "prior", "floor")
        assert [p.bucket_start_ms for p in ev.window] == [
            e.bucket_start_ms - j * cfg.width_ms for j in range(cfg.m - 1, -1, -1)
        ]
        assert ev.window[-1].value == ev.actual
        assert ev.window[-1].hit == (ev.actual >= ev.threshold)
        if e.type == "opened":
            assert ev.window[-1].hit and sum(p.hit for p in ev.window) >= cfg.k
            assert ev.score >= cfg.z_open - 1e-9 and ev.ratio >= cfg.ratio_open - 1e-9
            assert ev.actual >= ev.upper - 1e-6
            assert ev.excess >= cfg.metrics[e.metric].excess_floor - 1e-6
            assert e.opened_ms == e.bucket_start_ms
        assert e.alert_id.startswith(f"user:{e.entity[1]}:{e.metric}:5m@{e.opened_ms}")
