"""The Anthropic Messages API: messages (plain and streamed), count_tokens and models."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from tollway.metering.tokens import count_tokens
from tollway.providers.simulated.cache import AnthropicCacheUsage, PromptCache
from tollway.providers.simulated.config import SimConfig
from tollway.providers.simulated.engine import (
    Generated,
    TextGenerator,
    generate,
    output_directive,
    plan_output,
)
from tollway.providers.simulated.prompts import Counter, Prompt, PromptError, anthropic_prompt
from tollway.providers.simulated.replies import (
    SSE_HEADERS,
    Reply,
    StreamEvent,
    StreamReply,
    generation_time,
    json_reply,
    random_id,
    token_schedule,
)

_STOP_REASONS = {"stop": "end_turn", "length": "max_tokens", "stop_sequence": "stop_sequence"}
_STATUS_ERRORS: dict[int, tuple[str, str]] = {
    400: ("invalid_request_error", "Invalid request."),
    401: ("authentication_error", "invalid x-api-key"),
    403: (
        "permission_error",
        "Your API key does not have permission to use the specified resource.",
    ),
    404: ("not_found_error", "The requested resource could not be found."),
    413: ("request_too_large", "Request exceeds the maximum allowed number of bytes."),
    429: (
        "rate_limit_error",
        "This request would exceed the rate limit for your organization. Please try again later.",
    ),
    500: ("api_error", "Internal server error"),
    529: ("overloaded_error", "Overloaded"),
}
_PING = b'event: ping\ndata: {"type": "ping"}\n\n'
_BLOCK_START = (
    b"event: content_block_start\ndata: "
    b'{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}\n\n'
)
_BLOCK_STOP = b'event: content_block_stop\ndata: {"type":"content_block_stop","index":0}\n\n'
_DELTA_PREFIX = (
    b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,'
    b'"delta":{"type":"text_delta","text":'
)
_MESSAGE_STOP = b'event: message_stop\ndata: {"type":"message_stop"}\n\n'


def _event(name: str, payload: dict[str, Any]) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(payload) + b"\n\n"


def _model_object(model: str) -> dict[str, Any]:
    return {
        "type": "model",
        "id": model,
        "display_name": model,
        "created_at": "2025-01-01T00:00:00Z",
    }


def _error_payload(type_: str, message: str) -> dict[str, Any]:
    return {"type": "error", "error": {"type": type_, "message": message}}


def _usage(input_tokens: int, cache: AnthropicCacheUsage, output_tokens: int) -> dict[str, Any]:
    """Anthropic usage: `input_tokens` excludes the cache reads and writes."""
    write_5m = cache.write if cache.write_ttl != "1h" else 0
    return {
        "input_tokens": input_tokens - cache.read - cache.write,
        "cache_creation_input_tokens": cache.write,
        "cache_read_input_tokens": cache.read,
        "cache_creation": {
            "ephemeral_5m_input_tokens": write_5m,
            "ephemeral_1h_input_tokens": cache.write - write_5m,
        },
        "output_tokens": output_tokens,
        "service_tier": "standard",
    }


class AnthropicApi:
    """The Anthropic dialect of the simulator (`x-api-key` credentials)."""

    name = "anthropic"

    def __init__(
        self,
        config: SimConfig,
        generator: TextGenerator,
        cache: PromptCache,
        count: Counter = count_tokens,
    ) -> None:
        self._config = config
        self._count = count
        self._generator = generator
        self._cache = cache
        self.routes = {
            ("POST", "/v1/messages"): self.messages,
            ("POST", "/v1/messages/count_tokens"): self.count_tokens,
            ("GET", "/v1/models"): self.list_models,
        }
        self.model_routes = frozenset(
            {("POST", "/v1/messages"), ("POST", "/v1/messages/count_tokens")}
        )

    # --- errors -----------------------------------------------------------------------

    def authorized(self, headers: Mapping[bytes, bytes]) -> bool:
        if headers.get(b"x-api-key"):
            return True
        auth = headers.get(b"authorization", b"")
        return auth[:7].lower() == b"bearer " and len(auth.strip()) > 7

    def error(self, status: int, type_: str, message: str) -> Reply:
        request_id = random_id("req_011", 11)
        payload = {**_error_payload(type_, message), "request_id": request_id}
        headers = [(b"request-id", request_id.encode())]
        if status == 429:
            headers.append((b"retry-after", b"1"))
        return json_reply(status, payload, headers)

    def unauthorized(self) -> Reply:
        return self.error(401, "authentication_error", "x-api-key header is required")

    def malformed_json(self) -> Reply:
        return self.error(
            400, "invalid_request_error", "There was an issue with your request body: invalid JSON"
        )

    def invalid(self, message: str, param: str | None = None) -> Reply:
        return self.error(400, "invalid_request_error", message)

    def missing(self, field: str) -> Reply:
        return self.invalid(f"{field}: Field required")

    def unknown_model(self, model: str) -> Reply:
        return self.error(404, "not_found_error", f"model: {model}")

    def not_found(self, what: str) -> Reply:
        return self.error(404, "not_found_error", "Not found")

    def _status_error_fields(self, status: int) -> tuple[str, str]:
        default = (
            ("api_error", "Internal server error")
            if status >= 500
            else (
                "invalid_request_error",
                f"Error {status}",
            )
        )
        return _STATUS_ERRORS.get(status, default)

    def status_error(self, status: int) -> Reply:
        return self.error(status, *self._status_error_fields(status))

    def stream_error(self, status: int) -> bytes:
        return _event("error", _error_payload(*self._status_error_fields(status)))

    # --- endpoints -----------------------------------------------------------------------

    def _prompt(self, body: dict[str, Any]) -> Prompt:
        return anthropic_prompt(
            body.get("system"), body.get("messages"), body.get("tools"), self._count
        )

    def count_tokens(self, body: dict[str, Any]) -> Reply:
        prompt = self._prompt(body)
        return json_reply(200, {"input_tokens": prompt.tokens})

    def messages(self, body: dict[str, Any]) -> Reply | StreamReply:
        model: str = body["model"]
        if "messages" not in body:
            raise PromptError("messages: Field required")
        max_tokens = body.get("max_tokens")
        if max_tokens is None:
            raise PromptError("max_tokens: Field required")
        if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1:
            raise PromptError("max_tokens: Input should be greater than or equal to 1")
        stops = body.get("stop_sequences") or ()
        if not isinstance(stops, list | tuple) or not all(isinstance(s, str) for s in stops):
            raise PromptError("stop_sequences: Input should be a valid list of strings")
        prompt = self._prompt(body)
        wanted = output_directive(prompt.last_user_text)
        if wanted is None:
            wanted = self._config.default_output_tokens
        plan = plan_output(wanted, max_tokens, self._config.is_reasoning(model))
        output = generate(self._generator, prompt.key, plan, stops)
        cache = self._cache.anthropic_usage(model, prompt)
        message_id = random_id("msg_01", 11)
        ttft, per_token = self._config.latency(model)
        stop_reason = _STOP_REASONS[output.finish]
        if body.get("stream") is True:
            return self._stream(model, message_id, prompt.tokens, cache, output, ttft, per_token)
        payload = {
            "id": message_id,
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [{"type": "text", "text": output.text}],
            "stop_reason": stop_reason,
            "stop_sequence": output.stop_sequence,
            "usage": _usage(prompt.tokens, cache, output.output_tokens),
        }
        delay = generation_time(ttft, per_token, output.output_tokens)
        reply = json_reply(200, payload, [(b"request-id", random_id("req_011", 11).encode())])
        reply.delay_s = delay
        reply.input_tokens, reply.output_tokens = prompt.tokens, output.output_tokens
        return reply

    def _stream(
        self,
        model: str,
        message_id: str,
        input_tokens: int,
        cache: AnthropicCacheUsage,
        output: Generated,
        ttft: float,
        per_token: float,
    ) -> StreamReply:
        """Anthropic's event sequence; `message_start` and the block open go out at once."""
        start_usage = _usage(input_tokens, cache, 1)
        message: dict[str, Any] = {
            "id": message_id,
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": start_usage,
        }
        events = [
            StreamEvent(
                0.0, _event("message_start", {"type": "message_start", "message": message})
            ),
            StreamEvent(0.0, _BLOCK_START),
            StreamEvent(0.0, _PING),
        ]
        pieces = output.pieces
        due = token_schedule(ttft, per_token, output.reasoning, max(len(pieces), 1))
        for i, piece in enumerate(pieces):
            tokens = 1 + (output.reasoning if i == 0 else 0)
            data = _DELTA_PREFIX + orjson.dumps(piece) + b"}}\n\n"
            events.append(StreamEvent(due[i], data, tokens))
        end = due[-1]
        delta = {
            "type": "message_delta",
            "delta": {
                "stop_reason": _STOP_REASONS[output.finish],
                "stop_sequence": output.stop_sequence,
            },
            "usage": {"output_tokens": output.output_tokens},
        }
        events.append(StreamEvent(end, _BLOCK_STOP))
        hidden_only = output.reasoning if not pieces else 0
        events.append(StreamEvent(end, _event("message_delta", delta), hidden_only))
        events.append(StreamEvent(end, _MESSAGE_STOP))
        headers = [*SSE_HEADERS, (b"request-id", random_id("req_011", 11).encode())]
        return StreamReply(events, headers, input_tokens)

    def list_models(self, body: dict[str, Any]) -> Reply:
        models = self._config.listed_models()
        data = [_model_object(m) for m in models]
        return json_reply(
            200,
            {
                "data": data,
                "has_more": False,
                "first_id": models[0] if models else None,
                "last_id": models[-1] if models else None,
            },
        )

    def get_model(self, model: str) -> Reply:
        return json_reply(200, _model_object(model))
