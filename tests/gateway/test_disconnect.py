"""A client that hangs up mid-stream cancels the upstream call and is billed for what was made."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp

from tests.conftest import sim_control
from tests.harness import GatewayThread
from tollway.ledger.queries import get_request


async def _read_some_then_hang_up(url: str, key: str, events_wanted: int) -> tuple[str, int]:
    body = {
        "model": "slow",
        "stream": True,
        "messages": [{"role": "user", "content": "a long answer please sim:tokens=400"}],
    }
    async with aiohttp.ClientSession() as session:
        response = await session.post(
            url + "/v1/chat/completions", json=body, headers={"authorization": f"Bearer {key}"}
        )
        request_id = response.headers["x-tollway-request-id"]
        seen = 0
        async for line in response.content:
            if line.startswith(b"data: "):
                seen += 1
                if seen >= events_wanted:
                    break
        response.close()  # drop the connection mid-stream
    return request_id, seen


def test_client_disconnect_cancels_upstream_and_bills(
    gateway: GatewayThread, sim: Any, user_key: str
) -> None:
    before = sim_control(sim, "GET", "/_sim/stats")
    request_id, seen = asyncio.run(_read_some_then_hang_up(gateway.base_url, user_key, 8))
    deadline = time.monotonic() + 10
    row = None
    while row is None and time.monotonic() < deadline:
        row = get_request(gateway.runtime.database.engine, request_id)
        time.sleep(0.05)
    assert row is not None, "the disconnected request must still be in the ledger"
    assert row["status"] == 499 and row["error_class"] == "ClientDisconnected"
    assert row["estimated"] and row["stream"]
    assert seen - 1 <= row["output_tokens"] < 400  # at 40 tokens/s, far from finished
    assert row["list_cost_pusd"] > 0
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:  # the gateway closed its upstream connection too
        after = sim_control(sim, "GET", "/_sim/stats")
        if after["disconnects"] > before["disconnects"]:
            break
        time.sleep(0.05)
    else:
        raise AssertionError("the upstream call was not cancelled")
