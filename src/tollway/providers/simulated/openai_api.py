"""The OpenAI API: chat completions, completions, embeddings and models, in the real shapes."""

from __future__ import annotations

import base64
import struct
import time
import zlib
from collections.abc import Callable, Mapping
from typing import Any

import orjson

from tollway.metering.tokens import count_tokens
from tollway.providers.simulated.cache import PromptCache
from tollway.providers.simulated.config import SimConfig
from tollway.providers.simulated.engine import (
    Generated,
    TextGenerator,
    embedding,
    generate,
    output_directive,
    plan_output,
)
from tollway.providers.simulated.prompts import (
    Counter,
    Prompt,
    PromptError,
    openai_chat_prompt,
    text_prompts,
)
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

_DONE = b"data: [DONE]\n\n"
_MODEL_CREATED = 1_700_000_000
_FINISH = {"stop": "stop", "stop_sequence": "stop", "length": "length"}
_STATUS_ERRORS: dict[int, tuple[str, str, str | None]] = {
    400: ("invalid_request_error", "Invalid request.", None),
    401: ("invalid_request_error", "Incorrect API key provided.", "invalid_api_key"),
    403: ("invalid_request_error", "You are not allowed to perform this request.", None),
    404: ("invalid_request_error", "The requested resource does not exist.", None),
    408: ("invalid_request_error", "Request timed out.", None),
    409: ("invalid_request_error", "The request conflicted with another request.", None),
    429: (
        "requests",
        "Rate limit reached for requests per min (RPM). Please try again in 1s.",
        "rate_limit_exceeded",
    ),
    500: (
        "server_error",
        "The server had an error while processing your request. Sorry about that!",
        None,
    ),
    502: ("server_error", "Bad gateway.", None),
    503: ("server_error", "The engine is currently overloaded, please try again later.", None),
    504: ("server_error", "Gateway timeout.", None),
}


def _model_object(model: str) -> dict[str, Any]:
    return {"id": model, "object": "model", "created": _MODEL_CREATED, "owned_by": "tollway-sim"}


def _error_payload(message: str, type_: str, param: str | None, code: str | None) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


def _optional_int(body: Mapping[str, Any], *names: str, minimum: int = 1) -> int | None:
    """The first of `names` present in `body`, validated as an integer ≥ `minimum`."""
    for name in names:
        value = body.get(name)
        if value is None:
            continue
        if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
            raise PromptError(
                f"Invalid '{name}': integer below minimum value. Expected a value >= {minimum}, "
                f"but got {value!r} instead.",
                name,
            )
        return value
    return None


def _stops(body: Mapping[str, Any]) -> tuple[str, ...]:
    stop = body.get("stop")
    if stop is None:
        return ()
    if isinstance(stop, str):
        return (stop,)
    if isinstance(stop, list) and len(stop) <= 4 and all(isinstance(s, str) for s in stop):
        return tuple(stop)
    raise PromptError("Invalid 'stop': expected a string or an array of up to 4 strings.", "stop")


def _include_usage(body: Mapping[str, Any]) -> bool:
    options = body.get("stream_options")
    return isinstance(options, dict) and options.get("include_usage") is True


class OpenAIApi:
    """The OpenAI dialect of the simulator (`Authorization: Bearer` credentials)."""

    name = "openai"

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
        self._fingerprint = f"fp_{zlib.crc32(str(config.seed).encode()):08x}00"
        self.routes = {
            ("POST", "/v1/chat/completions"): self.chat_completions,
            ("POST", "/v1/completions"): self.completions,
            ("POST", "/v1/embeddings"): self.embeddings,
            ("GET", "/v1/models"): self.list_models,
        }
        self.model_routes = frozenset(
            {
                ("POST", "/v1/chat/completions"),
                ("POST", "/v1/completions"),
                ("POST", "/v1/embeddings"),
            }
        )

    # --- errors -----------------------------------------------------------------------

    def authorized(self, headers: Mapping[bytes, bytes]) -> bool:
        auth = headers.get(b"authorization", b"")
        return auth[:7].lower() == b"bearer " and len(auth.strip()) > 7

    def error(
        self,
        status: int,
        message: str,
        type_: str,
        param: str | None = None,
        code: str | None = None,
    ) -> Reply:
        headers = [(b"retry-after", b"1")] if status == 429 else None
        request_id = random_id("req_", 16).encode()
        reply = json_reply(status, _error_payload(message, type_, param, code), headers)
        reply.headers.append((b"x-request-id", request_id))
        return reply

    def unauthorized(self) -> Reply:
        return self.error(
            401,
            "You didn't provide an API key. You need to provide your API key in an Authorization "
            "header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
            "invalid_request_error",
        )

    def malformed_json(self) -> Reply:
        return self.error(
            400,
            "We could not parse the JSON body of your request. (HINT: This likely means you aren't "
            "using your HTTP library correctly. The OpenAI API expects a JSON payload, but what "
            "was sent was not valid JSON.)",
            "invalid_request_error",
        )

    def invalid(self, message: str, param: str | None = None) -> Reply:
        code = "missing_required_parameter" if message.startswith("Missing") else None
        return self.error(400, message, "invalid_request_error", param, code)

    def missing(self, field: str) -> Reply:
        return self.invalid(f"Missing required parameter: '{field}'.", field)

    def unknown_model(self, model: str) -> Reply:
        return self.error(
            404,
            f"The model `{model}` does not exist or you do not have access to it.",
            "invalid_request_error",
            code="model_not_found",
        )

    def not_found(self, what: str) -> Reply:
        return self.error(404, f"Invalid URL ({what})", "invalid_request_error")

    def status_error(self, status: int) -> Reply:
        type_, message, code = _STATUS_ERRORS.get(
            status,
            (
                "server_error" if status >= 500 else "invalid_request_error",
                f"Error {status}.",
                None,
            ),
        )
        return self.error(status, message, type_, code=code)

    def stream_error(self, status: int) -> bytes:
        type_, message, code = _STATUS_ERRORS.get(
            status, ("server_error", f"Error {status}.", None)
        )
        return b"data: " + orjson.dumps(_error_payload(message, type_, None, code)) + b"\n\n"

    # --- shared pieces ----------------------------------------------------------------

    def _reasoning(self, model: str) -> bool:
        return self._config.is_reasoning(model)

    def _wanted(self, prompt: Prompt) -> int:
        wanted = output_directive(prompt.last_user_text)
        return self._config.default_output_tokens if wanted is None else wanted

    def _usage(self, prompt_tokens: int, outputs: list[Generated], cached: int) -> dict[str, Any]:
        completion = sum(g.output_tokens for g in outputs)
        return {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion,
            "total_tokens": prompt_tokens + completion,
            "prompt_tokens_details": {"cached_tokens": cached, "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": sum(g.reasoning for g in outputs),
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        }

    def _stream(
        self,
        model: str,
        outputs: list[Generated],
        usage: dict[str, Any] | None,
        head: dict[str, Any],
        delta_of: Callable[[str], dict[str, Any]],
        first_delta: dict[str, Any] | None,
        end_delta: dict[str, Any],
        input_tokens: int,
    ) -> StreamReply:
        """SSE events for `outputs`, one per token piece, paced by the model's latency.

        `head` is the chunk object without choices; `delta_of(piece)` renders a choice's
        content fields; `first_delta` (chat only) opens each choice with the role.
        """
        ttft, per_token = self._config.latency(model)
        with_usage = usage is not None
        prefix = orjson.dumps(head)[:-1] + b',"choices":['
        suffix = b'],"usage":null}\n\n' if with_usage else b"]}\n\n"

        def chunk(index: int, fields: dict[str, Any], finish: str | None) -> bytes:
            choice = {"index": index, **fields, "logprobs": None, "finish_reason": finish}
            return b"data: " + prefix + orjson.dumps(choice) + suffix

        events: list[StreamEvent] = []
        hidden = max((g.reasoning for g in outputs), default=0)
        longest = max((len(g.pieces) for g in outputs), default=0)
        due = token_schedule(ttft, per_token, hidden, max(longest, 1))
        if first_delta is not None:
            events.extend(
                StreamEvent(due[0], chunk(i, first_delta, None)) for i in range(len(outputs))
            )
        for step in range(longest):
            for i, generated in enumerate(outputs):
                if step < len(generated.pieces):
                    tokens = 1 + (generated.reasoning if step == 0 else 0)
                    data = chunk(i, delta_of(generated.pieces[step]), None)
                    events.append(StreamEvent(due[step], data, tokens))
        end = due[max(longest - 1, 0)]
        for i, generated in enumerate(outputs):
            tokens = generated.reasoning if not generated.pieces else 0
            events.append(StreamEvent(end, chunk(i, end_delta, _FINISH[generated.finish]), tokens))
        if with_usage:
            body = orjson.dumps({**head, "choices": [], "usage": usage})
            events.append(StreamEvent(end, b"data: " + body + b"\n\n"))
        events.append(StreamEvent(end, _DONE))
        headers = [*SSE_HEADERS, (b"x-request-id", random_id("req_", 16).encode())]
        return StreamReply(events, headers, input_tokens)

    # --- endpoints --------------------------------------------------------------------

    def chat_completions(self, body: dict[str, Any]) -> Reply | StreamReply:
        model: str = body["model"]
        prompt = openai_chat_prompt(body.get("messages"), body.get("tools"), self._count)
        limit = _optional_int(body, "max_completion_tokens", "max_tokens")
        n = _optional_int(body, "n") or 1
        if n > 128:
            raise PromptError("Invalid 'n': expected a value <= 128.", "n")
        plan = plan_output(self._wanted(prompt), limit, self._reasoning(model))
        stops = _stops(body)
        key = prompt.key
        outputs = [generate(self._generator, key + i, plan, stops) for i in range(n)]
        cached = self._cache.openai_cached_tokens(model, prompt)
        usage = self._usage(prompt.tokens, outputs, cached)
        head = {
            "id": random_id("chatcmpl-"),
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
        }
        if body.get("stream") is True:
            head["object"] = "chat.completion.chunk"
            head["system_fingerprint"] = self._fingerprint
            return self._stream(
                model,
                outputs,
                usage if _include_usage(body) else None,
                head,
                lambda piece: {"delta": {"content": piece}},
                {"delta": {"role": "assistant", "content": "", "refusal": None}},
                {"delta": {}},
                prompt.tokens,
            )
        choices: list[dict[str, Any]] = [
            {
                "index": i,
                "message": {
                    "role": "assistant",
                    "content": g.text,
                    "refusal": None,
                    "annotations": [],
                },
                "logprobs": None,
                "finish_reason": _FINISH[g.finish],
            }
            for i, g in enumerate(outputs)
        ]
        payload = {
            **head,
            "choices": choices,
            "usage": usage,
            "service_tier": "default",
            "system_fingerprint": self._fingerprint,
        }
        return self._whole(model, payload, prompt.tokens, usage["completion_tokens"], outputs)

    def completions(self, body: dict[str, Any]) -> Reply | StreamReply:
        model: str = body["model"]
        if "prompt" not in body:
            raise PromptError("Missing required parameter: 'prompt'.", "prompt")
        prompts = text_prompts(body["prompt"], "prompt", self._count)
        limit = _optional_int(body, "max_tokens")
        n = _optional_int(body, "n") or 1
        reasoning = self._reasoning(model)
        stops = _stops(body)
        outputs = [
            generate(
                self._generator, p.key + i, plan_output(self._wanted(p), limit, reasoning), stops
            )
            for p in prompts
            for i in range(n)
        ]
        prompt_tokens = sum(p.tokens for p in prompts)
        completion = sum(g.output_tokens for g in outputs)
        usage = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion,
            "total_tokens": prompt_tokens + completion,
        }
        head = {
            "id": random_id("cmpl-"),
            "object": "text_completion",
            "created": int(time.time()),
            "model": model,
            "system_fingerprint": self._fingerprint,
        }
        if body.get("stream") is True:
            return self._stream(
                model,
                outputs,
                usage if _include_usage(body) else None,
                head,
                lambda piece: {"text": piece},
                None,
                {"text": ""},
                prompt_tokens,
            )
        choices = [
            {"text": g.text, "index": i, "logprobs": None, "finish_reason": _FINISH[g.finish]}
            for i, g in enumerate(outputs)
        ]
        payload = {**head, "choices": choices, "usage": usage}
        return self._whole(model, payload, prompt_tokens, completion, outputs)

    def _whole(
        self,
        model: str,
        payload: dict[str, Any],
        input_tokens: int,
        output_tokens: int,
        outputs: list[Generated],
    ) -> Reply:
        ttft, per_token = self._config.latency(model)
        longest = max((g.output_tokens for g in outputs), default=0)
        delay = generation_time(ttft, per_token, longest)
        reply = json_reply(200, payload, delay_s=delay)
        reply.input_tokens, reply.output_tokens = input_tokens, output_tokens
        reply.headers.append((b"openai-processing-ms", str(int(delay * 1000)).encode()))
        reply.headers.append((b"x-request-id", random_id("req_", 16).encode()))
        return reply

    def embeddings(self, body: dict[str, Any]) -> Reply:
        model: str = body["model"]
        if "input" not in body:
            raise PromptError("Missing required parameter: 'input'.", "input")
        prompts = text_prompts(body["input"], "input", self._count)
        dims = _optional_int(body, "dimensions") or self._config.embedding_dims
        encoding = body.get("encoding_format") or "float"
        if encoding not in ("float", "base64"):
            raise PromptError(
                f"Invalid value: '{encoding}'. Supported values are: 'float' and 'base64'.",
                "encoding_format",
            )
        data = []
        for i, prompt in enumerate(prompts):
            key = zlib.crc32(prompt.last_user_text.encode("utf-8", "replace")) ^ self._config.seed
            vector = embedding(key, dims)
            value: Any = vector
            if encoding == "base64":
                value = base64.b64encode(struct.pack(f"<{dims}f", *vector)).decode()
            data.append({"object": "embedding", "index": i, "embedding": value})
        tokens = sum(p.tokens for p in prompts)
        payload = {
            "object": "list",
            "data": data,
            "model": model,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }
        ttft, _ = self._config.latency(model)
        reply = json_reply(200, payload, delay_s=ttft)
        reply.input_tokens = tokens
        return reply

    def list_models(self, body: dict[str, Any]) -> Reply:
        data = [_model_object(m) for m in self._config.listed_models()]
        return json_reply(200, {"object": "list", "data": data})

    def get_model(self, model: str) -> Reply:
        return json_reply(200, _model_object(model))
