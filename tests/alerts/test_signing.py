"""Webhook signatures: what verifies, and every way a forgery or replay must fail."""

from __future__ import annotations

from tollway.alerts import sign, verify_signature

SECRET = "whsec-test"
BODY = b'{"id":"a1","title":"Spend spike"}'
NOW = 1_750_000_000


def test_a_fresh_signature_verifies() -> None:
    header = sign(SECRET, NOW, BODY)
    assert header.startswith("sha256=") and len(header) == len("sha256=") + 64
    assert verify_signature(SECRET, str(NOW), BODY, header, now=NOW + 10)
    assert verify_signature(SECRET, NOW, BODY.decode(), header, now=NOW)  # str body, int stamp


def test_wrong_secret_is_rejected() -> None:
    assert not verify_signature("other", NOW, BODY, sign(SECRET, NOW, BODY), now=NOW)


def test_tampered_body_is_rejected() -> None:
    header = sign(SECRET, NOW, BODY)
    assert not verify_signature(SECRET, NOW, BODY.replace(b"a1", b"a2"), header, now=NOW)


def test_tampered_timestamp_is_rejected() -> None:
    header = sign(SECRET, NOW, BODY)
    assert not verify_signature(SECRET, NOW + 1, BODY, header, now=NOW)


def test_stale_and_future_timestamps_are_rejected() -> None:
    header = sign(SECRET, NOW, BODY)
    assert not verify_signature(SECRET, NOW, BODY, header, now=NOW + 301)
    assert not verify_signature(SECRET, NOW, BODY, header, now=NOW - 301)
    assert verify_signature(SECRET, NOW, BODY, header, now=NOW + 3000, tolerance_s=3600)


def test_malformed_headers_and_timestamps_are_rejected() -> None:
    digest = sign(SECRET, NOW, BODY).removeprefix("sha256=")
    for header in (None, "", digest, "sha1=" + digest, "sha256=" + digest[:-1]):
        assert not verify_signature(SECRET, NOW, BODY, header, now=NOW)
    assert not verify_signature(SECRET, "yesterday", BODY, "sha256=" + digest, now=NOW)
