"""Interleavings of reserve / settle / release checked against a reference model.

The same scenarios run against the memory store (many examples, a fake clock that can
make reservations expire) and the Redis store (fewer examples, real server time).
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from hypothesis import strategies as st

from tollway.budgets.store import CounterStore, Line, Reservation
from tollway.budgets.windows import Window

SETTLE, RELEASE, RESERVE, EXPIRE = "settle", "release", "reserve", "expire"


@dataclass
class Scenario:
    limits: list[int | None]  # one per line
    amounts: list[list[int]]  # per request, per line
    actual: list[list[int]]  # per request, per line: what settle charges
    events: list[tuple[int, str]]  # (request, settle|release) or (-1, expire)


def scenarios(
    *, lines: int, max_requests: int = 12, overshoot: bool = False, expiry: bool = False
) -> st.SearchStrategy[Scenario]:
    """Random limits, requests and an interleaving of their steps."""

    @st.composite
    def build(draw: st.DrawFn) -> Scenario:
        limits = draw(st.lists(st.none() | st.integers(0, 120), min_size=lines, max_size=lines))
        n = draw(st.integers(1, max_requests))
        amounts = [
            draw(st.lists(st.integers(0, 40), min_size=lines, max_size=lines)) for _ in range(n)
        ]
        actual = []
        for row in amounts:
            top = (lambda a: a + 30) if overshoot else (lambda a: a)
            actual.append([draw(st.integers(0, top(a))) for a in row])
        # Each request reserves once, then settles or releases; steps interleave freely.
        steps = [(i, RESERVE) for i in range(n)] + [
            (i, draw(st.sampled_from([SETTLE, SETTLE, SETTLE, RELEASE]))) for i in range(n)
        ]
        order = draw(st.permutations(steps))
        seen: set[int] = set()
        events: list[tuple[int, str]] = []
        pending: dict[int, str] = {}
        for i, step in order:  # keep each request's reserve before its finish
            if step == RESERVE:
                seen.add(i)
                events.append((i, RESERVE))
                if i in pending:
                    events.append((i, pending.pop(i)))
            elif i in seen:
                events.append((i, step))
            else:
                pending[i] = step
            if expiry and draw(st.integers(0, 9)) == 0:
                events.append((-1, EXPIRE))
        return Scenario(limits, amounts, actual, events)

    return build()


@dataclass
class Model:
    """What the counters must hold, computed the obvious way."""

    limits: list[int | None]
    kinds: list[str]
    used: list[int] = field(default_factory=list)
    reserved: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.used = [0] * len(self.limits)
        self.reserved = [0] * len(self.limits)

    def fits(self, amounts: list[int]) -> bool:
        return all(
            limit is None or u + r + a <= limit
            for limit, u, r, a in zip(self.limits, self.used, self.reserved, amounts, strict=True)
        )


async def play(
    store: CounterStore,
    scenario: Scenario,
    windows: list[Window | None],
    *,
    prefix: str,
    ttl_ms: int = 60_000,
    advance: Callable[[], None] | None = None,
) -> Model:
    """Run `scenario` on `store`, checking every counter against the model after each step."""
    kinds = ["concurrency" if w is None else "budget" for w in windows]
    lines = [
        Line(f"{prefix}:{k}", window, scenario.limits[k], kinds[k])  # type: ignore[arg-type]
        for k, window in enumerate(windows)
    ]
    model = Model(list(scenario.limits), kinds)
    live: dict[int, Reservation] = {}
    expired: set[int] = set()
    finished: set[int] = set()
    probe = lines
    overshoot = [0] * len(windows)
    for request, step in scenario.events:
        if step == EXPIRE:
            assert advance is not None
            advance()  # every live reservation's TTL passes
            for i in live:
                if i not in finished and i not in expired:
                    expired.add(i)
                    for k, amount in enumerate(scenario.amounts[i]):
                        model.reserved[k] -= amount
        elif step == RESERVE:
            amounts = scenario.amounts[request]
            outcome = await store.reserve(lines, amounts, f"{prefix}-r{request}", ttl_ms)
            assert outcome.ok == model.fits(amounts), (outcome, model)
            if outcome.ok:
                assert outcome.reservation is not None
                live[request] = outcome.reservation
                for k, amount in enumerate(amounts):
                    model.reserved[k] += amount
            else:
                assert outcome.denial is not None
                k = outcome.denial.index
                limit = scenario.limits[k]
                state = outcome.denial.state
                assert limit is not None
                assert (state.used, state.reserved) == (model.used[k], model.reserved[k])
                assert state.used + state.reserved + amounts[k] > limit
        elif request in live and request not in finished:
            finished.add(request)
            reservation = live[request]
            if step == SETTLE:
                await store.settle(reservation, scenario.actual[request])
                await store.settle(reservation, scenario.actual[request])  # idempotent
            else:
                await store.release(reservation)
                await store.settle(reservation, scenario.actual[request])  # no effect now
            for k, amount in enumerate(scenario.amounts[request]):
                if request not in expired:
                    model.reserved[k] -= amount
                if step == SETTLE and kinds[k] != "concurrency":
                    charged = scenario.actual[request][k]
                    model.used[k] += charged
                    # A settle after expiry charges capacity that was lent out again.
                    late = request in expired
                    overshoot[k] += charged if late else max(0, charged - amount)
        else:
            continue
        state = await store.usage(probe)
        for k, line in enumerate(probe):
            got = state[line.key]
            assert (got.used, got.reserved) == (model.used[k], model.reserved[k]), (k, step)
            limit = scenario.limits[k]
            if limit is not None:
                # Reservations never over-admit; only overshoot on settle can pass a limit.
                assert got.used + got.reserved <= limit + overshoot[k]
    return model


def run_sync(coro: Coroutine[Any, Any, Any]) -> Any:
    """Drive a coroutine that never suspends (the memory store's) to its result."""
    try:
        coro.send(None)
    except StopIteration as stop:
        return stop.value
    coro.close()
    raise AssertionError("the coroutine suspended; it was expected to run straight through")
