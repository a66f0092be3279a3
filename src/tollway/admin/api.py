"""The admin REST API under `/admin/v1/` (FastAPI, for its OpenAPI document).

Every route needs an admin key. Errors use the OpenAI error shape, like the
gateway's OpenAI endpoints, so one client library can read both.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException

from tollway.admin import budgets, impact, insights, outcomes, prompts, routing
from tollway.admin.auth import AdminPrincipal
from tollway.admin.params import time_param
from tollway.cli_support import parse_when
from tollway.errors import InvalidRequest, NotFound, TollwayError
from tollway.ledger import queries

if TYPE_CHECKING:
    from tollway.app import Runtime

PREFIX = "/admin/v1"


class KeyCreate(BaseModel):
    user: str = Field(min_length=1, max_length=128)
    team: str = Field(min_length=1, max_length=128)
    org: str = Field("demo", min_length=1, max_length=128)
    name: str | None = Field(None, max_length=200)
    role: str = Field("user", pattern="^(user|admin|org_admin|team_admin)$")
    expires_at: str | None = Field(
        None, description="ISO time or a duration from now (e.g. 30d); none = never"
    )
    tags: list[str] = Field(default_factory=list, max_length=16)


class KeyUpdate(BaseModel):
    expires_at: str | None = Field(
        description="ISO time or a duration from now (e.g. 30d); null removes the expiry"
    )


class KeyOut(BaseModel):
    key_id: str
    prefix: str
    name: str | None
    org: str
    team: str
    user: str
    role: str
    tags: list[str]
    created_at_ms: int
    expires_at_ms: int | None
    revoked_at_ms: int | None


class KeyCreated(KeyOut):
    key: str = Field(description="The secret; shown once, only its hash is stored")


def _key_out(info: Any) -> dict[str, Any]:
    return {
        "key_id": info.key_id,
        "prefix": info.prefix,
        "name": info.name,
        "org": info.org,
        "team": info.team,
        "user": info.user,
        "role": info.role,
        "tags": list(info.tags),
        "created_at_ms": info.created_at_ms,
        "expires_at_ms": info.expires_at_ms,
        "revoked_at_ms": info.revoked_at_ms,
    }


def _expiry(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return parse_when(value)
    except ValueError as exc:
        raise InvalidRequest(f"expires_at: {exc}", param="expires_at") from None


def create_admin_app(runtime: Runtime) -> FastAPI:
    """The admin API bound to a running gateway's `Runtime`."""
    app = FastAPI(
        title="Tollway admin API",
        version="1",
        openapi_url=f"{PREFIX}/openapi.json",
        docs_url=f"{PREFIX}/docs",
        redoc_url=None,
    )
    app.state.runtime = runtime
    app.include_router(budgets.router)
    app.include_router(insights.router)
    app.include_router(prompts.router)
    app.include_router(routing.router)
    app.include_router(outcomes.router)
    app.include_router(impact.router)
    engine = runtime.database.engine
    store = runtime.key_store

    @app.exception_handler(TollwayError)
    async def _tollway_error(_: Request, exc: TollwayError) -> JSONResponse:
        return JSONResponse(exc.openai_body(), status_code=exc.status, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
        where = ".".join(str(p) for p in first["loc"] if p != "body")
        message = str(first["msg"])
        err = InvalidRequest(f"{where}: {message}" if where else message, param=where or None)
        return JSONResponse(err.openai_body(), status_code=400)

    @app.exception_handler(HTTPException)
    async def _http_error(_: Request, exc: HTTPException) -> JSONResponse:
        err = (
            NotFound(str(exc.detail)) if exc.status_code == 404 else InvalidRequest(str(exc.detail))
        )
        err.status = exc.status_code
        return JSONResponse(err.openai_body(), status_code=exc.status_code)

    @app.get(f"{PREFIX}/keys", response_model=list[KeyOut], tags=["keys"])
    async def list_keys(
        _: AdminPrincipal,
        org: str | None = None,
        team: str | None = None,
        include_revoked: bool = False,
    ) -> list[dict[str, Any]]:
        """Keys, without their secrets."""
        infos = await asyncio.to_thread(
            store.list, org=org, team=team, include_revoked=include_revoked
        )
        return [_key_out(i) for i in infos]

    @app.post(f"{PREFIX}/keys", response_model=KeyCreated, status_code=201, tags=["keys"])
    async def create_key(_: AdminPrincipal, body: KeyCreate) -> dict[str, Any]:
        """Create a key; the response carries the secret, once."""
        expires = _expiry(body.expires_at)
        key, info = await asyncio.to_thread(
            store.create,
            body.user,
            body.team,
            body.org,
            name=body.name,
            role=body.role,
            expires_at_ms=expires,
            tags=tuple(body.tags),
        )
        return {**_key_out(info), "key": key}

    @app.patch(f"{PREFIX}/keys/{{key_id}}", response_model=KeyOut, tags=["keys"])
    async def update_key(_: AdminPrincipal, key_id: str, body: KeyUpdate) -> dict[str, Any]:
        """Set or remove a key's expiry."""
        expires = _expiry(body.expires_at)
        if not await asyncio.to_thread(store.set_expiry, key_id, expires):
            raise NotFound(f"No key with id '{key_id}'.")
        info = await asyncio.to_thread(store.get, key_id)
        return _key_out(info)

    @app.delete(f"{PREFIX}/keys/{{key_id}}", response_model=KeyOut, tags=["keys"])
    async def revoke_key(_: AdminPrincipal, key_id: str) -> dict[str, Any]:
        """Revoke a key; running gateways stop accepting it within a second."""
        if not await asyncio.to_thread(store.revoke, key_id):
            raise NotFound(f"No active key with id '{key_id}'.")
        return _key_out(await asyncio.to_thread(store.get, key_id))

    @app.get(f"{PREFIX}/usage", tags=["usage"])
    async def usage(
        _: AdminPrincipal,
        group_by: Annotated[
            str, Query(description="Comma-separated: org, team, user, model, provider")
        ] = "team",
        granularity: Annotated[str, Query(pattern="^(total|hour|day)$")] = "total",
        since: Annotated[str | None, Query(description="ISO time or duration back")] = None,
        until: Annotated[str | None, Query(description="ISO time or duration back")] = None,
        org: str | None = None,
        team: str | None = None,
        user: str | None = None,
        model: str | None = None,
        provider: str | None = None,
    ) -> dict[str, Any]:
        """Usage and cost grouped by org/team/user/model/provider, per hour/day or in total."""
        now = int(time.time() * 1000)
        since_ms = time_param(since, now - 7 * 86_400_000, "since", since=True)
        until_ms = time_param(until, now + 1, "until", since=False)
        groups = [g.strip() for g in group_by.split(",") if g.strip()]
        filters = {
            k: v
            for k, v in {
                "org": org,
                "team": team,
                "user": user,
                "model": model,
                "provider": provider,
            }.items()
            if v is not None
        }
        try:
            rows = await asyncio.to_thread(
                queries.usage,
                engine,
                group_by=groups,
                granularity=granularity,
                since_ms=since_ms,
                until_ms=until_ms,
                filters=filters,
            )
        except ValueError as exc:
            raise InvalidRequest(str(exc), param="group_by") from None
        for row in rows:
            row["saved_usd"] = (row["requested_cost_pusd"] - row["actual_cost_pusd"]) / 10**12
            row["steered_share"] = row["steered"] / row["requests"] if row["requests"] else 0.0
        return {
            "since_ms": since_ms,
            "until_ms": until_ms,
            "group_by": groups,
            "granularity": granularity,
            "rows": rows,
        }

    @app.get(f"{PREFIX}/requests/{{request_id}}", tags=["usage"])
    async def get_request(_: AdminPrincipal, request_id: str) -> dict[str, Any]:
        """One request's ledger record."""
        record = await asyncio.to_thread(queries.get_request, engine, request_id)
        if record is None:
            raise NotFound(f"No request with id '{request_id}'.")
        return record

    return app
