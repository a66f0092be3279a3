"""The simulator speaks the OpenAI API: shapes, streams, usage, caching, reasoning."""

from __future__ import annotations

import json
import math
from typing import Any

import anthropic
import openai

from tests.providers.conftest import (
    LONG_TEXT,
    USER,
    http,
)
from tollway.metering.tokens import count_tokens, split_tokens
from tollway.providers.simulated import SimulatedServer

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
