"""Prompt caching as the two real APIs report it, over one bounded LRU of prefix hashes.

OpenAI caches automatically: a prompt of at least `min_tokens` reads the longest prefix
(at message granularity) seen before, rounded down to a multiple of `block` tokens.
Anthropic caches explicitly: the prefix up to each `cache_control` breakpoint is written;
a later request reads the longest stored prefix found at a breakpoint or within the 20
blocks before its last one, and writes the rest up to its last breakpoint.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from tollway.providers.simulated.prompts import Prompt

ANTHROPIC_LOOKBACK_BLOCKS = 20


@dataclass(frozen=True, slots=True)
class AnthropicCacheUsage:
    """Cache tokens of one Anthropic request (`write_ttl` is the last breakpoint's TTL)."""

    read: int = 0
    write: int = 0
    write_ttl: str = "5m"


class PromptCache:
    """Remembers hashes of prompt prefixes per model; least recently used ones are evicted.

    A prefix hash chains Python's 64-bit `hash` over the segments' identities: the cache
    lives in one process, and a long text's hash is computed once and kept by the str.
    """

    def __init__(self, max_entries: int, min_tokens: int, block: int) -> None:
        self._entries: OrderedDict[int, None] = OrderedDict()
        self._max_entries = max_entries
        self._min_tokens = min_tokens
        self._block = block

    def __len__(self) -> int:
        return len(self._entries)

    def clear(self) -> None:
        self._entries.clear()

    def _hit(self, digest: int) -> bool:
        if digest in self._entries:
            self._entries.move_to_end(digest)
            return True
        return False

    def _store(self, digest: int) -> None:
        self._entries[digest] = None
        self._entries.move_to_end(digest)
        if len(self._entries) > self._max_entries:
            self._entries.popitem(last=False)

    def openai_cached_tokens(self, model: str, prompt: Prompt) -> int:
        """`prompt_tokens_details.cached_tokens` for `prompt`, remembering its prefixes."""
        if prompt.tokens < self._min_tokens:
            return 0
        running = hash(("openai", model))
        prefix_tokens = 0
        cached = 0
        for segment in prompt.segments:
            running = hash((running, segment.ident))
            prefix_tokens += segment.tokens
            if prefix_tokens < self._min_tokens:
                continue
            if self._hit(running):
                cached = prefix_tokens
            else:
                self._store(running)
        return cached // self._block * self._block

    def anthropic_usage(self, model: str, prompt: Prompt) -> AnthropicCacheUsage:
        """Cache reads and writes for `prompt`'s `cache_control` breakpoints."""
        segments = prompt.segments
        breakpoints = [i for i, s in enumerate(segments) if s.cache_ttl]
        if not breakpoints:
            return AnthropicCacheUsage()
        last = breakpoints[-1]
        running = hash(("anthropic", model))
        digests: list[int] = []
        cumulative: list[int] = []
        prefix_tokens = 0
        for segment in segments[: last + 1]:
            running = hash((running, segment.ident))
            prefix_tokens += segment.tokens
            digests.append(running)
            cumulative.append(prefix_tokens)
        if prefix_tokens < self._min_tokens:
            return AnthropicCacheUsage()
        candidates = set(range(max(0, last - ANTHROPIC_LOOKBACK_BLOCKS), last + 1))
        candidates.update(breakpoints)
        read = 0
        for i in sorted(candidates, reverse=True):
            if self._hit(digests[i]):
                read = cumulative[i]
                break
        for i in breakpoints:
            if cumulative[i] >= self._min_tokens:
                self._store(digests[i])
        ttl = segments[last].cache_ttl or "5m"
        return AnthropicCacheUsage(read=read, write=prefix_tokens - read, write_ttl=ttl)
