"""The errors a refused request gets: which budget, its limit, what is used, when it resets.

Messages are written for the person reading the client's error, e.g. ::

    Budget 'team:payments monthly' exceeded: limit $500.00, used $499.90 (+$0.05 reserved
    by requests in flight); this request needs up to $0.0925 at peak weight 2. It resets at
    2026-06-01T00:00:00+02:00.

and carry ``retry-after`` (seconds until the window resets, or until enough of a rolling
window has passed). A request that could never fit says so instead of asking to wait.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from tollway.budgets.model import BudgetSpec
from tollway.budgets.store import Denial
from tollway.budgets.ticket import Spec
from tollway.budgets.windows import CalendarWindow
from tollway.errors import BudgetExceeded, RateLimited
from tollway.metering.peak import MILLI

__all__ = ["iso_time", "refusal"]


def refusal(spec: Spec, denial: Denial, weight: int) -> BudgetExceeded | RateLimited:
    """The 429 for a denial: which budget or rate limit, its limit, use, and reset."""
    amount = denial.amount
    state = denial.state
    now = denial.now_ms
    retry_at = denial.retry_at_ms
    retry_after = max(1, -(-(retry_at - now) // 1000)) if retry_at is not None else 1
    headers = {"retry-after": str(retry_after)}
    limit = denial.line.limit
    assert limit is not None
    alone = amount > limit  # no wait will help: the request must ask for less
    if isinstance(spec, BudgetSpec):
        fmt = spec.format
        parts = [f"Budget '{spec.label}' exceeded: limit {fmt(limit)}, used {fmt(state.used)}"]
        if state.reserved:
            parts.append(f" (+{fmt(state.reserved)} reserved by requests in flight)")
        if alone:
            parts.append(f"; this request alone needs up to {fmt(amount)}, more than the limit")
        else:
            parts.append(f"; this request needs up to {fmt(amount)}")
        if weight != MILLI:
            parts.append(f" at peak weight {Decimal(weight).scaleb(-3).normalize():f}")
        if alone:
            parts.append(" (lower max_tokens or shorten the prompt).")
        elif retry_at is not None:
            verb = "resets" if isinstance(spec.window, CalendarWindow) else "frees up"
            parts.append(f". It {verb} at {iso_time(retry_at, spec.window)}.")
        else:
            parts.append(".")
        error: BudgetExceeded | RateLimited = BudgetExceeded("".join(parts), headers=headers)
    else:
        fmt = spec.format
        if spec.metric == "concurrent":
            message = (
                f"Rate limit '{spec.label}' reached: at most {fmt(limit)} in flight, "
                f"{state.reserved:,} running now. Retry when one finishes."
            )
        elif alone:
            message = (
                f"Rate limit '{spec.label}' cannot be met: this request alone needs "
                f"{fmt(amount)}, more than the limit of {fmt(limit)} per minute "
                "(lower max_tokens or shorten the prompt)."
            )
        else:
            message = (
                f"Rate limit '{spec.label}' reached: limit {fmt(limit)} per minute, "
                f"used {fmt(state.used + state.reserved)} in the last minute; this "
                f"request needs {fmt(amount)}. Retry after {retry_after} s."
            )
        error = RateLimited(message, headers=headers)
    error.budget_id = spec.id  # type: ignore[union-attr]
    error.reset_at_ms = retry_at  # type: ignore[union-attr]
    return error


def iso_time(epoch_ms: int, window: object) -> str:
    """An instant in the window's timezone (UTC for rolling windows), to the second."""
    tz = window.tz if isinstance(window, CalendarWindow) else UTC
    moment = datetime.fromtimestamp(epoch_ms / 1000, tz)
    return moment.isoformat(timespec="seconds")
