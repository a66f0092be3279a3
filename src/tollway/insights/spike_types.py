"""Spike detector vocabulary: thresholds (`SpikeConfig`), priors, evidence and events.

See `tollway.insights.spikes` for how they are used.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal, NamedTuple

from tollway.insights.baseline import Entity

EntityKey = tuple[str, str, str | None]
Source = Literal["seasonal", "prior", "floor"]
EventType = Literal["opened", "escalated", "resolved"]
ROLLUP_METRIC = "member_spikes"  # the metric of team-rollup incidents


@dataclass(frozen=True, slots=True)
class MetricLimits:
    """Absolute floors of one metric, per bucket of the detector's width."""

    excess_floor: float  # a hit needs x - expected >= this
    cold_floor: float = 0.0  # with no history and no prior; 0 means 5 x excess_floor
    mad_floor: float = 0.0  # smallest MAD used; 0 means excess_floor / 10

    def __post_init__(self) -> None:
        if self.excess_floor <= 0:
            raise ValueError("excess_floor must be positive")
        if self.cold_floor <= 0:
            object.__setattr__(self, "cold_floor", 5.0 * self.excess_floor)
        if self.mad_floor <= 0:
            # Below excess_floor / 5.19 the MAD floor can never veto an excess that passes
            # the excess floor; it only keeps flat series from infinite scores.
            object.__setattr__(self, "mad_floor", self.excess_floor / 10.0)


@dataclass(frozen=True)
class SpikeConfig:
    """Thresholds of one detector (one bucket width)."""

    width_ms: int = 300_000
    metrics: Mapping[str, MetricLimits] = field(
        default_factory=lambda: {
            "weighted_tokens": MetricLimits(200_000.0),
            "cost_usd": MetricLimits(2.0),
        }
    )
    weeks: int = 4
    min_weeks: int = 2
    z_open: float = 3.5
    ratio_open: float = 3.0
    k: int = 2
    m: int = 2  # two hits in a row: halves false alerts against 2 of 3 (tests)
    z_resolve: float = 2.0
    ratio_resolve: float = 1.5
    resolve_run: int = 3
    resolve_excess_fraction: float = 0.25
    escalate_factor: float = 2.0
    cooldown_ms: int = 3_600_000
    mad_rel_floor: float = 0.1
    trend_halflife_ms: int = 3 * 24 * 3_600_000
    trend_bounds: tuple[float, float] = (0.75, 2.0)
    prior_min_members: int = 3
    rollup_min_users: int = 2

    def __post_init__(self) -> None:
        object.__setattr__(self, "metrics", MappingProxyType(dict(self.metrics)))
        if self.width_ms <= 0 or 3_600_000 % self.width_ms:
            raise ValueError(f"width_ms must divide one hour, got {self.width_ms}")
        if not 1 <= self.k <= self.m:
            raise ValueError("need 1 <= k <= m")
        if not 1 <= self.min_weeks <= self.weeks:
            raise ValueError("need 1 <= min_weeks <= weeks")
        if self.resolve_run < 1 or self.rollup_min_users < 1:
            raise ValueError("resolve_run and rollup_min_users must be >= 1")
        if not (
            self.z_resolve <= self.z_open
            and self.ratio_resolve <= self.ratio_open
            and 0.0 < self.resolve_excess_fraction <= 1.0
        ):
            raise ValueError("resolve thresholds must lie below the open thresholds")

    @classmethod
    def five_minute(cls, **overrides: Any) -> SpikeConfig:
        """5-minute buckets: 200k weighted tokens or $2 of excess per bucket."""
        return cls(**{"width_ms": 300_000, **overrides})

    @classmethod
    def hourly(cls, **overrides: Any) -> SpikeConfig:
        """1-hour buckets: 1M weighted tokens or $5 of excess per bucket."""
        metrics = {
            "weighted_tokens": MetricLimits(1_000_000.0),
            "cost_usd": MetricLimits(5.0),
        }
        return cls(**{"width_ms": 3_600_000, "metrics": metrics, **overrides})


@dataclass(frozen=True, slots=True)
class Prior:
    """A borrowed expectation for a series without enough history."""

    median: float
    mad: float


PriorFn = Callable[[EntityKey, str, int], Prior | None]


@dataclass(frozen=True, slots=True)
class WindowPoint:
    """One bucket of the k-of-m window (value NaN if the bucket was never observed)."""

    bucket_start_ms: int
    value: float
    hit: bool


@dataclass(frozen=True, slots=True)
class Evidence:
    """Why an event happened: the bucket's figures against its expectation."""

    bucket_start_ms: int
    actual: float
    expected: float
    lower: float  # expected -/+ z_open MADs as values: score >= z_open iff actual >= upper
    upper: float
    threshold: float  # a hit is actual >= threshold (score, ratio and floor tests at once)
    score: float  # modified z-score (not used for a hit when source is `floor`)
    ratio: float  # actual / expected (inf when expected is 0 and actual is not)
    excess: float  # actual - expected
    mad: float  # the floored MAD the score used
    trend: float  # the factor in expected (1.0 unless seasonal)
    weeks: int  # weeks of own history at this hour-of-week
    source: Source
    window: tuple[WindowPoint, ...]  # the last m buckets, oldest first


class Member(NamedTuple):
    """A user alert inside a team incident."""

    alert_id: str
    user: str
    metric: str


@dataclass(frozen=True, slots=True)
class SpikeEvent:
    """An alert (or team incident) opened, escalated or resolved at a bucket."""

    type: EventType
    alert_id: str
    entity: Entity
    metric: str  # ROLLUP_METRIC for a team incident
    width_ms: int
    bucket_start_ms: int
    opened_ms: int
    parent: str | None
    evidence: Evidence | None = None  # None on team incidents
    members: tuple[Member, ...] = ()  # team incidents: every member alert so far
    incident_id: str | None = None  # a user alert grouped into a team incident
