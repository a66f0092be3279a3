"""Consumption per time bucket for the spike detector, read from the ledger.

Values per entity: `weighted_tokens` (tokens x the peak weight they were charged at) and
`cost_usd` (actual cost). Entities are keyed (kind, id, parent) with path-like ids, so
two teams named alike in different orgs stay apart: user `acme/payments/ada` has parent
team `acme/payments`, whose parent is org `acme`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from sqlalchemy import Engine, func, select

from tollway.ledger.schema import requests, usage_hourly

EntityKey = tuple[str, str, str | None]
Values = dict[EntityKey, dict[str, float]]
PUSD_PER_USD = 10**12


def bucket_values(engine: Engine, start_ms: int, end_ms: int) -> Values:
    """Per user, team and org: weighted tokens and cost of requests started in the bucket."""
    tokens = requests.c.input_tokens + requests.c.output_tokens
    query = (
        select(
            requests.c.org,
            requests.c.team,
            requests.c.user,
            func.sum(tokens * requests.c.peak_weight),
            func.sum(requests.c.actual_cost_pusd),
        )
        .where(requests.c.started_at_ms >= start_ms, requests.c.started_at_ms < end_ms)
        .group_by(requests.c.org, requests.c.team, requests.c.user)
    )
    with engine.connect() as connection:
        rows = connection.execute(query).all()
    return roll_up((org, team, user, float(w or 0), int(c or 0)) for org, team, user, w, c in rows)


def hourly_history(engine: Engine, since_ms: int, until_ms: int) -> dict[int, Values]:
    """Per hour start, the same values from the hourly rollups, to seed baselines at start.

    The rollups keep raw tokens; weighted tokens are rebuilt with the hour's average peak
    weight (weighted charge / actual cost), exact when one weight applied all hour."""
    tokens = usage_hourly.c.input_tokens + usage_hourly.c.output_tokens
    query = (
        select(
            usage_hourly.c.hour_start_ms,
            usage_hourly.c.org,
            usage_hourly.c.team,
            usage_hourly.c.user,
            func.sum(tokens),
            func.sum(usage_hourly.c.actual_cost_pusd),
            func.sum(usage_hourly.c.weighted_charge_pusd),
        )
        .where(usage_hourly.c.hour_start_ms >= since_ms, usage_hourly.c.hour_start_ms < until_ms)
        .group_by(
            usage_hourly.c.hour_start_ms,
            usage_hourly.c.org,
            usage_hourly.c.team,
            usage_hourly.c.user,
        )
    )
    rows: dict[int, list[tuple[str, str, str, float, int]]] = defaultdict(list)
    with engine.connect() as connection:
        for hour, org, team, user, n, cost, charge in connection.execute(query):
            weight = int(charge) / int(cost) if cost else 1.0
            rows[int(hour)].append((org, team, user, float(n or 0) * weight, int(cost or 0)))
    return {hour: roll_up(r) for hour, r in sorted(rows.items())}


def roll_up(rows: Iterable[tuple[str, str, str, float, int]]) -> Values:
    """User rows (org, team, user, weighted tokens, cost pusd) summed into users, teams, orgs."""
    values: Values = defaultdict(lambda: {"weighted_tokens": 0.0, "cost_usd": 0.0})
    for org, team, user, weighted, cost_pusd in rows:
        cost = cost_pusd / PUSD_PER_USD
        team_id = f"{org}/{team}"
        for key in (
            ("user", f"{team_id}/{user}", team_id),
            ("team", team_id, org),
            ("org", org, None),
        ):
            entry = values[key]
            entry["weighted_tokens"] += weighted
            entry["cost_usd"] += cost
    return dict(values)
