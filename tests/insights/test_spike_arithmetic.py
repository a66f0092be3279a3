"""Spike arithmetic: hour-of-week slots, seasonal medians and MADs, score bounds."""

from __future__ import annotations

import math
import statistics
from array import array

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.insights.spike_traffic import FIVE, HOUR, T0, TOKENS, WEEK
from tollway.insights.baseline import SeasonalBaseline, hour_of_week
from tollway.insights.spikes import MetricLimits, SpikeConfig, SpikeDetector, bounds, score


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
