"""The running budget subsystem: counter store, engine, reconciler, policy refresh.

Built once at start from the settings and the policies stored through the admin
API; a background task reloads the policies when any replica changes them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine

from tollway.budgets.engine import BudgetEngine
from tollway.budgets.memory import MemoryCounterStore
from tollway.budgets.policies import Policies, load_policies
from tollway.budgets.reconcile import Reconciler
from tollway.budgets.store import CounterStore
from tollway.ledger.policies import PolicyStore
from tollway.settings import Settings

log = logging.getLogger(__name__)


class BudgetService:
    """Owns the budget engine and the tasks that keep it current."""

    def __init__(
        self, settings: Settings, policy_store: PolicyStore, ledger_engine: Engine
    ) -> None:
        self._settings = settings
        self._policies = policy_store
        self._ledger_engine = ledger_engine
        self._version = -1
        self._task: asyncio.Task[None] | None = None
        url = settings.resolved_redis_url
        self.store: CounterStore
        if url:
            from tollway.budgets.redis_store import RedisCounterStore

            self.store = RedisCounterStore(url)
        else:
            self.store = MemoryCounterStore()
        policies = self.load_policies()
        counters = settings.counters
        self.engine = BudgetEngine(
            self.store,
            policies.budgets,
            policies.rate_limits,
            policies.schedule,
            failure_mode=counters.failure_mode,
            open_fraction=str(counters.open_fraction),
            reservation_ttl_ms=settings.budget_defaults.reservation_ttl_s * 1000,
        )
        self.sources = policies.sources
        self.reconciler = Reconciler(self.engine, ledger_engine)
        self.steering_override: list[dict[str, Any]] | None = None
        # Called with the steering rules set through the admin API (None: the config's).
        self.on_steering: Callable[[list[dict[str, Any]] | None], None] | None = None

    def load_policies(self) -> Policies:
        """Config policies overlaid with the admin API's (parses; raises ConfigError)."""
        self._version = self._policies.version()
        steering = self._policies.get("steering", "rules")
        self.steering_override = steering["rules"] if steering is not None else None
        return load_policies(self._settings, self._policies)

    def apply(self, policies: Policies) -> None:
        self.engine.replace_specs(policies.budgets, policies.rate_limits)
        self.engine.schedule = policies.schedule
        self.sources = policies.sources
        if self.on_steering is not None:
            self.on_steering(self.steering_override)

    async def start(self) -> None:
        start = getattr(self.store, "start", None)
        if start is not None:
            await start()
        try:
            await self.reconciler.start()
        except Exception as exc:  # e.g. Redis down at start: the reconciler retries later
            log.warning("initial budget reconciliation failed: %s", exc)
        self._task = asyncio.create_task(self._watch(), name="tollway-policy-refresh")

    async def refresh(self) -> None:
        """Reload the policies now (the admin API calls this after a change)."""
        policies = await asyncio.to_thread(self.load_policies)
        self.apply(policies)
        fresh = [s for s in policies.budgets if policies.sources.get(s.id) == "api"]
        await self.reconciler.reconcile(fresh, only_empty=True)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.reconciler.close()
        close = getattr(self.store, "close", None)
        if close is not None:
            await close()

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            try:
                version = await asyncio.to_thread(self._policies.version)
                if version != self._version:
                    await self.refresh()
            except Exception:  # keep enforcing the last good policies
                log.exception("reloading budget policies failed")
