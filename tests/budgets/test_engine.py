"""The budget engine: charges on the principal's path, errors, headers and failure modes."""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from tollway.budgets.engine import BudgetEngine, Ticket
from tollway.budgets.memory import MemoryCounterStore
from tollway.budgets.model import PUSD_PER_USD, parse_budgets, parse_rate_limits
from tollway.budgets.store import CounterState, Line, Reservation, ReserveOutcome, StoreUnavailable
from tollway.errors import BudgetExceeded, RateLimited, ServiceUnavailable
from tollway.metering.catalog import Price
from tollway.metering.peak import PeakSchedule, weighted
from tollway.metering.pricing import price_usage
from tollway.metering.usage import Usage

BERLIN = "Europe/Berlin"
# $2.50 input, $0.25 cached, $3.125 cache write, $15 output per 1M tokens
PRICE = Price(2_500_000, 250_000, 3_125_000, 15_000_000)
PATH = {"org": "acme", "team": "payments", "user": "ada", "key_id": "k1"}


def ms(year: int, month: int, day: int, hour: int = 0, minute: int = 0, tz: str = BERLIN) -> int:
    return int(datetime(year, month, day, hour, minute, tzinfo=ZoneInfo(tz)).timestamp() * 1000)


MONDAY_10 = ms(2026, 5, 4, 10)  # peak: weight 2.0
MONDAY_21 = ms(2026, 5, 4, 21)  # night: weight 0.5


class Clock:
    def __init__(self, now: int = MONDAY_10) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now


class FlakyStore:
    """A memory store that can be made unreachable."""

    def __init__(self, inner: MemoryCounterStore) -> None:
        self.inner = inner
        self.down = False

    def _check(self) -> None:
        if self.down:
            raise StoreUnavailable("connection refused")

    async def reserve(
        self, lines: Sequence[Line], amounts: Sequence[int], rid: str, ttl_ms: int
    ) -> ReserveOutcome:
        self._check()
        return await self.inner.reserve(lines, amounts, rid, ttl_ms)

    async def settle(self, reservation: Reservation, actual: Sequence[int]) -> None:
        self._check()
        await self.inner.settle(reservation, actual)

    async def release(self, reservation: Reservation) -> None:
        self._check()
        await self.inner.release(reservation)

    async def usage(self, lines: Sequence[Line]) -> dict[str, CounterState]:
        self._check()
        return await self.inner.usage(lines)

    async def set_used(self, line: Line, used: int) -> None:
        self._check()
        await self.inner.set_used(line, used)


BUDGETS = [
    {
        "scope": "team",
        "subject": "acme/payments",
        "window": "month",
        "soft_limit": "$0.80",
        "hard_limit": "$1",
    },
    {
        "scope": "user",
        "subject": "acme/payments/ada",
        "window": "day",
        "unit": "tokens_total",
        "hard_limit": "1M",
    },
    {"scope": "org", "subject": "acme", "window": "month", "unit": "usd_list", "hard_limit": 50},
    {"scope": "key", "subject": "k1", "window": "rolling 24h", "soft_limit": "$100"},
    {"scope": "tag", "subject": "experiment", "window": "week", "hard_limit": "$10"},
    # Same names elsewhere in the tree must not apply to acme/payments/ada:
    {"scope": "team", "subject": "globex/payments", "window": "day", "hard_limit": "$0"},
    {"scope": "user", "subject": "acme/search/ada", "window": "day", "hard_limit": "$0"},
]
RATES = [{"scope": "key", "subject": "k1", "rpm": 3, "tpm": 100_000, "concurrent": 2}]


def make_engine(
    clock: Clock | None = None, store: object | None = None, **kwargs: object
) -> tuple[BudgetEngine, Clock]:
    clock = clock or Clock()
    engine = BudgetEngine(
        store or MemoryCounterStore(clock_ms=clock),  # type: ignore[arg-type]
        parse_budgets(BUDGETS, default_timezone=BERLIN),
        parse_rate_limits(RATES),
        PeakSchedule.default(BERLIN),
        clock_ms=clock,
        **kwargs,  # type: ignore[arg-type]
    )
    return engine, clock


async def reserve(engine: BudgetEngine, tags: tuple[str, ...] = (), **kwargs: object) -> Ticket:
    args: dict[str, object] = {
        "model": "gpt-sim",
        "input_tokens": 1_000,
        "max_output_tokens": 500,
        "price": PRICE,
    }
    args.update(kwargs)
    return await engine.reserve(**PATH, tags=tags, **args)  # type: ignore[arg-type]


async def settle(engine: BudgetEngine, ticket: Ticket, usage: Usage) -> None:
    priced = price_usage(usage, PRICE)
    await engine.settle(ticket, usage, priced.list_cost_pusd, priced.actual_cost_pusd)


def test_only_the_principal_path_applies() -> None:
    engine, _ = make_engine()
    ids = [s.id for s in engine.applicable("acme", "payments", "ada", "k1", ("experiment",))]
    assert ids == [
        "key:k1:rolling-24h",
        "key:k1:rpm",
        "key:k1:tpm",
        "key:k1:concurrent",
        "user:acme/payments/ada:daily:tokens_total",
        "team:acme/payments:monthly",
        "org:acme:monthly:usd_list",
        "tag:experiment:weekly",
    ]
    others = engine.applicable("acme", "search", "bob", "k9")
    assert [s.id for s in others] == ["org:acme:monthly:usd_list"]


async def test_worst_case_charges_weighted_by_the_peak_schedule() -> None:
    engine, _ = make_engine()
    ticket = await reserve(engine)
    # Worst case: input at the dearest input price (cache write), plus all of max output.
    worst = 1_000 * 3_125_000 + 500 * 15_000_000
    by_id = dict(zip((s.id for s in ticket.specs), ticket.amounts, strict=True))
    assert ticket.weight_milli == 2000
    assert by_id["team:acme/payments:monthly"] == 2 * worst
    assert by_id["org:acme:monthly:usd_list"] == 2 * worst
    assert by_id["user:acme/payments/ada:daily:tokens_total"] == 2 * 1_500
    assert (by_id["key:k1:rpm"], by_id["key:k1:tpm"], by_id["key:k1:concurrent"]) == (1, 1_500, 1)

    usage = Usage(input_tokens=1_000, cached_input_tokens=400, output_tokens=120)
    await settle(engine, ticket, usage)
    await settle(engine, ticket, usage)  # a second settle is a no-op
    states = {s.spec.id: s for s in await engine.usage()}
    actual = price_usage(usage, PRICE).actual_cost_pusd
    assert states["team:acme/payments:monthly"].used == weighted(actual, 2000)
    assert ticket.weighted(actual) == weighted(actual, 2000)  # what the ledger records
    assert states["team:acme/payments:monthly"].reserved == 0
    assert states["user:acme/payments/ada:daily:tokens_total"].used == 2 * 1_120
    assert states["key:k1:tpm"].used == 1_120  # rate limits count raw tokens
    assert states["key:k1:rpm"].used == 1
    assert (states["key:k1:concurrent"].used, states["key:k1:concurrent"].reserved) == (0, 0)


async def test_night_and_batch_work_weigh_less() -> None:
    engine, clock = make_engine(Clock(MONDAY_21))
    night = await reserve(engine)
    assert night.weight_milli == 500
    await engine.release(night)
    clock.now = MONDAY_10
    engine.schedule = PeakSchedule.from_config({"timezone": BERLIN, "tags": {"batch": 0.5}})
    assert (await reserve(engine, ("batch",))).weight_milli == 500


async def test_hard_limit_names_the_budget_its_limit_usage_and_reset() -> None:
    engine, _ = make_engine()
    engine.replace_specs(parse_budgets(BUDGETS, default_timezone=BERLIN))  # no rate limits
    tickets = []
    with pytest.raises(BudgetExceeded) as caught:
        for _ in range(100):
            ticket = await reserve(engine, input_tokens=10_000, max_output_tokens=1_000)
            tickets.append(ticket)
            await settle(engine, ticket, Usage(input_tokens=10_000, output_tokens=1_000))
    error = caught.value
    message = error.message
    assert message.startswith("Budget 'team:payments monthly' exceeded: limit $1.00, used $0.")
    assert "this request needs up to $0.0925" in message and "peak weight 2" in message
    assert message.endswith("It resets at 2026-06-01T00:00:00+02:00.")
    reset_s = (ms(2026, 6, 1) - MONDAY_10) // 1000
    assert error.headers == {"retry-after": str(reset_s)}
    assert error.status == 429 and error.budget_id == "team:acme/payments:monthly"  # type: ignore[attr-defined]
    team = {s.spec.id: s for s in await engine.usage()}["team:acme/payments:monthly"]
    assert team.used == len(tickets) * 2 * 40_000_000_000 <= PUSD_PER_USD
    assert team.used + 2 * 46_250_000_000 > PUSD_PER_USD  # the refused one did not fit


async def test_rate_limits_and_concurrency() -> None:
    engine, clock = make_engine()
    first = await reserve(engine)
    second = await reserve(engine)
    with pytest.raises(RateLimited, match=r"at most 2 requests in flight"):
        await reserve(engine)
    await settle(engine, first, Usage(input_tokens=10, output_tokens=10))
    clock.now += 30_000
    third = await reserve(engine)
    await settle(engine, second, Usage(input_tokens=10, output_tokens=10))
    await settle(engine, third, Usage(input_tokens=10, output_tokens=10))
    with pytest.raises(RateLimited) as caught:
        await reserve(engine)
    assert caught.value.message.startswith(
        "Rate limit 'key:k1 requests per minute' reached: limit 3 requests per minute"
    )
    assert caught.value.headers == {"retry-after": "30"}  # the first two leave in 30 s
    clock.now += 30_000
    assert (await reserve(engine)).weight_milli == 2000


async def test_headers_and_the_tightest_budget() -> None:
    engine, _ = make_engine()
    assert engine.tightest("acme", "payments", "ada", "k1") is not None
    ticket = await reserve(engine, input_tokens=20_000, max_output_tokens=2_000)
    await settle(engine, ticket, Usage(input_tokens=20_000, output_tokens=2_000))
    ticket = await reserve(engine, input_tokens=100, max_output_tokens=100)
    tight = ticket.tightest()
    assert tight is not None and tight.spec.id == "team:acme/payments:monthly"
    assert 0.2 < tight.fraction < 0.3  # of the $0.80 soft limit
    headers = ticket.headers()
    assert headers["x-ratelimit-limit-requests"] == "3"
    assert headers["x-ratelimit-remaining-requests"] == "1"
    assert headers["x-ratelimit-reset-requests"] == "1m0s"
    assert headers["x-ratelimit-limit-tokens"] == "100000"
    assert headers["x-ratelimit-remaining-tokens"] == str(100_000 - 22_000 - 200)
    assert headers["x-tollway-budget"] == "team:payments monthly"
    assert headers["x-tollway-budget-remaining"] == "0.836375000000"  # USD, under the hard limit
    seen = engine.tightest("acme", "payments", "ada", "k1")
    assert seen is not None and seen.spec.id == tight.spec.id  # no I/O: as last seen
    assert ticket.soft_exceeded() == ()


async def test_closed_mode_refuses_with_503() -> None:
    clock = Clock()
    store = FlakyStore(MemoryCounterStore(clock_ms=clock))
    engine, _ = make_engine(clock, store)
    store.down = True
    with pytest.raises(ServiceUnavailable, match="counter store is unreachable") as caught:
        await reserve(engine)
    assert caught.value.status == 503 and caught.value.headers == {"retry-after": "1"}


async def test_open_bounded_mode_spends_at_most_its_allowance_then_refuses() -> None:
    clock = Clock()
    store = FlakyStore(MemoryCounterStore(clock_ms=clock))
    engine, _ = make_engine(clock, store, failure_mode="open-bounded", open_fraction="0.05")
    engine.replace_specs(parse_budgets(BUDGETS, default_timezone=BERLIN))
    kwargs = {"input_tokens": 100, "max_output_tokens": 100}
    seen = await reserve(engine, **kwargs)  # this replica sees the budgets once
    await settle(engine, seen, Usage(input_tokens=100, output_tokens=100))
    team = engine.last_seen("team:acme/payments:monthly")
    assert team is not None and team.reserved > 0  # as seen by its reserve
    remaining = PUSD_PER_USD - team.used - team.reserved
    assert team.remaining == remaining
    amount = seen.amounts[[s.id for s in seen.specs].index(team.spec.id)]

    store.down = True
    admitted = []
    with pytest.raises(ServiceUnavailable, match="local allowance for 'team:payments monthly'"):
        for _ in range(1_000):
            admitted.append(await reserve(engine, **kwargs))
    assert engine.degraded
    assert len(admitted) == (remaining * 50_000 // 1_000_000) // amount
    for ticket in admitted:
        assert ticket.local
        await settle(engine, ticket, Usage(input_tokens=50, output_tokens=10))
    assert (await reserve(engine, **kwargs)).local  # settled below reservation: room again

    with pytest.raises(ServiceUnavailable, match="has not seen 'user:bob daily'"):
        engine.replace_specs(
            parse_budgets(
                [
                    {
                        "scope": "user",
                        "subject": "acme/payments/bob",
                        "window": "day",
                        "hard_limit": 1,
                    }
                ],
                default_timezone=BERLIN,
            )
        )
        await engine.reserve(
            org="acme",
            team="payments",
            user="bob",
            key_id="k2",
            model="m",
            input_tokens=1,
            max_output_tokens=1,
            price=PRICE,
        )
    engine.replace_specs(parse_budgets(BUDGETS, default_timezone=BERLIN))

    assert "team:acme/payments:monthly" in engine.pending_reconciliation()
    store.down = False
    back = await reserve(engine, **kwargs)
    assert not back.local and not engine.degraded
    await engine.reconcile("team:acme/payments:monthly", 123_456)
    states = {s.spec.id: s for s in await engine.usage()}
    assert states["team:acme/payments:monthly"].used == 123_456
    assert "team:acme/payments:monthly" not in engine.pending_reconciliation()


async def test_open_bounded_refuses_honestly_when_the_budget_was_already_spent() -> None:
    clock = Clock()
    store = FlakyStore(MemoryCounterStore(clock_ms=clock))
    engine, _ = make_engine(clock, store, failure_mode="open-bounded")
    engine.replace_specs(parse_budgets(BUDGETS, default_timezone=BERLIN))
    with pytest.raises(BudgetExceeded):
        for _ in range(100):
            ticket = await reserve(engine, input_tokens=10_000, max_output_tokens=1_000)
            await settle(engine, ticket, Usage(input_tokens=10_000, output_tokens=1_000))
    store.down = True
    with pytest.raises(BudgetExceeded, match="team:payments monthly"):
        await reserve(engine, input_tokens=10_000, max_output_tokens=1_000)


async def test_settle_never_raises_when_the_store_is_down() -> None:
    clock = Clock()
    store = FlakyStore(MemoryCounterStore(clock_ms=clock))
    engine, _ = make_engine(clock, store)
    ticket = await reserve(engine)
    store.down = True
    await settle(engine, ticket, Usage(input_tokens=10, output_tokens=10))
    assert "team:acme/payments:monthly" in engine.pending_reconciliation()


async def test_a_price_function_and_a_discount() -> None:
    engine, _ = make_engine()

    def priced(usage: Usage):  # type: ignore[no-untyped-def]
        return price_usage(usage, PRICE, 200_000)  # 20% off

    ticket = await reserve(engine, price=priced)
    worst = 1_000 * 3_125_000 + 500 * 15_000_000
    by_id = dict(zip((s.id for s in ticket.specs), ticket.amounts, strict=True))
    assert by_id["org:acme:monthly:usd_list"] == 2 * worst
    assert by_id["team:acme/payments:monthly"] == 2 * (worst * 8 // 10)
    direct = await reserve(engine, price=PRICE, discount_ppm=200_000, request_id="same-as-fn")
    assert direct.amounts == ticket.amounts


async def test_engine_cost_per_request(capsys: pytest.CaptureFixture[str]) -> None:
    """Not a gate: reserve + settle through the engine on the memory store, 5 budgets and
    3 rate limits on the path."""
    engine, clock = make_engine()
    engine.replace_specs(
        parse_budgets(BUDGETS, default_timezone=BERLIN),
        parse_rate_limits(
            [{"scope": "key", "subject": "k1", "rpm": 10**9, "tpm": 10**12, "concurrent": 10**6}]
        ),
    )
    engine.replace_specs(
        [
            s.__class__(
                **{
                    **{
                        f: getattr(s, f)
                        for f in ("id", "scope", "subject", "unit", "window", "soft_limit", "label")
                    },
                    "hard_limit": 10**30,
                }
            )
            for s in engine.specs
            if hasattr(s, "unit")
        ],
        [s for s in engine.specs if not hasattr(s, "unit")],  # type: ignore[misc]
    )
    usage = Usage(input_tokens=900, output_tokens=300)
    n = 5_000
    started = time.perf_counter()
    for _ in range(n):
        ticket = await reserve(engine, ("experiment",))
        await engine.settle(ticket, usage, 5_000_000_000, 5_000_000_000)
    per_request = (time.perf_counter() - started) / n * 1e6
    with capsys.disabled():
        print(f"\nengine reserve+settle on memory, {len(ticket.plans)} lines: {per_request:.1f} us")
    assert per_request < 2_000
    clock.now += 1
