"""Virtual keys: hash-only storage, listing, revocation, expiry and change polling."""

from __future__ import annotations

from pathlib import Path

import pytest

from tollway.ledger import Database, KeyStore, hash_key


class Clock:
    def __init__(self, now_ms: int = 1_000_000) -> None:
        self.now_ms = now_ms

    def __call__(self) -> int:
        return self.now_ms


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(db: Database, clock: Clock) -> KeyStore:
    return KeyStore(db.engine, clock=clock)


def test_create_stores_only_the_hash(store: KeyStore, db: Database, db_path: Path) -> None:
    plaintext, info = store.create("ada", "payments", "acme", name="laptop", tags=("dev",))
    assert plaintext.startswith("tw-") and len(plaintext) > 40
    assert info.key_id.startswith("key_") and len(info.key_id) == 4 + 12
    assert info.prefix == plaintext[:10]
    assert (info.user, info.team, info.org, info.role) == ("ada", "payments", "acme", "user")
    assert info.tags == ("dev",) and info.name == "laptop"
    assert store.get_by_hash(hash_key(plaintext)) == info
    assert store.get(info.key_id) == info
    assert store.hash_of(info.key_id) == hash_key(plaintext)
    assert store.get_by_hash(hash_key(plaintext + "x")) is None

    db.close()  # so every byte is in the files we read
    stored = b"".join(p.read_bytes() for p in db_path.parent.iterdir() if p.is_file())
    assert hash_key(plaintext).encode() in stored
    assert plaintext.encode() not in stored
    assert plaintext[10:].encode() not in stored


def test_keys_are_unique(store: KeyStore) -> None:
    created = [store.create("u", "t", "o") for _ in range(20)]
    assert len({key for key, _ in created}) == 20
    assert len({info.key_id for _, info in created}) == 20
    assert store.count() == 20


def test_unknown_role_is_rejected(store: KeyStore) -> None:
    with pytest.raises(ValueError, match="root"):
        store.create("u", "t", "o", role="root")


def test_list_filters_by_org_and_team(store: KeyStore, clock: Clock) -> None:
    _, a = store.create("u1", "t1", "o1")
    clock.now_ms += 1
    _, b = store.create("u2", "t2", "o1", role="admin")
    clock.now_ms += 1
    _, c = store.create("u3", "t1", "o2")
    assert store.list() == [a, b, c]
    assert store.list(org="o1") == [a, b]
    assert store.list(team="t1") == [a, c]
    assert store.list(org="o1", team="t2") == [b]
    assert b.role == "admin"


def test_revoke(store: KeyStore, clock: Clock) -> None:
    plaintext, info = store.create("u", "t", "o")
    clock.now_ms += 5
    assert store.revoke(info.key_id) is True
    assert store.revoke(info.key_id) is False  # already revoked
    assert store.revoke("key_missing") is False
    revoked = store.get_by_hash(hash_key(plaintext))
    assert revoked is not None and revoked.revoked_at_ms == clock.now_ms
    assert not revoked.is_active(clock.now_ms)
    assert store.list() == []
    assert store.list(include_revoked=True) == [revoked]
    assert store.count() == 1 and store.count(include_revoked=False) == 0


def test_expiry(store: KeyStore, clock: Clock) -> None:
    _, info = store.create("u", "t", "o", expires_at_ms=clock.now_ms + 1000)
    assert info.is_active(clock.now_ms + 999)
    assert not info.is_active(clock.now_ms + 1000)
    assert store.set_expiry(info.key_id, clock.now_ms + 10)
    changed = store.get(info.key_id)
    assert changed is not None and changed.expires_at_ms == clock.now_ms + 10
    assert store.set_expiry(info.key_id, None)
    forever = store.get(info.key_id)
    assert forever is not None and forever.is_active(2**62)
    assert store.set_expiry("key_missing", 1) is False


def test_changed_since_sees_every_change(store: KeyStore, clock: Clock) -> None:
    _, a = store.create("u1", "t", "o")
    _, b = store.create("u2", "t", "o")  # same millisecond as a
    assert {k.key_id for k in store.changed_since(0)} == {a.key_id, b.key_id}
    watermark = max(k.updated_at_ms for k in store.changed_since(0))
    assert store.changed_since(watermark) == []

    # The clock does not move: updated_at_ms must still increase on each change.
    store.revoke(a.key_id)
    changes = store.changed_since(watermark)
    assert [k.key_id for k in changes] == [a.key_id]
    assert changes[0].revoked_at_ms is not None
    watermark = changes[0].updated_at_ms
    store.set_expiry(b.key_id, clock.now_ms + 60_000)
    store.set_expiry(b.key_id, clock.now_ms + 120_000)
    changes = store.changed_since(watermark)
    assert [(k.key_id, k.expires_at_ms) for k in changes] == [(b.key_id, clock.now_ms + 120_000)]
    assert changes[0].updated_at_ms > watermark
