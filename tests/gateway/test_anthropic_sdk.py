"""The official Anthropic SDK against the gateway: messages, streams, cache usage, discount."""

from __future__ import annotations

from decimal import Decimal

import anthropic

from tests.gateway.test_openai_sdk import ledger_row, row_usd
from tests.harness import GatewayThread

# Claude Sonnet 4.6 public prices per 1M tokens; cache writes (5 min) are 1.25x input.
SONNET = {
    "input": Decimal("3"),
    "cache_read": Decimal("0.30"),
    "cache_write": Decimal("3.75"),
    "output": Decimal("15"),
}
DISCOUNT = Decimal("0.20")  # the sim-anthropic provider's negotiated discount


def sonnet_usd(uncached: int, read: int, write: int, output: int) -> Decimal:
    return (
        uncached * SONNET["input"]
        + read * SONNET["cache_read"]
        + write * SONNET["cache_write"]
        + output * SONNET["output"]
    ) / Decimal(1_000_000)


def test_message_is_metered_with_discount(
    gateway: GatewayThread, claude: anthropic.Anthropic
) -> None:
    raw = claude.messages.with_raw_response.create(
        model="claude-test",
        max_tokens=100,
        system="You are terse.",
        messages=[{"role": "user", "content": "Say something. sim:tokens=9"}],
    )
    message = raw.parse()
    assert message.content[0].type == "text" and message.stop_reason == "end_turn"
    row = ledger_row(gateway, raw.headers["x-tollway-request-id"])
    assert row["api"] == "anthropic.messages" and row["provider"] == "sim-anthropic"
    assert row["input_tokens"] == message.usage.input_tokens
    assert row["output_tokens"] == message.usage.output_tokens == 9
    list_usd = sonnet_usd(message.usage.input_tokens, 0, 0, 9)
    assert row_usd(row, "list_cost_pusd") == list_usd
    assert row_usd(row, "actual_cost_pusd") == list_usd * (1 - DISCOUNT)


def test_stream_usage_from_message_start_and_delta(
    gateway: GatewayThread, claude: anthropic.Anthropic
) -> None:
    with claude.messages.with_streaming_response.create(
        model="claude-test",
        max_tokens=50,
        messages=[{"role": "user", "content": "stream it sim:tokens=15"}],
        stream=True,
    ) as response:
        request_id = response.headers["x-tollway-request-id"]
        events = list(response.parse())
    kinds = [e.type for e in events]
    assert kinds[0] == "message_start" and kinds[-1] == "message_stop"
    final = next(e for e in events if e.type == "message_delta")
    row = ledger_row(gateway, request_id)
    assert row["stream"] and not row["estimated"]
    assert row["output_tokens"] == final.usage.output_tokens == 15
    assert row["input_tokens"] == events[0].message.usage.input_tokens


def test_cache_writes_and_reads_are_priced_separately(
    gateway: GatewayThread, claude: anthropic.Anthropic
) -> None:
    system = [
        {
            "type": "text",
            "text": "A long shared context about ledgers and budgets. " * 30,
            "cache_control": {"type": "ephemeral"},
        }
    ]
    first = claude.messages.with_raw_response.create(
        model="claude-test",
        max_tokens=20,
        system=system,
        messages=[{"role": "user", "content": "one"}],
    )
    second = claude.messages.with_raw_response.create(
        model="claude-test",
        max_tokens=20,
        system=system,
        messages=[{"role": "user", "content": "two"}],
    )
    u1, u2 = first.parse().usage, second.parse().usage
    assert (u1.cache_creation_input_tokens or 0) > 0 and (u2.cache_read_input_tokens or 0) > 0
    row1 = ledger_row(gateway, first.headers["x-tollway-request-id"])
    row2 = ledger_row(gateway, second.headers["x-tollway-request-id"])
    write = u1.cache_creation_input_tokens or 0
    read = u2.cache_read_input_tokens or 0
    assert row1["cache_write_tokens"] == write
    assert row1["input_tokens"] == u1.input_tokens + write
    assert row2["cached_input_tokens"] == read
    assert row2["input_tokens"] == u2.input_tokens + read
    assert row_usd(row1, "list_cost_pusd") == sonnet_usd(
        u1.input_tokens, 0, write, u1.output_tokens
    )
    assert row_usd(row2, "list_cost_pusd") == sonnet_usd(u2.input_tokens, read, 0, u2.output_tokens)


def test_count_tokens_is_answered_and_not_billed(
    gateway: GatewayThread, claude: anthropic.Anthropic
) -> None:
    result = claude.messages.count_tokens(
        model="claude-test", messages=[{"role": "user", "content": "how many tokens is this"}]
    )
    assert result.input_tokens > 0


def test_sdk_stream_helper_as_in_the_readme(claude: anthropic.Anthropic) -> None:
    with claude.messages.stream(
        model="claude-test", max_tokens=64, messages=[{"role": "user", "content": "hi"}]
    ) as stream:
        final = stream.get_final_message()
    assert final.usage.output_tokens > 0 and final.stop_reason == "end_turn"
