"""The simulator's ASGI app: both APIs, the `/_sim/*` control endpoints, and the wire.

One request, one way: route → credential → JSON body → model → fault → handler → send
(with simulated latency, fault effects and client-disconnect detection). Raw ASGI, no
framework: it is the upstream of throughput benchmarks, so it must cost little.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from typing import Any

import orjson

from tollway.providers.simulated.anthropic_api import AnthropicApi
from tollway.providers.simulated.cache import PromptCache
from tollway.providers.simulated.config import SimConfig
from tollway.providers.simulated.dialect import Dialect, Handler
from tollway.providers.simulated.engine import TextGenerator
from tollway.providers.simulated.faults import FaultPlan, FaultRule
from tollway.providers.simulated.openai_api import OpenAIApi
from tollway.providers.simulated.prompts import PromptError
from tollway.providers.simulated.replies import Reply, StreamReply, json_reply
from tollway.providers.simulated.stats import SimStats
from tollway.providers.simulated.tokencount import TokenCounter

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

_MODELS_PATH = "/v1/models"
_UNFINISHED = "ASGI callable returned without completing response."
_dropping: contextvars.ContextVar[bool] = contextvars.ContextVar("tollway_sim_drop", default=False)


class _QuietDrops(logging.Filter):
    """Hide uvicorn's complaint about an unfinished response when a drop fault caused it.

    The flag lives in the request task's context, so the server's own bugs (and other
    apps served by uvicorn in the same process) are still logged.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return not (_dropping.get() and record.msg == _UNFINISHED)


def _install_drop_filter() -> None:
    server_logger = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, _QuietDrops) for f in server_logger.filters):
        server_logger.addFilter(_QuietDrops())


async def _read_body(receive: Receive) -> bytes:
    message = await receive()
    body: bytes = message.get("body", b"")
    if not message.get("more_body"):
        return body
    chunks = [body]
    while message.get("more_body"):
        message = await receive()
        chunks.append(message.get("body", b""))
    return b"".join(chunks)


async def _until_disconnect(receive: Receive) -> None:
    """Returns when the client goes away (call only after the body has been read)."""
    while (await receive())["type"] != "http.disconnect":
        pass


async def _client_left(watcher: asyncio.Task[None], seconds: float) -> bool:
    """Wait `seconds`, or less if the client disconnects; True if it did."""
    done, _ = await asyncio.wait((watcher,), timeout=seconds)
    return bool(done)


class SimulatedProvider:
    """An ASGI app that behaves like the OpenAI and Anthropic APIs (see `SimConfig`)."""

    def __init__(self, config: SimConfig) -> None:
        self.config = config
        self.generator = TextGenerator(config.seed)
        self.cache = PromptCache(config.cache_entries, config.cache_min_tokens, config.cache_block)
        self.faults = FaultPlan(config.faults)
        self.stats = SimStats()
        _install_drop_filter()
        self.count_tokens = TokenCounter()
        self.openai = OpenAIApi(config, self.generator, self.cache, self.count_tokens)
        self.anthropic = AnthropicApi(config, self.generator, self.cache, self.count_tokens)
        self._routes: dict[tuple[str, str], tuple[Dialect, Handler, bool]] = {}
        for dialect in (self.openai, self.anthropic):
            for route, handler in dialect.routes.items():
                self._routes.setdefault(route, (dialect, handler, route in dialect.model_routes))
        self._control: dict[tuple[str, str], Callable[[bytes], Reply]] = {
            ("POST", "/_sim/faults"): self._add_faults,
            ("DELETE", "/_sim/faults"): self._clear_faults,
            ("GET", "/_sim/faults"): lambda _: json_reply(200, {"rules": self.faults.describe()}),
            ("GET", "/_sim/stats"): lambda _: json_reply(200, self.stats.snapshot()),
            ("POST", "/_sim/reset"): self._reset,
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await self._http(scope, receive, send)
        elif scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return

    # --- control endpoints -------------------------------------------------------------

    def _add_faults(self, body: bytes) -> Reply:
        try:
            payload = orjson.loads(body)
            rules = payload["rules"] if isinstance(payload, dict) else None
            if not isinstance(rules, list):
                raise ValueError('expected {"rules": [...]}')
            self.faults.add(rules)
        except (ValueError, KeyError) as exc:
            return json_reply(400, {"error": str(exc)})
        return json_reply(200, {"rules": self.faults.describe()})

    def _clear_faults(self, body: bytes) -> Reply:
        self.faults.clear()
        return json_reply(200, {"rules": []})

    def _reset(self, body: bytes) -> Reply:
        self.faults.clear()
        self.stats.reset()
        self.cache.clear()
        return json_reply(200, {"reset": True})

    # --- API requests ------------------------------------------------------------------

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        method: str = scope["method"]
        path: str = scope["path"]
        headers: dict[bytes, bytes] = dict(scope["headers"])
        route = self._routes.get((method, path))
        if route is None:
            control = self._control.get((method, path))
            if control is not None:
                await self._send_whole(control(await _read_body(receive)), send, counted=False)
            else:
                await self._send_whole(self._unrouted(method, path, headers), send)
            return
        dialect, handler, needs_model = route
        if path == _MODELS_PATH and b"anthropic-version" in headers:
            dialect, handler = self.anthropic, self.anthropic.list_models
        started = asyncio.get_running_loop().time()
        model, body, early = await self._prepare(dialect, needs_model, method, headers, receive)
        self.stats.count_request(dialect.name, model)
        if early is not None:
            await self._send_whole(early, send)
            return
        rule = self.faults.take(dialect.name, model) if self.faults else None
        if rule is not None:
            self.stats.faults_applied += 1
            await self._faulted(rule, dialect, handler, body, model, started, receive, send)
            return
        reply = self._run(dialect, handler, body)
        await self._answer(reply, dialect, model, None, started, receive, send)

    async def _prepare(
        self,
        dialect: Dialect,
        needs_model: bool,
        method: str,
        headers: Mapping[bytes, bytes],
        receive: Receive,
    ) -> tuple[str, dict[str, Any], Reply | None]:
        """(model, body, early reply): check the credential, the JSON body and the model."""
        if self.config.require_api_key and not dialect.authorized(headers):
            return "", {}, dialect.unauthorized()
        raw = await _read_body(receive)
        if method != "POST":
            return "", {}, None
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return "", {}, dialect.malformed_json()
        if not isinstance(body, dict):
            return "", {}, dialect.invalid("The request body must be a JSON object.")
        if not needs_model:
            return "", body, None
        model = body.get("model")
        if not model:
            return "", body, dialect.missing("model")
        if not isinstance(model, str):
            return "", body, dialect.invalid("model: Input should be a valid string", "model")
        if not self.config.accepts_model(model):
            return model, body, dialect.unknown_model(model)
        return model, body, None

    def _run(self, dialect: Dialect, handler: Handler, body: dict[str, Any]) -> Reply | StreamReply:
        try:
            return handler(body)
        except PromptError as exc:
            return dialect.invalid(exc.message, exc.param)

    def _unrouted(self, method: str, path: str, headers: Mapping[bytes, bytes]) -> Reply:
        anthropic = b"anthropic-version" in headers or b"x-api-key" in headers
        dialect: Dialect = self.anthropic if anthropic else self.openai
        if method == "GET" and path.startswith(_MODELS_PATH + "/"):
            if self.config.require_api_key and not dialect.authorized(headers):
                return dialect.unauthorized()
            model = path[len(_MODELS_PATH) + 1 :]
            if model in self.config.listed_models() or (model and not self.config.models):
                return dialect.get_model(model)
            return dialect.unknown_model(model)
        return dialect.not_found(f"{method} {path}")

    async def _faulted(
        self,
        rule: FaultRule,
        dialect: Dialect,
        handler: Handler,
        body: dict[str, Any],
        model: str,
        started: float,
        receive: Receive,
        send: Send,
    ) -> None:
        """Apply `rule` to a request that would otherwise be answered normally."""
        if rule.mode == "timeout":
            watcher = asyncio.ensure_future(_until_disconnect(receive))
            try:
                if await _client_left(watcher, rule.delay_s):
                    self.stats.disconnects += 1
                    return
            finally:
                watcher.cancel()
            reply = self._run(dialect, handler, body)
            await self._answer(reply, dialect, model, None, started, receive, send)
            return
        if rule.mode == "status" and not (body.get("stream") is True and rule.after_chunks):
            await self._send_whole(dialect.status_error(rule.status), send)
            return
        reply = self._run(dialect, handler, body)
        await self._answer(reply, dialect, model, rule, started, receive, send)

    async def _answer(
        self,
        reply: Reply | StreamReply,
        dialect: Dialect,
        model: str,
        rule: FaultRule | None,
        started: float,
        receive: Receive,
        send: Send,
    ) -> None:
        if isinstance(reply, StreamReply):
            await self._send_stream(reply, dialect, model, rule, started, receive, send)
            return
        wait = started + reply.delay_s - asyncio.get_running_loop().time()
        if wait > 0:
            watcher = asyncio.ensure_future(_until_disconnect(receive))
            try:
                if await _client_left(watcher, wait):
                    self.stats.disconnects += 1
                    self.stats.count_tokens(dialect.name, model, reply.input_tokens, 0)
                    return
            finally:
                watcher.cancel()
        if reply.status == 200 and model:
            self.stats.count_tokens(dialect.name, model, reply.input_tokens, reply.output_tokens)
        if rule is not None and rule.mode == "drop":
            await self._send_broken(reply, rule, send)
            return
        await self._send_whole(reply, send)

    async def _send_whole(self, reply: Reply, send: Send, counted: bool = True) -> None:
        if counted:
            self.stats.count_status(reply.status)
        headers = reply.headers
        headers.append((b"content-length", str(len(reply.body)).encode()))
        await send({"type": "http.response.start", "status": reply.status, "headers": headers})
        await send({"type": "http.response.body", "body": reply.body})

    async def _send_broken(self, reply: Reply, rule: FaultRule, send: Send) -> None:
        """Send the headers (and half the body if `after_chunks`), then drop the connection."""
        self.stats.count_status(reply.status)
        headers = [*reply.headers, (b"content-length", str(len(reply.body)).encode())]
        await send({"type": "http.response.start", "status": reply.status, "headers": headers})
        if rule.after_chunks:
            part = reply.body[: len(reply.body) // 2]
            await send({"type": "http.response.body", "body": part, "more_body": True})
        _dropping.set(True)
        # Returning without completing the response makes the server close the connection.

    async def _send_stream(
        self,
        reply: StreamReply,
        dialect: Dialect,
        model: str,
        rule: FaultRule | None,
        started: float,
        receive: Receive,
        send: Send,
    ) -> None:
        """Send the events on their schedule; stop early on a fault or a client disconnect."""
        self.stats.count_status(reply.status)
        events = reply.events
        # A fault always bites: it cuts before the stream's last event at the latest.
        cut = len(events) if rule is None else min(rule.after_chunks, len(events) - 1)
        paced = bool(events) and events[-1].due_s > 0
        watcher = asyncio.ensure_future(_until_disconnect(receive)) if paced else None
        loop = asyncio.get_running_loop()
        sent_tokens = 0
        try:
            await send({"type": "http.response.start", "status": 200, "headers": reply.headers})
            for event in events[:cut]:
                if watcher is not None:
                    wait = started + event.due_s - loop.time()
                    if (wait > 0 and await _client_left(watcher, wait)) or watcher.done():
                        self.stats.disconnects += 1
                        return
                await send({"type": "http.response.body", "body": event.data, "more_body": True})
                sent_tokens += event.tokens
            if rule is None:
                await send({"type": "http.response.body", "body": b""})
            elif rule.mode == "status":
                await send(
                    {"type": "http.response.body", "body": dialect.stream_error(rule.status)}
                )
            else:
                # A "drop" returns without finishing the body: the server cuts the connection.
                _dropping.set(True)
        finally:
            if watcher is not None:
                watcher.cancel()
            self.stats.count_tokens(dialect.name, model, reply.input_tokens, sent_tokens)


def create_app(config: SimConfig | None = None) -> SimulatedProvider:
    """The simulator as an ASGI app serving both APIs and the `/_sim/*` control endpoints."""
    return SimulatedProvider(config or SimConfig())
