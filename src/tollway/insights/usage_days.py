"""Usage per team, and per user of one team, over whole UTC days, from `user_daily`.

`user_daily` holds one row per user and day (a month of a 6,000-user org is ~180k rows,
against ~2.7M in `usage_hourly`), written with the requests, in-house tokens included:
a month is read afresh in a fraction of a second, with no cache to keep or invalidate.
A period covers the UTC days that overlap `[since_ms, until_ms)`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, Engine, func, select

from tollway.ledger.schema import user_daily

HOUR_MS = 3_600_000
DAY_MS = 86_400_000

TeamKey = tuple[str, str]  # (org, team)


@dataclass(slots=True)
class Usage:
    """Sums over some user-days; `users` are the users seen."""

    credited_tokens: int = 0
    tokens: int = 0
    cost_pusd: int = 0
    in_house_tokens: int = 0
    requests: int = 0
    users: set[str] = field(default_factory=set)

    def add(self, other: Usage) -> None:
        self.credited_tokens += other.credited_tokens
        self.tokens += other.tokens
        self.cost_pusd += other.cost_pusd
        self.in_house_tokens += other.in_house_tokens
        self.requests += other.requests
        self.users.update(other.users)


def team_usage(engine: Engine, since_ms: int, until_ms: int) -> dict[TeamKey, Usage]:
    """Usage per (org, team) over the UTC days overlapping `[since_ms, until_ms)`."""
    d = user_daily.c
    # Grouped by user too: a team's active users come with its sums, in one read.
    query = (
        select(d.org, d.team, d.user, *_sums())
        .where(*_days(since_ms, until_ms))
        .group_by(d.org, d.team, d.user)
    )
    with engine.connect() as connection:
        rows = connection.execute(query).all()
    teams: dict[TeamKey, Usage] = {}
    for org, team, user, *sums in rows:
        usage = teams.get((org, team))
        if usage is None:
            usage = teams[(org, team)] = Usage()
        _add_row(usage, user, sums)
    return teams


def user_usage(
    engine: Engine, org: str, team: str, since_ms: int, until_ms: int
) -> dict[str, Usage]:
    """Usage per user of one team over the UTC days overlapping `[since_ms, until_ms)`."""
    d = user_daily.c
    first = since_ms - since_ms % DAY_MS
    # The primary key leads with the day: one seek per (day, org, team) rather than a
    # range over every team's rows of the period.
    query = (
        select(d.user, *_sums())
        .where(
            d.day_start_ms.in_(list(range(first, until_ms, DAY_MS))), d.org == org, d.team == team
        )
        .group_by(d.user)
    )
    with engine.connect() as connection:
        rows = connection.execute(query).all()
    users: dict[str, Usage] = {}
    for user, *sums in rows:
        _add_row(users.setdefault(user, Usage()), user, sums)
    return users


def merge(usages: Iterable[Usage]) -> Usage:
    """The sum of `usages`."""
    total = Usage()
    for usage in usages:
        total.add(usage)
    return total


def _days(since_ms: int, until_ms: int) -> tuple[ColumnElement[bool], ColumnElement[bool]]:
    d = user_daily.c
    return d.day_start_ms >= since_ms - since_ms % DAY_MS, d.day_start_ms < until_ms


def _sums() -> list[ColumnElement[Any]]:
    d = user_daily.c
    return [
        func.sum(d.credited_tokens),
        func.sum(d.tokens),
        func.sum(d.actual_cost_pusd),
        func.sum(d.in_house_tokens),
        func.sum(d.requests),
    ]


def _add_row(usage: Usage, user: str, sums: list[Any]) -> None:
    credited, tokens, cost, in_house, requests = (int(v) for v in sums)  # PostgreSQL: numeric
    usage.credited_tokens += credited
    usage.tokens += tokens
    usage.cost_pusd += cost
    usage.in_house_tokens += in_house
    usage.requests += requests
    if requests:
        usage.users.add(user)
