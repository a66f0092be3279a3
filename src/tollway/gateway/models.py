"""`GET /v1/models`, shaped for whichever SDK asks (OpenAI's or Anthropic's)."""

from __future__ import annotations

from typing import Any

from tollway.gateway import responses
from tollway.routing.table import RouteTable

_CREATED = 1_767_225_600  # 2026-01-01: a fixed date, models here have no upstream creation time


class ModelsEndpoint:
    """Lists every public model name and alias the gateway routes."""

    def __init__(self, routes: RouteTable) -> None:
        names = sorted({name for route in routes.public_models() for name in route.names})
        self._openai = {
            "object": "list",
            "data": [
                {"id": n, "object": "model", "created": _CREATED, "owned_by": "tollway"}
                for n in names
            ],
        }
        data = [
            {
                "type": "model",
                "id": n,
                "display_name": n,
                "created_at": "2026-01-01T00:00:00Z",
            }
            for n in names
        ]
        self._anthropic = {
            "data": data,
            "has_more": False,
            "first_id": names[0] if names else None,
            "last_id": names[-1] if names else None,
        }

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        anthropic = any(k == b"anthropic-version" for k, _ in scope["headers"])
        await responses.send_json(send, 200, self._anthropic if anthropic else self._openai)
