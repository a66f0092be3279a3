"""The official OpenAI SDK against the gateway: answers, streams, and exact ledger rows."""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any

import openai

from tests.harness import GatewayThread
from tollway.ledger.queries import get_request

# Public list prices (USD per 1M tokens) from the shipped catalog, restated here on purpose.
GPT_5_4 = {"input": Decimal("2.50"), "cached": Decimal("0.25"), "output": Decimal("15.00")}
EMBED_3_SMALL = Decimal("0.02")


def ledger_row(gateway: GatewayThread, request_id: str) -> dict[str, Any]:
    """The request's row; it is journaled before the response ends and stored a few ms later."""
    deadline = time.monotonic() + 5
    row = get_request(gateway.runtime.database.engine, request_id)
    while row is None and time.monotonic() < deadline:
        time.sleep(0.005)
        row = get_request(gateway.runtime.database.engine, request_id)
    assert row is not None, f"{request_id} is not in the ledger"
    return row


def expected_usd(prompt: int, cached: int, output: int, price: dict[str, Decimal]) -> Decimal:
    per_m = Decimal(1_000_000)
    return (
        (prompt - cached) * price["input"] + cached * price["cached"] + output * price["output"]
    ) / per_m


def row_usd(row: dict[str, Any], field: str) -> Decimal:
    return Decimal(row[field]) / Decimal(10**12)


def test_chat_non_streaming_is_metered_exactly(gateway: GatewayThread, oai: openai.OpenAI) -> None:
    raw = oai.chat.completions.with_raw_response.create(
        model="gpt-test",
        messages=[{"role": "user", "content": "Explain metering in one line. sim:tokens=12"}],
        extra_headers={"x-tollway-tags": "ide:vscode,task:docs"},
    )
    completion = raw.parse()
    request_id = raw.headers["x-tollway-request-id"]
    assert completion.choices[0].message.content
    usage = completion.usage
    assert usage is not None and usage.completion_tokens == 12

    row = ledger_row(gateway, request_id)
    assert row["input_tokens"] == usage.prompt_tokens
    assert row["output_tokens"] == usage.completion_tokens
    assert row["cached_input_tokens"] == 0
    assert row["status"] == 200 and not row["stream"] and not row["estimated"]
    assert (row["org"], row["team"], row["user"]) == ("acme", "payments", "ada")
    assert row["requested_model"] == "gpt-test" and row["provider"] == "sim-openai"
    assert list(row["tags"]) == ["ide:vscode", "task:docs"]
    assert row["finish_reason"] == "stop"
    assert len(row["prompt_fingerprint"]) == 16
    want = expected_usd(usage.prompt_tokens, 0, usage.completion_tokens, GPT_5_4)
    assert row_usd(row, "list_cost_pusd") == want
    assert row_usd(row, "actual_cost_pusd") == want  # no discount on this provider


def test_chat_stream_without_usage_request_gets_no_usage_chunk(
    gateway: GatewayThread, oai: openai.OpenAI
) -> None:
    with oai.chat.completions.with_streaming_response.create(
        model="gpt-test",
        messages=[{"role": "user", "content": "stream please sim:tokens=20"}],
        stream=True,
    ) as response:
        request_id = response.headers["x-tollway-request-id"]
        chunks = list(response.parse())
    assert all(c.usage is None for c in chunks), "the injected usage chunk must be stripped"
    assert all(c.choices for c in chunks)
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert text
    row = ledger_row(gateway, request_id)
    assert row["stream"] and not row["estimated"] and row["status"] == 200
    assert row["output_tokens"] == 20
    assert row["ttft_ms"] is not None and row["ttft_ms"] <= row["latency_ms"]


def test_chat_stream_with_usage_request_keeps_usage_chunk(
    gateway: GatewayThread, oai: openai.OpenAI
) -> None:
    with oai.chat.completions.with_streaming_response.create(
        model="gpt-test",
        messages=[{"role": "user", "content": "count me sim:tokens=7"}],
        stream=True,
        stream_options={"include_usage": True},
    ) as response:
        request_id = response.headers["x-tollway-request-id"]
        chunks = list(response.parse())
    usage = chunks[-1].usage
    assert usage is not None and chunks[-1].choices == []
    row = ledger_row(gateway, request_id)
    assert (row["input_tokens"], row["output_tokens"]) == (usage.prompt_tokens, 7)


def test_prompt_cache_tokens_are_priced_at_the_cached_rate(
    gateway: GatewayThread, oai: openai.OpenAI
) -> None:
    context = "The ledger records every request exactly once. " * 40
    messages = [{"role": "system", "content": context}, {"role": "user", "content": "first"}]
    oai.chat.completions.create(model="gpt-test", messages=messages)
    messages[1] = {"role": "user", "content": "second question"}
    raw = oai.chat.completions.with_raw_response.create(model="gpt-test", messages=messages)
    usage = raw.parse().usage
    assert usage is not None and usage.prompt_tokens_details is not None
    cached = usage.prompt_tokens_details.cached_tokens or 0
    assert cached > 0
    row = ledger_row(gateway, raw.headers["x-tollway-request-id"])
    assert row["cached_input_tokens"] == cached
    want = expected_usd(usage.prompt_tokens, cached, usage.completion_tokens, GPT_5_4)
    assert row_usd(row, "list_cost_pusd") == want


def test_completions_and_embeddings(gateway: GatewayThread, oai: openai.OpenAI) -> None:
    raw = oai.completions.with_raw_response.create(
        model="gpt-test", prompt="def add(a, b):", max_tokens=5
    )
    completion = raw.parse()
    assert completion.choices[0].finish_reason == "length"
    row = ledger_row(gateway, raw.headers["x-tollway-request-id"])
    assert row["api"] == "openai.completions" and row["output_tokens"] == 5
    assert row["max_tokens"] == 5 and row["finish_reason"] == "length"

    raw = oai.embeddings.with_raw_response.create(
        model="embed-test", input=["tokens in", "tokens out"]
    )
    embeddings = raw.parse()
    assert len(embeddings.data) == 2 and len(embeddings.data[0].embedding) > 0
    row = ledger_row(gateway, raw.headers["x-tollway-request-id"])
    assert row["api"] == "openai.embeddings"
    assert row["input_tokens"] == embeddings.usage.prompt_tokens and row["output_tokens"] == 0
    assert row_usd(row, "list_cost_pusd") == row["input_tokens"] * EMBED_3_SMALL / 1_000_000


def test_models_lists_public_names(oai: openai.OpenAI) -> None:
    names = {m.id for m in oai.models.list()}
    assert {"gpt-test", "claude-test", "embed-test", "flaky"} <= names


def test_unknown_fields_pass_through_to_the_upstream(
    gateway: GatewayThread, oai: openai.OpenAI
) -> None:
    completion = oai.chat.completions.create(
        model="gpt-test",
        messages=[{"role": "user", "content": "hi"}],
        extra_body={"vendor_specific_knob": {"deep": [1, 2, 3]}},
        max_completion_tokens=3,
    )
    assert completion.choices[0].finish_reason == "length"
    assert completion.usage is not None and completion.usage.completion_tokens == 3
