"""The simulator's pure logic: tokens, generated pieces, output caps."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.providers.conftest import (
    GENERATOR,
)
from tollway.metering.tokens import count_tokens, split_tokens
from tollway.providers.simulated.engine import plan_output
from tollway.providers.simulated.tokencount import TokenCounter

# --- pure logic -------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from("ab_9 ,.\t\n\x1c-é€"), max_size=120))
def test_token_memo_counts_like_the_tokenizer(text: str) -> None:
    counter = TokenCounter(min_chars=0)
    assert counter(text) == counter(text) == count_tokens(text)


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 2**32), st.integers(0, 3000))
def test_generated_pieces_are_one_token_each(key: int, n: int) -> None:
    pieces = GENERATOR.pieces(key, n)
    assert len(pieces) == n
    if n:
        assert split_tokens("".join(pieces)) == pieces
        assert not pieces[0].startswith(" ")


@given(st.integers(0, 5000), st.none() | st.integers(1, 5000), st.booleans())
def test_output_never_exceeds_the_cap(wanted: int, limit: int | None, reasoning: bool) -> None:
    plan = plan_output(wanted, limit, reasoning)
    if limit is not None:
        assert plan.output_tokens <= limit
    assert plan.truncated == (
        limit is not None and wanted + (wanted // 2 if reasoning else 0) > limit
    )
    if not plan.truncated:
        assert plan.visible == wanted and plan.reasoning == (wanted // 2 if reasoning else 0)
    else:
        assert plan.output_tokens == limit
