"""Scanning a day of the ledger for gamed user-days: rollups in, review-list flags out.

Reads `user_daily`, `usage_hourly` (hour-of-day profile, off-hours tokens, errors) and
outcomes — never the raw `requests`, except a few sample ids per flagged user-day.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import orjson
from sqlalchemy import Engine, and_, func, select

from tollway.insights.config import DetectionConfig, ImpactConfig, WorkHours
from tollway.insights.user_signals import DayVerdict, UserDay, score_day
from tollway.ledger.flags import upsert_flags
from tollway.ledger.schema import outcome_actors, outcomes, requests, usage_hourly, user_daily

DAY_MS = 86_400_000
HOUR_MS = 3_600_000
SAMPLE_IDS = 3


@dataclass(frozen=True, slots=True)
class DayFlag:
    """A user-day whose score passed the threshold, with its evidence."""

    day_start_ms: int
    org: str
    team: str
    user: str
    tokens: int
    credited_tokens: int
    verdict: DayVerdict
    sample_request_ids: tuple[str, ...]

    @property
    def flag_id(self) -> str:
        day = datetime.fromtimestamp(self.day_start_ms / 1000, UTC).date().isoformat()
        return f"{self.org}/{self.user}/{day}"


def scan_day(
    engine: Engine,
    day_start_ms: int,
    detection: DetectionConfig,
    impact: ImpactConfig | None = None,
) -> list[DayFlag]:
    """Score every user active on the UTC day starting at `day_start_ms`; return the flagged."""
    day_start_ms -= day_start_ms % DAY_MS
    impact = impact or ImpactConfig()
    window_start = day_start_ms + DAY_MS - detection.no_outcome_days * DAY_MS
    with engine.connect() as connection:
        daily = connection.execute(
            select(user_daily).where(user_daily.c.day_start_ms == day_start_ms)
        ).mappings()
        days = {(r["org"], r["team"], r["user"]): dict(r) for r in daily}
        if not days:
            return []
        hourly = connection.execute(
            select(
                usage_hourly.c.org,
                usage_hourly.c.team,
                usage_hourly.c.user,
                usage_hourly.c.hour_start_ms,
                func.sum(usage_hourly.c.requests),
                func.sum(usage_hourly.c.errors),
                func.sum(usage_hourly.c.input_tokens + usage_hourly.c.output_tokens),
            )
            .where(
                usage_hourly.c.hour_start_ms >= day_start_ms,
                usage_hourly.c.hour_start_ms < day_start_ms + DAY_MS,
            )
            .group_by(
                usage_hourly.c.org,
                usage_hourly.c.team,
                usage_hourly.c.user,
                usage_hourly.c.hour_start_ms,
            )
        ).all()
        window = connection.execute(
            select(user_daily.c.org, user_daily.c.team, user_daily.c.user)
            .add_columns(func.sum(user_daily.c.tokens))
            .where(
                user_daily.c.day_start_ms >= window_start,
                user_daily.c.day_start_ms <= day_start_ms,
            )
            .group_by(user_daily.c.org, user_daily.c.team, user_daily.c.user)
        ).all()
        produced = connection.execute(
            select(outcome_actors.c.user, outcome_actors.c.team, func.count())
            .join(outcomes, outcomes.c.outcome_id == outcome_actors.c.outcome_id)
            .where(
                outcome_actors.c.occurred_at_ms >= window_start,
                outcome_actors.c.occurred_at_ms < day_start_ms + DAY_MS,
                outcomes.c.kind.in_(impact.counted_kinds),
            )
            .group_by(outcome_actors.c.user, outcome_actors.c.team)
        ).all()

    profile: dict[tuple[str, str, str], list[int]] = defaultdict(lambda: [0] * 24)
    errors: dict[tuple[str, str, str], int] = defaultdict(int)
    off_hours: dict[tuple[str, str, str], int] = defaultdict(int)
    off_by_team: dict[str, list[bool]] = {}

    def off_for(team: str) -> list[bool]:
        """Which UTC hours of the day are off-hours for `team` (computed once a team)."""
        off = off_by_team.get(team)
        if off is None:
            hours = detection.team_work_hours.get(team, detection.work_hours)
            off = off_by_team[team] = _off_hours(day_start_ms, hours)
        return off

    for org, team, user, hour_ms, n, failed, tokens in hourly:
        key = (org, team, user)
        hour = (int(hour_ms) - day_start_ms) // HOUR_MS
        profile[key][hour] += int(n)
        errors[key] += int(failed)
        if off_for(team)[hour]:
            off_hours[key] += int(tokens)

    team_day_tokens: dict[str, list[int]] = defaultdict(list)
    for (_, team, _), row in days.items():
        team_day_tokens[team].append(int(row["tokens"]))
    window_tokens = {(o, t, u): int(n) for o, t, u, n in window}
    team_window: dict[str, list[int]] = defaultdict(list)
    for (_, team, _), n in window_tokens.items():
        team_window[team].append(n)
    outcome_counts = {user: int(n) for user, _, n in produced}
    team_outcomes: dict[str, int] = defaultdict(int)
    for _, team, n in produced:
        team_outcomes[team] += int(n)
    team_tokens = {team: sum(values) for team, values in team_window.items()}
    days_in_window = detection.no_outcome_days
    exempt_users = [key for key, row in days.items() if int(row["exempt_requests"])]
    if exempt_users:
        own = _profiles_without_exempt(engine, day_start_ms, exempt_users, detection, off_for)
        for key, (hour_counts, off_tokens) in own.items():
            profile[key], off_hours[key] = hour_counts, off_tokens

    flags = []
    for key, row in days.items():
        org, team, user = key
        exempt = int(row["exempt_requests"])
        scored = int(row["requests"]) - exempt - errors[key]
        user_day = UserDay(
            requests=int(row["requests"]),
            scored_requests=max(0, scored),
            tokens=int(row["tokens"]),
            credited_tokens=int(row["credited_tokens"]),
            gamed_requests=int(row["gamed_requests"]),
            duplicate_requests=int(row["duplicate_requests"]),
            near_duplicate_requests=int(row["near_duplicate_requests"]),
            regular_requests=int(row["regular_requests"]),
            length_burns=int(row["length_burns"]),
            hourly_requests=profile[key],
            off_hours_tokens=off_hours[key],
            team_median_tokens=float(statistics.median(team_day_tokens[team])),
            team_typical_day_tokens=float(statistics.median(team_window[team])) / days_in_window,
            window_tokens=window_tokens.get(key, 0),
            team_window_p75_tokens=_p75(team_window[team]),
            window_outcomes=outcome_counts.get(user, 0),
            expected_outcomes=(
                window_tokens.get(key, 0) * team_outcomes[team] / team_tokens[team]
                if team_tokens.get(team)
                else 0.0
            ),
        )
        verdict = score_day(user_day, detection.min_requests)
        if verdict.score >= detection.flag_score:
            flags.append(
                DayFlag(
                    day_start_ms,
                    org,
                    team,
                    user,
                    int(row["tokens"]),
                    int(row["credited_tokens"]),
                    verdict,
                    (),
                )
            )
    return _with_samples(engine, flags)


def _profiles_without_exempt(
    engine: Engine,
    day_start_ms: int,
    keys: list[tuple[str, str, str]],
    detection: DetectionConfig,
    off_for: Callable[[str], list[bool]],
) -> dict[tuple[str, str, str], tuple[list[int], int]]:
    """Hour profile and off-hours tokens of users who also ran sanctioned automation that
    day, without it (the rollups mix both; these few users' rows are read)."""
    exempt = frozenset(detection.exempt_tags)
    out = {}
    with engine.connect() as connection:
        for org, team, user in keys:
            off = off_for(team)
            profile, off_tokens = [0] * 24, 0
            rows = connection.execute(
                select(
                    requests.c.started_at_ms,
                    requests.c.tags,
                    requests.c.input_tokens + requests.c.output_tokens,
                ).where(
                    requests.c.user == user,
                    requests.c.org == org,
                    requests.c.team == team,
                    requests.c.started_at_ms >= day_start_ms,
                    requests.c.started_at_ms < day_start_ms + DAY_MS,
                )
            )
            for started, tags, tokens in rows:
                if not exempt.isdisjoint(orjson.loads(tags)):
                    continue
                hour = (int(started) - day_start_ms) // HOUR_MS
                profile[hour] += 1
                if off[hour]:
                    off_tokens += int(tokens)
            out[(org, team, user)] = (profile, off_tokens)
    return out


def _off_hours(day_start_ms: int, hours: WorkHours) -> list[bool]:
    """For each UTC hour of the day: is it outside working hours in the team's timezone?"""
    zone = ZoneInfo(hours.timezone)
    result = []
    for h in range(24):
        local = datetime.fromtimestamp((day_start_ms + h * HOUR_MS) / 1000, UTC).astimezone(zone)
        weekend = hours.weekdays_only and local.weekday() >= 5
        start, end = hours.start_hour - hours.shoulder_hours, hours.end_hour + hours.shoulder_hours
        # Hours are compared on a circle: a shoulder may cross midnight.
        inside = (local.hour - start) % 24 < end - start if end - start < 24 else True
        result.append(weekend or not inside)
    return result


def _p75(values: Iterable[int]) -> float:
    data = sorted(values)
    if len(data) < 4:
        return 0.0  # too few members to call anyone "top quartile"
    return float(statistics.quantiles(data, n=4)[2])


def _with_samples(engine: Engine, flags: list[DayFlag]) -> list[DayFlag]:
    """Attach the ids of each flagged user-day's highest-scoring requests as evidence."""
    if not flags:
        return flags
    out = []
    with engine.connect() as connection:
        for flag in flags:
            ids = connection.execute(
                select(requests.c.request_id)
                .where(
                    and_(
                        requests.c.user == flag.user,
                        requests.c.started_at_ms >= flag.day_start_ms,
                        requests.c.started_at_ms < flag.day_start_ms + DAY_MS,
                    )
                )
                .order_by(requests.c.gaming_score.desc(), requests.c.started_at_ms.desc())
                .limit(SAMPLE_IDS)
            ).scalars()
            out.append(replace(flag, sample_request_ids=tuple(ids)))
    return out


def flag_days(
    engine: Engine,
    day_starts_ms: Iterable[int],
    detection: DetectionConfig,
    impact: ImpactConfig | None,
    now_ms: int,
) -> int:
    """Scan each day and store its flags on the review list; returns the new flags."""
    new = 0
    for day in day_starts_ms:
        rows = [
            {
                "flag_id": f.flag_id,
                "day_start_ms": f.day_start_ms,
                "org": f.org,
                "team": f.team,
                "user": f.user,
                "score": f.verdict.score,
                "tokens": f.tokens,
                "credited_tokens": f.credited_tokens,
                "signals": {name: asdict(e) for name, e in f.verdict.signals.items()},
                "sample_request_ids": f.sample_request_ids,
            }
            for f in scan_day(engine, day, detection, impact)
        ]
        new += upsert_flags(engine, rows, now_ms)
    return new
