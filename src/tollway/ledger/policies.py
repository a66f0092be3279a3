"""Policies declared through the admin API, stored beside the ledger.

A policy is a (kind, id) → mapping, in the same shape the YAML config takes,
so the two sources merge with one parser. Every change bumps `updated_at_ms`
(deletes leave a tombstone), which is what replicas poll to notice changes.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import orjson
from sqlalchemy import Engine, func, select
from sqlalchemy.dialects import postgresql, sqlite

from tollway.ledger.schema import policies

KINDS = ("budget", "rate_limit", "peak_schedule", "steering")


class PolicyStore:
    """CRUD over the `policies` table."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def put(self, kind: str, policy_id: str, body: Mapping[str, Any]) -> None:
        """Create or replace a policy."""
        self._upsert(kind, policy_id, orjson.dumps(dict(body)).decode(), deleted=False)

    def delete(self, kind: str, policy_id: str) -> bool:
        """Delete a policy; False if there was none."""
        if self.get(kind, policy_id) is None:
            return False
        self._upsert(kind, policy_id, "{}", deleted=True)
        return True

    def get(self, kind: str, policy_id: str) -> dict[str, Any] | None:
        query = select(policies.c.body).where(
            policies.c.kind == kind,
            policies.c.policy_id == policy_id,
            policies.c.deleted_at_ms.is_(None),
        )
        with self._engine.connect() as connection:
            body = connection.execute(query).scalar_one_or_none()
        return orjson.loads(body) if body is not None else None

    def list(self, kind: str) -> list[tuple[str, dict[str, Any]]]:
        """Live policies of `kind`, by id."""
        query = (
            select(policies.c.policy_id, policies.c.body)
            .where(policies.c.kind == kind, policies.c.deleted_at_ms.is_(None))
            .order_by(policies.c.policy_id)
        )
        with self._engine.connect() as connection:
            return [(row[0], orjson.loads(row[1])) for row in connection.execute(query)]

    def version(self) -> int:
        """Changes anywhere move this forward (for pollers)."""
        query = select(func.coalesce(func.max(policies.c.updated_at_ms), 0))
        with self._engine.connect() as connection:
            return int(connection.execute(query).scalar_one())

    def _upsert(self, kind: str, policy_id: str, body: str, *, deleted: bool) -> None:
        if kind not in KINDS:
            raise ValueError(f"unknown policy kind {kind!r}")
        now = time.time_ns() // 1_000_000
        with self._engine.begin() as connection:
            # strictly increasing, even for two changes within one millisecond
            latest = connection.execute(
                select(func.coalesce(func.max(policies.c.updated_at_ms), 0))
            ).scalar_one()
            stamp = max(now, int(latest) + 1)
            dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
            values = {
                "kind": kind,
                "policy_id": policy_id,
                "body": body,
                "updated_at_ms": stamp,
                "deleted_at_ms": stamp if deleted else None,
            }
            statement = dialect.insert(policies).values(**values)
            statement = statement.on_conflict_do_update(
                index_elements=["kind", "policy_id"],
                set_={k: statement.excluded[k] for k in ("body", "updated_at_ms", "deleted_at_ms")},
            )
            connection.execute(statement)
