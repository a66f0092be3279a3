"""Which outcomes count as AI-assisted: an actor used the gateway shortly before.

An outcome at time t is attributed when one of its actors has a `usage_hourly` row
in an hour that overlaps `[t - attribution window, t]` (hourly resolution), under any
team the actor holds a key for in the outcome's org. The check is done in SQL, one
primary-key seek per (actor, hour) that stops at the first hit, so it costs a few
seeks per outcome instead of a scan of the usage table.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Engine,
    Exists,
    and_,
    case,
    false,
    func,
    literal,
    select,
)

from tollway.ledger.schema import api_keys, outcome_actors, outcomes, usage_hourly

HOUR_MS = 3_600_000


@dataclass(slots=True)
class OutcomeCounts:
    """Outcomes of counted kinds: attributed and not voided (the ones that count),
    not attributed, and voided by a revert or incident."""

    outcomes: int = 0
    unattributed: int = 0
    voided: int = 0

    def count(self, voided: bool, attributed: bool) -> None:
        if voided:
            self.voided += 1
        elif attributed:
            self.outcomes += 1
        else:
            self.unattributed += 1


@dataclass(frozen=True, slots=True)
class ActorOutcome:
    """One actor of an outcome; `attributed` is about this actor's own AI use."""

    user: str
    outcome_id: str
    voided: bool
    attributed: bool


def _ai_use(
    user: ColumnElement[str], at_ms: ColumnElement[int], org: Any, window_ms: int
) -> Exists:
    """EXISTS: `user` has usage, under a team of theirs in `org`, in an hour overlapping
    `[at_ms - window_ms, at_ms]`."""
    offsets = select(literal(0, BigInteger).label("k")).cte("offsets", recursive=True)
    offsets = offsets.union_all(
        select((offsets.c.k + 1).label("k")).where(offsets.c.k < window_ms // HOUR_MS + 1)
    )
    teams = select(api_keys.c.org, api_keys.c.team, api_keys.c.user).distinct().cte("key_teams")
    hour = at_ms // HOUR_MS
    u = usage_hourly.c
    # Nested EXISTS fix the join order: actor -> their teams -> hours back -> key seek.
    hit = (
        select(literal(1))
        .select_from(offsets)
        .join(
            usage_hourly,
            and_(
                u.hour_start_ms == (hour - offsets.c.k) * HOUR_MS,
                u.org == teams.c.org,
                u.team == teams.c.team,
                u.user == user,
            ),
        )
        .where(offsets.c.k <= hour - (at_ms - window_ms) // HOUR_MS)
        .correlate_except(offsets, usage_hourly)
        .exists()
    )
    return (
        select(literal(1))
        .select_from(teams)
        .where(teams.c.user == user, teams.c.org == org, hit)
        .correlate_except(teams)
        .exists()
    )


def team_outcomes(
    engine: Engine,
    *,
    since_ms: int,
    until_ms: int,
    kinds: list[str],
    window_ms: int,
) -> dict[tuple[str, str], OutcomeCounts]:
    """Outcome counts per (org, team) for outcomes of `kinds` in `[since_ms, until_ms)`."""
    o = outcomes.c
    a = outcome_actors.alias("a")
    attributed = (
        select(literal(1))
        .select_from(a)
        .where(
            a.c.outcome_id == o.outcome_id,
            _ai_use(a.c.user, a.c.occurred_at_ms, o.org, window_ms),
        )
        .correlate_except(a)
        .exists()
    )
    voided = o.voided_at_ms.is_not(None)
    query = (
        select(
            o.org,
            o.team,
            func.count(),
            func.sum(case((voided, 1), else_=0)),
            # CASE stops at the first match: voided outcomes skip the seeks.
            func.sum(case((voided, 0), (attributed, 1), else_=0)),
        )
        .where(o.occurred_at_ms >= since_ms, o.occurred_at_ms < until_ms, o.kind.in_(kinds))
        .group_by(o.org, o.team)
    )
    with engine.connect() as connection:
        rows = connection.execute(query).all()
    return {
        (org, team): OutcomeCounts(int(hits), int(total - voided_n - hits), int(voided_n))
        for org, team, total, voided_n, hits in rows
    }


def actor_outcomes(
    engine: Engine,
    *,
    org: str,
    team: str,
    since_ms: int,
    until_ms: int,
    kinds: list[str],
    window_ms: int,
) -> list[ActorOutcome]:
    """Every (actor, outcome) of one team's outcomes of `kinds` in `[since_ms, until_ms)`."""
    o = outcomes.c
    a = outcome_actors.c
    query = (
        select(
            a.user,
            a.outcome_id,
            o.voided_at_ms.is_not(None).label("voided"),
            case(
                (o.voided_at_ms.is_(None), _ai_use(a.user, a.occurred_at_ms, o.org, window_ms)),
                else_=false(),
            ).label("attributed"),
        )
        .select_from(outcome_actors.join(outcomes, a.outcome_id == o.outcome_id))
        .where(
            o.org == org,
            o.team == team,
            o.occurred_at_ms >= since_ms,
            o.occurred_at_ms < until_ms,
            o.kind.in_(kinds),
        )
    )
    with engine.connect() as connection:
        rows = connection.execute(query).all()
    return [ActorOutcome(r[0], r[1], bool(r[2]), bool(r[3])) for r in rows]
