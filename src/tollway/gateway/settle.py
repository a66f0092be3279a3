"""Settling a request: price its usage, write its ledger record, feed the metrics."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from tollway.budgets.ticket import Ticket
from tollway.gateway.apis import ApiSpec, ParsedRequest, fingerprint, new_prompt_text, prompt_text
from tollway.gateway.auth import Principal
from tollway.gateway.state import GatewayState
from tollway.governance.recorder import PendingLog
from tollway.insights.signals import measure, score
from tollway.insights.sketch import sketch
from tollway.ledger.record import LedgerRecord
from tollway.metering.pricing import price_usage
from tollway.metering.usage import Usage
from tollway.metrics import Observation
from tollway.routing.table import Deployment

_PUSD_PER_USD = 10**12


@dataclass(slots=True)
class RequestContext:
    """Everything learned about one request as it moves down the path."""

    api: ApiSpec
    request_id: str
    started_at_ms: int
    t0: float  # perf_counter at arrival
    principal: Principal | None = None
    request: ParsedRequest | None = None
    tags: tuple[str, ...] = ()
    deployment: Deployment | None = None
    attempts: int = 0
    upstream_s: float = 0.0  # time spent waiting on the upstream
    ttft_s: float | None = None
    ticket: Ticket | None = None  # the budget reservation, once made
    route_rule: str | None = None  # the steering rule that matched, and why
    route_reason: str | None = None
    asked_deployment: Deployment | None = None  # set when steering chose another model
    log_mode: str = "off"  # prompt logging for this request: off | metadata | full
    log_mode_rule: str | None = None  # a steering rule's `log` action
    response_text: str | None = None  # kept only when log_mode is full
    extra: dict[str, object] = field(default_factory=dict)
    flat_prompt: str | None = None  # `prompt()`'s result, kept: steering and settle both read it

    def prompt(self) -> str:
        """The request's whole prompt as text (flattened once, on first use)."""
        if self.flat_prompt is None:
            assert self.request is not None
            self.flat_prompt = prompt_text(self.api, self.request.body)
        return self.flat_prompt

    @property
    def budget_headers(self) -> dict[str, str]:
        return self.ticket.headers() if self.ticket is not None else {}


def settle(
    state: GatewayState,
    ctx: RequestContext,
    *,
    usage: Usage,
    status: int,
    estimated: bool = False,
    error_class: str | None = None,
    finish_reason: str | None = None,
) -> asyncio.Future[None]:
    """Record the request; the returned future resolves once the record is durable."""
    now = time.perf_counter()
    latency_s = now - ctx.t0
    req = ctx.request
    deployment = ctx.deployment
    served_model = deployment.upstream_model if deployment else ""
    provider = deployment.provider.name if deployment else ""
    list_pusd = actual_pusd = 0
    if deployment is not None and deployment.price is not None:
        priced = price_usage(usage, deployment.price, deployment.provider.discount_ppm)
        list_pusd, actual_pusd = priced.list_cost_pusd, priced.actual_cost_pusd
    principal = ctx.principal
    assert principal is not None
    ticket = ctx.ticket
    weight_milli = ticket.weight_milli if ticket is not None else 1000
    weighted_pusd = ticket.weighted(actual_pusd) if ticket is not None else actual_pusd
    gaming = 0.0
    prompt_sketch = 0
    if req is not None and status < 400:
        new_text = new_prompt_text(ctx.api, req.body)
        signals = measure(new_text, finish_reason=finish_reason, max_tokens=req.max_tokens)
        gaming = score(signals).score
        prompt_sketch = sketch(new_text)
    asked = ctx.asked_deployment
    requested_pusd = actual_pusd
    if asked is not None and asked.price is not None:
        requested_pusd = price_usage(
            usage, asked.price, asked.provider.discount_ppm
        ).actual_cost_pusd
    record = LedgerRecord(
        request_id=ctx.request_id,
        started_at_ms=ctx.started_at_ms,
        finished_at_ms=ctx.started_at_ms + int(latency_s * 1000),
        key_id=principal.key_id,
        user=principal.user,
        team=principal.team,
        org=principal.org,
        api=ctx.api.name,
        requested_model=req.model if req else "",
        served_model=served_model,
        provider=provider,
        deployment=deployment.id if deployment else "",
        tags=ctx.tags,
        input_tokens=usage.input_tokens,
        cached_input_tokens=usage.cached_input_tokens,
        cache_write_tokens=usage.cache_write_tokens,
        output_tokens=usage.output_tokens,
        reasoning_tokens=usage.reasoning_tokens,
        list_cost_pusd=list_pusd,
        actual_cost_pusd=actual_pusd,
        peak_weight=weight_milli / 1000,
        weighted_charge_pusd=weighted_pusd,
        status=status,
        error_class=error_class,
        latency_ms=round(latency_s * 1000, 3),
        ttft_ms=round(ctx.ttft_s * 1000, 3) if ctx.ttft_s is not None else None,
        stream=bool(req and req.stream),
        estimated=estimated,
        max_tokens=req.max_tokens if req else None,
        finish_reason=finish_reason,
        attempts=ctx.attempts,
        route_rule=ctx.route_rule,
        route_reason=ctx.route_reason,
        steered=asked is not None,
        requested_cost_pusd=requested_pusd,
        gaming_score=gaming,
        prompt_sketch=prompt_sketch,
        prompt_fingerprint=fingerprint(ctx.prompt()) if req else "",
        extra=ctx.extra,
    )
    state.metrics.observe(
        Observation(
            api=ctx.api.name,
            model=served_model or (req.model if req else ""),
            provider=provider,
            status=status,
            input_tokens=usage.input_tokens,
            cached_input_tokens=usage.cached_input_tokens,
            output_tokens=usage.output_tokens,
            reasoning_tokens=usage.reasoning_tokens,
            list_cost_usd=list_pusd / _PUSD_PER_USD,
            actual_cost_usd=actual_pusd / _PUSD_PER_USD,
            latency_s=latency_s,
            overhead_s=max(latency_s - ctx.upstream_s, 0.0),
            ttft_s=ctx.ttft_s,
        )
    )
    if deployment is not None:
        state.routes.health.finished(deployment.id)
    if state.prompts is not None and req is not None and ctx.log_mode != "off":
        state.prompts.record(
            PendingLog(
                ctx.request_id,
                ctx.started_at_ms,
                principal.org,
                principal.team,
                principal.user,
                served_model or req.model,
                ctx.log_mode,
                ctx.api,
                req.body,
                ctx.response_text,
            )
        )
    durable = state.ledger.append(record)
    if ticket is not None and ticket.plans:
        # Counters follow the ledger: the record is queued first, so a crash between
        # the two leaves the ledger right and the reservation to expire.
        state.in_background(
            asyncio.create_task(state.budgets.settle(ticket, usage, list_pusd, actual_pusd))
        )
        ctx.ticket = None
    return durable
