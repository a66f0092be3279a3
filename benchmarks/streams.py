"""Time to first token of streamed chat completions, open-loop, direct vs through the gateway.

TTFT is measured from each stream's scheduled start to the arrival of the first
SSE chunk that carries content (not the role-only first chunk).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson

from benchmarks.loadgen import summary_ms


@dataclass
class StreamTarget:
    """A streaming endpoint with its request."""

    name: str
    url: str
    headers: dict[str, str]
    body: bytes


@dataclass
class StreamResult:
    """One target's streams."""

    name: str
    ok: int = 0
    errors: int = 0
    ttft: list[float] = field(default_factory=list, repr=False)
    total: list[float] = field(default_factory=list, repr=False)

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "errors": self.errors,
            "ttft_ms": {k: round(v, 3) for k, v in summary_ms(self.ttft).items()},
            "stream_ms": {k: round(v, 3) for k, v in summary_ms(self.total).items()},
        }


def _has_content(line: bytes) -> bool:
    if not line.startswith(b"data: {") or b'"content"' not in line:
        return False
    choices = orjson.loads(line[6:]).get("choices") or [{}]
    return bool((choices[0].get("delta") or {}).get("content"))


async def _one(
    session: aiohttp.ClientSession, target: StreamTarget, result: StreamResult, scheduled: float
) -> None:
    ttft: float | None = None
    try:
        async with session.post(target.url, data=target.body, headers=target.headers) as resp:
            if resp.status != 200:
                await resp.read()
                result.errors += 1
                return
            async for line in resp.content:
                if ttft is None and _has_content(line):
                    ttft = time.perf_counter() - scheduled
    except (aiohttp.ClientError, OSError):
        result.errors += 1
        return
    if ttft is None:
        result.errors += 1
        return
    result.ok += 1
    result.ttft.append(ttft)
    result.total.append(time.perf_counter() - scheduled)


async def stream_ttft(
    targets: Sequence[StreamTarget], count: int, rate: float, *, timeout: float = 60
) -> list[StreamResult]:
    """`count` streams per target at `rate` streams/s each, interleaved across targets."""
    results = [StreamResult(t.name) for t in targets]
    connector = aiohttp.TCPConnector(limit=0, force_close=False)
    async with aiohttp.ClientSession(connector=connector, auto_decompress=False) as session:
        tasks: list[asyncio.Task[None]] = []
        interval = 1.0 / (rate * len(targets))
        start = time.perf_counter() + 0.02
        for i in range(count * len(targets)):
            scheduled = start + i * interval
            delay = scheduled - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            k = i % len(targets)
            tasks.append(asyncio.create_task(_one(session, targets[k], results[k], scheduled)))
        _, late = await asyncio.wait(tasks, timeout=timeout)
        for task in late:
            task.cancel()
    return results
