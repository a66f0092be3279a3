"""Admin routes for impact: team metrics, the banded leaderboard, and per-user figures."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from tollway.admin.auth import AdminPrincipal
from tollway.admin.outcomes import period
from tollway.admin.params import runtime_of
from tollway.errors import InvalidRequest, PermissionDenied
from tollway.insights import impact

router = APIRouter(prefix="/admin/v1/impact", tags=["impact"])
Since = Annotated[str, Query(description="ISO date or duration back; whole UTC days")]
Until = Annotated[str | None, Query(description="ISO date or duration back (default: today)")]


def _period(since: str, until: str | None) -> tuple[int, int]:
    since_ms, until_ms = period(since, until)
    try:
        impact.period_of(since_ms, until_ms)
    except ValueError as exc:
        raise InvalidRequest(f"since: {exc}", param="since") from None
    return since_ms, until_ms


@router.get("")
async def team_metrics(
    _: AdminPrincipal, request: Request, since: Since = "30d", until: Until = None
) -> dict[str, Any]:
    """Per team: outcomes, credited tokens, outcomes per 1M credited tokens, cost per
    outcome, in-house share, active users, and the trend against the previous period."""
    runtime = runtime_of(request)
    since_ms, until_ms = _period(since, until)
    return await asyncio.to_thread(
        impact.team_metrics,
        runtime.database.engine,
        since_ms=since_ms,
        until_ms=until_ms,
        config=runtime.settings.insights.impact,
    )


@router.get("/leaderboard")
async def leaderboard(
    _: AdminPrincipal, request: Request, since: Since = "30d", until: Until = None
) -> dict[str, Any]:
    """Teams in quartile bands (Q1 = top) of log1p(outcomes) per 1M credited tokens;
    alphabetical within a band, never ranked; small teams are not compared."""
    runtime = runtime_of(request)
    since_ms, until_ms = _period(since, until)
    return await asyncio.to_thread(
        impact.leaderboard,
        runtime.database.engine,
        since_ms=since_ms,
        until_ms=until_ms,
        config=runtime.settings.insights.impact,
    )


@router.get("/users")
async def user_metrics(
    _: AdminPrincipal,
    request: Request,
    team: Annotated[str, Query(min_length=1)],
    org: str | None = None,
    since: Since = "30d",
    until: Until = None,
) -> dict[str, Any]:
    """Per user of one team, alphabetical; refused (403) for teams under the minimum
    group size, so no individual can be singled out."""
    runtime = runtime_of(request)
    since_ms, until_ms = _period(since, until)
    engine = runtime.database.engine
    if org is None:
        orgs = await asyncio.to_thread(impact.team_orgs, engine, team)
        if len(orgs) > 1:
            raise InvalidRequest(
                f"org: team '{team}' exists in orgs {', '.join(orgs)}; pass org", param="org"
            )
        org = orgs[0] if orgs else "demo"
    try:
        return await asyncio.to_thread(
            impact.user_metrics,
            engine,
            org=org,
            team=team,
            since_ms=since_ms,
            until_ms=until_ms,
            config=runtime.settings.insights.impact,
        )
    except impact.TeamTooSmall as exc:
        raise PermissionDenied(str(exc)) from None
