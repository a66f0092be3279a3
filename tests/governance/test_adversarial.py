"""Pathological inputs scan in linear time: 128 KB of one character or one repeated trigger."""

from __future__ import annotations

import time

import pytest

from tollway.governance import redact, scan

SIZE = 128 * 1024
BOUND_S = 0.050  # generous: the figures printed are typically a few milliseconds

PATHOLOGICAL = {
    "a": "a",
    "digits": "1234567890",
    "zeros": "0",
    "@": "@",
    "-": "-",
    "_": "_",
    "=": "=",
    ":": ":",
    "+": "+",
    "space": " ",
    "newline": "\n",
    "A": "A",
    "S": "S",
    "J": "J",
    "digit groups": "12 ",
    "dashed digits": "1-",
    "dotted digits": "1.",
    "sk-": "sk-",
    "ghp_": "ghp_",
    "eyJ.": "eyJhbGci.",
    "://": "://a:b",
    "a@b": "a@b",
    "a.b@": "a.b@",
    "password=": "password=",
    "key:": "api_key: ",
    "bearer": "Bearer ",
    "-----BEGIN": "-----BEGIN PRIVATE KEY-----",
    "+1": "+1 ",
    "(415)": "(415) ",
    "AB12": "AB12 ",
}


def _best_of(text: str, runs: int = 3) -> float:
    best = float("inf")
    for _ in range(runs):
        t0 = time.perf_counter()
        scan(text)
        best = min(best, time.perf_counter() - t0)
    return best


@pytest.mark.parametrize("unit", PATHOLOGICAL.values(), ids=PATHOLOGICAL.keys())
def test_pathological_input_scans_fast(unit: str) -> None:
    text = (unit * (SIZE // len(unit) + 1))[:SIZE]
    seconds = _best_of(text)
    print(f"{unit!r:>30}: {seconds * 1000:.2f} ms")
    assert seconds < BOUND_S


def test_many_real_findings_stay_linear() -> None:
    """A text that is nothing but findings costs per finding, not quadratically."""
    unit = "x a.b@example.com 4111 1111 1111 1111 "
    small = unit * 200
    large = unit * 1600
    assert len(scan(small)) == 400
    t_small, t_large = _best_of(small, runs=5), _best_of(large, runs=5)
    print(f"400 findings: {t_small * 1000:.2f} ms, 3200 findings: {t_large * 1000:.2f} ms")
    assert t_large < 20 * t_small + 0.02  # 8x the input: linear is 8x, quadratic 64x
    assert "@" not in redact(large)
