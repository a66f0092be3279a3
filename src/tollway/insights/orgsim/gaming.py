"""Gaming: tokens burned for their own sake, one function per habit, each with its signature.

- `padding`: sessions whose new text is inflated with filler (high compression ratio);
- `duplicate_loop`: one prompt resent unchanged many times a day (one fingerprint);
- `near_duplicate_loop`: one prompt with a counter, a timestamp or a word changed;
- `scripted_burst`: a request every few seconds with millisecond jitter for 20-60 minutes;
- `max_tokens_burner`: a large `max_tokens`, answers cut at the limit ("length");
- `off_hours_bulk`: huge prompts all night, on the personal key;
- `no_outcome`: ordinary but heavy work that never yields an outcome (see outcomes.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from tollway.insights.orgsim.activity import Activity
from tollway.insights.orgsim.behaviour import (
    MESSAGE_OVERHEAD,
    MemberContext,
    WorkDay,
    agent_session,
    chat,
    estimate_ms,
    pick_hour,
)
from tollway.insights.orgsim.clock import LocalDay
from tollway.insights.orgsim.draw import LogNormal, pick
from tollway.insights.orgsim.texts import Text, loop_prompt, near_duplicate

BURNER_MAX_TOKENS = (8192, 16384, 32768)
_SPREAD = {s: LogNormal(s) for s in (0.05, 0.3, 0.5)}


@dataclass(slots=True)
class GamerState:
    """What a gamer's scripts keep from day to day."""

    loop_text: Text
    template: str  # the near-duplicate loop's prompt
    burst_period_s: float
    burst_texts: tuple[Text, ...]
    counter: int = 0


def gamer_state(ctx: MemberContext) -> GamerState:
    rng = ctx.rng
    return GamerState(
        loop_text=ctx.bank.get(loop_prompt(rng)),
        template=loop_prompt(rng),
        burst_period_s=rng.uniform(2.5, 5.0),
        burst_texts=tuple(rng.choice(ctx.pools.questions) for _ in range(5)),
    )


def gaming_day(
    ctx: MemberContext, kind: str, state: GamerState, work: WorkDay | None, day: LocalDay
) -> list[Activity]:
    """One day of `kind`; habits that need a working day are skipped without one."""
    rng = ctx.rng
    if kind == "off_hours_bulk":
        return [off_hours_bulk(ctx, day)] if rng.random() < 0.75 else []
    if work is None or work.scale < 1.0 or kind == "no_outcome":
        return []
    if kind == "padding":
        return [padded_session(ctx, work) for _ in range(rng.randint(3, 8))]
    if kind in ("duplicate_loop", "near_duplicate_loop"):
        total = rng.randint(80, 300)
        clumps = rng.randint(2, 5)
        return [loop(ctx, kind, state, work, total // clumps) for _ in range(clumps)]
    if kind == "scripted_burst":
        return [scripted_burst(ctx, state, day) for _ in range(rng.randint(1, 3))]
    if kind == "max_tokens_burner":
        return [max_tokens_burner(ctx, work)]
    raise ValueError(f"unknown gamer kind {kind!r}")


def padded_session(ctx: MemberContext, work: WorkDay) -> Activity:
    start = work.day.at(pick_hour(ctx.rng, work))
    if ctx.rng.random() < 0.4:
        return agent_session(ctx, start, padded_share=0.7, kind="padding")
    return chat(ctx, start, padded_share=0.9, kind="padding")


def loop(ctx: MemberContext, kind: str, state: GamerState, work: WorkDay, count: int) -> Activity:
    """A script resending one prompt (exactly, or with a small change) `count` times."""
    rng, model = ctx.rng, ctx.models.openai
    activity = Activity(kind, ctx.member.user, ctx.pools.systems["chat"], gaming=True)
    context = f"loop:{ctx.member.user}"
    t = work.day.at(pick_hour(rng, work))
    output_median = rng.randint(150, 600)
    for _ in range(count):
        if kind == "duplicate_loop":
            text = state.loop_text
        else:
            state.counter = state.counter % 50 + 1
            clock = _clock(t - work.day.midnight_ms)
            text = ctx.bank.get(near_duplicate(rng, state.template, state.counter, clock))
        output = max(20, int(output_median * _SPREAD[0.05](rng)))
        ctx.recorder.add(
            activity,
            t,
            model,
            text,
            context=context,
            input_tokens=text.tokens + 2 * MESSAGE_OVERHEAD,
            output_tokens=output,
        )
        t += estimate_ms(model, output) + int(40_000 * _SPREAD[0.5](rng))
    return activity


def scripted_burst(ctx: MemberContext, state: GamerState, day: LocalDay) -> Activity:
    """Fixed-cadence requests (a few seconds apart, ms jitter) for 20-60 minutes."""
    rng, model = ctx.rng, ctx.models.openai
    activity = Activity("scripted_burst", ctx.member.user, gaming=True)
    start = day.at(rng.uniform(9.0, 22.0))
    period_ms = state.burst_period_s * 1000
    count = int(rng.uniform(20.0, 60.0) * 60_000 / period_ms)
    for i in range(count):
        text = state.burst_texts[i % len(state.burst_texts)]
        ctx.recorder.add(
            activity,
            start + int(i * period_ms + rng.gauss(0.0, 15.0)),
            model,
            text,
            context=f"burst:{ctx.member.user}",
            variant=f"#{i}",
            input_tokens=text.tokens + 2 * MESSAGE_OVERHEAD + 2,
            output_tokens=max(10, int(60 * _SPREAD[0.3](rng))),
            max_tokens=256,
        )
    return activity


def max_tokens_burner(ctx: MemberContext, work: WorkDay) -> Activity:
    """Requests with a huge `max_tokens` whose answers run to the limit."""
    rng = ctx.rng
    activity = Activity("max_tokens_burner", ctx.member.user, gaming=True)
    for _ in range(rng.randint(15, 60)):
        model = ctx.vendor()
        text = pick(rng, ctx.pools.burner)
        limit = rng.choice(BURNER_MAX_TOKENS)
        ctx.recorder.add(
            activity,
            work.day.at(pick_hour(rng, work)),
            model,
            text,
            context=f"burn:{ctx.member.user}",
            variant=f"v{rng.getrandbits(24):06x}",
            input_tokens=text.tokens + 2 * MESSAGE_OVERHEAD + 3,
            output_tokens=limit,
            max_tokens=limit,
            stream=True,
            burn=True,
        )
    activity.turns.sort(key=lambda turn: turn.record.started_at_ms)
    return activity


def off_hours_bulk(ctx: MemberContext, day: LocalDay) -> Activity:
    """Huge prompts all night long in the member's timezone, on the personal key."""
    rng = ctx.rng
    activity = Activity("off_hours_bulk", ctx.member.user, gaming=True)
    t = day.at(rng.uniform(21.5, 24.5))
    end = t + int(rng.uniform(2.0, 5.0) * 3_600_000)
    while t < end:
        model = ctx.vendor()
        text = pick(rng, ctx.pools.bulk)
        output = max(100, int(800 * _SPREAD[0.5](rng)))
        ctx.recorder.add(
            activity,
            t,
            model,
            text,
            context=f"bulk:{ctx.member.user}",
            variant=f"part {rng.getrandbits(32):08x}",
            input_tokens=text.tokens + 2 * MESSAGE_OVERHEAD + 4,
            output_tokens=output,
            max_tokens=4096,
        )
        t += estimate_ms(model, output) + int(60_000 * _SPREAD[0.5](rng))
    return activity


def _clock(ms_since_midnight: int) -> str:
    minutes = ms_since_midnight // 60_000 % (24 * 60)
    return f"{minutes // 60:02d}:{minutes % 60 // 10}0"
