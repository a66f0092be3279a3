"""Fallback to the next deployment on retryable upstream failures, and broken streams."""

from __future__ import annotations

from typing import Any

import anthropic
import openai
import pytest

from tests.conftest import sim_control
from tests.gateway.test_openai_sdk import ledger_row
from tests.harness import GatewayThread
from tollway.metering.tokens import count_tokens
from tollway.routing.health import DeploymentHealth

MESSAGES = [{"role": "user", "content": "hello sim:tokens=10"}]


@pytest.fixture(autouse=True)
def fresh_health(gateway: GatewayThread) -> None:
    """Each test starts with every deployment healthy (cool-downs last 30 s)."""
    gateway.runtime.gateway.routes.health = DeploymentHealth()


def fault(sim: Any, **rule: Any) -> None:
    sim_control(sim, "POST", "/_sim/faults", {"rules": [{"times": 1, **rule}]})


@pytest.mark.parametrize(
    "rule",
    [
        {"mode": "status", "status": 500},
        {"mode": "status", "status": 429},
        {"mode": "status", "status": 529},
        {"mode": "drop"},
    ],
    ids=["500", "429", "529", "drop"],
)
def test_chat_falls_back_to_the_next_deployment(
    gateway: GatewayThread, sim: Any, oai: openai.OpenAI, rule: dict[str, Any]
) -> None:
    fault(sim, model="flaky-primary", **rule)
    raw = oai.chat.completions.with_raw_response.create(model="flaky", messages=MESSAGES)
    assert raw.parse().usage.completion_tokens == 10  # type: ignore[union-attr]
    row = ledger_row(gateway, raw.headers["x-tollway-request-id"])
    assert row["attempts"] == 2 and row["served_model"] == "flaky-backup"
    assert row["status"] == 200 and row["output_tokens"] == 10


def test_stream_and_messages_fall_back_too(
    gateway: GatewayThread, sim: Any, oai: openai.OpenAI, claude: anthropic.Anthropic
) -> None:
    fault(sim, model="flaky-primary", mode="status", status=503)
    chunks = list(oai.chat.completions.create(model="flaky", messages=MESSAGES, stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)

    fault(sim, model="flaky-primary", mode="status", status=500, api="anthropic")
    with claude.messages.with_streaming_response.create(
        model="flaky", max_tokens=30, messages=MESSAGES, stream=True
    ) as response:
        request_id = response.headers["x-tollway-request-id"]
        events = list(response.parse())
    assert events[-1].type == "message_stop"
    row = ledger_row(gateway, request_id)
    assert row["attempts"] == 2 and row["served_model"] == "flaky-backup"


def test_timeout_falls_back(gateway: GatewayThread, sim: Any, oai: openai.OpenAI) -> None:
    fault(sim, model="flaky-primary", mode="timeout", delay_s=10)
    raw = oai.chat.completions.with_raw_response.create(model="flaky", messages=MESSAGES)
    row = ledger_row(gateway, raw.headers["x-tollway-request-id"])
    assert row["attempts"] == 2 and row["served_model"] == "flaky-backup"


def test_all_deployments_failing_reports_the_last_error(
    gateway: GatewayThread, sim: Any, oai: openai.OpenAI
) -> None:
    sim_control(
        sim,
        "POST",
        "/_sim/faults",
        {
            "rules": [
                {"model": "flaky-primary", "mode": "status", "status": 500, "times": 1},
                {"model": "flaky-backup", "mode": "status", "status": 502, "times": 1},
            ]
        },
    )
    with pytest.raises(openai.APIStatusError) as info:
        oai.chat.completions.create(model="flaky", messages=MESSAGES)
    assert info.value.status_code == 502
    row = ledger_row(gateway, info.value.response.headers["x-tollway-request-id"])
    assert row["attempts"] == 2 and row["status"] == 502


def test_stream_dropped_mid_way_is_billed_as_estimated(
    gateway: GatewayThread, sim: Any, oai: openai.OpenAI
) -> None:
    fault(sim, model="fragile-only", mode="drop", after_chunks=6)
    received: list[str] = []
    with oai.chat.completions.with_streaming_response.create(
        model="fragile", messages=[{"role": "user", "content": "go sim:tokens=40"}], stream=True
    ) as response:
        request_id = response.headers["x-tollway-request-id"]
        with pytest.raises(openai.APIError, match="ended early"):
            for chunk in response.parse():
                if chunk.choices:
                    received.append(chunk.choices[0].delta.content or "")
    row = ledger_row(gateway, request_id)
    assert row["estimated"] and row["error_class"] == "UpstreamDropped"
    assert 0 < row["output_tokens"] < 40
    assert row["output_tokens"] == count_tokens("".join(received))
    assert row["input_tokens"] > 0 and row["list_cost_pusd"] > 0


def test_anthropic_stream_dropped(
    gateway: GatewayThread, sim: Any, claude: anthropic.Anthropic
) -> None:
    fault(sim, model="fragile-only", mode="drop", after_chunks=8, api="anthropic")
    with claude.messages.with_streaming_response.create(
        model="fragile",
        max_tokens=100,
        messages=[{"role": "user", "content": "sim:tokens=50"}],
        stream=True,
    ) as response:
        request_id = response.headers["x-tollway-request-id"]
        with pytest.raises(anthropic.APIError):
            list(response.parse())
    row = ledger_row(gateway, request_id)
    assert row["estimated"] and row["error_class"] == "UpstreamDropped"
    assert 0 < row["output_tokens"] < 50 and row["input_tokens"] > 0


def test_failing_deployment_cools_down(
    gateway: GatewayThread, sim: Any, oai: openai.OpenAI
) -> None:
    fault(sim, model="flaky-primary", mode="status", status=500, times=3)
    for _ in range(3):  # three failures in a row, each rescued by the backup
        raw = oai.chat.completions.with_raw_response.create(model="flaky", messages=MESSAGES)
        assert ledger_row(gateway, raw.headers["x-tollway-request-id"])["attempts"] == 2
    raw = oai.chat.completions.with_raw_response.create(model="flaky", messages=MESSAGES)
    row = ledger_row(gateway, raw.headers["x-tollway-request-id"])
    assert row["attempts"] == 1 and row["served_model"] == "flaky-backup"  # primary cooling
