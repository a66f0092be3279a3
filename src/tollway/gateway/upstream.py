"""Calling the upstream: one attempt per deployment, falling back on retryable failures.

Fallback happens only before the client has received a byte: on connect
errors, timeouts, 429 and 5xx. A non-streamed response is read whole inside
the attempt, so an upstream that drops mid-body is retried too.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass

import aiohttp
import orjson

from tollway.errors import UpstreamConnect, UpstreamError, UpstreamStatus, UpstreamTimeout
from tollway.gateway.apis import ParsedRequest
from tollway.routing.health import DeploymentHealth, RetryBudget
from tollway.routing.table import Deployment

_ERROR_BODY_LIMIT = 64 * 1024


@dataclass(slots=True)
class UpstreamCall:
    """A successful upstream response: streaming (`response`) or read whole (`payload`)."""

    deployment: Deployment
    response: aiohttp.ClientResponse
    payload: bytes | None
    attempts: int
    sent_at: float  # perf_counter when the winning attempt was sent
    headers_at: float  # perf_counter when its status line arrived


def upstream_body(req: ParsedRequest, deployment: Deployment, raw: bytes) -> bytes:
    """The body to send: the client's bytes unless the model or stream options must change."""
    inject_usage = req.stream and req.api.dialect == "openai" and not req.wants_usage
    if deployment.upstream_model == req.model and not inject_usage and not req.modified:
        return raw
    body = dict(req.body)
    body["model"] = deployment.upstream_model
    if inject_usage:
        body["stream_options"] = {**(body.get("stream_options") or {}), "include_usage": True}
    return orjson.dumps(body)


async def call_upstream(
    session: aiohttp.ClientSession,
    deployments: list[Deployment],
    req: ParsedRequest,
    raw: bytes,
    client_headers: Mapping[str, str],
    health: DeploymentHealth,
    retries: RetryBudget,
) -> UpstreamCall:
    """Try `deployments` in order; return the first success or raise the last failure.

    Retryable failures count against the deployment's health; fallback attempts
    spend the model's retry budget. The winner stays counted as in flight until
    the request settles.
    """
    last: UpstreamError | None = None
    retries.deposit()
    for attempt, deployment in enumerate(deployments, start=1):
        if attempt > 1 and not retries.try_spend():
            assert last is not None
            last.message += " (no fallback: the model's retry budget is spent)"
            break
        provider = deployment.provider
        health.started(deployment.id)
        timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=provider.connect_timeout_s, sock_read=provider.timeout_s
        )
        sent_at = time.perf_counter()
        response: aiohttp.ClientResponse | None = None
        try:
            response = await session.post(
                provider.upstream_url(req.api),
                data=upstream_body(req, deployment, raw),
                headers=provider.upstream_headers(req.api, client_headers),
                timeout=timeout,
            )
            headers_at = time.perf_counter()
            if response.status >= 400:
                raise await _status_error(response, provider.name)
            payload = None if req.stream else await response.read()
            health.succeeded(deployment.id)
            return UpstreamCall(deployment, response, payload, attempt, sent_at, headers_at)
        except UpstreamError as exc:
            last = exc
        except TimeoutError:
            last = UpstreamTimeout(
                f"Upstream provider '{provider.name}' did not answer "
                f"within {provider.timeout_s:g}s."
            )
        except (aiohttp.ClientError, OSError) as exc:
            last = UpstreamConnect(
                f"Upstream provider '{provider.name}' failed: {type(exc).__name__}: {exc}"
            )
        if response is not None:
            response.close()
        health.finished(deployment.id)
        last.attempts = attempt
        if not last.retryable:
            break
        health.failed(deployment.id)
    if last is None:
        raise UpstreamConnect("No deployment of this model can serve this API.")
    raise last


async def _status_error(response: aiohttp.ClientResponse, provider: str) -> UpstreamStatus:
    try:
        body = await asyncio.wait_for(response.content.read(_ERROR_BODY_LIMIT), timeout=5)
    except (TimeoutError, aiohttp.ClientError):
        body = b""
    message = _error_message(body) or response.reason or "error"
    return UpstreamStatus(
        response.status,
        f"Upstream provider '{provider}' returned {response.status}: {message}",
        body,
    )


def _error_message(body: bytes) -> str | None:
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        return body[:200].decode("utf-8", "replace") or None
    error = parsed.get("error") if isinstance(parsed, dict) else None
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        return error["message"]
    return None
