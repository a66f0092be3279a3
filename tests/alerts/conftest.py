"""A real webhook receiver on a loopback port, scripted per path, and result collectors."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web

from tests.harness import bound_socket
from tollway.alerts import DeliveryResult, RetryPolicy

# Tiny backoffs keep retry tests fast; `sleep` injection keeps them deterministic.
FAST = RetryPolicy(max_attempts=5, initial_backoff_s=0.001, max_backoff_s=0.01)
WAIT_S = 10.0  # generous: the box is shared, and nothing asserts durations


@dataclass(frozen=True)
class Reply:
    """One scripted answer: a status and headers, or a hang until the test ends."""

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    hang: bool = False


HANG = Reply(hang=True)


@dataclass(frozen=True)
class Seen:
    path: str
    headers: dict[str, str]  # lower-cased names
    body: bytes


class Receiver:
    """Records every request; answers each path from its script (the last reply repeats)."""

    def __init__(self) -> None:
        self.seen: list[Seen] = []
        self.base_url = ""
        self.release = asyncio.Event()  # set at teardown so hung handlers finish
        self._scripts: dict[str, list[Reply]] = {}
        self._arrived = asyncio.Condition()

    def script(self, path: str, *replies: Reply | int) -> str:
        """Answer `path` with `replies` in turn; returns its full URL."""
        self._scripts[path] = [Reply(r) if isinstance(r, int) else r for r in replies]
        return self.url(path)

    def url(self, path: str) -> str:
        return self.base_url + path

    def requests(self, path: str) -> list[Seen]:
        return [seen for seen in self.seen if seen.path == path]

    async def wait_requests(self, path: str, count: int) -> list[Seen]:
        """Wait until `path` has received at least `count` requests."""
        async with asyncio.timeout(WAIT_S), self._arrived:
            await self._arrived.wait_for(lambda: len(self.requests(path)) >= count)
        return self.requests(path)

    async def handle(self, request: web.Request) -> web.Response:
        headers = {name.lower(): value for name, value in request.headers.items()}
        self.seen.append(Seen(request.path, headers, await request.read()))
        async with self._arrived:
            self._arrived.notify_all()
        replies = self._scripts.get(request.path) or [Reply()]
        reply = replies.pop(0) if len(replies) > 1 else replies[0]
        if reply.hang:
            await asyncio.wait_for(self.release.wait(), 60)
        return web.Response(status=reply.status, headers=reply.headers, text="ok")


@pytest.fixture()
async def receiver() -> AsyncIterator[Receiver]:
    recv = Receiver()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", recv.handle)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=1)
    await runner.setup()
    sock = bound_socket()
    site = web.SockSite(runner, sock)
    await site.start()
    recv.base_url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    yield recv
    recv.release.set()
    await runner.cleanup()


class Results:
    """An `on_result` callback that also lets a test wait for outcomes."""

    def __init__(self) -> None:
        self.items: list[DeliveryResult] = []

    def __call__(self, result: DeliveryResult) -> None:
        self.items.append(result)

    def of(self, sink: str) -> list[DeliveryResult]:
        return [r for r in self.items if r.sink == sink]

    async def wait(self, count: int, sink: str | None = None) -> list[DeliveryResult]:
        """Wait for at least `count` results (of `sink`, if given)."""
        async with asyncio.timeout(WAIT_S):
            while len(found := self.of(sink) if sink else self.items) < count:
                await asyncio.sleep(0.005)
        return found


class RecordingSleep:
    """An injected `sleep` that records the backoff asked for and yields only briefly."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)
        await asyncio.sleep(0)


@pytest.fixture()
def results() -> Results:
    return Results()


@pytest.fixture()
def recorded_sleep() -> RecordingSleep:
    return RecordingSleep()


def alert(**fields: Any) -> dict[str, Any]:
    """A spike alert with every field the sinks render, overridable per test."""
    return {
        "kind": "spike",
        "title": "Spend spike on payments",
        "severity": "warning",
        "summary": "Team payments spent 4.2x its hourly baseline.",
        "evidence": {"team": "acme/payments", "ratio": 4.2, "window": "1h"},
        **fields,
    }
