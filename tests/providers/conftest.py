"""Fixtures for the simulator tests: one simulated server for the package, SDK clients,
and helpers that call its HTTP and control endpoints."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import anthropic
import openai
import pytest

from tollway.providers.simulated import SimConfig, SimulatedServer
from tollway.providers.simulated.engine import TextGenerator

SLOW = "slow-sim"  # 100 ms to the first token, then 200 tokens/s
LONG_TEXT = "The quick brown fox jumps over the lazy dog, then checks its token budget. " * 120
USER = [{"role": "user", "content": "Hello there, simulator!"}]
GENERATOR = TextGenerator(seed=0)


# --- fixtures and helpers ---------------------------------------------------------------


@pytest.fixture(scope="package")
def server() -> Iterator[SimulatedServer]:
    with SimulatedServer(SimConfig(model_latency={SLOW: (100.0, 200.0)})) as running:
        yield running


@pytest.fixture(autouse=True)
def _reset(server: SimulatedServer) -> None:
    control(server, "POST", "/_sim/reset")


@pytest.fixture()
def oai(server: SimulatedServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.openai_base_url, api_key="sk-test", max_retries=0)


@pytest.fixture()
def claude(server: SimulatedServer) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=server.base_url, api_key="sk-ant-test", max_retries=0)


def http(
    server: SimulatedServer,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], Any]:
    """A raw request: (status, headers, parsed JSON body)."""
    request = urllib.request.Request(
        server.base_url + path, data=body, method=method, headers=headers or {}
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, dict(response.headers), json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), json.loads(error.read())


def control(server: SimulatedServer, method: str, path: str, payload: Any = None) -> Any:
    body = json.dumps(payload).encode() if payload is not None else None
    status, _, answer = http(server, method, path, body, {"content-type": "application/json"})
    assert status == 200, answer
    return answer


def add_fault(server: SimulatedServer, **rule: Any) -> None:
    control(server, "POST", "/_sim/faults", {"rules": [rule]})


def wait_for_stats(server: SimulatedServer, check: Any) -> dict[str, Any]:
    deadline = time.monotonic() + 5
    while True:
        stats = control(server, "GET", "/_sim/stats")
        if check(stats) or time.monotonic() > deadline:
            return stats
        time.sleep(0.02)
