"""Shared fixtures: a simulated upstream and a gateway on loopback ports."""

from __future__ import annotations

import json
import os
import urllib.request
from collections.abc import Iterator
from typing import Any

import anthropic
import openai
import pytest

from tests.harness import ADMIN_KEY, GatewayThread, settings_for
from tollway.providers.simulated import SimConfig, SimulatedServer

SIM_API_KEY = "sim-upstream-secret"

# Every gateway a test starts accepts this admin key (tests that need none unset it).
os.environ["TOLLWAY_ADMIN_KEY"] = ADMIN_KEY


@pytest.fixture(scope="session")
def sim() -> Iterator[SimulatedServer]:
    """One simulated OpenAI + Anthropic upstream for the whole session."""
    server = SimulatedServer(
        SimConfig(cache_min_tokens=64, cache_block=16, model_latency={"slow-stream": (0.0, 40.0)})
    )
    server.start()
    yield server
    server.stop()


def sim_control(sim: SimulatedServer, method: str, path: str, body: Any = None) -> Any:
    """Call the simulator's control API (faults, stats, reset)."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        sim.base_url + path, data=data, method=method, headers={"content-type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=5) as resp:
        raw = resp.read()
    return json.loads(raw) if raw else None


def gateway_config(sim: SimulatedServer) -> dict[str, Any]:
    """Three providers on one simulator, one per adapter, and models exercising each."""
    return {
        "providers": [
            {
                "name": "sim-openai",
                "kind": "openai",
                "base_url": sim.openai_base_url,
                "api_key_env": "TOLLWAY_TEST_SIM_KEY",
            },
            {
                "name": "sim-anthropic",
                "kind": "anthropic",
                "base_url": sim.base_url,
                "api_key_env": "TOLLWAY_TEST_SIM_KEY",
                "discount": "20%",
            },
            {
                "name": "sim-both",
                "kind": "simulated",
                "base_url": sim.base_url,
                "timeout_s": 2,
            },
        ],
        "models": [
            {
                "name": "gpt-test",
                "price_as": "gpt-5.4",
                "deployments": [{"provider": "sim-openai"}],
            },
            {
                "name": "claude-test",
                "price_as": "claude-sonnet-4-6",
                "deployments": [{"provider": "sim-anthropic"}],
            },
            {
                "name": "embed-test",
                "price_as": "text-embedding-3-small",
                "deployments": [{"provider": "sim-openai"}],
            },
            {
                "name": "flaky",
                "price_as": "gpt-5.4-mini",
                "deployments": [
                    {"provider": "sim-both", "model": "flaky-primary", "weight": 1},
                    {"provider": "sim-both", "model": "flaky-backup", "weight": 0},
                ],
            },
            {
                "name": "slow",
                "price_as": "gpt-5.4-mini",
                "deployments": [{"provider": "sim-both", "model": "slow-stream"}],
            },
            {
                "name": "fragile",
                "price_as": "gpt-5.4-mini",
                "deployments": [{"provider": "sim-both", "model": "fragile-only"}],
            },
        ],
        "server": {"max_body_bytes": 64 * 1024},
    }


@pytest.fixture(scope="session")
def gateway(
    sim: SimulatedServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[GatewayThread]:
    os.environ["TOLLWAY_TEST_SIM_KEY"] = SIM_API_KEY
    data_dir = tmp_path_factory.mktemp("gateway-data")
    server = GatewayThread(settings_for(gateway_config(sim), data_dir)).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def user_key(gateway: GatewayThread) -> str:
    key, _ = gateway.runtime.key_store.create("ada", "payments", "acme", name="test")
    return key


@pytest.fixture()
def oai(gateway: GatewayThread, user_key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway.base_url + "/v1", api_key=user_key, max_retries=0)


@pytest.fixture()
def claude(gateway: GatewayThread, user_key: str) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=gateway.base_url, api_key=user_key, max_retries=0)


@pytest.fixture(autouse=True)
def _clean_sim_faults(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if "sim" in request.fixturenames:
        sim_control(request.getfixturevalue("sim"), "DELETE", "/_sim/faults")
