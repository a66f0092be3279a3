"""Alert history: open alerts by dedup key, refresh or resolve them, record feedback.

One open alert per dedup key; a draft whose key is open refreshes that alert's evidence
instead of opening another, and a key resolved less than `cooldown_ms` ago stays quiet.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
from sqlalchemy import Engine, select, update

from tollway.ledger.schema import alerts

FEEDBACK = ("useful", "false", "planned")


@dataclass(frozen=True, slots=True)
class AlertDraft:
    """An alert to open (or refresh) under `dedup_key`."""

    dedup_key: str
    kind: str  # spike | team_spike | budget | forecast
    scope: str  # org | team | user | key | tag
    subject: str
    org: str
    team: str | None
    severity: str  # info | warning | critical
    title: str
    evidence: dict[str, Any] = field(default_factory=dict)


class AlertStore:
    """The `alerts` table."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def open(self, draft: AlertDraft, now_ms: int, cooldown_ms: int = 0) -> dict[str, Any] | None:
        """Open an alert for `draft`, or refresh the open one; returns it only when newly
        opened (what should be delivered), else None."""
        evidence = orjson.dumps(draft.evidence, default=str).decode()
        with self._engine.begin() as connection:
            latest = (
                connection.execute(
                    select(alerts.c.alert_id, alerts.c.state, alerts.c.resolved_at_ms)
                    .where(alerts.c.dedup_key == draft.dedup_key)
                    .order_by(alerts.c.opened_at_ms.desc())
                    .limit(1)
                )
                .mappings()
                .first()
            )
            if latest is not None and latest["state"] == "open":
                connection.execute(
                    update(alerts)
                    .where(alerts.c.alert_id == latest["alert_id"])
                    .values(evidence=evidence, title=draft.title, updated_at_ms=now_ms)
                )
                return None
            if latest is not None and (latest["resolved_at_ms"] or 0) > now_ms - cooldown_ms:
                return None
            row = {
                "alert_id": "alt_" + secrets.token_hex(8),
                "kind": draft.kind,
                "scope": draft.scope,
                "subject": draft.subject,
                "org": draft.org,
                "team": draft.team,
                "dedup_key": draft.dedup_key,
                "severity": draft.severity,
                "state": "open",
                "title": draft.title,
                "evidence": evidence,
                "opened_at_ms": now_ms,
                "updated_at_ms": now_ms,
            }
            connection.execute(alerts.insert().values(**row))
        return _alert(row)

    def resolve(
        self, dedup_key: str, now_ms: int, evidence: Mapping[str, Any] | None = None
    ) -> str | None:
        """Resolve the open alert of `dedup_key`; returns its id, or None if none was open."""
        values: dict[str, Any] = {
            "state": "resolved",
            "resolved_at_ms": now_ms,
            "updated_at_ms": now_ms,
        }
        if evidence is not None:
            values["evidence"] = orjson.dumps(dict(evidence), default=str).decode()
        with self._engine.begin() as connection:
            alert_id = connection.execute(
                select(alerts.c.alert_id).where(
                    alerts.c.dedup_key == dedup_key, alerts.c.state == "open"
                )
            ).scalar()
            if alert_id is None:
                return None
            connection.execute(update(alerts).where(alerts.c.alert_id == alert_id).values(**values))
        return str(alert_id)

    def resolve_all(self, kinds: tuple[str, ...], now_ms: int, reason: str) -> int:
        """Resolve every open alert of `kinds`, noting why in the evidence; returns how many."""
        with self._engine.begin() as connection:
            rows = connection.execute(
                select(alerts.c.alert_id, alerts.c.evidence).where(
                    alerts.c.state == "open", alerts.c.kind.in_(kinds)
                )
            ).all()
            for alert_id, evidence in rows:
                noted = {**orjson.loads(evidence), "resolved_because": reason}
                connection.execute(
                    update(alerts)
                    .where(alerts.c.alert_id == alert_id)
                    .values(
                        state="resolved",
                        resolved_at_ms=now_ms,
                        updated_at_ms=now_ms,
                        evidence=orjson.dumps(noted, default=str).decode(),
                    )
                )
        return len(rows)

    def record_delivery(self, alert_id: str, sink: str, outcome: Mapping[str, Any]) -> None:
        """Note how delivery to one sink went (`deliveries` maps sink name to outcome)."""
        with self._engine.begin() as connection:
            current = connection.execute(
                select(alerts.c.deliveries).where(alerts.c.alert_id == alert_id)
            ).scalar()
            if current is None:
                return
            deliveries = orjson.loads(current)
            deliveries[sink] = dict(outcome)
            connection.execute(
                update(alerts)
                .where(alerts.c.alert_id == alert_id)
                .values(deliveries=orjson.dumps(deliveries, default=str).decode())
            )

    def feedback(self, alert_id: str, verdict: str, by: str, note: str | None, now_ms: int) -> bool:
        """Record whether an alert was useful, false or planned; False if no such alert."""
        if verdict not in FEEDBACK:
            raise ValueError(f"feedback must be one of {', '.join(FEEDBACK)}")
        with self._engine.begin() as connection:
            result = connection.execute(
                update(alerts)
                .where(alerts.c.alert_id == alert_id)
                .values(feedback=verdict, feedback_by=by, feedback_note=note, feedback_at_ms=now_ms)
            )
        return bool(result.rowcount)

    def get(self, alert_id: str) -> dict[str, Any] | None:
        with self._engine.connect() as connection:
            row = (
                connection.execute(select(alerts).where(alerts.c.alert_id == alert_id))
                .mappings()
                .first()
            )
        return None if row is None else _alert(row)

    def open_keys(self) -> set[str]:
        """The dedup keys of every open alert."""
        with self._engine.connect() as connection:
            return set(
                connection.execute(
                    select(alerts.c.dedup_key).where(alerts.c.state == "open")
                ).scalars()
            )

    def list(
        self,
        *,
        since_ms: int,
        state: str | None = None,
        kind: str | None = None,
        team: str | None = None,
        limit: int = 200,
    ) -> list[dict[str, Any]]:
        """Alerts opened since `since_ms`, newest first."""
        query = (
            select(alerts)
            .where(alerts.c.opened_at_ms >= since_ms)
            .order_by(alerts.c.opened_at_ms.desc())
            .limit(limit)
        )
        for column, value in (("state", state), ("kind", kind), ("team", team)):
            if value is not None:
                query = query.where(alerts.c[column] == value)
        with self._engine.connect() as connection:
            return [_alert(row) for row in connection.execute(query).mappings()]


def _alert(row: Mapping[Any, Any]) -> dict[str, Any]:
    alert = dict(row)
    alert["evidence"] = orjson.loads(alert["evidence"])
    alert["deliveries"] = orjson.loads(alert.get("deliveries") or "{}")
    return alert
