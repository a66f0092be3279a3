"""Consumption-spike detector: decides, bucket by bucket, which series open and close alerts.

A feeder (from the ledger) calls `SpikeDetector.observe` once per closed bucket with every
entity's values; the detector returns `SpikeEvent`s for someone else to store and
dispatch. It reads no clock (time is the bucket start) and does no I/O. One detector
serves one bucket width: run one with `SpikeConfig.five_minute()` and one with `.hourly()`.

    SpikeConfig(width_ms=300_000, metrics={"weighted_tokens": MetricLimits(200_000.0),
                "cost_usd": MetricLimits(2.0)}, weeks=4, min_weeks=2, z_open=3.5,
                ratio_open=3.0, k=2, m=2, z_resolve=2.0, ratio_resolve=1.5, resolve_run=3,
                resolve_excess_fraction=0.25, escalate_factor=2.0, cooldown_ms=3_600_000,
                mad_rel_floor=0.1, trend_halflife_ms=3 days, trend_bounds=(0.75, 2.0),
                prior_min_members=3, rollup_min_users=2)
    MetricLimits(excess_floor, cold_floor=5 x excess_floor, mad_floor=excess_floor / 10)
    SpikeDetector(config=None, *, prior: PriorFn | None = None)
        .observe(bucket_start_ms, {(kind, id, parent): {metric: value}}) -> list[SpikeEvent]
        .open_alerts() -> list[str]     .baseline -> SeasonalBaseline     len() -> series
    PriorFn = Callable[[(kind, id, parent), metric, bucket_start_ms], Prior(median, mad) | None]
    SpikeEvent(type, alert_id, entity, metric, width_ms, bucket_start_ms, opened_ms, parent,
               evidence, members, incident_id)      # type: opened | escalated | resolved
    Evidence(bucket_start_ms, actual, expected, lower, upper, threshold, score, ratio,
             excess, mad, trend, weeks, source, window)  # source: seasonal | prior | floor
    bounds(config, limits, expected, spread, source) -> Bounds(mad, hit_at, calm_below)
    score(x, expected, mad) -> float

Per series (entity, metric) the expectation for a bucket comes from `SeasonalBaseline`
(hour-of-week median over `weeks` weeks x a clamped trend, MAD spread), with source:

- `seasonal`: at least `min_weeks` weeks of own history at this hour-of-week;
- `prior`: otherwise the caller's `prior` callback (asked once per series and hour), else
  the **siblings'** distribution: median and MAD of the seasonal medians of the other
  entities of the same kind and parent (a user's team mates), if `prior_min_members` have one;
- `floor`: neither; expected is the own partial median (or 0), the score is not used, and
  only an excess of at least the metric's `cold_floor` (with the ratio) makes a hit.

A bucket is a **hit** when the modified z-score 0.6745 (x - expected) / MAD >= `z_open`
(MAD floored at max(MAD, `mad_rel_floor` x expected / 1.4826, the metric's `mad_floor`)),
x / expected >= `ratio_open` and x - expected >= the metric's `excess_floor`: all three
fold into one `threshold` per series and hour, so a quiet bucket costs two comparisons.
An alert **opens** on a hit when at least `k` of the last `m` buckets were hits, unless the
key is in its `cooldown_ms` after a resolution; it **escalates** when its excess reaches
`escalate_factor` x the excess last reported; it **resolves** after `resolve_run`
consecutive calm buckets (score < `z_resolve` and ratio < `ratio_resolve`, or an excess
below `resolve_excess_fraction` x the floor). One alert per (entity, metric, width): the
alert id is "kind:id:metric:width@opened_ms". Users' alerts also feed the team rollup
(`rollup.TeamRollup`): one team incident when `rollup_min_users` users spike at once.

Input keys are (kind, id, parent): the parent of a user is its team, of a team its org
(or None); values are consumption, >= 0. A series seen before and absent from a bucket
counts as 0; one with no nonzero value for `weeks` weeks and no open alert is forgotten.
Metrics without `MetricLimits` in the config are ignored. A lasting step change alerts on
the day it happens and, since night buckets are calm, may reopen on the next working days
until the trend (capped at `trend_bounds[1]`) or the seasonal history absorbs it.

    detector = SpikeDetector(SpikeConfig.five_minute())
    for bucket_start_ms, values in closed_buckets:  # from the ledger
        # values: {("user", "ada", "search"): {"weighted_tokens": 1.2e6, "cost_usd": 3.1},
        #          ("team", "search", "acme"): {...}, ("org", "acme", None): {...}}
        for event in detector.observe(bucket_start_ms, values):
            store(event)  # event.type, event.alert_id, event.evidence.actual, ...
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import NamedTuple

from tollway.insights.baseline import (
    HOUR_MS,
    WEEK_MS,
    Entity,
    Expectation,
    SeasonalBaseline,
    SeriesHistory,
    median,
)
from tollway.insights.rollup import TeamRollup
from tollway.insights.spike_types import (
    ROLLUP_METRIC,
    EntityKey,
    EventType,
    Evidence,
    Member,
    MetricLimits,
    Prior,
    PriorFn,
    Source,
    SpikeConfig,
    SpikeEvent,
    WindowPoint,
)

__all__ = [
    "ROLLUP_METRIC",
    "Bounds",
    "EntityKey",
    "Evidence",
    "Expectation",
    "Member",
    "MetricLimits",
    "Prior",
    "PriorFn",
    "SeasonalBaseline",
    "SpikeConfig",
    "SpikeDetector",
    "SpikeEvent",
    "WindowPoint",
    "bounds",
    "score",
]

_Z = 0.6745  # Iglewicz-Hoaglin: MAD x 1.4826 estimates sigma, and 1 / 1.4826 = 0.6745


class Bounds(NamedTuple):
    """A series' thresholds for one hour, as values of x."""

    mad: float  # the floored MAD
    hit_at: float  # x >= hit_at is a hit
    calm_below: float  # x < calm_below is calm


def bounds(
    config: SpikeConfig, limits: MetricLimits, expected: float, spread: float, source: Source
) -> Bounds:
    """Where a hit starts and calm ends, given an expectation (each test folded into one bound).

    hit <=> score >= z_open and ratio >= ratio_open and excess >= floor (no score test
    for source `floor`); calm <=> (score < z_resolve and ratio < ratio_resolve) or excess <
    resolve_excess_fraction x floor. The floor is `cold_floor` for source `floor`."""
    cfg, e = config, expected
    mad = max(spread, cfg.mad_rel_floor * e / 1.4826, limits.mad_floor)
    if source == "floor":
        floor = limits.cold_floor
        hit_at = max(e + floor, cfg.ratio_open * e)
    else:
        floor = limits.excess_floor
        hit_at = max(e + cfg.z_open * mad / _Z, e + floor, cfg.ratio_open * e)
    calm_below = max(
        min(e + cfg.z_resolve * mad / _Z, cfg.ratio_resolve * e),
        e + cfg.resolve_excess_fraction * floor,
    )
    return Bounds(mad, hit_at, calm_below)


def score(x: float, expected: float, mad: float) -> float:
    """The modified z-score (Iglewicz-Hoaglin) of `x`: 0.6745 (x - expected) / MAD."""
    return _Z * (x - expected) / mad


class _Series:
    """Detection state of one (entity, metric): this hour's thresholds, window, alert."""

    __slots__ = (
        "alert",
        "calm",
        "cooldown_until",
        "e",
        "entity",
        "floor",
        "hist",
        "hits",
        "hour",
        "incident",
        "last_nonzero",
        "limits",
        "mad",
        "metric",
        "opened_ms",
        "parent",
        "ref_excess",
        "ring",
        "seen",
        "source",
        "trend",
        "weeks",
        "x_calm",
        "x_hit",
    )

    def __init__(
        self,
        entity: Entity,
        metric: str,
        parent: str | None,
        limits: MetricLimits,
        hist: SeriesHistory,
        m: int,
    ) -> None:
        self.entity = entity
        self.metric = metric
        self.parent = parent
        self.limits = limits
        self.floor = min(limits.excess_floor, limits.cold_floor)  # no hit below this
        self.hist = hist
        self.ring = [0.0] * m  # the last m values by bucket index % m; 0 before it appeared
        self.hits = 0  # bit j: the bucket j buckets ago was a hit
        self.seen = -1
        self.last_nonzero = 0
        # The expectation and thresholds hold for a whole hour: history and trend only
        # change when an hour closes, so a 5-minute bucket usually skips recomputing them.
        self.hour = -1
        self.e = self.mad = self.trend = 0.0
        self.weeks = 0
        self.source: Source = "floor"
        self.x_hit = self.x_calm = 0.0
        self.alert: str | None = None
        self.opened_ms = 0
        self.ref_excess = 0.0
        self.calm = 0
        self.cooldown_until = -1
        self.incident: str | None = None


class SpikeDetector:
    """Feeds a seasonal baseline bucket by bucket and emits spike alert events."""

    def __init__(self, config: SpikeConfig | None = None, *, prior: PriorFn | None = None):
        self.config = cfg = config or SpikeConfig()
        self.baseline = SeasonalBaseline(
            cfg.width_ms,
            weeks=cfg.weeks,
            trend_halflife_ms=cfg.trend_halflife_ms,
            trend_bounds=cfg.trend_bounds,
        )
        self._prior = prior
        self._series: dict[tuple[str, str, str], _Series] = {}
        self._last_idx: int | None = None
        self._label = _width_label(cfg.width_ms)
        self._mask = (1 << cfg.m) - 1
        self._rollup = TeamRollup(cfg, self._label)
        self._sibling_hour = -1
        self._siblings: dict[tuple[str, str, str], Prior] = {}

    def __len__(self) -> int:
        """Series tracked."""
        return len(self._series)

    def open_alerts(self) -> list[str]:
        """Ids of the alerts open now (team incidents included)."""
        alerts = [s.alert for s in self._series.values() if s.alert is not None]
        return alerts + self._rollup.open_ids()

    def observe(
        self, bucket_start_ms: int, values: Mapping[EntityKey, Mapping[str, float]]
    ) -> list[SpikeEvent]:
        """Judge one closed bucket of every entity's values; buckets in increasing order."""
        cfg = self.config
        t = bucket_start_ms
        if t % cfg.width_ms:
            raise ValueError(f"bucket start {t} is not aligned to {cfg.width_ms} ms")
        idx = t // cfg.width_ms
        if self._last_idx is not None:
            if idx <= self._last_idx:
                raise ValueError("buckets must be observed in increasing order")
            if idx - self._last_idx > 1:
                self._skip(idx - self._last_idx - 1, idx)
        self._last_idx = idx
        hour = t // HOUR_MS
        events: list[SpikeEvent] = []
        limits = cfg.metrics
        series = self._series
        m, mask, refresh, judge = cfg.m, self._mask, self._refresh, self._judge
        stepped = 0
        for (kind, eid, parent), metrics in values.items():
            for metric, x in metrics.items():
                s = series.get((kind, eid, metric))
                if s is None:
                    lim = limits.get(metric)
                    if lim is None:
                        continue
                    entity = (kind, eid)
                    hist = self.baseline.series(entity, metric)
                    s = series[(kind, eid, metric)] = _Series(
                        entity, metric, parent, lim, hist, cfg.m
                    )
                    s.last_nonzero = t
                elif s.parent != parent and s.alert is None:
                    s.parent, s.hour = parent, -1  # moved: an open alert stays with its team
                if s.seen == idx:
                    continue
                # `_step`, inlined: this loop runs for every series of every bucket.
                s.seen = idx
                stepped += 1
                x = float(x)
                quiet = x < s.floor and s.alert is None
                if s.hour != hour and not quiet:
                    refresh(s, t, hour)
                s.hist.add(t, x)
                s.ring[idx % m] = x
                if x != 0.0:
                    s.last_nonzero = t
                if quiet:
                    if s.hits:
                        s.hits = (s.hits << 1) & mask
                elif x >= s.x_hit:
                    judge(s, t, idx, x, True, events)
                elif s.alert is not None:
                    judge(s, t, idx, x, False, events)
                elif s.hits:
                    s.hits = (s.hits << 1) & mask
        if stepped < len(series):
            self._absent(t, idx, hour, events)
        self._rollup.flush(t, events)
        return events

    def _absent(self, t: int, idx: int, hour: int, events: list[SpikeEvent]) -> None:
        """Series missing from the bucket count as 0; long-silent ones are forgotten."""
        stale = t - self.config.weeks * WEEK_MS
        for key, s in list(self._series.items()):
            if s.seen != idx:
                if s.alert is None and s.last_nonzero < stale:
                    del self._series[key]
                    self.baseline.drop(s.entity, s.metric)
                    continue
                s.seen = idx
                self._step(s, t, idx, hour, 0.0, events)

    def _step(
        self, s: _Series, t: int, idx: int, hour: int, x: float, events: list[SpikeEvent]
    ) -> None:
        # Below the smallest floor nothing can be a hit (expectations are >= 0): without an
        # open alert there is nothing to judge, nor any expectation to compute.
        quiet = x < s.floor and s.alert is None
        if s.hour != hour and not quiet:
            self._refresh(s, t, hour)
        s.hist.add(t, x)
        s.ring[idx % self.config.m] = x
        if x != 0.0:
            s.last_nonzero = t
        if not quiet and x >= s.x_hit:
            self._judge(s, t, idx, x, True, events)
        elif s.alert is not None:
            self._judge(s, t, idx, x, False, events)
        elif s.hits:
            s.hits = (s.hits << 1) & self._mask

    def _refresh(self, s: _Series, t: int, hour: int) -> None:
        """This hour's expectation, its source, and the values that make a hit or a calm."""
        cfg = self.config
        center, spread, weeks = s.hist.stats(t)
        trend = 1.0
        source: Source
        if weeks >= cfg.min_weeks:
            trend = s.hist.trend()
            e, source = center * trend, "seasonal"
        else:
            prior = self._prior_for(s, t)
            if prior is not None:
                e, spread, source = max(0.0, prior.median), prior.mad, "prior"
            else:
                e, source = center, "floor"
        mad, s.x_hit, s.x_calm = bounds(cfg, s.limits, e, spread, source)
        s.hour, s.e, s.mad, s.trend, s.weeks, s.source = hour, e, mad, trend, weeks, source

    def _judge(
        self, s: _Series, t: int, idx: int, x: float, hit: bool, events: list[SpikeEvent]
    ) -> None:
        cfg = self.config
        s.hits = hits = ((s.hits << 1) | hit) & self._mask
        if s.alert is None:
            if hit and hits.bit_count() >= cfg.k and t >= s.cooldown_until:
                s.alert = f"{s.entity[0]}:{s.entity[1]}:{s.metric}:{self._label}@{t}"
                s.opened_ms, s.ref_excess, s.calm, s.incident = t, x - s.e, 0, None
                events.append(self._event("opened", s, t, idx, x))
                self._rollup.opened(s)
            return
        if x >= s.x_calm:
            s.calm = 0
            if hit and x - s.e >= cfg.escalate_factor * s.ref_excess:
                s.ref_excess = x - s.e
                events.append(self._event("escalated", s, t, idx, x))
            return
        s.calm += 1
        if s.calm >= cfg.resolve_run:
            events.append(self._event("resolved", s, t, idx, x))
            self._rollup.resolved(s)
            s.alert = None
            s.cooldown_until = t + cfg.cooldown_ms

    def _prior_for(self, s: _Series, t: int) -> Prior | None:
        if self._prior is not None:
            found = self._prior((s.entity[0], s.entity[1], s.parent), s.metric, t)
            if found is not None:
                return found
        if s.parent is None:
            return None
        hour = t // HOUR_MS
        if hour != self._sibling_hour:  # sibling medians only change with the hour
            self._sibling_hour, self._siblings = hour, self._sibling_priors(t)
        return self._siblings.get((s.entity[0], s.parent, s.metric))

    def _sibling_priors(self, t: int) -> dict[tuple[str, str, str], Prior]:
        """Per (kind, parent, metric): median and MAD of the members' seasonal medians."""
        min_weeks = self.config.min_weeks
        groups: dict[tuple[str, str, str], list[float]] = {}
        for s in self._series.values():
            if s.parent is not None:
                center, _, weeks = s.hist.stats(t)
                if weeks >= min_weeks:
                    groups.setdefault((s.entity[0], s.parent, s.metric), []).append(center)
        priors = {}
        for group, medians in groups.items():
            if len(medians) >= self.config.prior_min_members:
                center = median(medians)
                priors[group] = Prior(center, median([abs(v - center) for v in medians]))
        return priors

    def _skip(self, missed: int, idx: int) -> None:
        """Buckets never observed: no hits, unknown values, calm runs unchanged."""
        m = self.config.m
        for s in self._series.values():
            s.hits = (s.hits << missed) & self._mask
            for j in range(idx - min(missed, m), idx):
                s.ring[j % m] = math.nan

    def _event(self, kind: EventType, s: _Series, t: int, idx: int, x: float) -> SpikeEvent:
        cfg = self.config
        m, w, e, mad = cfg.m, cfg.width_ms, s.e, s.mad
        window = tuple(
            WindowPoint(t - j * w, s.ring[(idx - j) % m], bool(s.hits >> j & 1))
            for j in range(m - 1, -1, -1)
        )
        half = cfg.z_open * mad / _Z
        ratio = x / e if e > 0 else (math.inf if x > 0 else 1.0)
        evidence = Evidence(
            t,
            x,
            e,
            max(0.0, e - half),
            e + half,
            s.x_hit,
            score(x, e, mad),
            ratio,
            x - e,
            mad,
            s.trend,
            s.weeks,
            s.source,
            window,
        )
        assert s.alert is not None
        return SpikeEvent(
            kind,
            s.alert,
            s.entity,
            s.metric,
            w,
            t,
            s.opened_ms,
            s.parent,
            evidence,
            incident_id=s.incident,
        )


def _width_label(width_ms: int) -> str:
    minutes = width_ms // 60_000
    return f"{minutes // 60}h" if minutes % 60 == 0 else f"{minutes}m"
