"""Per-request gaming signals: cheap text statistics computed once per request.

Each signal is a number with a reference range (see `shared/reference`):

- `compression_ratio`: raw bytes / zlib level-1 bytes of the prompt's *new* part (the
  last user turn). Normal prose and code compress ≈ 2.2-2.6x; padding 7x and more.
- `duplicate_line_fraction`: share of characters in lines that repeat an earlier line
  (Gopher filter threshold 0.30).
- `top_ngram_fraction`: share of characters covered by the most frequent word 2-gram
  (Gopher threshold 0.20). Counting 2-grams costs more than the rest together, so it is
  skipped (reported as 0.0) when the compression ratio and duplicate lines already show
  ordinary prose or code.
- `length_burn`: the answer stopped at `max_tokens` and `max_tokens` was large.

`score` ramps each signal between "normal" and "clearly gamed" and combines them with a
noisy-OR, so one strong signal or several moderate ones give a high score; the signals
that contributed are kept as evidence. Nothing here punishes anyone: scores feed a review
list and the *credited* token count (raw x (1 - score)).
"""

from __future__ import annotations

import zlib
from collections import Counter
from dataclasses import dataclass, field
from itertools import pairwise
from operator import itemgetter

# Statistics on a bounded sample keep this O(1) per request: padding shows in any
# sample, and the word 2-gram count (the costly one in Python) sees a smaller one.
_SAMPLE_CHARS = 8_192
_NGRAM_SAMPLE_CHARS = 2_048
_MIN_CHARS = 200  # below this, text statistics say nothing
# "Clearly normal": well under the ramps' starting points (3.5 and 0.30). Such text gets no
# 2-gram count, the costly statistic. The blind spot: a short 2-gram ("of the") sprinkled
# through plain text compresses barely better than plain text. At 30% of the words it
# reads ratio ~2.95, share ~0.24 (a score of ~0.2 lost); from ~40% the ratio passes 3.0.
_PLAIN_RATIO = 3.0
_PLAIN_DUPLICATES = 0.15


@dataclass(frozen=True, slots=True)
class Signals:
    compression_ratio: float = 0.0
    duplicate_line_fraction: float = 0.0
    top_ngram_fraction: float = 0.0
    length_burn: bool = False


@dataclass(frozen=True, slots=True)
class Verdict:
    """A request's gaming score in [0, 1] and the signals behind it."""

    score: float
    evidence: dict[str, float] = field(default_factory=dict)

    def credited(self, tokens: int) -> int:
        """Tokens that count toward impact: raw x (1 - score), rounded down."""
        return int(tokens * (1.0 - self.score))


def measure(
    new_text: str, *, finish_reason: str | None = None, max_tokens: int | None = None
) -> Signals:
    """The signals of one request's new prompt text and how its answer ended."""
    burn = finish_reason in ("length", "max_tokens") and (max_tokens or 0) >= 4096
    text = new_text[:_SAMPLE_CHARS]
    if len(text) < _MIN_CHARS:
        return Signals(length_burn=burn)
    raw = text.encode("utf-8", "surrogatepass")
    ratio = len(raw) / max(1, len(zlib.compress(raw, 1)))
    duplicates = _duplicate_line_fraction(text)
    bigrams = 0.0
    if ratio >= _PLAIN_RATIO or duplicates >= _PLAIN_DUPLICATES:
        bigrams = _top_bigram_fraction(text[:_NGRAM_SAMPLE_CHARS])
    return Signals(ratio, duplicates, bigrams, burn)


def score(signals: Signals) -> Verdict:
    """Noisy-OR of ramped signals; evidence lists each contributing signal's value."""
    parts = (
        ("compression_ratio", _ramp(signals.compression_ratio, 3.5, 7.0)),
        ("duplicate_line_fraction", _ramp(signals.duplicate_line_fraction, 0.30, 0.60)),
        ("top_ngram_fraction", _ramp(signals.top_ngram_fraction, 0.20, 0.40)),
        ("length_burn", 0.5 if signals.length_burn else 0.0),
    )
    clean = 1.0
    evidence: dict[str, float] = {}
    for name, value in parts:
        if value > 0:  # most requests: nothing contributes, no evidence to build
            clean *= 1.0 - value
            evidence[name] = float(getattr(signals, name))
    return Verdict(round(1.0 - clean, 4), evidence)


def _ramp(value: float, low: float, high: float) -> float:
    """0 at or below `low`, 1 at or above `high`, linear between."""
    if value <= low:
        return 0.0
    return min(1.0, (value - low) / (high - low))


def _duplicate_line_fraction(text: str) -> float:
    seen: set[str] = set()
    duplicated = total = 0
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped:
            continue
        total += len(stripped)
        if stripped in seen:
            duplicated += len(stripped)
        else:
            seen.add(stripped)
    return duplicated / total if total else 0.0


def _top_bigram_fraction(text: str) -> float:
    words = text.split()
    if len(words) < 4:
        return 0.0
    # max() keeps the first of equal counts, as most_common(1) does, without its heap.
    (first, second), n = max(Counter(pairwise(words)).items(), key=itemgetter(1))
    covered = n * (len(first) + len(second))
    return min(1.0, covered / max(1, sum(map(len, words))))
