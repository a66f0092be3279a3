"""The insight jobs a gateway runs in the background: alerts and the gaming review list.

Every `alerts.evaluate_every_s`: budget and forecast alerts from the budgets' live state,
and spike alerts on each 5-minute bucket closed since the last run. Every
`detection.evaluate_every_s`: the review list is rescanned for today and yesterday.
Database work runs in threads; nothing here touches the request path. New alerts are
stored first, then handed to the dispatcher, whose delivery outcomes are recorded on the
alert. With several replicas, run the jobs on one (`insights.jobs: false` elsewhere).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import Engine

from tollway.alerts import AlertDispatcher, AlertSink, DeliveryResult
from tollway.budgets.engine import BudgetEngine
from tollway.insights.budget_alerts import budget_alerts, budget_context
from tollway.insights.config import InsightsConfig
from tollway.insights.flag_scan import DAY_MS, flag_days
from tollway.insights.spike_alerts import SpikeAlerts
from tollway.ledger.alerts import AlertDraft, AlertStore

log = logging.getLogger("tollway.insights")
_BUDGET_KINDS = ("budget", "forecast")


class InsightJobs:
    """Runs the periodic insight jobs of one gateway process."""

    def __init__(
        self,
        engine: Engine,
        config: InsightsConfig,
        budgets: BudgetEngine | None,
        sinks: Sequence[AlertSink] = (),
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._engine = engine
        self._config = config
        self._budgets = budgets
        self._dispatcher = AlertDispatcher(sinks, on_result=self.record_delivery) if sinks else None
        self._clock = clock
        self.store = AlertStore(engine)
        self.spikes = (
            SpikeAlerts(engine, config.alerts.spikes) if config.alerts.spikes.enabled else None
        )
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        """Start delivery and the periodic loops (baselines warm up in the background)."""
        if self._dispatcher is not None:
            self._dispatcher.start()
        detection = self._config.detection
        self._tasks = [
            asyncio.create_task(self._alert_loop()),
            asyncio.create_task(self._every(detection.evaluate_every_s, self.scan_flags)),
        ]

    async def _alert_loop(self) -> None:
        if self.spikes is not None:
            try:
                hours = await asyncio.to_thread(self.spikes.warm_up, self._now())
                log.info("spike baselines seeded from %d hours of rollups", hours)
                # The detectors' open alerts did not survive the restart: close the stored
                # ones rather than leave them open forever; a spike still going reopens.
                await asyncio.to_thread(
                    self.store.resolve_all, ("spike", "team_spike"), self._now(), "restart"
                )
            except Exception:
                log.exception("seeding the spike baselines failed; they start empty")
        await self._every(self._config.alerts.evaluate_every_s, self.evaluate_alerts)

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._dispatcher is not None:
            await self._dispatcher.close(timeout_s=5)

    async def evaluate_alerts(self) -> list[dict[str, Any]]:
        """One round of budget, forecast and spike alerts; returns the alerts opened."""
        now = self._now()
        opened: list[dict[str, Any]] = []
        states = await self._budgets.usage() if self._budgets is not None else []
        if self._budgets is not None:  # no drafts resolves what is open (budgets removed)
            settings = self._config.alerts.budgets
            drafts = budget_alerts(states, settings.thresholds_pct, forecast=settings.forecast)
            opened += await asyncio.to_thread(self._apply_budget_drafts, drafts, now)
        if self.spikes is not None:
            context = budget_context(states)
            opened += await asyncio.to_thread(self.spikes.evaluate, self.store, now, context)
        for alert in opened:
            self._deliver(alert)
        return opened

    async def scan_flags(self) -> int:
        """Rescan today and yesterday for gamed user-days; returns the new flags."""
        now = self._now()
        today = now - now % DAY_MS
        days = (today - DAY_MS, today)
        detection, impact = self._config.detection, self._config.impact
        return await asyncio.to_thread(flag_days, self._engine, days, detection, impact, now)

    def _apply_budget_drafts(self, drafts: list[AlertDraft], now: int) -> list[dict[str, Any]]:
        opened = []
        current = {d.dedup_key for d in drafts}
        for draft in drafts:
            alert = self.store.open(draft, now)
            if alert is not None:
                opened.append(alert)
        # A window that rolled over (or a budget that was raised) resolves its old alerts.
        for key in self.store.open_keys():
            if key.startswith(_BUDGET_KINDS) and key not in current:
                self.store.resolve(key, now)
        return opened

    def _deliver(self, alert: dict[str, Any]) -> None:
        if self._dispatcher is None:
            return
        payload = {
            "id": alert["alert_id"],
            "kind": alert["kind"],
            "severity": alert["severity"],
            "title": alert["title"],
            "summary": alert["title"],
            "scope": alert["scope"],
            "subject": alert["subject"],
            "org": alert["org"],
            "team": alert["team"],
            "opened_at_ms": alert["opened_at_ms"],
            "evidence": alert["evidence"],
        }
        if not self._dispatcher.submit(payload):
            log.warning("alert %s not queued for delivery: queue full", alert["alert_id"])

    def record_delivery(self, result: DeliveryResult) -> None:
        """`AlertDispatcher.on_result`: keep each sink's outcome on the alert (in a thread)."""
        outcome = {
            "ok": result.ok,
            "attempts": result.attempts,
            "error": result.error,
            "at_ms": result.delivered_at_ms or self._now(),
        }
        loop = asyncio.get_running_loop()
        task = loop.run_in_executor(
            None, self.store.record_delivery, result.alert_id, result.sink, outcome
        )
        task.add_done_callback(_log_failure)

    async def _every(self, seconds: float, job: Callable[[], Any]) -> None:
        while True:
            await asyncio.sleep(seconds)
            try:
                await job()
            except Exception:  # a failed round must not stop the next one
                log.exception("insight job %s failed", getattr(job, "__name__", job))

    def _now(self) -> int:
        return int(self._clock() * 1000)


def _log_failure(future: asyncio.Future[None]) -> None:
    if not future.cancelled() and future.exception() is not None:
        log.error("recording an alert delivery failed", exc_info=future.exception())
