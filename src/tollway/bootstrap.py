"""First-start provisioning: the admin key and the demo org's key.

Both are written to files under the data dir (mode 0600) so that a restart
shows the same keys; the key store itself only ever holds their hashes.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from tollway.ledger.keys import KeyStore, hash_key
from tollway.settings import Settings

DEMO_USER, DEMO_TEAM, DEMO_ORG = "alice", "platform", "demo"


def _write_secret(path: Path, value: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(value + "\n")


def ensure_admin_key(data_dir: Path) -> str:
    """`TOLLWAY_ADMIN_KEY`, or the key kept in the data dir (created on first start)."""
    from_env = os.environ.get("TOLLWAY_ADMIN_KEY")
    if from_env:
        return from_env
    path = data_dir / "admin-key"
    if path.exists():
        return path.read_text().strip()
    key = "tw-admin-" + secrets.token_urlsafe(32)
    _write_secret(path, key)
    return key


def ensure_demo_key(settings: Settings, store: KeyStore) -> str | None:
    """With the demo org enabled, the demo user's key (created on first start)."""
    if not settings.demo:
        return None
    path = settings.resolved_data_dir / "demo-key"
    if path.exists():
        key = path.read_text().strip()
        info = store.get_by_hash(hash_key(key))
        if info is not None and info.revoked_at_ms is None:
            return key
    key, _ = store.create(DEMO_USER, DEMO_TEAM, DEMO_ORG, name="demo key")
    _write_secret(path, key)
    return key
