"""Spike detector: seasonal baseline, k-of-m alerts with hysteresis, cold start, team rollup.

Synthetic traffic (seeded): per user and 5-minute bucket a Poisson number of requests
whose rate follows weekday/weekend and working-hour seasonality (with a Monday 10:00
peak), each request's size gamma-distributed (shape 0.8: bursty), optional weekly growth,
holidays and injected spikes. Hourly detectors get the sums of the 5-minute buckets.
"""

from __future__ import annotations

import math
import random
import statistics
from array import array
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tollway.insights.baseline import SeasonalBaseline, hour_of_week
from tollway.insights.spikes import (
    ROLLUP_METRIC,
    EntityKey,
    MetricLimits,
    Prior,
    PriorFn,
    SpikeConfig,
    SpikeDetector,
    SpikeEvent,
    bounds,
    score,
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


# -- a steady series, step by step ---------------------------------------------------


class Steady:
    """A detector fed steady traffic (`level` +/- 5 %, around the clock) after a warm-up."""

    def __init__(
        self,
        config: SpikeConfig | None = None,
        users: Sequence[tuple[str, str]] = (("ada", "search"),),
        *,
        level: float = 100_000.0,
        weeks: int = 2,
        prior: PriorFn | None = None,
    ) -> None:
        self.detector = SpikeDetector(config or SpikeConfig.five_minute(), prior=prior)
        self.width = self.detector.config.width_ms
        self.users = list(users)
        self.levels = {uid: level * (1 + 0.1 * i) for i, (uid, _) in enumerate(self.users)}
        self.rng = random.Random(1)
        self.t = T0
        self.run(weeks * WEEK // self.width)

    def step(
        self,
        mults: Mapping[str, float] | None = None,
        extra: Mapping[EntityKey, Mapping[str, float]] | None = None,
    ) -> list[SpikeEvent]:
        mults = mults or {}
        values: dict[EntityKey, Mapping[str, float]] = {
            ("user", uid, team): {
                TOKENS: self.levels[uid] * mults.get(uid, 1.0) * self.rng.uniform(0.95, 1.05)
            }
            for uid, team in self.users
        }
        values.update(extra or {})
        events = self.detector.observe(self.t, values)
        self.t += self.width
        return events

    def run(self, buckets: int, mults: Mapping[str, float] | None = None) -> list[SpikeEvent]:
        return [e for _ in range(buckets) for e in self.step(mults)]

    def pattern(self, mults: Iterable[float]) -> list[tuple[int, SpikeEvent]]:
        """Step once per multiplier of the first user; events with their step index."""
        uid = self.users[0][0]
        return [(i, e) for i, m in enumerate(mults) for e in self.step({uid: m})]


def test_by_default_two_hits_in_a_row_open_an_alert() -> None:
    s = Steady()
    assert s.pattern([10, 1, 10, 1, 10, 1]) == []  # every other bucket: never 2 in a row
    events = s.pattern([10, 10])
    assert [(i, e.type) for i, e in events] == [(1, "opened")]


def test_a_single_bucket_blip_does_not_alert() -> None:
    s = Steady(SpikeConfig.five_minute(m=3))
    assert s.pattern([10, 1, 1, 1, 1]) == []
    assert s.pattern([10, 1, 1, 10, 1, 1]) == []  # two hits, but never 2 within 3 buckets
    events = s.pattern([10, 1, 10])  # 2 of the last 3
    assert [(i, e.type) for i, e in events] == [(2, "opened")]
    assert [p.hit for p in events[0][1].evidence.window] == [True, False, True]  # type: ignore[union-attr]


def test_a_missed_bucket_is_unknown_in_the_window_and_no_hit() -> None:
    s = Steady(SpikeConfig.five_minute(m=3))
    assert s.pattern([10]) == []
    s.t += s.width  # the feeder skipped a bucket
    events = s.pattern([10])
    assert [e.type for _, e in events] == ["opened"]  # 2 hits within the last 3 buckets
    window = events[0][1].evidence.window  # type: ignore[union-attr]
    assert [p.hit for p in window] == [True, False, True] and math.isnan(window[1].value)


def test_hysteresis_one_alert_on_a_noisy_plateau_near_the_threshold() -> None:
    rng = random.Random(7)
    plateau = [rng.uniform(2.5, 3.5) for _ in range(36)]  # a hit about half the time
    s = Steady(SpikeConfig.five_minute(m=3))
    events = s.pattern([*plateau, 1, 1, 1, 1, 1])
    assert [(i, e.type) for i, e in events] == [(events[0][0], "opened"), (38, "resolved")]
    twitchy = SpikeConfig.five_minute(
        m=3,
        z_resolve=3.5,
        ratio_resolve=3.0,
        resolve_excess_fraction=1.0,
        resolve_run=1,
        cooldown_ms=0,
    )
    flapping = Steady(twitchy).pattern(plateau)
    assert sum(e.type == "opened" for _, e in flapping) > 3  # what hysteresis prevents


def test_cooldown_before_the_same_key_reopens() -> None:
    s = Steady()
    first = s.pattern([5] * 6 + [1] * 3)
    assert [(i, e.type) for i, e in first] == [(1, "opened"), (8, "resolved")]
    resolved_at = first[-1][1].bucket_start_ms
    # Hits from 30 minutes after the resolution: the key reopens when the hour is over.
    reopened = s.pattern([1] * 5 + [5] * 12)
    assert [(i, e.type) for i, e in reopened] == [(11, "opened")]
    assert reopened[0][1].bucket_start_ms == resolved_at + HOUR


def test_escalates_when_the_excess_doubles() -> None:
    events = Steady().pattern([4, 4, 4, 12, 12, 12, 25])
    assert [(i, e.type) for i, e in events] == [(1, "opened"), (3, "escalated"), (6, "escalated")]
    excesses = [e.evidence.excess for _, e in events if e.evidence]
    assert excesses[1] >= 2 * excesses[0] and excesses[2] >= 2 * excesses[1]


def test_an_absent_entity_counts_as_zero_and_is_eventually_forgotten() -> None:
    s = Steady(SpikeConfig.hourly(), level=600_000.0)
    opened_events = s.pattern([5, 5])
    assert [e.type for _, e in opened_events] == ["opened"]
    s.users = []  # ada stops appearing: zeros, a drop is no spike, and the alert resolves
    events = s.run(3)
    assert [e.type for e in events] == ["resolved"] and events[0].evidence.actual == 0  # type: ignore[union-attr]
    assert len(s.detector) == 1
    assert s.run(4 * 168) == []
    assert len(s.detector) == 0 and len(s.detector.baseline) == 0


# -- cold start ----------------------------------------------------------------------

TEAM = [(f"m{i}", "search") for i in range(5)]


def test_cold_start_borrows_the_team_prior() -> None:
    s = Steady(SpikeConfig.hourly(), TEAM, level=500_000.0)
    newcomer = ("user", "new", "search")
    modest = ("user", "modest", "search")
    events = [
        e for x in (5e6, 5e6) for e in s.step(extra={newcomer: {TOKENS: x}, modest: {TOKENS: 7e5}})
    ]
    assert [(e.type, e.entity[1]) for e in events] == [("opened", "new")]
    evidence = events[0].evidence
    assert evidence is not None and evidence.source == "prior" and evidence.weeks == 0
    assert 500_000 <= evidence.expected <= 700_000  # the members' median


def test_cold_start_without_prior_alerts_only_on_a_large_absolute_excess() -> None:
    s = Steady(SpikeConfig.hourly(), TEAM, level=500_000.0)
    loner = ("user", "loner", "solo")  # a team of one: no siblings, no prior
    big = [e for _ in range(3) for e in s.step(extra={loner: {TOKENS: 4e6}})]
    assert big == []  # huge against nothing, but under the 5M cold floor
    huge = [e for _ in range(2) for e in s.step(extra={loner: {TOKENS: 9e6}})]
    assert [e.type for e in huge] == ["opened"]
    assert huge[0].evidence is not None and huge[0].evidence.source == "floor"


def test_a_caller_prior_comes_first() -> None:
    def prior(key: EntityKey, metric: str, bucket_start_ms: int) -> Prior | None:
        return Prior(6e6, 5e5) if key[1] == "bulk" else None

    s = Steady(SpikeConfig.hourly(), TEAM, level=500_000.0, prior=prior)
    bulk = ("user", "bulk", "search")
    assert [e for _ in range(3) for e in s.step(extra={bulk: {TOKENS: 5e6}})] == []
    events = [e for _ in range(2) for e in s.step(extra={bulk: {TOKENS: 3e7}})]
    assert [e.type for e in events] == ["opened"]
    assert events[0].evidence is not None and events[0].evidence.expected == 6e6


# -- team rollup ---------------------------------------------------------------------


def test_users_of_one_team_spiking_together_make_one_team_incident() -> None:
    users = [(f"a{i}", "A") for i in range(5)] + [(f"b{i}", "B") for i in range(5)]
    s = Steady(SpikeConfig.hourly(), [*users, ("c0", "C")], level=500_000.0)
    spike = {"a0": 5.0, "a1": 5.0, "a2": 5.0}
    events = s.run(3, spike) + s.run(4)
    user_opened = [e for e in events if e.type == "opened" and e.entity[0] == "user"]
    teams = [e for e in events if e.entity[0] == "team"]
    assert sorted(e.entity[1] for e in user_opened) == ["a0", "a1", "a2"]
    assert [(e.type, e.entity, e.metric) for e in teams] == [
        ("opened", ("team", "A"), ROLLUP_METRIC),
        ("resolved", ("team", "A"), ROLLUP_METRIC),
    ]
    incident = teams[0]
    assert sorted(m.user for m in incident.members) == ["a0", "a1", "a2"]
    assert {m.alert_id for m in incident.members} == {e.alert_id for e in user_opened}
    assert {e.incident_id for e in events if e.entity[0] == "user"} == {incident.alert_id}
    assert events.index(teams[1]) > max(
        events.index(e) for e in events if e.type == "resolved" and e.entity[0] == "user"
    )
    # Users of different teams spiking together stay unrelated alerts.
    apart = s.run(3, {"b0": 5.0, "c0": 5.0})
    assert sorted(e.entity[1] for e in opened(apart)) == ["b0", "c0"]
    assert [e for e in apart if e.entity[0] == "team"] == []


def test_a_team_incident_grows_as_members_join() -> None:
    users = [(f"a{i}", "A") for i in range(5)]
    s = Steady(SpikeConfig.hourly(), users, level=500_000.0)
    assert [e.entity[1] for e in opened(s.run(3, {"a0": 5.0}))] == ["a0"]
    joined = s.run(2, {"a0": 5.0, "a1": 5.0})
    team = [e for e in joined if e.entity[0] == "team"]
    assert [(e.type, [m.user for m in e.members]) for e in team] == [("opened", ["a0", "a1"])]
    grown = s.run(2, {"a0": 5.0, "a1": 5.0, "a2": 5.0})
    team = [e for e in grown if e.entity[0] == "team"]
    assert [(e.type, [m.user for m in e.members]) for e in team] == [
        ("escalated", ["a0", "a1", "a2"])
    ]
    assert s.detector.open_alerts()[-1] == team[0].alert_id


# -- arithmetic ----------------------------------------------------------------------


def test_hour_of_week_starts_on_monday() -> None:
    assert hour_of_week(T0) == 0
    assert hour_of_week(T0 + 10 * HOUR) == 10
    assert hour_of_week(T0 + WEEK - 1) == 167


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(0, 1e9, allow_nan=False), min_size=1, max_size=7))
def test_expected_is_the_median_of_the_last_weeks(weekly: list[float]) -> None:
    baseline = SeasonalBaseline(HOUR, weeks=4, trend_bounds=(1.0, 1.0))
    for week, total in enumerate(weekly):
        baseline.seed_hour(("user", "ada"), TOKENS, T0 + week * WEEK + 10 * HOUR, total)
    got = baseline.expected(("user", "ada"), TOKENS, T0 + len(weekly) * WEEK + 10 * HOUR)
    recent = list(array("f", weekly[-4:]))  # stored as float32
    assert got is not None and got.weeks == len(recent)
    assert min(recent) <= got.median <= max(recent)
    assert math.isclose(got.median, statistics.median(recent), rel_tol=1e-6)
    assert 0 <= got.mad <= max(recent) - min(recent)
    assert got.expected == got.median  # trend pinned to 1


def test_five_minute_buckets_use_hour_means_and_within_hour_spread() -> None:
    baseline = SeasonalBaseline(FIVE)
    for week in range(2):
        start = T0 + week * WEEK + 9 * HOUR
        for i in range(12):
            baseline.add(("user", "ada"), TOKENS, start + i * FIVE, 100.0 if i % 2 else 300.0)
    got = baseline.expected(("user", "ada"), TOKENS, T0 + 2 * WEEK + 9 * HOUR + 5 * FIVE)
    assert got is not None and got.weeks == 2
    assert got.median == 200.0  # the hour's mean per bucket
    assert math.isclose(got.mad, 0.8453 * 100.0, rel_tol=1e-4)  # all within-hour spread


@settings(max_examples=300, deadline=None)
@given(
    st.floats(0, 1e8),
    st.floats(0, 1e8),
    st.floats(0, 1e9),
    st.floats(0, 1e9),
    st.sampled_from(["seasonal", "prior", "floor"]),
)
def test_score_and_decisions_are_monotone_in_x(
    expected: float, spread: float, x1: float, x2: float, source: str
) -> None:
    cfg = SpikeConfig.five_minute()
    lo, hi = sorted((x1, x2))
    b = bounds(cfg, MetricLimits(200_000.0), expected, spread, source)  # type: ignore[arg-type]
    assert b.mad > 0
    assert score(lo, expected, b.mad) <= score(hi, expected, b.mad)
    assert b.calm_below <= b.hit_at  # nothing is both a hit and calm
    if lo >= b.hit_at:
        assert hi >= b.hit_at
        if source != "floor":
            assert score(lo, expected, b.mad) >= cfg.z_open - 1e-9
    if lo >= b.hit_at and expected > 0:
        assert lo / expected >= cfg.ratio_open - 1e-9


def test_observe_rejects_misaligned_or_repeated_buckets() -> None:
    detector = SpikeDetector()
    with pytest.raises(ValueError, match="aligned"):
        detector.observe(T0 + 1, {})
    detector.observe(T0, {("user", "ada", None): {"requests": 5.0}})
    assert len(detector) == 0  # a metric without limits is not tracked
    with pytest.raises(ValueError, match="increasing"):
        detector.observe(T0, {})
    with pytest.raises(ValueError):
        SpikeConfig(k=4, m=3)
    with pytest.raises(ValueError):
        SpikeConfig(width_ms=7 * 60_000)
