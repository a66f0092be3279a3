"""Admin routes for steering rules: list, replace, and explain a request without sending it."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from tollway.admin.auth import AdminPrincipal
from tollway.errors import ConfigError, InvalidRequest, NotFound
from tollway.gateway.apis import CHAT, parse_request
from tollway.gateway.auth import Principal
from tollway.gateway.steer import gather_facts

if TYPE_CHECKING:
    from tollway.app import Runtime

router = APIRouter(prefix="/admin/v1/routing", tags=["routing"])


class ExplainRequest(BaseModel):
    key_id: str = Field(description="The key whose principal asks")
    model: str
    tags: list[str] = Field(default_factory=list)
    data_class: str = Field("clean", pattern="^(clean|pii|secret)$")
    input_tokens: int = Field(0, ge=0)


def _rules_view(runtime: Runtime) -> list[dict[str, Any]]:
    steering = runtime.gateway.steering
    return [{"id": r.id, "when": dict(r.when), "then": _actions(r.actions)} for r in steering.rules]


def _actions(actions: object) -> dict[str, Any]:
    names = actions.__slots__  # type: ignore[attr-defined]
    return {n: getattr(actions, n) for n in names if getattr(actions, n) is not None}


@router.get("/rules")
async def list_rules(_: AdminPrincipal, request: Request) -> dict[str, Any]:
    """The steering rules in force, in evaluation order."""
    runtime: Runtime = request.app.state.runtime
    source = "api" if runtime.budgets.steering_override is not None else "config"
    return {"source": source, "rules": _rules_view(runtime)}


@router.put("/rules")
async def put_rules(
    _: AdminPrincipal, request: Request, rules: list[dict[str, Any]]
) -> dict[str, Any]:
    """Replace the steering rules (the config's `steering` list); `[]` turns steering off."""
    runtime: Runtime = request.app.state.runtime
    try:
        runtime.settings.steering_rules(rules)
    except ConfigError as exc:
        raise InvalidRequest(exc.message) from None
    await asyncio.to_thread(runtime.policies.put, "steering", "rules", {"rules": rules})
    await runtime.budgets.refresh()
    return await list_rules(_, request)


@router.post("/explain")
async def explain(_: AdminPrincipal, request: Request, body: ExplainRequest) -> dict[str, Any]:
    """Which rule a request would match, and why, from live budget state; nothing is sent."""
    runtime: Runtime = request.app.state.runtime
    info = await asyncio.to_thread(runtime.key_store.get, body.key_id)
    if info is None:
        raise NotFound(f"No key with id '{body.key_id}'.")
    routes = runtime.gateway.routes
    route = routes.resolve(body.model, "openai")
    req = parse_request(CHAT, {"model": body.model, "messages": []})
    principal = Principal.from_key(info)
    tags = tuple(dict.fromkeys((*principal.tags, *body.tags)))
    facts = gather_facts(
        runtime.gateway.budgets,
        principal,
        tags,
        req,
        route,
        data_class=body.data_class,
        input_tokens=body.input_tokens,
    )
    results = runtime.gateway.steering.explain(facts)
    applies = next((rule.id for rule, hit in results if hit), None)
    return {
        "facts": {k: getattr(facts, k) for k in facts.__slots__},  # type: ignore[attr-defined]
        "rules": [
            {"id": rule.id, "when": rule.reason(), "matches": hit, "then": _actions(rule.actions)}
            for rule, hit in results
        ],
        "applies": applies,
    }
