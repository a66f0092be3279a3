"""Redaction: nothing of a secret survives, offsets hold with several findings, it is idempotent."""

from __future__ import annotations

import re

import pytest

from tests.governance.corpus import POSITIVES, Sample
from tollway.governance import Finding, Findings, redact, scan, scan_and_redact
from tollway.governance.findings import KINDS, finding, merge

LEAK = 5  # no run of this many characters unique to a secret may survive
_MARKER = re.compile(r"\[REDACTED:[a-z_]+\]")


def _unique_grams(sample: Sample, value: str) -> set[str]:
    """The 5-character pieces of `value` that occur nowhere else in the sample's text."""
    rest = sample.text.replace(value, "\0")
    return {value[i : i + LEAK] for i in range(len(value) - LEAK + 1)} - {
        rest[i : i + LEAK] for i in range(len(rest) - LEAK + 1)
    }


@pytest.mark.parametrize("sample", POSITIVES, ids=[f"positive-{i}" for i in range(len(POSITIVES))])
def test_nothing_of_a_secret_survives(sample: Sample) -> None:
    clean = redact(sample.text)
    outside_markers = _MARKER.sub("\0", clean)
    for kind, value in sample.expected:
        leaked = {g for g in _unique_grams(sample, value) if g in outside_markers}
        assert not leaked, f"{kind}: {sorted(leaked)[:3]} left in {clean!r}"
        assert f"[REDACTED:{kind}]" in clean or KINDS[kind][0] == "pii"


@pytest.mark.parametrize("sample", POSITIVES, ids=[f"positive-{i}" for i in range(len(POSITIVES))])
def test_redaction_is_idempotent(sample: Sample) -> None:
    once = redact(sample.text)
    assert redact(once) == once
    assert not scan(once)


def test_offsets_with_several_and_adjacent_findings() -> None:
    text = "mail a.b@example.com,c.d@example.org then 4111 1111 1111 1111; ssn 536-22-8471."
    clean, findings = scan_and_redact(text)
    assert [f.kind for f in findings] == ["email", "email", "card_number", "ssn"]
    assert clean == (
        "mail [REDACTED:email],[REDACTED:email] then [REDACTED:card_number]; ssn [REDACTED:ssn]."
    )


def test_given_findings_are_used_as_they_are_and_merged_when_they_overlap() -> None:
    text = "0123456789abcdef"
    adjacent = [finding("email", 2, 4), finding("phone", 4, 6), finding("ssn", 10, 12)]
    assert redact(text, adjacent) == ("01[REDACTED:email][REDACTED:phone]6789[REDACTED:ssn]cdef")
    overlapping = [finding("password", 3, 8), finding("email", 1, 5), finding("jwt", 7, 9)]
    assert redact(text, overlapping) == "0[REDACTED:jwt]9abcdef"  # union, top-ranked kind
    assert redact(text, []) == text
    assert redact(text, Findings()) == text


def test_merge_keeps_the_specific_kind() -> None:
    merged = merge([finding("api_key", 10, 50), finding("openai_key", 10, 50)])
    assert list(merged) == [Finding("openai_key", "secret", 10, 50)]
    text = 'OPENAI_API_KEY="sk-proj-Ab3dEf9hIjKlMn0pQrStUvWxYz1234567890abcdEFGH"'
    assert [f.kind for f in scan(text)] == ["openai_key"]
