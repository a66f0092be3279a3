"""Budgets, quotas and rate limits: exact under concurrency, shared across replicas.

- `model`: what a budget or rate limit is, parsed from config;
- `windows`: calendar and rolling windows (no sweeping job resets them);
- `store`: the `CounterStore` protocol — atomic reserve / settle / release;
- `memory`, `redis_store`: its in-process and Redis implementations;
- `engine`: requests to charges, the one store call per request, failure modes.

Peak-hour weights live in `tollway.metering.peak`.
"""

from tollway.budgets.engine import BudgetEngine, BudgetState, FailureMode, Ticket
from tollway.budgets.memory import MemoryCounterStore
from tollway.budgets.model import (
    BudgetSpec,
    RateLimitSpec,
    parse_budget,
    parse_budgets,
    parse_rate_limits,
)
from tollway.budgets.store import (
    CounterState,
    CounterStore,
    Denial,
    Line,
    Reservation,
    ReserveOutcome,
    StoreUnavailable,
)
from tollway.budgets.windows import CalendarWindow, RollingWindow, Window

__all__ = [
    "BudgetEngine",
    "BudgetSpec",
    "BudgetState",
    "CalendarWindow",
    "CounterState",
    "CounterStore",
    "Denial",
    "FailureMode",
    "Line",
    "MemoryCounterStore",
    "RateLimitSpec",
    "Reservation",
    "ReserveOutcome",
    "RollingWindow",
    "StoreUnavailable",
    "Ticket",
    "Window",
    "parse_budget",
    "parse_budgets",
    "parse_rate_limits",
]
