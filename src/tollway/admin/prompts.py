"""Reading logged prompts: only admins of the prompt's org or team, and every read audited."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Depends, Request

from tollway.admin.auth import AdminPrincipal
from tollway.errors import NotFound, PermissionDenied
from tollway.gateway.auth import Principal

if TYPE_CHECKING:
    from tollway.app import Runtime

router = APIRouter(prefix="/admin/v1", tags=["prompt logs"])
_READER_ROLES = ("admin", "org_admin", "team_admin")


async def prompt_reader(request: Request) -> Principal:
    """Any key that may read some prompt logs: admin, org admin or team admin."""
    runtime: Runtime = request.app.state.runtime
    principal = await runtime.gateway.keys.authenticate(dict(request.headers.items()))
    if principal.role not in _READER_ROLES:
        raise PermissionDenied("Reading prompt logs needs an admin, org_admin or team_admin key.")
    return principal


def may_read(principal: Principal, entry: dict[str, Any]) -> bool:
    """Admins read everything; org admins their org's logs; team admins their team's."""
    if principal.role == "admin":
        return True
    if principal.org != entry["org"]:
        return False
    return principal.role == "org_admin" or principal.team == entry["team"]


@router.get("/prompts/{request_id}")
async def read_prompt(
    request: Request,
    request_id: str,
    reader: Annotated[Principal, Depends(prompt_reader)],
) -> dict[str, Any]:
    """One request's prompt log (redacted text in `full` mode). The read is audited."""
    runtime: Runtime = request.app.state.runtime
    store = runtime.prompt_logs
    entry = await asyncio.to_thread(store.get, request_id)
    granted = entry is not None and may_read(reader, entry)
    await asyncio.to_thread(store.record_read, request_id, reader.key_id, reader.role, granted)
    if entry is None:
        raise NotFound(f"No prompt log for request '{request_id}' (never logged, or purged).")
    if not granted:
        raise PermissionDenied("This prompt belongs to another org or team.")
    return entry


@router.get("/prompts/{request_id}/reads")
async def prompt_reads(
    _: AdminPrincipal, request: Request, request_id: str
) -> list[dict[str, Any]]:
    """Who read (or tried to read) a logged prompt, newest first."""
    runtime: Runtime = request.app.state.runtime
    return await asyncio.to_thread(runtime.prompt_logs.reads, request_id)
