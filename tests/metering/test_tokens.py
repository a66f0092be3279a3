"""The tokenizer: the fast ASCII path counts exactly like its regex definition."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from tollway.metering.tokens import count_tokens, count_tokens_by_regex, split_tokens


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=80))
def test_fast_count_matches_the_definition(text: str) -> None:
    assert count_tokens(text) == count_tokens_by_regex(text)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from("ab_9 ,.\t\n\x1c-é€"), max_size=120))
def test_fast_count_matches_on_ascii_heavy_text(text: str) -> None:
    assert count_tokens(text) == count_tokens_by_regex(text)


@given(st.text(max_size=200))
def test_split_pieces_rebuild_the_text_one_token_each(text: str) -> None:
    pieces = split_tokens(text)
    if pieces:
        assert "".join(pieces) == text
    assert all(count_tokens(p) == 1 for p in pieces)
    assert len(pieces) == count_tokens(text)


def test_known_counts() -> None:
    assert count_tokens("Hello, world!") == 4
    assert count_tokens("internationalization") == 4  # 20 word chars: ceil(20 / 6)
    assert count_tokens("") == count_tokens("   \n") == 0
