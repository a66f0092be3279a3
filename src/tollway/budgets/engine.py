"""The budget engine: turn a request into charges, reserve them all at once, settle later.

Per request the engine does no I/O but one store call: it looks up (in a dict built when
specs load) which budgets and rate limits apply to the principal's path — key, user, team,
org and each tag — prices the worst case (estimated input plus the request's max output,
input at the dearest of the input, cache-read and cache-write prices), multiplies budget
charges by the peak weight (rounding up), and reserves everything in one `reserve`.

Errors, ready to render:

- a hard budget limit → `BudgetExceeded` (429) naming the budget, its limit, what is used
  and when the window resets, with ``retry-after``;
- a rate limit → `RateLimited` (429), likewise;
- the counter store unreachable → per `failure_mode`:
  ``closed``: `ServiceUnavailable` (503) — no request passes unmetered;
  ``open-bounded``: each budget gets a local allowance of `open_fraction` of what remained
  of it when this replica last saw it (a budget it never saw gets none), and requests are
  admitted against those allowances until they run out, then refused with 503. With N
  replicas the outage can spend at most ``N x open_fraction`` of what was left. Every
  budget touched meanwhile is listed by `pending_reconciliation`; once the store is back
  the caller recomputes those counters from the ledger and calls `reconcile`.

`settle` never raises into the request: if the store is down the charge is in the ledger
and the budget is marked for reconciliation.
"""

from __future__ import annotations

import itertools
import logging
import uuid
from collections.abc import Callable, Iterable, Sequence
from decimal import Decimal, InvalidOperation
from typing import Literal, Protocol

from tollway.budgets.charges import (
    METRIC_CODES,
    UNIT_CODES,
    PriceFn,
    charges,
    line_of,
    worst_cost,
)
from tollway.budgets.memory import wall_clock_ms
from tollway.budgets.model import BudgetSpec, RateLimitSpec, subject_of
from tollway.budgets.refusals import refusal
from tollway.budgets.store import (
    CounterState,
    CounterStore,
    Denial,
    Line,
    StoreUnavailable,
)
from tollway.budgets.ticket import NO_PATH, BudgetState, Path, Plan, Spec, Ticket, tightest_of
from tollway.budgets.windows import CalendarWindow, RollingWindow
from tollway.errors import ConfigError, ServiceUnavailable
from tollway.metering.catalog import Price
from tollway.metering.peak import PeakSchedule
from tollway.metering.usage import Usage

__all__ = [
    "BudgetEngine",
    "BudgetState",
    "FailureMode",
    "HealthSignal",
    "PriceFn",
    "Spec",
    "Ticket",
    "parse_failure_mode",
]

log = logging.getLogger(__name__)

FailureMode = Literal["closed", "open-bounded"]

_PPM = 1_000_000
_CACHE_MAX = 100_000


class HealthSignal(Protocol):
    """Anything with a `healthy` attribute (e.g. `RedisCounterStore.health`)."""

    healthy: bool


class _Outage:
    """Local allowances while the counter store is unreachable (open-bounded mode)."""

    __slots__ = ("allowance", "since_ms", "spent")

    def __init__(self, since_ms: int) -> None:
        self.since_ms = since_ms
        self.allowance: dict[tuple[str, int], int] = {}
        self.spent: dict[tuple[str, int], int] = {}


class BudgetEngine:
    """Budgets and rate limits for every request, over one `CounterStore`."""

    def __init__(
        self,
        store: CounterStore,
        budgets: Iterable[BudgetSpec] = (),
        rate_limits: Iterable[RateLimitSpec] = (),
        schedule: PeakSchedule | None = None,
        *,
        failure_mode: FailureMode = "closed",
        open_fraction: Decimal | str | float = "0.05",
        health: HealthSignal | None = None,
        reservation_ttl_ms: int = 900_000,
        clock_ms: Callable[[], int] = wall_clock_ms,
    ) -> None:
        self.store = store
        self.schedule = schedule or PeakSchedule.flat()
        self.failure_mode = parse_failure_mode(failure_mode)
        self.open_fraction_ppm = _fraction_ppm(open_fraction)
        self.health = health if health is not None else getattr(store, "health", None)
        self.reservation_ttl_ms = reservation_ttl_ms
        self._clock = clock_ms
        self._index: dict[tuple[str, str], tuple[Plan, ...]] = {}
        self._paths: dict[tuple[str, str, str, str, tuple[str, ...]], Path] = {}
        self._specs: dict[str, Spec] = {}
        self._lines: dict[str, Line] = {}
        # Each spec's counter as last seen: (state before, reserved on top, when).
        self._last: dict[str, tuple[CounterState, int, int]] = {}
        self._id_prefix = uuid.uuid4().hex[:12] + "-"
        self._ids = itertools.count()
        self._outage: _Outage | None = None
        self._reconcile: set[str] = set()
        self.replace_specs(budgets, rate_limits)

    # ----------------------------------------------------------------- specs
    def replace_specs(
        self, budgets: Iterable[BudgetSpec], rate_limits: Iterable[RateLimitSpec] = ()
    ) -> None:
        """Load a new set of budgets and rate limits (e.g. after an admin change)."""
        index: dict[tuple[str, str], list[Plan]] = {}
        specs: dict[str, Spec] = {}
        lines: dict[str, Line] = {}
        every: list[Spec] = [*budgets, *rate_limits]
        for spec in every:
            if spec.id in specs:
                raise ConfigError(f"budgets: two entries have the id {spec.id!r}")
            specs[spec.id] = spec
            line = lines[spec.id] = line_of(spec)
            if isinstance(spec, BudgetSpec):
                code = UNIT_CODES[spec.unit]
            else:
                code = METRIC_CODES[spec.metric]
            index.setdefault((spec.scope, spec.subject), []).append(Plan(spec, line, code))
        self._index = {k: tuple(v) for k, v in index.items()}
        self._specs = specs
        self._lines = lines
        self._paths = {}

    @property
    def specs(self) -> tuple[Spec, ...]:
        return tuple(self._specs.values())

    def applicable(
        self, org: str, team: str, user: str, key_id: str, tags: Sequence[str] = ()
    ) -> tuple[Spec, ...]:
        """The budgets and rate limits on this principal's path: key, user, team, org, tags."""
        return tuple(plan.spec for plan in self._path(org, team, user, key_id, tuple(tags)).plans)

    def _path(self, org: str, team: str, user: str, key_id: str, tags: tuple[str, ...]) -> Path:
        cache_key = (org, team, user, key_id, tags)
        path = self._paths.get(cache_key)
        if path is None:
            index = self._index
            found: list[Plan] = []
            for scope in ("key", "user", "team", "org"):
                found += index.get((scope, subject_of(scope, org, team, user, key_id)), ())
            for tag in dict.fromkeys(tags):
                found += index.get(("tag", tag), ())
            if found:
                plans = tuple(found)
                path = Path(plans, tuple(p.line for p in plans), tuple(p.code for p in plans))
            else:
                path = NO_PATH
            if len(self._paths) >= _CACHE_MAX:
                self._paths.clear()
            self._paths[cache_key] = path
        return path

    # ----------------------------------------------------------------- hot path
    async def reserve(
        self,
        *,
        org: str,
        team: str,
        user: str,
        key_id: str,
        tags: Sequence[str] = (),
        model: str,
        input_tokens: int,
        max_output_tokens: int,
        price: Price | PriceFn | None = None,
        discount_ppm: int = 0,
        request_id: str | None = None,
    ) -> Ticket:
        """Reserve the worst-case charge against every budget and rate limit on the path.

        `input_tokens` is the estimate of the prompt, `max_output_tokens` the request's
        max output (already clamped and defaulted by the caller); `price` is the model's
        `Price` (with `discount_ppm` for the actual cost) or a function pricing a `Usage`,
        None for a model without a price (USD budgets are then charged nothing).
        `request_id` becomes the reservation id (ids must be unique). Raises
        `BudgetExceeded`, `RateLimited` or `ServiceUnavailable`.
        """
        tags = tuple(tags)
        now = self._clock()
        path = self._path(org, team, user, key_id, tags)
        weight = self.schedule.weight_at(now, model, tags)
        rid = request_id or f"{self._id_prefix}{next(self._ids)}"
        if not path.plans:
            return Ticket(rid, path, (), weight, now)
        list_pusd, actual_pusd = worst_cost(price, discount_ppm, input_tokens, max_output_tokens)
        values = charges(weight, list_pusd, actual_pusd, input_tokens, max_output_tokens, 1)
        amounts = tuple([values[code] for code in path.codes])
        try:
            if self.health is not None and not self.health.healthy:
                raise StoreUnavailable("the counter store is marked down by its health check")
            outcome = await self.store.reserve(path.lines, amounts, rid, self.reservation_ttl_ms)
        except StoreUnavailable as exc:
            return self._admit_locally(rid, path, amounts, weight, now, exc)
        if self._outage is not None:
            self._end_outage()
        reservation = outcome.reservation
        if reservation is None:
            denial = outcome.denial
            assert denial is not None
            plan = path.plans[denial.index]
            self._last[plan.spec.id] = (denial.state, 0, denial.now_ms)
            raise refusal(plan.spec, denial, weight)
        last = self._last
        seen = reservation.now_ms
        for plan, state, amount in zip(path.plans, reservation.states, amounts, strict=True):
            last[plan.spec.id] = (state, amount, seen)
        return Ticket(rid, path, amounts, weight, seen, reservation)

    async def settle(
        self,
        ticket: Ticket,
        usage: Usage,
        list_cost_pusd: int,
        actual_cost_pusd: int,
    ) -> None:
        """Charge what the request really used (raw costs; the ticket's weight is applied)."""
        if ticket.done:
            return
        ticket.done = True
        if not ticket.plans:
            return
        inp, out = usage.input_tokens, usage.output_tokens
        values = charges(ticket.weight_milli, list_cost_pusd, actual_cost_pusd, inp, out, 0)
        await self._finish(ticket, [values[code] for code in ticket.path.codes])

    async def release(self, ticket: Ticket) -> None:
        """Give a reservation back without charging (the request was never sent upstream)."""
        if ticket.done:
            return
        ticket.done = True
        if ticket.path.plans:
            await self._finish(ticket, [0] * len(ticket.path.plans))

    async def _finish(self, ticket: Ticket, actual: list[int]) -> None:
        if ticket.local:
            self._settle_locally(ticket, actual)
            return
        reservation = ticket.reservation
        assert reservation is not None
        try:
            if self.health is not None and not self.health.healthy:
                raise StoreUnavailable("the counter store is marked down by its health check")
            if any(actual):
                await self.store.settle(reservation, actual)
            else:
                await self.store.release(reservation)
        except StoreUnavailable as exc:
            # The ledger has the charge; the reservation expires on its own in the store.
            log.warning("settle of %s not counted (%s); budgets need reconciling", ticket.id, exc)
            self._reconcile.update(
                plan.spec.id for plan, amount in zip(ticket.plans, actual, strict=True) if amount
            )

    # ----------------------------------------------------------------- state
    def tightest(
        self, org: str, team: str, user: str, key_id: str, tags: Sequence[str] = ()
    ) -> BudgetState | None:
        """The principal's budget with the highest used fraction, as last seen (no I/O).

        A budget this replica has not seen yet counts as unused; a calendar window that
        has ended since it was seen counts as a fresh one.
        """
        now = self._clock()
        states = []
        for plan in self._path(org, team, user, key_id, tuple(tags)).plans:
            if isinstance(plan.spec, BudgetSpec):
                states.append(self._last_state(plan.spec, now))
        return tightest_of(states)

    def last_seen(self, spec_id: str) -> BudgetState | None:
        """One budget or rate limit as this replica last saw it, or None."""
        spec = self._specs.get(spec_id)
        if spec is None or spec_id not in self._last:
            return None
        return self._last_state(spec, self._clock())

    async def usage(self, specs: Iterable[Spec] | None = None) -> list[BudgetState]:
        """Read every (or the given) spec's counter from the store (admin and CLI)."""
        chosen = list(self._specs.values() if specs is None else specs)
        lines = [self._lines.get(spec.id) or line_of(spec) for spec in chosen]
        try:
            found = await self.store.usage(lines)
        except StoreUnavailable as exc:
            raise self._unavailable(exc) from exc
        now = self._clock()
        return [
            BudgetState(
                spec,
                found[line.key].used,
                found[line.key].reserved,
                found[line.key].window_start_ms,
                found[line.key].window_end_ms,
                now,
            )
            for spec, line in zip(chosen, lines, strict=True)
        ]

    @property
    def degraded(self) -> bool:
        """True while requests are admitted on local allowances (open-bounded outage)."""
        return self._outage is not None

    def pending_reconciliation(self) -> frozenset[str]:
        """Ids of budgets charged while their counters could not be updated."""
        return frozenset(self._reconcile)

    async def reconcile(self, spec_id: str, used_from_ledger: int) -> None:
        """Set a budget's current-window `used` to what the ledger says (after an outage)."""
        spec = self._specs.get(spec_id)
        if spec is None:
            raise KeyError(spec_id)
        if spec.window is None:
            self._reconcile.discard(spec_id)  # concurrency gauges hold no spend
            return
        try:
            await self.store.set_used(self._lines[spec_id], used_from_ledger)
        except StoreUnavailable as exc:
            raise self._unavailable(exc) from exc
        self._reconcile.discard(spec_id)
        self._last.pop(spec_id, None)

    # ----------------------------------------------------------------- failures
    def _unavailable(self, exc: BaseException) -> ServiceUnavailable:
        return ServiceUnavailable(
            "Budgets cannot be checked right now: the counter store is unreachable "
            f"({exc}). Requests are refused until it is back (failure mode "
            f"'{self.failure_mode}').",
            headers={"retry-after": "1"},
        )

    def _admit_locally(
        self,
        rid: str,
        path: Path,
        amounts: tuple[int, ...],
        weight: int,
        now: int,
        exc: StoreUnavailable,
    ) -> Ticket:
        if self.failure_mode == "closed":
            raise self._unavailable(exc)
        outage = self._outage
        if outage is None:
            outage = self._outage = _Outage(now)
            log.warning("counter store unreachable (%s): admitting on local allowances", exc)
        keys: list[tuple[str, int]] = []
        plans = path.plans
        for plan, amount in zip(plans, amounts, strict=True):
            spec = plan.spec
            if plan.kind != "concurrency":
                self._reconcile.add(spec.id)
            if plan.limit is None:
                keys.append((spec.id, 0))
                continue
            key, allowance = self._allowance(outage, plan, amount, weight, now)
            if outage.spent.get(key, 0) + amount > allowance:
                raise ServiceUnavailable(
                    f"The counter store is unreachable and this gateway's local allowance "
                    f"for '{spec.label}' ({spec.format(allowance)}) is used up.",
                    headers={"retry-after": "1"},
                )
            keys.append(key)
        for plan, key, amount in zip(plans, keys, amounts, strict=True):
            if plan.limit is not None:
                outage.spent[key] = outage.spent.get(key, 0) + amount
        return Ticket(rid, path, amounts, weight, now, local=True, local_keys=tuple(keys))

    def _allowance(
        self, outage: _Outage, plan: Plan, amount: int, weight: int, now: int
    ) -> tuple[tuple[str, int], int]:
        """The local allowance of one limited line during an outage, and its key.

        Budgets: `open_fraction` of what remained when last seen, per window instance
        (a budget never seen gets nothing). Rate limits: the same fraction per minute, of
        the full limit once the last sighting is a minute old. Concurrency: the same
        fraction of the limit, at least one request in flight.
        """
        spec = plan.spec
        limit = plan.limit
        assert limit is not None
        fraction = self.open_fraction_ppm
        if plan.kind == "concurrency":
            key = (spec.id, 0)
            floor = 1 if limit else 0  # a concurrency limit above 0 allows one request at least
            return key, outage.allowance.setdefault(key, max(floor, limit * fraction // _PPM))
        state = self._last_state(spec, now)
        if plan.kind == "rate":
            window = plan.window
            assert isinstance(window, RollingWindow)
            key = (spec.id, now // window.length_ms)
            fresh = now - state.seen_at_ms >= window.length_ms
            remaining = limit if fresh else (state.remaining or 0)
        else:
            if state.seen_at_ms == 0:
                raise ServiceUnavailable(
                    f"The counter store is unreachable and this gateway has not seen "
                    f"'{spec.label}' yet, so it cannot grant a local allowance.",
                    headers={"retry-after": "1"},
                )
            remaining = state.remaining or 0
            key = (spec.id, state.window_start_ms)
        if amount > remaining:  # exhausted as last seen: an honest 429
            retry_at = state.window_end_ms if isinstance(plan.window, CalendarWindow) else None
            denial = Denial(0, plan.line, amount, _as_counter(state), now, retry_at)
            raise refusal(plan.spec, denial, weight)
        return key, outage.allowance.setdefault(key, remaining * fraction // _PPM)

    def _settle_locally(self, ticket: Ticket, actual: list[int]) -> None:
        outage = self._outage
        if outage is None:
            return  # the store is back; the ledger has the charge and reconcile follows
        for plan, key, amount, charged in zip(
            ticket.plans, ticket.local_keys, ticket.amounts, actual, strict=True
        ):
            if plan.limit is None or key not in outage.spent:
                continue
            kept = 0 if plan.kind == "concurrency" else charged
            outage.spent[key] += kept - amount

    def _end_outage(self) -> None:
        outage = self._outage
        self._outage = None
        if outage is not None:
            log.warning(
                "counter store reachable again; %d budget(s) need reconciling from the ledger",
                len(self._reconcile),
            )

    def _last_state(self, spec: Spec, now: int) -> BudgetState:
        seen = self._last.get(spec.id)
        window = spec.window
        if seen is None:
            start, end = window.bounds(now) if window is not None else (0, 0)
            return BudgetState(spec, 0, 0, start, end, 0)
        state, extra, at = seen
        used, reserved, start, end = state.used, state.reserved + extra, *state[2:]
        if isinstance(window, CalendarWindow) and end <= now:
            start, end = window.bounds(now)
            return BudgetState(spec, 0, 0, start, end, at)
        return BudgetState(spec, used, reserved, start, end, at)


# --------------------------------------------------------------------- helpers
def parse_failure_mode(value: object) -> FailureMode:
    """``closed`` or ``open-bounded``, else a ConfigError."""
    if value in ("closed", "open-bounded"):
        return value  # type: ignore[return-value]
    raise ConfigError(f"budgets.failure_mode: must be 'closed' or 'open-bounded', got {value!r}")


def _fraction_ppm(value: Decimal | str | float) -> int:
    try:
        amount = Decimal(repr(value) if isinstance(value, float) else value)
    except (InvalidOperation, TypeError, ValueError):
        raise ConfigError(f"budgets.open_fraction: must be a fraction, got {value!r}") from None
    if not amount.is_finite() or not 0 <= amount <= 1:
        raise ConfigError(f"budgets.open_fraction: must be between 0 and 1, got {value!r}")
    return int(amount * _PPM)


def _as_counter(state: BudgetState) -> CounterState:
    return CounterState(state.used, state.reserved, state.window_start_ms, state.window_end_ms)
