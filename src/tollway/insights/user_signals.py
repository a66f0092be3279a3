"""Per user-day gaming signals and their combined score (pure arithmetic, no I/O).

A `UserDay` carries one user's counts for one UTC day (from `user_daily` and the hourly
rollups) plus the context to judge them (the team's typical volume, outcomes). Each
signal is ramped from "normal" to "clearly gamed" and the ramps are combined with a
noisy-OR, like the per-request score; the evidence keeps each contributing signal's
value and the point where it starts to count. Reference points: bot cadence CV < 0.1
over 20+ requests; round-the-clock hour-of-day entropy > 3.9 bits (max 4.58).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

ENTROPY_RAMP = (3.6, 4.2)  # bits; a working day spans ~8-10 hours, ≈ 3.0-3.3 bits
MIN_HOURLY_REQUESTS = 48  # entropy over fewer requests says little


@dataclass(frozen=True, slots=True)
class UserDay:
    """What is known about one user's day, and the team context to judge it by."""

    requests: int
    scored_requests: int  # successful, not from sanctioned automation keys
    tokens: int
    credited_tokens: int = -1  # -1: unknown (all credited)
    gamed_requests: int = 0
    duplicate_requests: int = 0
    near_duplicate_requests: int = 0
    regular_requests: int = 0
    length_burns: int = 0
    hourly_requests: Sequence[int] = ()  # 24 counts by UTC hour of day
    off_hours_tokens: int = 0
    team_median_tokens: float = 0.0  # the team's median member tokens that day
    team_typical_day_tokens: float = 0.0  # median member tokens per day over the look-back
    window_tokens: int = 0  # the user's tokens over the outcome look-back window
    team_window_p75_tokens: float = 0.0
    window_outcomes: int = 0
    expected_outcomes: float = 0.0  # at the team's outcomes per token over the look-back


@dataclass(frozen=True, slots=True)
class Evidence:
    value: float
    starts_at: float  # the value where the signal starts to count
    contribution: float  # its ramped weight in [0, 1]


@dataclass(frozen=True, slots=True)
class DayVerdict:
    score: float
    signals: dict[str, Evidence]


def score_day(day: UserDay, min_requests: int = 20) -> DayVerdict:
    """The user-day's gaming score in [0, 1] and the signals that contributed."""
    parts: dict[str, tuple[float, float, float]] = {}  # name -> (value, low, high)
    n = day.scored_requests
    if n < min_requests:
        return DayVerdict(0.0, {})
    if day.tokens and day.credited_tokens >= 0:
        # Padding and burners hide among ordinary requests, but carry most of the tokens.
        parts["uncredited_token_share"] = (1 - day.credited_tokens / day.tokens, 0.15, 0.4)
    parts["gamed_share"] = (day.gamed_requests / n, 0.15, 0.5)
    parts["duplicate_share"] = (day.duplicate_requests / n, 0.25, 0.6)
    parts["near_duplicate_share"] = (day.near_duplicate_requests / n, 0.35, 0.7)
    parts["regular_cadence_share"] = (day.regular_requests / n, 0.2, 0.5)
    parts["length_burn_share"] = (day.length_burns / n, 0.05, 0.2)
    if sum(day.hourly_requests) >= MIN_HOURLY_REQUESTS:
        parts["hour_entropy_bits"] = (entropy_bits(day.hourly_requests), *ENTROPY_RAMP)
    # Off-hours volume counts when it is large for the team, not for a quiet weekend.
    heavy = day.tokens >= 2 * day.team_median_tokens > 0
    if heavy and day.off_hours_tokens >= 2 * day.team_typical_day_tokens > 0:
        parts["off_hours_share"] = (day.off_hours_tokens / day.tokens, 0.4, 0.8)
    # Busy but no outcomes: at the team's outcomes per token this user should have
    # produced several (Poisson: P(0 | 5 expected) < 1 %; the ramp is wider, as real
    # outcomes come in lumps), and produced none.
    busy = day.window_tokens > day.team_window_p75_tokens > 0
    if busy and day.window_outcomes == 0:
        parts["expected_outcomes_missing"] = (day.expected_outcomes, 5.0, 10.0)
    clean = 1.0
    signals: dict[str, Evidence] = {}
    for name, (value, low, high) in parts.items():
        weight = ramp(value, low, high)
        if weight > 0:
            signals[name] = Evidence(round(value, 4), low, round(weight, 4))
            clean *= 1.0 - weight
    return DayVerdict(round(1.0 - clean, 4), signals)


def ramp(value: float, low: float, high: float) -> float:
    """0 at or below `low`, 1 at or above `high`, linear between."""
    if value <= low:
        return 0.0
    if value >= high:
        return 1.0
    return (value - low) / (high - low)


def entropy_bits(counts: Sequence[int]) -> float:
    """Shannon entropy of a histogram, in bits."""
    total = sum(counts)
    if total <= 0:
        return 0.0
    return -sum(c / total * math.log2(c / total) for c in counts if c > 0)
