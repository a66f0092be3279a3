"""Admin-API authentication: every route needs an admin key."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Request

from tollway.errors import PermissionDenied
from tollway.gateway.auth import Principal

if TYPE_CHECKING:
    from tollway.app import Runtime


async def require_admin(request: Request) -> Principal:
    """The caller's principal, which must hold an admin key."""
    runtime: Runtime = request.app.state.runtime
    principal = await runtime.gateway.keys.authenticate(dict(request.headers.items()))
    if not principal.is_admin:
        raise PermissionDenied("This endpoint needs an admin key.")
    return principal


AdminPrincipal = Annotated[Principal, Depends(require_admin)]
