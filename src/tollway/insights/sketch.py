"""Near-duplicate sketches of prompt text (placeholder until the SimHash lands)."""

from __future__ import annotations


def near_duplicate(a: int, b: int) -> bool:
    """Whether two sketches are close (Hamming distance ≤ 3); 0 means no sketch."""
    return bool(a and b) and (a ^ b).bit_count() <= 3
