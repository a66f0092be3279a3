"""Budget and forecast alerts: once per threshold and window, with evidence; history kept."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tollway.budgets.model import BudgetSpec, parse_budgets
from tollway.budgets.ticket import BudgetState
from tollway.insights.budget_alerts import (
    budget_alerts,
    budget_context,
    projected_exhaustion_ms,
)
from tollway.ledger import Database
from tollway.ledger.alerts import AlertDraft, AlertStore

HOUR = 3_600_000
START = 1_767_225_600_000  # 2026-01-01T00:00Z
END = START + 31 * 24 * HOUR
USD = 10**12


def spec() -> BudgetSpec:
    (budget,) = parse_budgets(
        [
            {
                "scope": "team",
                "subject": "acme/payments",
                "window": "month",
                "timezone": "UTC",
                "hard_limit": "$100",
                "soft_limit": "$80",
            }
        ]
    )
    assert isinstance(budget, BudgetSpec)
    return budget


def state(used_usd: float, hours_in: float) -> BudgetState:
    return BudgetState(spec(), int(used_usd * USD), 0, START, END, START + int(hours_in * HOUR))


def test_thresholds_fire_the_highest_crossed_with_evidence() -> None:
    assert budget_alerts([state(10, 400)], [50, 80, 100]) == []
    (alert,) = budget_alerts([state(85, 700)], [50, 80, 100])
    assert alert.kind == "budget" and alert.severity == "warning"
    assert alert.dedup_key.endswith(":80")
    assert alert.evidence["pct_of_budget"] == 85.0
    assert alert.evidence["dollar_impact_usd"] == 85.0
    assert (alert.org, alert.team) == ("acme", "payments")
    (full,) = budget_alerts([state(100, 740)], [50, 80, 100])
    assert full.severity == "critical"


def test_forecast_projects_exhaustion_before_the_window_ends() -> None:
    # $60 in 10 days of a 31-day month: $100 is reached on day 16.7.
    alerts = budget_alerts([state(60, 240)], [80, 100])
    (forecast,) = [a for a in alerts if a.kind == "forecast"]
    assert forecast.evidence["projected_exhaustion_ms"] == START + int(400 * HOUR)
    # $20 in 10 days: $100 on day 50, after the window ends.
    assert budget_alerts([state(20, 240)], [80, 100]) == []
    # Too early in the window to extrapolate a small spend.
    assert budget_alerts([state(5, 2)], [80, 100]) == []


@given(
    used=st.integers(min_value=1, max_value=99),
    hours=st.floats(min_value=75, max_value=740),
)
def test_projection_is_where_the_average_rate_meets_the_limit(used: int, hours: float) -> None:
    s = state(used, hours)
    at = projected_exhaustion_ms(s, 100 * USD)
    rate = s.used / (s.seen_at_ms - START)
    exact = s.seen_at_ms + (100 * USD - s.used) / rate
    if at is None:
        assert exact >= END - 1
    else:
        assert abs(at - exact) <= 1
        assert at < END


@pytest.fixture
def store(tmp_path: Path) -> AlertStore:
    db = Database(f"sqlite:///{tmp_path / 'ledger.db'}")
    db.migrate()
    return AlertStore(db.engine)


def test_store_dedups_open_alerts_cools_down_and_records_feedback(store: AlertStore) -> None:
    (draft,) = budget_alerts([state(85, 700)], [80])
    opened = store.open(draft, now_ms=1_000)
    assert opened is not None and opened["state"] == "open"
    assert store.open(draft, now_ms=2_000) is None  # refreshed, not reopened
    assert store.open_keys() == {draft.dedup_key}
    assert store.resolve(draft.dedup_key, now_ms=3_000) == opened["alert_id"]
    assert store.open(draft, now_ms=4_000, cooldown_ms=10_000) is None  # cooling down
    again = store.open(draft, now_ms=20_000, cooldown_ms=10_000)
    assert again is not None and again["alert_id"] != opened["alert_id"]
    assert store.feedback(opened["alert_id"], "planned", "key_1", "quarter-end batch", 5)
    store.record_delivery(opened["alert_id"], "webhook", {"ok": True, "attempts": 3})
    saved = store.get(opened["alert_id"])
    assert saved is not None
    assert saved["feedback"] == "planned" and saved["deliveries"]["webhook"]["attempts"] == 3
    assert [a["alert_id"] for a in store.list(since_ms=0)] == [
        again["alert_id"],
        opened["alert_id"],
    ]
    with pytest.raises(ValueError, match="feedback must be one of"):
        store.feedback(opened["alert_id"], "meh", "key_1", None, 6)
    assert not store.feedback("alt_missing", "useful", "key_1", None, 6)


def test_budget_context_names_the_fullest_budget_of_each_subject() -> None:
    context = budget_context([state(30, 240), state(60, 240)])
    assert context == {
        "acme/payments": {
            "budget_id": spec().id,
            "pct_of_budget": 60.0,
            "projected_exhaustion_ms": START + int(400 * HOUR),
        }
    }


def test_resolve_all_closes_open_alerts_of_some_kinds_with_the_reason(store: AlertStore) -> None:
    (budget,) = budget_alerts([state(85, 700)], [80])
    spike = AlertDraft(
        "spike:user:acme/payments/ada:300000",
        "spike",
        "user",
        "acme/payments/ada",
        "acme",
        "acme/payments",
        "warning",
        "ada",
        {"x": 1},
    )
    store.open(budget, now_ms=1)
    store.open(spike, now_ms=1)
    assert store.resolve_all(("spike", "team_spike"), now_ms=2, reason="restart") == 1
    assert store.open_keys() == {budget.dedup_key}
    (closed,) = store.list(since_ms=0, state="resolved")
    assert closed["evidence"] == {"x": 1, "resolved_because": "restart"}
