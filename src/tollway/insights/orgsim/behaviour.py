"""Normal work: a member's working day, IDE completions, agent sessions, chats, batch jobs.

Human cadence is bursty: gaps between requests are log-normal with occasional long pauses
(reading, meetings), so inter-arrival times have a coefficient of variation well above 1.
Batch jobs run like clockwork on a service key, at night or around the clock.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from tollway.insights.orgsim.activity import Activity, Recorder
from tollway.insights.orgsim.clock import LocalDay
from tollway.insights.orgsim.draw import LogNormal, below, pick
from tollway.insights.orgsim.models import SimModel, SimModels
from tollway.insights.orgsim.personas import PERSONA_TABLE
from tollway.insights.orgsim.texts import Text, TextBank, TextPools
from tollway.insights.orgsim.truth import Member

MESSAGE_OVERHEAD = 3  # tokens of framing per message, as the gateway counts them
CACHE_MIN_TOKENS = 1024  # prompts shorter than this are not cached
CACHE_TTL_MS = 300_000  # a prefix unused for five minutes falls out of the cache

_SPREAD = {s: LogNormal(s) for s in (0.4, 0.6, 0.7, 0.8, 1.0)}


@dataclass(slots=True)
class WorkDay:
    """When a member works on one local day (hours past local midnight)."""

    day: LocalDay
    start_h: float
    end_h: float
    lunch_h: tuple[float, float]
    scale: float  # 1.0 on a working day; weekend work is short and light


@dataclass(slots=True)
class MemberContext:
    """Everything a member's activities draw on, with the member's own random stream."""

    member: Member
    rng: random.Random
    recorder: Recorder
    pools: TextPools
    models: SimModels
    bank: TextBank
    claude_share: float  # how often this member picks the Anthropic model
    lunch_ms: tuple[int, int] = (0, 0)  # today's lunch break

    def resume(self, t: int) -> int:
        """`t`, or the end of lunch if `t` falls within it (people mostly stop to eat)."""
        start, end = self.lunch_ms
        if start <= t < end and self.rng.random() < 0.9:
            return end + human_gap_ms(self.rng, 60.0, pause_share=0.0)
        return t

    def vendor(self) -> SimModel:
        return (
            self.models.anthropic if self.rng.random() < self.claude_share else self.models.openai
        )


def poisson(rng: random.Random, mean: float) -> int:
    """A Poisson draw (Knuth's method; means here are small)."""
    if mean <= 0:
        return 0
    limit, k, p = math.exp(-mean), 0, rng.random()
    while p > limit:
        k += 1
        p *= rng.random()
    return k


def human_gap_ms(rng: random.Random, median_s: float, pause_share: float = 0.08) -> int:
    """Think time between two requests: log-normal, sometimes a pause of minutes."""
    if rng.random() < pause_share:
        return int(rng.uniform(120.0, 900.0) * 1000)
    return int(median_s * _SPREAD[1.0](rng) * 1000)


def estimate_ms(model: SimModel, output_tokens: int) -> int:
    """How long an answer takes, for pacing the next request."""
    return int(model.ttft_ms + output_tokens * 1000.0 / model.tokens_per_s)


def plan_day(rng: random.Random, member: Member, day: LocalDay) -> WorkDay | None:
    """Whether and when `member` works on `day` (mostly weekdays, 8-9 hours, a lunch)."""
    if rng.random() >= (0.07 if day.weekend else 0.93):
        return None
    start = rng.gauss(member.team.start_hour + 0.3, 0.6)
    length = rng.uniform(1.0, 3.0) if day.weekend else rng.gauss(8.3, 0.7)
    lunch = rng.gauss(12.4, 0.3)
    return WorkDay(
        day,
        start,
        start + length,
        (lunch, lunch + rng.uniform(0.5, 1.0)),
        0.3 if day.weekend else 1.0,
    )


def pick_hour(rng: random.Random, work: WorkDay) -> float:
    """A start hour within the working day, mostly avoiding lunch."""
    hour = rng.uniform(work.start_h, work.end_h)
    for _ in range(4):
        if not (work.lunch_h[0] <= hour < work.lunch_h[1]) or rng.random() < 0.15:
            break
        hour = rng.uniform(work.start_h, work.end_h)
    return hour


def normal_day(ctx: MemberContext, work: WorkDay, level: float) -> list[Activity]:
    """A member's ordinary work on one day: completions, agent sessions and chats."""
    rng, persona = ctx.rng, PERSONA_TABLE[ctx.member.persona]
    scale = level * work.scale
    activities = []
    for _ in range(poisson(rng, persona.ide_blocks * scale)):
        activities.append(ide_block(ctx, work.day.at(pick_hour(rng, work))))
    for _ in range(poisson(rng, persona.agent_sessions * scale)):
        activities.append(agent_session(ctx, work.day.at(pick_hour(rng, work))))
    for _ in range(poisson(rng, persona.chats * scale)):
        activities.append(chat(ctx, work.day.at(pick_hour(rng, work))))
    if work.scale == 1.0 and rng.random() < 0.1:  # a question after dinner
        activities.append(chat(ctx, work.day.at(rng.uniform(20.0, 23.0))))
    return activities


def ide_block(ctx: MemberContext, start_ms: int) -> Activity:
    """A stretch of coding: many small completions on the in-house model, in bursts."""
    rng, model = ctx.rng, ctx.models.coding
    system = ctx.pools.systems["ide"]
    activity = Activity("ide", ctx.member.user, system)
    end_ms = start_ms + int(rng.uniform(20.0, 120.0) * 60_000)
    t = start_ms
    while t < end_ms:
        text = pick(rng, ctx.pools.ide)
        output = min(256, max(1, int(27.0 * _SPREAD[0.8](rng))))
        ctx.recorder.add(
            activity,
            t,
            model,
            text,
            context=system.fingerprint,
            variant=f"# cursor {below(rng, 400) + 1}:{below(rng, 80)}",
            input_tokens=system.tokens + text.tokens + 2 * MESSAGE_OVERHEAD + 8,
            output_tokens=output,
            max_tokens=256,
            stream=True,
        )
        t = ctx.resume(t + estimate_ms(model, output) + human_gap_ms(rng, 9.0))
    return activity


def agent_session(
    ctx: MemberContext, start_ms: int, padded_share: float = 0.0, kind: str = "agentic"
) -> Activity:
    """An agent loop: each turn resends the whole conversation, so input tokens climb;
    the unchanged prefix is read from the provider's prompt cache."""
    rng = ctx.rng
    model = ctx.vendor()
    system = ctx.pools.systems["agentic"]
    activity = Activity(kind, ctx.member.user, system, conversational=True, gaming=padded_share > 0)
    chain = f"{system.fingerprint}:{rng.getrandbits(48):012x}"  # this session's repository
    context = system.tokens + MESSAGE_OVERHEAD
    previous_input, previous_at = 0, -CACHE_TTL_MS
    turns = max(2, int(rng.lognormvariate(math.log(12), 0.6)))
    t = start_ms
    for k in range(turns):
        pool = ctx.pools.questions if k == 0 else ctx.pools.agent_turns
        text = _maybe_padded(ctx, pool, padded_share)
        input_tokens = context + text.tokens + MESSAGE_OVERHEAD
        cached = written = 0
        if previous_input >= CACHE_MIN_TOKENS and t - previous_at < CACHE_TTL_MS:
            cached = (
                previous_input if model.api == "anthropic.messages" else previous_input // 128 * 128
            )
        if model.api == "anthropic.messages" and input_tokens >= CACHE_MIN_TOKENS:
            written = input_tokens - cached
        output = min(8192, max(20, int(350 * _SPREAD[0.7](rng))))
        reasoning = int(output * rng.uniform(0.2, 0.6)) if _reasons(rng, model) else 0
        record = ctx.recorder.add(
            activity,
            t,
            model,
            text,
            context=chain,
            input_tokens=input_tokens,
            output_tokens=output,
            cached_tokens=cached,
            cache_write_tokens=written,
            reasoning_tokens=reasoning,
            max_tokens=8192,
            stream=rng.random() < 0.3,
            burn=False,
        )
        if record is not None and record.status != 200:
            output = 0  # the agent retries the same step later
        else:
            chain = f"{chain}|{text.fingerprint}"
            context = input_tokens + output + MESSAGE_OVERHEAD
            previous_input, previous_at = input_tokens, t
        tool_ms = human_gap_ms(rng, 6.0, pause_share=0.12)
        t = ctx.resume(t + estimate_ms(model, output) + tool_ms)
    return activity


def chat(
    ctx: MemberContext, start_ms: int, padded_share: float = 0.0, kind: str = "chat"
) -> Activity:
    """A Q&A conversation of a few turns on a vendor model."""
    rng = ctx.rng
    model = ctx.vendor()
    system = ctx.pools.systems["chat"]
    activity = Activity(kind, ctx.member.user, system, conversational=True, gaming=padded_share > 0)
    chain = f"{system.fingerprint}:{rng.getrandbits(48):012x}"
    context = system.tokens + MESSAGE_OVERHEAD
    stream = rng.random() < 0.85
    max_tokens = 4096 if model.api == "anthropic.messages" else rng.choice((None, None, 2048))
    t = start_ms
    turns = 1
    while turns < 6 and rng.random() < 0.5:
        turns += 1
    for _ in range(turns):
        text = _maybe_padded(ctx, ctx.pools.questions, padded_share)
        input_tokens = context + text.tokens + MESSAGE_OVERHEAD
        output = min(3000, max(30, int(450 * _SPREAD[0.6](rng))))
        reasoning = int(output * rng.uniform(0.1, 0.4)) if _reasons(rng, model, 0.25) else 0
        ctx.recorder.add(
            activity,
            t,
            model,
            text,
            context=chain,
            input_tokens=input_tokens,
            output_tokens=output,
            reasoning_tokens=reasoning,
            max_tokens=max_tokens,
            stream=stream,
        )
        chain = f"{chain}|{text.fingerprint}"
        context = input_tokens + output + MESSAGE_OVERHEAD
        t = ctx.resume(t + estimate_ms(model, output) + human_gap_ms(rng, 60.0, pause_share=0.0))
    return activity


def batch_job(ctx: MemberContext, day: LocalDay) -> Activity:
    """One day of the member's sanctioned batch job, on the service key, tagged automation."""
    rng, model = ctx.rng, ctx.models.batch
    activity = Activity("batch_job", ctx.member.user)
    job = ctx.member.service_job
    runs: list[tuple[int, int, float]] = []  # (start ms, requests, seconds apart)
    if job == "nightly":
        runs.append((day.at(1.0 + rng.uniform(0.0, 0.25)), rng.randint(120, 300), 30.0))
    elif job == "hourly":
        runs += [
            (day.at(h + 5 / 60) + int(rng.gauss(0, 10_000)), rng.randint(5, 15), 2.0)
            for h in range(24)
        ]
    else:
        runs += [
            (day.at(q / 4) + int(rng.gauss(0, 2_000)), rng.randint(1, 3), 1.5) for q in range(96)
        ]
    for start, count, every_s in runs:
        for i in range(count):
            text = pick(rng, ctx.pools.batch)
            ctx.recorder.add(
                activity,
                start + int(i * every_s * 1000 + rng.gauss(0.0, every_s * 10)),
                model,
                text,
                context=f"batch:{ctx.member.user}",
                variant=f"document {rng.getrandbits(40):010x}",
                input_tokens=text.tokens + 2 * MESSAGE_OVERHEAD + 12,
                output_tokens=max(10, int(120 * _SPREAD[0.4](rng))),
                max_tokens=512,
                service=True,
            )
    return activity


def _maybe_padded(ctx: MemberContext, pool: tuple[Text, ...], padded_share: float) -> Text:
    if padded_share and ctx.rng.random() < padded_share:
        return pick(ctx.rng, ctx.pools.padded)
    return pick(ctx.rng, pool)


def _reasons(rng: random.Random, model: SimModel, share: float = 0.4) -> bool:
    return model.api == "openai.chat" and rng.random() < share
