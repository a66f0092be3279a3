"""Virtual-key authentication from an in-memory cache.

The hot path hashes the presented key and looks the hash up in a dict: no
database round trip. A background task polls the key store for changes
(new, revoked, re-expired keys) every `refresh_s`. A key created a moment ago
by the CLI is found on a cache miss by one lookup in a worker thread; misses
are negatively cached so a flood of bad keys cannot reach the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass

from tollway.errors import AuthError
from tollway.ledger.keys import KeyInfo, KeyStore, hash_key

log = logging.getLogger(__name__)

_NEGATIVE_TTL_S = 1.0
# Re-read changes this far behind the newest one seen: a change committed late, or by a
# replica whose clock lags, is still picked up (applying a change twice is harmless).
_WATERMARK_OVERLAP_MS = 5_000
_NEGATIVE_MAX = 10_000


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the key and its place in the org tree."""

    key_id: str
    user: str
    team: str
    org: str
    role: str = "user"
    tags: tuple[str, ...] = ()
    expires_at_ms: int | None = None

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    @classmethod
    def from_key(cls, info: KeyInfo) -> Principal:
        return cls(
            info.key_id, info.user, info.team, info.org, info.role, info.tags, info.expires_at_ms
        )


def presented_key(headers: Mapping[str, str]) -> str | None:
    """The key from `Authorization: Bearer …` or `x-api-key`, whichever is present."""
    auth = headers.get("authorization")
    if auth:
        scheme, _, token = auth.partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return token.strip()
    return headers.get("x-api-key") or None


class KeyCache:
    """Maps key hashes to principals; refreshed from the `KeyStore` in the background."""

    def __init__(
        self, store: KeyStore, *, admin_key: str | None = None, refresh_s: float = 1.0
    ) -> None:
        self._store = store
        self._refresh_s = refresh_s
        self._by_hash: dict[str, Principal] = {}
        self._hash_of: dict[str, str] = {}  # key_id -> hash, to drop revoked keys
        self._negative: dict[str, float] = {}
        self._watermark = 0
        self._task: asyncio.Task[None] | None = None
        if admin_key:
            self._by_hash[hash_key(admin_key)] = Principal("admin", "admin", "*", "*", "admin")

    async def start(self) -> None:
        await asyncio.to_thread(self._apply_changes)
        self._task = asyncio.create_task(self._poll(), name="tollway-key-refresh")

    async def close(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def authenticate(self, headers: Mapping[str, str]) -> Principal:
        """The caller's principal; raises `AuthError` for a missing, unknown or expired key."""
        key = presented_key(headers)
        if key is None:
            raise AuthError(
                "Missing API key: send it as 'Authorization: Bearer <key>' or 'x-api-key'."
            )
        digest = hash_key(key)
        principal = self._by_hash.get(digest)
        if principal is None:
            principal = await self._lookup_miss(digest)
        if principal is None:
            raise AuthError("Invalid API key.")
        if principal.expires_at_ms is not None and principal.expires_at_ms <= time.time() * 1000:
            raise AuthError("This API key has expired.")
        return principal

    async def _lookup_miss(self, digest: str) -> Principal | None:
        now = time.monotonic()
        if self._negative.get(digest, 0.0) > now:
            return None
        info = await asyncio.to_thread(self._store.get_by_hash, digest)
        if info is None or info.revoked_at_ms is not None:
            if len(self._negative) >= _NEGATIVE_MAX:
                self._negative.clear()
            self._negative[digest] = now + _NEGATIVE_TTL_S
            return None
        self._remember(info, digest)
        return self._by_hash[digest]

    def _remember(self, info: KeyInfo, digest: str) -> None:
        self._by_hash[digest] = Principal.from_key(info)
        self._hash_of[info.key_id] = digest

    def _apply_changes(self) -> None:
        since = self._watermark - _WATERMARK_OVERLAP_MS
        for digest, info in self._store.changed_since_with_hashes(since):
            self._watermark = max(self._watermark, info.updated_at_ms)
            old = self._hash_of.pop(info.key_id, None)
            if old:
                self._by_hash.pop(old, None)
            if info.revoked_at_ms is None:
                self._remember(info, digest)

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self._refresh_s)
            try:
                await asyncio.to_thread(self._apply_changes)
            except Exception:  # keep serving from the cache; the next poll retries
                log.exception("refreshing the key cache failed")
