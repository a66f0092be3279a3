"""Invariants under random text: redaction never raises, stays bounded, is a fixed point."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from tollway.governance import data_class, redact, scan
from tollway.governance.detect import _FOLD, fold

MARKER_MAX = len("[REDACTED:aws_secret_access_key]")

# Characters that build every kind of candidate: digits, separators, prefixes, operators.
_TRIGGERS = st.sampled_from(
    [
        *"0123456789 -_.@:/=+()\"'\n",
        *("sk-", "ghp_", "AKIA", "eyJ", "password=", "key: ", "Bearer ", "4111 ", "+44 ", "://"),
        *"aZkQx",
    ]
)
trigger_text = st.lists(_TRIGGERS, max_size=80).map("".join)


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=300), trigger_text))
def test_redact_never_raises_and_stays_bounded(text: str) -> None:
    findings = scan(text)
    clean = redact(text, findings)
    assert len(clean) <= len(text) + MARKER_MAX * len(findings)
    assert all(0 <= f.start < f.end <= len(text) for f in findings)
    assert redact(text) == clean


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=300), trigger_text))
def test_data_class_agrees_with_a_full_scan(text: str) -> None:
    assert data_class(text) == scan(text).data_class


@settings(max_examples=300, deadline=None)
@given(trigger_text)
def test_redacting_twice_changes_nothing(text: str) -> None:
    once = redact(text)
    assert redact(once) == once


# No digit, no upper case, none of @ : = -: nothing can be a key, a number or an assignment.
plain = st.text(alphabet=st.sampled_from("abcdefghijklmnopqrstuvwxyz .,;!?'()_\n"), max_size=400)


@settings(max_examples=200, deadline=None)
@given(plain)
def test_plain_prose_finds_nothing(text: str) -> None:
    assert not scan(text)


@given(st.text(max_size=200))
def test_folding_keeps_every_offset(text: str) -> None:
    folded = fold(text)
    assert len(folded) == len(text)
    assert folded == text.translate(_FOLD)
    assert all(f == c or c.isascii() for f, c in zip(folded, text, strict=True))
