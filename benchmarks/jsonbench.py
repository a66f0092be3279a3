"""JSON libraries on the hot path's work: orjson vs msgspec vs the standard library.

    python -m benchmarks.jsonbench

Per request the gateway parses the client's body (~1 KB chat request) and the
upstream's reply, and for streams parses every SSE chunk; it serialises errors and
metrics. Figures are ns per operation, best of several repeats.
"""

from __future__ import annotations

import json
import timeit
from collections.abc import Callable
from typing import Any

import msgspec
import orjson
from rich.console import Console

from benchmarks.gateway import chat_body
from benchmarks.report import table

CHUNK: dict[str, Any] = {
    "id": "chatcmpl-5491676960b19fa4b40ce871",
    "object": "chat.completion.chunk",
    "created": 1795877982,
    "model": "gpt-sim",
    "system_fingerprint": "fp_f4dbdf2100",
    "choices": [
        {"index": 0, "delta": {"content": " quarterly"}, "logprobs": None, "finish_reason": None}
    ],
}
REPLY: dict[str, Any] = {  # the simulator's reply to the benchmark request
    "id": "chatcmpl-5491676960b19fa4b40ce871",
    "object": "chat.completion",
    "created": 1795877982,
    "model": "gpt-sim",
    "choices": [
        {
            "index": 0,
            "message": {
                "role": "assistant",
                "content": "Rate self data one of, stop team def jitter each stop map body hash. "
                "Time we has all rule import stream score wait client or tree can load, graph",
                "refusal": None,
                "annotations": [],
            },
            "logprobs": None,
            "finish_reason": "stop",
        }
    ],
    "usage": {
        "prompt_tokens": 245,
        "completion_tokens": 32,
        "total_tokens": 277,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    },
    "service_tier": "default",
    "system_fingerprint": "fp_f4dbdf2100",
}


class Message(msgspec.Struct):
    role: str
    content: str


class ChatRequest(msgspec.Struct):
    """A typed schema, the way msgspec is fastest (and validates as it decodes)."""

    model: str
    messages: list[Message]
    stream: bool = False
    max_tokens: int | None = None


def cases() -> dict[str, dict[str, Callable[[], object]]]:
    """operation → library → a zero-argument callable doing it once."""
    body, reply, chunk_bytes = chat_body("gpt-sim"), orjson.dumps(REPLY), orjson.dumps(CHUNK)
    decode, encode = msgspec.json.Decoder(), msgspec.json.Encoder()
    typed = msgspec.json.Decoder(ChatRequest)
    return {
        f"loads chat request ({len(body):,} B)": {
            "orjson": lambda: orjson.loads(body),
            "msgspec": lambda: decode.decode(body),
            "msgspec (typed Struct)": lambda: typed.decode(body),
            "json (stdlib)": lambda: json.loads(body),
        },
        f"loads upstream reply ({len(reply):,} B)": {
            "orjson": lambda: orjson.loads(reply),
            "msgspec": lambda: decode.decode(reply),
            "json (stdlib)": lambda: json.loads(reply),
        },
        f"loads SSE chunk ({len(chunk_bytes):,} B)": {
            "orjson": lambda: orjson.loads(chunk_bytes),
            "msgspec": lambda: decode.decode(chunk_bytes),
            "json (stdlib)": lambda: json.loads(chunk_bytes),
        },
        "dumps SSE chunk (to bytes)": {
            "orjson": lambda: orjson.dumps(CHUNK),
            "msgspec": lambda: encode.encode(CHUNK),
            "json (stdlib)": lambda: json.dumps(CHUNK, separators=(",", ":")).encode(),
        },
    }


def ns_per_op(fn: Callable[[], object], repeats: int = 5, target_s: float = 0.2) -> float:
    """Best-of-`repeats` time of one call, in ns."""
    timer = timeit.Timer(fn)
    number, _ = timer.autorange()
    number = max(1, int(number * target_s / 0.2))
    return min(timer.repeat(repeats, number)) / number * 1e9


def run(quick: bool = False) -> dict[str, dict[str, float]]:
    """ns/op for every operation and library."""
    return {
        op: {
            lib: round(ns_per_op(fn, 3 if quick else 5, 0.05 if quick else 0.2), 1)
            for lib, fn in libs.items()
        }
        for op, libs in cases().items()
    }


def print_results(console: Console, results: dict[str, dict[str, float]]) -> None:
    rows = []
    for op, libs in results.items():
        fastest = min(libs.values())
        for lib, ns in libs.items():
            rows.append([f"{op}: {lib}", f"{ns:,.0f}", f"{ns / fastest:.1f}x"])
    console.print(
        table("JSON, ns per operation (lower is better)", ["case", "ns/op", "vs best"], rows)
    )


if __name__ == "__main__":
    out = Console(width=120)
    print_results(out, run())
