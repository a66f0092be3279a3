"""The in-process counter store: exact, for one process on one event loop.

Every method runs to completion without awaiting, so on one event loop each call is
atomic by construction: no lock, no interleaving inside a reserve. It keeps the same
semantics as the Redis store (see `tollway.budgets.store`), on the process's own clock.
"""

from __future__ import annotations

import heapq
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from tollway.budgets.store import (
    CounterState,
    Denial,
    Line,
    Reservation,
    ReserveOutcome,
    check_amounts,
)
from tollway.budgets.windows import CalendarWindow, RollingWindow

__all__ = ["MemoryCounterStore", "wall_clock_ms"]


def wall_clock_ms() -> int:
    """Milliseconds since the Unix epoch."""
    return time.time_ns() // 1_000_000


@dataclass(slots=True)
class _Cell:
    """One calendar window instance of one counter."""

    end_ms: int
    used: int = 0
    reserved: int = 0


@dataclass(slots=True)
class _Gauge:
    """A concurrency counter: only what is in flight."""

    reserved: int = 0


@dataclass(slots=True)
class _Rolling:
    """A rolling counter: used by bucket index, their sum, and what is in flight."""

    buckets: dict[int, int] = field(default_factory=dict)
    total: int = 0
    lo: int | None = None  # the oldest bucket still summed
    reserved: int = 0

    def advance(self, index: int, count: int) -> None:
        """Drop the buckets that left the window ending with bucket `index`."""
        cutoff = index - count + 1
        lo = self.lo
        if lo is None or cutoff <= lo:
            if lo is None:
                self.lo = cutoff
            return
        if cutoff - lo >= count:
            self.buckets.clear()
            self.total = 0
        else:
            for j in range(lo, cutoff):
                self.total -= self.buckets.pop(j, 0)
        self.lo = cutoff


@dataclass(slots=True)
class _Live:
    reservation: Reservation
    slots: list[tuple[_Cell | _Rolling | _Gauge, int]]


class MemoryCounterStore:
    """Counters in dicts; `clock_ms` is injectable so tests can move time."""

    def __init__(
        self,
        *,
        clock_ms: Callable[[], int] = wall_clock_ms,
        tombstone_ms: int = 120_000,
        grace_ms: int = 3_600_000,
    ) -> None:
        self._clock = clock_ms
        self._tombstone_ms = tombstone_ms
        self._grace_ms = grace_ms
        self._cells: dict[str, dict[int, _Cell]] = {}
        self._rolling: dict[str, _Rolling] = {}
        self._gauges: dict[str, _Gauge] = {}
        self._live: dict[str, _Live] = {}
        self._expiry: list[tuple[int, str]] = []
        self._tombs: dict[str, int] = {}
        self._tomb_order: deque[tuple[int, str]] = deque()

    # ----------------------------------------------------------------- protocol
    async def reserve(
        self, lines: Sequence[Line], amounts: Sequence[int], reservation_id: str, ttl_ms: int
    ) -> ReserveOutcome:
        return self.reserve_now(lines, amounts, reservation_id, ttl_ms)

    async def settle(self, reservation: Reservation, actual: Sequence[int]) -> None:
        self.settle_now(reservation, actual)

    async def release(self, reservation: Reservation) -> None:
        self.settle_now(reservation, (0,) * len(reservation.lines))

    async def usage(self, lines: Sequence[Line]) -> dict[str, CounterState]:
        now = self._clock()
        self._expire(now)
        result: dict[str, CounterState] = {}
        for line in lines:
            window = line.window
            if isinstance(window, CalendarWindow):
                start, end = window.bounds(now)
                cell = self._cells.get(line.key, {}).get(start)
                used, reserved = (cell.used, cell.reserved) if cell is not None else (0, 0)
                result[line.key] = CounterState(used, reserved, start, end)
            elif isinstance(window, RollingWindow):
                start, end = window.bounds(now)
                rolling = self._rolling.get(line.key)
                if rolling is None:
                    result[line.key] = CounterState(0, 0, start, end)
                else:
                    rolling.advance(window.bucket(now), window.buckets)
                    result[line.key] = CounterState(rolling.total, rolling.reserved, start, end)
            else:
                gauge = self._gauges.get(line.key)
                result[line.key] = CounterState(0, gauge.reserved if gauge else 0, 0, 0)
        return result

    async def set_used(self, line: Line, used: int) -> None:
        if used < 0:
            raise ValueError("used must be >= 0")
        now = self._clock()
        window = line.window
        if isinstance(window, CalendarWindow):
            start, end = window.bounds(now)
            self._cell(line.key, start, end, now).used = used
        elif isinstance(window, RollingWindow):
            rolling = self._rolling.setdefault(line.key, _Rolling())
            index = window.bucket(now)
            rolling.buckets = {index: used} if used else {}
            rolling.total = used
            rolling.lo = index - window.buckets + 1
        else:
            raise ValueError("a concurrency gauge has no used amount")

    # ----------------------------------------------------------------- sync core
    def reserve_now(
        self, lines: Sequence[Line], amounts: Sequence[int], reservation_id: str, ttl_ms: int
    ) -> ReserveOutcome:
        """`reserve` without the coroutine (it never awaits)."""
        check_amounts(lines, amounts)
        now = self._clock()
        self._expire(now)
        if reservation_id in self._live or reservation_id in self._tombs:
            raise ValueError(f"reservation id {reservation_id!r} was already used")
        slots: list[tuple[_Cell | _Rolling | _Gauge, int]] = []
        states: list[CounterState] = []
        for index, line in enumerate(lines):
            amount = amounts[index]
            window = line.window
            slot: _Cell | _Rolling | _Gauge
            if type(window) is CalendarWindow:
                start, end = window.bounds(now)
                slot = self._cell(line.key, start, end, now)
                used = slot.used
            elif type(window) is RollingWindow:
                rolling = self._rolling.get(line.key)
                if rolling is None:
                    rolling = self._rolling[line.key] = _Rolling()
                rolling.advance(now // window.bucket_ms, window.buckets)
                start, end = window.bounds(now)
                slot, used = rolling, rolling.total
            else:
                gauge = self._gauges.get(line.key)
                if gauge is None:
                    gauge = self._gauges[line.key] = _Gauge()
                slot, used, start, end = gauge, 0, 0, 0
            state = CounterState(used, slot.reserved, start, end)
            limit = line.limit
            if limit is not None and used + state.reserved + amount > limit:
                retry = self._retry_at(line, amount, slot, state, now)
                return ReserveOutcome(denial=Denial(index, line, amount, state, now, retry))
            slots.append((slot, amount))
            states.append(state)
        for slot, amount in slots:
            slot.reserved += amount
        expires = now + ttl_ms
        reservation = Reservation(
            reservation_id, tuple(lines), tuple(amounts), tuple(states), now, expires
        )
        self._live[reservation_id] = _Live(reservation, slots)
        heapq.heappush(self._expiry, (expires, reservation_id))
        return ReserveOutcome(reservation=reservation)

    def settle_now(self, reservation: Reservation, actual: Sequence[int]) -> None:
        """`settle` without the coroutine (it never awaits)."""
        if len(actual) != len(reservation.lines):
            raise ValueError("settle needs one actual amount per line")
        now = self._clock()
        self._expire(now)
        rid = reservation.id
        if rid in self._tombs:
            return
        live = self._live.pop(rid, None)
        if live is not None:
            for slot, amount in live.slots:
                slot.reserved -= amount
        for line, state, amount in zip(reservation.lines, reservation.states, actual, strict=True):
            if amount <= 0 or line.kind == "concurrency":
                if amount < 0:
                    raise ValueError("actual amounts must be >= 0")
                continue
            window = line.window
            if type(window) is CalendarWindow:
                self._cell(line.key, state.window_start_ms, state.window_end_ms, now).used += amount
            elif type(window) is RollingWindow:
                rolling = self._rolling.setdefault(line.key, _Rolling())
                rolling.advance(now // window.bucket_ms, window.buckets)
                bucket = state.window_end_ms // window.bucket_ms - 1
                assert rolling.lo is not None
                if bucket >= rolling.lo:  # else: charged at a start that left the window
                    rolling.buckets[bucket] = rolling.buckets.get(bucket, 0) + amount
                    rolling.total += amount
        expires = now + self._tombstone_ms
        self._tombs[rid] = expires
        self._tomb_order.append((expires, rid))

    # ----------------------------------------------------------------- internals
    def _cell(self, key: str, start: int, end: int, now: int) -> _Cell:
        cells = self._cells.get(key)
        if cells is None:
            cells = self._cells[key] = {}
        cell = cells.get(start)
        if cell is None:
            # A new instance: forget the ones whose grace period is over (their TTL).
            for old in [s for s, c in cells.items() if c.end_ms + self._grace_ms < now]:
                del cells[old]
            cell = cells[start] = _Cell(end)
        return cell

    def _retry_at(
        self,
        line: Line,
        amount: int,
        slot: _Cell | _Rolling | _Gauge,
        state: CounterState,
        now: int,
    ) -> int | None:
        window = line.window
        if isinstance(window, CalendarWindow):
            return state.window_end_ms
        if isinstance(window, RollingWindow) and isinstance(slot, _Rolling):
            assert line.limit is not None
            excess = state.used + state.reserved + amount - line.limit
            index = window.bucket(now)
            freed = 0
            for bucket in range(index - window.buckets + 1, index + 1):
                freed += slot.buckets.get(bucket, 0)
                if freed >= excess:
                    return (bucket + window.buckets) * window.bucket_ms
            return state.window_end_ms  # held by requests in flight: try after this bucket
        return None

    def _expire(self, now: int) -> None:
        heap = self._expiry
        while heap and heap[0][0] <= now:
            expires, rid = heapq.heappop(heap)
            live = self._live.get(rid)
            if live is not None and live.reservation.expires_at_ms == expires:
                del self._live[rid]
                for slot, amount in live.slots:
                    slot.reserved -= amount
        order = self._tomb_order
        while order and order[0][0] <= now:
            expires, rid = order.popleft()
            if self._tombs.get(rid) == expires:
                del self._tombs[rid]

    def __repr__(self) -> str:
        return f"<MemoryCounterStore {len(self._live)} live reservations>"
