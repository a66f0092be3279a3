"""Activities (a coding stretch, an agent session, a loop script...) and the ledger records
their requests become: ids, status, tokens, prices, latency, fingerprint, gaming score."""

from __future__ import annotations

import random
from dataclasses import dataclass, field, fields
from operator import attrgetter

from tollway.gateway.apis import fingerprint
from tollway.insights.orgsim.draw import LogNormal
from tollway.insights.orgsim.models import SimModel
from tollway.insights.orgsim.texts import Text
from tollway.insights.orgsim.truth import SERVICE_TAG, Member
from tollway.ledger.record import LedgerRecord
from tollway.metering.pricing import price_usage
from tollway.metering.usage import Usage

# Shares of requests that fail: refused by a rate limit, or failed upstream.
RATE_LIMITED_SHARE = 0.006
UPSTREAM_ERROR_SHARE = 0.003
_UPSTREAM_ERRORS = ((502, "UpstreamStatus"), (503, "UpstreamStatus"), (504, "UpstreamTimeout"))
_ERROR_SHARE = RATE_LIMITED_SHARE + UPSTREAM_ERROR_SHARE
_SERVICE_TAGS = (SERVICE_TAG,)
_TTFT_JITTER = LogNormal(0.3)


@dataclass(slots=True)
class Turn:
    """One request of an activity: its record, its new prompt text, and the per-request
    line that makes it differ from other requests with the same text (may be empty)."""

    record: LedgerRecord
    text: Text
    variant: str


@dataclass(slots=True)
class Activity:
    """A stretch of one member's work, labelled with what it really is."""

    kind: str  # "ide" | "agentic" | "chat" | "batch_job" | a gamer kind
    user: str
    system: Text | None = None
    conversational: bool = False  # each request resends the earlier turns
    gaming: bool = False
    turns: list[Turn] = field(default_factory=list)

    @property
    def records(self) -> list[LedgerRecord]:
        return [t.record for t in self.turns]

    @property
    def start_ms(self) -> int:
        return self.turns[0].record.started_at_ms

    @property
    def end_ms(self) -> int:
        return self.turns[-1].record.finished_at_ms


class Recorder:
    """Makes one member's ledger records, window-checked; `number` gives them their ids."""

    def __init__(
        self, member: Member, org: str, run_id: str, window: tuple[int, int], rng: random.Random
    ) -> None:
        self.member = member
        self._prefix = f"req_{run_id}{member.index:06x}"
        self._start, self._end = window
        self._rng = rng
        # The fields every record of this member shares, personal key and service key.
        who = (member.user, member.team.name, org)
        self._personal = (member.key_id, *who)
        self._service = (member.service_key_id or member.key_id, *who)

    def add(
        self,
        activity: Activity,
        start_ms: int,
        model: SimModel,
        text: Text,
        *,
        context: str,
        variant: str = "",
        input_tokens: int,
        output_tokens: int,
        cached_tokens: int = 0,
        cache_write_tokens: int = 0,
        reasoning_tokens: int = 0,
        max_tokens: int | None = None,
        stream: bool = False,
        service: bool = False,
        burn: bool = False,
    ) -> LedgerRecord | None:
        """Record one request of `activity` (None when it falls outside the window).

        `context` identifies what precedes the new text in the prompt (system prompt,
        earlier turns); with `variant` it makes the fingerprint of the whole prompt.
        `burn`: the answer runs to `max_tokens` (finish "length").
        """
        if start_ms < self._start:
            return None
        rng = self._rng
        roll = rng.random()
        ttft: float | None
        if roll >= _ERROR_SHARE:
            status, error = 200, None
            ttft = model.ttft_ms * _TTFT_JITTER(rng) + input_tokens * 0.004
            latency = ttft + output_tokens * 1000.0 / model.tokens_per_s
            priced = price_usage(
                Usage(
                    input_tokens, cached_tokens, cache_write_tokens, output_tokens, reasoning_tokens
                ),
                model.price,
                model.discount_ppm,
            )
            list_pusd, actual_pusd = priced.list_cost_pusd, priced.actual_cost_pusd
            gaming = text.burn_score if burn else text.score
            finish: str | None = "length" if burn else "stop"
            sketch = text.sketch
        else:
            if roll < RATE_LIMITED_SHARE:
                status, error = 429, "RateLimited"
                latency = 1.5 + 4.5 * rng.random()
            else:
                status, error = _UPSTREAM_ERRORS[int(roll * 1e6) % 3]
                latency = 800.0 + 29_200.0 * rng.random()
            ttft = None
            input_tokens = cached_tokens = cache_write_tokens = 0
            output_tokens = reasoning_tokens = list_pusd = actual_pusd = 0
            gaming, finish, sketch = 0.0, None, 0
        finished = start_ms + int(latency)
        if finished > self._end:
            return None
        key_id, user, team, org = self._service if service else self._personal
        # Positional: a third of the cost of keywords, on the hottest line of a backfill
        # (the field order is checked at import, below).
        record = LedgerRecord(
            "",  # request_id: see `number`
            start_ms,
            finished,
            key_id,
            user,
            team,
            org,
            model.api,
            model.requested,
            model.served,
            model.provider,
            model.deployment,
            _SERVICE_TAGS if service else (),
            input_tokens,
            cached_tokens,
            cache_write_tokens,
            output_tokens,
            reasoning_tokens,
            list_pusd,
            actual_pusd,
            1.0,  # peak_weight
            actual_pusd,  # weighted_charge_pusd
            status,
            error,
            round(latency, 3),
            round(ttft, 3) if stream and ttft is not None else None,
            stream,
            False,  # estimated
            max_tokens,
            finish,
            1,  # attempts
            None,  # route_rule
            None,  # route_reason
            fingerprint(f"{context}|{text.fingerprint}|{variant}"),
            {},  # extra
            False,  # steered
            actual_pusd,  # requested_cost_pusd
            gaming,
            sketch,
        )
        activity.turns.append(Turn(record, text, variant))
        return record

    def number(self, records: list[LedgerRecord]) -> None:
        """Sort `records` by start and give them ids in that order: `req_`, the run, the
        member, a sequence number (so a member's rows land in order in the ledger's index)."""
        records.sort(key=_started)
        prefix = self._prefix
        for i, record in enumerate(records, 1):
            record.request_id = f"{prefix}{i:08x}"


_started = attrgetter("started_at_ms")
_FIELD_ORDER = (
    *("request_id", "started_at_ms", "finished_at_ms", "key_id", "user", "team", "org", "api"),
    *("requested_model", "served_model", "provider", "deployment", "tags", "input_tokens"),
    *("cached_input_tokens", "cache_write_tokens", "output_tokens", "reasoning_tokens"),
    *("list_cost_pusd", "actual_cost_pusd", "peak_weight", "weighted_charge_pusd", "status"),
    *("error_class", "latency_ms", "ttft_ms", "stream", "estimated", "max_tokens"),
    *("finish_reason", "attempts", "route_rule", "route_reason", "prompt_fingerprint", "extra"),
    *("steered", "requested_cost_pusd", "gaming_score", "prompt_sketch"),
)
# Fields added at the end (with defaults) are fine; anything else must update `add`.
if tuple(f.name for f in fields(LedgerRecord))[: len(_FIELD_ORDER)] != _FIELD_ORDER:
    raise ImportError("LedgerRecord's fields changed: update Recorder.add in orgsim/activity.py")
