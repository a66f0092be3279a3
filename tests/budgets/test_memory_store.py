"""The in-process counter store: the store guarantees, checked against a model."""

from __future__ import annotations

import asyncio
import itertools
import random
import time
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.budgets.scenarios import Scenario, play, run_sync, scenarios
from tollway.budgets.memory import MemoryCounterStore
from tollway.budgets.store import Line
from tollway.budgets.windows import CalendarWindow, RollingWindow

UTC = ZoneInfo("UTC")
T0 = 1_780_000_000_000 - 1_780_000_000_000 % 86_400_000 + 43_200_000  # a midday, UTC
WINDOWS = [
    CalendarWindow("day", UTC),
    CalendarWindow("month", ZoneInfo("Europe/Berlin")),
    RollingWindow.hours(24),
    None,  # a concurrency gauge
]


class FakeClock:
    def __init__(self, now: int = T0) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now


_ids = itertools.count()


@given(scenarios(lines=len(WINDOWS)))
@settings(max_examples=300, deadline=None)
def test_interleavings_never_over_admit_and_used_is_the_sum_of_settles(sc: Scenario) -> None:
    store = MemoryCounterStore(clock_ms=FakeClock())
    model = run_sync(play(store, sc, WINDOWS, prefix=f"m{next(_ids)}"))
    for k, limit in enumerate(sc.limits):
        if limit is not None:
            assert model.used[k] <= limit  # settles never exceed reservations here
    assert model.reserved == [0] * len(WINDOWS)  # every request settled or released


@given(scenarios(lines=len(WINDOWS), overshoot=True, expiry=True))
@settings(max_examples=300, deadline=None)
def test_interleavings_with_overshoot_and_expiry_match_the_model(sc: Scenario) -> None:
    clock = FakeClock()

    def advance() -> None:
        clock.now += 1_001

    store = MemoryCounterStore(clock_ms=clock)
    run_sync(play(store, sc, WINDOWS, prefix=f"e{next(_ids)}", ttl_ms=1_000, advance=advance))


def test_all_or_none_names_the_failing_line() -> None:
    store = MemoryCounterStore(clock_ms=FakeClock())
    day = CalendarWindow("day", UTC)
    lines = [Line("key", day, None), Line("team", day, 12), Line("org", day, 100)]
    assert run_sync(store.reserve(lines, [5, 5, 5], "a", 1000)).ok
    assert run_sync(store.reserve(lines, [5, 5, 5], "b", 1000)).ok
    outcome = run_sync(store.reserve(lines, [5, 5, 5], "c", 1000))
    assert not outcome.ok and outcome.denial.index == 1
    assert (outcome.denial.state.used, outcome.denial.state.reserved) == (0, 10)
    assert outcome.denial.retry_at_ms == day.bounds(T0)[1]
    usage = run_sync(store.usage(lines))
    assert [usage[k].reserved for k in ("key", "team", "org")] == [10, 10, 10]  # c left no trace


def test_overshoot_is_charged_and_bounded_by_one_request_when_sequential() -> None:
    store = MemoryCounterStore(clock_ms=FakeClock())
    line = Line("b", CalendarWindow("day", UTC), 100)
    admitted = 0
    for i in range(10):
        outcome = run_sync(store.reserve([line], [30], f"r{i}", 1000))
        if not outcome.ok:
            break
        admitted += 1
        run_sync(store.settle(outcome.reservation, [60]))  # no max_tokens: 30 over
    used = run_sync(store.usage([line]))["b"].used
    assert admitted == 2  # at 0 and at 60 a 30 fits under 100; at 120 nothing does
    assert used == 120 and used <= 100 + (60 - 30)  # past by one request's overshoot at most


def test_expired_reservations_give_capacity_back_and_late_settle_still_charges() -> None:
    clock = FakeClock()
    store = MemoryCounterStore(clock_ms=clock)
    line = Line("b", RollingWindow.hours(1), 10)
    first = run_sync(store.reserve([line], [10], "crashed", 500))
    assert first.ok
    assert not run_sync(store.reserve([line], [10], "blocked", 500)).ok
    clock.now += 501
    second = run_sync(store.reserve([line], [10], "after", 500))
    assert second.ok
    run_sync(store.settle(first.reservation, [7]))  # the crashed replica came back late
    state = run_sync(store.usage([line]))["b"]
    assert (state.used, state.reserved) == (7, 10)


def test_rate_lines_roll_and_concurrency_is_given_back() -> None:
    clock = FakeClock(T0 - T0 % 60_000)
    store = MemoryCounterStore(clock_ms=clock)
    rpm = Line("rpm", RollingWindow.minute(), 3, "rate")
    conc = Line("conc", None, 2, "concurrency")
    held = []
    for i in range(3):
        clock.now += 10_000
        outcome = run_sync(store.reserve([rpm, conc], [1, 1], f"q{i}", 60_000))
        if i < 2:
            held.append(outcome.reservation)
        else:
            assert outcome.denial.line.key == "conc"  # two in flight already
    for reservation in held:
        run_sync(store.settle(reservation, [1, 1]))
    assert run_sync(store.usage([conc]))["conc"].reserved == 0
    third = run_sync(store.reserve([rpm, conc], [1, 1], "q3", 60_000))
    run_sync(store.settle(third.reservation, [1, 1]))
    denied = run_sync(store.reserve([rpm, conc], [1, 1], "q4", 60_000))
    assert denied.denial.line.key == "rpm"
    # The first request (at +10 s) leaves the rolling minute first.
    assert denied.denial.retry_at_ms == T0 - T0 % 60_000 + 10_000 + 60_000
    clock.now = denied.denial.retry_at_ms
    assert run_sync(store.reserve([rpm, conc], [1, 1], "q5", 60_000)).ok


def test_calendar_windows_reset_at_the_boundary_without_a_sweeper() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    day = CalendarWindow("day", berlin)
    _, end = day.bounds(T0)
    clock = FakeClock(end - 1)
    store = MemoryCounterStore(clock_ms=clock)
    line = Line("d", day, 10)
    reservation = run_sync(store.reserve([line], [10], "late", 60_000)).reservation
    assert not run_sync(store.reserve([line], [10], "x", 60_000)).ok
    clock.now = end
    assert run_sync(store.reserve([line], [10], "new-day", 60_000)).ok
    run_sync(store.settle(reservation, [10]))  # counted in the day it was admitted
    assert run_sync(store.usage([line]))["d"].used == 0
    clock.now = end - 1
    assert run_sync(store.usage([line]))["d"].used == 10


def test_set_used_reconciles_and_amounts_stay_exact_beyond_2_to_the_53() -> None:
    store = MemoryCounterStore(clock_ms=FakeClock())
    month = CalendarWindow("month", UTC)
    huge = 10**20 + 7  # $100M in pico-USD
    line = Line("org", month, 3 * huge)
    run_sync(store.set_used(line, huge))
    outcome = run_sync(store.reserve([line], [huge], "big", 1000))
    run_sync(store.settle(outcome.reservation, [huge + 1]))
    assert run_sync(store.usage([line]))["org"].used == 2 * huge + 1


def test_reusing_a_reservation_id_or_a_key_is_refused() -> None:
    store = MemoryCounterStore(clock_ms=FakeClock())
    day = CalendarWindow("day", UTC)
    run_sync(store.reserve([Line("a", day, None)], [1], "same", 1000))
    with pytest.raises(ValueError, match="already used"):
        run_sync(store.reserve([Line("a", day, None)], [1], "same", 1000))
    with pytest.raises(ValueError, match="own key"):
        run_sync(store.reserve([Line("a", day, None), Line("a", day, None)], [1, 1], "x", 1000))
    with pytest.raises(ValueError, match="non-negative"):
        run_sync(store.reserve([Line("b", day, None)], [-1], "y", 1000))


async def test_concurrent_tasks_on_one_loop_admit_exactly_what_fits() -> None:
    store = MemoryCounterStore()
    line = Line("team", CalendarWindow("month", UTC), 1_000)
    accepted = 0

    async def client(i: int) -> None:
        nonlocal accepted
        await asyncio.sleep(random.random() / 1000)
        outcome = await store.reserve([line], [7], f"c{i}", 60_000)
        if outcome.ok:
            accepted += 1
            await asyncio.sleep(random.random() / 1000)
            await store.settle(outcome.reservation, [7])

    await asyncio.gather(*(client(i) for i in range(300)))
    assert accepted == 1_000 // 7
    assert (await store.usage([line]))["team"].used == 7 * (1_000 // 7)


@pytest.mark.parametrize("levels", [4])
def test_memory_reserve_settle_cost(levels: int, capsys: pytest.CaptureFixture[str]) -> None:
    """Not a benchmark gate: prints the cost of one reserve + settle over a 4-level path."""
    store = MemoryCounterStore()
    month = CalendarWindow("month", UTC)
    lines = [Line(f"l{i}", month, 10**30) for i in range(levels)]
    amounts = (1_000,) * levels
    n = 20_000
    started = time.perf_counter()
    for i in range(n):
        outcome = store.reserve_now(lines, amounts, f"p{i}", 60_000)
        store.settle_now(outcome.reservation, (900,) * levels)  # type: ignore[arg-type]
    per_request_us = (time.perf_counter() - started) / n * 1e6
    with capsys.disabled():
        print(f"\nmemory store reserve+settle, {levels} lines: {per_request_us:.1f} us/request")
    assert per_request_us < 1_000


@given(st.integers(0, 50), st.integers(1, 50))
def test_gauge_never_goes_negative(holders: int, limit: int) -> None:
    store = MemoryCounterStore(clock_ms=FakeClock())
    gauge = Line("g", None, limit, "concurrency")
    reservations = [run_sync(store.reserve([gauge], [1], f"g{i}", 1000)) for i in range(holders)]
    admitted = [o.reservation for o in reservations if o.ok]
    assert len(admitted) == min(holders, limit)
    for reservation in admitted:
        run_sync(store.release(reservation))
        run_sync(store.release(reservation))
    assert run_sync(store.usage([gauge]))["g"].reserved == 0
