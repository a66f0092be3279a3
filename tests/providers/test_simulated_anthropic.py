"""The simulator speaks the Anthropic Messages API: shapes, SSE framing, cache usage."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

import anthropic
import pytest

from tests.providers.conftest import (
    LONG_TEXT,
    USER,
    http,
)
from tollway.metering.tokens import count_tokens
from tollway.providers.simulated import SimulatedServer

# --- Anthropic --------------------------------------------------------------------------


def test_message_shape_and_usage(claude: anthropic.Anthropic) -> None:
    raw = claude.messages.with_raw_response.create(
        model="claude-sim", max_tokens=100, system="Be terse.", messages=USER
    )
    assert raw.headers["request-id"].startswith("req_")
    message = raw.parse()
    assert message.id.startswith("msg_") and message.type == "message"
    assert message.role == "assistant" and message.model == "claude-sim"
    assert message.stop_reason == "end_turn" and message.stop_sequence is None
    text = message.content[0].text  # type: ignore[union-attr]
    assert message.usage.output_tokens == 32 == count_tokens(text)
    expected = count_tokens("Be terse.") + count_tokens(USER[0]["content"]) + 3
    assert message.usage.input_tokens == expected
    assert message.usage.cache_read_input_tokens == 0
    assert message.usage.cache_creation_input_tokens == 0
    count = claude.messages.count_tokens(model="claude-sim", system="Be terse.", messages=USER)
    assert count.input_tokens == expected


def test_message_max_tokens_and_stop_sequence(claude: anthropic.Anthropic) -> None:
    messages = [{"role": "user", "content": "write sim:tokens=40"}]
    cut = claude.messages.create(model="claude-sim", max_tokens=7, messages=messages)
    assert cut.stop_reason == "max_tokens" and cut.usage.output_tokens == 7
    full = claude.messages.create(model="claude-sim", max_tokens=100, messages=messages)
    word = full.content[0].text.split()[2]  # type: ignore[union-attr]
    stopped = claude.messages.create(
        model="claude-sim", max_tokens=100, messages=messages, stop_sequences=[word]
    )
    assert stopped.stop_reason == "stop_sequence" and stopped.stop_sequence == word
    text = stopped.content[0].text  # type: ignore[union-attr]
    assert stopped.usage.output_tokens == count_tokens(text)


def test_message_stream_events(claude: anthropic.Anthropic) -> None:
    events = list(
        claude.messages.create(
            model="claude-sim", max_tokens=100, messages=USER, stream=True, system="Hi."
        )
    )
    kinds = [e.type for e in events]
    assert kinds[:2] == ["message_start", "content_block_start"]
    assert kinds[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    deltas = [e for e in events if e.type == "content_block_delta"]
    assert len(deltas) == 32 == len(kinds) - 5
    start, delta = events[0], events[-2]
    assert start.type == "message_start" and delta.type == "message_delta"
    assert start.message.content == [] and start.message.usage.output_tokens == 1
    assert (
        start.message.usage.input_tokens
        == count_tokens("Hi.") + count_tokens(USER[0]["content"]) + 3
    )
    assert delta.usage.output_tokens == 32 and delta.delta.stop_reason == "end_turn"
    text = "".join(d.delta.text for d in deltas)  # type: ignore[union-attr]
    plain = claude.messages.create(model="claude-sim", max_tokens=100, messages=USER, system="Hi.")
    assert text == plain.content[0].text  # type: ignore[union-attr]
    with claude.messages.stream(model="claude-sim", max_tokens=5, messages=USER) as stream:
        final = stream.get_final_message()
    assert final.stop_reason == "max_tokens" and final.usage.output_tokens == 5


def test_message_stream_wire_framing(server: SimulatedServer) -> None:
    body = {"model": "c", "max_tokens": 3, "messages": USER, "stream": True}
    request = urllib.request.Request(
        server.base_url + "/v1/messages",
        data=json.dumps(body).encode(),
        headers={"x-api-key": "k", "anthropic-version": "2023-06-01"},
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        frames = response.read().decode().split("\n\n")
    assert frames[-1] == ""
    names = [f.split("\n")[0] for f in frames[:-1]]
    assert names == [
        "event: message_start",
        "event: content_block_start",
        "event: ping",
        *["event: content_block_delta"] * 3,
        "event: content_block_stop",
        "event: message_delta",
        "event: message_stop",
    ]
    for frame in frames[:-1]:
        name, data = frame.split("\n")
        assert data.startswith("data: ")
        assert json.loads(data[6:])["type"] == name.removeprefix("event: ")


def test_anthropic_cache_control_create_then_read(claude: anthropic.Anthropic) -> None:
    system: Any = [{"type": "text", "text": LONG_TEXT, "cache_control": {"type": "ephemeral"}}]
    cached_part = count_tokens(LONG_TEXT)
    first = claude.messages.create(model="claude-sim", max_tokens=10, system=system, messages=USER)
    rest = count_tokens(USER[0]["content"]) + 3
    assert first.usage.cache_creation_input_tokens == cached_part
    assert first.usage.cache_read_input_tokens == 0
    assert first.usage.input_tokens == rest
    second = claude.messages.create(model="claude-sim", max_tokens=10, system=system, messages=USER)
    assert second.usage.cache_read_input_tokens == cached_part
    assert second.usage.cache_creation_input_tokens == 0
    assert second.usage.input_tokens == rest
    # A longer breakpoint reads the cached system prompt and writes only the extension.
    turn = [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "more " * 10, "cache_control": {"type": "ephemeral"}}
            ],
        }
    ]
    third = claude.messages.create(model="claude-sim", max_tokens=10, system=system, messages=turn)
    assert third.usage.cache_read_input_tokens == cached_part
    assert third.usage.cache_creation_input_tokens == count_tokens("more " * 10) + 3
    assert third.usage.input_tokens == 0
    total = claude.messages.count_tokens(model="claude-sim", system=system, messages=turn)
    assert total.input_tokens == cached_part + count_tokens("more " * 10) + 3


def test_anthropic_requires_max_tokens_and_messages(
    server: SimulatedServer, claude: anthropic.Anthropic
) -> None:
    for body in ({"model": "c", "messages": USER}, {"model": "c", "max_tokens": 5}, {}):
        status, _, error = http(
            server, "POST", "/v1/messages", json.dumps(body).encode(), {"x-api-key": "k"}
        )
        assert status == 400 and error["type"] == "error", body
        assert error["error"]["type"] == "invalid_request_error"
        assert error["error"]["message"].endswith("Field required")
    with pytest.raises(anthropic.BadRequestError):
        claude.messages.create(model="claude-sim", max_tokens=5, messages=[])
    with pytest.raises(anthropic.BadRequestError):
        claude.messages.create(
            model="claude-sim", max_tokens=5, messages=[{"role": "system", "content": "x"}]
        )
