"""The steering step: apply the first matching rule to a request before it is reserved."""

from __future__ import annotations

import time
from dataclasses import dataclass

from tollway.budgets.engine import BudgetEngine
from tollway.budgets.model import BudgetSpec
from tollway.errors import InvalidRequest, PermissionDenied
from tollway.gateway.apis import CHAT, ParsedRequest
from tollway.gateway.auth import Principal
from tollway.metering.peak import MILLI
from tollway.routing.steering import Decision, Facts, Steering
from tollway.routing.table import ModelRoute, RouteTable


@dataclass(slots=True)
class Steered:
    """The route a request will take and why."""

    route: ModelRoute
    decision: Decision
    reason: str | None = None


def gather_facts(
    engine: BudgetEngine,
    principal: Principal,
    tags: tuple[str, ...],
    req: ParsedRequest,
    route: ModelRoute,
    data_class: str = "clean",
    input_tokens: int = 0,
    now_ms: int | None = None,
) -> Facts:
    """Everything a rule may test, from in-memory state only."""
    now = now_ms if now_ms is not None else int(time.time() * 1000)
    p = principal
    tight = engine.tightest(p.org, p.team, p.user, p.key_id, tags)
    soft = hard = 0.0
    if tight is not None and isinstance(tight.spec, BudgetSpec):
        spent = tight.used + tight.reserved
        if tight.spec.soft_limit:
            soft = spent / tight.spec.soft_limit
        if tight.spec.hard_limit:
            hard = spent / tight.spec.hard_limit
    return Facts(
        org=p.org,
        team=p.team,
        user=p.user,
        key_id=p.key_id,
        requested_model=req.model,
        tags=tags,
        in_house=route.in_house,
        budget_soft_fraction=soft,
        budget_hard_fraction=hard,
        peak_weight=engine.schedule.time_weight(now) / MILLI,
        utc_hour=int(now // 3_600_000 % 24),
        data_class=data_class,
        input_tokens=input_tokens,
    )


def steer(
    steering: Steering,
    routes: RouteTable,
    facts: Facts,
    req: ParsedRequest,
    route: ModelRoute,
) -> Steered:
    """Apply the first matching rule: deny, demand a tag, re-route, cap max tokens."""
    decision = steering.decide(facts)
    rule = decision.rule
    if rule is None:
        return Steered(route, decision)
    actions = rule.actions
    if actions.deny is not None:
        raise PermissionDenied(f"{actions.deny} (rule '{rule.id}')")
    if actions.require_tag is not None and not _has_tag(facts.tags, actions.require_tag):
        raise InvalidRequest(
            f"Rule '{rule.id}' requires a tag matching '{actions.require_tag}' "
            "in the x-tollway-tags header."
        )
    reason = rule.reason()
    if actions.route_to is not None and actions.route_to not in route.names:
        try:
            route = routes.resolve(actions.route_to, req.api.dialect)
        except InvalidRequest:
            reason += f"; '{actions.route_to}' is not served over this API, not re-routed"
    if actions.cap_max_tokens is not None:
        cap_max_tokens(req, actions.cap_max_tokens)
    return Steered(route, decision, reason)


def cap_max_tokens(req: ParsedRequest, cap: int) -> None:
    """Lower the request's output cap to `cap` (never raise it)."""
    if req.max_tokens is not None and req.max_tokens <= cap:
        return
    field = (
        "max_completion_tokens"
        if req.api is CHAT and "max_completion_tokens" in req.body
        else ("max_tokens")
    )
    req.body[field] = cap
    req.max_tokens = cap
    req.modified = True


def _has_tag(tags: tuple[str, ...], pattern: str) -> bool:
    if pattern.endswith("*"):
        return any(t.startswith(pattern[:-1]) for t in tags)
    return pattern in tags
