"""The client-facing APIs: their paths, dialects, and what the gateway reads from a body.

The gateway parses only what it needs (model, stream flag, max output tokens,
the prompt for estimation and fingerprints) and forwards the rest untouched.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from tollway.errors import InvalidRequest
from tollway.metering.tokens import count_tokens

# Per-message framing overhead, as the simulated provider counts it.
MESSAGE_OVERHEAD_TOKENS = 3
IMAGE_TOKENS = 85


@dataclass(frozen=True, slots=True)
class ApiSpec:
    """One client-facing endpoint."""

    name: str  # ledger value, e.g. "openai.chat"
    dialect: str  # "openai" | "anthropic"
    path: str  # e.g. "/v1/chat/completions"
    openai_suffix: str  # path below an OpenAI-style versioned base URL
    prompt_field: str  # the field holding the prompt
    can_stream: bool
    metered: bool = True


CHAT = ApiSpec(
    "openai.chat", "openai", "/v1/chat/completions", "/chat/completions", "messages", True
)
COMPLETIONS = ApiSpec(
    "openai.completions", "openai", "/v1/completions", "/completions", "prompt", True
)
EMBEDDINGS = ApiSpec("openai.embeddings", "openai", "/v1/embeddings", "/embeddings", "input", False)
MESSAGES = ApiSpec("anthropic.messages", "anthropic", "/v1/messages", "", "messages", True)
COUNT_TOKENS = ApiSpec(
    "anthropic.count_tokens", "anthropic", "/v1/messages/count_tokens", "", "messages", False, False
)

BY_PATH: dict[str, ApiSpec] = {
    a.path: a for a in (CHAT, COMPLETIONS, EMBEDDINGS, MESSAGES, COUNT_TOKENS)
}


@dataclass(slots=True)
class ParsedRequest:
    """What the gateway needs from a client body; `body` is the parsed JSON object."""

    api: ApiSpec
    body: dict[str, Any]
    model: str
    stream: bool
    max_tokens: int | None
    wants_usage: bool  # OpenAI streams: did the client ask for the usage chunk itself?
    modified: bool = False  # the gateway changed `body` (e.g. capped max tokens)


def parse_request(api: ApiSpec, body: Any) -> ParsedRequest:
    """Validate the fields the gateway relies on; raise `InvalidRequest` naming the field."""
    if not isinstance(body, dict):
        raise InvalidRequest("The request body must be a JSON object.")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise InvalidRequest("'model' is required and must be a non-empty string.", param="model")
    prompt = body.get(api.prompt_field)
    if prompt is None:
        raise InvalidRequest(f"'{api.prompt_field}' is required.", param=api.prompt_field)
    if api.prompt_field == "messages" and not isinstance(prompt, list):
        raise InvalidRequest("'messages' must be an array.", param="messages")
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise InvalidRequest("'stream' must be a boolean.", param="stream")
    if stream and not api.can_stream:
        raise InvalidRequest(f"Streaming is not supported on {api.path}.", param="stream")
    max_tokens = _max_tokens(api, body)
    wants_usage = False
    if stream and api.dialect == "openai":
        options = body.get("stream_options")
        if options is not None and not isinstance(options, dict):
            raise InvalidRequest("'stream_options' must be an object.", param="stream_options")
        wants_usage = bool((options or {}).get("include_usage"))
    return ParsedRequest(api, body, model, stream, max_tokens, wants_usage)


def _max_tokens(api: ApiSpec, body: dict[str, Any]) -> int | None:
    field = "max_tokens"
    value = body.get(field)
    if api is CHAT and body.get("max_completion_tokens") is not None:
        field, value = "max_completion_tokens", body["max_completion_tokens"]
    if value is None:
        if api is MESSAGES:
            raise InvalidRequest("'max_tokens' is required.", param="max_tokens")
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidRequest(f"'{field}' must be a positive integer.", param=field)
    return value


def prompt_text(api: ApiSpec, body: dict[str, Any]) -> str:
    """The prompt's text, flattened (system + messages, or the prompt/input strings)."""
    parts: list[str] = []
    if api.dialect == "anthropic":
        _collect_text(body.get("system"), parts)
    _collect_text(body.get(api.prompt_field), parts)
    return "\n".join(parts)


def new_prompt_text(api: ApiSpec, body: dict[str, Any]) -> str:
    """The part of the prompt this turn added: the last user message (or the whole prompt
    for completions and embeddings). Gaming signals look at this, not at re-sent history."""
    prompt = body.get(api.prompt_field)
    if api.prompt_field == "messages" and isinstance(prompt, list):
        for message in reversed(prompt):
            if isinstance(message, dict) and message.get("role") == "user":
                parts: list[str] = []
                _collect_text(message.get("content"), parts)
                return "\n".join(parts)
        return ""
    parts = []
    _collect_text(prompt, parts)
    return "\n".join(parts)


def estimate_prompt_tokens(api: ApiSpec, body: dict[str, Any]) -> int:
    """Input tokens as the simulated provider counts them; an estimate for real upstreams."""
    prompt = body.get(api.prompt_field)
    if api.prompt_field != "messages":
        parts: list[str] = []
        _collect_text(prompt, parts)
        return sum(count_tokens(p) for p in parts)
    total = 0
    if api.dialect == "anthropic" and body.get("system"):
        system: list[str] = []
        _collect_text(body["system"], system)
        total += sum(count_tokens(s) for s in system)
    for message in prompt or ():
        total += MESSAGE_OVERHEAD_TOKENS
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, str):
            total += count_tokens(content)
        elif isinstance(content, list):
            for part in content:
                if isinstance(part, dict) and part.get("type") in ("image", "image_url"):
                    total += IMAGE_TOKENS
                else:
                    texts: list[str] = []
                    _collect_text(part, texts)
                    total += sum(count_tokens(t) for t in texts)
    return total


def fingerprint(text: str) -> str:
    """A short, stable hash of the prompt text (the text itself is never stored)."""
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=8).hexdigest()


def _collect_text(value: Any, out: list[str]) -> None:
    if isinstance(value, str):
        out.append(value)
    elif isinstance(value, list):
        for item in value:
            _collect_text(item, out)
    elif isinstance(value, dict):
        if isinstance(value.get("text"), str):
            out.append(value["text"])
        elif "content" in value:
            _collect_text(value["content"], out)
