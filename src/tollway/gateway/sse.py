"""Server-sent-event relaying with usage capture, one meter per API dialect.

A meter sees every complete SSE event once, in order, and decides what is
relayed: everything, except the usage chunk the gateway asked OpenAI for on
the client's behalf, and the stream's terminal event, which is *held* until
the request is settled in the ledger (so a client that received the whole
stream is guaranteed to be on record).
"""

from __future__ import annotations

from typing import Any

import orjson

from tollway.metering.usage import Usage

_SEP = b"\n\n"


class SseSplitter:
    """Cuts a byte stream into complete SSE events (each with its trailing blank line)."""

    __slots__ = ("_buffer",)

    def __init__(self) -> None:
        self._buffer = b""

    def feed(self, chunk: bytes) -> list[bytes]:
        data = self._buffer + chunk if self._buffer else chunk
        if b"\r" in data:
            data = data.replace(b"\r\n", b"\n")
        events: list[bytes] = []
        start = 0
        while True:
            end = data.find(_SEP, start)
            if end < 0:
                break
            events.append(data[start : end + 2])
            start = end + 2
        self._buffer = data[start:]
        return events

    @property
    def pending(self) -> bytes:
        """Bytes of an incomplete trailing event."""
        return self._buffer


def _field(event: bytes, name: bytes) -> bytes | None:
    for line in event.split(b"\n"):
        if line.startswith(name):
            return line[len(name) :].lstrip(b" ")
    return None


class StreamMeter:
    """Common state: captured usage, generated text, finish reason, terminal event."""

    def __init__(self) -> None:
        self.usage: Usage | None = None
        self.text_parts: list[str] = []
        self.finish_reason: str | None = None
        self.upstream_error: dict[str, Any] | None = None
        self.terminal: bytes | None = None  # held until settle
        self.first_token_seen = False

    @property
    def complete(self) -> bool:
        return self.terminal is not None

    def relay(self, event: bytes) -> bytes | None:  # pragma: no cover - interface
        raise NotImplementedError


class OpenAIStreamMeter(StreamMeter):
    """Chat and completion chunk streams; `strip_usage` drops the injected usage chunk."""

    def __init__(self, strip_usage: bool) -> None:
        super().__init__()
        self.strip_usage = strip_usage

    def relay(self, event: bytes) -> bytes | None:
        data = _field(event, b"data:")
        if data is None:
            return event
        if data == b"[DONE]":
            self.terminal = event
            return None
        try:
            chunk = orjson.loads(data)
        except orjson.JSONDecodeError:
            return event
        if not isinstance(chunk, dict):
            return event
        if "error" in chunk:
            self.upstream_error = chunk["error"] if isinstance(chunk["error"], dict) else {}
            return event
        usage = chunk.get("usage")
        if usage:
            self.usage = Usage.from_openai(usage)
        choices = chunk.get("choices")
        if choices:
            choice = choices[0]
            delta = choice.get("delta")
            text = delta.get("content") if isinstance(delta, dict) else choice.get("text")
            if text:
                self.text_parts.append(text)
                self.first_token_seen = True
            if choice.get("finish_reason"):
                self.finish_reason = choice["finish_reason"]
        elif usage and self.strip_usage:
            return None
        return event


class AnthropicStreamMeter(StreamMeter):
    """Messages streams: usage from `message_start` and the cumulative `message_delta`."""

    def __init__(self) -> None:
        super().__init__()
        self.usage = Usage()

    def relay(self, event: bytes) -> bytes | None:
        data = _field(event, b"data:")
        if data is None:
            return event
        try:
            payload = orjson.loads(data)
        except orjson.JSONDecodeError:
            return event
        kind = payload.get("type") if isinstance(payload, dict) else None
        usage = self.usage
        assert usage is not None
        if kind == "content_block_delta":
            delta = payload.get("delta") or {}
            text = delta.get("text") or delta.get("thinking") or delta.get("partial_json")
            if text:
                self.text_parts.append(text)
                self.first_token_seen = True
        elif kind == "message_start":
            usage.merge_anthropic((payload.get("message") or {}).get("usage"))
        elif kind == "message_delta":
            usage.merge_anthropic(payload.get("usage"))
            self.finish_reason = (payload.get("delta") or {}).get("stop_reason")
        elif kind == "message_stop":
            self.terminal = event
            return None
        elif kind == "error":
            self.upstream_error = payload.get("error") or {}
        return event


def openai_error_event(message: str, error_type: str) -> bytes:
    """An in-stream error, as OpenAI sends it (the SDK raises on it)."""
    body = {"error": {"message": message, "type": error_type, "param": None, "code": None}}
    return b"data: " + orjson.dumps(body) + b"\n\n"


def anthropic_error_event(message: str, error_type: str) -> bytes:
    """An in-stream `error` event, as Anthropic sends it."""
    body = {"type": "error", "error": {"type": error_type, "message": message}}
    return b"event: error\ndata: " + orjson.dumps(body) + b"\n\n"
