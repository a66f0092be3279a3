"""What an API handler returns: a whole JSON reply or a timed list of SSE events.

Handlers stay pure (request in, reply out); the app owns the wire: latency, faults,
client disconnects and stats are applied in one place for both APIs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import NamedTuple

import orjson

Headers = list[tuple[bytes, bytes]]

JSON_TYPE = (b"content-type", b"application/json")
SSE_HEADERS: Headers = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
]


def random_id(prefix: str, n_bytes: int = 12) -> str:
    """A random identifier in the style of the real APIs (`chatcmpl-…`, `msg_…`)."""
    return prefix + os.urandom(n_bytes).hex()


class StreamEvent(NamedTuple):
    """One SSE event: when it is due (seconds after the request), its bytes, its output tokens."""

    due_s: float
    data: bytes
    tokens: int = 0


@dataclass(slots=True)
class Reply:
    """A complete response, sent after `delay_s` (the simulated generation time)."""

    status: int
    body: bytes
    headers: Headers = field(default_factory=list)
    delay_s: float = 0.0
    input_tokens: int = 0
    output_tokens: int = 0


@dataclass(slots=True)
class StreamReply:
    """A 200 `text/event-stream` response whose events are paced by their `due_s`."""

    events: list[StreamEvent]
    headers: Headers
    input_tokens: int = 0
    status: int = 200


def json_reply(
    status: int, payload: object, headers: Headers | None = None, delay_s: float = 0.0
) -> Reply:
    """A JSON `Reply`; `headers` come after the content type."""
    return Reply(status, orjson.dumps(payload), [JSON_TYPE, *(headers or ())], delay_s)


def token_schedule(ttft_s: float, per_token_s: float, hidden: int, visible: int) -> list[float]:
    """Due times of the visible tokens: hidden (reasoning) tokens are generated first."""
    first = ttft_s + hidden * per_token_s
    return [first + i * per_token_s for i in range(visible)]


def generation_time(ttft_s: float, per_token_s: float, output_tokens: int) -> float:
    """How long a whole (non-streamed) answer of `output_tokens` takes to generate."""
    return ttft_s + max(output_tokens - 1, 0) * per_token_s
