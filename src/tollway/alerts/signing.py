"""Webhook signatures: HMAC-SHA256 over the timestamp and the exact body bytes.

The sender puts the Unix time in seconds in ``x-tollway-timestamp`` and signs
``f"{timestamp}.{body}"`` (the header value, a dot, then the raw request body
bytes as sent) with the shared secret::

    x-tollway-signature: sha256=<lowercase hex HMAC-SHA256>

A receiver recomputes the HMAC over the bytes it received (before any JSON
parsing), compares in constant time, and rejects timestamps more than
`tolerance_s` away from its clock, which bounds replays of a captured request.
"""

from __future__ import annotations

import hashlib
import hmac
import time

SCHEME = "sha256="


def sign(secret: str, timestamp: int | str, body: bytes) -> str:
    """The `x-tollway-signature` header value for `body` sent at `timestamp`."""
    message = str(timestamp).encode() + b"." + body
    return SCHEME + hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def verify_signature(
    secret: str,
    timestamp: int | str,
    body: bytes | str,
    header: str | None,
    *,
    tolerance_s: float = 300,
    now: float | None = None,
) -> bool:
    """True if `header` signs `body` at `timestamp` with `secret`, and the timestamp is fresh."""
    if not header or not header.startswith(SCHEME):
        return False
    stamp = str(timestamp).strip()
    try:
        sent_at = int(stamp)
    except ValueError:
        return False
    current = time.time() if now is None else now
    if abs(current - sent_at) > tolerance_s:
        return False
    raw = body.encode() if isinstance(body, str) else body
    expected = sign(secret, stamp, raw)  # the text as sent, not re-rendered
    return hmac.compare_digest(expected.encode(), header.strip().encode())
