"""The simulated provider, driven by the official OpenAI and Anthropic SDKs over real sockets."""

from __future__ import annotations

import json
import math
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import anthropic
import openai
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tollway.metering.tokens import count_tokens, split_tokens
from tollway.providers.simulated import SimConfig, SimulatedServer
from tollway.providers.simulated.engine import TextGenerator, plan_output
from tollway.providers.simulated.tokencount import TokenCounter

SLOW = "slow-sim"  # 100 ms to the first token, then 200 tokens/s
LONG_TEXT = "The quick brown fox jumps over the lazy dog, then checks its token budget. " * 120
USER = [{"role": "user", "content": "Hello there, simulator!"}]
GENERATOR = TextGenerator(seed=0)


# --- fixtures and helpers ---------------------------------------------------------------


@pytest.fixture(scope="module")
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


# --- pure logic -------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from("ab_9 ,.\t\n\x1c-é€"), max_size=120))
def test_token_memo_counts_like_the_tokenizer(text: str) -> None:
    counter = TokenCounter(min_chars=0)
    assert counter(text) == counter(text) == count_tokens(text)


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 2**32), st.integers(0, 3000))
def test_generated_pieces_are_one_token_each(key: int, n: int) -> None:
    pieces = GENERATOR.pieces(key, n)
    assert len(pieces) == n
    if n:
        assert split_tokens("".join(pieces)) == pieces
        assert not pieces[0].startswith(" ")


@given(st.integers(0, 5000), st.none() | st.integers(1, 5000), st.booleans())
def test_output_never_exceeds_the_cap(wanted: int, limit: int | None, reasoning: bool) -> None:
    plan = plan_output(wanted, limit, reasoning)
    if limit is not None:
        assert plan.output_tokens <= limit
    assert plan.truncated == (
        limit is not None and wanted + (wanted // 2 if reasoning else 0) > limit
    )
    if not plan.truncated:
        assert plan.visible == wanted and plan.reasoning == (wanted // 2 if reasoning else 0)
    else:
        assert plan.output_tokens == limit


# --- OpenAI -----------------------------------------------------------------------------


def test_chat_completion_shape_and_usage(oai: openai.OpenAI) -> None:
    raw = oai.chat.completions.with_raw_response.create(model="gpt-sim", messages=USER)
    body = json.loads(raw.http_response.text)
    assert raw.headers["x-request-id"].startswith("req_")
    assert body["id"].startswith("chatcmpl-") and body["object"] == "chat.completion"
    assert body["model"] == "gpt-sim" and body["system_fingerprint"].startswith("fp_")
    choice = body["choices"][0]
    assert choice["message"]["role"] == "assistant" and choice["message"]["refusal"] is None
    assert choice["finish_reason"] == "stop"
    usage = body["usage"]
    assert usage["prompt_tokens"] == count_tokens(USER[0]["content"]) + 3
    assert usage["completion_tokens"] == 32 == count_tokens(choice["message"]["content"])
    assert usage["total_tokens"] == usage["prompt_tokens"] + 32
    assert usage["prompt_tokens_details"] == {"cached_tokens": 0, "audio_tokens": 0}
    assert usage["completion_tokens_details"] == {
        "reasoning_tokens": 0,
        "audio_tokens": 0,
        "accepted_prediction_tokens": 0,
        "rejected_prediction_tokens": 0,
    }
    again = oai.chat.completions.create(model="gpt-sim", messages=USER)
    assert again.choices[0].message.content == choice["message"]["content"]  # deterministic


def test_directive_and_max_tokens_truncate(oai: openai.OpenAI) -> None:
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": [{"type": "text", "text": "Go on sim:tokens=50"}]},
    ]
    full = oai.chat.completions.create(model="gpt-sim", messages=messages)
    assert full.usage is not None and full.usage.completion_tokens == 50
    assert (
        full.usage.prompt_tokens
        == count_tokens("Be brief.") + count_tokens("Go on sim:tokens=50") + 6
    )
    assert full.choices[0].finish_reason == "stop"
    for cap in ({"max_tokens": 10}, {"max_completion_tokens": 10}):
        cut = oai.chat.completions.create(model="gpt-sim", messages=messages, **cap)
        assert cut.choices[0].finish_reason == "length"
        assert cut.usage is not None and cut.usage.completion_tokens == 10
        assert count_tokens(cut.choices[0].message.content or "") == 10


def test_n_choices_and_stop_sequences(oai: openai.OpenAI) -> None:
    reply = oai.chat.completions.create(model="gpt-sim", messages=USER, n=3)
    texts = [c.message.content or "" for c in reply.choices]
    assert [c.index for c in reply.choices] == [0, 1, 2] and len(set(texts)) == 3
    assert reply.usage is not None and reply.usage.completion_tokens == 96
    stop = texts[0].split()[3]
    cut = oai.chat.completions.create(model="gpt-sim", messages=USER, stop=[stop])
    text = cut.choices[0].message.content or ""
    assert stop not in text and texts[0].startswith(text)
    assert cut.usage is not None and cut.usage.completion_tokens == count_tokens(text)
    assert cut.choices[0].finish_reason == "stop"


def _stream_lines(oai: openai.OpenAI, **kwargs: Any) -> tuple[str, list[str]]:
    with oai.chat.completions.with_streaming_response.create(
        model="gpt-sim", messages=USER, stream=True, **kwargs
    ) as response:
        return response.headers["content-type"], [line for line in response.iter_lines() if line]


def test_chat_stream_without_usage(oai: openai.OpenAI) -> None:
    content_type, lines = _stream_lines(oai)
    assert content_type.startswith("text/event-stream")
    assert lines[-1] == "data: [DONE]" and all(line.startswith("data: ") for line in lines)
    chunks = [json.loads(line[6:]) for line in lines[:-1]]
    assert all("usage" not in c and c["object"] == "chat.completion.chunk" for c in chunks)
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": "", "refusal": None}
    assert chunks[-1]["choices"][0]["delta"] == {}
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    pieces = [c["choices"][0]["delta"]["content"] for c in chunks[1:-1]]
    assert len(pieces) == 32 and split_tokens("".join(pieces)) == pieces
    assert len({c["id"] for c in chunks}) == 1


def test_chat_stream_with_usage(oai: openai.OpenAI) -> None:
    _, lines = _stream_lines(oai, stream_options={"include_usage": True})
    chunks = [json.loads(line[6:]) for line in lines[:-1]]
    assert all(c["usage"] is None for c in chunks[:-1])
    last = chunks[-1]
    assert last["choices"] == [] and last["usage"]["completion_tokens"] == 32
    plain = oai.chat.completions.create(model="gpt-sim", messages=USER)
    assert plain.usage is not None
    assert last["usage"]["prompt_tokens"] == plain.usage.prompt_tokens
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks[:-1])
    assert text == plain.choices[0].message.content
    # The SDK's own iterator sees the same.
    stream = oai.chat.completions.create(
        model="gpt-sim", messages=USER, stream=True, stream_options={"include_usage": True}
    )
    sdk_chunks = list(stream)
    assert sdk_chunks[-1].usage is not None and sdk_chunks[-1].usage.total_tokens == (
        plain.usage.total_tokens
    )


def test_completions(oai: openai.OpenAI) -> None:
    one = oai.completions.create(model="gpt-sim", prompt="Once upon a time", max_tokens=5)
    assert one.id.startswith("cmpl-") and one.object == "text_completion"
    assert one.choices[0].finish_reason == "length" and count_tokens(one.choices[0].text) == 5
    assert one.usage is not None and one.usage.prompt_tokens == count_tokens("Once upon a time")
    many = oai.completions.create(model="gpt-sim", prompt=["a b", "c sim:tokens=3"])
    assert [c.index for c in many.choices] == [0, 1]
    assert many.choices[1].finish_reason == "stop" and count_tokens(many.choices[1].text) == 3
    assert many.usage is not None and many.usage.completion_tokens == 32 + 3
    tokens = oai.completions.create(model="gpt-sim", prompt=[1, 2, 3, 4], max_tokens=2)
    assert tokens.usage is not None and tokens.usage.prompt_tokens == 4
    streamed = list(
        oai.completions.create(
            model="gpt-sim",
            prompt="Once upon a time",
            max_tokens=5,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert "".join(c.choices[0].text for c in streamed if c.choices) == one.choices[0].text
    assert streamed[-1].usage is not None and streamed[-1].usage.completion_tokens == 5


def test_embeddings_base64_default_and_float(server: SimulatedServer, oai: openai.OpenAI) -> None:
    inputs = ["hello world", "token budgets"]
    default = oai.embeddings.create(model="emb-sim", input=inputs)  # the SDK asks for base64
    floats = oai.embeddings.create(model="emb-sim", input=inputs, encoding_format="float")
    assert [d.embedding for d in default.data] == [d.embedding for d in floats.data]
    assert len(default.data) == 2 and len(default.data[0].embedding) == 8
    assert math.isclose(sum(x * x for x in default.data[0].embedding), 1.0, rel_tol=1e-5)
    assert default.data[0].embedding != default.data[1].embedding
    expected = sum(count_tokens(t) for t in inputs)
    assert default.usage.prompt_tokens == default.usage.total_tokens == expected
    wide = oai.embeddings.create(model="emb-sim", input="x", dimensions=32)
    assert len(wide.data[0].embedding) == 32
    ids = oai.embeddings.create(model="emb-sim", input=[[1, 2, 3]])
    assert ids.usage.prompt_tokens == 3
    status, _, raw = http(
        server,
        "POST",
        "/v1/embeddings",
        json.dumps({"model": "e", "input": "hi", "encoding_format": "base64"}).encode(),
        {"authorization": "Bearer x"},
    )
    assert status == 200 and isinstance(raw["data"][0]["embedding"], str)


def test_models_lists(oai: openai.OpenAI, claude: anthropic.Anthropic) -> None:
    ids = [m.id for m in oai.models.list()]
    assert "gpt-sim" in ids and "claude-sim" in ids
    assert oai.models.retrieve("anything").id == "anything"
    assert [m.id for m in claude.models.list()] == ids


def test_openai_prompt_caching(oai: openai.OpenAI) -> None:
    messages: list[Any] = [
        {"role": "system", "content": LONG_TEXT},
        {"role": "user", "content": "first question"},
    ]
    first = oai.chat.completions.create(model="gpt-sim", messages=messages)
    assert first.usage is not None and first.usage.prompt_tokens >= 1024
    assert first.usage.prompt_tokens_details is not None
    assert first.usage.prompt_tokens_details.cached_tokens == 0
    second = oai.chat.completions.create(model="gpt-sim", messages=messages)
    assert second.usage is not None and second.usage.prompt_tokens_details is not None
    cached = second.usage.prompt_tokens_details.cached_tokens
    assert cached == second.usage.prompt_tokens // 128 * 128 and cached >= 1024
    follow_up = [
        *messages,
        {"role": "assistant", "content": first.choices[0].message.content},
        {"role": "user", "content": "and then?"},
    ]
    third = oai.chat.completions.create(model="gpt-sim", messages=follow_up)
    assert third.usage is not None and third.usage.prompt_tokens_details is not None
    assert third.usage.prompt_tokens_details.cached_tokens == cached  # the shared prefix
    other_model = oai.chat.completions.create(model="gpt-sim-2", messages=messages)
    assert other_model.usage is not None and other_model.usage.prompt_tokens_details is not None
    assert other_model.usage.prompt_tokens_details.cached_tokens == 0
    short = oai.chat.completions.create(model="gpt-sim", messages=USER)
    short = oai.chat.completions.create(model="gpt-sim", messages=USER)
    assert short.usage is not None and short.usage.prompt_tokens_details is not None
    assert short.usage.prompt_tokens_details.cached_tokens == 0  # below 1024 tokens


def test_reasoning_model_usage(oai: openai.OpenAI) -> None:
    reply = oai.chat.completions.create(model="o-reasoner", messages=USER)
    usage = reply.usage
    assert usage is not None and usage.completion_tokens_details is not None
    assert usage.completion_tokens_details.reasoning_tokens == 16
    assert usage.completion_tokens == 48
    assert count_tokens(reply.choices[0].message.content or "") == 32
    capped = oai.chat.completions.create(
        model="o-reasoner", messages=USER, max_completion_tokens=10
    )
    assert capped.usage is not None and capped.usage.completion_tokens == 10
    assert capped.choices[0].finish_reason == "length"


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


def test_latency_time_to_first_token(oai: openai.OpenAI, claude: anthropic.Anthropic) -> None:
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
    for event in claude.messages.create(model=SLOW, max_tokens=5, messages=USER, stream=True):
        if event.type == "content_block_delta":
            break
    assert time.monotonic() - started >= 0.1


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
