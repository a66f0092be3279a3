"""Writing ASGI responses: JSON bodies, SSE stream starts, errors in the caller's dialect."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from tollway.errors import TollwayError

_JSON = b"application/json"


def _headers(
    content_type: bytes, request_id: str, extra: Mapping[str, str] | None = None
) -> list[tuple[bytes, bytes]]:
    headers = [(b"content-type", content_type), (b"x-tollway-request-id", request_id.encode())]
    if extra:
        headers += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in extra.items()]
    return headers


async def send_bytes(
    send: Any,
    status: int,
    body: bytes,
    content_type: str | bytes,
    request_id: str,
    extra_headers: Mapping[str, str] | None = None,
) -> None:
    ctype = content_type.encode("latin-1") if isinstance(content_type, str) else content_type
    headers = _headers(ctype, request_id, extra_headers)
    headers.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})


async def send_json_bytes(
    send: Any,
    status: int,
    body: bytes,
    request_id: str,
    extra_headers: Mapping[str, str] | None = None,
) -> None:
    await send_bytes(send, status, body, _JSON, request_id, extra_headers)


async def send_json(send: Any, status: int, obj: Any, request_id: str = "") -> None:
    await send_bytes(send, status, orjson.dumps(obj), _JSON, request_id)


async def send_error(
    send: Any,
    exc: TollwayError,
    dialect: str,
    request_id: str,
    headers: Mapping[str, str] | None = None,
) -> None:
    """Render `exc` once, in the dialect the caller speaks."""
    body = exc.anthropic_body() if dialect == "anthropic" else exc.openai_body()
    await send_json_bytes(
        send,
        exc.status,
        orjson.dumps(body),
        request_id,
        exc.headers if headers is None else headers,
    )


async def send_stream_start(
    send: Any, request_id: str, extra_headers: Mapping[str, str] | None = None
) -> None:
    headers = _headers(b"text/event-stream; charset=utf-8", request_id, extra_headers)
    headers += [(b"cache-control", b"no-cache"), (b"x-accel-buffering", b"no")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
