"""What the engine hands back per request, and how budgets look from the outside.

A `Ticket` is one admitted request: its reservation, what it reserved on each line and
at which peak weight. It answers the questions the gateway asks after admission — the
tightest budget (for ``x-tollway-budget-remaining`` and the routing ladder), the budgets
past their soft limit, the ``x-ratelimit-*`` headers — without another store call.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal

from tollway.budgets.model import BudgetSpec, RateLimitSpec
from tollway.budgets.store import Line, LineKind, Reservation
from tollway.budgets.windows import CalendarWindow, RollingWindow
from tollway.metering.peak import MILLI

__all__ = ["BudgetState", "Path", "Plan", "Spec", "Ticket", "duration", "tightest_of"]

Spec = BudgetSpec | RateLimitSpec


@dataclass(frozen=True, slots=True)
class BudgetState:
    """One budget or rate limit as last seen: used, reserved in flight, and its window."""

    spec: Spec
    used: int
    reserved: int
    window_start_ms: int
    window_end_ms: int
    seen_at_ms: int

    @property
    def limit(self) -> int | None:
        """The hard limit (None: unlimited)."""
        spec = self.spec
        return spec.hard_limit if isinstance(spec, BudgetSpec) else spec.limit

    @property
    def remaining(self) -> int | None:
        """What is left under the hard limit (never negative), or None if unlimited."""
        limit = self.limit
        return None if limit is None else max(0, limit - self.used - self.reserved)

    @property
    def fraction(self) -> float:
        """Used plus in flight over the soft limit (the hard one if there is none)."""
        spec = self.spec
        limit = spec.limit_for_fraction if isinstance(spec, BudgetSpec) else spec.limit
        if not limit:
            return float("inf") if self.used + self.reserved else 0.0
        return (self.used + self.reserved) / limit

    @property
    def soft_exceeded(self) -> bool:
        spec = self.spec
        return (
            isinstance(spec, BudgetSpec)
            and spec.soft_limit is not None
            and self.used + self.reserved >= spec.soft_limit
        )


@dataclass(frozen=True, slots=True)
class Plan:
    """A spec as the hot path needs it: its store line, built once, and what it charges."""

    spec: Spec
    line: Line
    code: int

    @property
    def kind(self) -> LineKind:
        return self.line.kind

    @property
    def limit(self) -> int | None:
        return self.line.limit

    @property
    def window(self) -> CalendarWindow | RollingWindow | None:
        return self.line.window


@dataclass(frozen=True, slots=True)
class Path:
    """Everything that applies to one principal path, ready for the store."""

    plans: tuple[Plan, ...]
    lines: tuple[Line, ...]
    codes: tuple[int, ...]


NO_PATH = Path((), (), ())


@dataclass(slots=True)
class Ticket:
    """An admitted request: hand it back to `settle` (or `release`) exactly once."""

    id: str
    path: Path
    amounts: tuple[int, ...]
    weight_milli: int
    now_ms: int
    reservation: Reservation | None = None
    local: bool = False  # admitted on a local allowance while the store was down
    local_keys: tuple[tuple[str, int], ...] = ()
    done: bool = False
    _states: tuple[BudgetState, ...] | None = field(default=None, repr=False)

    @property
    def plans(self) -> tuple[Plan, ...]:
        return self.path.plans

    def weighted(self, amount: int) -> int:
        """`amount` at this request's peak weight, rounded up (the ledger's weighted charge)."""
        return -(-amount * self.weight_milli // MILLI)

    @property
    def specs(self) -> tuple[Spec, ...]:
        return tuple(plan.spec for plan in self.path.plans)

    def states(self) -> tuple[BudgetState, ...]:
        """Every line's counter right after this reservation (its own amount included)."""
        if self._states is None:
            reservation = self.reservation
            if reservation is None:
                self._states = ()
            else:
                self._states = tuple(
                    BudgetState(
                        plan.spec,
                        state.used,
                        state.reserved + amount,
                        state.window_start_ms,
                        state.window_end_ms,
                        reservation.now_ms,
                    )
                    for plan, state, amount in zip(
                        self.plans, reservation.states, self.amounts, strict=True
                    )
                )
        return self._states

    def tightest(self) -> BudgetState | None:
        """The budget (not rate limit) with the highest used fraction, or None."""
        return tightest_of(s for s in self.states() if isinstance(s.spec, BudgetSpec))

    def soft_exceeded(self) -> tuple[BudgetSpec, ...]:
        """Budgets at or past their soft limit, this request included."""
        return tuple(s.spec for s in self.states() if s.soft_exceeded)  # type: ignore[misc]

    def headers(self) -> dict[str, str]:
        """``x-ratelimit-*`` for requests and tokens, and ``x-tollway-budget-remaining``."""
        result: dict[str, str] = {}
        now = self.now_ms
        for metric, suffix in (("requests", "requests"), ("tokens", "tokens")):
            rates = [
                s
                for s in self.states()
                if isinstance(s.spec, RateLimitSpec) and s.spec.metric == metric
            ]
            if not rates:
                continue
            state = min(rates, key=lambda s: s.remaining or 0)
            window = state.spec.window
            assert isinstance(window, RollingWindow)
            # Everything counted now has left the window once its newest bucket has.
            reset = state.window_end_ms + window.length_ms - window.bucket_ms
            result[f"x-ratelimit-limit-{suffix}"] = str(state.limit)
            result[f"x-ratelimit-remaining-{suffix}"] = str(state.remaining)
            result[f"x-ratelimit-reset-{suffix}"] = duration(reset - now)
        tight = self.tightest()
        if tight is not None and tight.remaining is not None:
            spec = tight.spec
            assert isinstance(spec, BudgetSpec)
            remaining = tight.remaining
            text = f"{Decimal(remaining).scaleb(-12):f}" if spec.is_usd else str(remaining)
            result["x-tollway-budget-remaining"] = text
            result["x-tollway-budget"] = spec.label
        return result


def tightest_of(states: Iterable[BudgetState]) -> BudgetState | None:
    best: BudgetState | None = None
    for state in states:
        if best is None or state.fraction > best.fraction:
            best = state
    return best


def duration(ms: int) -> str:
    """OpenAI's reset format: ``20ms``, ``1s``, ``6m0s``, ``1h2m3s``."""
    if ms <= 0:
        return "0s"
    if ms < 1000:
        return f"{ms}ms"
    seconds = -(-ms // 1000)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes}m{secs}s"
    if minutes:
        return f"{minutes}m{secs}s"
    return f"{secs}s"
