"""Gaming signals and near-duplicate sketch on the settle path: µs per request.

    python -m benchmarks.detector

The new prompt turn is 1 KB, 16 KB or 128 KB of prose-like text (sentences drawn from a
fixed vocabulary, no repeated passages) or of padding (one sentence followed by one
phrase repeated). Both steps read a bounded sample, so 16 KB and 128 KB should cost the
same. Figures are the median of 15 short repeats on this machine, in µs per call.
"""

from __future__ import annotations

import random
import statistics
import timeit
from collections.abc import Callable
from functools import partial

from rich.console import Console

from benchmarks.governance import CODE, LOG, PROSE
from benchmarks.report import cpu_reference_ms, machine, table
from tollway.insights.signals import measure, score
from tollway.insights.sketch import sketch

_VOCABULARY = sorted(set((PROSE + CODE + LOG).split()))
SIZES = (("1 KB", 1024), ("16 KB", 16 * 1024), ("128 KB", 128 * 1024))


def prose(size: int, seed: int = 7) -> str:
    """Sentences of random words and numbers, a few per line: plain text that repeats nothing."""
    rng = random.Random(seed)
    lines: list[str] = []
    n = 0
    while n < size:
        sentences = []
        for _ in range(rng.randint(1, 4)):
            words = [rng.choice(_VOCABULARY) for _ in range(rng.randint(6, 18))]
            words.insert(rng.randrange(len(words)), str(rng.randint(2, 9999)))
            sentences.append(" ".join(words).capitalize() + rng.choice(".?."))
        lines.append(" ".join(sentences))
        n += len(lines[-1]) + 1
    return "\n".join(lines)[:size]


def padded(size: int) -> str:
    """A one-line question, then one phrase repeated up to `size`."""
    question = PROSE.split(". ")[0] + ".\n"
    filler = "please be thorough and detailed "
    return (question + filler * (size // len(filler) + 1))[:size]


def settle_signals(text: str) -> float:
    """What the settle step does per request: measure, then score."""
    return score(measure(text)).score


def median_us(fn: Callable[[], object], number: int, repeat: int = 15) -> float:
    """Median of short repeats, µs per call: typical cost, not the best case."""
    return statistics.median(timeit.repeat(fn, number=number, repeat=repeat)) / number * 1e6


def main() -> None:
    console = Console()
    info = machine()
    console.print(
        f"[dim]{info['date']} · {info['nproc']} x {info['cpu']} · Python {info['python']} · "
        f"load {info['loadavg_at_start']} · CPU yardstick {cpu_reference_ms()} ms "
        f"(higher = slower right now)[/]"
    )
    rows = []
    for label, size in SIZES:
        for kind, make in (("prose", prose), ("padded", padded)):
            text = make(size)
            verdict = score(measure(text))
            signals_us = median_us(partial(settle_signals, text), 2000)
            sketch_us = median_us(partial(sketch, text), 2000)
            rows.append(
                [
                    label,
                    kind,
                    f"{verdict.score:.2f}",
                    f"{signals_us:.1f}",
                    f"{sketch_us:.1f}",
                    f"{signals_us + sketch_us:.1f}",
                ]
            )
    console.print(
        table(
            "per request (new prompt turn)",
            ["size", "text", "score", "measure+score µs", "sketch µs", "total µs"],
            rows,
        )
    )


if __name__ == "__main__":
    main()
