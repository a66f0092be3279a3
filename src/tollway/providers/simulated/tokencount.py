"""A memo over `count_tokens` for long texts: system prompts and conversation history are
re-sent with every turn, and the simulator counts whole prompts per request."""

from __future__ import annotations

from tollway.metering.tokens import count_tokens


class TokenCounter:
    """`count_tokens` with a memo for long texts, bounded by the total characters it holds."""

    def __init__(self, min_chars: int = 2048, max_chars: int = 32 << 20) -> None:
        self._memo: dict[str, int] = {}
        self._min_chars = min_chars
        self._max_chars = max_chars
        self._held_chars = 0

    def __call__(self, text: str) -> int:
        if len(text) < self._min_chars:
            return count_tokens(text)
        tokens = self._memo.get(text)
        if tokens is None:
            tokens = self._memo[text] = count_tokens(text)
            self._held_chars += len(text)
            while self._held_chars > self._max_chars:
                oldest = next(iter(self._memo))
                del self._memo[oldest]
                self._held_chars -= len(oldest)
        return tokens

    def clear(self) -> None:
        self._memo.clear()
        self._held_chars = 0
