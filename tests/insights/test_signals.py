"""Per-request gaming signals separate padded and looping prompts from real work."""

from __future__ import annotations

import random
import timeit

from hypothesis import given
from hypothesis import strategies as st
from openai import OpenAI

from tests.gateway.test_openai_sdk import ledger_row
from tests.harness import GatewayThread
from tollway.insights.signals import Signals, measure, score
from tollway.ledger.queries import usage

PROSE = (
    "The migration moved most billing workloads within two sprints. We still need to retire "
    "the legacy queue, and the retry policy may be too aggressive for the payment provider. "
    "Could you review the design and suggest how to cap concurrency without losing orders? "
)
CODE = """
def fetch_all(session, urls, policy):
    results = []
    for url in urls:
        for attempt in range(policy.attempts):
            try:
                results.append(session.get(url, timeout=10).json())
                break
            except TimeoutError as exc:
                log.warning("attempt %d for %s failed: %s", attempt, url, exc)
    return results
"""


def normal_prompts() -> list[str]:
    rng = random.Random(1)
    words = (PROSE + CODE).split()
    out = [PROSE * 2, CODE + PROSE, PROSE + CODE]
    for _ in range(20):
        out.append(" ".join(rng.choice(words) for _ in range(rng.randint(60, 400))))
    return out


def gamed_prompts() -> list[str]:
    return [
        PROSE + "\n" + "please be thorough and detailed " * 200,  # padding
        "\n".join(["Summarise the ledger."] * 60),  # a pasted loop
        PROSE + ("x" * 5000),  # filler
        (CODE * 12),  # the same file pasted many times
    ]


def test_normal_work_scores_low_and_gaming_scores_high() -> None:
    normal = [score(measure(p)).score for p in normal_prompts()]
    gamed = [score(measure(p)).score for p in gamed_prompts()]
    assert max(normal) < 0.2, normal
    assert min(gamed) > 0.8, gamed


def test_evidence_names_the_signals() -> None:
    verdict = score(measure("\n".join(["Summarise the ledger."] * 60)))
    assert "duplicate_line_fraction" in verdict.evidence
    assert verdict.credited(1000) < 200


def test_a_phrase_stuffed_between_words_shows_as_a_top_2gram() -> None:
    # The 2-gram count is skipped for plain-looking text; this still compresses well enough
    # (ratio > 3) to be counted.
    rng = random.Random(2)
    words = (PROSE + CODE).split()
    stuffed = " ".join(
        "please note" if rng.random() < 0.3 else rng.choice(words) for _ in range(300)
    )
    verdict = score(measure(stuffed))
    assert list(verdict.evidence) == ["top_ngram_fraction"] and verdict.score > 0.5


def test_max_tokens_burn_alone_is_a_moderate_signal() -> None:
    burn = score(measure("short", finish_reason="length", max_tokens=32_000))
    assert burn.score == 0.5 and "length_burn" in burn.evidence
    assert score(measure("short", finish_reason="length", max_tokens=256)).score == 0.0


@given(st.text(max_size=3000))
def test_score_is_a_probability(text: str) -> None:
    verdict = score(measure(text))
    assert 0.0 <= verdict.score <= 1.0
    assert 0 <= verdict.credited(10_000) <= 10_000


def test_signals_are_cheap_and_bounded() -> None:
    big = PROSE * 800  # ~200 KB: only a bounded sample is examined
    per_call = min(timeit.repeat(lambda: measure(big), number=20, repeat=3)) / 20
    assert per_call < 0.05  # generous: ~1 ms measured; the bound only catches O(n^2)
    assert isinstance(measure(big), Signals)


def test_the_gateway_scores_every_request_and_credits_tokens(gateway: GatewayThread) -> None:
    key, _ = gateway.runtime.key_store.create("gus", "gaming", "initech")
    client = OpenAI(base_url=gateway.base_url + "/v1", api_key=key, max_retries=0)
    normal = client.chat.completions.with_raw_response.create(
        model="gpt-test", messages=[{"role": "user", "content": PROSE + CODE}]
    )
    padded = client.chat.completions.with_raw_response.create(
        model="gpt-test", messages=[{"role": "user", "content": gamed_prompts()[0]}]
    )
    low = ledger_row(gateway, normal.headers["x-tollway-request-id"])
    high = ledger_row(gateway, padded.headers["x-tollway-request-id"])
    assert low["gaming_score"] < 0.2 < 0.8 < high["gaming_score"]
    (row,) = usage(
        gateway.runtime.database.engine,
        group_by=["org"],
        since_ms=0,
        until_ms=2**62,
        filters={"org": "initech"},
    )
    raw = row["input_tokens"] + row["output_tokens"]
    expected = sum(
        int((r["input_tokens"] + r["output_tokens"]) * (1 - r["gaming_score"])) for r in (low, high)
    )
    assert row["credited_tokens"] == expected < raw
