"""Virtual API keys: created once, stored only as a SHA-256 hash, revocable, expirable.

The gateway authenticates from an in-memory cache of `KeyInfo` that it refreshes
with `changed_since()`; nothing here runs on the request path.
"""

from __future__ import annotations

import builtins
import hashlib
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import Engine, case, func, insert, select, update

from tollway.ledger.schema import api_keys

KEY_PREFIX = "tw-"
# `admin` administers everything; `org_admin` and `team_admin` may read the prompt logs
# of their own org or team (and nothing else yet).
ROLES = ("user", "admin", "org_admin", "team_admin")
_DISPLAY_PREFIX_LEN = 10


def hash_key(plaintext: str) -> str:
    """The stored form of a key: SHA-256 of its plaintext, in hex."""
    return hashlib.sha256(plaintext.encode()).hexdigest()


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass(frozen=True, slots=True)
class KeyInfo:
    """Everything known about a key except its secret."""

    key_id: str
    prefix: str
    name: str | None
    org: str
    team: str
    user: str
    role: str
    tags: tuple[str, ...]
    created_at_ms: int
    expires_at_ms: int | None
    revoked_at_ms: int | None
    updated_at_ms: int

    def is_active(self, now_ms: int) -> bool:
        """Not revoked and not expired at `now_ms`."""
        return self.revoked_at_ms is None and (
            self.expires_at_ms is None or now_ms < self.expires_at_ms
        )


class KeyStore:
    """API keys in the `api_keys` table."""

    def __init__(self, engine: Engine, *, clock: Callable[[], int] = _now_ms) -> None:
        self._engine = engine
        self._clock = clock

    def create(
        self,
        user: str,
        team: str,
        org: str,
        *,
        name: str | None = None,
        role: str = "user",
        expires_at_ms: int | None = None,
        tags: Iterable[str] = (),
    ) -> tuple[str, KeyInfo]:
        """Create a key; returns its plaintext (shown once, never stored) and its info."""
        if role not in ROLES:
            raise ValueError(f"unknown role {role!r}; use one of {ROLES}")
        plaintext = KEY_PREFIX + secrets.token_urlsafe(32)
        now = self._clock()
        info = KeyInfo(
            key_id="key_" + secrets.token_hex(6),
            prefix=plaintext[:_DISPLAY_PREFIX_LEN],
            name=name,
            org=org,
            team=team,
            user=user,
            role=role,
            tags=tuple(tags),
            created_at_ms=now,
            expires_at_ms=expires_at_ms,
            revoked_at_ms=None,
            updated_at_ms=now,
        )
        row = {
            "key_id": info.key_id,
            "key_hash": hash_key(plaintext),
            "prefix": info.prefix,
            "name": info.name,
            "org": info.org,
            "team": info.team,
            "user": info.user,
            "role": info.role,
            "tags": orjson.dumps(list(info.tags)).decode(),
            "created_at_ms": info.created_at_ms,
            "expires_at_ms": info.expires_at_ms,
            "revoked_at_ms": None,
            "updated_at_ms": info.updated_at_ms,
        }
        with self._engine.begin() as connection:
            connection.execute(insert(api_keys), row)
        return plaintext, info

    def get(self, key_id: str) -> KeyInfo | None:
        return self._one(api_keys.c.key_id == key_id)

    def hash_of(self, key_id: str) -> str | None:
        """The stored hash of a key (for a cache indexed by hash), or None."""
        query = select(api_keys.c.key_hash).where(api_keys.c.key_id == key_id)
        with self._engine.connect() as connection:
            return connection.execute(query).scalar_one_or_none()

    def changed_since_with_hashes(self, updated_at_ms: int) -> builtins.list[tuple[str, KeyInfo]]:
        """`changed_since`, each key paired with its stored hash (for a cache indexed by hash)."""
        query = (
            select(api_keys)
            .where(api_keys.c.updated_at_ms > updated_at_ms)
            .order_by(api_keys.c.updated_at_ms, api_keys.c.key_id)
        )
        with self._engine.connect() as connection:
            rows = connection.execute(query).mappings().all()
        return [(row["key_hash"], _key_info(row)) for row in rows]

    def get_by_hash(self, key_hash: str) -> KeyInfo | None:
        """The key whose hash is `key_hash`, revoked or expired ones included."""
        return self._one(api_keys.c.key_hash == key_hash)

    def list(
        self, org: str | None = None, team: str | None = None, include_revoked: bool = False
    ) -> builtins.list[KeyInfo]:
        """Keys, oldest first, optionally of one org and team."""
        query = select(api_keys).order_by(api_keys.c.created_at_ms, api_keys.c.key_id)
        if org is not None:
            query = query.where(api_keys.c.org == org)
        if team is not None:
            query = query.where(api_keys.c.team == team)
        if not include_revoked:
            query = query.where(api_keys.c.revoked_at_ms.is_(None))
        return self._many(query)

    def revoke(self, key_id: str) -> bool:
        """Revoke a key; False if it does not exist or was already revoked."""
        now = self._clock()
        return self._update(key_id, now, {"revoked_at_ms": now}, only_active=True)

    def set_expiry(self, key_id: str, expires_at_ms: int | None) -> bool:
        """Set (or with None, remove) a key's expiry; False if the key does not exist."""
        return self._update(key_id, self._clock(), {"expires_at_ms": expires_at_ms})

    def changed_since(self, updated_at_ms: int) -> builtins.list[KeyInfo]:
        """Keys created or changed after `updated_at_ms`, oldest change first.

        For a cache that polls: pass the newest `updated_at_ms` seen minus a few
        seconds, so changes committed late or by a replica with a slightly late
        clock are not missed; applying a change twice is harmless.
        """
        return [info for _, info in self.changed_since_with_hashes(updated_at_ms)]

    def count(self, include_revoked: bool = True) -> int:
        query = select(func.count()).select_from(api_keys)
        if not include_revoked:
            query = query.where(api_keys.c.revoked_at_ms.is_(None))
        with self._engine.connect() as connection:
            return int(connection.execute(query).scalar_one())

    def _update(
        self, key_id: str, now: int, values: dict[str, Any], *, only_active: bool = False
    ) -> bool:
        # updated_at_ms strictly increases on every change, even within one millisecond.
        bumped = case((api_keys.c.updated_at_ms >= now, api_keys.c.updated_at_ms + 1), else_=now)
        statement = (
            update(api_keys)
            .where(api_keys.c.key_id == key_id)
            .values(**values, updated_at_ms=bumped)
        )
        if only_active:
            statement = statement.where(api_keys.c.revoked_at_ms.is_(None))
        with self._engine.begin() as connection:
            return connection.execute(statement).rowcount > 0

    def _one(self, condition: Any) -> KeyInfo | None:
        found = self._many(select(api_keys).where(condition))
        return found[0] if found else None

    def _many(self, query: Any) -> builtins.list[KeyInfo]:
        with self._engine.connect() as connection:
            rows = connection.execute(query).mappings().all()
        return [_key_info(row) for row in rows]


def _key_info(row: Any) -> KeyInfo:
    return KeyInfo(
        key_id=row["key_id"],
        prefix=row["prefix"],
        name=row["name"],
        org=row["org"],
        team=row["team"],
        user=row["user"],
        role=row["role"],
        tags=tuple(orjson.loads(row["tags"])),
        created_at_ms=row["created_at_ms"],
        expires_at_ms=row["expires_at_ms"],
        revoked_at_ms=row["revoked_at_ms"],
        updated_at_ms=row["updated_at_ms"],
    )
