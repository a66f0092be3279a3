"""The reserve step: the worst-case charge of a request, before it is forwarded."""

from __future__ import annotations

from tollway.budgets.engine import BudgetEngine
from tollway.budgets.ticket import Ticket
from tollway.gateway.apis import EMBEDDINGS, ParsedRequest, estimate_prompt_tokens
from tollway.gateway.auth import Principal
from tollway.routing.table import Deployment, ModelRoute


def max_output_tokens(req: ParsedRequest, route: ModelRoute, default: int) -> int:
    """What the request may generate at most: its own cap, or the default, within the model's."""
    if req.api is EMBEDDINGS:
        return 0
    cap = req.max_tokens or default
    if route.max_output_tokens is not None:
        cap = min(cap, route.max_output_tokens)
    return cap


async def reserve(
    engine: BudgetEngine,
    principal: Principal,
    tags: tuple[str, ...],
    req: ParsedRequest,
    route: ModelRoute,
    deployment: Deployment | None,
    request_id: str,
    default_max_output_tokens: int,
) -> Ticket:
    """Reserve against every budget and rate limit on the principal's path (or raise 429/503)."""
    p = principal
    applies = bool(engine.applicable(p.org, p.team, p.user, p.key_id, tags))
    return await engine.reserve(
        org=p.org,
        team=p.team,
        user=p.user,
        key_id=p.key_id,
        tags=tags,
        model=route.name,
        input_tokens=estimate_prompt_tokens(req.api, req.body) if applies else 0,
        max_output_tokens=max_output_tokens(req, route, default_max_output_tokens),
        price=deployment.price if deployment else None,
        discount_ppm=deployment.provider.discount_ppm if deployment else 0,
        request_id=request_id,
    )
