"""The deterministic "model": output text, its length and finish reason, and embeddings.

Output is drawn from a fixed corpus of plausible English and code-ish words built once
from the seed; a request picks a sentence start from the prompt's hash and takes as many
pieces as it needs. Every piece is exactly one token under `tollway.metering.tokens`
(a word of at most six word characters with its leading space, or one punctuation mark),
so the pieces are what a stream sends and `count_tokens(text) == len(pieces)`.
"""

from __future__ import annotations

import math
import random
import re
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import cycle, islice

from tollway.metering.tokens import split_tokens

_WORD_LIST = (
    "the of and to in is it for on with as that this be by are from at or an not we can "
    "you all will if more one has but so use each which when then new data value list "
    "model token cost budget team user key rate limit cache time hour day batch query "
    "result return self none true false import async await yield class def let const "
    "var int str bytes float dict set map filter reduce sort order index count sum max "
    "min mean total input output prompt reply answer input file path line node edge "
    "graph tree queue stack heap array vector matrix layer weight bias loss grad step "
    "epoch train test eval score metric report chart table row column field record "
    "ledger entry price plan quota spend usage trace span log event alert rule route "
    "proxy server client socket stream chunk buffer frame header body status error "
    "retry jitter sleep wait ready start stop open close read write send recv parse "
    "render format encode decode hash sign verify check guard scope state store load "
    "save fetch update delete insert select where group join having limit offset"
)
_WORDS = tuple(_WORD_LIST.split())
_CORPUS_PIECES = 16_384
_MAX_OUTPUT_TOKENS = 131_072  # bounds the memory of one streamed answer
_DIRECTIVE = re.compile(r"sim:tokens=(\d+)")


def output_directive(text: str) -> int | None:
    """The `N` of a `sim:tokens=N` directive in `text`, if any."""
    if "sim:" not in text:
        return None
    match = _DIRECTIVE.search(text)
    return min(int(match.group(1)), _MAX_OUTPUT_TOKENS) if match else None


@dataclass(frozen=True, slots=True)
class OutputPlan:
    """How many visible and hidden (reasoning) tokens to produce, and whether the cap cut it."""

    visible: int
    reasoning: int
    truncated: bool

    @property
    def output_tokens(self) -> int:
        return self.visible + self.reasoning


def plan_output(wanted: int, limit: int | None, reasoning: bool) -> OutputPlan:
    """Fit `wanted` visible tokens (plus half as many hidden ones if `reasoning`) under `limit`.

    Like the real APIs, the cap bounds *all* output tokens, reasoning included, so a
    request never produces more than its `max_tokens` (the gateway reserves exactly that).
    """
    hidden = wanted // 2 if reasoning else 0
    if limit is None or wanted + hidden <= limit:
        return OutputPlan(wanted, hidden, False)
    if not reasoning:
        return OutputPlan(limit, 0, True)
    visible = (2 * limit + 1) // 3
    while visible + visible // 2 > limit:
        visible -= 1
    return OutputPlan(visible, limit - visible, True)


def cut_at_stop(pieces: list[str], stops: Sequence[str]) -> tuple[list[str], str | None]:
    """Cut the output before the earliest stop sequence; returns (pieces, the stop hit)."""
    text = "".join(pieces)
    best: tuple[int, str] | None = None
    for stop in stops:
        at = text.find(stop) if stop else -1
        if at >= 0 and (best is None or at < best[0]):
            best = (at, stop)
    if best is None:
        return pieces, None
    return split_tokens(text[: best[0]]), best[1]


class TextGenerator:
    """Deterministic output pieces from (seed, prompt key); built once, shared by requests."""

    def __init__(self, seed: int) -> None:
        rng = random.Random(seed)
        pieces: list[str] = []
        starts: list[int] = []
        while len(pieces) < _CORPUS_PIECES:
            starts.append(len(pieces))
            n_words = rng.randint(5, 16)
            for i in range(n_words):
                word = rng.choice(_WORDS)
                pieces.append(" " + (word.capitalize() if i == 0 else word))
                if 0 < i < n_words - 1 and rng.random() < 0.08:
                    pieces.append(",")
            pieces.append("." if rng.random() < 0.9 else ":")
        self._pieces = pieces
        self._ring = pieces + pieces
        self._starts = starts

    def pieces(self, key: int, n: int) -> list[str]:
        """`n` one-token pieces for the prompt whose hash is `key`; the first has no lead space."""
        if n <= 0:
            return []
        start = self._starts[key % len(self._starts)]
        if n <= len(self._pieces):
            out = self._ring[start : start + n]
        else:
            out = list(islice(cycle(self._pieces), start, start + n))
        out[0] = out[0].lstrip()
        return out


@dataclass(frozen=True, slots=True)
class Generated:
    """One choice's output: its one-token pieces, hidden reasoning tokens and finish reason."""

    pieces: list[str]
    reasoning: int
    finish: str  # "stop", "length" or "stop_sequence"
    stop_sequence: str | None = None

    @property
    def output_tokens(self) -> int:
        return len(self.pieces) + self.reasoning

    @property
    def text(self) -> str:
        return "".join(self.pieces)


def generate(
    generator: TextGenerator,
    key: int,
    plan: OutputPlan,
    stops: Sequence[str] = (),
) -> Generated:
    """Produce one choice for the prompt hashed to `key` under `plan`, honouring `stops`."""
    pieces = generator.pieces(key, plan.visible)
    if stops:
        pieces, hit = cut_at_stop(pieces, stops)
        if hit is not None:
            return Generated(pieces, plan.reasoning, "stop_sequence", hit)
    return Generated(pieces, plan.reasoning, "length" if plan.truncated else "stop")


def embedding(key: int, dims: int) -> list[float]:
    """A deterministic unit vector of `dims` floats for the text whose hash is `key`."""
    rng = random.Random(key)
    vector = [rng.gauss(0.0, 1.0) for _ in range(dims)]
    norm = math.sqrt(sum(x * x for x in vector)) or 1.0
    # Round-trip through float32 so float and base64 encodings carry identical values.
    packed = struct.pack(f"<{dims}f", *(x / norm for x in vector))
    return list(struct.unpack(f"<{dims}f", packed))
