"""`kill -9` under concurrent load loses no request whose response the client fully received."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp

from tests.harness import GatewayProcess, free_port, write_config
from tollway.ledger.database import Database
from tollway.ledger.keys import KeyStore
from tollway.ledger.queries import get_request

CONFIG = {
    "providers": [{"name": "sim", "kind": "simulated"}],
    "models": [{"name": "gpt-sim", "price_as": "gpt-5.4", "deployments": [{"provider": "sim"}]}],
    "simulated": {"default_output_tokens": 8},
}


async def _client(url: str, key: str, stream: bool, done: list[str], stop: asyncio.Event) -> None:
    body = {"model": "gpt-sim", "stream": stream, "messages": [{"role": "user", "content": "hi"}]}
    headers = {"authorization": f"Bearer {key}"}
    async with aiohttp.ClientSession() as session:
        while not stop.is_set():
            try:
                async with session.post(url, json=body, headers=headers) as resp:
                    payload = await resp.read()
                    complete = resp.status == 200 and (
                        payload.rstrip().endswith(b"data: [DONE]")
                        if stream
                        else payload.endswith(b"}")
                    )
                    if complete:
                        done.append(resp.headers["x-tollway-request-id"])
            except (TimeoutError, aiohttp.ClientError):
                return  # the gateway is gone


async def _load(url: str, key: str, proc: GatewayProcess, seconds: float) -> list[str]:
    done: list[str] = []
    stop = asyncio.Event()
    clients = [asyncio.create_task(_client(url, key, i % 2 == 0, done, stop)) for i in range(32)]
    await asyncio.sleep(seconds)
    proc.kill()  # SIGKILL while requests are in flight
    stop.set()
    await asyncio.wait(clients, timeout=10)
    return done


def test_sigkill_under_load_loses_no_completed_request(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    database = Database(f"sqlite:///{data_dir / 'tollway.db'}")
    database.migrate()
    key, _ = KeyStore(database.engine).create("load", "qa", "acme")
    config_path = write_config(tmp_path / "tollway.yaml", CONFIG)
    proc = GatewayProcess(config_path, data_dir, free_port()).wait_ready()
    completed = asyncio.run(_load(proc.base_url + "/v1/chat/completions", key, proc, 2.0))
    assert len(completed) > 100, "the load did not get going"

    reopened = Database(f"sqlite:///{data_dir / 'tollway.db'}")
    reopened.migrate()
    missing = [rid for rid in completed if get_request(reopened.engine, rid) is None]
    assert missing == [], f"{len(missing)} of {len(completed)} completed requests lost"

    # and the gateway starts again on the same ledger
    again = GatewayProcess(config_path, data_dir, free_port()).wait_ready()
    again.terminate()
