"""Admin routes for outcomes: ingest and list them, and the GitHub webhook receiver.

The webhook is the one admin route without an admin key: GitHub authenticates each
delivery with an HMAC signature under a shared secret instead.
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, Request
from fastapi.responses import JSONResponse

from tollway.admin.auth import AdminPrincipal
from tollway.admin.params import runtime_of, time_param
from tollway.errors import AuthError, BodyTooLarge, InvalidRequest, ServiceUnavailable
from tollway.insights import github
from tollway.insights.outcome_events import KINDS, ingest, list_outcomes, parse_events

router = APIRouter(prefix="/admin/v1", tags=["outcomes"])
WEBHOOK_MAX_BYTES = 25 * 1024 * 1024  # GitHub caps payloads at 25 MB
_EXAMPLE = {
    "id": "github:acme/api#1042",
    "kind": "pr_merged",
    "actors": ["ada", "grace"],
    "team": "payments",
    "org": "acme",
    "size": 120,
    "occurred_at": "2026-03-02T14:05:00Z",
    "url": "https://github.com/acme/api/pull/1042",
}


class BadSignature(AuthError):
    code = "invalid_signature"


def _now_ms() -> int:
    return int(time.time() * 1000)


def period(since: str | None, until: str | None, default_days: int = 30) -> tuple[int, int]:
    """`[since, until)` in epoch ms from query parameters; 400 naming a bad one."""
    now = _now_ms()
    since_ms = time_param(since or None, now - default_days * 86_400_000, "since")
    until_ms = time_param(until or None, now + 1, "until", since=False)
    if until_ms <= since_ms:
        raise InvalidRequest("until: must be after since", param="until")
    return since_ms, until_ms


@router.post("/outcomes")
async def post_outcomes(
    _: AdminPrincipal,
    request: Request,
    body: Annotated[
        Any,
        Body(
            description='One outcome event, or {"events": [...]} with up to 1000',
            openapi_examples={
                "one": {"value": _EXAMPLE},
                "batch": {"value": {"events": [_EXAMPLE]}},
            },
        ),
    ],
) -> dict[str, Any]:
    """Record outcomes; idempotent on `id`. A revert or incident voids its `refs`."""
    runtime = runtime_of(request)
    now = _now_ms()
    events = parse_events(body, now_ms=now)
    result = await asyncio.to_thread(
        ingest,
        runtime.database.engine,
        events,
        now_ms=now,
        quality_window_days=runtime.settings.insights.impact.quality_window_days,
    )
    return {"accepted": result.accepted, "duplicates": result.duplicates, "ids": result.ids}


@router.get("/outcomes")
async def get_outcomes(
    _: AdminPrincipal,
    request: Request,
    since: Annotated[str | None, Query(description="ISO time or duration back")] = "30d",
    until: Annotated[str | None, Query(description="ISO time or duration back")] = None,
    org: str | None = None,
    team: str | None = None,
    kind: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    """Outcomes that occurred in the period, newest first."""
    since_ms, until_ms = period(since, until)
    if kind is not None and kind not in KINDS:
        raise InvalidRequest(f"kind: use one of {', '.join(KINDS)}", param="kind")
    rows = await asyncio.to_thread(
        list_outcomes,
        runtime_of(request).database.engine,
        since_ms=since_ms,
        until_ms=until_ms,
        org=org,
        team=team,
        kind=kind,
        limit=limit,
    )
    return {"since_ms": since_ms, "until_ms": until_ms, "outcomes": rows}


@router.post("/webhooks/github", response_model=None)
async def github_webhook(request: Request) -> dict[str, Any] | JSONResponse:
    """GitHub deliveries (signed with the shared secret): merged PRs become outcomes."""
    runtime = runtime_of(request)
    config = runtime.settings.insights.github
    secret = os.environ.get(config.secret_env)
    if not secret:
        raise ServiceUnavailable(
            f"The GitHub receiver is not configured: set the {config.secret_env} environment "
            "variable to the webhook's secret."
        )
    body = await _read_capped(request, WEBHOOK_MAX_BYTES)
    if not github.signature_ok(secret, body, request.headers.get("x-hub-signature-256")):
        raise BadSignature("Missing or invalid X-Hub-Signature-256.")
    event = request.headers.get("x-github-event", "")
    if event == "ping":
        return {"ok": True}
    engine = runtime.database.engine
    delivery = request.headers.get("x-github-delivery") or None
    if delivery is not None and await asyncio.to_thread(github.seen, engine, delivery):
        return {"duplicate": True}
    try:
        payload = github.decode_payload(body, request.headers.get("content-type", ""))
        found = await asyncio.to_thread(
            github.to_outcome, event, payload, config, github.team_lookup(engine, config.org)
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise InvalidRequest(f"Malformed {event or 'GitHub'} payload: {exc!r}") from None
    if isinstance(found, github.Ignored):
        return JSONResponse({"ignored": found.reason}, status_code=202)
    result = await asyncio.to_thread(
        github.store,
        engine,
        found,
        delivery,
        now_ms=_now_ms(),
        quality_window_days=runtime.settings.insights.impact.quality_window_days,
    )
    if result is None:
        return {"duplicate": True}
    return {
        "accepted": result.accepted,
        "duplicates": result.duplicates,
        "ids": result.ids,
        "outcome": {
            "id": found.outcome_id,
            "kind": found.kind,
            "team": found.team,
            "actors": list(found.actors),
            "unmapped": found.extra.get("unmapped", []),
        },
    }


async def _read_capped(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge(limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(limit)
        chunks.append(chunk)
    return b"".join(chunks)
