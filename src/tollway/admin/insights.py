"""Admin routes for the gaming review list and the alert history (admin keys only)."""

from __future__ import annotations

import asyncio
import time
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field

from tollway.admin.auth import AdminPrincipal
from tollway.admin.params import runtime_of, time_param
from tollway.errors import NotFound
from tollway.insights.flag_scan import DAY_MS, flag_days
from tollway.ledger.alerts import AlertStore
from tollway.ledger.flags import get_flag, list_flags, review_flag

router = APIRouter(prefix="/admin/v1")
SinceQuery = Annotated[str, Query(description="ISO time or a duration back (e.g. 7d)")]


class FlagReview(BaseModel):
    status: Literal["confirmed", "dismissed"]
    note: str | None = Field(None, max_length=2000)


class AlertFeedback(BaseModel):
    verdict: Literal["useful", "false", "planned"]
    note: str | None = Field(None, max_length=2000)


def _since(value: str) -> int:
    return time_param(value, 0, "since")


def _now() -> int:
    return int(time.time() * 1000)


@router.get("/flags", tags=["insights"])
async def flags(
    _: AdminPrincipal,
    request: Request,
    since: SinceQuery = "7d",
    status: Annotated[str | None, Query(pattern="^(open|confirmed|dismissed)$")] = None,
    org: str | None = None,
    team: str | None = None,
    limit: Annotated[int, Query(ge=1, le=5000)] = 500,
) -> dict[str, Any]:
    """Flagged user-days, highest score first, with the signals and sample request ids."""
    engine = runtime_of(request).database.engine
    rows = await asyncio.to_thread(
        list_flags,
        engine,
        since_ms=_since(since),
        status=status,
        org=org,
        team=team,
        limit=limit,
    )
    return {"flags": rows}


@router.post("/flags/scan", tags=["insights"])
async def scan_flags(
    _: AdminPrincipal, request: Request, since: SinceQuery = "1d"
) -> dict[str, Any]:
    """Rescan the ledger's days from `since` to now and update the review list."""
    runtime = runtime_of(request)
    since_ms, now = _since(since), _now()
    days = range(since_ms - since_ms % DAY_MS, now, DAY_MS)
    insights = runtime.settings.insights
    new = await asyncio.to_thread(
        flag_days, runtime.database.engine, days, insights.detection, insights.impact, now
    )
    return {"days": len(days), "new_flags": new}


@router.post("/flags/{flag_id:path}/review", tags=["insights"])
async def review(
    principal: AdminPrincipal, request: Request, flag_id: str, body: FlagReview
) -> dict[str, Any]:
    """Confirm or dismiss a flag. Nothing is punished automatically either way."""
    engine = runtime_of(request).database.engine
    found = await asyncio.to_thread(
        review_flag, engine, flag_id, body.status, principal.key_id, body.note, _now()
    )
    if not found:
        raise NotFound(f"No flag with id '{flag_id}'.")
    flag = await asyncio.to_thread(get_flag, engine, flag_id)
    assert flag is not None
    return flag


@router.get("/alerts", tags=["insights"])
async def alerts(
    _: AdminPrincipal,
    request: Request,
    since: SinceQuery = "7d",
    state: Annotated[str | None, Query(pattern="^(open|resolved)$")] = None,
    kind: str | None = None,
    team: str | None = None,
    limit: Annotated[int, Query(ge=1, le=5000)] = 200,
) -> dict[str, Any]:
    """Alert history, newest first, with evidence, deliveries and feedback."""
    store = AlertStore(runtime_of(request).database.engine)
    rows = await asyncio.to_thread(
        store.list, since_ms=_since(since), state=state, kind=kind, team=team, limit=limit
    )
    return {"alerts": rows}


@router.get("/alerts/{alert_id}", tags=["insights"])
async def alert(_: AdminPrincipal, request: Request, alert_id: str) -> dict[str, Any]:
    """One alert."""
    found = await asyncio.to_thread(AlertStore(runtime_of(request).database.engine).get, alert_id)
    if found is None:
        raise NotFound(f"No alert with id '{alert_id}'.")
    return found


@router.post("/alerts/{alert_id}/feedback", tags=["insights"])
async def alert_feedback(
    principal: AdminPrincipal, request: Request, alert_id: str, body: AlertFeedback
) -> dict[str, Any]:
    """Record whether an alert was useful, a false alarm, or planned work."""
    store = AlertStore(runtime_of(request).database.engine)
    found = await asyncio.to_thread(
        store.feedback, alert_id, body.verdict, principal.key_id, body.note, _now()
    )
    if not found:
        raise NotFound(f"No alert with id '{alert_id}'.")
    updated = await asyncio.to_thread(store.get, alert_id)
    assert updated is not None
    return updated
