"""What admin routes share: the running gateway's `Runtime`, and time query parameters."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import Request

from tollway.cli_support import parse_since, parse_when
from tollway.errors import InvalidRequest

if TYPE_CHECKING:
    from tollway.app import Runtime


def runtime_of(request: Request) -> Runtime:
    """The `Runtime` the admin app was created for."""
    runtime: Runtime = request.app.state.runtime
    return runtime


def time_param(value: str | None, default_ms: int, name: str, *, since: bool = True) -> int:
    """A query parameter as epoch ms (ISO time or a duration back); 400 naming it if bad."""
    if value is None:
        return default_ms
    try:
        return parse_since(value) if since else parse_when(value, future=False)
    except ValueError as exc:
        raise InvalidRequest(f"{name}: {exc}", param=name) from None
