"""Impact: outcomes per token, per team, and a leaderboard that resists gaming.

Periods are whole UTC days. An outcome counts when it is of a counted kind, was not
voided by a revert or incident within the quality window, and is attributed (an
actor used AI within `attribution_hours` before it; see `attribution`). Tokens are
*credited* tokens (raw x (1 - gaming score)) minus those of user-days on the gaming
review list that were not dismissed. Teams are compared only in quartile bands, and
only teams with at least `min_group_size` active users; no ranks, no raw-token ranking.
Everything reads `user_daily` (usage, with in-house tokens classified as requests were
written), `usage_hourly` (attribution), `outcomes`, `outcome_actors`, `gaming_flags` and
`api_keys`, never `requests`.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy import Engine, func, select

from tollway.insights.attribution import OutcomeCounts, actor_outcomes, team_outcomes
from tollway.insights.config import ImpactConfig
from tollway.insights.usage_days import (
    DAY_MS,
    HOUR_MS,
    TeamKey,
    Usage,
    merge,
    team_usage,
    user_usage,
)
from tollway.ledger.schema import api_keys, gaming_flags

PUSD_PER_USD = 10**12
BANDS = ("Q1", "Q2", "Q3", "Q4")  # Q1: the top quarter
MAX_PERIOD_DAYS = 366
K = TypeVar("K", bound=Hashable)

__all__ = [
    "TeamTooSmall",
    "leaderboard",
    "team_metrics",
    "team_orgs",
    "user_metrics",
]


class TeamTooSmall(Exception):
    """A per-user view of a team below the minimum group size (it would expose individuals)."""


@dataclass(frozen=True, slots=True)
class Period:
    since_ms: int
    until_ms: int


@dataclass(slots=True)
class _Team:
    usage: Usage = field(default_factory=Usage)
    flagged: int = 0
    counts: OutcomeCounts = field(default_factory=OutcomeCounts)


def period_of(since_ms: int, until_ms: int) -> tuple[Period, Period]:
    """Whole UTC days (`since` and `until` rounded up to a day start, at least one day:
    `since=7d` is the 7 days ending with today) and the previous period of equal length.
    Raises ValueError for periods over `MAX_PERIOD_DAYS`."""
    since, until = (-(-t // DAY_MS) * DAY_MS for t in (since_ms, until_ms))
    since = min(since, until - DAY_MS)
    if until - since > MAX_PERIOD_DAYS * DAY_MS:
        raise ValueError(f"the period is longer than {MAX_PERIOD_DAYS} days")
    return Period(since, until), Period(2 * since - until, since)


def team_metrics(
    engine: Engine,
    *,
    since_ms: int,
    until_ms: int,
    config: ImpactConfig,
) -> dict[str, Any]:
    """Per team: outcomes, credited/raw tokens, cost, in-house share, active users,
    outcomes per 1M credited tokens, cost per outcome, and the trend against the
    previous period; plus the org-wide totals."""
    current, previous = period_of(since_ms, until_ms)
    now_teams = _teams(engine, current, config)
    before = _teams(engine, previous, config)
    rows = []
    for key in sorted(now_teams):
        row = _metrics_row(now_teams[key])
        prior = _metrics_row(before[key]) if key in before else None
        row["previous"] = _trend_basis(prior)
        row["trend"] = _change(row["outcomes_per_1m_credited"], prior)
        rows.append({"org": key[0], "team": key[1], **row})
    total = _Team(merge(t.usage for t in now_teams.values()))
    for t in now_teams.values():
        total.flagged += t.flagged
        total.counts.outcomes += t.counts.outcomes
        total.counts.unattributed += t.counts.unattributed
        total.counts.voided += t.counts.voided
    return {
        "since_ms": current.since_ms,
        "until_ms": current.until_ms,
        "previous_since_ms": previous.since_ms,
        "attribution_hours": config.attribution_hours,
        "quality_window_days": config.quality_window_days,
        "counted_kinds": list(config.counted_kinds),
        "teams": rows,
        "total": _metrics_row(total),
    }


def leaderboard(
    engine: Engine,
    *,
    since_ms: int,
    until_ms: int,
    config: ImpactConfig,
) -> dict[str, Any]:
    """Teams in quartile bands of log1p(outcomes) per 1M credited tokens, alphabetical
    within a band; teams under `min_group_size` active users are listed apart."""
    current, _ = period_of(since_ms, until_ms)
    teams = _teams(engine, current, config)
    metric: dict[TeamKey, float] = {}
    too_small: list[dict[str, Any]] = []
    no_tokens: list[dict[str, Any]] = []
    for key, team in sorted(teams.items()):
        credited = _credited(team)
        if len(team.usage.users) < config.min_group_size:
            too_small.append({"org": key[0], "team": key[1], "reason": "too small to compare"})
        elif credited <= 0:
            no_tokens.append({"org": key[0], "team": key[1], "reason": "no credited tokens"})
        else:
            metric[key] = math.log1p(team.counts.outcomes) / (credited / 1e6)
    bands = quartile_bands(metric)
    return {
        "since_ms": current.since_ms,
        "until_ms": current.until_ms,
        "min_group_size": config.min_group_size,
        "metric": "log1p(outcomes) per 1M credited tokens",
        "bands": [
            {
                "band": BANDS[b],
                "teams": [{"org": k[0], "team": k[1]} for k in sorted(metric) if bands[k] == b],
            }
            for b in range(len(BANDS))
        ],
        "not_compared": too_small + no_tokens,
    }


def quartile_bands(metric: Mapping[K, float]) -> dict[K, int]:
    """Band 0 (top quarter) to 3 of each key by its metric; equal metrics share a band.

    A key's band is 4 x (how many keys have a strictly higher metric) // n, so bands are
    monotone in the metric and as even as ties allow."""
    values = sorted(metric.values(), reverse=True)
    n = len(values)
    first_rank: dict[float, int] = {}
    for rank, value in enumerate(values):
        first_rank.setdefault(value, rank)
    return {key: 4 * first_rank[value] // n for key, value in metric.items()}


def user_metrics(
    engine: Engine,
    *,
    org: str,
    team: str,
    since_ms: int,
    until_ms: int,
    config: ImpactConfig,
) -> dict[str, Any]:
    """Per user of one team, alphabetical (no ranks). Raises `TeamTooSmall` when the team
    had fewer than `min_group_size` active users in the period."""
    current, _ = period_of(since_ms, until_ms)
    users = user_usage(engine, org, team, current.since_ms, current.until_ms)
    if len(users) < config.min_group_size:
        raise TeamTooSmall(
            f"Team {org}/{team} had {len(users)} active user(s) in the period; per-user "
            f"figures are shown only for teams of at least {config.min_group_size}."
        )
    flagged = _flags(engine, current, org=org, team=team, by_user=True)
    counts: dict[str, OutcomeCounts] = {u: OutcomeCounts() for u in users}
    for row in actor_outcomes(
        engine,
        org=org,
        team=team,
        since_ms=current.since_ms,
        until_ms=current.until_ms,
        kinds=list(config.counted_kinds),
        window_ms=int(config.attribution_hours * HOUR_MS),
    ):
        counts.setdefault(row.user, OutcomeCounts()).count(row.voided, row.attributed)
    rows = []
    for user in sorted(counts):
        entry = _Team(users.get(user, Usage()), flagged.get((org, team, user), 0), counts[user])
        rows.append({"user": user, **_metrics_row(entry)})
    return {
        "org": org,
        "team": team,
        "since_ms": current.since_ms,
        "until_ms": current.until_ms,
        "users": rows,
    }


def team_orgs(engine: Engine, team: str) -> list[str]:
    """The orgs that have a team of this name (from the keys)."""
    query = (
        select(api_keys.c.org).where(api_keys.c.team == team).distinct().order_by(api_keys.c.org)
    )
    with engine.connect() as connection:
        return list(connection.execute(query).scalars())


def _teams(engine: Engine, period: Period, config: ImpactConfig) -> dict[TeamKey, _Team]:
    teams: dict[TeamKey, _Team] = {}
    for key, team_use in team_usage(engine, period.since_ms, period.until_ms).items():
        teams[key] = _Team(team_use)
    for (org, team, _), tokens in _flags(engine, period).items():
        teams.setdefault((org, team), _Team()).flagged += tokens
    counts = team_outcomes(
        engine,
        since_ms=period.since_ms,
        until_ms=period.until_ms,
        kinds=list(config.counted_kinds),
        window_ms=int(config.attribution_hours * HOUR_MS),
    )
    for key, outcome_counts in counts.items():
        teams.setdefault(key, _Team()).counts = outcome_counts
    return teams


def _flags(
    engine: Engine,
    period: Period,
    *,
    org: str | None = None,
    team: str | None = None,
    by_user: bool = False,
) -> dict[tuple[str, str, str], int]:
    """Credited tokens of flagged user-days (not dismissed) per (org, team, user or '')."""
    f = gaming_flags.c
    keys = [f.org, f.team, *([f.user] if by_user else [])]
    query = (
        select(*keys, func.sum(f.credited_tokens))
        .where(
            f.day_start_ms >= period.since_ms,
            f.day_start_ms < period.until_ms,
            f.status != "dismissed",
        )
        .group_by(*keys)
    )
    if org is not None:
        query = query.where(f.org == org, f.team == team)
    with engine.connect() as connection:
        rows = connection.execute(query).all()
    return {(r[0], r[1], r[2] if by_user else ""): int(r[-1]) for r in rows}


def _credited(team: _Team) -> int:
    return max(0, team.usage.credited_tokens - team.flagged)


def _metrics_row(team: _Team) -> dict[str, Any]:
    usage, outcomes = team.usage, team.counts.outcomes
    credited = _credited(team)
    cost_usd = usage.cost_pusd / PUSD_PER_USD
    return {
        "active_users": len(usage.users),
        "outcomes": outcomes,
        "outcomes_unattributed": team.counts.unattributed,
        "outcomes_voided": team.counts.voided,
        "credited_tokens": credited,
        "flagged_tokens": min(team.flagged, usage.credited_tokens),
        "tokens": usage.tokens,
        "cost_usd": cost_usd,
        "in_house_share": usage.in_house_tokens / usage.tokens if usage.tokens else None,
        "outcomes_per_1m_credited": outcomes / (credited / 1e6) if credited else None,
        "cost_per_outcome_usd": cost_usd / outcomes if outcomes else None,
    }


def _trend_basis(prior: dict[str, Any] | None) -> dict[str, Any] | None:
    if prior is None:
        return None
    keys = ("outcomes", "credited_tokens", "outcomes_per_1m_credited", "cost_per_outcome_usd")
    return {k: prior[k] for k in keys}


def _change(value: float | None, prior: dict[str, Any] | None) -> float | None:
    """Relative change of outcomes per 1M credited tokens against the previous period."""
    before = prior["outcomes_per_1m_credited"] if prior else None
    if value is None or not before:
        return None
    return value / before - 1.0
