"""The Redis counter store: one Lua script, one round trip, per reserve and per settle.

Every replica sharing a Redis server shares exactly one view of every counter: a reserve
checks and updates every line of a request's path inside one script, which Redis runs
atomically, and a settle does the same.

**Time is the server's.** Each script reads ``redis.call('TIME')`` and decides with it
which window instance or bucket a line counts in, and when reservations expire, so
replicas with skewed clocks still agree. Calendar windows need a timezone database that
Lua lacks, so the caller sends, for each calendar line, the instances around *its* idea
of now — previous start, start, end, next end — and the script picks the one holding the
server's instant. A caller whose clock is off by more than a whole window gets a ``skew``
answer carrying the server's time and retries once with bounds computed from it; the store
also keeps the last seen offset between the two clocks, so this is rare. Rolling windows
and expiry need no help: buckets are ``floor(server_ms / bucket_ms)``.

Keys expire on their own: a calendar instance at its end plus `grace_ms` (and never before
the longest reservation could end), rolling counters a window after their last charge,
settle tombstones after `tombstone_ms`. Nothing sweeps.

**Failures** surface as `StoreUnavailable`: at once when the server refuses or drops the
connection (it is down), after `timeout_s` when it does not answer, `connect_timeout_s`
when a connection cannot be made, `pool_timeout_s` when every pooled connection stays
busy. redis-py's retries are off, because a reserve replayed after a lost reply would
reserve twice. The `health` checker pings every `health_interval_s` (1 s); a refused or
dropped connection marks it down at once (a slow reply alone does not: under load that
is no proof), so the engine can skip a store known to be down instead of waiting on it.
After a failure the connection pool is dropped, so a restarted server is reached on fresh
connections, and the scripts are loaded again on first use (EVALSHA falls back to LOAD).

Requires a standalone Redis (or a Sentinel-managed primary) 7.0+: the scripts compute
their key names, which Redis Cluster does not allow.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from typing import Any

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from tollway.budgets import _redis_lua
from tollway.budgets.health import HealthChecker
from tollway.budgets.memory import wall_clock_ms
from tollway.budgets.store import (
    CounterState,
    Denial,
    Line,
    Reservation,
    ReserveOutcome,
    StoreUnavailable,
    check_amounts,
)
from tollway.budgets.windows import CalendarWindow, RollingWindow

__all__ = ["RedisCounterStore"]

log = logging.getLogger(__name__)

_DOWN_ERRORS = (RedisConnectionError, RedisTimeoutError, OSError, asyncio.TimeoutError)


class RedisCounterStore:
    """Counters in Redis, shared by every replica; see the module docstring."""

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "tollway:",
        timeout_s: float = 0.5,
        connect_timeout_s: float = 1.0,
        health_interval_s: float = 1.0,
        max_ttl_ms: int = 3_600_000,
        grace_ms: int = 3_600_000,
        tombstone_ms: int = 120_000,
        max_connections: int = 64,
        pool_timeout_s: float = 1.0,
        clock_ms: Callable[[], int] = wall_clock_ms,
    ) -> None:
        self.url = url
        self.prefix = prefix
        self.max_ttl_ms = max_ttl_ms
        self.grace_ms = grace_ms
        self.tombstone_ms = tombstone_ms
        self._clock = clock_ms
        self._offset_ms = 0  # server clock minus ours, as last seen
        # A blocking pool: a burst beyond `max_connections` waits (up to `pool_timeout_s`)
        # for a connection instead of failing as if Redis were down.
        pool = BlockingConnectionPool.from_url(
            url,
            max_connections=max_connections,
            timeout=pool_timeout_s,
            socket_timeout=timeout_s,
            socket_connect_timeout=connect_timeout_s,
            retry=Retry(NoBackoff(), 0),
            decode_responses=False,
        )
        self._client: Redis = Redis(connection_pool=pool, retry=Retry(NoBackoff(), 0))
        self._reserve = self._client.register_script(_redis_lua.RESERVE)
        self._settle = self._client.register_script(_redis_lua.SETTLE)
        self._usage = self._client.register_script(_redis_lua.USAGE)
        self._set_used = self._client.register_script(_redis_lua.SET_USED)
        self.health = HealthChecker(
            self.ping,
            name=f"redis counter store {url}",
            interval_s=health_interval_s,
            timeout_s=max(timeout_s, 0.05),
        )

    # ----------------------------------------------------------------- lifecycle
    async def start(self) -> None:
        """Load the scripts, check the server and keep checking it.

        A server that is down is no error here: the health flag says so, and the scripts
        are loaded on first use once it is back.
        """
        await self.health.start()
        if self.health.healthy:
            try:
                for script in (self._reserve, self._settle, self._usage, self._set_used):
                    await self._client.script_load(script.script)
            except _DOWN_ERRORS as exc:
                self.health.mark_down(exc)

    async def close(self) -> None:
        await self.health.stop()
        await self._client.aclose()
        await self._client.connection_pool.disconnect()

    async def __aenter__(self) -> RedisCounterStore:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def ping(self) -> None:
        """One PING; raises StoreUnavailable if the server does not answer."""
        await self._call(self._client.ping)

    @property
    def clock_offset_ms(self) -> int:
        """The server's clock minus this process's, as last measured."""
        return self._offset_ms

    # ----------------------------------------------------------------- protocol
    async def reserve(
        self, lines: Sequence[Line], amounts: Sequence[int], reservation_id: str, ttl_ms: int
    ) -> ReserveOutcome:
        if not 0 < ttl_ms <= self.max_ttl_ms:
            raise ValueError(f"ttl_ms must be in 1..{self.max_ttl_ms}, got {ttl_ms}")
        check_amounts(lines, amounts)
        lines, amounts = tuple(lines), tuple(amounts)
        head = (
            reservation_id,
            ttl_ms,
            self.grace_ms,
            self.max_ttl_ms,
            self.prefix + "t:" + reservation_id,
            len(lines),
        )
        reply = await self._run(self._reserve, head, lines, amounts)
        tag = reply[0]
        if tag == b"ok":
            now, expires = int(reply[1]), int(reply[2])
            states = tuple(
                CounterState(int(reply[i]), int(reply[i + 1]), int(reply[i + 2]), int(reply[i + 3]))
                for i in range(3, len(reply), 4)
            )
            return ReserveOutcome(
                reservation=Reservation(reservation_id, lines, amounts, states, now, expires)
            )
        if tag == b"deny":
            index = int(reply[1]) - 1
            state = CounterState(int(reply[2]), int(reply[3]), int(reply[5]), int(reply[6]))
            retry = None if reply[7] == b"-" else int(reply[7])
            denial = Denial(index, lines[index], amounts[index], state, int(reply[4]), retry)
            return ReserveOutcome(denial=denial)
        if tag == b"dup":
            raise ValueError(f"reservation id {reservation_id!r} was already used")
        raise RuntimeError(f"unexpected reply from the reserve script: {reply!r}")

    async def settle(self, reservation: Reservation, actual: Sequence[int]) -> None:
        if len(actual) != len(reservation.lines):
            raise ValueError("settle needs one actual amount per line")
        rid = reservation.id
        args: list[Any] = [
            rid,
            self.prefix + "t:" + rid,
            self.tombstone_ms,
            self.grace_ms,
            self.max_ttl_ms,
            len(reservation.lines),
        ]
        prefix = self.prefix
        for line, held, state, amount in zip(
            reservation.lines, reservation.amounts, reservation.states, actual, strict=True
        ):
            if amount < 0:
                raise ValueError("actual amounts must be >= 0")
            window = line.window
            if isinstance(window, CalendarWindow):
                spec = f"c {held} {amount} {state.window_start_ms} {state.window_end_ms} 0 0"
            elif isinstance(window, RollingWindow):
                bucket = state.window_end_ms // window.bucket_ms - 1
                spec = f"r {held} {amount} {window.bucket_ms} {window.buckets} {bucket} 0"
            else:
                spec = f"g {held} 0 0 0 0 0"
            args += (prefix + line.key, spec)
        await self._call(self._settle, args=args)

    async def release(self, reservation: Reservation) -> None:
        await self.settle(reservation, [0] * len(reservation.lines))

    async def usage(self, lines: Sequence[Line]) -> dict[str, CounterState]:
        lines = tuple(lines)
        reply = await self._run(self._usage, (len(lines),), lines, None)
        return {
            line.key: CounterState(
                int(reply[i]), int(reply[i + 1]), int(reply[i + 2]), int(reply[i + 3])
            )
            for line, i in zip(lines, range(2, len(reply), 4), strict=True)
        }

    async def set_used(self, line: Line, used: int) -> None:
        if used < 0:
            raise ValueError("used must be >= 0")
        if line.window is None:
            raise ValueError("a concurrency gauge has no used amount")
        for _ in range(2):
            mode, a, b, c, d = self._window_args(line, self._now())
            args = [self.prefix + line.key, f"{mode} - {used} {a} {b} {c} {d}"]
            reply = (
                await self._call(self._set_used, args=[*args, self.grace_ms, self.max_ttl_ms])
            ).split()
            self._learn_offset(int(reply[1]))
            if reply[0] == b"ok":
                return
        raise RuntimeError("the server clock kept moving out of the computed windows")

    # ----------------------------------------------------------------- internals
    def _now(self) -> int:
        return self._clock() + self._offset_ms

    def _learn_offset(self, server_ms: int) -> None:
        self._offset_ms = server_ms - self._clock()

    async def _run(
        self,
        script: Any,
        head: tuple[Any, ...],
        lines: tuple[Line, ...],
        amounts: tuple[int, ...] | None,
    ) -> list[bytes]:
        """Run a per-line script; on a clock-skew answer, once more from the server's time."""
        for _ in range(2):
            now = self._now()
            args = list(head)
            prefix = self.prefix
            for i, line in enumerate(lines):
                mode, a, b, c, d = self._window_args(line, now)
                if amounts is not None:
                    limit = "-" if line.limit is None else line.limit
                    args += (prefix + line.key, f"{mode} {limit} {amounts[i]} {a} {b} {c} {d}")
                else:
                    args += (prefix + line.key, f"{mode} - 0 {a} {b} {c} {d}")
            raw = await self._call(script, args=args)
            reply: list[bytes] = raw.split() if isinstance(raw, bytes) else [raw]
            tag = reply[0]
            if tag == b"ok" or tag == b"skew":
                self._learn_offset(int(reply[1]))
            elif tag == b"deny":
                self._learn_offset(int(reply[4]))
            if tag != b"skew":
                return reply
        raise RuntimeError("the server clock kept moving out of the computed windows")

    @staticmethod
    def _window_args(line: Line, now: int) -> tuple[Any, ...]:
        window = line.window
        if isinstance(window, CalendarWindow):
            return ("c", *window.neighbours(now))
        if isinstance(window, RollingWindow):
            return ("r", window.bucket_ms, window.buckets, 0, 0)
        return ("g", 0, 0, 0, 0)

    async def _call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return await fn(*args, **kwargs)
        except _DOWN_ERRORS as exc:
            if not isinstance(exc, RedisTimeoutError | asyncio.TimeoutError):
                # Refused or reset: the server is down. (A slow reply under load is not
                # proof of that; the health checker decides within a second.)
                self.health.mark_down(exc)
            # Pooled connections to a dead server would each fail once more: drop them all.
            try:
                await self._client.connection_pool.disconnect(inuse_connections=False)
            except Exception:  # pragma: no cover - best effort
                log.debug("could not reset the redis connection pool", exc_info=True)
            raise StoreUnavailable(f"redis at {self.url} is unreachable: {exc}") from exc

    def __repr__(self) -> str:
        return f"<RedisCounterStore {self.url} healthy={self.health.healthy}>"
