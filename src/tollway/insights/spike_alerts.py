"""Spike alerts from the ledger: closed buckets in, stored alerts with evidence out.

Two detectors (5-minute and 1-hour buckets) judge weighted tokens and cost per user,
team and org. At start their seasonal baselines are seeded from the hourly rollups
(weighted tokens there are raw tokens times the hour's average peak weight), so a restart
does not go blind for weeks. Each closed 5-minute bucket (closed = ended `LAG_MS` ago, so
the ledger has it) is read from `requests` once; hours are summed from their buckets.
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from collections.abc import Mapping
from typing import Any

import orjson
from sqlalchemy import Engine, func, select

from tollway.insights.buckets import EntityKey, Values, bucket_values, hourly_history
from tollway.insights.config import SpikeAlertConfig
from tollway.insights.spikes import (
    ROLLUP_METRIC,
    MetricLimits,
    SpikeConfig,
    SpikeDetector,
    SpikeEvent,
)
from tollway.ledger.alerts import AlertDraft, AlertStore
from tollway.ledger.schema import requests

log = logging.getLogger("tollway.insights")
FIVE_MS = 300_000
HOUR_MS = 3_600_000
WEEK_MS = 7 * 24 * HOUR_MS
LAG_MS = 30_000  # a bucket is read this long after it ends: the ledger lags by milliseconds
TAG_SAMPLE = 2_000  # largest requests whose tags are counted for an alert's evidence
MAX_CATCH_UP = 24  # buckets read per round after a pause; older ones are skipped
_UNITS = {"weighted_tokens": "weighted tokens", "cost_usd": "USD"}


class SpikeAlerts:
    """Feeds closed buckets to the detectors and turns their events into stored alerts."""

    def __init__(self, engine: Engine, config: SpikeAlertConfig) -> None:
        self._engine = engine
        common: dict[str, Any] = {
            "weeks": config.weeks,
            "z_open": config.z_score,
            "ratio_open": config.ratio,
            "k": config.k,
            "m": config.m,
            "resolve_run": config.recover_buckets,
            "cooldown_ms": int(config.cooldown_minutes * 60_000),
            "rollup_min_users": config.team_incident_users,
        }
        self.five = SpikeDetector(
            SpikeConfig.five_minute(
                metrics={
                    "weighted_tokens": MetricLimits(config.min_excess_tokens_5m),
                    "cost_usd": MetricLimits(config.min_excess_usd_5m),
                },
                **common,
            )
        )
        self.hourly = SpikeDetector(
            SpikeConfig.hourly(
                metrics={
                    "weighted_tokens": MetricLimits(config.min_excess_tokens_1h),
                    "cost_usd": MetricLimits(config.min_excess_usd_1h),
                },
                **common,
            )
        )
        self._weeks = config.weeks
        self.next_bucket_ms: int | None = None
        self._budgets: Mapping[str, Mapping[str, Any]] = {}
        self._hour: dict[EntityKey, dict[str, float]] = defaultdict(
            lambda: {"weighted_tokens": 0.0, "cost_usd": 0.0}
        )

    def warm_up(self, now_ms: int) -> int:
        """Seed both baselines with the past weeks' hourly rollups; returns hours read."""
        hour_now = now_ms - now_ms % HOUR_MS
        history = hourly_history(self._engine, hour_now - self._weeks * WEEK_MS, hour_now)
        for hour, values in history.items():
            for (kind, eid, _), metrics in values.items():
                for metric, total in metrics.items():
                    self.five.baseline.seed_hour((kind, eid), metric, hour, total)
                    self.hourly.baseline.seed_hour((kind, eid), metric, hour, total)
        # Start with the current hour, read from its first bucket on.
        self.next_bucket_ms = hour_now
        return len(history)

    def evaluate(
        self,
        store: AlertStore,
        now_ms: int,
        budgets: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> list[dict[str, Any]]:
        """Judge every bucket closed since the last call; returns the alerts newly opened.

        `budgets` (from `budget_context`) adds the subject's budget use to the evidence."""
        self._budgets = budgets or {}
        if self.next_bucket_ms is None:
            self.warm_up(now_ms)
        assert self.next_bucket_ms is not None
        last_closed = (now_ms - LAG_MS) // FIVE_MS * FIVE_MS - FIVE_MS
        start = max(self.next_bucket_ms, last_closed - (MAX_CATCH_UP - 1) * FIVE_MS)
        opened: list[dict[str, Any]] = []
        for t in range(start, last_closed + 1, FIVE_MS):
            values = bucket_values(self._engine, t, t + FIVE_MS)
            opened += self._store(store, self.five.observe(t, values), values, now_ms)
            for key, metrics in values.items():
                hour = self._hour[key]
                for metric, value in metrics.items():
                    hour[metric] += value
            if (t + FIVE_MS) % HOUR_MS == 0:
                hour_values = dict(self._hour)
                self._hour.clear()
                events = self.hourly.observe(t + FIVE_MS - HOUR_MS, hour_values)
                opened += self._store(store, events, hour_values, now_ms)
            self.next_bucket_ms = t + FIVE_MS
        return opened

    def _store(
        self, store: AlertStore, events: list[SpikeEvent], values: Values, now_ms: int
    ) -> list[dict[str, Any]]:
        opened = []
        for event in events:
            key = _dedup_key(event)
            if event.type == "resolved":
                store.resolve(key, now_ms, _evidence(event))
                continue
            draft = self._draft(event, key, values)
            alert = store.open(draft, now_ms)
            if alert is not None:
                opened.append(alert)
        return opened

    def _draft(self, event: SpikeEvent, key: str, values: Values) -> AlertDraft:
        kind, eid = event.entity
        org = eid.split("/")[0]
        team = "/".join(eid.split("/")[:2]) if kind in ("user", "team") else None
        width = "5m" if event.width_ms == FIVE_MS else "1h"
        evidence = _evidence(event)
        if event.metric == ROLLUP_METRIC:
            title = f"Team {eid}: {len(event.members)} members spiking together ({width})"
            return AlertDraft(key, "team_spike", kind, eid, org, team, "warning", title, evidence)
        assert event.evidence is not None
        ev = event.evidence
        figures = next((m for (k, i, _), m in values.items() if (k, i) == (kind, eid)), {})
        evidence["dollar_impact_usd"] = _dollar_impact(event.metric, ev.excess, figures)
        evidence.update(_contributors(self._engine, kind, eid, ev.bucket_start_ms, event.width_ms))
        evidence.update(self._budgets.get(eid, {}))
        ratio = f"{ev.ratio:.1f}x" if ev.ratio != float("inf") else "from nothing to"
        title = (
            f"{kind.capitalize()} {eid}: {ratio} the usual {_UNITS[event.metric]} "
            f"({ev.actual:,.0f} vs {ev.expected:,.0f} expected, {width})"
        )
        severity = "critical" if ev.ratio >= 10 else "warning"
        return AlertDraft(key, "spike", kind, eid, org, team, severity, title, evidence)


def _dedup_key(event: SpikeEvent) -> str:
    kind, eid = event.entity
    return f"spike:{kind}:{eid}:{event.metric}:{event.width_ms}"


def _evidence(event: SpikeEvent) -> dict[str, Any]:
    out: dict[str, Any] = {
        "metric": event.metric,
        "bucket_ms": event.width_ms,
        "bucket_start_ms": event.bucket_start_ms,
        "event": event.type,
        "detector_alert_id": event.alert_id,
    }
    if event.incident_id:
        out["team_incident"] = event.incident_id
    if event.members:
        out["members"] = [m._asdict() for m in event.members]
    ev = event.evidence
    if ev is not None:
        out.update(
            actual=ev.actual,
            expected=ev.expected,
            band=[ev.lower, ev.upper],
            score=ev.score,
            ratio=ev.ratio if ev.ratio != float("inf") else None,
            excess=ev.excess,
            baseline=ev.source,
            weeks_of_history=ev.weeks,
            window=[[p.bucket_start_ms, p.value, p.hit] for p in ev.window],
        )
    return orjson.loads(orjson.dumps(out, option=orjson.OPT_SERIALIZE_NUMPY))


def _dollar_impact(metric: str, excess: float, figures: dict[str, float]) -> float:
    """The excess in dollars: itself for cost, else at the bucket's own cost per token."""
    if metric == "cost_usd":
        return round(excess, 6)
    tokens = figures.get("weighted_tokens", 0.0)
    return round(excess * figures.get("cost_usd", 0.0) / tokens, 6) if tokens else 0.0


def _contributors(
    engine: Engine, kind: str, eid: str, start_ms: int, width_ms: int
) -> dict[str, Any]:
    """Top models, keys and tags of the entity in the bucket, and sample request ids.

    Models and keys are summed in SQL; tags (JSON text) are counted over the bucket's
    `TAG_SAMPLE` largest requests, so an org-wide alert on a busy bucket stays cheap."""
    parts = eid.split("/")
    tokens = requests.c.input_tokens + requests.c.output_tokens
    where = [
        requests.c.started_at_ms >= start_ms,
        requests.c.started_at_ms < start_ms + width_ms,
        requests.c.org == parts[0],
    ]
    if kind in ("team", "user"):
        where.append(requests.c.team == parts[1])
    if kind == "user":
        where.append(requests.c.user == "/".join(parts[2:]))
    total = func.sum(tokens)
    out: dict[str, Any] = {}
    with engine.connect() as connection:
        for name, column in (
            ("top_models", requests.c.served_model),
            ("top_keys", requests.c.key_id),
        ):
            rows = connection.execute(
                select(column, total).where(*where).group_by(column).order_by(total.desc()).limit(3)
            )
            out[name] = [[value, int(n)] for value, n in rows]
        largest = connection.execute(
            select(requests.c.request_id, requests.c.tags, tokens)
            .where(*where)
            .order_by(tokens.desc())
            .limit(TAG_SAMPLE)
        ).all()
    tags: Counter[str] = Counter()
    for _, tag_text, n in largest:
        for tag in orjson.loads(tag_text):
            tags[tag] += int(n)
    out["top_tags"] = [[tag, n] for tag, n in tags.most_common(3)]
    out["sample_request_ids"] = [request_id for request_id, _, _ in largest[:5]]
    return out
