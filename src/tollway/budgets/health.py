"""A health flag that keeps itself current: a probe re-run every interval, for as long as
the owner lives, not only at start.

The flag starts true (nothing is known to be wrong; `start` probes at once), goes false
as soon as the owner reports a failed call (`mark_down`) or a probe fails, and true again
only when a probe succeeds, so the hot path can read `healthy` (an attribute, no I/O) to
skip a store that is known to be down instead of waiting on it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable

__all__ = ["HealthChecker"]

log = logging.getLogger(__name__)


class HealthChecker:
    """Runs `probe` every `interval_s` (bounded by `timeout_s`) and keeps `healthy`."""

    def __init__(
        self,
        probe: Callable[[], Awaitable[object]],
        *,
        name: str = "counter store",
        interval_s: float = 1.0,
        timeout_s: float = 0.5,
        on_change: Callable[[bool], None] | None = None,
    ) -> None:
        self._probe = probe
        self.name = name
        self.interval_s = interval_s
        self.timeout_s = timeout_s
        self._on_change = on_change
        self.healthy = True
        self.last_error: str | None = None
        self.checked_at_ms = 0
        self.changed_at_ms = 0
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Probe once now, then keep probing in the background."""
        await self.check()
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name=f"health:{self.name}")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def check(self) -> bool:
        """Run the probe once and update the flag."""
        try:
            async with asyncio.timeout(self.timeout_s):
                await self._probe()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._set(False, f"{type(exc).__name__}: {exc}")
        else:
            self._set(True, None)
        self.checked_at_ms = time.time_ns() // 1_000_000
        return self.healthy

    def mark_down(self, error: BaseException | str) -> None:
        """A call just failed: unhealthy until the next successful probe."""
        text = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
        self._set(False, text)

    def _set(self, healthy: bool, error: str | None) -> None:
        self.last_error = error
        if healthy == self.healthy:
            return
        self.healthy = healthy
        self.changed_at_ms = time.time_ns() // 1_000_000
        if healthy:
            log.info("%s is reachable again", self.name)
        else:
            log.warning("%s is unreachable: %s", self.name, error)
        if self._on_change is not None:
            self._on_change(healthy)

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            await self.check()

    def __repr__(self) -> str:
        state = "healthy" if self.healthy else f"down ({self.last_error})"
        return f"<HealthChecker {self.name}: {state}>"
