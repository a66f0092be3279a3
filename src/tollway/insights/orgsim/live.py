"""Live mode: the simulated organisation drives a real gateway over HTTP, in real time.

Simulated time starts at `sim_start_ms` (default: now) and runs `speed` times faster than
the wall clock. Keys are created through the admin API (one per member with traffic in
the window, plus service keys); each planned request is sent when its time comes, with
the conversation so far for chats and agent sessions; outcomes are posted to
`POST /admin/v1/outcomes` when they happen, unless `post_outcomes` is off. Against the
simulated provider, a `sim:tokens=N` line asks for the planned answer length.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson

from tollway.insights.orgsim.activity import Activity, Turn
from tollway.insights.orgsim.clock import DAY_MS
from tollway.insights.orgsim.generate import OrgSimulator
from tollway.insights.orgsim.models import SimModels
from tollway.insights.orgsim.truth import SERVICE_TAG, Episode, Member, OrgTruth
from tollway.ledger.outcomes import Outcome

ADMIN_PREFIX = "/admin/v1"
ANTHROPIC_VERSION = "2023-06-01"
_BURN_EXTRA_TOKENS = 1000  # ask for more than max_tokens so the answer stops at the limit


@dataclass(slots=True)
class LiveResult:
    """What a live run sent and how the gateway answered."""

    truth: OrgTruth
    sent: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    outcomes_posted: int = 0
    keys_created: int = 0
    late: int = 0  # requests sent more than a second behind schedule
    seconds: float = 0.0
    users: set[str] = field(default_factory=set)
    episodes: list[Episode] = field(default_factory=list)  # as planned, in simulated time

    @property
    def ok(self) -> int:
        return sum(n for status, n in self.statuses.items() if 200 <= status < 300)


def run_live(
    url: str,
    admin_key: str,
    truth: OrgTruth,
    models: SimModels,
    *,
    minutes: float,
    speed: float = 1.0,
    sim_start_ms: int | None = None,
    post_outcomes: bool = True,
    concurrency: int = 32,
    directives: bool = True,
    pool_size: int | None = None,
) -> LiveResult:
    """Drive the gateway at `url` for `minutes` of wall time (blocking)."""
    return asyncio.run(
        drive(
            url,
            admin_key,
            truth,
            models,
            minutes=minutes,
            speed=speed,
            sim_start_ms=sim_start_ms,
            post_outcomes=post_outcomes,
            concurrency=concurrency,
            directives=directives,
            pool_size=pool_size,
        )
    )


async def drive(
    url: str,
    admin_key: str,
    truth: OrgTruth,
    models: SimModels,
    *,
    minutes: float,
    speed: float = 1.0,
    sim_start_ms: int | None = None,
    post_outcomes: bool = True,
    concurrency: int = 32,
    directives: bool = True,
    pool_size: int | None = None,
) -> LiveResult:
    """`run_live` as a coroutine."""
    if minutes <= 0 or speed <= 0:
        raise ValueError("minutes and speed must be positive")
    started = time.perf_counter()
    sim_start = int(time.time() * 1000) if sim_start_ms is None else sim_start_ms
    sim_span = int(minutes * 60_000 * speed)
    simulator = OrgSimulator(
        truth, models, end_ms=sim_start + sim_span, days=sim_span / DAY_MS, pool_size=pool_size
    )
    traces = [t for t in simulator.traces() if t.activities or t.outcomes]
    result = LiveResult(truth)
    result.episodes = sorted((e for t in traces for e in t.episodes), key=lambda e: e.start_ms)
    driver = _Driver(url.rstrip("/"), admin_key, sim_start, speed, directives, result)
    timeout = aiohttp.ClientTimeout(total=600)
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
        driver.session = session
        driver.gate = asyncio.Semaphore(concurrency)
        for trace in traces:
            if trace.activities:
                await driver.create_keys(trace.member)
        driver.wall0 = time.monotonic()
        tasks = [
            asyncio.create_task(driver.play(activity))
            for trace in traces
            for activity in trace.activities
        ]
        if post_outcomes:
            outcomes = sorted((o for t in traces for o in t.outcomes), key=_occurred)
            tasks.append(asyncio.create_task(driver.post_outcomes(outcomes)))
        await asyncio.gather(*tasks)
    result.seconds = time.perf_counter() - started
    return result


def _occurred(outcome: Outcome) -> int:
    return outcome.occurred_at_ms


class _Driver:
    """Sends one run's requests and outcomes on the simulated schedule."""

    session: aiohttp.ClientSession
    gate: asyncio.Semaphore

    def __init__(
        self,
        url: str,
        admin_key: str,
        sim_start: int,
        speed: float,
        directives: bool,
        result: LiveResult,
    ) -> None:
        self.url = url
        self.admin_key = admin_key
        self.sim_start = sim_start
        self.speed = speed
        self.directives = directives
        self.result = result
        self.keys: dict[str, str] = {}  # simulated key id -> secret
        self.wall0 = 0.0

    def wall_offset_s(self, sim_ms: int) -> float:
        return (sim_ms - self.sim_start) / 1000 / self.speed

    async def wait_for(self, sim_ms: int) -> None:
        delay = self.wall0 + self.wall_offset_s(sim_ms) - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        elif delay < -1.0:
            self.result.late += 1

    async def create_keys(self, member: Member) -> None:
        wanted: list[tuple[str, list[str]]] = [(member.key_id, [])]
        if member.service_key_id:
            wanted.append((member.service_key_id, [SERVICE_TAG]))
        for key_id, tags in wanted:
            body = {
                "user": member.user,
                "team": member.team.name,
                "org": self.result.truth.org,
                "name": key_id,
                "tags": tags,
            }
            async with self.session.post(
                f"{self.url}{ADMIN_PREFIX}/keys", json=body, headers=self._admin_headers()
            ) as resp:
                if resp.status != 201:
                    raise RuntimeError(
                        f"creating key {key_id}: HTTP {resp.status} {await resp.text()}"
                    )
                self.keys[key_id] = (await resp.json())["key"]
                self.result.keys_created += 1

    async def play(self, activity: Activity) -> None:
        """Send an activity's requests: a conversation in turn order, resending its history;
        anything else each at its own time, overlapping if the schedule says so."""
        if not activity.conversational:
            await asyncio.gather(*(self._send_at(activity, turn, []) for turn in activity.turns))
            return
        history: list[tuple[str, str]] = []
        for turn in activity.turns:
            answer = await self._send_at(activity, turn, history)
            history.append((_new_text(turn), answer or "(no answer)"))

    async def _send_at(
        self, activity: Activity, turn: Turn, history: list[tuple[str, str]]
    ) -> str | None:
        await self.wait_for(turn.record.started_at_ms)
        async with self.gate:
            return await self._send(activity, turn, history)

    async def _send(
        self, activity: Activity, turn: Turn, history: list[tuple[str, str]]
    ) -> str | None:
        record = turn.record
        text = _new_text(turn)
        if self.directives:
            wanted = record.output_tokens or 32
            if record.finish_reason == "length" and record.max_tokens:
                wanted = record.max_tokens + _BURN_EXTRA_TOKENS
            text += f"\nsim:tokens={wanted}"
        messages: list[dict[str, str]] = []
        for asked, answered in history:
            messages += [
                {"role": "user", "content": asked},
                {"role": "assistant", "content": answered},
            ]
        messages.append({"role": "user", "content": text})
        secret = self.keys[record.key_id]
        system = activity.system.body if activity.system is not None else None
        body: dict[str, Any] = {"model": record.requested_model, "stream": record.stream}
        if record.api == "anthropic.messages":
            path = "/v1/messages"
            headers = {"x-api-key": secret, "anthropic-version": ANTHROPIC_VERSION}
            body["max_tokens"] = record.max_tokens or 1024
            if system:
                body["system"] = system
            body["messages"] = messages
        else:
            path = "/v1/chat/completions"
            headers = {"authorization": f"Bearer {secret}"}
            if record.max_tokens:
                body["max_tokens"] = record.max_tokens
            body["messages"] = (
                [{"role": "system", "content": system}] if system else []
            ) + messages
        self.result.sent += 1
        self.result.users.add(record.user)
        try:
            async with self.session.post(f"{self.url}{path}", json=body, headers=headers) as resp:
                raw = await resp.read()
                self.result.statuses[resp.status] += 1
                if resp.status != 200:
                    return None
                return _answer(raw, record.stream, record.api)
        except (aiohttp.ClientError, TimeoutError):
            self.result.statuses[0] += 1
            return None

    async def post_outcomes(self, outcomes: list[Outcome]) -> None:
        """Post each outcome when it happens (timestamps mapped to the wall clock)."""
        for outcome in outcomes:
            await self.wait_for(outcome.occurred_at_ms)
            occurred_wall = int(time.time() * 1000)
            event = {
                "id": outcome.outcome_id,
                "kind": outcome.kind,
                "actors": list(outcome.actors),
                "team": outcome.team,
                "org": outcome.org,
                "size": outcome.size,
                "occurred_at": occurred_wall,
                "url": outcome.url,
                "title": outcome.title,
                "refs": list(outcome.refs),
            }
            async with self.session.post(
                f"{self.url}{ADMIN_PREFIX}/outcomes",
                json={"events": [event]},
                headers=self._admin_headers(),
            ) as resp:
                await resp.read()
                if resp.status < 300:
                    self.result.outcomes_posted += 1

    def _admin_headers(self) -> dict[str, str]:
        return {"authorization": f"Bearer {self.admin_key}"}


def _new_text(turn: Turn) -> str:
    return f"{turn.text.body}\n{turn.variant}" if turn.variant else turn.text.body


def _answer(raw: bytes, stream: bool, api: str) -> str:
    """The answer's text, from a JSON body or an SSE stream."""
    if not stream:
        data = orjson.loads(raw)
        if api == "anthropic.messages":
            return "".join(b.get("text", "") for b in data.get("content", []))
        return str(data["choices"][0]["message"].get("content") or "")
    parts: list[str] = []
    for line in raw.split(b"\n"):
        if not line.startswith(b"data: ") or line == b"data: [DONE]":
            continue
        event = orjson.loads(line[6:])
        if api == "anthropic.messages":
            if event.get("type") == "content_block_delta":
                parts.append(event["delta"].get("text", ""))
        elif event.get("choices"):
            parts.append(event["choices"][0].get("delta", {}).get("content") or "")
    return "".join(parts)
