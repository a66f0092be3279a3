"""Admin routes for budgets, rate limits and the peak schedule.

Bodies are the same mappings the YAML config takes. Policies created here are
stored in the database, survive restarts, reach every replica within a second,
and override a config entry with the same id; config entries cannot be deleted
here (change the file instead).
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Body, Request

from tollway.admin.auth import AdminPrincipal
from tollway.admin.params import runtime_of
from tollway.budgets.model import BudgetSpec, parse_budgets, parse_rate_limits
from tollway.budgets.ticket import BudgetState
from tollway.budgets.windows import CalendarWindow
from tollway.errors import ConfigError, InvalidRequest, NotFound
from tollway.metering.peak import MILLI, PeakSchedule

if TYPE_CHECKING:
    from tollway.app import Runtime

router = APIRouter(prefix="/admin/v1", tags=["budgets"])

_EXAMPLE_BUDGET = {
    "scope": "team",
    "subject": "acme/payments",
    "unit": "usd_actual",
    "window": "month",
    "timezone": "Europe/Berlin",
    "soft_limit": "$400",
    "hard_limit": "$500",
}


def budget_view(state: BudgetState, source: str) -> dict[str, Any]:
    """One budget or rate limit with its live counter, for the API and the CLI."""
    spec = state.spec
    view: dict[str, Any] = {
        "id": spec.id,
        "label": spec.label,
        "scope": spec.scope,
        "subject": spec.subject,
        "source": source,
        "used": state.used,
        "reserved": state.reserved,
        "remaining": state.remaining,
        "fraction": round(state.fraction, 6),
        "window_start_ms": state.window_start_ms,
        "window_end_ms": state.window_end_ms,
    }
    if isinstance(spec, BudgetSpec):
        window = spec.window
        view.update(
            kind="budget",
            unit=spec.unit,
            window=window.name,
            timezone=str(window.tz) if isinstance(window, CalendarWindow) else None,
            soft_limit=spec.soft_limit,
            hard_limit=spec.hard_limit,
            soft_exceeded=state.soft_exceeded,
            display={
                "used": spec.format(state.used),
                "limit": spec.format(spec.hard_limit) if spec.hard_limit is not None else None,
                "soft_limit": spec.format(spec.soft_limit) if spec.soft_limit is not None else None,
            },
        )
    else:
        view.update(kind="rate_limit", metric=spec.metric, limit=spec.limit)
    return view


def _parse(kind: str, policy_id: str, body: dict[str, Any], runtime: Runtime) -> None:
    try:
        if kind == "budget":
            parse_budgets(
                [{**body, "id": policy_id}],
                default_timezone=runtime.settings.budget_defaults.timezone,
                where="body",
            )
        elif kind == "rate_limit":
            parse_rate_limits([body], where="body")
        else:
            PeakSchedule.from_config(body, where="body")
    except ConfigError as exc:
        raise InvalidRequest(exc.message) from None


async def _list(runtime: Runtime) -> list[dict[str, Any]]:
    service = runtime.budgets
    states = await service.engine.usage()
    return [budget_view(s, service.sources.get(s.spec.id, "config")) for s in states]


@router.get("/budgets")
async def list_budgets(_: AdminPrincipal, request: Request) -> dict[str, Any]:
    """Every budget and rate limit with its current window's use (from the counter store)."""
    views = await _list(runtime_of(request))
    return {
        "budgets": [v for v in views if v["kind"] == "budget"],
        "rate_limits": [v for v in views if v["kind"] == "rate_limit"],
    }


@router.put("/budgets/{budget_id}")
async def put_budget(
    _: AdminPrincipal,
    request: Request,
    budget_id: str,
    body: dict[str, Any] = Body(openapi_examples={"team": {"value": _EXAMPLE_BUDGET}}),  # noqa: B008
) -> dict[str, Any]:
    """Create or replace a budget (the config file's mapping shape)."""
    return await _put(request, "budget", budget_id, body)


@router.delete("/budgets/{budget_id}")
async def delete_budget(_: AdminPrincipal, request: Request, budget_id: str) -> dict[str, Any]:
    """Delete a budget created through the API."""
    return await _delete(request, "budget", budget_id)


@router.put("/rate-limits/{limit_id}")
async def put_rate_limit(
    _: AdminPrincipal, request: Request, limit_id: str, body: dict[str, Any]
) -> dict[str, Any]:
    """Create or replace rate limits: `{scope, subject, rpm?, tpm?, concurrent?}`."""
    return await _put(request, "rate_limit", limit_id, body)


@router.delete("/rate-limits/{limit_id}")
async def delete_rate_limit(_: AdminPrincipal, request: Request, limit_id: str) -> dict[str, Any]:
    """Delete rate limits created through the API."""
    return await _delete(request, "rate_limit", limit_id)


@router.get("/peak-schedule")
async def get_peak_schedule(_: AdminPrincipal, request: Request) -> dict[str, Any]:
    """The schedule in force (from the API if one was set, else the config) and the weight now."""
    runtime = runtime_of(request)
    stored = await asyncio.to_thread(runtime.policies.get, "peak_schedule", "default")
    now = int(time.time() * 1000)
    weight = runtime.budgets.engine.schedule.time_weight(now)
    return {
        "source": "api" if stored is not None else "config",
        "schedule": stored if stored is not None else runtime.settings.peak,
        "weight_now": weight / MILLI,
    }


@router.put("/peak-schedule")
async def put_peak_schedule(
    _: AdminPrincipal, request: Request, body: dict[str, Any]
) -> dict[str, Any]:
    """Replace the peak schedule (the config file's `peak` mapping)."""
    runtime = runtime_of(request)
    _parse("peak_schedule", "default", body, runtime)
    await asyncio.to_thread(runtime.policies.put, "peak_schedule", "default", body)
    await runtime.budgets.refresh()
    return await get_peak_schedule(_, request)


async def _put(request: Request, kind: str, policy_id: str, body: dict[str, Any]) -> dict[str, Any]:
    runtime = runtime_of(request)
    _parse(kind, policy_id, body, runtime)
    await asyncio.to_thread(runtime.policies.put, kind, policy_id, body)
    await runtime.budgets.refresh()
    views = await _list(runtime)
    ids = {policy_id} if kind == "budget" else {r.id for r in parse_rate_limits([body])}
    return {"policy_id": policy_id, "items": [v for v in views if v["id"] in ids]}


async def _delete(request: Request, kind: str, policy_id: str) -> dict[str, Any]:
    runtime = runtime_of(request)
    if not await asyncio.to_thread(runtime.policies.delete, kind, policy_id):
        declared = any(
            s.id == policy_id and runtime.budgets.sources.get(s.id) == "config"
            for s in runtime.budgets.engine.specs
        )
        if declared:
            raise InvalidRequest(
                f"'{policy_id}' is declared in the config file; change the file to remove it."
            )
        raise NotFound(f"No {kind.replace('_', ' ')} '{policy_id}' was created through the API.")
    await runtime.budgets.refresh()
    return {"policy_id": policy_id, "deleted": True}
