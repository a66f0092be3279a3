"""`count_tokens` at C speed for ASCII text (the simulator counts whole prompts per request).

`tollway.metering.tokens.count_tokens` walks one regex match per token (~150 ns each,
i.e. milliseconds for a 10k-token prompt). For ASCII text the same count falls out of a
few bytes-level passes: one token per punctuation byte, plus ceil(L / 6) per run of L word
bytes, which is 1 + floor((L - 1) / 6): count the runs, blank the first byte of each, and
count non-overlapping six-byte groups in what is left. Non-ASCII text takes the regex path.
The result is always exactly `count_tokens(text)` (a property test holds it to that).
"""

from __future__ import annotations

import re

from tollway.metering.tokens import count_tokens

# What Python's str regex `\w` and `\s` match among ASCII characters (`\s` includes \x1c-\x1f).
_WORD = bytes(c for c in range(128) if re.match(r"\w", chr(c)))
_SPACE = bytes(c for c in range(128) if re.match(r"\s", chr(c)))
_NOT_PUNCT = _WORD + _SPACE
# Word bytes become b"w", everything else a blank, so runs of b"w" are the word runs.
_RUNS = bytes(ord("w") if c in _WORD else ord(" ") for c in range(256))
_SIX = b"wwwwww"


def fast_count_tokens(text: str) -> int:
    """Exactly `count_tokens(text)`, without a per-token Python step for ASCII text."""
    if not text.isascii():
        return count_tokens(text)
    raw = text.encode("ascii")
    punct = len(raw.translate(None, _NOT_PUNCT))
    runs = b" " + raw.translate(_RUNS)
    n_runs = runs.count(b" w")
    rest = runs.replace(b" w", b"  ").count(_SIX)
    return punct + n_runs + rest


class TokenCounter:
    """`fast_count_tokens` with a memo for long texts (system prompts and conversation
    history are re-sent with every turn); bounded by the total characters it holds."""

    def __init__(self, min_chars: int = 2048, max_chars: int = 32 << 20) -> None:
        self._memo: dict[str, int] = {}
        self._min_chars = min_chars
        self._max_chars = max_chars
        self._held_chars = 0

    def __call__(self, text: str) -> int:
        if len(text) < self._min_chars:
            return fast_count_tokens(text)
        tokens = self._memo.get(text)
        if tokens is None:
            tokens = self._memo[text] = fast_count_tokens(text)
            self._held_chars += len(text)
            while self._held_chars > self._max_chars:
                oldest = next(iter(self._memo))
                del self._memo[oldest]
                self._held_chars -= len(oldest)
        return tokens

    def clear(self) -> None:
        self._memo.clear()
        self._held_chars = 0
