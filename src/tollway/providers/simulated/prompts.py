"""Read a request's prompt: validate its shape, count its tokens, cut it into cacheable segments.

Token rules (exactly what the gateway can recompute with `tollway.metering.tokens`):
each message costs `count_tokens(text) + 3`, each image 85; an Anthropic `system` costs
`count_tokens(system)`; tools cost `count_tokens` of their JSON (the real APIs bill tool
definitions too); a completions or embeddings prompt costs `count_tokens(prompt)` (or its
length when it is already a token array).
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any

import orjson

from tollway.metering.tokens import count_tokens

Counter = Callable[[str], int]

MESSAGE_OVERHEAD = 3
IMAGE_TOKENS = 85
MAX_CACHE_BREAKPOINTS = 4
OPENAI_ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})


class PromptError(ValueError):
    """The prompt is malformed; rendered as a 400 `invalid_request_error`."""

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param


@dataclass(slots=True)
class Segment:
    """A cacheable unit of a prompt (a message, a content block, a tool definition)."""

    tokens: int
    ident: Hashable  # identifies the content (role included) for the prompt cache
    cache_ttl: str | None = None  # an Anthropic `cache_control` breakpoint ("5m" / "1h")


@dataclass(slots=True)
class Prompt:
    """A counted prompt: total tokens, its segments in order, and the text that seeds output."""

    tokens: int
    segments: list[Segment]
    last_user_text: str

    @property
    def key(self) -> int:
        """A stable hash of the prompt that seeds the generated text."""
        return zlib.crc32(self.last_user_text.encode("utf-8", "replace")) ^ self.tokens


def _json(value: Any) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


def _json_text(value: Any) -> str:
    return _json(value).decode()


def _without_cache_control(block: Any) -> Any:
    if isinstance(block, dict) and "cache_control" in block:
        return {k: v for k, v in block.items() if k != "cache_control"}
    return block


def _openai_content(content: Any, param: str) -> tuple[str, int]:
    """(text, extra tokens for non-text parts) of an OpenAI message `content`."""
    if isinstance(content, str):
        return content, 0
    if content is None:
        return "", 0
    if not isinstance(content, list):
        raise PromptError(f"Invalid type for '{param}': expected a string or an array.", param)
    texts: list[str] = []
    extra = 0
    for part in content:
        if not isinstance(part, dict):
            raise PromptError(f"Invalid content part in '{param}'.", param)
        kind = part.get("type")
        if kind == "text" or kind == "refusal":
            value = part.get(kind) if kind == "refusal" else part.get("text")
            texts.append(value if isinstance(value, str) else "")
        elif kind in ("image_url", "input_audio", "file"):
            extra += IMAGE_TOKENS
    return "".join(texts), extra


def openai_chat_prompt(messages: Any, tools: Any = None, count: Counter = count_tokens) -> Prompt:
    """Count an OpenAI chat `messages` array (and `tools`), one segment per message."""
    if not isinstance(messages, list) or not messages:
        raise PromptError(
            "Invalid 'messages': empty array. Expected an array with minimum length 1.",
            "messages",
        )
    segments: list[Segment] = []
    total = 0
    if tools:
        identity = _json(tools)
        tokens = count(identity.decode())
        segments.append(Segment(tokens, identity))
        total += tokens
    last_user = ""
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            raise PromptError(f"Invalid type for 'messages[{i}]': expected an object.", "messages")
        role = message.get("role")
        if role not in OPENAI_ROLES:
            raise PromptError(
                f"Invalid value: '{role}'. Supported values are: 'system', 'assistant', 'user', "
                "'function', 'tool', and 'developer'.",
                f"messages[{i}].role",
            )
        text, extra = _openai_content(message.get("content"), f"messages[{i}].content")
        tokens = count(text) + MESSAGE_OVERHEAD + extra
        for call in message.get("tool_calls") or ():
            function = call.get("function") if isinstance(call, dict) else None
            if isinstance(function, dict):
                tokens += count(str(function.get("name", "")))
                tokens += count(str(function.get("arguments", "")))
        if role == "user":
            last_user = text
        plain = len(message) == 2 and isinstance(message.get("content"), str)
        segments.append(Segment(tokens, (role, text) if plain else _json(message)))
        total += tokens
    return Prompt(total, segments, last_user)


def text_prompts(prompt: Any, param: str = "prompt", count: Counter = count_tokens) -> list[Prompt]:
    """Count a completions `prompt` or embeddings `input`: a string, strings, or token arrays."""
    if isinstance(prompt, str):
        items: list[Any] = [prompt]
    elif isinstance(prompt, list) and prompt and all(isinstance(x, int) for x in prompt):
        items = [prompt]
    elif isinstance(prompt, list) and prompt:
        items = prompt
    else:
        raise PromptError(f"'{param}' must be a string or a non-empty array.", param)
    prompts: list[Prompt] = []
    for item in items:
        if isinstance(item, str):
            tokens, text = count(item), item
        elif isinstance(item, list) and all(isinstance(x, int) for x in item):
            tokens, text = len(item), _json_text(item)
        else:
            raise PromptError(f"Invalid '{param}': expected strings or arrays of integers.", param)
        prompts.append(Prompt(tokens, [Segment(tokens, text)], text))
    return prompts


def _cache_ttl(block: Any) -> str | None:
    control = block.get("cache_control") if isinstance(block, dict) else None
    if not isinstance(control, dict):
        return None
    ttl = control.get("ttl")
    return ttl if isinstance(ttl, str) else "5m"


def _block_ident(role: str, block: Any) -> Hashable:
    if block.get("type") == "text" and len(block) - ("cache_control" in block) == 2:
        return (role, block.get("text"))
    return (role, _json(_without_cache_control(block)))


def _anthropic_block_tokens(block: Any, param: str, count: Counter) -> tuple[int, str]:
    """(tokens, visible text) of one Anthropic content block."""
    if not isinstance(block, dict) or not isinstance(block.get("type"), str):
        raise PromptError(f"{param}: Input should be a valid content block", param)
    kind = block["type"]
    if kind == "text":
        text = block.get("text")
        if not isinstance(text, str):
            raise PromptError(f"{param}.text: Field required", param)
        return count(text), text
    if kind == "image":
        return IMAGE_TOKENS, ""
    if kind == "document":
        source = block.get("source") or {}
        if source.get("type") == "text" and isinstance(source.get("data"), str):
            return count(source["data"]), ""
        return IMAGE_TOKENS, ""
    if kind == "tool_use":
        name = str(block.get("name", ""))
        return count(name) + count(_json_text(block.get("input"))), ""
    if kind == "tool_result":
        content = block.get("content")
        if isinstance(content, str):
            return count(content), ""
        if isinstance(content, list):
            return sum(_anthropic_block_tokens(b, param, count)[0] for b in content), ""
        return 0, ""
    if kind == "thinking":
        return count(str(block.get("thinking", ""))), ""
    return count(_json_text(_without_cache_control(block))), ""


def anthropic_prompt(
    system: Any, messages: Any, tools: Any = None, count: Counter = count_tokens
) -> Prompt:
    """Count an Anthropic request's tools, system and messages, one segment per block."""
    if not isinstance(messages, list) or not messages:
        raise PromptError("messages: at least one message is required", "messages")
    segments: list[Segment] = []
    for tool in tools or ():
        identity = _json(_without_cache_control(tool))
        segments.append(Segment(count(identity.decode()), identity, _cache_ttl(tool)))
    if isinstance(system, str):
        if system:
            segments.append(Segment(count(system), ("system", system)))
    elif isinstance(system, list):
        for j, block in enumerate(system):
            tokens, _ = _anthropic_block_tokens(block, f"system.{j}", count)
            segments.append(Segment(tokens, _block_ident("system", block), _cache_ttl(block)))
    elif system is not None:
        raise PromptError("system: Input should be a valid string or list of blocks", "system")
    last_user = ""
    for i, message in enumerate(messages):
        role = message.get("role") if isinstance(message, dict) else None
        if role not in ("user", "assistant"):
            raise PromptError(f"messages.{i}.role: Input should be 'user' or 'assistant'")
        content = message.get("content")
        if isinstance(content, str):
            segments.append(Segment(count(content) + MESSAGE_OVERHEAD, (role, content)))
            text = content
        elif isinstance(content, list):
            texts: list[str] = []
            first = len(segments)
            for j, block in enumerate(content):
                param = f"messages.{i}.content.{j}"
                tokens, block_text = _anthropic_block_tokens(block, param, count)
                texts.append(block_text)
                segments.append(Segment(tokens, _block_ident(role, block), _cache_ttl(block)))
            if len(segments) == first:
                segments.append(Segment(0, (role, "")))
            segments[first].tokens += MESSAGE_OVERHEAD
            text = "".join(texts)
        else:
            raise PromptError(f"messages.{i}.content: Field required")
        if role == "user":
            last_user = text
    breakpoints = sum(1 for s in segments if s.cache_ttl)
    if breakpoints > MAX_CACHE_BREAKPOINTS:
        raise PromptError(
            f"A maximum of {MAX_CACHE_BREAKPOINTS} blocks with cache_control may be provided. "
            f"Found {breakpoints}."
        )
    return Prompt(sum(s.tokens for s in segments), segments, last_user)
