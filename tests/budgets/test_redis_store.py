"""The Redis counter store against a real redis-server: the same guarantees as in memory,
across replicas, on the server's clock, and through a crash of the server."""

from __future__ import annotations

import asyncio
import itertools
import random
import statistics
import time
import uuid
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings

from tests.budgets.conftest import RedisServer, needs_redis
from tests.budgets.scenarios import Scenario, play, scenarios
from tollway.budgets.store import Line, StoreUnavailable
from tollway.budgets.windows import CalendarWindow, RollingWindow

redis_store_module = pytest.importorskip("tollway.budgets.redis_store")
RedisCounterStore = redis_store_module.RedisCounterStore

pytestmark = needs_redis

UTC = ZoneInfo("UTC")
BERLIN = ZoneInfo("Europe/Berlin")
WINDOWS = [RollingWindow.hours(24), CalendarWindow("month", UTC), RollingWindow.hours(1), None]
_ids = itertools.count()


def _prefix() -> str:
    return f"t-{uuid.uuid4().hex[:10]}:"


@given(scenarios(lines=len(WINDOWS), max_requests=8, overshoot=True))
@settings(max_examples=25, deadline=None)
def test_interleavings_match_the_model(redis_server: RedisServer, sc: Scenario) -> None:
    async def main() -> None:
        async with RedisCounterStore(redis_server.url, prefix=_prefix()) as store:
            await play(store, sc, WINDOWS, prefix=f"p{next(_ids)}")

    asyncio.run(main())


async def test_three_replicas_admit_exactly_what_the_budget_allows(
    redis_server: RedisServer,
) -> None:
    prefix = _prefix()
    replicas = [RedisCounterStore(redis_server.url, prefix=prefix) for _ in range(3)]
    for store in replicas:
        await store.start()
    month = CalendarWindow("month", BERLIN)
    amount = 7_777 * 10**9  # $0.007777 in pico-USD, weighted
    team_limit = amount * 250 + amount // 2  # room for exactly 250
    accepted = 0

    async def client(i: int) -> None:
        nonlocal accepted
        store = replicas[i % 3]
        path = [
            Line(f"key:k{i % 17}", month, None),
            Line(f"user:acme/payments/u{i % 29}", month, None),
            Line("team:acme/payments", month, team_limit),
            Line("org:acme", month, team_limit * 10),
        ]
        await asyncio.sleep(random.random() / 200)
        outcome = await store.reserve(path, [amount] * 4, f"req-{i}", 60_000)
        if outcome.ok:
            accepted += 1
            await asyncio.sleep(random.random() / 200)
            await store.settle(outcome.reservation, [amount] * 4)
        else:
            assert outcome.denial.line.key == "team:acme/payments"

    try:
        await asyncio.gather(*(client(i) for i in range(400)))
        assert accepted == team_limit // amount == 250
        team = Line("team:acme/payments", month, team_limit)
        state = (await replicas[1].usage([team]))["team:acme/payments"]
        assert (state.used, state.reserved) == (250 * amount, 0)
        assert state.used <= team_limit
    finally:
        for store in replicas:
            await store.close()


async def test_concurrency_limit_holds_across_replicas(redis_server: RedisServer) -> None:
    prefix = _prefix()
    replicas = [RedisCounterStore(redis_server.url, prefix=prefix) for _ in range(3)]
    gauge = Line("conc:team", None, 5, "concurrency")
    in_flight = peak = admitted = 0

    async def client(i: int) -> None:
        nonlocal in_flight, peak, admitted
        for attempt in range(40):
            outcome = await replicas[i % 3].reserve([gauge], [1], f"c{i}-{attempt}", 60_000)
            if outcome.ok:
                admitted += 1
                in_flight += 1
                peak = max(peak, in_flight)
                await asyncio.sleep(0.002)
                in_flight -= 1
                await replicas[i % 3].settle(outcome.reservation, [1])
                return
            await asyncio.sleep(0.001)

    try:
        await asyncio.gather(*(client(i) for i in range(30)))
        assert peak <= 5 and admitted == 30
        assert (await replicas[0].usage([gauge]))["conc:team"].reserved == 0
    finally:
        for store in replicas:
            await store.close()


async def test_reservations_expire_and_capacity_comes_back(redis_store: RedisCounterStore) -> None:
    line = Line("b", CalendarWindow("day", UTC), 10)
    crashed = await redis_store.reserve([line], [10], "crashed", 300)
    assert crashed.ok
    assert not (await redis_store.reserve([line], [10], "blocked", 300)).ok
    await asyncio.sleep(0.4)
    assert (await redis_store.usage([line]))["b"].reserved == 0  # given back lazily
    after = await redis_store.reserve([line], [10], "after", 60_000)
    assert after.ok
    await redis_store.settle(crashed.reservation, [4])  # late: still charged
    await redis_store.settle(crashed.reservation, [4])  # and only once
    state = (await redis_store.usage([line]))["b"]
    assert (state.used, state.reserved) == (4, 10)


async def test_windows_follow_server_time_whatever_the_replica_clock(
    redis_server: RedisServer,
) -> None:
    prefix = _prefix()
    three_days = 3 * 86_400_000
    honest = RedisCounterStore(redis_server.url, prefix=prefix)
    skewed = RedisCounterStore(
        redis_server.url, prefix=prefix, clock_ms=lambda: time.time_ns() // 1_000_000 + three_days
    )
    day = CalendarWindow("day", BERLIN)
    line = Line("daily", day, 100)
    try:
        first = await honest.reserve([line], [10], "h1", 60_000)
        second = await skewed.reserve([line], [10], "s1", 60_000)  # skew answer, then a retry
        assert first.ok and second.ok
        assert first.reservation.states[0].window_start_ms == (
            second.reservation.states[0].window_start_ms
        )
        assert abs(skewed.clock_offset_ms + three_days) < 5_000
        state = (await honest.usage([line]))["daily"]
        assert state.reserved == 20
        third = await skewed.reserve([line], [10], "s2", 60_000)  # learned offset: no retry
        assert third.reservation.states[0].reserved == 20
    finally:
        await honest.close()
        await skewed.close()


async def test_rolling_rate_limit_says_when_capacity_frees(redis_store: RedisCounterStore) -> None:
    rpm = Line("rpm", RollingWindow.minute(), 2, "rate")
    first = await redis_store.reserve([rpm], [1], "a", 60_000)
    await redis_store.settle(first.reservation, [1])
    second = await redis_store.reserve([rpm], [1], "b", 60_000)
    await redis_store.settle(second.reservation, [1])
    denied = await redis_store.reserve([rpm], [1], "c", 60_000)
    assert not denied.ok
    first_bucket = first.reservation.states[0].window_end_ms // 1000 - 1
    assert denied.denial.retry_at_ms == (first_bucket + 60) * 1000
    assert 0 < denied.denial.retry_at_ms - denied.denial.now_ms <= 60_000


async def test_amounts_stay_exact_far_beyond_double_precision(
    redis_store: RedisCounterStore,
) -> None:
    huge = 10**21 + 123_456_789  # a billion dollars and change, in pico-USD
    line = Line("org", CalendarWindow("month", UTC), 3 * huge + 1)
    await redis_store.set_used(line, huge - 1)
    outcome = await redis_store.reserve([line], [huge], "big", 60_000)
    assert outcome.ok and outcome.reservation.states[0].used == huge - 1
    assert not (await redis_store.reserve([line], [2 * huge + 3], "too-big", 60_000)).ok
    await redis_store.settle(outcome.reservation, [huge + 1])
    state = (await redis_store.usage([line]))["org"]
    assert (state.used, state.reserved) == (2 * huge, 0)
    assert not (await redis_store.reserve([line], [huge + 2], "one-over", 60_000)).ok
    assert (await redis_store.reserve([line], [huge + 1], "exact-fit", 60_000)).ok


async def test_rolling_reconcile_and_bucket_sums(redis_store: RedisCounterStore) -> None:
    rolling = Line("r24", RollingWindow.hours(24), 1_000)
    await redis_store.set_used(rolling, 900)
    assert not (await redis_store.reserve([rolling], [101], "x", 1000)).ok
    ok = await redis_store.reserve([rolling], [100], "y", 1000)
    await redis_store.settle(ok.reservation, [60])
    assert (await redis_store.usage([rolling]))["r24"].used == 960


async def test_killed_server_fails_fast_and_health_recovers(private_redis: RedisServer) -> None:
    store = RedisCounterStore(private_redis.url, prefix=_prefix(), timeout_s=0.25)
    line = Line("team", CalendarWindow("month", UTC), 100)
    await store.start()
    try:
        assert store.health.healthy and store.health.interval_s == 1.0
        assert (await store.reserve([line], [1], "before", 60_000)).ok

        private_redis.kill()
        deadline = time.monotonic() + 3
        while store.health.healthy and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert not store.health.healthy  # the background checker noticed on its own

        started = time.monotonic()
        with pytest.raises(StoreUnavailable):
            await store.reserve([line], [1], "during", 60_000)
        assert time.monotonic() - started < 0.5

        private_redis.start()  # same port, empty: counters come back from the ledger
        deadline = time.monotonic() + 4
        while not store.health.healthy and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert store.health.healthy
        after = await store.reserve([line], [1], "after", 60_000)  # scripts are loaded again
        assert after.ok and after.reservation.states[0].used == 0
    finally:
        await store.close()


async def test_redis_reserve_settle_round_trip(
    redis_store: RedisCounterStore, capsys: pytest.CaptureFixture[str]
) -> None:
    """Not a gate: p50/p99 of reserve + settle over a 4-level path on loopback."""
    month = CalendarWindow("month", BERLIN)
    path = [
        Line("key:k1", month, None),
        Line("user:acme/payments/ada", month, 10**30),
        Line("team:acme/payments", month, 10**30),
        Line("org:acme", month, 10**30),
    ]
    both, reserve_only, settle_only = [], [], []
    for i in range(1_500):
        started = time.perf_counter()
        outcome = await redis_store.reserve(path, [10**9] * 4, f"lat{i}", 60_000)
        middle = time.perf_counter()
        await redis_store.settle(outcome.reservation, [9 * 10**8] * 4)
        ended = time.perf_counter()
        both.append((ended - started) * 1e6)
        reserve_only.append((middle - started) * 1e6)
        settle_only.append((ended - middle) * 1e6)

    def pct(samples: list[float]) -> str:
        ordered = sorted(samples[100:])
        p99 = ordered[int(len(ordered) * 0.99)]
        return f"p50 {statistics.median(ordered):.0f} us, p99 {p99:.0f} us"

    with capsys.disabled():
        print(
            f"\nredis, 4 lines: reserve+settle {pct(both)}; reserve {pct(reserve_only)}; "
            f"settle {pct(settle_only)}"
        )
    assert statistics.median(both) < 50_000


async def test_every_key_expires_on_its_own(redis_server: RedisServer) -> None:
    import redis.asyncio as aioredis

    prefix = _prefix()
    store = RedisCounterStore(redis_server.url, prefix=prefix)
    lines = [
        Line("cal", CalendarWindow("day", BERLIN), 10**6),
        Line("roll", RollingWindow.hours(2), 10**6, "rate"),
        Line("conc", None, 10, "concurrency"),
    ]
    try:
        settled = await store.reserve(lines, [5, 5, 1], "one", 60_000)
        await store.settle(settled.reservation, [3, 3, 1])
        await store.reserve(lines, [5, 5, 1], "two-never-settled", 60_000)
        await store.set_used(lines[0], 7)
        raw = aioredis.Redis.from_url(redis_server.url)
        keys = [key async for key in raw.scan_iter(match=f"{prefix}*")]
        assert len(keys) >= 7  # window hash, its set, rolling buckets and state, gauge, tomb
        for key in keys:
            assert await raw.pttl(key) > 0, key  # nothing lives forever, no sweeper needed
        await raw.aclose()
    finally:
        await store.close()


async def test_a_short_reservation_behind_a_long_one_still_expires_on_time(
    redis_store: RedisCounterStore,
) -> None:
    line = Line("mixed", CalendarWindow("day", UTC), 10)
    assert (await redis_store.reserve([line], [5], "long", 60_000)).ok
    assert (await redis_store.reserve([line], [5], "short", 200)).ok
    assert not (await redis_store.reserve([line], [5], "blocked", 60_000)).ok
    await asyncio.sleep(0.3)
    assert (await redis_store.reserve([line], [5], "after-short", 60_000)).ok


async def test_engine_over_redis_through_a_crash(private_redis: RedisServer) -> None:
    from tollway.budgets.engine import BudgetEngine
    from tollway.budgets.model import parse_budgets
    from tollway.errors import ServiceUnavailable
    from tollway.metering.catalog import Price

    price = Price(2_500_000, 250_000, 2_500_000, 15_000_000)
    specs = parse_budgets(
        [{"scope": "team", "subject": "acme/payments", "window": "month", "hard_limit": "$1"}],
        default_timezone="Europe/Berlin",
    )
    store = RedisCounterStore(private_redis.url, prefix=_prefix())
    await store.start()
    closed = BudgetEngine(store, specs)
    bounded = BudgetEngine(store, specs, failure_mode="open-bounded", open_fraction="0.5")
    request = {
        "org": "acme",
        "team": "payments",
        "user": "ada",
        "key_id": "k1",
        "model": "m",
        "input_tokens": 1_000,
        "max_output_tokens": 1_000,
        "price": price,
    }
    try:
        for engine in (closed, bounded):  # both replicas see the budget once
            await engine.release(await engine.reserve(**request))  # type: ignore[arg-type]
        private_redis.kill()
        started = time.monotonic()
        with pytest.raises(ServiceUnavailable, match="counter store is unreachable"):
            await closed.reserve(**request)  # type: ignore[arg-type]
        assert time.monotonic() - started < 0.5 and not store.health.healthy
        local = await bounded.reserve(**request)  # type: ignore[arg-type]
        assert local.local and bounded.degraded
        await bounded.release(local)

        private_redis.start()
        deadline = time.monotonic() + 4
        while not store.health.healthy and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        back = await bounded.reserve(**request)  # type: ignore[arg-type]
        assert not back.local and not bounded.degraded
        assert bounded.pending_reconciliation() == {"team:acme/payments:monthly"}
        await bounded.reconcile("team:acme/payments:monthly", 250_000_000_000)  # from the ledger
        (state,) = await closed.usage()
        assert state.used == 250_000_000_000
    finally:
        await store.close()
