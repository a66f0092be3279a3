"""The simulator's errors, injected faults, latency, disconnects, stats and embedding."""

from __future__ import annotations

import json
import time
from typing import Any

import anthropic
import openai
import pytest

from tests.providers.conftest import (
    SLOW,
    USER,
    add_fault,
    control,
    http,
    wait_for_stats,
)
from tollway.providers.simulated import SimConfig, SimulatedServer

# --- auth, malformed requests, unknown models -------------------------------------------


def test_missing_credentials_are_401_in_each_format(server: SimulatedServer) -> None:
    body = json.dumps({"model": "m", "messages": USER, "max_tokens": 5}).encode()
    status, _, error = http(server, "POST", "/v1/chat/completions", body)
    assert status == 401 and error["error"]["type"] == "invalid_request_error"
    assert set(error["error"]) == {"message", "type", "param", "code"}
    status, _, error = http(server, "POST", "/v1/messages", body)
    assert status == 401 and error["type"] == "error"
    assert error["error"]["type"] == "authentication_error"


def test_malformed_json_is_400(server: SimulatedServer) -> None:
    status, _, error = http(
        server, "POST", "/v1/chat/completions", b"{nope", {"authorization": "Bearer k"}
    )
    assert status == 400 and error["error"]["type"] == "invalid_request_error"
    status, _, error = http(server, "POST", "/v1/messages", b"{nope", {"x-api-key": "k"})
    assert status == 400 and error["error"]["type"] == "invalid_request_error"
    status, _, error = http(server, "GET", "/v2/whatever", None, {"authorization": "Bearer k"})
    assert status == 404 and "error" in error


def test_unknown_model_is_404_when_models_are_listed() -> None:
    with SimulatedServer(SimConfig(models=("gpt-sim",), require_api_key=False)) as strict:
        client = openai.OpenAI(base_url=strict.openai_base_url, api_key="x", max_retries=0)
        assert client.chat.completions.create(model="gpt-sim", messages=USER).choices
        with pytest.raises(openai.NotFoundError) as info:
            client.chat.completions.create(model="gpt-nope", messages=USER)
        assert info.value.code == "model_not_found"
        claude = anthropic.Anthropic(base_url=strict.base_url, api_key="x", max_retries=0)
        with pytest.raises(anthropic.NotFoundError):
            claude.messages.create(model="claude-nope", max_tokens=5, messages=USER)
        status, _, _ = http(
            strict,
            "POST",
            "/v1/chat/completions",
            json.dumps({"model": "gpt-sim", "messages": USER}).encode(),
        )
        assert status == 200  # require_api_key=False


# --- faults -----------------------------------------------------------------------------


def test_status_faults_raise_the_sdk_errors(
    server: SimulatedServer, oai: openai.OpenAI, claude: anthropic.Anthropic
) -> None:
    add_fault(server, mode="status", status=500, api="openai", times=1)
    with pytest.raises(openai.InternalServerError):
        oai.chat.completions.create(model="gpt-sim", messages=USER)
    assert oai.chat.completions.create(model="gpt-sim", messages=USER).choices  # used up

    add_fault(server, mode="status", status=429, model="gpt-limited")
    for _ in range(2):
        with pytest.raises(openai.RateLimitError) as rate:
            oai.chat.completions.create(model="gpt-limited", messages=USER)
        assert rate.value.response.headers["retry-after"] == "1"
    assert oai.chat.completions.create(model="gpt-sim", messages=USER).choices  # other model

    add_fault(server, mode="status", status=529, api="anthropic", times=1)
    with pytest.raises(anthropic.OverloadedError) as overloaded:
        claude.messages.create(model="claude-sim", max_tokens=5, messages=USER)
    assert overloaded.value.body["error"]["type"] == "overloaded_error"  # type: ignore[index]
    add_fault(server, mode="status", status=429, api="anthropic", times=1)
    with pytest.raises(anthropic.RateLimitError):
        claude.messages.create(model="claude-sim", max_tokens=5, messages=USER)

    stats = control(server, "GET", "/_sim/stats")
    assert stats["statuses"]["500"] == 1 and stats["statuses"]["429"] == 3
    assert stats["statuses"]["529"] == 1 and stats["faults_applied"] == 5
    assert stats["requests"]["openai"] == {"gpt-sim": 3, "gpt-limited": 2}
    rules = control(server, "GET", "/_sim/faults")["rules"]
    assert [r["model"] for r in rules] == ["gpt-limited"]  # the `times: 1` rules are gone


def test_status_fault_mid_stream(
    server: SimulatedServer, oai: openai.OpenAI, claude: anthropic.Anthropic
) -> None:
    add_fault(server, mode="status", status=500, after_chunks=3, times=1)
    seen = 0
    with pytest.raises(openai.APIError, match="server had an error"):
        for _ in oai.chat.completions.create(model="gpt-sim", messages=USER, stream=True):
            seen += 1
    assert seen == 3
    add_fault(server, mode="status", status=529, after_chunks=4, times=1)
    with pytest.raises(anthropic.APIStatusError) as info:
        list(claude.messages.create(model="claude-sim", max_tokens=9, messages=USER, stream=True))
    assert info.value.body["error"]["type"] == "overloaded_error"  # type: ignore[index]


def test_timeout_fault(server: SimulatedServer, oai: openai.OpenAI) -> None:
    add_fault(server, mode="timeout", times=1)
    started = time.monotonic()
    with pytest.raises(openai.APITimeoutError):
        oai.with_options(timeout=0.3).chat.completions.create(model="gpt-sim", messages=USER)
    assert time.monotonic() - started < 3
    stats = wait_for_stats(server, lambda s: s["disconnects"] == 1)
    assert stats["disconnects"] == 1  # the server noticed the client giving up
    add_fault(server, mode="timeout", delay_s=0.2, times=1)  # a slow but successful answer
    started = time.monotonic()
    assert oai.chat.completions.create(model="gpt-sim", messages=USER).choices
    assert time.monotonic() - started >= 0.2


def test_drop_faults_break_the_connection(
    server: SimulatedServer, oai: openai.OpenAI, claude: anthropic.Anthropic
) -> None:
    add_fault(server, mode="drop", api="openai", after_chunks=4, times=1)
    chunks: list[Any] = []
    with pytest.raises(openai.APIConnectionError):
        for chunk in oai.chat.completions.create(model="gpt-sim", messages=USER, stream=True):
            chunks.append(chunk)
    assert len(chunks) == 4 and all(c.choices[0].finish_reason is None for c in chunks)

    add_fault(server, mode="drop", api="anthropic", after_chunks=5, times=1)
    events: list[Any] = []
    with pytest.raises(Exception) as dropped:  # the SDK surfaces the transport error as is
        for event in claude.messages.create(
            model="claude-sim", max_tokens=50, messages=USER, stream=True
        ):
            events.append(event)
    assert "incomplete" in str(dropped.value) or "closed" in str(dropped.value)
    assert events and events[-1].type == "content_block_delta"

    add_fault(server, mode="drop", times=1)
    with pytest.raises(openai.APIConnectionError):
        oai.chat.completions.create(model="gpt-sim", messages=USER)
    add_fault(server, mode="drop", after_chunks=1, times=1)  # half the body, then nothing
    with pytest.raises(openai.APIConnectionError):
        oai.chat.completions.create(model="gpt-sim", messages=USER)
    assert oai.chat.completions.create(model="gpt-sim", messages=USER).choices


def test_fault_rules_are_validated(server: SimulatedServer) -> None:
    for bad in ({"mode": "explode"}, {"status": 200}, {"times": 0}, {"colour": "red"}):
        status, _, answer = http(
            server,
            "POST",
            "/_sim/faults",
            json.dumps({"rules": [bad]}).encode(),
            {"content-type": "application/json"},
        )
        assert status == 400 and answer["error"]
    assert control(server, "DELETE", "/_sim/faults") == {"rules": []}


def test_faults_from_config() -> None:
    config = SimConfig(faults=({"mode": "status", "status": 503, "times": 1},))
    with SimulatedServer(config) as faulty:
        client = openai.OpenAI(base_url=faulty.openai_base_url, api_key="x", max_retries=0)
        with pytest.raises(openai.InternalServerError):
            client.chat.completions.create(model="gpt-sim", messages=USER)
        assert client.chat.completions.create(model="gpt-sim", messages=USER).choices


# --- latency, disconnects, stats ----------------------------------------------------------


def test_latency_time_to_first_token(
    server: SimulatedServer, oai: openai.OpenAI, claude: anthropic.Anthropic
) -> None:
    started = time.monotonic()
    stream = oai.chat.completions.create(
        model=SLOW, messages=[{"role": "user", "content": "x sim:tokens=20"}], stream=True
    )
    next(iter(stream))
    assert time.monotonic() - started >= 0.1
    list(stream)
    assert time.monotonic() - started >= 0.1 + 19 / 200
    started = time.monotonic()
    oai.chat.completions.create(model=SLOW, messages=[{"role": "user", "content": "sim:tokens=5"}])
    assert time.monotonic() - started >= 0.1 + 4 / 200
    started = time.monotonic()
    with claude.messages.create(model=SLOW, max_tokens=5, messages=USER, stream=True) as events:
        for event in events:
            if event.type == "content_block_delta":
                break
    assert time.monotonic() - started >= 0.1
    # The stream was left early: let the server count that disconnect now, not during
    # the next test (which counts disconnects).
    wait_for_stats(server, lambda s: s["disconnects"] >= 1)


def test_client_disconnect_is_counted_and_billed_partially(
    server: SimulatedServer, oai: openai.OpenAI
) -> None:
    with oai.chat.completions.with_streaming_response.create(
        model=SLOW, messages=[{"role": "user", "content": "long sim:tokens=200"}], stream=True
    ) as response:
        for n, _ in enumerate(response.iter_lines()):
            if n >= 6:
                break
    stats = wait_for_stats(server, lambda s: s["disconnects"] == 1)
    assert stats["disconnects"] == 1
    output = stats["tokens"]["openai"][SLOW]["output"]
    assert 2 <= output < 200


def test_stats_count_tokens_served(
    server: SimulatedServer, oai: openai.OpenAI, claude: anthropic.Anthropic
) -> None:
    reply = oai.chat.completions.create(model="gpt-sim", messages=USER)
    message = claude.messages.create(model="claude-sim", max_tokens=9, messages=USER)
    stats = control(server, "GET", "/_sim/stats")
    assert reply.usage is not None
    assert stats["tokens"]["openai"]["gpt-sim"] == {
        "input": reply.usage.prompt_tokens,
        "output": reply.usage.completion_tokens,
    }
    assert stats["tokens"]["anthropic"]["claude-sim"] == {
        "input": message.usage.input_tokens,
        "output": 9,
    }
    assert stats["total_requests"] == 2 and stats["statuses"] == {"200": 2}


# --- running inside the caller's event loop ----------------------------------------------


async def test_start_async_in_the_running_loop() -> None:
    async with SimulatedServer(SimConfig(default_output_tokens=4)) as running:
        client = openai.AsyncOpenAI(base_url=running.openai_base_url, api_key="x", max_retries=0)
        reply = await client.chat.completions.create(model="gpt-sim", messages=USER)
        assert reply.usage is not None and reply.usage.completion_tokens == 4
        stream = await client.chat.completions.create(model="gpt-sim", messages=USER, stream=True)
        assert len([c async for c in stream]) == 4 + 2
        await client.close()
