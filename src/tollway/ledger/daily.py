"""The `user_daily` increments: per user and UTC day, the counts behind per-user signals.

Written by `RowWriter` in the same transaction as the requests, so they never disagree.
Three counts need memory of earlier requests, kept per writer:

- `duplicate_requests`: the prompt's fingerprint was already seen from this user today;
- `near_duplicate_requests`: not an exact duplicate, but its sketch is near one of the
  user's recent sketches (`tollway.insights.sketch`);
- `regular_requests`: the request ends a run of `CADENCE_RUN` gaps whose coefficient of
  variation is below `CADENCE_CV` (humans are bursty, CV > 1; scripts tick evenly).

`in_house_tokens` are the tokens of requests served in-house (by model or provider, as
configured when they are written: changing `in_house` later affects new traffic only).

Each writer sees the requests it writes: with several replicas, a user's requests are
split between them and these three counts are lower bounds (the others stay exact).
The memory is idempotent per request id, so a retried batch is not counted against itself.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from math import sqrt

from tollway.insights.sketch import NEAR_BITS
from tollway.ledger.record import LedgerRecord

DAY_MS = 86_400_000
CADENCE_RUN = 20  # gaps in a run (bot-cadence reference: CV < 0.1 over 20+ requests)
CADENCE_CV = 0.1
RECENT_SKETCHES = 32
GAMED_SCORE = 0.5  # a request scoring this or more counts as gamed
BURN_MAX_TOKENS = 4096
DEFAULT_EXEMPT_TAGS = frozenset({"automation", "ci", "service"})
_MAX_FINGERPRINTS = 5_000  # per user and day; beyond this, duplicates go uncounted


@dataclass(slots=True)
class _UserMemory:
    day: int = -1
    fingerprints: dict[str, str] = field(default_factory=dict)  # fingerprint -> first id
    sketch_ids: deque[str] = field(default_factory=deque)  # the recent sketches' requests
    sketches: deque[int] = field(default_factory=deque)
    last_id: str = ""
    last_ms: int = -1
    gaps: deque[int] = field(default_factory=deque)
    gap_sum: int = 0  # of `gaps`, kept as they come and go
    gap_squares: int = 0


class DailyTracker:
    """Turns batches of records into `user_daily` increments (DAILY_KEYS + DAILY_SUMS order)."""

    def __init__(
        self,
        exempt_tags: Iterable[str] = DEFAULT_EXEMPT_TAGS,
        in_house_models: Iterable[str] = (),
        in_house_providers: Iterable[str] = (),
    ) -> None:
        self.exempt_tags = frozenset(exempt_tags)
        self.in_house_models = frozenset(in_house_models)
        self.in_house_providers = frozenset(in_house_providers)
        self._users: dict[str, _UserMemory] = {}

    def rows(self, records: Iterable[LedgerRecord]) -> list[tuple[object, ...]]:
        """The increments of `records`, one row per (day, org, team, user), sorted."""
        sums: dict[tuple[int, str, str, str], list[int]] = {}
        exempt_tags = self.exempt_tags
        models, providers = self.in_house_models, self.in_house_providers
        for r in sorted(records, key=_start):
            day = r.started_at_ms - r.started_at_ms % DAY_MS
            key = (day, r.org, r.team, r.user)
            acc = sums.get(key)
            if acc is None:
                acc = sums[key] = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]
            tokens = r.input_tokens + r.output_tokens
            acc[0] += 1
            acc[1] += tokens
            acc[2] += int(tokens * (1.0 - r.gaming_score))
            acc[3] += r.actual_cost_pusd
            if (r.served_model or r.requested_model) in models or r.provider in providers:
                acc[10] += tokens
            if r.status >= 400:
                continue
            acc[4] += r.gaming_score >= GAMED_SCORE
            if exempt_tags and not exempt_tags.isdisjoint(r.tags):
                acc[5] += 1
                continue
            memory = self._memory(r.user, day)
            duplicate, near = self._repeats(memory, r)
            acc[6] += duplicate
            acc[7] += near
            acc[8] += self._regular(memory, r)
            acc[9] += (r.finish_reason in ("length", "max_tokens")) and (
                (r.max_tokens or 0) >= BURN_MAX_TOKENS
            )
        return [(*key, *acc) for key, acc in sorted(sums.items())]

    def _memory(self, user: str, day: int) -> _UserMemory:
        memory = self._users.get(user)
        if memory is None:
            memory = self._users[user] = _UserMemory()
        if memory.day != day:
            memory.day = day
            memory.fingerprints.clear()
        return memory

    @staticmethod
    def _repeats(memory: _UserMemory, r: LedgerRecord) -> tuple[bool, bool]:
        fingerprint = r.prompt_fingerprint
        if fingerprint:
            first = memory.fingerprints.get(fingerprint)
            if first is None:
                if len(memory.fingerprints) < _MAX_FINGERPRINTS:
                    memory.fingerprints[fingerprint] = r.request_id
            elif first != r.request_id:
                return True, False
        sketch = r.prompt_sketch
        if not sketch:
            return False, False
        ids, sketches = memory.sketch_ids, memory.sketches
        if r.request_id in ids:  # a retried batch: compare with what came before, as before
            earlier = list(sketches)[: list(ids).index(r.request_id)]
            return False, any((sketch ^ other).bit_count() <= NEAR_BITS for other in earlier)
        near = any((sketch ^ other).bit_count() <= NEAR_BITS for other in sketches)
        ids.append(r.request_id)
        sketches.append(sketch)
        if len(sketches) > RECENT_SKETCHES:
            ids.popleft()
            sketches.popleft()
        return False, near

    @staticmethod
    def _regular(memory: _UserMemory, r: LedgerRecord) -> bool:
        if r.request_id == memory.last_id:
            return False
        gap = r.started_at_ms - memory.last_ms
        first = memory.last_ms < 0
        memory.last_id, memory.last_ms = r.request_id, r.started_at_ms
        if first or gap < 0:
            return False
        gaps = memory.gaps
        gaps.append(gap)
        memory.gap_sum += gap
        memory.gap_squares += gap * gap
        if len(gaps) > CADENCE_RUN:
            old = gaps.popleft()
            memory.gap_sum -= old
            memory.gap_squares -= old * old
        if len(gaps) < CADENCE_RUN or memory.gap_sum <= 0:
            return False
        # Integer sums: exact, so a perfectly even cadence has a variance of exactly 0.
        n = CADENCE_RUN
        variance = (n * memory.gap_squares - memory.gap_sum**2) / (n * n)
        mean = memory.gap_sum / n
        return sqrt(max(variance, 0.0)) / mean < CADENCE_CV


def _start(record: LedgerRecord) -> int:
    return record.started_at_ms
