"""Budget alerts: a window filling past thresholds, and forecast exhaustion before it ends.

Pure functions of the budgets' live states. Each alert has a dedup key naming the budget,
its window and the threshold, so it fires once per window however often it is evaluated.
The forecast projects the window's average burn rate so far; it needs a tenth of the
window elapsed (or a tenth of the budget used) before it speaks, so a quiet first hour
does not predict the month.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from tollway.budgets.model import BudgetSpec
from tollway.budgets.ticket import BudgetState
from tollway.ledger.alerts import AlertDraft

MIN_ELAPSED_FRACTION = 0.1


def budget_alerts(
    states: Iterable[BudgetState], thresholds_pct: Sequence[float], *, forecast: bool = True
) -> list[AlertDraft]:
    """Threshold and forecast alerts for every budget (rate limits are not alerted on)."""
    drafts: list[AlertDraft] = []
    for state in states:
        spec = state.spec
        if not isinstance(spec, BudgetSpec):
            continue
        limit = spec.hard_limit if spec.hard_limit is not None else spec.soft_limit
        if not limit:
            continue
        used = state.used + state.reserved
        pct = 100.0 * used / limit
        evidence = _evidence(state, spec, limit, used, pct)
        crossed = [t for t in thresholds_pct if pct >= t]
        if crossed:
            top = max(crossed)
            drafts.append(
                _draft(
                    spec,
                    f"budget:{spec.id}:{state.window_start_ms}:{top:g}",
                    "budget",
                    "critical" if top >= 100 else "warning" if top >= 80 else "info",
                    f"Budget {spec.label} at {pct:.0f}% ({spec.format(used)} of "
                    f"{spec.format(limit)})",
                    {**evidence, "threshold_pct": top},
                )
            )
        exhaustion = projected_exhaustion_ms(state, limit) if forecast and pct < 100 else None
        if exhaustion is not None:
            hours_early = (state.window_end_ms - exhaustion) / 3_600_000
            drafts.append(
                _draft(
                    spec,
                    f"forecast:{spec.id}:{state.window_start_ms}",
                    "forecast",
                    "warning",
                    f"Budget {spec.label} is projected to run out {hours_early:.1f} h "
                    "before its window ends",
                    {**evidence, "projected_exhaustion_ms": exhaustion},
                )
            )
    return drafts


def projected_exhaustion_ms(state: BudgetState, limit: int) -> int | None:
    """When the window's average burn rate so far reaches `limit`, if before the window ends."""
    used = state.used + state.reserved
    elapsed = state.seen_at_ms - state.window_start_ms
    length = state.window_end_ms - state.window_start_ms
    if used <= 0 or elapsed <= 0 or length <= 0:
        return None
    if elapsed < MIN_ELAPSED_FRACTION * length and used < MIN_ELAPSED_FRACTION * limit:
        return None
    at = state.seen_at_ms + int((limit - used) * elapsed / used)
    return at if at < state.window_end_ms else None


def _evidence(
    state: BudgetState, spec: BudgetSpec, limit: int, used: int, pct: float
) -> dict[str, Any]:
    return {
        "budget_id": spec.id,
        "unit": spec.unit,
        "used": used,
        "limit": limit,
        "used_display": spec.format(used),
        "limit_display": spec.format(limit),
        "pct_of_budget": round(pct, 2),
        "window_start_ms": state.window_start_ms,
        "window_end_ms": state.window_end_ms,
        "dollar_impact_usd": used / 10**12 if spec.is_usd else None,
    }


def _draft(
    spec: BudgetSpec,
    key: str,
    kind: str,
    severity: str,
    title: str,
    evidence: dict[str, Any],
) -> AlertDraft:
    parts = spec.subject.split("/")
    team = parts[1] if len(parts) > 1 and spec.scope in ("team", "user") else None
    return AlertDraft(
        key, kind, spec.scope, spec.subject, parts[0], team, severity, title, evidence
    )


def budget_context(states: Iterable[BudgetState]) -> dict[str, dict[str, Any]]:
    """Per org/team/user subject, its fullest budget: % used and projected exhaustion, for
    the evidence of alerts on that subject."""
    out: dict[str, dict[str, Any]] = {}
    for state in states:
        spec = state.spec
        if not isinstance(spec, BudgetSpec) or spec.scope not in ("org", "team", "user"):
            continue
        limit = spec.hard_limit if spec.hard_limit is not None else spec.soft_limit
        if not limit:
            continue
        pct = 100.0 * (state.used + state.reserved) / limit
        if spec.subject in out and out[spec.subject]["pct_of_budget"] >= pct:
            continue
        out[spec.subject] = {
            "budget_id": spec.id,
            "pct_of_budget": round(pct, 2),
            "projected_exhaustion_ms": projected_exhaustion_ms(state, limit),
        }
    return out
