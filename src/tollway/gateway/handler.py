"""One API request, start to finish: auth → parse → route → forward → settle.

Raw ASGI, so the gateway controls exactly when each byte leaves: the last
bytes of every response are held until its ledger record is durable.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import time
from typing import Any

import aiohttp
import orjson

from tollway.errors import InvalidRequest, TollwayError, UpstreamStatus
from tollway.gateway import responses
from tollway.gateway.apis import (
    ApiSpec,
    ParsedRequest,
    estimate_prompt_tokens,
    parse_request,
)
from tollway.gateway.budgeting import reserve
from tollway.gateway.settle import RequestContext, settle
from tollway.gateway.sse import (
    AnthropicStreamMeter,
    OpenAIStreamMeter,
    SseSplitter,
    StreamMeter,
    anthropic_error_event,
    openai_error_event,
)
from tollway.gateway.state import GatewayState
from tollway.gateway.steer import gather_facts, steer
from tollway.gateway.upstream import UpstreamCall, call_upstream
from tollway.governance.detect import data_class as detect_data_class
from tollway.metering.tokens import count_tokens
from tollway.metering.usage import Usage
from tollway.routing.table import ModelRoute

Scope = dict[str, Any]
_TAG_RE = re.compile(r"^[A-Za-z0-9_.:/=-]{1,64}$")
_MAX_TAGS = 16


class ClientGone(Exception):
    """The client disconnected before the request was read."""


def new_request_id() -> str:
    return "req_" + os.urandom(12).hex()


def request_headers(scope: Scope) -> dict[str, str]:
    return {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}


async def read_body(receive: Any, limit: int, headers: dict[str, str]) -> bytes:
    """The whole request body; `BodyTooLarge` past `limit` bytes."""
    from tollway.errors import BodyTooLarge

    declared = headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge(limit)
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(limit)
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def parse_tags(
    headers: dict[str, str], key_tags: tuple[str, ...], reserved: frozenset[str] = frozenset()
) -> tuple[str, ...]:
    """Client tags from `x-tollway-tags` (comma-separated), after the key's own tags.

    `reserved` tags (those marking sanctioned automation) only come from keys: a client
    cannot exempt itself from gaming detection by sending one."""
    header = headers.get("x-tollway-tags")
    if not header:
        return key_tags
    tags = [t.strip() for t in header.split(",") if t.strip()]
    if len(tags) > _MAX_TAGS or not all(_TAG_RE.match(t) for t in tags):
        raise InvalidRequest(
            f"x-tollway-tags: at most {_MAX_TAGS} comma-separated tags of 1-64 characters "
            "from [A-Za-z0-9_.:/=-]"
        )
    taken = reserved.intersection(tags).difference(key_tags)
    if taken:
        raise InvalidRequest(
            f"x-tollway-tags: {', '.join(sorted(taken))} can only be set on a key by an admin"
        )
    return tuple(dict.fromkeys((*key_tags, *tags)))


class ApiEndpoint:
    """The ASGI handler for one metered API path."""

    def __init__(self, state: GatewayState, api: ApiSpec) -> None:
        self.state = state
        self.api = api

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        state, api = self.state, self.api
        ctx = RequestContext(api, new_request_id(), int(time.time() * 1000), time.perf_counter())
        headers = request_headers(scope)
        try:
            ctx.principal = await state.keys.authenticate(headers)
            raw = await read_body(receive, state.max_body_bytes, headers)
            try:
                body = orjson.loads(raw)
            except orjson.JSONDecodeError as exc:
                raise InvalidRequest(f"The request body is not valid JSON: {exc}") from None
            ctx.request = req = parse_request(api, body)
            ctx.tags = parse_tags(headers, ctx.principal.tags, state.reserved_tags)
            route = state.routes.resolve(req.model, api.dialect)
            if state.steering.rules and api.metered:
                route = self._steer(ctx, req, route)
            if state.prompts is not None and api.metered:
                p = ctx.principal
                ctx.log_mode = state.prompts.mode_for(p.org, p.team, ctx.log_mode_rule)
            deployments = state.routes.attempt_order(route, api.dialect)
            if api.metered:
                ctx.ticket = await reserve(
                    state.budgets,
                    ctx.principal,
                    ctx.tags,
                    req,
                    route,
                    deployments[0] if deployments else None,
                    ctx.request_id,
                    state.default_max_output_tokens,
                )
            call = await call_upstream(
                state.session,
                deployments,
                req,
                raw,
                headers,
                state.routes.health,
                state.routes.retry_budget(route),
            )
        except ClientGone:
            return
        except TollwayError as exc:
            await self._fail(ctx, exc, send)
            return
        ctx.deployment, ctx.attempts = call.deployment, call.attempts
        if req.stream:
            await self._relay_stream(ctx, req, call, send, receive)
        else:
            await self._relay_body(ctx, req, call, send)

    def _steer(self, ctx: RequestContext, req: ParsedRequest, route: ModelRoute) -> ModelRoute:
        state = self.state
        assert ctx.principal is not None
        needs = state.steering.needs
        input_tokens = estimate_prompt_tokens(req.api, req.body) if "input_tokens" in needs else 0
        data_class = detect_data_class(ctx.prompt()) if "data_class" in needs else "clean"
        facts = gather_facts(
            state.budgets,
            ctx.principal,
            ctx.tags,
            req,
            route,
            data_class=data_class,
            input_tokens=input_tokens,
        )
        steered = steer(state.steering, state.routes, facts, req, route)
        ctx.route_rule, ctx.route_reason = steered.decision.rule_id, steered.reason
        ctx.log_mode_rule = steered.decision.actions.log
        if steered.route is not route:
            asked = state.routes.attempt_order(route, req.api.dialect)
            ctx.asked_deployment = asked[0] if asked else None
        return steered.route

    async def _fail(self, ctx: RequestContext, exc: TollwayError, send: Any) -> None:
        ctx.attempts = getattr(exc, "attempts", ctx.attempts)
        headers = {**ctx.budget_headers, **exc.headers}
        if ctx.principal is not None and self.api.metered:
            await settle(
                self.state, ctx, usage=Usage(), status=exc.status, error_class=type(exc).__name__
            )
        if isinstance(exc, UpstreamStatus) and not exc.retryable and exc.upstream_body:
            # The upstream rejected the request itself: its error body is already in the
            # caller's dialect and says precisely what is wrong.
            await responses.send_json_bytes(
                send, exc.status, exc.upstream_body, ctx.request_id, headers
            )
            return
        await responses.send_error(send, exc, self.api.dialect, ctx.request_id, headers)

    async def _relay_body(
        self, ctx: RequestContext, req: ParsedRequest, call: UpstreamCall, send: Any
    ) -> None:
        payload = call.payload or b""
        ctx.upstream_s = time.perf_counter() - call.sent_at
        usage, estimated, finish, text = _usage_of_body(self.api, req, payload)
        if ctx.log_mode == "full":
            ctx.response_text = text
        budget_headers = ctx.budget_headers
        if self.api.metered:
            await settle(
                self.state, ctx, usage=usage, status=200, estimated=estimated, finish_reason=finish
            )
        content_type = call.response.headers.get("content-type", "application/json")
        await responses.send_bytes(send, 200, payload, content_type, ctx.request_id, budget_headers)

    async def _relay_stream(
        self,
        ctx: RequestContext,
        req: ParsedRequest,
        call: UpstreamCall,
        send: Any,
        receive: Any,
    ) -> None:
        meter: StreamMeter = (
            AnthropicStreamMeter()
            if self.api.dialect == "anthropic"
            else OpenAIStreamMeter(strip_usage=not req.wants_usage)
        )
        splitter = SseSplitter()
        relaying = True
        client_gone = False
        task = asyncio.current_task()
        assert task is not None

        def on_receive(done: asyncio.Future[Any]) -> None:
            nonlocal client_gone
            if done.cancelled() or done.exception() is not None:
                return
            if done.result().get("type") == "http.disconnect":
                client_gone = True
                if relaying:
                    task.cancel()

        watcher = asyncio.ensure_future(receive())
        watcher.add_done_callback(on_receive)
        error_class: str | None = None
        response = call.response
        try:
            await responses.send_stream_start(send, ctx.request_id, ctx.budget_headers)
            async for chunk in response.content.iter_any():
                out = [r for e in splitter.feed(chunk) if (r := meter.relay(e)) is not None]
                if out:
                    if ctx.ttft_s is None and meter.first_token_seen:
                        ctx.ttft_s = time.perf_counter() - ctx.t0
                    await send(
                        {"type": "http.response.body", "body": b"".join(out), "more_body": True}
                    )
            if not meter.complete:
                error_class = "UpstreamDropped"
        except asyncio.CancelledError:
            if not client_gone:
                raise
            task.uncancel()
            error_class = "ClientDisconnected"
        except TimeoutError:
            error_class = "UpstreamTimeout"
        except (aiohttp.ClientError, OSError):
            error_class = "UpstreamDropped"
        finally:
            relaying = False
            ctx.upstream_s = time.perf_counter() - call.sent_at
            if meter.complete:
                response.release()
            else:
                response.close()  # cancels the upstream generation
        if meter.upstream_error is not None and error_class is None:
            error_class = "UpstreamStreamError"
        usage, estimated = _usage_of_stream(self.api, req, meter)
        if ctx.log_mode == "full":
            ctx.response_text = "".join(meter.text_parts)
        status = 499 if client_gone else (200 if error_class is None else 502)
        await settle(
            self.state,
            ctx,
            usage=usage,
            status=status,
            estimated=estimated,
            error_class=error_class,
            finish_reason=meter.finish_reason,
        )
        if not watcher.done():
            watcher.cancel()
        if client_gone:
            return
        tail = meter.terminal
        if tail is None:
            message = f"The upstream stream ended early ({error_class})."
            tail = (
                anthropic_error_event(message, "api_error")
                if self.api.dialect == "anthropic"
                else openai_error_event(message, "upstream_error")
            )
        with contextlib.suppress(OSError):
            await send({"type": "http.response.body", "body": tail, "more_body": False})


def _usage_of_body(
    api: ApiSpec, req: ParsedRequest, payload: bytes
) -> tuple[Usage, bool, str | None, str]:
    """Usage, finish reason and text of a whole response; usage estimated if none was given."""
    try:
        body = orjson.loads(payload)
    except orjson.JSONDecodeError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    if api.dialect == "anthropic":
        text = "".join(b.get("text", "") for b in body.get("content") or () if isinstance(b, dict))
        finish = body.get("stop_reason")
        raw_usage = body.get("usage")
        usage = Usage.from_anthropic(raw_usage)
    else:
        choices = body.get("choices") or []
        first = choices[0] if choices and isinstance(choices[0], dict) else {}
        message = first.get("message") or {}
        text = (
            (message.get("content") if isinstance(message, dict) else None)
            or first.get("text")
            or ""
        )
        finish = first.get("finish_reason")
        raw_usage = body.get("usage")
        usage = Usage.from_openai(raw_usage)
    if raw_usage:
        return usage, False, finish, text
    estimate = Usage(estimate_prompt_tokens(api, req.body), output_tokens=count_tokens(text))
    return estimate, True, finish, text


def _usage_of_stream(api: ApiSpec, req: ParsedRequest, meter: StreamMeter) -> tuple[Usage, bool]:
    """Usage of a finished or broken stream: the upstream's own, or an estimate.

    The relayed text is tokenized only when the upstream's counts are missing."""
    if api.dialect == "anthropic":
        usage = meter.usage or Usage()
        if meter.finish_reason is not None:  # message_delta carried the final counts
            return usage, False
        if usage.input_tokens == 0:
            usage.input_tokens = estimate_prompt_tokens(api, req.body)
        generated = count_tokens("".join(meter.text_parts))
        usage.output_tokens = max(usage.output_tokens, generated)
        return usage, True
    if meter.usage is not None:
        return meter.usage, False
    generated = count_tokens("".join(meter.text_parts))
    return Usage(estimate_prompt_tokens(api, req.body), output_tokens=generated), True
