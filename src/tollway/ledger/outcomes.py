"""Stored outcomes (merged PRs, landed diffs, resolved tickets, incidents, reverts).

`insert_outcomes` is idempotent on `outcome_id`; an outcome of kind `revert` or
`incident` voids the outcomes it names in `refs` if they happened within the quality
window before it, so a reverted PR stops counting.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from sqlalchemy import Connection, and_, select, update

from tollway.ledger.schema import outcome_actors, outcomes

VOIDING_KINDS = frozenset({"revert", "incident"})
DAY_MS = 86_400_000


@dataclass(frozen=True, slots=True)
class Outcome:
    """One outcome event; `actors` are gateway user names (already mapped from e.g. GitHub)."""

    outcome_id: str
    kind: str
    org: str
    team: str
    actors: tuple[str, ...]
    occurred_at_ms: int
    source: str = "api"
    size: int = 1
    url: str | None = None
    title: str | None = None
    refs: tuple[str, ...] = ()  # outcome ids this one reverts or is an incident of
    extra: dict[str, Any] = field(default_factory=dict)


def insert_outcomes(
    connection: Connection,
    items: Sequence[Outcome],
    *,
    received_at_ms: int,
    quality_window_days: int = 7,
) -> list[str]:
    """Store `items` not stored yet (in the caller's transaction); returns the new ids."""
    ids = [o.outcome_id for o in items]
    stored = set(
        connection.execute(
            select(outcomes.c.outcome_id).where(outcomes.c.outcome_id.in_(ids))
        ).scalars()
    )
    fresh: dict[str, Outcome] = {}
    for o in items:
        if o.outcome_id not in stored and o.outcome_id not in fresh:
            fresh[o.outcome_id] = o
    if not fresh:
        return []
    connection.execute(
        outcomes.insert(),
        [
            {
                "outcome_id": o.outcome_id,
                "kind": o.kind,
                "org": o.org,
                "team": o.team,
                "actors": orjson.dumps(list(o.actors)).decode(),
                "size": o.size,
                "occurred_at_ms": o.occurred_at_ms,
                "received_at_ms": received_at_ms,
                "source": o.source,
                "url": o.url,
                "title": o.title,
                "refs": orjson.dumps(list(o.refs)).decode(),
                "extra": orjson.dumps(o.extra, default=str).decode(),
            }
            for o in fresh.values()
        ],
    )
    actor_rows = [
        {"outcome_id": o.outcome_id, "user": a, "team": o.team, "occurred_at_ms": o.occurred_at_ms}
        for o in fresh.values()
        for a in dict.fromkeys(o.actors)
    ]
    if actor_rows:
        connection.execute(outcome_actors.insert(), actor_rows)
    for o in fresh.values():
        if o.kind in VOIDING_KINDS and o.refs:
            _void(connection, o, quality_window_days * DAY_MS)
    return list(fresh)


def _void(connection: Connection, by: Outcome, window_ms: int) -> None:
    connection.execute(
        update(outcomes)
        .where(
            and_(
                outcomes.c.outcome_id.in_(by.refs),
                outcomes.c.voided_at_ms.is_(None),
                outcomes.c.occurred_at_ms >= by.occurred_at_ms - window_ms,
                outcomes.c.occurred_at_ms <= by.occurred_at_ms,
            )
        )
        .values(voided_at_ms=by.occurred_at_ms, voided_by=by.outcome_id)
    )
