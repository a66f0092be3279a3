"""A cheap HTTP/1.1 load generator: open-loop at a fixed rate, or closed-loop.

The client is a raw asyncio `Protocol` over keep-alive connections with the request
pre-serialised, so one core can schedule thousands of requests a second. Open-loop
latency is taken from each request's *scheduled* send time, never from when it was
actually sent, so a stall in the server (or in the generator) shows up in the
figures instead of silently thinning the load (coordinated omission).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

_MAX_CONNS = 2048


def http_request(host: str, port: int, path: str, headers: dict[str, str], body: bytes) -> bytes:
    """The bytes of one HTTP/1.1 POST with a body."""
    lines = [f"POST {path} HTTP/1.1", f"host: {host}:{port}", f"content-length: {len(body)}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


class _Connection(asyncio.Protocol):
    """One keep-alive connection carrying one request at a time."""

    def __init__(self) -> None:
        self.transport: Any = None  # uvloop's transports are not asyncio.Transport subclasses
        self.alive = True
        self._buf = bytearray()
        self._waiter: asyncio.Future[tuple[int, float]] | None = None
        self._head_end = -1
        self._length: int | None = None
        self._status = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def request(self, data: bytes) -> asyncio.Future[tuple[int, float]]:
        """Send `data`; the future gives (status, perf_counter when the response ended)."""
        assert self.transport is not None
        self._waiter = asyncio.get_running_loop().create_future()
        self._buf.clear()
        self._head_end, self._length = -1, None
        self.transport.write(data)
        return self._waiter

    def data_received(self, data: bytes) -> None:
        buf = self._buf
        buf += data
        if self._head_end < 0:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            self._head_end = end + 4
            head = bytes(buf[:end]).lower()
            self._status = int(head[9:12])
            at = head.find(b"\r\ncontent-length:")
            if at >= 0:
                stop = head.find(b"\r\n", at + 2)
                self._length = int(head[at + 17 : stop if stop > 0 else None])
            if b"\r\nconnection: close" in head:
                self.alive = False
        if self._length is not None:
            done = len(buf) - self._head_end >= self._length
        else:  # chunked: the terminal chunk ends the body
            done = buf.endswith(b"0\r\n\r\n")
        if done and self._waiter is not None and not self._waiter.done():
            self._waiter.set_result((self._status, time.perf_counter()))

    def connection_lost(self, exc: Exception | None) -> None:
        self.alive = False
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(exc or ConnectionResetError("connection closed"))


class Target:
    """One URL and one pre-serialised request, with a pool of idle connections."""

    def __init__(
        self, name: str, host: str, port: int, path: str, headers: dict[str, str], body: bytes
    ) -> None:
        self.name = name
        self.host, self.port = host, port
        self.url = f"http://{host}:{port}{path}"
        self.headers, self.body = headers, body
        self.data = http_request(host, port, path, headers, body)
        self._idle: list[_Connection] = []
        self._slots = asyncio.Semaphore(_MAX_CONNS)
        self.opened = 0

    async def send(self) -> tuple[int, float]:
        """One request: (status, perf_counter at its last byte)."""
        async with self._slots:
            conn = None
            while self._idle and conn is None:
                conn = self._idle.pop()
                if not conn.alive:  # the server closed it while idle (keep-alive timeout)
                    conn = None
            if conn is None:
                loop = asyncio.get_running_loop()
                _, conn = await loop.create_connection(_Connection, self.host, self.port)
                self.opened += 1
            try:
                result = await conn.request(self.data)
            except BaseException:
                if conn.transport is not None:
                    conn.transport.abort()
                raise
            if conn.alive:
                self._idle.append(conn)
            return result

    def close(self) -> None:
        for conn in self._idle:
            if conn.transport is not None:
                conn.transport.close()
        self._idle.clear()


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of already sorted values (0 when empty)."""
    if not sorted_values:
        return 0.0
    rank = max(0, min(len(sorted_values) - 1, round(q / 100 * len(sorted_values) + 0.5) - 1))
    return sorted_values[rank]


def summary_ms(values: list[float]) -> dict[str, float]:
    """p50/p90/p99/p99.9/max/mean of latencies in seconds, as milliseconds."""
    values = sorted(values)
    out = {f"p{q:g}": percentile(values, q) * 1000 for q in (50, 90, 99, 99.9)}
    out["max"] = (values[-1] if values else 0.0) * 1000
    out["mean"] = (sum(values) / len(values) if values else 0.0) * 1000
    return out


@dataclass
class OpenLoopResult:
    """One target's share of an open-loop run."""

    name: str
    target_rps: float
    scheduled: int = 0
    ok: int = 0
    errors: int = 0
    timed_out: int = 0
    latencies: list[float] = field(default_factory=list, repr=False)
    lags: list[float] = field(default_factory=list, repr=False)
    first_send: float = 0.0
    last_send: float = 0.0

    @property
    def responses(self) -> int:
        """Responses received, whatever their status."""
        return self.ok + self.errors

    @property
    def achieved_rps(self) -> float:
        """The rate at which requests actually left the generator."""
        span = self.last_send - self.first_send
        return (self.scheduled - 1) / span if span > 0 and self.scheduled > 1 else 0.0

    @property
    def behind(self) -> bool:
        """Whether the generator failed to hold the schedule (its own overhead, not the server)."""
        lag_p99 = percentile(sorted(self.lags), 99)
        return self.achieved_rps < 0.97 * self.target_rps or lag_p99 > 0.005

    def as_dict(self) -> dict[str, Any]:
        """Figures for the report and the JSON file."""
        return {
            "target_rps": self.target_rps,
            "achieved_rps": round(self.achieved_rps, 1),
            "scheduled": self.scheduled,
            "ok": self.ok,
            "errors": self.errors,
            "timed_out": self.timed_out,
            "latency_ms": {k: round(v, 3) for k, v in summary_ms(self.latencies).items()},
            "send_lag_ms": {k: round(v, 3) for k, v in summary_ms(self.lags).items()},
            "generator_behind": self.behind,
        }


async def open_loop(
    targets: Sequence[Target], rate: float, duration: float, *, timeout: float = 10.0
) -> list[OpenLoopResult]:
    """Send to every target at `rate` requests/s each, slots interleaved across targets.

    Requests leave on schedule whether or not earlier ones have answered.
    """
    results = [OpenLoopResult(t.name, rate) for t in targets]
    count = int(rate * duration) * len(targets)
    interval = 1.0 / (rate * len(targets))
    pending: set[asyncio.Task[None]] = set()

    async def one(target: Target, result: OpenLoopResult, scheduled: float) -> None:
        try:
            status, done_at = await target.send()
        except (OSError, RuntimeError):
            result.errors += 1
            return
        if status == 200:
            result.ok += 1
            result.latencies.append(done_at - scheduled)
        else:
            result.errors += 1

    start = time.perf_counter() + 0.02
    for i in range(count):
        scheduled = start + i * interval
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        sent_at = time.perf_counter()
        k = i % len(targets)
        result = results[k]
        if result.scheduled == 0:
            result.first_send = sent_at
        result.last_send = sent_at
        result.scheduled += 1
        result.lags.append(sent_at - scheduled)
        task = asyncio.create_task(one(targets[k], result, scheduled))
        pending.add(task)
        task.add_done_callback(pending.discard)
    if pending:
        _, late = await asyncio.wait(set(pending), timeout=timeout)
        for task in late:
            task.cancel()
        for result in results:
            result.timed_out = result.scheduled - result.responses
    return results


@dataclass
class ClosedLoopResult:
    """Peak throughput with `connections` requests always in flight."""

    name: str
    connections: int
    duration_s: float
    ok: int
    errors: int
    in_flight: int
    latencies: list[float] = field(default_factory=list, repr=False)

    def as_dict(self) -> dict[str, Any]:
        return {
            "tool": "python",
            "connections": self.connections,
            "rps": round(self.ok / self.duration_s, 1),
            "ok": self.ok,
            "errors": self.errors,
            "in_flight_at_cutoff": self.in_flight,
            "latency_ms": {k: round(v, 3) for k, v in summary_ms(self.latencies).items()},
        }


async def closed_loop(target: Target, connections: int, duration: float) -> ClosedLoopResult:
    """Each of `connections` workers sends its next request as soon as the last answers."""
    ok = errors = 0
    latencies: list[float] = []
    deadline = time.perf_counter() + duration

    async def worker() -> None:
        nonlocal ok, errors
        while time.perf_counter() < deadline:
            sent = time.perf_counter()
            try:
                status, done_at = await target.send()
            except (OSError, RuntimeError):
                errors += 1
                continue
            if status == 200:
                ok += 1
                latencies.append(done_at - sent)
            else:
                errors += 1

    started = time.perf_counter()
    workers = [asyncio.create_task(worker()) for _ in range(connections)]
    _, late = await asyncio.wait(workers, timeout=duration + 10)
    for task in late:
        task.cancel()
    elapsed = time.perf_counter() - started
    return ClosedLoopResult(target.name, connections, elapsed, ok, errors, len(late), latencies)
