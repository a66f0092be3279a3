"""Fast random draws for the per-request path.

`random.Random.choice`, `lognormvariate` and friends cost about a microsecond each in
pure Python; a backfill makes several per row. Log-normals here are read from a table of
4,096 quantiles (a standard normal's, scaled), indexed by one `random()` call: the shape
is the same to three decimals and each draw costs a tenth as much.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from statistics import NormalDist
from typing import TypeVar

T = TypeVar("T")
_QUANTILES = 4096
_Z = tuple(NormalDist().inv_cdf((i + 0.5) / _QUANTILES) for i in range(_QUANTILES))


class LogNormal:
    """Log-normal draws with median 1 and shape `sigma` (multiply by the median wanted)."""

    __slots__ = ("_table",)

    def __init__(self, sigma: float) -> None:
        self._table = tuple(math.exp(sigma * z) for z in _Z)

    def __call__(self, rng: random.Random) -> float:
        return self._table[int(rng.random() * _QUANTILES)]


def pick(rng: random.Random, items: Sequence[T]) -> T:
    """`rng.choice(items)` at a fraction of its cost."""
    return items[int(rng.random() * len(items))]


def below(rng: random.Random, n: int) -> int:
    """An int in [0, n)."""
    return int(rng.random() * n)
