"""Usage per team over whole UTC days, from `usage_hourly`, with a cache of closed days.

Aggregating a month of a large org reads millions of rollup rows, so a day that has
ended (plus an hour for late records) is read once and kept for a few hours: later
reports mostly read only the open day. Per-user usage of one team is read with one index
seek per hour instead of a scan.
"""

from __future__ import annotations

import sys
import threading
from collections import OrderedDict
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import BigInteger, ColumnElement, Engine, and_, case, func, literal, or_, select

from tollway.ledger.schema import usage_hourly
from tollway.settings import Settings

HOUR_MS = 3_600_000
DAY_MS = 86_400_000
SETTLE_MS = HOUR_MS  # records of a request land when it ends: allow an hour for long streams

TeamKey = tuple[str, str]  # (org, team)


@dataclass(frozen=True, slots=True)
class InHouse:
    """What counts as in-house: served model names and provider names."""

    models: frozenset[str] = frozenset()
    providers: frozenset[str] = frozenset()

    @classmethod
    def from_settings(cls, settings: Settings) -> InHouse:
        """Models marked `in_house` (by public and upstream name) and in-house providers."""
        models: set[str] = set()
        for model in settings.models:
            if model.in_house:
                models.update((model.name, *(d.model or model.name for d in model.deployments)))
        providers = {p.name for p in settings.providers if p.in_house}
        return cls(frozenset(models), frozenset(providers))


@dataclass(slots=True)
class Usage:
    """Sums over some user-hours; `users` are the users seen."""

    credited_tokens: int = 0
    tokens: int = 0
    cost_pusd: int = 0
    in_house_tokens: int = 0
    requests: int = 0
    users: set[str] = field(default_factory=set)

    def add(self, other: Usage | _Day) -> None:
        self.credited_tokens += other.credited_tokens
        self.tokens += other.tokens
        self.cost_pusd += other.cost_pusd
        self.in_house_tokens += other.in_house_tokens
        self.requests += other.requests
        self.users.update(other.users)


@dataclass(frozen=True, slots=True)
class _Day:
    """One team's sums on one day (compact: it may sit in the cache)."""

    credited_tokens: int
    tokens: int
    cost_pusd: int
    in_house_tokens: int
    requests: int
    users: tuple[str, ...]


DayUsage = dict[TeamKey, _Day]


class DayCache:
    """Per-team usage of closed days. An entry is kept `ttl_ms` (so records that reach
    the ledger late, e.g. a crashed replica's replayed journal, show within that time);
    the least recently used are dropped past `max_days`."""

    def __init__(self, max_days: int = 120, ttl_ms: int = 6 * HOUR_MS) -> None:
        self.max_days = max_days
        self.ttl_ms = ttl_ms
        self._days: OrderedDict[tuple[int, InHouse], tuple[int, DayUsage]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, day_ms: int, in_house: InHouse, now_ms: int) -> DayUsage | None:
        key = (day_ms, in_house)
        with self._lock:
            found = self._days.get(key)
            if found is None or found[0] + self.ttl_ms <= now_ms:
                return None
            self._days.move_to_end(key)
            return found[1]

    def put(self, day_ms: int, in_house: InHouse, usage: DayUsage, now_ms: int) -> None:
        with self._lock:
            self._days[(day_ms, in_house)] = (now_ms, usage)
            self._days.move_to_end((day_ms, in_house))
            while len(self._days) > self.max_days:
                self._days.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._days.clear()


def team_usage(
    engine: Engine,
    since_ms: int,
    until_ms: int,
    in_house: InHouse,
    *,
    now_ms: int,
    cache: DayCache | None = None,
    workers: int = 2,
) -> dict[TeamKey, Usage]:
    """Usage per (org, team) over the whole days in `[since_ms, until_ms)` (day-aligned)."""
    days = range(since_ms, min(until_ms, now_ms - now_ms % DAY_MS + DAY_MS), DAY_MS)
    found: dict[int, DayUsage] = {}
    missing: list[int] = []
    for day in days:
        cached = cache.get(day, in_house, now_ms) if cache is not None else None
        if cached is None:
            missing.append(day)
        else:
            found[day] = cached
    for day, usage in zip(missing, _read_days(engine, missing, in_house, workers), strict=True):
        found[day] = usage
        if cache is not None and day + DAY_MS + SETTLE_MS <= now_ms:
            cache.put(day, in_house, usage, now_ms)
    totals: dict[TeamKey, Usage] = {}
    for usage in found.values():
        for key, day_usage in usage.items():
            totals.setdefault(key, Usage()).add(day_usage)
    return totals


def _read_days(engine: Engine, days: list[int], in_house: InHouse, workers: int) -> list[DayUsage]:
    if len(days) <= 1 or workers <= 1:
        return [_read_day(engine, day, in_house) for day in days]
    # Both SQLite and PostgreSQL run a query while the GIL is released: days in parallel.
    with ThreadPoolExecutor(min(workers, len(days))) as pool:
        return list(pool.map(lambda day: _read_day(engine, day, in_house), days))


def _in_house_tokens(in_house: InHouse) -> ColumnElement[Any]:
    tokens = usage_hourly.c.input_tokens + usage_hourly.c.output_tokens
    if not in_house.models and not in_house.providers:
        return literal(0, BigInteger)
    return case(
        (
            or_(
                usage_hourly.c.model.in_(sorted(in_house.models)),
                usage_hourly.c.provider.in_(sorted(in_house.providers)),
            ),
            tokens,
        ),
        else_=0,
    )


def _sums(in_house: InHouse) -> list[ColumnElement[Any]]:
    u = usage_hourly.c
    return [
        func.sum(u.credited_tokens).label("credited_tokens"),
        func.sum(u.input_tokens + u.output_tokens).label("tokens"),
        func.sum(u.actual_cost_pusd).label("cost_pusd"),
        func.sum(_in_house_tokens(in_house)).label("in_house_tokens"),
        func.sum(u.requests).label("requests"),
    ]


def _read_day(engine: Engine, day_ms: int, in_house: InHouse) -> DayUsage:
    u = usage_hourly.c
    in_day = (u.hour_start_ms >= day_ms, u.hour_start_ms < day_ms + DAY_MS)
    # Grouped in primary-key order (hour first), SQLite aggregates as it reads, with no
    # sort; the users come from the key alone. Two such reads beat one sorted GROUP BY.
    sums = select(u.org, u.team, *_sums(in_house)).where(*in_day)
    sums = sums.group_by(u.hour_start_ms, u.org, u.team)
    users = select(u.org, u.team, u.user).where(*in_day).distinct()
    with engine.connect() as connection:
        sum_rows = connection.execute(sums).all()
        user_rows = connection.execute(users).all()
    teams: dict[TeamKey, list[Any]] = {}
    for org, team, *values in sum_rows:
        acc = teams.setdefault((org, team), [0, 0, 0, 0, 0, []])
        for i, value in enumerate(values):
            acc[i] += int(value)  # PostgreSQL sums bigints as numeric
    for org, team, user in user_rows:
        # The same names on every cached day: share one string object.
        teams.setdefault((org, team), [0, 0, 0, 0, 0, []])[5].append(sys.intern(user))
    return {
        key: _Day(acc[0], acc[1], acc[2], acc[3], acc[4], tuple(acc[5]))
        for key, acc in teams.items()
    }


def user_usage(
    engine: Engine, org: str, team: str, since_ms: int, until_ms: int, in_house: InHouse
) -> dict[str, Usage]:
    """Usage per user of one team in `[since_ms, until_ms)` (whole hours)."""
    u = usage_hourly.c
    start = since_ms - since_ms % HOUR_MS
    # One primary-key seek per hour (hour, org, team): the key leads with the hour, so a
    # plain filter on the team would scan every row of the period.
    hours = select(literal(start, BigInteger).label("h")).cte("hours", recursive=True)
    hours = hours.union_all(
        select((hours.c.h + HOUR_MS).label("h")).where(hours.c.h + HOUR_MS < until_ms)
    )
    query = (
        select(u.user, *_sums(in_house))
        .select_from(
            hours.join(
                usage_hourly, and_(u.hour_start_ms == hours.c.h, u.org == org, u.team == team)
            )
        )
        .group_by(u.user)
    )
    with engine.connect() as connection:
        rows = connection.execute(query).all()
    return {
        user: Usage(int(credited), int(tokens), int(cost), int(own), int(requests), {user})
        for user, credited, tokens, cost, own, requests in rows
    }


def merge(usages: Iterable[Usage]) -> Usage:
    """The sum of `usages`."""
    total = Usage()
    for usage in usages:
        total.add(usage)
    return total
