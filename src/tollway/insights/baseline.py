"""Seasonal robust baseline: the hour-of-week median and MAD over recent weeks, times a trend.

For one series (an entity's metric at one bucket width) the expected value of a bucket is
the **median of the same hour-of-week over the last `weeks` weeks** (default 4), with the
**MAD** of those weekly values as its spread, multiplied by a **trend** factor: the ratio of
two EWMAs over recent buckets (actual values, each capped at `trend_bounds[1]` x its
seasonal median so a spike barely moves it, over seasonal medians), clamped to
`trend_bounds`. Growth of a few tens of percent a week therefore lifts the expectation
instead of alerting, while a quiet holiday can lower it by at most `trend_bounds[0]`.
Buckets whose seasonal median is 0 leave the trend unchanged.

Storage is fixed at creation, so memory is bounded and independent of traffic: per series
and per hour-of-week a ring of `weeks` float32 cells (168 x weeks), plus the last week each
slot was written. Buckets narrower than an hour (5 minutes) are **aggregated to hourly
history**: a cell holds the hour's mean per bucket, and a second ring holds the hour's
within-hour spread (mean absolute deviation of its buckets, scaled to a MAD-equivalent).
The expectation of a 5-minute bucket is then the median hour mean, and its spread
sqrt(MAD_between_weeks² + median_within_hour²): the week-to-week variation of the level
plus the bucket-to-bucket noise inside an hour. Keeping every 5-minute slot instead would
cost 12x the memory (2,016 slots x weeks per series) for an expectation that is noisier,
since each slot would rest on `weeks` single buckets.

Hours and weeks are counted in UTC from Monday 00:00; only their consistency matters, as
the same hour-of-week is compared with itself.

    baseline = SeasonalBaseline(width_ms=300_000)
    baseline.add(("user", "ada"), "weighted_tokens", bucket_start_ms, 41_000.0)
    baseline.expected(("user", "ada"), "weighted_tokens", later_ms)  # Expectation | None
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Sequence
from dataclasses import dataclass

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
WEEK_MS = 7 * DAY_MS
WEEK_HOURS = 168
# 1970-01-01 (epoch hour 0) was a Thursday: shifting by 72 hours starts weeks on Monday.
_MONDAY_SHIFT_HOURS = 72
# Mean absolute deviation -> MAD for normal data (0.6745 / 0.7979): keeps both spreads
# in one unit so they can be combined.
_MEAN_AD_TO_MAD = 0.8453
_NAN = float("nan")

Entity = tuple[str, str]


def hour_of_week(ms: int) -> int:
    """0 for Monday 00:00-01:00 UTC ... 167 for Sunday 23:00-24:00."""
    return (ms // HOUR_MS + _MONDAY_SHIFT_HOURS) % WEEK_HOURS


def median(values: Sequence[float]) -> float:
    """The median of a non-empty sequence (the mean of the two middle values when even)."""
    ordered = sorted(values)
    n = len(ordered)
    mid = n // 2
    return ordered[mid] if n % 2 else (ordered[mid - 1] + ordered[mid]) / 2.0


def mad(values: Sequence[float], center: float) -> float:
    """Median absolute deviation from `center` (raw, not scaled to a standard deviation)."""
    return median([abs(v - center) for v in values])


@dataclass(frozen=True, slots=True)
class Expectation:
    """A bucket's expected value: `median` x `trend`, spread `mad`, from `weeks` weeks."""

    expected: float
    median: float
    mad: float
    trend: float
    weeks: int


class _Params:
    """Settings shared by every series of one baseline (one object, not one per series)."""

    __slots__ = ("alpha", "buckets_per_hour", "hi", "lo", "nan_cells", "no_weeks", "weeks")

    def __init__(self, width_ms: int, weeks: int, halflife_ms: int, bounds: tuple[float, float]):
        self.weeks = weeks
        self.buckets_per_hour = HOUR_MS // width_ms
        self.alpha = 1.0 - 0.5 ** (HOUR_MS / halflife_ms)  # the trend moves once an hour
        self.lo, self.hi = bounds
        self.nan_cells = array("f", [_NAN]) * (WEEK_HOURS * weeks)
        self.no_weeks = array("i", [-1]) * WEEK_HOURS


class SeriesHistory:
    """The bounded history and trend of one series; `add` buckets in increasing order."""

    __slots__ = (
        "_buf",
        "_em",
        "_ex",
        "_hour",
        "_key",
        "_last",
        "_p",
        "_spreads",
        "_stats",
        "_values",
    )

    def __init__(self, params: _Params) -> None:
        self._p = params
        self._values = array("f", params.nan_cells)
        self._spreads = array("f", params.nan_cells) if params.buckets_per_hour > 1 else None
        self._last = array("i", params.no_weeks)  # per hour-of-week: last week written
        self._hour = -1  # the absolute hour whose buckets `_buf` holds
        self._buf: list[float] = []
        self._ex = 0.0  # EWMA of capped actual values
        self._em = 0.0  # EWMA of seasonal medians
        self._key = -1  # the absolute hour `_stats` was computed for
        self._stats: tuple[float, float, int] = (0.0, 0.0, 0)

    def stats(self, bucket_start_ms: int) -> tuple[float, float, int]:
        """(median, MAD, weeks) of this bucket's hour-of-week over the previous weeks."""
        hour = bucket_start_ms // HOUR_MS
        if hour == self._key:  # every bucket of an hour shares its statistics
            return self._stats
        shifted = hour + _MONDAY_SHIFT_HOURS
        slot, week = shifted % WEEK_HOURS, shifted // WEEK_HOURS
        stats = self._compute(slot, week)
        self._key, self._stats = hour, stats
        return stats

    def trend(self) -> float:
        """Recent level over seasonal level, clamped; 1.0 before any seasonal history."""
        if self._em <= 0.0:
            return 1.0
        p = self._p
        return min(p.hi, max(p.lo, self._ex / self._em))

    def add(self, bucket_start_ms: int, value: float) -> None:
        """Record one closed bucket (buckets of one series must come in increasing order)."""
        p = self._p
        hour = bucket_start_ms // HOUR_MS
        if p.buckets_per_hour == 1:
            self._update_trend(self.stats(bucket_start_ms)[0], value)
            self._write(hour, value, 0.0)
            return
        if hour != self._hour:
            if hour < self._hour:
                raise ValueError("buckets of a series must be added in increasing order")
            self._flush()
            self._hour = hour
        self._buf.append(value)
        if len(self._buf) == p.buckets_per_hour:
            self._flush()

    def _update_trend(self, seasonal: float, value: float) -> None:
        # Hourly updates: capping single 5-minute buckets of bursty traffic would cut
        # the upper tail of normal noise and bias the trend below 1.
        p = self._p
        if seasonal > 0.0:
            a = p.alpha
            capped = value if value < seasonal * p.hi else seasonal * p.hi
            self._ex += a * (capped - self._ex)
            self._em += a * (seasonal - self._em)
        else:  # both EWMAs decay alike, so the ratio is unchanged
            keep = 1.0 - p.alpha
            self._ex *= keep
            self._em *= keep

    def seed_hour(self, hour_start_ms: int, total: float, bucket_spread: float = 0.0) -> None:
        """Record a whole past hour at once (e.g. rebuilt from hourly rollups after a restart).

        `total` is the hour's sum; `bucket_spread` the MAD-like spread of its buckets."""
        self._write(hour_start_ms // HOUR_MS, total / self._p.buckets_per_hour, bucket_spread)
        self._key = -1

    def _flush(self) -> None:
        buf = self._buf
        if not buf:
            return
        mean = sum(buf) / len(buf)
        self._update_trend(self.stats(self._hour * HOUR_MS)[0], mean)
        spread = _MEAN_AD_TO_MAD * sum([abs(v - mean) for v in buf]) / len(buf) if mean else 0.0
        self._write(self._hour, mean, spread)
        self._buf = []

    def _write(self, hour: int, value: float, spread: float) -> None:
        weeks = self._p.weeks
        shifted = hour + _MONDAY_SHIFT_HOURS
        slot, week = shifted % WEEK_HOURS, shifted // WEEK_HOURS
        base = slot * weeks
        last = self._last[slot]
        if week <= last - weeks:
            return  # older than the window
        if week > last:
            # Weeks skipped since the last write hold values from a past window: blank them.
            for skipped in range(max(last + 1, week - weeks + 1), week):
                self._values[base + skipped % weeks] = _NAN
                if self._spreads is not None:
                    self._spreads[base + skipped % weeks] = _NAN
            self._last[slot] = week
        self._values[base + week % weeks] = value
        if self._spreads is not None:
            self._spreads[base + week % weeks] = spread

    def _compute(self, slot: int, week: int) -> tuple[float, float, int]:
        # Inlined medians: this runs once per series and hour, the detector's main cost.
        weeks = self._p.weeks
        last = self._last[slot]
        # Cells hold weeks (last - weeks, last]; keep those in [week - weeks, week - 1].
        newest, oldest = min(last, week - 1), max(last - weeks + 1, week - weeks)
        if last < 0 or newest < oldest:
            return (0.0, 0.0, 0)
        base = slot * weeks
        spreads = self._spreads
        if newest - oldest + 1 == weeks:  # every cell in the window: one slice
            found = [v for v in self._values[base : base + weeks].tolist() if v == v]
            within = [] if spreads is None else spreads[base : base + weeks].tolist()
            within = [v for v in within if v == v]  # blanked together with the values
        else:
            found, within = [], []
            for w in range(oldest, newest + 1):
                v = self._values[base + w % weeks]
                if v == v:  # not NaN (a skipped week)
                    found.append(v)
                    if spreads is not None:
                        within.append(spreads[base + w % weeks])
        n = len(found)
        if n == 0:
            return (0.0, 0.0, 0)
        mid, odd = n >> 1, n & 1
        found.sort()
        center = found[mid] if odd else (found[mid - 1] + found[mid]) * 0.5
        devs = sorted([abs(v - center) for v in found])
        spread = devs[mid] if odd else (devs[mid - 1] + devs[mid]) * 0.5
        if within:
            within.sort()
            inner = within[mid] if odd else (within[mid - 1] + within[mid]) * 0.5
            spread = math.sqrt(spread * spread + inner * inner)
        return (center, spread, n)


class SeasonalBaseline:
    """Hour-of-week histories of many series at one bucket width, with bounded memory."""

    def __init__(
        self,
        width_ms: int = 300_000,
        *,
        weeks: int = 4,
        trend_halflife_ms: int = 3 * DAY_MS,
        trend_bounds: tuple[float, float] = (0.75, 2.0),
    ) -> None:
        if width_ms <= 0 or HOUR_MS % width_ms:
            raise ValueError(f"width_ms must divide one hour, got {width_ms}")
        if weeks < 1 or not 0.0 < trend_bounds[0] <= 1.0 <= trend_bounds[1]:
            raise ValueError("weeks must be >= 1 and trend_bounds must bracket 1.0")
        self.width_ms = width_ms
        self._params = _Params(width_ms, weeks, trend_halflife_ms, trend_bounds)
        self._series: dict[tuple[str, str, str], SeriesHistory] = {}

    def __len__(self) -> int:
        return len(self._series)

    def series(self, entity: Entity, metric: str) -> SeriesHistory:
        """The history of (entity, metric), created empty if new."""
        key = (entity[0], entity[1], metric)
        history = self._series.get(key)
        if history is None:
            history = self._series[key] = SeriesHistory(self._params)
        return history

    def add(self, entity: Entity, metric: str, bucket_start_ms: int, value: float) -> None:
        """Record one closed bucket of (entity, metric)."""
        self.series(entity, metric).add(bucket_start_ms, value)

    def seed_hour(
        self, entity: Entity, metric: str, hour_start_ms: int, total: float, spread: float = 0.0
    ) -> None:
        """Record a whole past hour of (entity, metric): see `SeriesHistory.seed_hour`."""
        self.series(entity, metric).seed_hour(hour_start_ms, total, spread)

    def expected(self, entity: Entity, metric: str, bucket_start_ms: int) -> Expectation | None:
        """The bucket's expectation, or None without any history at its hour-of-week."""
        history = self._series.get((entity[0], entity[1], metric))
        if history is None:
            return None
        center, spread, weeks = history.stats(bucket_start_ms)
        if weeks == 0:
            return None
        trend = history.trend()
        return Expectation(center * trend, center, spread, trend, weeks)

    def drop(self, entity: Entity, metric: str) -> None:
        """Forget (entity, metric)."""
        self._series.pop((entity[0], entity[1], metric), None)
