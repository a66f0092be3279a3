"""Detection quality on the labelled corpus: precision and recall per category, with floors."""

from __future__ import annotations

import itertools
from collections import Counter

import pytest

from tests.governance.corpus import NEGATIVES, POSITIVES, Sample
from tollway.governance import Finding, data_class, scan
from tollway.governance.findings import KINDS

PRECISION_FLOOR = 0.95
RECALL_FLOOR = 0.95


def _spans(sample: Sample) -> list[tuple[str, int, int]]:
    spans = []
    for kind, value in sample.expected:
        assert sample.text.count(value) == 1, f"{value!r} must occur once in its sample"
        start = sample.text.index(value)
        spans.append((kind, start, start + len(value)))
    return spans


def _overlaps(f: Finding, start: int, end: int) -> bool:
    return f.start < end and start < f.end


def _score() -> tuple[dict[str, Counter[str]], list[str]]:
    """Per category: expected, recalled, found, correct; and the kinds that came out wrong."""
    counts: dict[str, Counter[str]] = {"secret": Counter(), "pii": Counter()}
    wrong_kind: list[str] = []
    for sample in POSITIVES:
        findings = scan(sample.text)
        spans = _spans(sample)
        for kind, start, end in spans:
            category = KINDS[kind][0]
            counts[category]["expected"] += 1
            hits = [f for f in findings if _overlaps(f, start, end) and f.category == category]
            counts[category]["recalled"] += bool(hits)
            if hits and all(f.kind != kind for f in hits):
                wrong_kind.append(f"{kind} found as {hits[0].kind}")
        for f in findings:
            counts[f.category]["found"] += 1
            counts[f.category]["correct"] += any(
                _overlaps(f, s, e) and KINDS[k][0] == f.category for k, s, e in spans
            )
    for text in NEGATIVES:
        for f in scan(text):
            counts[f.category]["found"] += 1
    return counts, wrong_kind


def test_corpus_is_big_and_varied() -> None:
    kinds = Counter(kind for sample in POSITIVES for kind, _ in sample.expected)
    assert len(POSITIVES) >= 60 and len(NEGATIVES) >= 60
    assert set(kinds) == set(KINDS)  # every kind the scanner reports has labelled examples


def test_precision_and_recall_per_category() -> None:
    counts, wrong_kind = _score()
    for category, c in counts.items():
        precision = c["correct"] / c["found"] if c["found"] else 1.0
        recall = c["recalled"] / c["expected"]
        print(
            f"{category}: precision {precision:.3f} ({c['correct']}/{c['found']}), "
            f"recall {recall:.3f} ({c['recalled']}/{c['expected']})"
        )
        assert precision >= PRECISION_FLOOR, category
        assert recall >= RECALL_FLOOR, category
    print(f"kind mismatches: {wrong_kind or 'none'}")
    assert len(wrong_kind) <= 2


@pytest.mark.parametrize("text", NEGATIVES, ids=[f"negative-{i}" for i in range(len(NEGATIVES))])
def test_look_alikes_are_not_flagged(text: str) -> None:
    assert [(f.kind, text[f.start : f.end]) for f in scan(text)] == []


def test_findings_summarise_the_text() -> None:
    sample = next(s for s in POSITIVES if len({KINDS[k][0] for k, _ in s.expected}) == 2)
    findings = scan(sample.text)
    assert findings.data_class == data_class(sample.text) == "secret"
    assert findings.secrets and findings.pii
    assert findings.kinds == {f.kind for f in findings}
    assert data_class("Card 4111 1111 1111 1111 please") == "pii"
    assert data_class("nothing to see here") == "clean"
    assert not scan("")


def test_findings_are_sorted_and_disjoint() -> None:
    for sample in POSITIVES:
        findings = list(scan(sample.text))
        assert all(a.end <= b.start for a, b in itertools.pairwise(findings))
        assert all(f.start < f.end for f in findings)
