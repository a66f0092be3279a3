"""Normalized token usage, the same for every API and provider."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(slots=True)
class Usage:
    """Token counts of one request, normalized across APIs.

    `input_tokens` counts *every* prompt token, including those read from or
    written to a prompt cache; `cached_input_tokens` and `cache_write_tokens`
    are the subsets billed at the cache prices. `output_tokens` includes
    `reasoning_tokens`.
    """

    input_tokens: int = 0
    cached_input_tokens: int = 0
    cache_write_tokens: int = 0
    output_tokens: int = 0
    reasoning_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    @classmethod
    def from_openai(cls, usage: dict[str, Any] | None) -> Usage:
        """Read an OpenAI `usage` object (chat, completions, embeddings or responses)."""
        if not usage:
            return cls()
        prompt = usage.get("prompt_tokens", usage.get("input_tokens")) or 0
        completion = usage.get("completion_tokens", usage.get("output_tokens")) or 0
        prompt_details = usage.get("prompt_tokens_details") or usage.get("input_tokens_details")
        completion_details = usage.get("completion_tokens_details") or usage.get(
            "output_tokens_details"
        )
        return cls(
            input_tokens=int(prompt),
            cached_input_tokens=int((prompt_details or {}).get("cached_tokens") or 0),
            output_tokens=int(completion),
            reasoning_tokens=int((completion_details or {}).get("reasoning_tokens") or 0),
        )

    def merge_anthropic(self, usage: dict[str, Any] | None) -> None:
        """Fold an Anthropic `usage` object in (message, message_start or message_delta).

        Anthropic reports uncached input separately from cache reads and writes,
        and a stream's `message_delta` carries cumulative counts, so a field that
        is present replaces the earlier value.
        """
        if not usage:
            return
        uncached = usage.get("input_tokens")
        read = usage.get("cache_read_input_tokens")
        write = usage.get("cache_creation_input_tokens")
        if read is not None:
            self.cached_input_tokens = int(read)
        if write is not None:
            self.cache_write_tokens = int(write)
        if uncached is not None or read is not None or write is not None:
            base = (
                uncached
                if uncached is not None
                else (self.input_tokens - self.cached_input_tokens - self.cache_write_tokens)
            )
            self.input_tokens = int(base or 0) + self.cached_input_tokens + self.cache_write_tokens
        if usage.get("output_tokens") is not None:
            self.output_tokens = int(usage["output_tokens"])

    @classmethod
    def from_anthropic(cls, usage: dict[str, Any] | None) -> Usage:
        """Read an Anthropic `usage` object."""
        result = cls()
        result.merge_anthropic(usage)
        return result
