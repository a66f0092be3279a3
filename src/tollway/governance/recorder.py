"""Prompt logging per org and team: `off`, `metadata` (no text) or `full` (redacted text).

The gateway hands each finished request over without waiting; a background task
scans the text for secrets and PII, redacts every finding (always, whatever the
mode), and writes the batch. Entries expire after the retention period and a
scheduled purge deletes them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

from tollway.gateway.apis import ApiSpec, prompt_text
from tollway.governance.detect import redact, scan
from tollway.ledger.prompt_logs import PromptLogStore
from tollway.settings import PromptLoggingConfig

log = logging.getLogger(__name__)

_MAX_PENDING = 10_000
_FLUSH_S = 0.2
_PURGE_S = 3600.0


@dataclass(slots=True)
class PendingLog:
    request_id: str
    created_at_ms: int
    org: str
    team: str
    user: str
    model: str
    mode: str
    api: ApiSpec
    body: dict[str, Any]
    response_text: str | None


class PromptRecorder:
    """Decides the logging mode of a request and writes its (redacted) log off the hot path."""

    def __init__(self, store: PromptLogStore, config: PromptLoggingConfig) -> None:
        self._store = store
        self._config = config
        self._retention_ms = int(config.retention_days * 86_400_000)
        self._pending: deque[PendingLog] = deque()
        self._tasks: list[asyncio.Task[None]] = []
        self.dropped = 0

    def mode_for(self, org: str, team: str, rule_mode: str | None = None) -> str:
        """A steering rule's `log` action, else the team's mode, the org's, the default."""
        if rule_mode is not None:
            return rule_mode
        config = self._config
        return config.teams.get(f"{org}/{team}") or config.orgs.get(org) or config.default

    def record(self, entry: PendingLog) -> None:
        """Queue one request's log (never blocks; sheds text, not the entry, when flooded)."""
        if entry.mode == "off":
            return
        if len(self._pending) >= _MAX_PENDING:
            self.dropped += 1
            return
        self._pending.append(entry)

    async def start(self) -> None:
        await asyncio.to_thread(self._store.purge)
        self._tasks = [
            asyncio.create_task(self._flush_loop(), name="tollway-prompt-logs"),
            asyncio.create_task(self._purge_loop(), name="tollway-prompt-purge"),
        ]

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.flush()

    async def flush(self) -> None:
        """Write everything queued so far."""
        batch = list(self._pending)
        self._pending.clear()
        if batch:
            await asyncio.to_thread(self._write, batch)

    def _write(self, batch: list[PendingLog]) -> None:
        self._store.write([self._entry(p) for p in batch])

    def _entry(self, p: PendingLog) -> dict[str, Any]:
        prompt = prompt_text(p.api, p.body)
        found = scan(prompt)
        response_found = scan(p.response_text) if p.response_text else None
        kinds = sorted(
            {f.kind for f in found}
            | ({f.kind for f in response_found} if response_found else set())
        )
        classes = {found.data_class, response_found.data_class if response_found else "clean"}
        data_class = "secret" if "secret" in classes else ("pii" if "pii" in classes else "clean")
        full = p.mode == "full"
        return {
            "request_id": p.request_id,
            "created_at_ms": p.created_at_ms,
            "expires_at_ms": p.created_at_ms + self._retention_ms,
            "org": p.org,
            "team": p.team,
            "user": p.user,
            "model": p.model,
            "mode": p.mode,
            "data_class": data_class,
            "findings": kinds,
            "prompt": redact(prompt, found) if full else None,
            "response": redact(p.response_text, response_found)
            if full and p.response_text is not None and response_found is not None
            else None,
        }

    async def _flush_loop(self) -> None:
        while True:
            await asyncio.sleep(_FLUSH_S)
            try:
                await self.flush()
            except Exception:
                log.exception("writing prompt logs failed")

    async def _purge_loop(self) -> None:
        while True:
            await asyncio.sleep(_PURGE_S)
            try:
                purged = await asyncio.to_thread(self._store.purge, int(time.time() * 1000))
                if purged:
                    log.info("purged %d prompt logs past retention", purged)
            except Exception:
                log.exception("purging prompt logs failed")
