"""Near-duplicate fingerprints of prompt text: a 63-bit one-permutation MinHash.

The text is folded (ASCII lowercased, every digit read as 0, whitespace dropped) so that
counters, timestamps and re-indentation do not count as changes. Every 8-byte window of
the folded text is a shingle; a multiplicative hash spreads the shingles over 64 buckets
and each bucket keeps its smallest hash (one-permutation hashing, Li, Owen & Zhang 2012).
One bit of each bucket's minimum is kept (1-bit minwise hashing, Li & König 2010), so two
texts whose shingle sets have Jaccard similarity J differ in about 32 x (1 - J) bits:
small edits give a few bits, unrelated prompts on the same topic typically 20-30.

The fingerprint is stored next to each request and compared across processes and
releases: the constants below are part of its format, and `hash()` (salted per process)
is never used.
"""

from __future__ import annotations

import numpy as np

# A bounded sample keeps the cost O(1): the head, plus the tail where the question that
# follows a pasted document usually sits.
_HEAD_CHARS = 1024
_TAIL_CHARS = 1024
_MIN_BYTES = 40  # of folded text: shorter says too little to compare
# Bits (of 63) two near-duplicates may differ in: about Jaccard >= 0.6 between their
# shingle sets. On the labelled pairs of tests/insights/test_sketch.py, 99% of small edits
# differ in <= 8 bits and unrelated prompts of the same kind and length in >= 14.
NEAR_BITS = 12

_FOLD = bytes.maketrans(
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", b"abcdefghijklmnopqrstuvwxyz0000000000"
)
_SPACE = b" \t\n\r\x0b\x0c"
_UINT64 = np.dtype("<u8")
_SHINGLE_HASH = np.uint64(0x9E3779B97F4A7C15)  # odd: the top bits mix all 8 bytes
_BIT_HASH = np.uint64(0xBF58476D1CE4E5B9)  # picks each bucket's bit from its minimum
_BUCKET_SHIFT = np.uint64(58)  # top 6 bits: 64 buckets
_HALF = np.uint64(1 << 63)
_EMPTY = np.full(64, np.iinfo(np.uint64).max, dtype=np.uint64)
_MASK = (1 << 63) - 1  # fits a signed BIGINT column


def sketch(text: str) -> int:
    """The text's fingerprint in [1, 2**63); 0 for text too short to sketch (fewer than 40
    bytes of UTF-8 once whitespace is dropped)."""
    if len(text) > _HEAD_CHARS + _TAIL_CHARS:
        text = text[:_HEAD_CHARS] + text[-_TAIL_CHARS:]
    folded = text.encode("utf-8", "surrogatepass").translate(_FOLD, _SPACE)
    if len(folded) < _MIN_BYTES:
        return 0
    # Each 8-byte window read in place as one little-endian uint64 (stride 1 byte): the
    # shingles cost no copy and no Python loop.
    shingles = np.ndarray((len(folded) - 7,), _UINT64, folded, 0, (1,))
    hashed = shingles * _SHINGLE_HASH
    minima = _EMPTY.copy()
    np.minimum.at(minima, hashed >> _BUCKET_SHIFT, hashed)
    # Not a bit of the minimum itself: its top bits are skewed (it is a minimum) and its
    # low bits depend on the first bytes only; a second hash's top bit mixes all 64.
    # An empty bucket gives the same bit in every text.
    bits = minima * _BIT_HASH >= _HALF
    return int.from_bytes(np.packbits(bits).tobytes(), "little") & _MASK or 1


def near_duplicate(a: int, b: int) -> bool:
    """Whether two fingerprints come from near-identical texts; never for a 0 (unsketched)."""
    return bool(a and b) and (a ^ b).bit_count() <= NEAR_BITS
