"""Stored prompt logs: redacted text with an expiry, and the audit of every read."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import orjson
from sqlalchemy import Engine, delete, insert, select

from tollway.ledger.schema import prompt_log_reads, prompt_logs


class PromptLogStore:
    """The `prompt_logs` and `prompt_log_reads` tables."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def write(self, entries: Sequence[dict[str, Any]]) -> None:
        """Insert log entries (already redacted); `findings` is a list, stored as JSON."""
        if not entries:
            return
        rows = [{**e, "findings": orjson.dumps(e.get("findings", [])).decode()} for e in entries]
        with self._engine.begin() as connection:
            connection.execute(insert(prompt_logs), rows)

    def get(self, request_id: str) -> dict[str, Any] | None:
        query = select(prompt_logs).where(prompt_logs.c.request_id == request_id)
        with self._engine.connect() as connection:
            row = connection.execute(query).mappings().first()
        if row is None:
            return None
        entry = dict(row)
        entry["findings"] = orjson.loads(entry["findings"])
        return entry

    def purge(self, now_ms: int | None = None) -> int:
        """Delete every entry past its retention; returns how many."""
        now = now_ms if now_ms is not None else int(time.time() * 1000)
        with self._engine.begin() as connection:
            result = connection.execute(
                delete(prompt_logs).where(prompt_logs.c.expires_at_ms <= now)
            )
        return int(result.rowcount or 0)

    def record_read(self, request_id: str, reader_key_id: str, role: str, granted: bool) -> None:
        """Audit one attempt to read a logged prompt (refused attempts too)."""
        with self._engine.begin() as connection:
            connection.execute(
                insert(prompt_log_reads).values(
                    read_at_ms=int(time.time() * 1000),
                    request_id=request_id,
                    reader_key_id=reader_key_id,
                    reader_role=role,
                    granted=granted,
                )
            )

    def reads(self, request_id: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        """The audit trail, newest first."""
        query = select(prompt_log_reads).order_by(prompt_log_reads.c.id.desc()).limit(limit)
        if request_id is not None:
            query = query.where(prompt_log_reads.c.request_id == request_id)
        with self._engine.connect() as connection:
            return [dict(r) for r in connection.execute(query).mappings()]
