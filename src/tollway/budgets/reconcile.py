"""Budget counters recomputed from the ledger, the source of truth.

The counter store is a fast cache of what the ledger says; when it may have lost
or missed charges (the gateway restarted with in-process counters, Redis came
back empty after an outage, settles were dropped while it was down), the
`Reconciler` sets each affected budget's current-window `used` to the ledger's
weighted sum. Reconciling is exact when the budget is quiet; under load it can
miss or double-count the few requests settling at that instant, which the next
reconciliation (or the window's end) corrects.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable
from typing import Any

from sqlalchemy import Engine, and_, cast, func, select
from sqlalchemy.types import BigInteger

from tollway.budgets.engine import BudgetEngine
from tollway.budgets.memory import wall_clock_ms
from tollway.budgets.model import BudgetSpec
from tollway.ledger.schema import requests

log = logging.getLogger(__name__)

_WEIGHT_MILLI = cast(func.round(requests.c.peak_weight * 1000), BigInteger)


def _weighted(column: Any) -> Any:
    # ceil(amount * weight), as the engine charges it, in integer arithmetic
    return (column * _WEIGHT_MILLI + 999) // 1000


_UNIT_AMOUNT: dict[str, Any] = {
    "usd_actual": requests.c.weighted_charge_pusd,
    "usd_list": _weighted(requests.c.list_cost_pusd),
    "tokens_input": _weighted(requests.c.input_tokens),
    "tokens_output": _weighted(requests.c.output_tokens),
    "tokens_total": _weighted(requests.c.input_tokens + requests.c.output_tokens),
}


def used_from_ledger(engine: Engine, spec: BudgetSpec, now_ms: int) -> int:
    """The weighted charge of every request on `spec`'s subject in its current window."""
    start, end = spec.window.bounds(now_ms)
    conditions = [requests.c.started_at_ms >= start, requests.c.started_at_ms < end]
    if spec.scope == "key":
        conditions.append(requests.c.key_id == spec.subject)
    elif spec.scope == "tag":
        conditions.append(requests.c.tags.like(f'%"{spec.subject}"%'))
    else:
        parts = spec.subject.split("/")
        for column, value in zip(("org", "team", "user"), parts, strict=False):
            conditions.append(requests.c[column] == value)
    query = select(func.coalesce(func.sum(_UNIT_AMOUNT[spec.unit]), 0)).where(and_(*conditions))
    with engine.connect() as connection:
        return int(connection.execute(query).scalar_one())


class Reconciler:
    """Keeps the engine's counters in line with the ledger after restarts and outages."""

    def __init__(
        self, engine: BudgetEngine, ledger_engine: Engine, *, interval_s: float = 1.0
    ) -> None:
        self._engine = engine
        self._ledger = ledger_engine
        self._interval_s = interval_s
        self._was_healthy = True
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Reconcile every budget the store knows nothing of, then watch for outages."""
        await self.reconcile(self._budgets(), only_empty=True)
        self._task = asyncio.create_task(self._loop(), name="tollway-budget-reconcile")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def reconcile(self, specs: Iterable[BudgetSpec], *, only_empty: bool = False) -> None:
        """Set each spec's used amount to the ledger's (if `only_empty`, where the store has 0)."""
        chosen = list(specs)
        if not chosen:
            return
        if only_empty:
            states = await self._engine.usage(chosen)
            chosen = [s.spec for s in states if s.used == 0 and isinstance(s.spec, BudgetSpec)]
        now = wall_clock_ms()
        for spec in chosen:
            used = await asyncio.to_thread(used_from_ledger, self._ledger, spec, now)
            await self._engine.reconcile(spec.id, used)

    def _budgets(self) -> list[BudgetSpec]:
        return [s for s in self._engine.specs if isinstance(s, BudgetSpec)]

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self._interval_s)
            health = self._engine.health
            healthy = health is None or health.healthy
            try:
                if healthy and not self._was_healthy:
                    # The store is back and may have lost everything: rebuild from the ledger.
                    await self.reconcile(self._budgets(), only_empty=True)
                if healthy:
                    pending = set(self._engine.pending_reconciliation())
                    await self.reconcile(s for s in self._budgets() if s.id in pending)
            except Exception:  # the next round retries
                log.exception("budget reconciliation failed")
                continue
            self._was_healthy = healthy
