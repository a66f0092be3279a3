"""Three gateway processes sharing one Redis: one exact view of a budget, and Redis outages."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlalchemy import func, select

from tests.budgets.conftest import RedisServer, needs_redis
from tests.harness import ADMIN_KEY, GatewayProcess, free_port, write_config
from tollway.ledger.database import Database
from tollway.ledger.keys import KeyStore
from tollway.ledger.schema import requests
from tollway.metering.tokens import count_tokens

pytestmark = needs_redis

PROMPT = "replica probe"
CHARGE = count_tokens(PROMPT) + 3 + 10
ALLOWED = 150
LIMIT = ALLOWED * CHARGE + CHARGE // 2
CLIENTS = 200


def config(failure_mode: str, limit: int) -> dict[str, Any]:
    return {
        "providers": [{"name": "sim", "kind": "simulated"}],
        "models": [
            {"name": "gpt-sim", "price_as": "gpt-5.4", "deployments": [{"provider": "sim"}]}
        ],
        "simulated": {"default_output_tokens": 10},
        "budgets": [
            {
                "scope": "team",
                "subject": "acme/shared",
                "unit": "tokens_total",
                "window": "day",
                "timezone": "UTC",
                "hard_limit": limit,
            }
        ],
        "peak": {"timezone": "UTC", "default_weight": 1.0, "rules": []},
        "counters": {"failure_mode": failure_mode},
    }


class Cluster:
    def __init__(
        self, tmp_path: Path, redis: RedisServer, failure_mode: str = "closed", limit: int = LIMIT
    ) -> None:
        self.data_dir = tmp_path / "data"
        self.database = Database(f"sqlite:///{self.data_dir / 'tollway.db'}")
        self.database.migrate()
        store = KeyStore(self.database.engine)
        self.keys = [store.create(f"u{i}", "shared", "acme")[0] for i in range(20)]
        path = write_config(tmp_path / "tollway.yaml", config(failure_mode, limit))
        env = {"TOLLWAY_REDIS_URL": redis.url}
        self.gateways = [
            GatewayProcess(path, self.data_dir, free_port(), extra_env=env) for _ in range(3)
        ]
        for gateway in self.gateways:
            gateway.wait_ready()

    def stop(self) -> None:
        for gateway in self.gateways:
            gateway.terminate()

    def ledger_tokens(self) -> tuple[int, int]:
        """(requests served, input + output tokens) of the team, from the ledger."""
        query = select(
            func.count(),
            func.coalesce(func.sum(requests.c.input_tokens + requests.c.output_tokens), 0),
        ).where(requests.c.team == "shared", requests.c.status == 200)
        with self.database.engine.connect() as connection:
            served, tokens = connection.execute(query).one()
        return int(served), int(tokens)

    def admin_used(self) -> int:
        request = urllib.request.Request(
            self.gateways[0].base_url + "/admin/v1/budgets",
            headers={"authorization": f"Bearer {ADMIN_KEY}"},
        )
        with urllib.request.urlopen(request, timeout=10) as resp:
            (budget,) = json.loads(resp.read())["budgets"]
        return int(budget["used"])


@pytest.fixture()
def redis(tmp_path: Path) -> Iterator[RedisServer]:
    (tmp_path / "redis").mkdir()
    server = RedisServer(tmp_path / "redis").start()
    yield server
    server.stop()


async def _hammer(cluster: Cluster, stop_on_429: bool, seconds: float = 30) -> dict[int, int]:
    statuses: dict[int, int] = {}
    body = {"model": "gpt-sim", "max_tokens": 10, "messages": [{"role": "user", "content": PROMPT}]}
    deadline = time.monotonic() + seconds

    async def worker(i: int, session: aiohttp.ClientSession) -> None:
        gateway = cluster.gateways[i % 3]
        headers = {"authorization": f"Bearer {cluster.keys[i % len(cluster.keys)]}"}
        while time.monotonic() < deadline:
            try:
                async with session.post(
                    gateway.base_url + "/v1/chat/completions", json=body, headers=headers
                ) as resp:
                    await resp.read()
                    statuses[resp.status] = statuses.get(resp.status, 0) + 1
                    if resp.status == 429 and stop_on_429:
                        return
            except aiohttp.ClientError:
                statuses[-1] = statuses.get(-1, 0) + 1
                await asyncio.sleep(0.05)

    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        await asyncio.gather(*(worker(i, session) for i in range(CLIENTS)))
    return statuses


def _eventually(check: Any, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.1)


def test_three_replicas_share_one_exact_budget(tmp_path: Path, redis: RedisServer) -> None:
    cluster = Cluster(tmp_path, redis)
    try:
        statuses = asyncio.run(_hammer(cluster, stop_on_429=True))
        assert statuses.get(200) == ALLOWED, statuses
        assert statuses.get(429) == CLIENTS
        _eventually(lambda: cluster.ledger_tokens()[0] == ALLOWED)
        _, tokens = cluster.ledger_tokens()
        assert tokens == ALLOWED * CHARGE <= LIMIT
        _eventually(lambda: cluster.admin_used() == tokens)
    finally:
        cluster.stop()


def test_redis_outage_fails_closed_then_counters_match_the_ledger(
    tmp_path: Path, redis: RedisServer
) -> None:
    cluster = Cluster(tmp_path, redis, limit=10**9)
    try:
        first = asyncio.run(_hammer(cluster, stop_on_429=False, seconds=1.0))
        assert first.get(200, 0) > 0 and set(first) == {200}
        redis.kill()
        during = asyncio.run(_hammer(cluster, stop_on_429=False, seconds=1.5))
        assert during.get(503, 0) > 0 and during.get(200, 0) < first[200] / 4, during
        redis.start()  # back, empty: counters must be rebuilt from the ledger
        _eventually(lambda: cluster.admin_used() == cluster.ledger_tokens()[1] > 0, timeout=15)
        after = asyncio.run(_hammer(cluster, stop_on_429=False, seconds=0.5))
        assert after.get(200, 0) > 0
    finally:
        cluster.stop()
